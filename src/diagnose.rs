//! Why an inbound signature check failed, and what to change (issue 13).
//!
//! The verification itself never changes: a refused call stays refused. When
//! it fails, this module names the check that failed (missing or malformed
//! header, unknown key, clock skew with the measured offset, or a digest
//! mismatch) and then tries the usual reasons a correct platform signature
//! stops verifying on the way to the handler — each as a separate, complete
//! verification of a *variant* of what was received:
//!
//! * the path: the configured public prefix removed, the original
//!   request-target from a proxy header (`X-Original-URI`, `X-Forwarded-Uri`,
//!   `X-Original-URL`, `X-Forwarded-Prefix`), the query string dropped, a
//!   trailing slash added or removed, percent-decoding undone or redone
//!   (Alipay+ only: WeChat Pay does not sign the path);
//! * the body: a UTF-8 byte-order mark removed, line endings changed back
//!   (CRLF ↔ LF), or JSON re-serialised compactly.
//!
//! A variant that verifies is reported with the fix to make. The diagnosis
//! never carries the body, a signature, a header value or personal data: only
//! reason codes, lengths, a SHA-256 digest of the body, the measured offset
//! and which variant verified. The one configuration value it may name is a
//! public path prefix learned from a proxy header, and only when that prefix
//! is a plain path (`[A-Za-z0-9/_.-]`, at most 64 bytes).

use crate::alipayplus::{Config as AlipayConfig, inbound, signature, time::parse_header_time};
use crate::crypto::{b64_decode_strict, rsa, sha256_hex};
use crate::http::{HttpRequest, find_header};
use crate::wechatpay::KeyRing;
use crate::wechatpay::verify::{self, VerifyOptions};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

/// A variant of the received request that made the signature verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    /// Verified with the path as received, without the configured prefix.
    PrefixRemoved,
    /// Verified with the request-target a proxy header carried; `prefix` is
    /// what `inbound_public_prefix` should be (when it is a plain path).
    ProxyHeaderTarget {
        /// The header that carried it, e.g. `X-Original-URI`.
        header: &'static str,
        /// The prefix in front of the membership path, when plain.
        prefix: Option<String>,
    },
    /// Verified without the query string.
    QueryDropped,
    /// Verified with a trailing slash added to the path.
    TrailingSlashAdded,
    /// Verified with the path's trailing slash removed.
    TrailingSlashRemoved,
    /// Verified with the path percent-decoded.
    PercentDecoded,
    /// Verified with the path percent-encoded again.
    PercentEncoded,
    /// Verified with a leading UTF-8 byte-order mark removed from the body.
    BomRemoved,
    /// Verified with the body's CRLF line endings turned back into LF.
    CrlfToLf,
    /// Verified with the body's LF line endings turned back into CRLF.
    LfToCrlf,
    /// Verified with the JSON body serialised compactly again.
    JsonReserialised,
}

impl Variant {
    /// Stable code, e.g. `prefix_removed`.
    pub fn code(&self) -> &'static str {
        match self {
            Variant::PrefixRemoved => "prefix_removed",
            Variant::ProxyHeaderTarget { .. } => "proxy_header_target",
            Variant::QueryDropped => "query_dropped",
            Variant::TrailingSlashAdded => "trailing_slash_added",
            Variant::TrailingSlashRemoved => "trailing_slash_removed",
            Variant::PercentDecoded => "percent_decoded",
            Variant::PercentEncoded => "percent_encoded",
            Variant::BomRemoved => "bom_removed",
            Variant::CrlfToLf => "crlf_to_lf",
            Variant::LfToCrlf => "lf_to_crlf",
            Variant::JsonReserialised => "json_reserialised",
        }
    }

    /// What to change, in one sentence.
    pub fn fix(&self) -> String {
        match self {
            Variant::PrefixRemoved => "the platform signed the path as it reached you: remove \
                 `inbound_public_prefix` from the configuration"
                .into(),
            Variant::ProxyHeaderTarget {
                header,
                prefix: Some(p),
            } => format!(
                "the path was rewritten by a proxy (the original is in {header}): set \
                 `inbound_public_prefix` to \"{p}\""
            ),
            Variant::ProxyHeaderTarget { header, prefix: None } => format!(
                "the path was rewritten by a proxy (the original is in {header}): pass the original \
                 request-target as the request's target"
            ),
            Variant::QueryDropped => "the platform signed the path without a query string: something between \
                 the platform and the handler added one (e.g. a framework routing parameter); pass the \
                 request-target exactly as the platform sent it"
                .into(),
            Variant::TrailingSlashAdded => "a trailing slash was removed on the way (proxy or framework route): \
                 pass the request-target exactly as received"
                .into(),
            Variant::TrailingSlashRemoved => "a trailing slash was added on the way (proxy or framework route): \
                 pass the request-target exactly as received"
                .into(),
            Variant::PercentDecoded => "the path reached the handler percent-encoded differently from what \
                 the platform signed (it signed the decoded form): pass the raw request-target"
                .into(),
            Variant::PercentEncoded => "the path was percent-decoded before it reached the handler: pass the \
                 raw request-target, not the decoded path"
                .into(),
            Variant::BomRemoved => "a UTF-8 byte-order mark was added in front of the body: pass the raw \
                 body bytes"
                .into(),
            Variant::CrlfToLf => "line endings in the body were changed to CRLF on the way: pass the raw body \
                 bytes"
                .into(),
            Variant::LfToCrlf => "CRLF line endings in the body were normalised to LF on the way: pass the raw \
                 body bytes"
                .into(),
            Variant::JsonReserialised => "the JSON body was parsed and serialised again before it reached the \
                 handler: pass the raw body bytes, not a re-encoded object"
                .into(),
        }
    }
}

/// Why an inbound signature check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Which check failed: `header_missing`, `header_malformed`,
    /// `unknown_key`, `clock_skew`, `bad_timestamp`, `bad_encoding` or
    /// `mismatch`.
    pub check: &'static str,
    /// Sender's clock minus ours, milliseconds, when the request carried a
    /// readable time.
    pub offset_ms: Option<i64>,
    /// The variant that verified, if any.
    pub verified: Option<Variant>,
    /// Hints that are not proofs (e.g. the body looks re-serialised).
    pub hints: Vec<&'static str>,
    /// Length of the body received.
    pub body_len: usize,
    /// SHA-256 of the body received, hex (compare with the sender's).
    pub body_sha256: String,
}

impl Diagnosis {
    fn new(check: &'static str, body: &[u8]) -> Self {
        Diagnosis {
            check,
            offset_ms: None,
            verified: None,
            hints: Vec::new(),
            body_len: body.len(),
            body_sha256: sha256_hex(body),
        }
    }

    /// One line for an operator: the check, the offset, the fix.
    pub fn summary(&self) -> String {
        let mut out = format!("signature check failed: {}", self.check);
        if let Some(off) = self.offset_ms {
            out.push_str(&format!(" (sender clock {off:+} ms from ours)"));
        }
        match &self.verified {
            Some(v) => out.push_str(&format!("; it verifies when {}: {}", v.code(), v.fix())),
            None if self.check == "mismatch" => {
                out.push_str("; no usual rewrite explains it (check the configured platform key)")
            }
            None => {}
        }
        for h in &self.hints {
            out.push_str("; ");
            out.push_str(h);
        }
        out
    }

    /// The diagnosis as JSON (what the C ABI, Python, C# and the CLI show).
    pub fn to_json(&self) -> Value {
        json!({
            "check": self.check,
            "offset_ms": self.offset_ms,
            "verified_variant": self.verified.as_ref().map(Variant::code),
            "fix": self.verified.as_ref().map(Variant::fix),
            "hints": self.hints,
            "body_len": self.body_len,
            "body_sha256": self.body_sha256,
            "summary": self.summary(),
        })
    }
}

/// Body variants worth a verification, each with the variant it stands for.
fn body_variants(body: &[u8]) -> Vec<(Vec<u8>, Variant)> {
    let mut out = Vec::new();
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if let Some(rest) = body.strip_prefix(BOM) {
        out.push((rest.to_vec(), Variant::BomRemoved));
    }
    let has_crlf = body.windows(2).any(|w| w == b"\r\n");
    if has_crlf {
        out.push((replace(body, b"\r\n", b"\n"), Variant::CrlfToLf));
    } else if body.contains(&b'\n') {
        out.push((replace(body, b"\n", b"\r\n"), Variant::LfToCrlf));
    }
    let trimmed = body.strip_prefix(BOM).unwrap_or(body);
    if let Ok(v) = serde_json::from_slice::<Value>(trimmed)
        && let Ok(compact) = serde_json::to_vec(&v)
        && compact != body
    {
        out.push((compact, Variant::JsonReserialised));
    }
    out
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 16);
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// Whether a body looks like pretty-printed or otherwise re-encoded JSON.
fn looks_reencoded(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    serde_json::to_vec(&v).is_ok_and(|compact| compact != body)
}

/// Characters a proxy or framework typically encodes in a path.
const PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Headers in which proxies pass on the original request-target.
const PROXY_TARGET_HEADERS: [&str; 3] = ["X-Original-URI", "X-Forwarded-Uri", "X-Original-URL"];

fn plain_prefix(p: &str) -> Option<String> {
    let ok = p.len() <= 64
        && p.starts_with('/')
        && !p.ends_with('/')
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    ok.then(|| p.to_string())
}

/// Diagnoses an Alipay+ platform → merchant call that the handler would
/// refuse for its signature; `None` when the signature verifies (or the call
/// fails for another reason than its signature).
pub fn alipay_inbound(config: &AlipayConfig, request: &HttpRequest, now_ms: i64) -> Option<Diagnosis> {
    let path = request.target.split('?').next().unwrap_or_default();
    let uri = inbound::signed_uri(config, request, path);
    let body = &request.body;
    let client_id = find_header(&request.headers, "Client-Id").unwrap_or(&config.client_id);
    let time = find_header(&request.headers, "Request-Time");
    let sig_header = find_header(&request.headers, "Signature");
    let offset_ms = time.and_then(parse_header_time).map(|t| t - now_ms);
    let fail = |check| {
        let mut d = Diagnosis::new(check, body);
        d.offset_ms = offset_ms;
        Some(d)
    };
    if client_id != config.client_id {
        return fail("unknown_key");
    }
    let Some(time) = time else {
        return fail("header_missing");
    };
    let Some(header) = sig_header else {
        return fail("header_missing");
    };
    let parsed = match signature::parse_header(header) {
        Ok(p) => p,
        Err(_) => return fail("header_malformed"),
    };
    let Ok(raw) = signature::decode_signature_value(&parsed.signature) else {
        return fail("bad_encoding");
    };
    let key = config.platform_key(parsed.key_version.as_deref());
    let verifies = |uri: &str, body: &[u8]| {
        rsa::verify_sha256(
            key,
            &signature::content_to_sign("POST", uri, client_id, time, body),
            &raw,
        )
    };
    if verifies(&uri, body) {
        if let (Some(skew), Some(off)) = (config.max_clock_skew, offset_ms)
            && u128::from(off.unsigned_abs()) > skew.as_millis()
        {
            return fail("clock_skew");
        }
        return None;
    }
    let mut d = Diagnosis::new("mismatch", body);
    d.offset_ms = offset_ms;

    let (uri_path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.clone(), None),
    };
    let with_query = |p: &str| match &query {
        Some(q) => format!("{p}?{q}"),
        None => p.to_string(),
    };
    let mut uris: Vec<(String, Variant)> = Vec::new();
    if config.inbound_public_prefix.is_some() {
        uris.push((request.target.clone(), Variant::PrefixRemoved));
    }
    for name in PROXY_TARGET_HEADERS {
        if let Some(original) = find_header(&request.headers, name).filter(|v| v.starts_with('/')) {
            let prefix = original
                .split('?')
                .next()
                .and_then(|p| p.rsplit_once(inbound::MEMBERSHIP_PATH))
                .and_then(|(prefix, _)| plain_prefix(prefix));
            uris.push((
                original.to_string(),
                Variant::ProxyHeaderTarget { header: name, prefix },
            ));
        }
    }
    if let Some(prefix) = find_header(&request.headers, "X-Forwarded-Prefix").and_then(plain_prefix) {
        uris.push((
            format!("{prefix}{}", request.target),
            Variant::ProxyHeaderTarget {
                header: "X-Forwarded-Prefix",
                prefix: Some(prefix),
            },
        ));
    }
    if query.is_some() {
        uris.push((uri_path.clone(), Variant::QueryDropped));
    }
    match uri_path.strip_suffix('/') {
        Some(without) => uris.push((with_query(without), Variant::TrailingSlashRemoved)),
        None => uris.push((with_query(&format!("{uri_path}/")), Variant::TrailingSlashAdded)),
    }
    if let Ok(decoded) = percent_decode_str(&uri_path).decode_utf8()
        && decoded != uri_path
    {
        uris.push((with_query(&decoded), Variant::PercentDecoded));
    }
    let encoded = utf8_percent_encode(&uri_path, PATH_ENCODE).to_string();
    if encoded != uri_path {
        uris.push((with_query(&encoded), Variant::PercentEncoded));
    }
    d.verified = uris
        .into_iter()
        .find(|(u, _)| u != &uri && verifies(u, body))
        .map(|(_, v)| v)
        .or_else(|| {
            body_variants(body)
                .into_iter()
                .find(|(b, _)| verifies(&uri, b))
                .map(|(_, v)| v)
        });
    if d.verified.is_none() && looks_reencoded(body) {
        d.hints
            .push("the body is JSON but not in its compact form: it may have been re-encoded on the way");
    }
    Some(d)
}

/// Diagnoses a WeChat Pay callback whose signature the handler would refuse;
/// `None` when it verifies. `now_ms` is Unix milliseconds.
pub fn wechat_callback(
    keys: &KeyRing,
    request: &HttpRequest,
    now_ms: i64,
    options: VerifyOptions,
) -> Option<Diagnosis> {
    let now = now_ms.div_euclid(1000);
    let failure = verify::verify(keys, &request.headers, &request.body, now, options).err()?;
    let body = &request.body;
    let ts = find_header(&request.headers, verify::HEADER_TIMESTAMP);
    let offset_ms = ts
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| t.checked_mul(1000))
        .map(|t| t - now_ms);
    let check = match failure.reason {
        verify::VerifyReason::HeaderMissing => "header_missing",
        verify::VerifyReason::UnsupportedSignatureType => "header_malformed",
        verify::VerifyReason::BadTimestamp => "bad_timestamp",
        verify::VerifyReason::ClockSkew => "clock_skew",
        verify::VerifyReason::UnknownSerial => "unknown_key",
        verify::VerifyReason::BadEncoding => "bad_encoding",
        verify::VerifyReason::Mismatch => "mismatch",
    };
    let mut d = Diagnosis::new(check, body);
    d.offset_ms = offset_ms;
    if failure.reason != verify::VerifyReason::Mismatch {
        return Some(d);
    }
    let header = |n| find_header(&request.headers, n).unwrap_or_default();
    let (ts, nonce) = (header(verify::HEADER_TIMESTAMP), header(verify::HEADER_NONCE));
    let raw = b64_decode_strict(header(verify::HEADER_SIGNATURE))?;
    let key = keys.verification_key(header(verify::HEADER_SERIAL), now).ok()?;
    d.verified = body_variants(body)
        .into_iter()
        .find(|(b, _)| rsa::verify_sha256(key, &verify::message(ts, nonce, b), &raw))
        .map(|(_, v)| v);
    if d.verified.is_none() && looks_reencoded(body) {
        d.hints
            .push("the body is JSON but not in its compact form: it may have been re-encoded on the way");
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_variants_cover_bom_line_endings_and_json() {
        let v = body_variants(b"\xEF\xBB\xBF{\"a\": 1}\r\n");
        let codes: Vec<_> = v.iter().map(|(_, v)| v.code()).collect();
        assert_eq!(codes, ["bom_removed", "crlf_to_lf", "json_reserialised"]);
        assert_eq!(v[0].0, b"{\"a\": 1}\r\n");
        assert_eq!(v[1].0, b"\xEF\xBB\xBF{\"a\": 1}\n");
        assert_eq!(v[2].0, b"{\"a\":1}");
        assert!(body_variants(b"{\"a\":1}").is_empty());
    }

    #[test]
    fn plain_prefixes_only() {
        assert_eq!(plain_prefix("/api/membership").as_deref(), Some("/api/membership"));
        assert_eq!(plain_prefix("/a b"), None);
        assert_eq!(plain_prefix("/a/"), None);
        assert_eq!(plain_prefix(&format!("/{}", "a".repeat(64))), None);
    }
}
