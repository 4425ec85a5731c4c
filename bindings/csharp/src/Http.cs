using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Text;

namespace CardBridge
{
    /// <summary>
    /// An HTTP response produced by the library (status, headers in order, exact body bytes), to be
    /// sent back to the platform as is. The parts are copied into managed memory when the object is
    /// created; the native object is released by <see cref="Dispose"/> (or the finalizer).
    /// </summary>
    public sealed class HttpResponse : IDisposable
    {
        internal readonly SafeHttpResponseHandle Handle;
        private readonly byte[] body;

        internal unsafe HttpResponse(SafeHttpResponseHandle handle)
        {
            Handle = handle;
            try
            {
                Status = NativeMethods.cardbridge_http_response_status(handle);
                Headers = Interop.Headers(NativeMethods.cardbridge_http_response_header_count(handle),
                    (UIntPtr i, out NativeHeader h, out IntPtr e) =>
                        NativeMethods.cardbridge_http_response_header(handle, i, out h, out e));
                byte* data;
                UIntPtr len;
                IntPtr err;
                var brc = NativeMethods.cardbridge_http_response_body(handle, out data, out len, out err);
                CardbridgeException.Check(brc, err);
                body = Utf8.Copy(data, len);
                Diagnosis = ReadDiagnosis(handle);
                GC.KeepAlive(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>The diagnosis of a platform call refused for its signature (the answer from
        /// <c>AlipayPlus.Begin</c> or <c>WechatPay.CallbackBegin</c>), as JSON text: <c>check</c> (which check
        /// failed), <c>offset_ms</c>, <c>platform_clock_offset_ms</c>, <c>verified_variant</c> and <c>fix</c> (the
        /// rewrite that would make it verify, and what to change), <c>hints</c>, <c>body_len</c>,
        /// <c>body_sha256</c>, <c>summary</c>; never the body, a signature or personal data. Null on every other
        /// answer.</summary>
        public string Diagnosis { get; private set; }

        private static unsafe string ReadDiagnosis(SafeHttpResponseHandle handle)
        {
            UIntPtr needed;
            if (NativeMethods.cardbridge_http_response_diagnosis(handle, null, UIntPtr.Zero, out needed)
                != (uint)ResultCode.InsufficientSize)
            {
                return null;
            }
            var buf = new byte[checked((int)needed.ToUInt64())];
            UIntPtr written;
            fixed (byte* p = buf)
            {
                var rc = NativeMethods.cardbridge_http_response_diagnosis(handle, p, (UIntPtr)buf.Length, out written);
                if (rc != 0 || written.ToUInt64() == 0)
                {
                    return null;
                }
                return Utf8.Decode(p, written);
            }
        }

        /// <summary>The HTTP status code (200 for every Alipay+ answer; WeChat Pay callback answers use
        /// 200/204, 400, 401 and 500).</summary>
        public int Status { get; private set; }

        /// <summary>The headers, in order, to send exactly as given.</summary>
        public IList<KeyValuePair<string, string>> Headers { get; private set; }

        /// <summary>A copy of the exact body bytes (the signature covers them byte for byte).</summary>
        public byte[] Body
        {
            get { return (byte[])body.Clone(); }
        }

        /// <summary>The body decoded as UTF-8 (the library's bodies are JSON text).</summary>
        public string BodyText
        {
            get { return Encoding.UTF8.GetString(body); }
        }

        /// <summary>The value of the first header named <paramref name="name"/> (case-insensitive), or null.</summary>
        public string Header(string name)
        {
            return HttpParts.Find(Headers, name);
        }

        /// <summary>Releases the native response (the managed copies stay readable).</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    internal sealed unsafe class NativeHeaderBlock
    {
        private readonly int[] lengths;

        /// <summary>Encodes <paramref name="headers"/> (null means none); a null name or value throws
        /// <see cref="ArgumentNullException"/> naming <c>headers</c>.</summary>
        internal NativeHeaderBlock(IEnumerable<KeyValuePair<string, string>> headers)
        {
            var list = new List<KeyValuePair<string, string>>(headers ?? new KeyValuePair<string, string>[0]);
            var parts = new byte[list.Count * 2][];
            var total = 0;
            for (var i = 0; i < list.Count; i++)
            {
                parts[2 * i] = Utf8.Encode(list[i].Key, "headers");
                parts[2 * i + 1] = Utf8.Encode(list[i].Value, "headers");
                total = checked(total + parts[2 * i].Length + parts[2 * i + 1].Length);
            }
            Buffer = new byte[total];
            lengths = new int[parts.Length];
            var offset = 0;
            for (var i = 0; i < parts.Length; i++)
            {
                System.Buffer.BlockCopy(parts[i], 0, Buffer, offset, parts[i].Length);
                lengths[i] = parts[i].Length;
                offset += parts[i].Length;
            }
            Views = new NativeHeader[list.Count];
        }

        /// <summary>All names and values, back to back; pin it and pass the address to <see cref="Point"/>.</summary>
        internal byte[] Buffer { get; private set; }

        /// <summary>One view per header, valid while <see cref="Buffer"/> stays pinned.</summary>
        internal NativeHeader[] Views { get; private set; }

        /// <summary>Points <see cref="Views"/> into <see cref="Buffer"/> pinned at <paramref name="pinned"/>
        /// (NULL when the buffer is empty: every length is 0 then).</summary>
        internal void Point(byte* pinned)
        {
            var at = pinned;
            for (var i = 0; i < Views.Length; i++)
            {
                Views[i].Name = at;
                Views[i].NameLen = (UIntPtr)lengths[2 * i];
                at += lengths[2 * i];
                Views[i].Value = at;
                Views[i].ValueLen = (UIntPtr)lengths[2 * i + 1];
                at += lengths[2 * i + 1];
            }
        }
    }

    internal static class HttpParts
    {
        internal static string Find(IList<KeyValuePair<string, string>> headers, string name)
        {
            if (name == null)
            {
                throw new ArgumentNullException("name");
            }
            foreach (var h in headers)
            {
                if (string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase))
                {
                    return h.Value;
                }
            }
            return null;
        }
    }
}
