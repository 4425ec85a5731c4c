using System;

namespace CardBridge
{
    /// <summary>How <see cref="WechatEmulator.Callback"/> spoils a callback (<c>CARDBRIDGE_CALLBACK_TAMPER_*</c>).</summary>
    public enum CallbackTamper : uint
    {
        /// <summary>Correctly signed.</summary>
        None = 0,
        /// <summary><c>Wechatpay-Signature</c> is <c>WECHATPAY/SIGNTEST/</c> plus the valid signature
        /// (a signature probe the merchant must refuse).</summary>
        SigntestProbe = 1,
        /// <summary>Correctly signed, with a <c>Wechatpay-Timestamp</c> ten minutes before the given time.</summary>
        StaleTimestamp = 2,
        /// <summary>One bit of the sealed resource flipped before signing (the signature verifies,
        /// decryption fails).</summary>
        BadTag = 3,
        /// <summary><c>Wechatpay-Serial</c> names a key the merchant does not have.</summary>
        WrongSerial = 4,
        /// <summary>One letter or digit of the body changed after signing.</summary>
        BodyByte = 5,
        /// <summary>No <c>Wechatpay-Signature</c> header.</summary>
        MissingHeader = 6,
    }

    /// <summary>
    /// Test support: a loopback emulator of the WeChat Pay card-member APIs (plain HTTP on 127.0.0.1,
    /// a free port). It checks the merchant's <c>Authorization</c> and <c>Wechatpay-Serial</c> like the
    /// real service, decrypts sensitive request fields, confirms / reads / updates user cards, syncs
    /// points, signs its answers with the (test) WeChat Pay key, injects faults and mints signed
    /// card-event callbacks. Dispose stops it. Thread-safe.
    /// </summary>
    public sealed class WechatEmulator : IDisposable
    {
        internal readonly SafeWechatPayEmulatorHandle Handle;

        private WechatEmulator(SafeWechatPayEmulatorHandle handle)
        {
            Handle = handle;
            try
            {
                NativeBytes url;
                IntPtr error;
                var rc = NativeMethods.cardbridge_emulator_wechatpay_base_url(handle, out url, out error);
                CardbridgeException.Check(rc, error);
                BaseUrl = url.TakeString();
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Starts an emulator from its JSON configuration:
        /// <c>{"wechatpay_private_key":"PEM","public_key_id":"PUB_KEY_ID_..","merchant_public_key":"PEM",
        /// "mchid":"..","merchant_serial_no":"..","api_v3_key":"32 bytes"}</c>, optionally
        /// <c>"platform_certificate":{"pem":"PEM","private_key":"PEM"}</c> to play a merchant in
        /// certificate mode. The public half of <c>wechatpay_private_key</c> is the integration's
        /// <c>wechatpay_public_key</c>.
        /// </summary>
        /// <exception cref="ConfigurationException">The configuration is invalid (field path such as
        /// <c>emulator.api_v3_key</c>; <see cref="InvalidKeyException"/> for a key that does not parse).</exception>
        public static unsafe WechatEmulator Start(string configJson)
        {
            var config = Utf8.Encode(configJson, "configJson");
            CardBridgeLibrary.EnsureCompatible();
            SafeWechatPayEmulatorHandle handle;
            IntPtr error;
            uint rc;
            fixed (byte* p = config)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_start(p, (UIntPtr)config.Length, out handle, out error);
            }
            return new WechatEmulator(Interop.Take(rc, error, handle));
        }

        /// <summary>The base URL, <c>http://127.0.0.1:PORT</c> (no path): the integration's <c>base_url</c>.</summary>
        public string BaseUrl { get; private set; }

        /// <summary>Queues a fault for a later request, whatever its path (first in, first out), e.g.
        /// <c>{"fault":"status","status":500,"code":"SYSTEM_ERROR","message":".."}</c>,
        /// <c>{"fault":"accepted"}</c>, <c>{"fault":"delay","delay_ms":100}</c>, <c>{"fault":"drop"}</c>,
        /// <c>{"fault":"unsigned"}</c>, <c>{"fault":"bad_signature"}</c>, <c>{"fault":"stale_timestamp"}</c>,
        /// <c>{"fault":"signtest_probe"}</c>.</summary>
        /// <exception cref="ValidationException">The fault is unknown or out of range (field path such as
        /// <c>fault_json.status</c>); nothing was queued.</exception>
        public unsafe void PushFault(string faultJson)
        {
            var fault = Utf8.Encode(faultJson, "faultJson");
            Handle.ThrowIfClosed("WechatEmulator");
            IntPtr error;
            uint rc;
            fixed (byte* p = fault)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_push_fault(Handle, p, (UIntPtr)fault.Length, out error);
            }
            CardbridgeException.Check(rc, error);
        }

        /// <summary>Seeds a user card as WeChat holds it after the user opened it (<c>USER_CARD.CREATE</c>):
        /// <c>UNACTIVATED</c>, not confirmed. Replaces a card with the same code.</summary>
        public unsafe void AddUserCard(string userCardCode, string cardId, string openid, string brandId)
        {
            var code = Utf8.Encode(userCardCode, "userCardCode");
            var card = Utf8.Encode(cardId, "cardId");
            var user = Utf8.Encode(openid, "openid");
            var brand = Utf8.Encode(brandId, "brandId");
            Handle.ThrowIfClosed("WechatEmulator");
            IntPtr error;
            uint rc;
            fixed (byte* c = code)
            fixed (byte* k = card)
            fixed (byte* o = user)
            fixed (byte* b = brand)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_add_user_card(Handle, c, (UIntPtr)code.Length, k,
                    (UIntPtr)card.Length, o, (UIntPtr)user.Length, b, (UIntPtr)brand.Length, out error);
            }
            CardbridgeException.Check(rc, error);
        }

        /// <summary>How many <c>confirm</c> requests arrived for <paramref name="userCardCode"/>, refused and
        /// faulted ones included.</summary>
        public unsafe long ConfirmHits(string userCardCode)
        {
            var code = Utf8.Encode(userCardCode, "userCardCode");
            Handle.ThrowIfClosed("WechatEmulator");
            fixed (byte* p = code)
            {
                return Interop.ToLong(NativeMethods.cardbridge_emulator_wechatpay_confirm_hits(Handle, p, (UIntPtr)code.Length));
            }
        }

        /// <summary>Distinct user cards a <c>confirm</c> was applied to.</summary>
        public long ConfirmsApplied
        {
            get
            {
                Handle.ThrowIfClosed("WechatEmulator");
                return Interop.ToLong(NativeMethods.cardbridge_emulator_wechatpay_confirms_applied(Handle));
            }
        }

        /// <summary>Requests received whose path starts with <paramref name="pathPrefix"/> (e.g. <c>/v3</c> for
        /// all, or <c>/v3/certificates</c>), refused and faulted ones included.</summary>
        public unsafe long Hits(string pathPrefix)
        {
            var prefix = Utf8.Encode(pathPrefix, "pathPrefix");
            Handle.ThrowIfClosed("WechatEmulator");
            fixed (byte* p = prefix)
            {
                return Interop.ToLong(NativeMethods.cardbridge_emulator_wechatpay_hits(Handle, p, (UIntPtr)prefix.Length));
            }
        }

        /// <summary>The emulator's view of a user card as JSON, sensitive fields in cleartext;
        /// <c>user_card_state</c> is <c>UNACTIVATED</c> until a confirm makes it <c>EFFECTIVE</c>.</summary>
        /// <exception cref="CardbridgeArgumentException">No card has this code (field <c>user_card_code</c>).</exception>
        public unsafe string UserCard(string userCardCode)
        {
            var code = Utf8.Encode(userCardCode, "userCardCode");
            Handle.ThrowIfClosed("WechatEmulator");
            NativeBytes json;
            IntPtr error;
            uint rc;
            fixed (byte* p = code)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_user_card(Handle, p, (UIntPtr)code.Length, out json, out error);
            }
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>
        /// A signed card-event callback for the merchant's <c>notify_url</c>, as WeChat Pay sends it: the
        /// sensitive fields of <paramref name="plaintextJson"/> are RSA-OAEP-encrypted to the merchant key,
        /// the resource is sealed with the APIv3 key, and the envelope is signed at
        /// <paramref name="nowUnixSeconds"/> and spoiled as <paramref name="tamper"/> says.
        /// Feed it to <see cref="WechatPay.CallbackBegin(HttpRequest, long?)"/>.
        /// </summary>
        /// <param name="eventType">E.g. <c>BRAND_MEMBER_CARD_SP.USER_CARD.CREATE</c>.</param>
        /// <param name="originalType">E.g. <c>user_card</c> (the associated data; empty leaves it out).</param>
        /// <param name="plaintextJson">The decrypted resource with sensitive fields in cleartext, e.g.
        /// from <see cref="SampleUserCardCreate"/>.</param>
        /// <param name="nowUnixSeconds">The signing time in Unix seconds; null reads the clock.</param>
        /// <param name="tamper">How to spoil the callback, if at all.</param>
        /// <returns>The <c>POST</c> (target <c>/</c>: the signature does not cover the URL).</returns>
        /// <exception cref="InvalidJsonException"><paramref name="plaintextJson"/> is not JSON.</exception>
        /// <exception cref="CardbridgeArgumentException">Unknown <paramref name="tamper"/> or a non-string sensitive field.</exception>
        /// <exception cref="DecryptException">A sensitive value is too long for RSA-OAEP.</exception>
        public unsafe HttpRequest Callback(string eventType, string originalType, string plaintextJson,
            long? nowUnixSeconds = null, CallbackTamper tamper = CallbackTamper.None)
        {
            var type = Utf8.Encode(eventType, "eventType");
            var original = Utf8.Encode(originalType ?? string.Empty, "originalType");
            var plain = Utf8.Encode(plaintextJson, "plaintextJson");
            var now = Interop.NowSeconds(nowUnixSeconds);
            Handle.ThrowIfClosed("WechatEmulator");
            SafeHttpRequestHandle request;
            IntPtr error;
            uint rc;
            fixed (byte* e = type)
            fixed (byte* o = original)
            fixed (byte* p = plain)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_callback(Handle, e, (UIntPtr)type.Length, o,
                    (UIntPtr)original.Length, p, (UIntPtr)plain.Length, now, (uint)tamper, out request, out error);
            }
            return new HttpRequest(Interop.Take(rc, error, request));
        }

        /// <summary>A <c>USER_CARD.CREATE</c> callback resource in cleartext for <see cref="Callback"/>: brand
        /// <c>1004</c>, <c>phone_number</c> <c>13800000000</c>, user information, state <c>NOT_EFFECTIVE</c>
        /// (personal-looking test data).</summary>
        /// <param name="userCardCode">The card code; null or empty leaves it out (the merchant allocates the code).</param>
        /// <param name="cardId">The card template ID.</param>
        /// <param name="openid">The user's openid.</param>
        public static unsafe string SampleUserCardCreate(string userCardCode, string cardId, string openid)
        {
            var code = Utf8.Encode(userCardCode ?? string.Empty, "userCardCode");
            var card = Utf8.Encode(cardId, "cardId");
            var user = Utf8.Encode(openid, "openid");
            CardBridgeLibrary.EnsureCompatible();
            NativeBytes json;
            IntPtr error;
            uint rc;
            fixed (byte* c = code)
            fixed (byte* k = card)
            fixed (byte* o = user)
            {
                rc = NativeMethods.cardbridge_emulator_wechatpay_sample_user_card_create(c, (UIntPtr)code.Length, k,
                    (UIntPtr)card.Length, o, (UIntPtr)user.Length, out json, out error);
            }
            CardbridgeException.Check(rc, error);
            return json.TakeString();
        }

        /// <summary>Stops the emulator (joining its threads) and releases it.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }
    }
}
