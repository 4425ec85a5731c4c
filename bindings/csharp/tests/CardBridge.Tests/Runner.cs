// A small self-contained test runner (no NuGet, no test framework): every public instance method
// marked [Test] on a public class of this assembly is run on a fresh instance; the runner prints
// one line per test and closes with "N passed, N failed, N skipped".
//
// Usage: mono CardBridge.Tests.exe <repository root> [name filter]
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;

namespace CardBridge.Tests
{
    /// <summary>Marks a test method.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute
    {
    }

    /// <summary>Thrown by a test that cannot run here (reported as skipped, not failed).</summary>
    public sealed class SkipException : Exception
    {
        public SkipException(string why) : base(why)
        {
        }
    }

    /// <summary>A failed assertion.</summary>
    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message)
        {
        }
    }

    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition)
            {
                throw new AssertionException(what);
            }
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                throw new AssertionException(what + ": expected <" + expected + "> but got <" + actual + ">");
            }
        }

        public static void BytesEqual(byte[] expected, byte[] actual, string what)
        {
            if (expected.Length != actual.Length || !expected.SequenceEqual(actual))
            {
                throw new AssertionException(what + ": byte arrays differ (" + expected.Length + " vs " +
                    actual.Length + " bytes)");
            }
        }

        public static void Contains(string needle, string hay, string what)
        {
            if (hay == null || hay.IndexOf(needle, StringComparison.Ordinal) < 0)
            {
                throw new AssertionException(what + ": <" + needle + "> not found in <" + hay + ">");
            }
        }

        /// <summary>Runs <paramref name="action"/> and returns the exception of exactly type <typeparamref name="T"/>.</summary>
        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                if (e.GetType() == typeof(T))
                {
                    return (T)e;
                }
                throw new AssertionException(what + ": expected " + typeof(T).Name + " but got " + e.GetType().Name +
                    ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + " but nothing was thrown");
        }
    }

    public static class Runner
    {
        /// <summary>The repository root (tests/fixtures, include/, bindings/csharp).</summary>
        public static string Root { get; private set; }

        public static int Main(string[] args)
        {
            if (args.Length < 1 || !Directory.Exists(Path.Combine(args[0], "tests", "fixtures")))
            {
                Console.Error.WriteLine("usage: CardBridge.Tests.exe <repository root> [name filter]");
                return 2;
            }
            Root = Path.GetFullPath(args[0]);
            var filter = args.Length > 1 ? args[1] : null;
            var tests = typeof(Runner).Assembly.GetTypes()
                .Where(t => t.IsPublic && t.IsClass && !t.IsAbstract)
                .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance)
                    .Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0))
                .OrderBy(m => m.DeclaringType.Name, StringComparer.Ordinal)
                .ThenBy(m => m.MetadataToken)
                .ToList();
            int passed = 0, failed = 0, skipped = 0;
            foreach (var method in tests)
            {
                var name = method.DeclaringType.Name + "." + method.Name;
                if (filter != null && name.IndexOf(filter, StringComparison.OrdinalIgnoreCase) < 0)
                {
                    continue;
                }
                var clock = Stopwatch.StartNew();
                try
                {
                    var instance = Activator.CreateInstance(method.DeclaringType);
                    try
                    {
                        method.Invoke(instance, null);
                    }
                    finally
                    {
                        var disposable = instance as IDisposable;
                        if (disposable != null)
                        {
                            disposable.Dispose();
                        }
                    }
                    passed++;
                    Console.WriteLine("ok   - {0} ({1} ms)", name, clock.ElapsedMilliseconds);
                }
                catch (TargetInvocationException e) when (e.InnerException is SkipException)
                {
                    skipped++;
                    Console.WriteLine("skip - {0}: {1}", name, e.InnerException.Message);
                }
                catch (Exception e)
                {
                    failed++;
                    var inner = e is TargetInvocationException && e.InnerException != null ? e.InnerException : e;
                    Console.WriteLine("FAIL - {0}: {1}", name, inner);
                }
            }
            Console.WriteLine("{0} passed, {1} failed, {2} skipped", passed, failed, skipped);
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }
}
