// A minimal JSON reader (and string quoting) for the test support and the test fixtures (Mono's
// default install has no JSON library and the tests must need nothing beyond mono-runtime). Objects become Dictionary<string, object>,
// arrays List<object>, numbers long (or double when not integral), plus string, bool and null.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace CardBridge.Testing
{
    public static class MiniJson
    {
        public static object Parse(string text)
        {
            var at = 0;
            var value = ReadValue(text, ref at);
            SkipSpace(text, ref at);
            if (at != text.Length)
            {
                throw new FormatException("trailing characters at " + at);
            }
            return value;
        }

        /// <summary>Member <paramref name="name"/> of an object (null when absent).</summary>
        public static object Get(object obj, string name)
        {
            object value;
            var dict = (Dictionary<string, object>)obj;
            return dict.TryGetValue(name, out value) ? value : null;
        }

        public static string Str(object obj, string name)
        {
            return (string)Get(obj, name);
        }

        public static List<object> Arr(object obj, string name)
        {
            return (List<object>)Get(obj, name);
        }

        /// <summary>A JSON string literal.</summary>
        public static string Quote(string s)
        {
            var sb = new StringBuilder("\"");
            foreach (var c in s)
            {
                if (c == '"' || c == '\\')
                {
                    sb.Append('\\').Append(c);
                }
                else if (c < 0x20)
                {
                    sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                }
                else
                {
                    sb.Append(c);
                }
            }
            return sb.Append('"').ToString();
        }

        private static object ReadValue(string s, ref int at)
        {
            SkipSpace(s, ref at);
            if (at >= s.Length)
            {
                throw new FormatException("unexpected end");
            }
            var c = s[at];
            switch (c)
            {
                case '{':
                    return ReadObject(s, ref at);
                case '[':
                    return ReadArray(s, ref at);
                case '"':
                    return ReadString(s, ref at);
                case 't':
                    Expect(s, ref at, "true");
                    return true;
                case 'f':
                    Expect(s, ref at, "false");
                    return false;
                case 'n':
                    Expect(s, ref at, "null");
                    return null;
                default:
                    return ReadNumber(s, ref at);
            }
        }

        private static Dictionary<string, object> ReadObject(string s, ref int at)
        {
            var result = new Dictionary<string, object>();
            at++;
            SkipSpace(s, ref at);
            if (s[at] == '}')
            {
                at++;
                return result;
            }
            while (true)
            {
                SkipSpace(s, ref at);
                var key = ReadString(s, ref at);
                SkipSpace(s, ref at);
                Expect(s, ref at, ":");
                result[key] = ReadValue(s, ref at);
                SkipSpace(s, ref at);
                if (s[at] == ',')
                {
                    at++;
                    continue;
                }
                Expect(s, ref at, "}");
                return result;
            }
        }

        private static List<object> ReadArray(string s, ref int at)
        {
            var result = new List<object>();
            at++;
            SkipSpace(s, ref at);
            if (s[at] == ']')
            {
                at++;
                return result;
            }
            while (true)
            {
                result.Add(ReadValue(s, ref at));
                SkipSpace(s, ref at);
                if (s[at] == ',')
                {
                    at++;
                    continue;
                }
                Expect(s, ref at, "]");
                return result;
            }
        }

        private static string ReadString(string s, ref int at)
        {
            Expect(s, ref at, "\"");
            var sb = new StringBuilder();
            while (true)
            {
                var c = s[at++];
                if (c == '"')
                {
                    return sb.ToString();
                }
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                var e = s[at++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        // Surrogate pairs arrive as two escapes and recombine in the UTF-16 string.
                        sb.Append((char)int.Parse(s.Substring(at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        at += 4;
                        break;
                    default:
                        throw new FormatException("bad escape \\" + e + " at " + at);
                }
            }
        }

        private static object ReadNumber(string s, ref int at)
        {
            var start = at;
            while (at < s.Length && "+-0123456789.eE".IndexOf(s[at]) >= 0)
            {
                at++;
            }
            var text = s.Substring(start, at - start);
            if (text.Length == 0)
            {
                throw new FormatException("unexpected character at " + start);
            }
            long integer;
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out integer))
            {
                return integer;
            }
            return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        private static void Expect(string s, ref int at, string literal)
        {
            if (string.CompareOrdinal(s, at, literal, 0, literal.Length) != 0)
            {
                throw new FormatException("expected '" + literal + "' at " + at);
            }
            at += literal.Length;
        }

        private static void SkipSpace(string s, ref int at)
        {
            while (at < s.Length && char.IsWhiteSpace(s[at]))
            {
                at++;
            }
        }
    }
}
