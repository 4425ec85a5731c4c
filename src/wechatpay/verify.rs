//! Verification of WeChat Pay responses and callbacks (`wechatpay-card-member.md` §7).
//!
//! Message: `TIMESTAMP\nNONCE\nBODY\n` over the raw body bytes (an empty body
//! leaves the last line empty), RSA-SHA256, key chosen by `Wechatpay-Serial`
//! from a [`KeyRing`]. Checks run in the order of §3.7: headers, signature
//! type, clock skew (|now − ts| > 300 s rejected), key, signature.
//!
//! Failures are a [`VerifyFailure`] carrying the reason and whether the
//! signature was a `WECHATPAY/SIGNTEST/` probe, so a callback handler can log
//! probes while answering them like any other bad signature.

use super::keyring::KeyRing;
use super::sign::SCHEME;
use crate::crypto::{b64_decode_strict, rsa};
use crate::error::{Error, ErrorKind};
use crate::http::{Header, find_header};
use std::fmt;

/// Header carrying the Unix timestamp.
pub const HEADER_TIMESTAMP: &str = "Wechatpay-Timestamp";
/// Header carrying the nonce.
pub const HEADER_NONCE: &str = "Wechatpay-Nonce";
/// Header carrying the Base64 signature.
pub const HEADER_SIGNATURE: &str = "Wechatpay-Signature";
/// Header naming the key: `PUB_KEY_ID_…` or a platform certificate serial.
pub const HEADER_SERIAL: &str = "Wechatpay-Serial";
/// Header naming the signature scheme.
pub const HEADER_SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";

/// Largest accepted |now − Wechatpay-Timestamp|, in seconds (300 itself passes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Prefix of WeChat's deliberate probe signatures (§7.4).
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The exact bytes WeChat Pay signs.
pub fn message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out
}

/// Verification settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Refuse messages without `Wechatpay-Signature-Type` (a present header
    /// must always be `WECHATPAY2-SHA256-RSA2048`). Off: tolerated (§7.2).
    pub require_signature_type: bool,
}

/// Why verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyReason {
    /// A required `Wechatpay-*` header is missing or empty.
    HeaderMissing,
    /// `Wechatpay-Signature-Type` is not `WECHATPAY2-SHA256-RSA2048`.
    UnsupportedSignatureType,
    /// `Wechatpay-Timestamp` is not a decimal Unix time in range.
    BadTimestamp,
    /// The timestamp is more than 300 s away from now.
    ClockSkew,
    /// No usable key for `Wechatpay-Serial`.
    UnknownSerial,
    /// The signature is not valid Base64.
    BadEncoding,
    /// The signature does not match the message.
    Mismatch,
}

impl VerifyReason {
    /// Stable reason code for logs, e.g. `clock_skew`.
    pub fn code(self) -> &'static str {
        match self {
            VerifyReason::HeaderMissing => "header_missing",
            VerifyReason::UnsupportedSignatureType => "unsupported_signature_type",
            VerifyReason::BadTimestamp => "bad_timestamp",
            VerifyReason::ClockSkew => "clock_skew",
            VerifyReason::UnknownSerial => "unknown_serial",
            VerifyReason::BadEncoding => "bad_encoding",
            VerifyReason::Mismatch => "mismatch",
        }
    }

    /// The crate error kind: `ClockSkew` for timestamp problems,
    /// `UnknownKeySerial` for key lookup, `SignatureInvalid` otherwise.
    pub fn kind(self) -> ErrorKind {
        match self {
            VerifyReason::BadTimestamp | VerifyReason::ClockSkew => ErrorKind::ClockSkew,
            VerifyReason::UnknownSerial => ErrorKind::UnknownKeySerial,
            _ => ErrorKind::SignatureInvalid,
        }
    }
}

/// A failed verification: the reason, a message without secrets, and
/// whether the signature carried the `WECHATPAY/SIGNTEST/` probe prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// Why it failed.
    pub reason: VerifyReason,
    /// `true` when `Wechatpay-Signature` starts with `WECHATPAY/SIGNTEST/`.
    pub probe: bool,
    /// Human-readable detail (header names, serial, skew), for logs.
    pub detail: String,
}

impl VerifyFailure {
    /// The crate error: kind from [`VerifyReason::kind`], message naming the
    /// reason code and, for probes, the probe prefix.
    pub fn to_error(&self) -> Error {
        Error::new(self.reason.kind(), self.to_string())
    }
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WeChat Pay signature verification failed ({}): {}",
            self.reason.code(),
            self.detail
        )?;
        if self.probe {
            write!(f, " [signature probe {PROBE_PREFIX}]")?;
        }
        Ok(())
    }
}

impl From<VerifyFailure> for Error {
    fn from(f: VerifyFailure) -> Error {
        f.to_error()
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `Wechatpay-Serial` as received (key ID or certificate serial).
    pub serial: String,
    /// `Wechatpay-Timestamp`, Unix seconds.
    pub timestamp: i64,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
}

/// Parses a strictly decimal Unix time: ASCII digits only, at most 19 of them,
/// no sign or whitespace, fitting an `i64`.
fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Verifies `body` (raw bytes) against the `Wechatpay-*` headers (names
/// matched case-insensitively) with a key from `keys`, at Unix time `now`.
pub fn verify(
    keys: &KeyRing,
    headers: &[Header],
    body: &[u8],
    now: i64,
    options: VerifyOptions,
) -> Result<Verified, VerifyFailure> {
    let signature = find_header(headers, HEADER_SIGNATURE).filter(|s| !s.is_empty());
    let probe = signature.is_some_and(|s| s.starts_with(PROBE_PREFIX));
    let fail = |reason, detail: String| VerifyFailure { reason, probe, detail };
    let required = |name: &str| {
        find_header(headers, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(VerifyReason::HeaderMissing, format!("{name} header missing or empty")))
    };
    let ts_text = required(HEADER_TIMESTAMP)?;
    let nonce = required(HEADER_NONCE)?;
    let signature = required(HEADER_SIGNATURE)?;
    let serial = required(HEADER_SERIAL)?;

    match find_header(headers, HEADER_SIGNATURE_TYPE) {
        Some(t) if t == SCHEME => {}
        Some(_) => {
            return Err(fail(
                VerifyReason::UnsupportedSignatureType,
                format!("{HEADER_SIGNATURE_TYPE} must be {SCHEME}"),
            ));
        }
        None if options.require_signature_type => {
            return Err(fail(
                VerifyReason::HeaderMissing,
                format!("{HEADER_SIGNATURE_TYPE} header missing"),
            ));
        }
        None => {}
    }

    let timestamp = parse_timestamp(ts_text).ok_or_else(|| {
        fail(
            VerifyReason::BadTimestamp,
            format!("{HEADER_TIMESTAMP} is not a decimal Unix time"),
        )
    })?;
    let skew = i128::from(now) - i128::from(timestamp);
    if skew.abs() > i128::from(MAX_CLOCK_SKEW_SECS) {
        return Err(fail(
            VerifyReason::ClockSkew,
            format!("{HEADER_TIMESTAMP} is {skew} s away from now; at most {MAX_CLOCK_SKEW_SECS} s allowed"),
        ));
    }

    let key = keys
        .verification_key(serial, now)
        .map_err(|e| fail(VerifyReason::UnknownSerial, e.message().to_string()))?;
    let raw = b64_decode_strict(signature).ok_or_else(|| {
        fail(
            VerifyReason::BadEncoding,
            format!("{HEADER_SIGNATURE} is not valid Base64"),
        )
    })?;
    if !rsa::verify_sha256(key, &message(ts_text, nonce, body), &raw) {
        return Err(fail(
            VerifyReason::Mismatch,
            "signature does not match the message".to_string(),
        ));
    }
    Ok(Verified {
        serial: serial.to_string(),
        timestamp,
        nonce: nonce.to_string(),
    })
}
