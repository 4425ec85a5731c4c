// Checks of the binding itself: symbol coverage against the header, marshalling attributes,
// the .csproj source list, the version check, the panic boundary.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class BindingTests
    {
        private static IEnumerable<MethodInfo> Imports()
        {
            var native = typeof(CardBridgeLibrary).Assembly.GetType("CardBridge.NativeMethods", true);
            return native.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                .Where(m => (m.Attributes & MethodAttributes.PinvokeImpl) != 0);
        }

        [Test]
        public void EveryHeaderExportHasExactlyOneDllImport()
        {
            var header = File.ReadAllText(Path.Combine(Runner.Root, "include", "cardbridge.h"));
            var exported = new SortedSet<string>(Regex.Matches(header, @"CARDBRIDGE_API\s+[\w\s\*]*?\b(cardbridge_\w+)\s*\(")
                .Cast<Match>().Select(m => m.Groups[1].Value), StringComparer.Ordinal);
            Assert.True(exported.Count >= 50, "the header regex found " + exported.Count + " exports");
            var entryPoints = Imports().Select(m => m.GetCustomAttributes(typeof(DllImportAttribute), false)
                .Cast<DllImportAttribute>().Single().EntryPoint).ToList();
            var imported = new SortedSet<string>(entryPoints, StringComparer.Ordinal);
            Assert.Equal(entryPoints.Count, imported.Count, "no entry point is declared twice");
            var missing = exported.Except(imported).ToList();
            var extra = imported.Except(exported).ToList();
            Assert.True(missing.Count == 0, "exports without a DllImport: " + string.Join(", ", missing));
            Assert.True(extra.Count == 0, "DllImports the header does not declare: " + string.Join(", ", extra));
        }

        [Test]
        public void EveryImportIsCdeclExactSpellingWithOneByteBools()
        {
            var boolsSeen = 0;
            foreach (var m in Imports())
            {
                var import = m.GetCustomAttributes(typeof(DllImportAttribute), false).Cast<DllImportAttribute>().Single();
                Assert.Equal("cardbridge", import.Value, m.Name + " library name");
                Assert.Equal(m.Name, import.EntryPoint, m.Name + " entry point");
                Assert.Equal(CallingConvention.Cdecl, import.CallingConvention, m.Name + " calling convention");
                Assert.True(import.ExactSpelling, m.Name + " ExactSpelling");
                var bools = m.GetParameters().Where(p => p.ParameterType == typeof(bool)).ToList();
                if (m.ReturnType == typeof(bool))
                {
                    bools.Add(m.ReturnParameter);
                }
                boolsSeen += bools.Count;
                foreach (var p in bools)
                {
                    var marshal = p.GetCustomAttributes(typeof(MarshalAsAttribute), false).Cast<MarshalAsAttribute>()
                        .SingleOrDefault();
                    Assert.True(marshal != null && marshal.Value == UnmanagedType.U1,
                        m.Name + ": bool " + (p.Name ?? "return") + " is marshalled as one byte");
                }
            }
            Assert.True(boolsSeen > 0, "the bool check saw at least one bool (parameter or return value)");
        }

        [Test]
        public void HandlesCrossAsSafeHandlesExceptInFreeFunctions()
        {
            foreach (var m in Imports())
            {
                if (m.Name.EndsWith("_free", StringComparison.Ordinal) || m.Name.StartsWith("cardbridge_error_", StringComparison.Ordinal))
                {
                    continue; // _free takes the raw pointer (called from ReleaseHandle); errors are read then freed at once
                }
                foreach (var p in m.GetParameters())
                {
                    var t = p.ParameterType.IsByRef ? p.ParameterType.GetElementType() : p.ParameterType;
                    // user_data: the caller's opaque pointer handed back to a callback, not a handle.
                    Assert.True(t != typeof(IntPtr) || p.Name == "error_out" || p.Name == "user_data",
                        m.Name + ": parameter " + p.Name + " is a raw IntPtr, not a SafeHandle");
                }
            }
        }

        [Test]
        public void CsprojListsExactlyTheSourcesTheMonoBuildCompiles()
        {
            var dir = Path.Combine(Runner.Root, "bindings", "csharp");
            var csproj = File.ReadAllText(Path.Combine(dir, "CardBridge.csproj"));
            var listed = new SortedSet<string>(Regex.Matches(csproj, @"<Compile\s+Include=""([^""]+)""")
                .Cast<Match>().Select(m => m.Groups[1].Value.Replace('\\', '/')), StringComparer.Ordinal);
            // run.sh compiles bindings/csharp/src/*.cs
            var compiled = new SortedSet<string>(Directory.GetFiles(Path.Combine(dir, "src"), "*.cs")
                .Select(f => "src/" + Path.GetFileName(f)), StringComparer.Ordinal);
            Assert.True(compiled.Count > 5, "found the sources");
            Assert.Equal(string.Join(" ", compiled), string.Join(" ", listed), "csproj <Compile> items");
            Assert.Contains("<EnableDefaultCompileItems>false</EnableDefaultCompileItems>", csproj, "no implicit globbing");
        }

        [Test]
        public void NativeVersionMatchesThePackage()
        {
            Assert.Equal(CardBridgeLibrary.ExpectedVersion, CardBridgeLibrary.Version, "cardbridge_version()");
            var header = File.ReadAllText(Path.Combine(Runner.Root, "include", "cardbridge.h"));
            var parts = new[] { "MAJOR", "MINOR", "PATCH" }.Select(p =>
                Regex.Match(header, @"#define CARDBRIDGE_VERSION_" + p + @" (\d+)").Groups[1].Value);
            Assert.Equal("cardbridge/" + string.Join(".", parts), CardBridgeLibrary.ExpectedVersion, "header version");
            CardBridgeLibrary.CheckVersion("cardbridge/0.1.0");
            var e = Assert.Throws<InvalidOperationException>(() => CardBridgeLibrary.CheckVersion("cardbridge/0.2.0"),
                "another native version");
            Assert.Contains("cardbridge/0.2.0", e.Message, "message names the native version");
            Assert.Contains(CardBridgeLibrary.ExpectedVersion, e.Message, "message names the expected version");
        }

        [Test]
        public void PanicInsideTheLibraryBecomesPanicExceptionAndTheProcessSurvives()
        {
            IntPtr error;
            uint rc;
            try
            {
                rc = NativeMethods.cardbridge_test_panic(out error);
            }
            catch (EntryPointNotFoundException)
            {
                // In CI the panic boundary must be proven, not skipped (run.sh builds with ffi-test).
                var ci = (Environment.GetEnvironmentVariable("CI") ?? "").Trim().ToLowerInvariant();
                var cardbridgeCi = (Environment.GetEnvironmentVariable("CARDBRIDGE_CI") ?? "").Trim().ToLowerInvariant();
                if (ci == "true" || ci == "1" || cardbridgeCi == "1" || cardbridgeCi == "true")
                {
                    throw new AssertionException("REQUIRED IN CI, NOT SKIPPED: native library built without the ffi-test feature");
                }
                throw new SkipException("native library built without the ffi-test feature");
            }
            Assert.Equal((uint)ResultCode.Panic, rc, "result code");
            var e = CardbridgeException.FromOwnedError(error);
            Assert.Equal(typeof(PanicException), e.GetType(), "exception type");
            Assert.Equal(ResultCode.Panic, e.Code, "Code");
            Assert.Equal("CARDBRIDGE_RESULT_PANIC", e.ResultName, "ResultName");
            Assert.Contains("cardbridge_test_panic was called", e.Message, "the panic message is kept");
            // The process and the library still work.
            using (var store = Store.InMemory())
            {
                Assert.Equal(0L, store.OutboxCountPending(), "library usable");
            }
            Assert.Equal((uint)ResultCode.Panic, NativeMethods.cardbridge_test_panic(out error), "again");
            CardbridgeException.FromOwnedError(error);
        }

        [Test]
        public void ResultNamesComeFromTheLibrary()
        {
            foreach (ResultCode code in Enum.GetValues(typeof(ResultCode)))
            {
                var expected = "CARDBRIDGE_RESULT_" + Regex.Replace(code.ToString(), "(?<=[a-z0-9])([A-Z])", "_$1").ToUpperInvariant();
                Assert.Equal(expected, CardbridgeException.NameOf(code), "name of " + (uint)code);
            }
        }
    }
}
