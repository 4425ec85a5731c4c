using System;
using System.Collections.Generic;

namespace CardBridge
{
    /// <summary>How <see cref="PlatformDriver.Request(string, byte[], string, Tamper)"/> spoils a request.</summary>
    public enum Tamper : uint
    {
        /// <summary>Correctly signed.</summary>
        None = 0,
        /// <summary>One letter or digit of the body changed after signing.</summary>
        BodyByte = 1,
        /// <summary>Signed with a freshly generated key (slow: generates an RSA key).</summary>
        WrongKey = 2,
        /// <summary>No <c>Signature</c> header.</summary>
        Unsigned = 3,
        /// <summary>A <c>Signature</c> header without its <c>signature=</c> key.</summary>
        MalformedHeader = 4,
        /// <summary>Signed for, and carrying, another <c>Client-Id</c>.</summary>
        WrongClientId = 5,
    }

    /// <summary>
    /// Test support: a loopback emulator of the Alipay+ platform's <c>issueCard</c> endpoint (plain HTTP
    /// on 127.0.0.1, a free port). It verifies the merchant's signature, issues cards idempotently by
    /// requestId, signs its answers with the test platform key and can inject faults.
    /// Dispose stops it. Thread-safe.
    /// </summary>
    public sealed class Emulator : IDisposable
    {
        internal readonly SafeEmulatorHandle Handle;

        private Emulator(SafeEmulatorHandle handle)
        {
            Handle = handle;
            try
            {
                NativeBytes url;
                IntPtr error;
                var rc = NativeMethods.cardbridge_emulator_base_url(handle, out url, out error);
                CardbridgeException.Check(rc, error);
                BaseUrl = url.TakeString();
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>Starts an emulator from its JSON configuration:
        /// <c>{"platform_private_key":"PEM","merchant_public_key":"PEM","client_id":"..",
        /// "path_prefix":"/api/open","key_version":"1"}</c> (the last two optional).</summary>
        /// <exception cref="ConfigurationException">The configuration is invalid.</exception>
        public static unsafe Emulator Start(string configJson)
        {
            var config = Utf8.Encode(configJson, "configJson");
            CardBridgeLibrary.EnsureCompatible();
            SafeEmulatorHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = config)
            {
                rc = NativeMethods.cardbridge_emulator_alipayplus_start(p, (UIntPtr)config.Length, out handle, out error);
            }
            return new Emulator(Interop.Take(rc, error, handle));
        }

        /// <summary>Starts an emulator for <paramref name="clientId"/>.</summary>
        /// <param name="platformPrivateKeyPem">The (test) platform key the emulator signs with.</param>
        /// <param name="merchantPublicKeyPem">The merchant key it verifies requests with.</param>
        /// <param name="clientId">The merchant's Client-Id.</param>
        /// <param name="pathPrefix">The API path prefix (default <c>/api/open</c>); the integration must use the same.</param>
        /// <param name="keyVersion">The key version (default <c>1</c>).</param>
        public static Emulator Start(string platformPrivateKeyPem, string merchantPublicKeyPem, string clientId,
            string pathPrefix = null, string keyVersion = null)
        {
            if (platformPrivateKeyPem == null)
            {
                throw new ArgumentNullException("platformPrivateKeyPem");
            }
            if (merchantPublicKeyPem == null)
            {
                throw new ArgumentNullException("merchantPublicKeyPem");
            }
            if (clientId == null)
            {
                throw new ArgumentNullException("clientId");
            }
            return Start(JsonText.Object(new[]
            {
                new KeyValuePair<string, string>("platform_private_key", platformPrivateKeyPem),
                new KeyValuePair<string, string>("merchant_public_key", merchantPublicKeyPem),
                new KeyValuePair<string, string>("client_id", clientId),
                new KeyValuePair<string, string>("path_prefix", pathPrefix),
                new KeyValuePair<string, string>("key_version", keyVersion),
            }));
        }

        /// <summary>The base URL, <c>http://127.0.0.1:PORT</c> (no path): the integration's <c>base_url</c>.</summary>
        public string BaseUrl { get; private set; }

        /// <summary>Queues a fault for a later <c>issueCard</c> request (first in, first out), e.g.
        /// <c>{"fault":"unknown"}</c>, <c>{"fault":"fail","code":"PROCESS_FAIL"}</c>,
        /// <c>{"fault":"http_status","status":503}</c>, <c>{"fault":"delay","delay_ms":100}</c>.</summary>
        /// <exception cref="ValidationException">The fault is unknown or out of range; nothing was queued.</exception>
        public unsafe void PushFault(string faultJson)
        {
            var fault = Utf8.Encode(faultJson, "faultJson");
            Handle.ThrowIfClosed("Emulator");
            IntPtr error;
            uint rc;
            fixed (byte* p = fault)
            {
                rc = NativeMethods.cardbridge_emulator_push_fault(Handle, p, (UIntPtr)fault.Length, out error);
            }
            CardbridgeException.Check(rc, error);
        }

        /// <summary>How many <c>issueCard</c> requests carried <paramref name="requestId"/> (faulted ones included).</summary>
        public unsafe long Hits(string requestId)
        {
            var id = Utf8.Encode(requestId, "requestId");
            Handle.ThrowIfClosed("Emulator");
            fixed (byte* p = id)
            {
                return Interop.ToLong(NativeMethods.cardbridge_emulator_hits(Handle, p, (UIntPtr)id.Length));
            }
        }

        /// <summary>Every <c>issueCard</c> request received, including refused and faulted ones.</summary>
        public long IssueCardHits
        {
            get
            {
                Handle.ThrowIfClosed("Emulator");
                return Interop.ToLong(NativeMethods.cardbridge_emulator_issue_card_hits(Handle));
            }
        }

        /// <summary>Distinct requestIds that got a card.</summary>
        public long CardsIssued
        {
            get
            {
                Handle.ThrowIfClosed("Emulator");
                return Interop.ToLong(NativeMethods.cardbridge_emulator_cards_issued(Handle));
            }
        }

        /// <summary>A valid <c>notifyCardRegistration</c> body for <paramref name="requestId"/>
        /// (modelled on the official sample; personal-looking test data).</summary>
        public static unsafe string SampleRegistration(string requestId)
        {
            var id = Utf8.Encode(requestId, "requestId");
            CardBridgeLibrary.EnsureCompatible();
            NativeBytes body;
            IntPtr error;
            uint rc;
            fixed (byte* p = id)
            {
                rc = NativeMethods.cardbridge_emulator_sample_registration(p, (UIntPtr)id.Length, out body, out error);
            }
            CardbridgeException.Check(rc, error);
            return body.TakeString();
        }

        /// <summary>Stops the emulator (joining its threads) and releases it.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>
    /// Test support: builds platform → merchant requests the way the platform does, signed with the
    /// (test) platform key or deliberately spoiled. Thread-safe.
    /// </summary>
    public sealed class PlatformDriver : IDisposable
    {
        internal readonly SafePlatformDriverHandle Handle;

        /// <summary>A driver signing for <paramref name="clientId"/> with <paramref name="platformPrivateKeyPem"/>.</summary>
        /// <param name="platformPrivateKeyPem">The (test) platform private key, PEM.</param>
        /// <param name="clientId">The merchant's Client-Id.</param>
        /// <param name="keyVersion">The <c>keyVersion</c> to emit (default <c>1</c>).</param>
        /// <exception cref="InvalidKeyException">The key cannot be parsed.</exception>
        public unsafe PlatformDriver(string platformPrivateKeyPem, string clientId, string keyVersion = "1")
        {
            var pem = Utf8.Encode(platformPrivateKeyPem, "platformPrivateKeyPem");
            var id = Utf8.Encode(clientId, "clientId");
            var version = Utf8.Encode(keyVersion, "keyVersion");
            CardBridgeLibrary.EnsureCompatible();
            SafePlatformDriverHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = pem)
            fixed (byte* c = id)
            fixed (byte* v = version)
            {
                rc = NativeMethods.cardbridge_platform_driver_new(p, (UIntPtr)pem.Length, c, (UIntPtr)id.Length, v,
                    (UIntPtr)version.Length, out handle, out error);
            }
            Handle = Interop.Take(rc, error, handle);
        }

        /// <summary>Builds a signed platform → merchant <c>POST</c> to <paramref name="target"/>.</summary>
        /// <param name="target">The merchant-side request-target, e.g. <c>/v2/pds/memberships/notifyCardRegistration</c>.</param>
        /// <param name="body">The exact body bytes.</param>
        /// <param name="requestTime">The <c>Request-Time</c> header, e.g. <c>2026-11-23T10:00:00.000+00:00</c>.</param>
        /// <param name="tamper">How to spoil the request, if at all.</param>
        public unsafe HttpRequest Request(string target, byte[] body, string requestTime, Tamper tamper = Tamper.None)
        {
            var t = Utf8.Encode(target, "target");
            if (body == null)
            {
                throw new ArgumentNullException("body");
            }
            var time = Utf8.Encode(requestTime, "requestTime");
            Handle.ThrowIfClosed("PlatformDriver");
            SafeHttpRequestHandle request;
            IntPtr error;
            uint rc;
            fixed (byte* tp = t)
            fixed (byte* bp = body)
            fixed (byte* rp = time)
            {
                rc = NativeMethods.cardbridge_platform_driver_request(Handle, tp, (UIntPtr)t.Length, bp,
                    (UIntPtr)body.Length, rp, (UIntPtr)time.Length, (uint)tamper, out request, out error);
            }
            return new HttpRequest(Interop.Take(rc, error, request));
        }

        /// <summary>As <see cref="Request(string, byte[], string, Tamper)"/> with a UTF-8 text body.</summary>
        public HttpRequest Request(string target, string body, string requestTime, Tamper tamper = Tamper.None)
        {
            return Request(target, Utf8.Encode(body, "body"), requestTime, tamper);
        }

        /// <summary>Whether <paramref name="response"/> is the merchant's answer to <paramref name="request"/>,
        /// signed with <paramref name="merchantKey"/> as Alipay+ requires.</summary>
        /// <exception cref="ObjectDisposedException">One of the objects was disposed.</exception>
        public static bool VerifyResponse(PublicKey merchantKey, HttpRequest request, HttpResponse response)
        {
            if (merchantKey == null)
            {
                throw new ArgumentNullException("merchantKey");
            }
            if (request == null)
            {
                throw new ArgumentNullException("request");
            }
            if (response == null)
            {
                throw new ArgumentNullException("response");
            }
            merchantKey.Handle.ThrowIfClosed("PublicKey");
            request.Handle.ThrowIfClosed("HttpRequest");
            response.Handle.ThrowIfClosed("HttpResponse");
            return NativeMethods.cardbridge_platform_driver_verify_response(merchantKey.Handle, request.Handle,
                response.Handle);
        }

        /// <summary>Releases the driver.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }
}
