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
    /// readable time (Alipay+ `Request-Time`, WeChat Pay `Wechatpay-Timestamp`).
    pub offset_ms: Option<i64>,
    /// The platform's clock minus ours from the request's HTTP `Date`, when
    /// present (WeChat Pay callbacks): near 0 while `offset_ms` is large
    /// means an old (replayed or long-queued) message, not a wrong clock.
    pub platform_clock_offset_ms: Option<i64>,
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
            platform_clock_offset_ms: None,
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
        if let Some(off) = self.platform_clock_offset_ms {
            out.push_str(&format!(" (platform Date {off:+} ms from ours)"));
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
            "platform_clock_offset_ms": self.platform_clock_offset_ms,
            "verified_variant": self.verified.as_ref().map(Variant::code),
            "fix": self.verified.as_ref().map(Variant::fix),
            "hints": self.hints,
            "body_len": self.body_len,
            "body_sha256": self.body_sha256,
            "summary": self.summary(),
        })
    }
}

/// Sends `d` to the log hook and the `log` facade (target
/// `cardbridge::diagnose`, level warn): the failed check, the variant that
/// verified (`none` when none did), the clock offset and the body's length.
pub(crate) fn emit(api: &'static str, d: &Diagnosis) {
    use crate::obs::{self, Level, Value as V};
    obs::event(
        Level::Warn,
        "cardbridge::diagnose",
        "signature check failed: diagnosis",
        || {
            vec![
                ("api", V::Label(api)),
                ("check", V::Label(d.check)),
                (
                    "verified_variant",
                    V::Label(d.verified.as_ref().map_or("none", Variant::code)),
                ),
                ("offset_ms", V::Int(d.offset_ms.unwrap_or(0))),
                ("body_len", V::Int(i64::try_from(d.body_len).unwrap_or(i64::MAX))),
            ]
        },
    );
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

/// The first body variant under which `verifies` holds; when none does and
/// the body is JSON in a non-compact form, a hint that it was re-encoded.
fn first_verifying_body(
    body: &[u8],
    hints: &mut Vec<&'static str>,
    verifies: impl Fn(&[u8]) -> bool,
) -> Option<Variant> {
    let variants = body_variants(body);
    let found = variants.iter().find(|(b, _)| verifies(b)).map(|(_, v)| v.clone());
    if found.is_none() && variants.iter().any(|(_, v)| *v == Variant::JsonReserialised) {
        hints.push("the body is JSON but not in its compact form: it may have been re-encoded on the way");
    }
    found
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
        .or_else(|| first_verifying_body(body, &mut d.hints, |b| verifies(&uri, b)));
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
    d.platform_clock_offset_ms = find_header(&request.headers, "Date")
        .and_then(|_| platform_clock_offset(&request.headers, now_ms))
        .map(|(_, off)| off);
    if failure.reason != verify::VerifyReason::Mismatch {
        return Some(d);
    }
    let header = |n| find_header(&request.headers, n).unwrap_or_default();
    let (ts, nonce) = (header(verify::HEADER_TIMESTAMP), header(verify::HEADER_NONCE));
    let raw = b64_decode_strict(header(verify::HEADER_SIGNATURE))?;
    let key = keys.verification_key(header(verify::HEADER_SERIAL), now).ok()?;
    d.verified = first_verifying_body(body, &mut d.hints, |b| {
        rsa::verify_sha256(key, &verify::message(ts, nonce, b), &raw)
    });
    Some(d)
}

/// What a platform's signature refusal of one of our requests says, compared
/// with the string we signed (issue 13.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundDiagnosis {
    /// The first part of the string-to-sign that differs. WeChat Pay (one
    /// line each): `method`, `url`, `timestamp`, `nonce` or `body`. Alipay+
    /// (`<method> <uri>\n<client id>.<request time>.<body>`): `method`,
    /// `uri`, `client_id`, `request_time` or `body`. `None` when the part the
    /// platform echoed is identical.
    pub differing_line: Option<&'static str>,
    /// The platform's string length minus ours, when it gave its length
    /// (WeChat Pay) or echoed the whole string (Alipay+).
    pub length_delta: Option<i64>,
    /// The likely cause, in one sentence.
    pub likely_cause: &'static str,
    /// The platform's clock minus ours, milliseconds, measured from its
    /// answer's `Date` (WeChat Pay) or `Response-Time` (Alipay+) header.
    pub platform_clock_offset_ms: Option<i64>,
}

/// How far apart clocks may be before a platform refuses a timestamp
/// (WeChat Pay: 5 minutes; Alipay+ documents none, the same is assumed).
pub const PLATFORM_SKEW_WINDOW_MS: i64 = 300_000;

/// Cause named when the platform's clock is outside the window from ours.
const CLOCK_CAUSE: &str = "this host's clock is more than 5 minutes away from the platform's (see \
     platform_clock_offset_ms): the platform refuses the timestamp; synchronise the host clock (NTP)";

/// The platform's clock minus ours (`now_ms`), milliseconds, and the header
/// it was read from: Alipay+ `Response-Time` (any accepted format), else an
/// HTTP `Date` (second precision).
pub fn platform_clock_offset(headers: &[crate::http::Header], now_ms: i64) -> Option<(&'static str, i64)> {
    if let Some(t) = find_header(headers, "Response-Time").and_then(parse_header_time) {
        return Some(("Response-Time", t - now_ms));
    }
    let date = find_header(headers, "Date")?;
    let t = chrono::DateTime::parse_from_rfc2822(date).ok()?.timestamp_millis();
    Some(("Date", t - now_ms))
}

impl OutboundDiagnosis {
    /// A refusal that echoes no string-to-sign, explained by the clocks alone
    /// (`None` when the offset is within the window).
    pub fn clock_only(platform_clock_offset_ms: Option<i64>) -> Option<Self> {
        let off = platform_clock_offset_ms?;
        (off.abs() > PLATFORM_SKEW_WINDOW_MS).then_some(OutboundDiagnosis {
            differing_line: None,
            length_delta: None,
            likely_cause: CLOCK_CAUSE,
            platform_clock_offset_ms,
        })
    }

    /// Adds the measured clock offset; outside the window it is the likely
    /// cause unless another part than the time differs.
    pub fn with_clock(mut self, platform_clock_offset_ms: Option<i64>) -> Self {
        self.platform_clock_offset_ms = platform_clock_offset_ms;
        let outside = platform_clock_offset_ms.is_some_and(|o| o.abs() > PLATFORM_SKEW_WINDOW_MS);
        if outside && matches!(self.differing_line, None | Some("timestamp" | "request_time")) {
            self.likely_cause = CLOCK_CAUSE;
        }
        self
    }

    /// One line for an operator.
    pub fn summary(&self) -> String {
        let line = self
            .differing_line
            .map_or("none of the echoed parts".to_string(), |l| format!("the {l} part"));
        let delta = self
            .length_delta
            .map_or(String::new(), |d| format!(", length delta {d:+} bytes"));
        let clock = self
            .platform_clock_offset_ms
            .map_or(String::new(), |o| format!(" (platform clock {o:+} ms from ours)"));
        if self.differing_line.is_none() && self.length_delta.is_none() {
            return format!("the platform refused the request{clock}: {}", self.likely_cause);
        }
        format!(
            "the platform's string-to-sign differs from ours at {line}{delta}{clock}: {}",
            self.likely_cause
        )
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "differing_line": self.differing_line,
            "length_delta": self.length_delta,
            "likely_cause": self.likely_cause,
            "platform_clock_offset_ms": self.platform_clock_offset_ms,
            "summary": self.summary(),
        })
    }
}

/// One part of a string-to-sign as we built it: its name, our text and the
/// separator that follows it.
struct Part<'a> {
    name: &'static str,
    ours: &'a str,
    sep: &'a str,
}

/// The comparison both platforms share: walks the platform's echo `theirs`
/// part by part along ours, and returns the first part that differs with the
/// platform's text for it. A truncated echo (`complete == false`) may end
/// inside a part: that part (and the rest) is then not known to differ.
fn first_difference<'t>(parts: &[Part<'_>], theirs: &'t str, complete: bool) -> Option<(&'static str, &'t str)> {
    let mut rest = theirs;
    for part in parts {
        let want = format!("{}{}", part.ours, part.sep);
        if let Some(after) = rest.strip_prefix(want.as_str()) {
            rest = after;
            continue;
        }
        if !complete && want.starts_with(rest) {
            return None;
        }
        let text = match part.sep {
            "" => rest,
            sep => rest.split_once(sep).map_or(rest, |(t, _)| t),
        };
        return Some((part.name, text));
    }
    match parts.last() {
        Some(last) if complete && !rest.is_empty() => Some((last.name, rest)),
        _ => None,
    }
}

/// The cause of a difference in the method, the URL/URI or the body, or of
/// none at all; `None` for the platform-specific parts.
fn common_cause(
    differing: Option<(&'static str, &str)>,
    our_url: &str,
    length_delta: Option<i64>,
) -> Option<&'static str> {
    let decoded = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).ok();
    Some(match differing {
        Some(("method", _)) => "a different HTTP method was signed than sent",
        Some(("url" | "uri", theirs)) if decoded(our_url) == decoded(theirs) => {
            "the URL was percent-encoded differently when signed and when sent (e.g. the `card_id` query): \
             sign the request-target exactly as sent"
        }
        Some(("url" | "uri", _)) => "the URL signed is not the one sent (path prefix, query, or a proxy rewriting it)",
        Some(("body", _)) => {
            "the body was changed after it was signed (re-serialised or re-encoded): send the exact bytes signed"
        }
        Some(_) => return None,
        None if length_delta.is_some_and(|d| d != 0) => {
            "the body was changed after it was signed (same start, different length): send the exact bytes signed"
        }
        None => return None,
    })
}

/// Compares the string-to-sign WeChat Pay echoes in a `SIGN_ERROR` answer
/// (`detail.sign_information.truncated_sign_message`, `sign_message_length`)
/// with the one we signed for `sent` (method, request-target, the
/// `Authorization` header's timestamp and nonce, body). `None` when the
/// answer is not a `SIGN_ERROR` with that detail or `sent` has no readable
/// `Authorization`.
pub fn wechat_sign_error(sent: &HttpRequest, answer_body: &[u8]) -> Option<OutboundDiagnosis> {
    let answer: Value = serde_json::from_slice(answer_body).ok()?;
    if answer.get("code")?.as_str()? != "SIGN_ERROR" {
        return None;
    }
    let info = answer.get("detail")?.get("sign_information")?;
    let theirs = info.get("truncated_sign_message")?.as_str()?;
    let their_len = info.get("sign_message_length").and_then(Value::as_i64);
    let auth = crate::wechatpay::sign::parse_authorization(find_header(&sent.headers, "Authorization")?).ok()?;
    let timestamp: i64 = auth.timestamp.parse().ok()?;
    let ours = crate::wechatpay::sign::message(&sent.method, &sent.target, timestamp, &auth.nonce, &sent.body);
    let body = String::from_utf8_lossy(&sent.body);
    let timestamp = timestamp.to_string();
    let parts = [
        Part {
            name: "method",
            ours: &sent.method,
            sep: "\n",
        },
        Part {
            name: "url",
            ours: &sent.target,
            sep: "\n",
        },
        Part {
            name: "timestamp",
            ours: &timestamp,
            sep: "\n",
        },
        Part {
            name: "nonce",
            ours: &auth.nonce,
            sep: "\n",
        },
        Part {
            name: "body",
            ours: &body,
            sep: "\n",
        },
    ];
    let complete = their_len.is_some_and(|l| usize::try_from(l).ok() == Some(theirs.len()));
    let mut differing = first_difference(&parts, theirs, complete);
    let length_delta = their_len.map(|l| l - ours.len() as i64);
    // The echo stops before the body (WeChat Pay truncates it); when every line it
    // shows matches (the nonce at least as a prefix: both sides take it from
    // Authorization) and the lengths differ, the body is the line that differs.
    if differing.is_none() && theirs.matches('\n').count() >= 3 && length_delta.is_some_and(|d| d != 0) {
        differing = Some(("body", ""));
    }
    let likely_cause = common_cause(differing, &sent.target, length_delta).unwrap_or(match differing {
        Some(("timestamp", _)) => "a different timestamp was signed than the one in Authorization",
        Some(("nonce", _)) => "a different nonce was signed than the one in Authorization",
        _ => {
            "the string matches: the signature was made with a key that does not belong to serial_no \
             (wrong merchant private key or wrong merchant_serial_no)"
        }
    });
    Some(OutboundDiagnosis {
        differing_line: differing.map(|(name, _)| name),
        length_delta,
        likely_cause,
        platform_clock_offset_ms: None,
    })
}

/// What the Alipay gateway writes in front of the string-to-sign it built
/// when it refuses a signature ("the string-to-sign the gateway generated is").
pub const ALIPAY_ECHO_MARKER: &str = "网关生成的验签字符串为";

/// Splits an Alipay+ `resultMessage` into the text before the gateway's
/// echoed string-to-sign and the echo itself (after `:` or `：`).
pub fn alipay_sign_echo(message: &str) -> Option<(&str, &str)> {
    let (before, after) = message.split_once(ALIPAY_ECHO_MARKER)?;
    let echo = after
        .strip_prefix(':')
        .or_else(|| after.strip_prefix('：'))
        .unwrap_or(after);
    Some((before, echo))
}

/// An Alipay+ `resultMessage` without the gateway's echoed string-to-sign
/// (which holds the body): safe for an error message.
pub fn alipay_message_without_echo(message: &str) -> String {
    match alipay_sign_echo(message) {
        Some((before, echo)) => format!("{before}{ALIPAY_ECHO_MARKER}: <{} bytes, not shown>", echo.len()),
        None => message.to_string(),
    }
}

/// Compares the string-to-sign the Alipay+ gateway echoes in a signature
/// refusal (`result.resultMessage` "…网关生成的验签字符串为:`<string>`") with
/// the one we signed for `sent` (`<method> <target>\n<Client-Id>.<Request-Time>.<body>`).
/// `None` when the answer carries no echo or `sent` lacks `Client-Id` or
/// `Request-Time`.
pub fn alipay_sign_refusal(sent: &HttpRequest, answer_body: &[u8]) -> Option<OutboundDiagnosis> {
    let answer: Value = serde_json::from_slice(answer_body).ok()?;
    let message = answer.get("result")?.get("resultMessage")?.as_str()?;
    let (_, theirs) = alipay_sign_echo(message)?;
    let client_id = find_header(&sent.headers, "Client-Id")?;
    let time = find_header(&sent.headers, "Request-Time")?;
    let ours = signature::content_to_sign(&sent.method, &sent.target, client_id, time, &sent.body);
    let body = String::from_utf8_lossy(&sent.body);
    let parts = [
        Part {
            name: "method",
            ours: &sent.method,
            sep: " ",
        },
        Part {
            name: "uri",
            ours: &sent.target,
            sep: "\n",
        },
        Part {
            name: "client_id",
            ours: client_id,
            sep: ".",
        },
        Part {
            name: "request_time",
            ours: time,
            sep: ".",
        },
        Part {
            name: "body",
            ours: &body,
            sep: "",
        },
    ];
    let differing = first_difference(&parts, theirs, true);
    let length_delta = Some(theirs.len() as i64 - ours.len() as i64);
    let likely_cause = common_cause(differing, &sent.target, length_delta).unwrap_or(match differing {
        Some(("client_id", _)) => "a different Client-Id was signed than the one sent: check `client_id`",
        Some(("request_time", _)) => {
            "a different Request-Time was signed than the one sent: sign the exact header value of each attempt"
        }
        _ => {
            "the string matches: the signature was made with a private key the platform does not hold the \
             public key of for this Client-Id (wrong merchant_private_key or key_version)"
        }
    });
    Some(OutboundDiagnosis {
        differing_line: differing.map(|(name, _)| name),
        length_delta,
        likely_cause,
        platform_clock_offset_ms: None,
    })
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

    fn sent(method: &str, target: &str, body: &[u8]) -> HttpRequest {
        let auth = crate::wechatpay::sign::authorization_value("19", "NONCE1", "c2ln", 1700000000, "AB");
        HttpRequest {
            method: method.into(),
            target: target.into(),
            headers: vec![("Authorization".into(), auth)],
            body: body.to_vec(),
        }
    }

    fn sign_error(message: &str, len: usize) -> Vec<u8> {
        json!({"code": "SIGN_ERROR", "message": "签名错误",
               "detail": {"sign_information": {"truncated_sign_message": message, "sign_message_length": len}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn sign_error_names_the_differing_line_and_cause() {
        let body = br#"{"a":1}"#;
        let req = sent("POST", "/v3/x?card_id=a%2Bb", body);
        let ours = String::from_utf8(crate::wechatpay::sign::message(
            "POST",
            "/v3/x?card_id=a%2Bb",
            1700000000,
            "NONCE1",
            body,
        ))
        .unwrap();
        let check = |theirs: &str, len: usize| wechat_sign_error(&req, &sign_error(theirs, len)).unwrap();
        // Identical (full): the key or serial is wrong.
        let d = check(&ours, ours.len());
        assert_eq!((d.differing_line, d.length_delta), (None, Some(0)));
        assert!(d.likely_cause.contains("serial_no"));
        // URL decoded by the platform side: an encoding difference.
        let t = ours.replace("a%2Bb", "a+b");
        let d = check(&t, t.len());
        assert_eq!(d.differing_line, Some("url"));
        assert!(d.likely_cause.contains("percent-encoded"), "{}", d.summary());
        // Another path.
        let t = ours.replace("/v3/x", "/v3/y");
        assert!(check(&t, t.len()).likely_cause.contains("not the one sent"));
        // Timestamp and nonce.
        assert_eq!(
            check(&ours.replace("1700000000", "1700000001"), ours.len()).differing_line,
            Some("timestamp")
        );
        assert_eq!(
            check(&ours.replace("NONCE1", "NONCE2"), ours.len()).differing_line,
            Some("nonce")
        );
        // Body re-serialised: a truncated echo with another start, or the same start and another length.
        let t = ours.replace(r#"{"a":1}"#, r#"{"a": 1}"#);
        assert_eq!(check(&t[..t.len() - 3], t.len()).differing_line, Some("body"));
        let d = check(&ours[..ours.len() - 4], ours.len() + 2);
        assert_eq!((d.differing_line, d.length_delta), (Some("body"), Some(2)));
        assert!(d.likely_cause.contains("body was changed"));
        // Not a SIGN_ERROR: nothing to say.
        assert!(wechat_sign_error(&req, br#"{"code":"PARAM_ERROR","message":"x"}"#).is_none());
    }

    #[test]
    fn alipay_refusal_names_the_differing_part_and_cause() {
        let body = br#"{"requestId":"r1"}"#;
        let time = "2026-01-02T03:04:05.678+00:00";
        let sent = HttpRequest {
            method: "POST".into(),
            target: "/api/open/v2/pds/memberships/issueCard".into(),
            headers: vec![
                ("Client-Id".into(), "CID.1".into()),
                ("Request-Time".into(), time.into()),
            ],
            body: body.to_vec(),
        };
        let ours = String::from_utf8(signature::content_to_sign("POST", &sent.target, "CID.1", time, body)).unwrap();
        let refusal = |echo: &str| {
            let message =
                format!("验签出错,建议检查签名字符串或签名私钥与应用公钥是否匹配,{ALIPAY_ECHO_MARKER}:{echo}");
            let answer =
                json!({"result": {"resultCode": "INVALID_SIGNATURE", "resultStatus": "F", "resultMessage": message}});
            alipay_sign_refusal(&sent, answer.to_string().as_bytes()).unwrap()
        };
        let d = refusal(&ours);
        assert_eq!((d.differing_line, d.length_delta), (None, Some(0)));
        assert!(d.likely_cause.contains("merchant_private_key"));
        let cases = [
            (ours.replacen("POST", "PUT", 1), "method"),
            (ours.replace("/api/open", "/open"), "uri"),
            (ours.replace("CID.1", "CID.2"), "client_id"),
            (ours.replace(".678", ".679"), "request_time"),
            (ours.replace(r#"{"requestId":"r1"}"#, r#"{"requestId": "r1"}"#), "body"),
            (format!("{ours}\n"), "body"),
        ];
        for (echo, part) in cases {
            let d = refusal(&echo);
            assert_eq!(d.differing_line, Some(part), "{echo}: {}", d.summary());
            assert_eq!(d.length_delta, Some(echo.len() as i64 - ours.len() as i64));
        }
        assert!(
            refusal(&ours.replace("/api/open", "/open"))
                .likely_cause
                .contains("path prefix")
        );
        assert!(
            refusal(&ours.replace(".678", ".679"))
                .likely_cause
                .contains("Request-Time")
        );
        // No echo: nothing to compare.
        let plain = json!({"result": {"resultCode": "ACCESS_DENIED", "resultStatus": "F", "resultMessage": "denied"}});
        assert!(alipay_sign_refusal(&sent, plain.to_string().as_bytes()).is_none());
        assert_eq!(
            alipay_message_without_echo(&format!("x,{ALIPAY_ECHO_MARKER}:{ours}")),
            format!("x,{ALIPAY_ECHO_MARKER}: <{} bytes, not shown>", ours.len())
        );
    }

    #[test]
    fn plain_prefixes_only() {
        assert_eq!(plain_prefix("/api/membership").as_deref(), Some("/api/membership"));
        assert_eq!(plain_prefix("/a b"), None);
        assert_eq!(plain_prefix("/a/"), None);
        assert_eq!(plain_prefix(&format!("/{}", "a".repeat(64))), None);
    }
}
