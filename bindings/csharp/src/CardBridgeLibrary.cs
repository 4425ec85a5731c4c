using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace CardBridge
{
    /// <summary>The native library this package wraps, and the version check done at first use.</summary>
    public static partial class CardBridgeLibrary
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

    /// <summary>Just enough JSON writing for the convenience overloads that build configuration, and
    /// just enough reading to lift a few top-level members out of the library's own JSON.</summary>
    internal static class JsonText
    {
        /// <summary>
        /// The string-valued members of the top-level object of <paramref name="json"/> (the first
        /// occurrence of each name wins); members of other types and nested values are skipped.
        /// Meant for compact JSON the native library produced.
        /// </summary>
        /// <exception cref="FormatException">The text is not a JSON object.</exception>
        internal static Dictionary<string, string> TopLevelStrings(string json)
        {
            var members = new Dictionary<string, string>(StringComparer.Ordinal);
            var i = SkipSpace(json, 0);
            Expect(json, ref i, '{');
            i = SkipSpace(json, i);
            if (i < json.Length && json[i] == '}')
            {
                return members;
            }
            while (true)
            {
                i = SkipSpace(json, i);
                var name = ReadString(json, ref i);
                i = SkipSpace(json, i);
                Expect(json, ref i, ':');
                i = SkipSpace(json, i);
                if (i < json.Length && json[i] == '"')
                {
                    var value = ReadString(json, ref i);
                    if (!members.ContainsKey(name))
                    {
                        members.Add(name, value);
                    }
                }
                else
                {
                    i = SkipValue(json, i);
                }
                i = SkipSpace(json, i);
                if (i < json.Length && json[i] == ',')
                {
                    i++;
                    continue;
                }
                Expect(json, ref i, '}');
                return members;
            }
        }

        /// <summary>
        /// Every member of the top-level object of <paramref name="json"/>, in order: its name and its value
        /// as raw JSON text (a string value keeps its quotes and escapes; see <see cref="DecodeString"/>).
        /// </summary>
        /// <exception cref="FormatException">The text is not a JSON object.</exception>
        internal static List<KeyValuePair<string, string>> TopLevelRaw(string json)
        {
            var members = new List<KeyValuePair<string, string>>();
            var i = SkipSpace(json, 0);
            Expect(json, ref i, '{');
            i = SkipSpace(json, i);
            if (i < json.Length && json[i] == '}')
            {
                return members;
            }
            while (true)
            {
                i = SkipSpace(json, i);
                var name = ReadString(json, ref i);
                i = SkipSpace(json, i);
                Expect(json, ref i, ':');
                i = SkipSpace(json, i);
                var start = i;
                i = SkipValue(json, i);
                var raw = json.Substring(start, i - start).TrimEnd(' ', '\t', '\n', '\r');
                if (raw.Length == 0)
                {
                    throw new FormatException("expected a value at offset " + start + " of the JSON text");
                }
                members.Add(new KeyValuePair<string, string>(name, raw));
                i = SkipSpace(json, i);
                if (i < json.Length && json[i] == ',')
                {
                    i++;
                    continue;
                }
                Expect(json, ref i, '}');
                return members;
            }
        }

        /// <summary>The text of a raw JSON string literal (quotes included), or null when
        /// <paramref name="raw"/> is not a string literal (e.g. <c>null</c> or a number).</summary>
        internal static string DecodeString(string raw)
        {
            if (raw == null || raw.Length < 2 || raw[0] != '"')
            {
                return null;
            }
            var i = 0;
            return ReadString(raw, ref i);
        }

        /// <summary>Appends <c>"name":value</c> (the value as raw JSON), with a comma unless first.</summary>
        internal static void RawMember(StringBuilder sb, string name, string rawValue)
        {
            if (sb.Length > 1)
            {
                sb.Append(',');
            }
            Quote(sb, name);
            sb.Append(':').Append(rawValue);
        }

        /// <summary>Appends <c>"name":"value"</c> unless <paramref name="value"/> is null.</summary>
        internal static void StringMember(StringBuilder sb, string name, string value)
        {
            if (value == null)
            {
                return;
            }
            var quoted = new StringBuilder();
            Quote(quoted, value);
            RawMember(sb, name, quoted.ToString());
        }

        private static int SkipSpace(string s, int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            {
                i++;
            }
            return i;
        }

        private static void Expect(string s, ref int i, char c)
        {
            if (i >= s.Length || s[i] != c)
            {
                throw new FormatException("expected '" + c + "' at offset " + i + " of the JSON text");
            }
            i++;
        }

        /// <summary>Reads the string literal at <paramref name="i"/>, decoding escapes.</summary>
        private static string ReadString(string s, ref int i)
        {
            Expect(s, ref i, '"');
            var sb = new StringBuilder();
            while (i < s.Length)
            {
                var c = s[i++];
                if (c == '"')
                {
                    return sb.ToString();
                }
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                if (i >= s.Length)
                {
                    break;
                }
                var e = s[i++];
                switch (e)
                {
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (i + 4 > s.Length)
                        {
                            throw new FormatException("truncated \\u escape in the JSON text");
                        }
                        sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16));
                        i += 4;
                        break;
                    default: sb.Append(e); break; // '"', '\\', '/'
                }
            }
            throw new FormatException("unterminated string in the JSON text");
        }

        /// <summary>The offset just past the value (object, array, literal) at <paramref name="i"/>.</summary>
        private static int SkipValue(string s, int i)
        {
            var depth = 0;
            while (i < s.Length)
            {
                var c = s[i];
                if (c == '"')
                {
                    ReadString(s, ref i);
                }
                else if (c == '{' || c == '[')
                {
                    depth++;
                    i++;
                }
                else if (c == '}' || c == ']')
                {
                    if (depth == 0)
                    {
                        return i;
                    }
                    depth--;
                    i++;
                }
                else if (c == ',' && depth == 0)
                {
                    return i;
                }
                else
                {
                    i++;
                }
                if (depth == 0 && (c == '}' || c == ']' || c == '"'))
                {
                    return i;
                }
            }
            return i;
        }

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
