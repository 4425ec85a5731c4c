//! Result codes and the owned error object (`ffi-conventions.md` §3.1, §3.2).

use crate::error::{Error, ErrorKind};
use crate::ffi::bytes::write_text_to_buffer;
use crate::ffi::handle::{Castable, OutParam, OwnershipBox, free_box};
use std::ffi::{CStr, c_char};

/// Result of every fallible function. `CARDBRIDGE_RESULT_OK` is 0, so C can
/// write `if (rc) { ... }`.
///
/// The numbers are stable: they are never renumbered or reused, and new codes
/// are only appended inside their range (1–99 ABI, 100–199 configuration,
/// 200–299 validation, 300–399 crypto, 400–499 transport, 500–599 remote
/// outcome). Unknown numbers received from C read as
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum cardbridge_result {
    /// Success.
    Ok = 0,
    // 1–99: ABI
    /// A required pointer was NULL; the error's field names the parameter.
    NullParameter = 1,
    /// An argument is out of its allowed domain.
    InvalidParameter = 2,
    /// A caller-provided buffer is too small; the required size was written to `*out_n`.
    InsufficientSize = 3,
    /// A panic was caught inside the library; free the handles involved and do not reuse them.
    Panic = 4,
    /// An object was used after a consuming call took it.
    AlreadyUsed = 5,
    /// Text input was not UTF-8.
    InvalidUtf8 = 6,
    /// An internal invariant failed (store I/O, poisoned lock, ...).
    Internal = 7,
    // 100–199: configuration
    /// Configuration is incomplete or inconsistent.
    InvalidConfig = 100,
    /// A key could not be parsed or is too weak.
    InvalidKey = 101,
    /// An algorithm the library does not implement was requested.
    UnsupportedAlgorithm = 102,
    // 200–299: validation
    /// A payload field broke a documented rule; the error carries the field path and the limit.
    Validation = 200,
    /// A payload was not valid JSON or not of the expected shape.
    InvalidJson = 201,
    /// The idempotency key was already used with a different payload.
    IdempotencyConflict = 202,
    /// This call's claim expired and another delivery of the same key is being decided:
    /// nothing was stored; answer "retry later" (Alipay+ `finish_unknown`, WeChat redeliver).
    ClaimLost = 203,
    // 300–399: crypto
    /// A signature was missing, malformed or did not verify.
    SignatureInvalid = 300,
    /// A timestamp was outside the accepted window.
    ClockSkew = 301,
    /// No key is configured for the serial / key version presented.
    UnknownKeySerial = 302,
    /// Decryption failed (wrong key, tag mismatch, bad encoding).
    DecryptFailed = 303,
    /// A plaintext is longer than the encryption scheme allows.
    PlaintextTooLong = 304,
    // 400–499: transport
    /// Connection, DNS or TLS failure.
    Transport = 400,
    /// A connect or read timeout elapsed.
    Timeout = 401,
    /// The peer answered with an unexpected HTTP status.
    HttpStatus = 402,
    /// The peer's answer broke the protocol (unparsable, missing fields).
    Protocol = 403,
    // 500–599: remote outcome
    /// The platform refused the request for good (Alipay+ `F`, WeChat non-retryable 4xx).
    RemoteFailed = 500,
    /// The outcome is unknown (Alipay+ `U`): retry later with the same idempotency key.
    RemoteUnknown = 501,
}

impl From<ErrorKind> for cardbridge_result {
    fn from(kind: ErrorKind) -> Self {
        // Exhaustive on purpose: a new ErrorKind does not compile until it has a C code.
        match kind {
            ErrorKind::NullParameter => cardbridge_result::NullParameter,
            ErrorKind::InvalidParameter => cardbridge_result::InvalidParameter,
            ErrorKind::InsufficientSize => cardbridge_result::InsufficientSize,
            ErrorKind::Panic => cardbridge_result::Panic,
            ErrorKind::AlreadyUsed => cardbridge_result::AlreadyUsed,
            ErrorKind::InvalidUtf8 => cardbridge_result::InvalidUtf8,
            ErrorKind::Internal => cardbridge_result::Internal,
            ErrorKind::InvalidConfig => cardbridge_result::InvalidConfig,
            ErrorKind::InvalidKey => cardbridge_result::InvalidKey,
            ErrorKind::UnsupportedAlgorithm => cardbridge_result::UnsupportedAlgorithm,
            ErrorKind::Validation => cardbridge_result::Validation,
            ErrorKind::InvalidJson => cardbridge_result::InvalidJson,
            ErrorKind::IdempotencyConflict => cardbridge_result::IdempotencyConflict,
            ErrorKind::ClaimLost => cardbridge_result::ClaimLost,
            ErrorKind::SignatureInvalid => cardbridge_result::SignatureInvalid,
            ErrorKind::ClockSkew => cardbridge_result::ClockSkew,
            ErrorKind::UnknownKeySerial => cardbridge_result::UnknownKeySerial,
            ErrorKind::DecryptFailed => cardbridge_result::DecryptFailed,
            ErrorKind::PlaintextTooLong => cardbridge_result::PlaintextTooLong,
            ErrorKind::Transport => cardbridge_result::Transport,
            ErrorKind::Timeout => cardbridge_result::Timeout,
            ErrorKind::HttpStatus => cardbridge_result::HttpStatus,
            ErrorKind::Protocol => cardbridge_result::Protocol,
            ErrorKind::RemoteFailed => cardbridge_result::RemoteFailed,
            ErrorKind::RemoteUnknown => cardbridge_result::RemoteUnknown,
        }
    }
}

impl From<u32> for cardbridge_result {
    /// Numbers coming from C; unknown ones map to `InvalidParameter` (never transmuted).
    fn from(code: u32) -> Self {
        match code {
            0 => cardbridge_result::Ok,
            _ => ErrorKind::from_code(code).map_or(cardbridge_result::InvalidParameter, Into::into),
        }
    }
}

impl cardbridge_result {
    /// The C constant name, e.g. `CARDBRIDGE_RESULT_OK`, as a static C string.
    pub fn name(self) -> &'static CStr {
        match self {
            cardbridge_result::Ok => c"CARDBRIDGE_RESULT_OK",
            cardbridge_result::NullParameter => c"CARDBRIDGE_RESULT_NULL_PARAMETER",
            cardbridge_result::InvalidParameter => c"CARDBRIDGE_RESULT_INVALID_PARAMETER",
            cardbridge_result::InsufficientSize => c"CARDBRIDGE_RESULT_INSUFFICIENT_SIZE",
            cardbridge_result::Panic => c"CARDBRIDGE_RESULT_PANIC",
            cardbridge_result::AlreadyUsed => c"CARDBRIDGE_RESULT_ALREADY_USED",
            cardbridge_result::InvalidUtf8 => c"CARDBRIDGE_RESULT_INVALID_UTF8",
            cardbridge_result::Internal => c"CARDBRIDGE_RESULT_INTERNAL",
            cardbridge_result::InvalidConfig => c"CARDBRIDGE_RESULT_INVALID_CONFIG",
            cardbridge_result::InvalidKey => c"CARDBRIDGE_RESULT_INVALID_KEY",
            cardbridge_result::UnsupportedAlgorithm => c"CARDBRIDGE_RESULT_UNSUPPORTED_ALGORITHM",
            cardbridge_result::Validation => c"CARDBRIDGE_RESULT_VALIDATION",
            cardbridge_result::InvalidJson => c"CARDBRIDGE_RESULT_INVALID_JSON",
            cardbridge_result::IdempotencyConflict => c"CARDBRIDGE_RESULT_IDEMPOTENCY_CONFLICT",
            cardbridge_result::ClaimLost => c"CARDBRIDGE_RESULT_CLAIM_LOST",
            cardbridge_result::SignatureInvalid => c"CARDBRIDGE_RESULT_SIGNATURE_INVALID",
            cardbridge_result::ClockSkew => c"CARDBRIDGE_RESULT_CLOCK_SKEW",
            cardbridge_result::UnknownKeySerial => c"CARDBRIDGE_RESULT_UNKNOWN_KEY_SERIAL",
            cardbridge_result::DecryptFailed => c"CARDBRIDGE_RESULT_DECRYPT_FAILED",
            cardbridge_result::PlaintextTooLong => c"CARDBRIDGE_RESULT_PLAINTEXT_TOO_LONG",
            cardbridge_result::Transport => c"CARDBRIDGE_RESULT_TRANSPORT",
            cardbridge_result::Timeout => c"CARDBRIDGE_RESULT_TIMEOUT",
            cardbridge_result::HttpStatus => c"CARDBRIDGE_RESULT_HTTP_STATUS",
            cardbridge_result::Protocol => c"CARDBRIDGE_RESULT_PROTOCOL",
            cardbridge_result::RemoteFailed => c"CARDBRIDGE_RESULT_REMOTE_FAILED",
            cardbridge_result::RemoteUnknown => c"CARDBRIDGE_RESULT_REMOTE_UNKNOWN",
        }
    }
}

/// The constant name of a result code, e.g. `"CARDBRIDGE_RESULT_VALIDATION"`
/// for 200. Unknown codes give `"CARDBRIDGE_RESULT_INVALID_PARAMETER"`.
///
/// Borrowed: the returned string is static and NUL-terminated; never free it.
/// Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_result_name(code: u32) -> *const c_char {
    ffi_boundary!({ cardbridge_result::from(code).name().as_ptr() })
}

/// Detail of a failed call: result code, message and, when relevant, the
/// field path, the broken limit and what the remote platform answered.
///
/// Fallible functions take a trailing `cardbridge_error **error_out`, which
/// may be NULL. On failure, when it is not NULL, `*error_out` receives a new
/// error object (any previous pointer there is overwritten, not freed); on
/// success it is left untouched. Ownership: the caller owns that object and
/// must release it with `cardbridge_error_free`. Error objects are immutable
/// and may be read from several threads at once.
pub struct cardbridge_error {
    _private: [u8; 0],
}

impl Castable for cardbridge_error {
    type Ownership = OwnershipBox;
    type RustType = Error;
}

/// Turns the body result of a fallible export into its return code, storing
/// the error in `*error_out` when the caller asked for it (`ffi_boundary!`
/// calls this; exports do not).
///
/// # Safety
/// `error_out` is NULL or valid for writing one pointer.
pub(crate) unsafe fn set_error_out(
    error_out: *mut *mut cardbridge_error,
    result: crate::Result<()>,
) -> cardbridge_result {
    match result {
        Ok(()) => cardbridge_result::Ok,
        Err(error) => {
            let code = error.kind().into();
            // SAFETY: per the contract above.
            if let Some(out) = unsafe { OutParam::new(error_out) } {
                out.write_box(error);
            }
            code
        }
    }
}

/// The result code of `err`.
///
/// Borrowed: `err` is only read during the call. Returns
/// `CARDBRIDGE_RESULT_NULL_PARAMETER` when `err` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_code(err: *const cardbridge_error) -> cardbridge_result {
    ffi_boundary!({ try_ref!(err).kind().into() })
}

/// Copies the human-readable message of `err` (including what the remote
/// platform said, if anything) into `buf` as UTF-8 followed by a NUL.
///
/// `buf` (`len` bytes, NULL allowed when `len` is 0) is owned by the caller.
/// On `CARDBRIDGE_RESULT_OK`, `*out_n` is the text length without the NUL.
/// On `CARDBRIDGE_RESULT_INSUFFICIENT_SIZE`, `*out_n` is the buffer size
/// needed, NUL included (calling with `len` 0 first gives the size to
/// allocate), and when `len` > 0 `buf` holds as much of the text as fits, cut
/// at a UTF-8 character boundary and NUL-terminated, so a fixed
/// `char text[256]` always receives a readable message. Returns `CARDBRIDGE_RESULT_NULL_PARAMETER`
/// when `err` or `out_n` is NULL, or `buf` is NULL while `len` is not 0.
/// The same buffer convention applies to every `cardbridge_error_*` text accessor.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_message(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({ error_text(err, buf, len, out_n, |e| e.to_string().into()) })
}

/// Copies the field path of `err` (e.g. `registrationFields[3].fieldValue`,
/// or the parameter name for `NULL_PARAMETER`) into `buf`; empty text when the
/// error names no field. Buffer convention as for `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_field(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({ error_text(err, buf, len, out_n, |e| e.field().unwrap_or("").into()) })
}

/// Copies the limit that was broken (e.g. `64`, as text) into `buf`; empty
/// text when there is none. Buffer convention as for `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_limit(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({ error_text(err, buf, len, out_n, |e| e.limit().unwrap_or("").into()) })
}

/// Copies the platform's result code (Alipay+ `resultCode`, WeChat `code`)
/// into `buf`; empty text when the error does not come from a platform
/// answer. Buffer convention as for `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_remote_code(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.remote().map_or("", |r| r.code.as_str()).into()
        })
    })
}

/// Copies the platform's message (Alipay+ `resultMessage`, WeChat `message`)
/// into `buf`; empty text when absent. Buffer convention as for
/// `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_remote_message(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.remote().map_or("", |r| r.message.as_str()).into()
        })
    })
}

/// Copies the platform's result status (Alipay+ `resultStatus`: `S`, `F` or
/// `U`) into `buf`; empty text when absent (always for WeChat). Buffer
/// convention as for `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_remote_status(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.remote().map_or("", |r| r.status.as_str()).into()
        })
    })
}

/// Copies the platform's extra detail (WeChat `detail`, raw JSON text) into
/// `buf`; empty text when absent. A signature refusal cardbridge diagnosed
/// carries `cardbridge_diagnosis` there (Alipay+: `{"cardbridge_diagnosis": …}`):
/// the first differing part of the string-to-sign, the length delta, the
/// likely cause and the platform's clock offset. Buffer convention as for
/// `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_remote_detail(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.remote().map_or("", |r| r.detail.as_str()).into()
        })
    })
}

/// Copies the outbox id of the request a `REMOTE_UNKNOWN` left pending (the
/// argument for `resume`, and what `cardbridge outbox show` takes) into `buf`;
/// empty text for other errors. Buffer convention as for
/// `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_outbox_id(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.pending().map_or("", |p| p.outbox_id.as_str()).into()
        })
    })
}

/// Copies the Alipay+ `requestId` of the `issueCard` a `REMOTE_UNKNOWN` left
/// pending (call again with it to get the outcome) into `buf`; empty text for
/// other errors and for WeChat Pay calls. Buffer convention as for
/// `cardbridge_error_message`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_request_id(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        error_text(err, buf, len, out_n, |e| {
            e.pending().map_or("", |p| p.request_id.as_str()).into()
        })
    })
}

/// How many attempts the request a `REMOTE_UNKNOWN` left pending has had so
/// far; 0 for other errors (or when `err` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_attempts(err: *const cardbridge_error) -> u32 {
    ffi_boundary!({ try_ref!(err).pending().map_or(0, |p| p.attempts) })
}

/// Shared body of the text accessors: `pick` chooses the text, the buffer
/// convention of `cardbridge_error_message` applies.
fn error_text(
    err: *const cardbridge_error,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
    pick: impl FnOnce(&crate::Error) -> std::borrow::Cow<'_, str>,
) -> cardbridge_result {
    let err = try_ref!(err);
    let out_n = try_out!(out_n);
    // SAFETY: the caller provides `buf` valid for `len` bytes.
    unsafe { write_text_to_buffer(&pick(err), buf, len, out_n) }
}

/// The HTTP status of the platform answer behind `err`, or 0 when there was
/// none (or `err` is NULL). Borrowed: `err` is only read during the call.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_http_status(err: *const cardbridge_error) -> u16 {
    ffi_boundary!({ try_ref!(err).remote().map_or(0, |r| r.http_status) })
}

/// Releases an error object. NULL is a no-op.
///
/// Ownership: takes `err`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_error_free(err: *mut cardbridge_error) {
    ffi_boundary!({
        // SAFETY: `err` is NULL or an error object the caller owns and gives up.
        unsafe { free_box(err) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_the_same_number_and_name_in_c() {
        for kind in ErrorKind::ALL {
            let c = cardbridge_result::from(kind);
            assert_eq!(c as u32, kind.code(), "{kind:?}");
            assert_eq!(cardbridge_result::from(kind.code()), c, "{kind:?}");
            assert_eq!(
                c.name().to_str().unwrap(),
                format!("CARDBRIDGE_RESULT_{}", kind.name()),
                "{kind:?}"
            );
        }
        assert_eq!(cardbridge_result::Ok as u32, 0);
        assert_eq!(cardbridge_result::Ok.name(), c"CARDBRIDGE_RESULT_OK");
    }

    #[test]
    fn unknown_codes_read_as_invalid_parameter() {
        for code in [8, 99, 204, 999, u32::MAX] {
            assert_eq!(
                cardbridge_result::from(code),
                cardbridge_result::InvalidParameter,
                "{code}"
            );
        }
    }

    /// Reads one text accessor into a String through the two-call protocol.
    fn read(
        accessor: extern "C" fn(*const cardbridge_error, *mut c_char, usize, *mut usize) -> cardbridge_result,
        err: *const cardbridge_error,
    ) -> String {
        let mut n = 0;
        assert_eq!(
            accessor(err, std::ptr::null_mut(), 0, &mut n),
            cardbridge_result::InsufficientSize
        );
        let mut buf = vec![0 as c_char; n];
        let mut written = usize::MAX;
        assert_eq!(
            accessor(err, buf.as_mut_ptr(), buf.len(), &mut written),
            cardbridge_result::Ok
        );
        assert_eq!(written, n - 1);
        // SAFETY: the accessor NUL-terminated the buffer.
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_string()
    }

    #[test]
    fn accessors_expose_field_limit_and_remote_detail() {
        let remote = crate::error::RemoteDetail {
            code: "PROCESS_FAIL".into(),
            message: "general failure".into(),
            status: "F".into(),
            http_status: 200,
            detail: "{\"a\":1}".into(),
        };
        let e = Error::validation("issueCard.appId", "must be at most 32 characters", Some("32".into()))
            .with_remote(remote);
        let err = crate::ffi::handle::to_box_ptr::<cardbridge_error>(e);
        assert_eq!(cardbridge_error_code(err), cardbridge_result::Validation);
        assert_eq!(read(cardbridge_error_field, err), "issueCard.appId");
        assert_eq!(read(cardbridge_error_limit, err), "32");
        assert_eq!(read(cardbridge_error_remote_code, err), "PROCESS_FAIL");
        assert_eq!(read(cardbridge_error_remote_message, err), "general failure");
        assert_eq!(read(cardbridge_error_remote_status, err), "F");
        assert_eq!(read(cardbridge_error_remote_detail, err), "{\"a\":1}");
        assert_eq!(cardbridge_error_http_status(err), 200);
        assert_eq!(
            read(cardbridge_error_message, err),
            "issueCard.appId: must be at most 32 characters",
            "the message never repeats the platform's answer (it has accessors of its own)"
        );
        cardbridge_error_free(err);

        let plain = crate::ffi::handle::to_box_ptr::<cardbridge_error>(Error::new(ErrorKind::Internal, "x"));
        assert_eq!(read(cardbridge_error_remote_code, plain), "");
        assert_eq!(read(cardbridge_error_limit, plain), "");
        assert_eq!(cardbridge_error_http_status(plain), 0);
        cardbridge_error_free(plain);
    }

    #[test]
    fn header_enum_lists_exactly_ok_and_the_error_kinds() {
        // Catches a C variant without an ErrorKind, which the From impls cannot.
        let header = crate::GENERATED_HEADER;
        let found: Vec<(String, u32)> = header
            .lines()
            .filter_map(|l| l.trim().strip_prefix("CARDBRIDGE_RESULT_"))
            .map(|l| {
                let (name, value) = l.trim_end_matches(',').split_once(" = ").unwrap();
                (name.to_string(), value.parse().unwrap())
            })
            .collect();
        let mut expected: Vec<(String, u32)> = vec![("OK".to_string(), 0)];
        expected.extend(ErrorKind::ALL.iter().map(|k| (k.name().to_string(), k.code())));
        assert_eq!(found, expected);
    }
}
