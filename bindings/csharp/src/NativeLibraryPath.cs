// Loading the native library from a path the application chooses, on .NET Core 3.0+ / .NET 5+.
//
// UNTESTED ON .NET CORE. This project's machines have no .NET SDK: the file is compiled with Mono's
// mcs (netstandard2.0 has no NativeLibrary type, so it is reached through reflection) and only its
// Mono / .NET Framework branch runs in the test suite (NativeLibraryPathTests.cs). The .NET Core
// branch follows the documented NativeLibrary.SetDllImportResolver / NativeLibrary.Load contract.
using System;
using System.IO;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace CardBridge
{
    public static partial class CardBridgeLibrary
    {
        private static readonly object ResolverGate = new object();
        private static string nativeLibraryPath;
        private static MethodInfo nativeLibraryLoad;

        /// <summary>
        /// Makes this package load the native library from <paramref name="libraryPath"/> instead of the
        /// default search (the NuGet package's <c>runtimes/&lt;rid&gt;/native/</c>, the application folder,
        /// the system's library path). Call it once, before any other CardBridge call.
        /// <para>On .NET Core 3.0 and later (.NET 5+) it registers a
        /// <c>NativeLibrary.SetDllImportResolver</c> for this assembly and returns true. Untested on
        /// .NET Core: this project builds and tests the package with Mono only.</para>
        /// <para>On runtimes without <c>NativeLibrary</c> (Mono, .NET Framework) it changes nothing and
        /// returns false: there, <c>CardBridge.dll.config</c> (Mono's dllmap, whose target may be an
        /// absolute path) or the library search path decide.</para>
        /// </summary>
        /// <param name="libraryPath">Absolute path of <c>libcardbridge.so</c>, <c>libcardbridge.dylib</c>
        /// or <c>cardbridge.dll</c>.</param>
        /// <returns>true when the resolver is in place; false when this runtime has no NativeLibrary.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="libraryPath"/> is null.</exception>
        /// <exception cref="ArgumentException"><paramref name="libraryPath"/> is not an absolute path.</exception>
        /// <exception cref="FileNotFoundException">No file at <paramref name="libraryPath"/>.</exception>
        /// <exception cref="InvalidOperationException">Another path was set before (a resolver can be
        /// registered once per assembly).</exception>
        public static bool SetNativeLibraryPath(string libraryPath)
        {
            if (libraryPath == null)
            {
                throw new ArgumentNullException("libraryPath");
            }
            if (!Path.IsPathRooted(libraryPath))
            {
                throw new ArgumentException("libraryPath: must be an absolute path", "libraryPath");
            }
            if (!File.Exists(libraryPath))
            {
                throw new FileNotFoundException("libraryPath: no native cardbridge library at that path", libraryPath);
            }
            var coreLibrary = typeof(Marshal).Assembly;
            var nativeLibrary = coreLibrary.GetType("System.Runtime.InteropServices.NativeLibrary", false);
            var resolverType = coreLibrary.GetType("System.Runtime.InteropServices.DllImportResolver", false);
            if (nativeLibrary == null || resolverType == null)
            {
                return false;
            }
            lock (ResolverGate)
            {
                if (nativeLibraryPath != null)
                {
                    if (string.Equals(nativeLibraryPath, libraryPath, StringComparison.Ordinal))
                    {
                        return true;
                    }
                    throw new InvalidOperationException(
                        "libraryPath: the native library path was already set to another path; it can be set once per process");
                }
                var setResolver = nativeLibrary.GetMethod("SetDllImportResolver", new[] { typeof(Assembly), resolverType });
                var load = nativeLibrary.GetMethod("Load", new[] { typeof(string) });
                var resolve = typeof(CardBridgeLibrary).GetMethod("ResolveNativeLibrary", BindingFlags.NonPublic | BindingFlags.Static);
                if (setResolver == null || load == null || resolve == null)
                {
                    return false;
                }
                nativeLibraryLoad = load;
                nativeLibraryPath = libraryPath;
                try
                {
                    setResolver.Invoke(null, new object[] { typeof(CardBridgeLibrary).Assembly, Delegate.CreateDelegate(resolverType, resolve) });
                }
                catch (TargetInvocationException e) when (e.InnerException != null)
                {
                    nativeLibraryPath = null;
                    ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                    throw;
                }
                return true;
            }
        }

        /// <summary>The DllImportResolver: <c>cardbridge</c> comes from the path set above; anything
        /// else falls back to the default search (IntPtr.Zero).</summary>
        private static IntPtr ResolveNativeLibrary(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
        {
            var path = nativeLibraryPath;
            if (path == null || !string.Equals(libraryName, "cardbridge", StringComparison.Ordinal))
            {
                return IntPtr.Zero;
            }
            try
            {
                return (IntPtr)nativeLibraryLoad.Invoke(null, new object[] { path });
            }
            catch (TargetInvocationException e) when (e.InnerException != null)
            {
                ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
        }
    }
}
