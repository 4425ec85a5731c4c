// The exception hierarchy (ffi-conventions.md §8.5, §9.6): one class per result-code group,
// built from the native error object, which is read completely and freed at once.
using System;

namespace CardBridge
{
    /// <summary>The native result codes (<c>cardbridge_result</c>); the numbers are stable.</summary>
    public enum ResultCode : uint
    {
        /// <summary>Success.</summary>
        Ok = 0,
        /// <summary>A required pointer was NULL; <see cref="CardbridgeException.Field"/> names the parameter.</summary>
        NullParameter = 1,
        /// <summary>An argument is out of its allowed domain.</summary>
        InvalidParameter = 2,
        /// <summary>A caller-provided buffer is too small.</summary>
        InsufficientSize = 3,
        /// <summary>A panic was caught inside the library; dispose the objects involved.</summary>
        Panic = 4,
        /// <summary>An object was used after a consuming or finishing call.</summary>
        AlreadyUsed = 5,
        /// <summary>Text input was not UTF-8.</summary>
        InvalidUtf8 = 6,
        /// <summary>An internal invariant failed (store I/O, poisoned lock, ...).</summary>
        Internal = 7,
        /// <summary>Configuration is incomplete or inconsistent.</summary>
        InvalidConfig = 100,
        /// <summary>A key could not be parsed or is too weak.</summary>
        InvalidKey = 101,
        /// <summary>An algorithm the library does not implement was requested.</summary>
        UnsupportedAlgorithm = 102,
        /// <summary>A payload field broke a documented rule (field path and limit in the exception).</summary>
        Validation = 200,
        /// <summary>A payload was not valid JSON or not of the expected shape.</summary>
        InvalidJson = 201,
        /// <summary>The idempotency key was already used with a different payload.</summary>
        IdempotencyConflict = 202,
        /// <summary>This call's claim expired and another delivery took it over: nothing was stored; answer "retry later".</summary>
        ClaimLost = 203,
        /// <summary>A signature was missing, malformed or did not verify.</summary>
        SignatureInvalid = 300,
        /// <summary>A timestamp was outside the accepted window.</summary>
        ClockSkew = 301,
        /// <summary>No key is configured for the serial / key version presented.</summary>
        UnknownKeySerial = 302,
        /// <summary>Decryption failed.</summary>
        DecryptFailed = 303,
        /// <summary>A plaintext is longer than the encryption scheme allows.</summary>
        PlaintextTooLong = 304,
        /// <summary>Connection, DNS or TLS failure.</summary>
        Transport = 400,
        /// <summary>A connect or read timeout elapsed.</summary>
        Timeout = 401,
        /// <summary>The peer answered with an unexpected HTTP status.</summary>
        HttpStatus = 402,
        /// <summary>The peer's answer broke the protocol.</summary>
        Protocol = 403,
        /// <summary>The platform refused the request for good (Alipay+ <c>F</c>, WeChat Pay 4xx).</summary>
        RemoteFailed = 500,
        /// <summary>The outcome is unknown (Alipay+ <c>U</c>): retry later with the same request.</summary>
        RemoteUnknown = 501,
    }

    /// <summary>
    /// A failed cardbridge call: the result code and everything the native error object said.
    /// Text properties the error does not carry are <c>null</c>.
    /// </summary>
    public class CardbridgeException : Exception
    {
        /// <summary>Creates an exception from its parts (normally built by the library itself).</summary>
        public CardbridgeException(ResultCode code, string resultName, string message, string field = null,
            string limit = null, string remoteCode = null, string remoteMessage = null, string remoteStatus = null,
            string remoteDetail = null, int httpStatus = 0)
            : base(message)
        {
            Code = code;
            ResultName = resultName;
            Field = field;
            Limit = limit;
            RemoteCode = remoteCode;
            RemoteMessage = remoteMessage;
            RemoteStatus = remoteStatus;
            RemoteDetail = remoteDetail;
            HttpStatus = httpStatus;
        }

        /// <summary>The native result code.</summary>
        public ResultCode Code { get; private set; }

        /// <summary>The result code's C name, e.g. <c>CARDBRIDGE_RESULT_VALIDATION</c>.</summary>
        public string ResultName { get; private set; }

        /// <summary>The field path (e.g. <c>issueCard.appId</c>) or the parameter name, if any.</summary>
        public string Field { get; private set; }

        /// <summary>The limit that was broken, as text (e.g. <c>64</c>), if any.</summary>
        public string Limit { get; private set; }

        /// <summary>The platform's result code (Alipay+ <c>resultCode</c>, WeChat Pay <c>code</c>), if the platform answered.</summary>
        public string RemoteCode { get; private set; }

        /// <summary>The platform's message (Alipay+ <c>resultMessage</c>, WeChat Pay <c>message</c>), if any.</summary>
        public string RemoteMessage { get; private set; }

        /// <summary>The platform's result status (Alipay+ <c>S</c>, <c>F</c> or <c>U</c>), if any.</summary>
        public string RemoteStatus { get; private set; }

        /// <summary>The platform's extra detail (raw JSON text), if any.</summary>
        public string RemoteDetail { get; private set; }

        /// <summary>The HTTP status of the platform answer behind the error, or 0.</summary>
        public int HttpStatus { get; private set; }

        /// <summary>
        /// Builds the exception for an owned native <c>cardbridge_error *</c>: reads every
        /// accessor, then frees the error in <c>finally</c>, whatever happens.
        /// </summary>
        internal static CardbridgeException FromOwnedError(IntPtr error)
        {
            return FromOwnedError(error, ResultCode.Internal);
        }

        /// <summary>As <see cref="FromOwnedError(IntPtr)"/>; <paramref name="fallback"/> is the
        /// code used when <paramref name="error"/> is NULL (no detail was produced).</summary>
        internal static unsafe CardbridgeException FromOwnedError(IntPtr error, ResultCode fallback)
        {
            if (error == IntPtr.Zero)
            {
                return Create(fallback, NameOf(fallback), "cardbridge call failed with " + NameOf(fallback),
                    null, null, null, null, null, null, 0);
            }
            try
            {
                var code = (ResultCode)NativeMethods.cardbridge_error_code(error);
                var created = Create(code, NameOf(code), Text(NativeMethods.cardbridge_error_message, error) ?? NameOf(code),
                    Text(NativeMethods.cardbridge_error_field, error), Text(NativeMethods.cardbridge_error_limit, error),
                    Text(NativeMethods.cardbridge_error_remote_code, error),
                    Text(NativeMethods.cardbridge_error_remote_message, error),
                    Text(NativeMethods.cardbridge_error_remote_status, error),
                    Text(NativeMethods.cardbridge_error_remote_detail, error),
                    NativeMethods.cardbridge_error_http_status(error));
                var unknown = created as RemoteUnknownException;
                if (unknown != null)
                {
                    unknown.OutboxId = Text(NativeMethods.cardbridge_error_outbox_id, error);
                    unknown.Attempts = NativeMethods.cardbridge_error_attempts(error);
                    var requestId = Text(NativeMethods.cardbridge_error_request_id, error);
                    unknown.RequestId = string.IsNullOrEmpty(requestId) ? null : requestId;
                }
                return created;
            }
            finally
            {
                NativeMethods.cardbridge_error_free(error);
            }
        }

        /// <summary>Throws the exception for a failed call, or does nothing when <paramref name="rc"/> is OK.</summary>
        internal static void Check(uint rc, IntPtr error)
        {
            if (rc != 0)
            {
                throw FromOwnedError(error, (ResultCode)rc);
            }
        }

        /// <summary>The C name of a code, e.g. <c>CARDBRIDGE_RESULT_OK</c> (static native text).</summary>
        internal static string NameOf(ResultCode code)
        {
            return Utf8.FromCString(NativeMethods.cardbridge_result_name((uint)code));
        }

        private unsafe delegate uint TextAccessor(IntPtr err, byte* buf, UIntPtr len, out UIntPtr outN);

        /// <summary>One text accessor: size query, then the copy. Empty text reads as null.</summary>
        private static unsafe string Text(TextAccessor accessor, IntPtr error)
        {
            UIntPtr needed;
            if (accessor(error, null, UIntPtr.Zero, out needed) != (uint)ResultCode.InsufficientSize)
            {
                return null;
            }
            var buf = new byte[checked((int)needed.ToUInt64())];
            UIntPtr written;
            uint rc;
            fixed (byte* p = buf)
            {
                rc = accessor(error, p, (UIntPtr)buf.Length, out written);
                if (rc != 0 || written.ToUInt64() == 0)
                {
                    return null;
                }
                return Utf8.Decode(p, written);
            }
        }

        private static CardbridgeException Create(ResultCode code, string name, string message, string field,
            string limit, string remoteCode, string remoteMessage, string remoteStatus, string remoteDetail,
            int httpStatus)
        {
            switch (code)
            {
                case ResultCode.NullParameter:
                case ResultCode.InvalidParameter:
                case ResultCode.InvalidUtf8:
                    return new CardbridgeArgumentException(code, name, message, field, limit);
                case ResultCode.Panic:
                    return new PanicException(code, name, message);
                case ResultCode.AlreadyUsed:
                    return new AlreadyUsedException(code, name, message, field);
                case ResultCode.Internal:
                    return new CardbridgeInternalException(code, name, message);
                case ResultCode.InvalidConfig:
                case ResultCode.UnsupportedAlgorithm:
                    return new ConfigurationException(code, name, message, field, limit);
                case ResultCode.InvalidKey:
                    return new InvalidKeyException(code, name, message, field, limit);
                case ResultCode.Validation:
                    return new ValidationException(code, name, message, field, limit);
                case ResultCode.InvalidJson:
                    return new InvalidJsonException(code, name, message, field, limit);
                case ResultCode.IdempotencyConflict:
                    return new IdempotencyConflictException(code, name, message, field);
                case ResultCode.ClaimLost:
                    return new ClaimLostException(code, name, message);
                case ResultCode.SignatureInvalid:
                    return new SignatureException(code, name, message, field);
                case ResultCode.ClockSkew:
                    return new ClockSkewException(code, name, message, field);
                case ResultCode.UnknownKeySerial:
                    return new UnknownKeySerialException(code, name, message, field);
                case ResultCode.DecryptFailed:
                case ResultCode.PlaintextTooLong:
                    return new DecryptException(code, name, message, field, limit);
                case ResultCode.Transport:
                    return new TransportException(code, name, message, httpStatus);
                case ResultCode.Timeout:
                    return new CardbridgeTimeoutException(code, name, message, httpStatus);
                case ResultCode.HttpStatus:
                case ResultCode.Protocol:
                    return new ProtocolException(code, name, message, remoteCode, remoteMessage, remoteStatus,
                        remoteDetail, httpStatus);
                case ResultCode.RemoteFailed:
                    return new RemoteFailedException(code, name, message, remoteCode, remoteMessage, remoteStatus,
                        remoteDetail, httpStatus);
                case ResultCode.RemoteUnknown:
                    return new RemoteUnknownException(code, name, message, remoteCode, remoteMessage, remoteStatus,
                        remoteDetail, httpStatus);
                default:
                    return new CardbridgeException(code, name, message, field, limit, remoteCode, remoteMessage,
                        remoteStatus, remoteDetail, httpStatus);
            }
        }
    }

    /// <summary>An argument the library refused (<c>NULL_PARAMETER</c>, <c>INVALID_PARAMETER</c>,
    /// <c>INVALID_UTF8</c>); <see cref="CardbridgeException.Field"/> names it.</summary>
    public class CardbridgeArgumentException : CardbridgeException
    {
        internal CardbridgeArgumentException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>A panic was caught inside the native library (<c>PANIC</c>); the process is
    /// intact, but dispose the objects involved and do not reuse them.</summary>
    public class PanicException : CardbridgeException
    {
        internal PanicException(ResultCode code, string name, string message) : base(code, name, message)
        {
        }
    }

    /// <summary>An object was used after it was finished or consumed (<c>ALREADY_USED</c>),
    /// e.g. a <see cref="Call"/> or an <see cref="Event"/> finished twice.</summary>
    public class AlreadyUsedException : CardbridgeException
    {
        internal AlreadyUsedException(ResultCode code, string name, string message, string field)
            : base(code, name, message, field)
        {
        }
    }

    /// <summary>An internal failure (<c>INTERNAL</c>), e.g. the store could not be written.</summary>
    public class CardbridgeInternalException : CardbridgeException
    {
        internal CardbridgeInternalException(ResultCode code, string name, string message) : base(code, name, message)
        {
        }
    }

    /// <summary>Configuration is incomplete or inconsistent (<c>INVALID_CONFIG</c>,
    /// <c>UNSUPPORTED_ALGORITHM</c>).</summary>
    public class ConfigurationException : CardbridgeException
    {
        internal ConfigurationException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>A key could not be parsed or is too weak (<c>INVALID_KEY</c>).</summary>
    public class InvalidKeyException : ConfigurationException
    {
        internal InvalidKeyException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>A payload field broke a documented rule (<c>VALIDATION</c>):
    /// <see cref="CardbridgeException.Field"/> is the path, <see cref="CardbridgeException.Limit"/> the limit.</summary>
    public class ValidationException : CardbridgeException
    {
        internal ValidationException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>A payload was not valid JSON or not of the expected shape (<c>INVALID_JSON</c>).</summary>
    public class InvalidJsonException : ValidationException
    {
        internal InvalidJsonException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>The requestId was already used with a different body (<c>IDEMPOTENCY_CONFLICT</c>).</summary>
    public class IdempotencyConflictException : CardbridgeException
    {
        internal IdempotencyConflictException(ResultCode code, string name, string message, string field)
            : base(code, name, message, field)
        {
        }
    }

    /// <summary>This call's claim expired and another delivery of the same key took it over
    /// (<c>CLAIM_LOST</c>): nothing was stored; answer "retry later".</summary>
    public class ClaimLostException : CardbridgeException
    {
        internal ClaimLostException(ResultCode code, string name, string message) : base(code, name, message)
        {
        }
    }

    /// <summary>A signature was missing, malformed or did not verify (<c>SIGNATURE_INVALID</c>).</summary>
    public class SignatureException : CardbridgeException
    {
        internal SignatureException(ResultCode code, string name, string message, string field)
            : base(code, name, message, field)
        {
        }
    }

    /// <summary>A timestamp was outside the accepted window (<c>CLOCK_SKEW</c>).</summary>
    public class ClockSkewException : CardbridgeException
    {
        internal ClockSkewException(ResultCode code, string name, string message, string field)
            : base(code, name, message, field)
        {
        }
    }

    /// <summary>No key is configured for the key version presented (<c>UNKNOWN_KEY_SERIAL</c>).</summary>
    public class UnknownKeySerialException : CardbridgeException
    {
        internal UnknownKeySerialException(ResultCode code, string name, string message, string field)
            : base(code, name, message, field)
        {
        }
    }

    /// <summary>Decryption failed or a plaintext is too long (<c>DECRYPT_FAILED</c>,
    /// <c>PLAINTEXT_TOO_LONG</c>).</summary>
    public class DecryptException : CardbridgeException
    {
        internal DecryptException(ResultCode code, string name, string message, string field, string limit)
            : base(code, name, message, field, limit)
        {
        }
    }

    /// <summary>Connection, DNS or TLS failure (<c>TRANSPORT</c>); base of the transport group.</summary>
    public class TransportException : CardbridgeException
    {
        internal TransportException(ResultCode code, string name, string message, int httpStatus,
            string remoteCode = null, string remoteMessage = null, string remoteStatus = null,
            string remoteDetail = null)
            : base(code, name, message, null, null, remoteCode, remoteMessage, remoteStatus, remoteDetail, httpStatus)
        {
        }
    }

    /// <summary>A connect or read timeout elapsed (<c>TIMEOUT</c>).</summary>
    public class CardbridgeTimeoutException : TransportException
    {
        internal CardbridgeTimeoutException(ResultCode code, string name, string message, int httpStatus)
            : base(code, name, message, httpStatus)
        {
        }
    }

    /// <summary>The peer answered with an unexpected HTTP status or broke the protocol
    /// (<c>HTTP_STATUS</c>, <c>PROTOCOL</c>).</summary>
    public class ProtocolException : TransportException
    {
        internal ProtocolException(ResultCode code, string name, string message, string remoteCode,
            string remoteMessage, string remoteStatus, string remoteDetail, int httpStatus)
            : base(code, name, message, httpStatus, remoteCode, remoteMessage, remoteStatus, remoteDetail)
        {
        }
    }

    /// <summary>The platform refused the request for good (<c>REMOTE_FAILED</c>, Alipay+ <c>F</c>, WeChat Pay 4xx);
    /// <see cref="CardbridgeException.RemoteCode"/> and <see cref="CardbridgeException.RemoteMessage"/> say why.</summary>
    public class RemoteFailedException : CardbridgeException
    {
        internal RemoteFailedException(ResultCode code, string name, string message, string remoteCode,
            string remoteMessage, string remoteStatus, string remoteDetail, int httpStatus)
            : base(code, name, message, null, null, remoteCode, remoteMessage, remoteStatus, remoteDetail, httpStatus)
        {
        }
    }

    /// <summary>No definite answer within the retry budget (<c>REMOTE_UNKNOWN</c>, Alipay+ <c>U</c>):
    /// call again later with the same request, or use <see cref="AlipayPlus.ResumePending"/> /
    /// <see cref="WechatPay.ResumePending"/>.</summary>
    public class RemoteUnknownException : CardbridgeException
    {
        internal RemoteUnknownException(ResultCode code, string name, string message, string remoteCode,
            string remoteMessage, string remoteStatus, string remoteDetail, int httpStatus)
            : base(code, name, message, null, null, remoteCode, remoteMessage, remoteStatus, remoteDetail, httpStatus)
        {
        }

        /// <summary>The outbox id of the request left pending: what <c>Resume</c> and
        /// <c>cardbridge outbox show</c> take; null when nothing was stored.</summary>
        public string OutboxId { get; internal set; }

        /// <summary>How many attempts the pending request has had so far.</summary>
        public uint Attempts { get; internal set; }

        /// <summary>The Alipay+ <c>requestId</c> of the pending <c>issueCard</c> (call again with the same
        /// request to get its outcome); null for WeChat Pay calls.</summary>
        public string RequestId { get; internal set; }
    }
}
