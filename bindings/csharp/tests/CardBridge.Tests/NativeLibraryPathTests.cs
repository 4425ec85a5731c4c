// CardBridgeLibrary.SetNativeLibraryPath: argument checks, and the branch this runtime takes. Under
// Mono (this suite's runtime) there is no NativeLibrary, so the call must change nothing and say so;
// the .NET Core branch (resolver registered) is untested here and the test says which one it saw.
using System;
using System.IO;
using System.Runtime.InteropServices;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class NativeLibraryPathTests
    {
        private static bool RuntimeHasNativeLibrary
        {
            get { return typeof(Marshal).Assembly.GetType("System.Runtime.InteropServices.NativeLibrary", false) != null; }
        }

        private static string LoadedLibrary()
        {
            // run.sh puts the library it tests next to CardBridge.dll.
            var dir = Path.GetDirectoryName(typeof(CardBridgeLibrary).Assembly.Location);
            return Path.Combine(dir, "libcardbridge.so");
        }

        [Test]
        public void NullRelativeAndMissingPathsAreRefusedNamingTheParameter()
        {
            var none = Assert.Throws<ArgumentNullException>(() => CardBridgeLibrary.SetNativeLibraryPath(null), "null");
            Assert.Equal("libraryPath", none.ParamName, "null: parameter");
            var relative = Assert.Throws<ArgumentException>(
                () => CardBridgeLibrary.SetNativeLibraryPath("libcardbridge.so"), "relative path");
            Assert.Equal("libraryPath", relative.ParamName, "relative: parameter");
            Assert.Contains("absolute", relative.Message, "relative: rule");
            var missing = Path.Combine(Path.GetTempPath(), "cardbridge-no-such-dir", "libcardbridge.so");
            var notFound = Assert.Throws<FileNotFoundException>(
                () => CardBridgeLibrary.SetNativeLibraryPath(missing), "missing file");
            Assert.Contains("libraryPath", notFound.Message, "missing: parameter");
        }

        [Test]
        public void WithoutNativeLibraryTheCallChangesNothingAndReturnsFalse()
        {
            if (RuntimeHasNativeLibrary)
            {
                throw new SkipException("this runtime has NativeLibrary (.NET Core): the Mono branch does not apply");
            }
            Assert.True(File.Exists(LoadedLibrary()), "the library under test is next to CardBridge.dll");
            Assert.Equal(false, CardBridgeLibrary.SetNativeLibraryPath(LoadedLibrary()), "Mono: no resolver");
            // The library still loads the usual way (dllmap), and is the expected version.
            Assert.Equal(CardBridgeLibrary.ExpectedVersion, CardBridgeLibrary.Version, "loaded through dllmap");
        }
    }
}
