using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Text;

namespace CardBridge
{
    /// <summary>
    /// An HTTP response produced by the library (status, headers in order, exact body bytes), to be
    /// sent back to the platform as is. The parts are copied into managed memory when the object is
    /// created; the native object is kept only for <see cref="PlatformDriver.VerifyResponse"/> and
    /// released by <see cref="Dispose"/> (or the finalizer).
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
                var count = Interop.ToLong(NativeMethods.cardbridge_http_response_header_count(handle));
                var headers = new List<KeyValuePair<string, string>>();
                for (long i = 0; i < count; i++)
                {
                    NativeHeader h;
                    IntPtr error;
                    var rc = NativeMethods.cardbridge_http_response_header(handle, (UIntPtr)(ulong)i, out h, out error);
                    CardbridgeException.Check(rc, error);
                    // The views point into the native response: decode them while it is alive.
                    headers.Add(new KeyValuePair<string, string>(Utf8.Decode(h.Name, h.NameLen),
                        Utf8.Decode(h.Value, h.ValueLen)));
                }
                Headers = new ReadOnlyCollection<KeyValuePair<string, string>>(headers);
                byte* data;
                UIntPtr len;
                IntPtr err;
                var brc = NativeMethods.cardbridge_http_response_body(handle, out data, out len, out err);
                CardbridgeException.Check(brc, err);
                body = Utf8.Copy(data, len);
                GC.KeepAlive(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>The HTTP status code (200 for every Alipay+ answer).</summary>
        public int Status { get; private set; }

        /// <summary>The headers, in order, to send exactly as given.</summary>
        public IList<KeyValuePair<string, string>> Headers { get; private set; }

        /// <summary>A copy of the exact body bytes (the signature covers them byte for byte).</summary>
        public byte[] Body
        {
            get { return (byte[])body.Clone(); }
        }

        /// <summary>The body decoded as UTF-8 (Alipay+ bodies are JSON text).</summary>
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

    /// <summary>
    /// An HTTP request produced by the library's test support (<see cref="PlatformDriver"/>): method,
    /// request-target, headers in order and exact body bytes, copied at creation. Feed it to
    /// <see cref="AlipayPlus.Begin(HttpRequest, long?)"/> as if your HTTP server had received it.
    /// </summary>
    public sealed class HttpRequest : IDisposable
    {
        internal readonly SafeHttpRequestHandle Handle;
        private readonly byte[] body;

        internal unsafe HttpRequest(SafeHttpRequestHandle handle)
        {
            Handle = handle;
            try
            {
                byte* text;
                UIntPtr len;
                IntPtr error;
                var rc = NativeMethods.cardbridge_http_request_method(handle, out text, out len, out error);
                CardbridgeException.Check(rc, error);
                Method = Utf8.Decode(text, len);
                rc = NativeMethods.cardbridge_http_request_target(handle, out text, out len, out error);
                CardbridgeException.Check(rc, error);
                Target = Utf8.Decode(text, len);
                var count = Interop.ToLong(NativeMethods.cardbridge_http_request_header_count(handle));
                var headers = new List<KeyValuePair<string, string>>();
                for (long i = 0; i < count; i++)
                {
                    NativeHeader h;
                    rc = NativeMethods.cardbridge_http_request_header(handle, (UIntPtr)(ulong)i, out h, out error);
                    CardbridgeException.Check(rc, error);
                    headers.Add(new KeyValuePair<string, string>(Utf8.Decode(h.Name, h.NameLen),
                        Utf8.Decode(h.Value, h.ValueLen)));
                }
                Headers = new ReadOnlyCollection<KeyValuePair<string, string>>(headers);
                rc = NativeMethods.cardbridge_http_request_body(handle, out text, out len, out error);
                CardbridgeException.Check(rc, error);
                body = Utf8.Copy(text, len);
                GC.KeepAlive(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>The method, e.g. <c>POST</c>.</summary>
        public string Method { get; private set; }

        /// <summary>The request-target as on the wire (path plus <c>?query</c>).</summary>
        public string Target { get; private set; }

        /// <summary>The headers, in order.</summary>
        public IList<KeyValuePair<string, string>> Headers { get; private set; }

        /// <summary>A copy of the exact body bytes.</summary>
        public byte[] Body
        {
            get { return (byte[])body.Clone(); }
        }

        /// <summary>The body decoded as UTF-8.</summary>
        public string BodyText
        {
            get { return Encoding.UTF8.GetString(body); }
        }

        /// <summary>The value of the first header named <paramref name="name"/> (case-insensitive), or null.</summary>
        public string Header(string name)
        {
            return HttpParts.Find(Headers, name);
        }

        /// <summary>Releases the native request (the managed copies stay readable).</summary>
        public void Dispose()
        {
            Handle.Dispose();
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
