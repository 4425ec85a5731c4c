//! The error model shared by every module and by the C ABI.
//!
//! Each [`ErrorKind`] has a stable number (see `ffi-conventions.md` §3.1); the
//! C enum `cardbridge_result` uses the same numbers. Numbers are never reused.

use std::fmt;

/// What went wrong, with the stable numeric code used across the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// A required pointer was NULL (C ABI only).
    NullParameter = 1,
    /// An argument is out of its allowed domain.
    InvalidParameter = 2,
    /// A caller-provided buffer is too small.
    InsufficientSize = 3,
    /// A panic was caught at the C boundary.
    Panic = 4,
    /// An object was used after a consuming call took it.
    AlreadyUsed = 5,
    /// Text input was not UTF-8.
    InvalidUtf8 = 6,
    /// An internal invariant failed (store I/O, poisoned lock, ...).
    Internal = 7,
    /// Configuration is incomplete or inconsistent.
    InvalidConfig = 100,
    /// A key could not be parsed or is too weak.
    InvalidKey = 101,
    /// An algorithm we do not implement was requested.
    UnsupportedAlgorithm = 102,
    /// A payload field broke a documented rule; `field` and `limit` say which.
    Validation = 200,
    /// A payload was not valid JSON or not of the expected shape.
    InvalidJson = 201,
    /// The idempotency key was already used with a different payload.
    IdempotencyConflict = 202,
    /// This call's claim expired and another delivery of the same key took it
    /// over and has not decided yet: nothing was stored; answer "retry later".
    ClaimLost = 203,
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
    /// Connection, DNS or TLS failure.
    Transport = 400,
    /// A connect or read timeout elapsed.
    Timeout = 401,
    /// The peer answered with an unexpected HTTP status.
    HttpStatus = 402,
    /// The peer's answer broke the protocol (unparsable, missing fields).
    Protocol = 403,
    /// The platform refused the request for good (Alipay+ `F`, WeChat 4xx).
    RemoteFailed = 500,
    /// The outcome is unknown: retry later with the same idempotency key.
    RemoteUnknown = 501,
}

impl ErrorKind {
    /// Every kind, in numeric order (used by tests and the name table).
    pub const ALL: [ErrorKind; 25] = [
        ErrorKind::NullParameter,
        ErrorKind::InvalidParameter,
        ErrorKind::InsufficientSize,
        ErrorKind::Panic,
        ErrorKind::AlreadyUsed,
        ErrorKind::InvalidUtf8,
        ErrorKind::Internal,
        ErrorKind::InvalidConfig,
        ErrorKind::InvalidKey,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::Validation,
        ErrorKind::InvalidJson,
        ErrorKind::IdempotencyConflict,
        ErrorKind::ClaimLost,
        ErrorKind::SignatureInvalid,
        ErrorKind::ClockSkew,
        ErrorKind::UnknownKeySerial,
        ErrorKind::DecryptFailed,
        ErrorKind::PlaintextTooLong,
        ErrorKind::Transport,
        ErrorKind::Timeout,
        ErrorKind::HttpStatus,
        ErrorKind::Protocol,
        ErrorKind::RemoteFailed,
        ErrorKind::RemoteUnknown,
    ];

    /// The stable numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The kind for a numeric code, if it is one of ours.
    pub fn from_code(code: u32) -> Option<ErrorKind> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The constant-style name, e.g. `VALIDATION`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NullParameter => "NULL_PARAMETER",
            ErrorKind::InvalidParameter => "INVALID_PARAMETER",
            ErrorKind::InsufficientSize => "INSUFFICIENT_SIZE",
            ErrorKind::Panic => "PANIC",
            ErrorKind::AlreadyUsed => "ALREADY_USED",
            ErrorKind::InvalidUtf8 => "INVALID_UTF8",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::InvalidKey => "INVALID_KEY",
            ErrorKind::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            ErrorKind::Validation => "VALIDATION",
            ErrorKind::InvalidJson => "INVALID_JSON",
            ErrorKind::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            ErrorKind::ClaimLost => "CLAIM_LOST",
            ErrorKind::SignatureInvalid => "SIGNATURE_INVALID",
            ErrorKind::ClockSkew => "CLOCK_SKEW",
            ErrorKind::UnknownKeySerial => "UNKNOWN_KEY_SERIAL",
            ErrorKind::DecryptFailed => "DECRYPT_FAILED",
            ErrorKind::PlaintextTooLong => "PLAINTEXT_TOO_LONG",
            ErrorKind::Transport => "TRANSPORT",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::HttpStatus => "HTTP_STATUS",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::RemoteFailed => "REMOTE_FAILED",
            ErrorKind::RemoteUnknown => "REMOTE_UNKNOWN",
        }
    }
}

/// What the remote platform said, when an error comes from its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteDetail {
    /// Alipay+ `resultCode` or WeChat `code`.
    pub code: String,
    /// Alipay+ `resultMessage` or WeChat `message`.
    pub message: String,
    /// Alipay+ `resultStatus` (`S`/`F`/`U`), empty for WeChat.
    pub status: String,
    /// HTTP status of the answer, 0 when there was none.
    pub http_status: u16,
    /// WeChat `detail` as raw JSON text, empty when absent; for an Alipay+
    /// refusal cardbridge diagnosed, `{"cardbridge_diagnosis": {…}}`.
    pub detail: String,
}

/// Where an outbound request stands when its outcome is unknown
/// ([`ErrorKind::RemoteUnknown`]): it stays in the outbox under this id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PendingDetail {
    /// The outbox id (idempotency key) to resume or look up.
    pub outbox_id: String,
    /// Attempts recorded for the entry so far (all calls together).
    pub attempts: u32,
    /// HTTP status of the last answer, 0 when none arrived.
    pub last_status: u16,
    /// The Alipay+ `requestId` of an `issueCard` (what to repeat); empty
    /// otherwise (a WeChat confirm's outbox id names its card instead).
    pub request_id: String,
}

/// An error with its kind, a human message and, where relevant, the field
/// path, the limit that was broken and what the platform answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    limit: Option<String>,
    remote: Option<Box<RemoteDetail>>,
    pending: Option<Box<PendingDetail>>,
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            field: None,
            limit: None,
            remote: None,
            pending: None,
        }
    }

    /// A validation error: `path: rule`, with the limit kept separately.
    ///
    /// `validation("issueCard.appId", "must be at most 32 characters", Some("32"))`
    /// reads `issueCard.appId: must be at most 32 characters`.
    pub fn validation(path: impl Into<String>, rule: impl AsRef<str>, limit: Option<String>) -> Self {
        let path = path.into();
        Error {
            kind: ErrorKind::Validation,
            message: format!("{path}: {}", rule.as_ref()),
            field: Some(path),
            limit,
            remote: None,
            pending: None,
        }
    }

    /// Adds the platform's answer to the error.
    pub fn with_remote(mut self, remote: RemoteDetail) -> Self {
        self.remote = Some(Box::new(remote));
        self
    }

    /// Adds where the pending outbound request stands.
    pub fn with_pending(mut self, pending: PendingDetail) -> Self {
        self.pending = Some(Box::new(pending));
        self
    }

    /// Names the `requestId` of the pending request, if this error has one.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        if let Some(p) = &mut self.pending {
            p.request_id = request_id.to_string();
        }
        self
    }

    /// Adds a field path to a non-validation error (e.g. a JSON error).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the limit that was broken (as text).
    pub(crate) fn with_limit(mut self, limit: Option<String>) -> Self {
        self.limit = limit;
        self
    }

    /// The kind, whose `code()` is stable.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The human-readable message; never contains keys or personal data.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The field path, for validation errors.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
    /// The limit that was broken, as text (e.g. `64`), for validation errors.
    pub fn limit(&self) -> Option<&str> {
        self.limit.as_deref()
    }
    /// The platform's answer, for remote errors.
    pub fn remote(&self) -> Option<&RemoteDetail> {
        self.remote.as_deref()
    }
    /// Where the outbound request stands, for [`ErrorKind::RemoteUnknown`].
    pub fn pending(&self) -> Option<&PendingDetail> {
        self.pending.as_deref()
    }

    pub(crate) fn internal(context: &str, err: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Internal, format!("{context}: {err}"))
    }
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }
}

/// The message alone: remote errors already state the platform's answer in it,
/// and the structured parts are available through the accessors.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert_eq!(ErrorKind::from_code(k.code()), Some(k));
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(9999), None);
        assert_eq!(ErrorKind::Validation.code(), 200);
        assert_eq!(ErrorKind::RemoteUnknown.code(), 501);
    }

    #[test]
    fn validation_message_names_path_and_rule() {
        let e = Error::validation(
            "issueCard.cardFields[3].fieldCode",
            "must not contain '@', '#' or '?'",
            None,
        );
        assert_eq!(
            e.message(),
            "issueCard.cardFields[3].fieldCode: must not contain '@', '#' or '?'"
        );
        assert_eq!(e.field(), Some("issueCard.cardFields[3].fieldCode"));
        assert_eq!(e.kind(), ErrorKind::Validation);
    }
}
