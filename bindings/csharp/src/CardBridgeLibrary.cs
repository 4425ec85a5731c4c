using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace CardBridge
{
    /// <summary>The native library this package wraps, and the version check done at first use.</summary>
    public static class CardBridgeLibrary
    {
        /// <summary>The native version this package was built for; it ships exactly that library
        /// (ffi-conventions.md §7).</summary>
        public const string ExpectedVersion = "cardbridge/0.1.0";

        private static int compatible;

        /// <summary>The loaded native library's <c>cardbridge_version()</c>, e.g. <c>cardbridge/0.1.0</c>.</summary>
        /// <exception cref="DllNotFoundException">The native library <c>cardbridge</c> cannot be loaded.</exception>
        public static string Version
        {
            get { return Utf8.FromCString(NativeMethods.cardbridge_version()); }
        }

        /// <summary>Checks once per process that the native library is the expected version; every
        /// public entry point calls it before its first native call.</summary>
        /// <exception cref="InvalidOperationException">The native library has another version.</exception>
        internal static void EnsureCompatible()
        {
            if (Volatile.Read(ref compatible) != 0)
            {
                return;
            }
            CheckVersion(Version);
            Volatile.Write(ref compatible, 1);
        }

        /// <summary>Throws unless <paramref name="nativeVersion"/> is <see cref="ExpectedVersion"/>.</summary>
        internal static void CheckVersion(string nativeVersion)
        {
            if (!string.Equals(nativeVersion, ExpectedVersion, StringComparison.Ordinal))
            {
                throw new InvalidOperationException("the native cardbridge library is version '" + nativeVersion +
                    "' but this CardBridge package needs exactly '" + ExpectedVersion +
                    "': install the native library that ships with the package");
            }
        }
    }

    /// <summary>UTF-8 conversions at the native boundary (text crosses as pointer + length).</summary>
    internal static unsafe class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>Encodes a non-null argument; lone surrogates throw <see cref="ArgumentException"/>.</summary>
        internal static byte[] Encode(string value, string paramName)
        {
            if (value == null)
            {
                throw new ArgumentNullException(paramName);
            }
            try
            {
                return Strict.GetBytes(value);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException("not encodable as UTF-8: " + e.Message, paramName, e);
            }
        }

        /// <summary>Decodes <paramref name="len"/> bytes at <paramref name="data"/> (NULL allowed when 0).</summary>
        internal static string Decode(byte* data, UIntPtr len)
        {
            var n = checked((int)len.ToUInt64());
            return n == 0 ? string.Empty : Encoding.UTF8.GetString(data, n);
        }

        /// <summary>Copies <paramref name="len"/> bytes at <paramref name="data"/> (NULL allowed when 0).</summary>
        internal static byte[] Copy(byte* data, UIntPtr len)
        {
            var copy = new byte[checked((int)len.ToUInt64())];
            if (copy.Length > 0)
            {
                Marshal.Copy((IntPtr)data, copy, 0, copy.Length);
            }
            return copy;
        }

        /// <summary>Decodes a static NUL-terminated native string.</summary>
        internal static string FromCString(IntPtr text)
        {
            if (text == IntPtr.Zero)
            {
                return null;
            }
            var p = (byte*)text;
            var n = 0;
            while (p[n] != 0)
            {
                n++;
            }
            return Encoding.UTF8.GetString(p, n);
        }
    }

    /// <summary>Just enough JSON writing for the convenience overloads that build configuration.</summary>
    internal static class JsonText
    {
        /// <summary>A JSON object from name/value pairs; null values are left out.</summary>
        internal static string Object(IEnumerable<KeyValuePair<string, string>> members)
        {
            var sb = new StringBuilder("{");
            foreach (var m in members)
            {
                if (m.Value == null)
                {
                    continue;
                }
                if (sb.Length > 1)
                {
                    sb.Append(',');
                }
                Quote(sb, m.Key);
                sb.Append(':');
                Quote(sb, m.Value);
            }
            return sb.Append('}').ToString();
        }

        /// <summary>Appends <paramref name="s"/> as a JSON string literal.</summary>
        internal static void Quote(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20)
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4"));
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
