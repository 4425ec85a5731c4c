//! APIv3 request signing (`wechatpay-card-member.md` §6).
//!
//! Message: `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n` (five lines,
//! each ending in `\n`), RSA-SHA256 with the merchant API key, Base64, sent as
//! `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`.
//!
//! The canonical URL is the request-target exactly as sent (path plus `?` and
//! the raw, already percent-encoded query); build it once and use the same
//! string for the request line and for signing.

use crate::crypto::keys::PrivateKey;
use crate::crypto::{b64_encode, random_bytes, rsa};
use crate::error::{Error, ErrorKind, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The `Authorization` scheme and the `Wechatpay-Signature-Type` value.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// Length of the nonces we generate.
pub const NONCE_LEN: usize = 32;

const NONCE_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Everything but RFC 3986 unreserved characters is escaped in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path segment (e.g. `user_card_code`, §5.1): every byte
/// except ASCII letters, digits and `-._~` becomes `%XX` (upper-case hex), so
/// `/`, `?`, `#` and `%` cannot change the request-target. Sign the encoded form.
pub fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// A fresh nonce: 32 characters from `[0-9A-Z]`, uniformly drawn from the CSPRNG.
pub fn generate_nonce() -> String {
    let mut out = String::with_capacity(NONCE_LEN);
    let mut buf = [0u8; 64];
    while out.len() < NONCE_LEN {
        random_bytes(&mut buf);
        // 252 = 7 × 36: rejecting larger bytes keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 252) {
            if out.len() == NONCE_LEN {
                break;
            }
            out.push(char::from(NONCE_ALPHABET[usize::from(b % 36)]));
        }
    }
    out
}

/// The exact bytes that are signed for a request.
pub fn message(method: &str, canonical_url: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut out = Vec::with_capacity(method.len() + canonical_url.len() + ts.len() + nonce.len() + body.len() + 5);
    for part in [
        method.as_bytes(),
        canonical_url.as_bytes(),
        ts.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out
}

fn invalid(what: &str, rule: &str) -> Error {
    Error::new(ErrorKind::InvalidParameter, format!("{what}: {rule}"))
}

/// The merchant identity that signs requests: service-provider `mchid`,
/// merchant API certificate serial and the matching private key.
#[derive(Debug, Clone)]
pub struct RequestSigner {
    mchid: String,
    serial_no: String,
    key: PrivateKey,
}

/// What signing one request produced; the nonce and timestamp are returned so
/// they can be logged next to WeChat's `SIGN_ERROR` echoes. `Debug` hides the
/// `Authorization` value (it carries the signature).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The `Authorization` header value (without the `Authorization: ` name).
    pub authorization: String,
    /// The nonce that was signed.
    pub nonce: String,
    /// The Unix timestamp that was signed.
    pub timestamp: i64,
}

crate::redact::redacted_debug!(SignedRequest {
    authorization: hide,
    nonce: show,
    timestamp: show
});

impl RequestSigner {
    /// Checks and keeps the signing identity.
    ///
    /// `mchid`: 1–32 ASCII digits. `serial_no`: the merchant API certificate
    /// serial, 1–40 hex digits, emitted upper-case (never a `PUB_KEY_ID_…` or
    /// platform serial, §6.4). Errors are `InvalidConfig` naming the field.
    pub fn new(mchid: &str, serial_no: &str, key: PrivateKey) -> Result<Self> {
        if mchid.is_empty() || mchid.len() > 32 || !mchid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::config("wechatpay.mchid: must be 1 to 32 ASCII digits").with_field("wechatpay.mchid"));
        }
        if serial_no.is_empty() || serial_no.len() > 40 || !serial_no.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(
                "wechatpay.merchant_serial_no: must be the merchant API certificate serial, 1 to 40 hex digits",
            )
            .with_field("wechatpay.merchant_serial_no"));
        }
        Ok(RequestSigner {
            mchid: mchid.to_string(),
            serial_no: serial_no.to_ascii_uppercase(),
            key,
        })
    }

    /// The service-provider merchant ID.
    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    /// The merchant API certificate serial, upper-case.
    pub fn serial_no(&self) -> &str {
        &self.serial_no
    }

    /// Signs a request with a fresh nonce. `method` is upper-case (`POST`),
    /// `canonical_url` the request-target as sent (`/v3/…?card_id=…`),
    /// `body` the exact bytes sent (empty for GET), `timestamp` Unix seconds.
    pub fn sign(&self, method: &str, canonical_url: &str, body: &[u8], timestamp: i64) -> Result<SignedRequest> {
        self.sign_with_nonce(method, canonical_url, body, timestamp, &generate_nonce())
    }

    /// [`Self::sign`] with a given nonce (known-answer tests, replays in tests).
    /// The nonce must be 1–64 ASCII letters or digits.
    pub fn sign_with_nonce(
        &self,
        method: &str,
        canonical_url: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<SignedRequest> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid("method", "must be an upper-case HTTP method such as POST"));
        }
        if !canonical_url.starts_with('/') || canonical_url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid(
                "canonical_url",
                "must be a request-target starting with '/' without spaces or control characters",
            ));
        }
        if timestamp < 0 {
            return Err(invalid("timestamp", "must be a non-negative Unix time"));
        }
        if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("nonce", "must be 1 to 64 ASCII letters or digits"));
        }
        let sig = rsa::sign_sha256(&self.key, &message(method, canonical_url, timestamp, nonce, body))?;
        Ok(SignedRequest {
            authorization: authorization_value(&self.mchid, nonce, &b64_encode(&sig), timestamp, &self.serial_no),
            nonce: nonce.to_string(),
            timestamp,
        })
    }
}

/// The `Authorization` value in the documented order (§6.4):
/// `mchid`, `nonce_str`, `signature`, `timestamp`, `serial_no`.
pub fn authorization_value(mchid: &str, nonce: &str, signature_b64: &str, timestamp: i64, serial_no: &str) -> String {
    format!(
        "{SCHEME} mchid=\"{mchid}\",nonce_str=\"{nonce}\",signature=\"{signature_b64}\",timestamp=\"{timestamp}\",serial_no=\"{serial_no}\""
    )
}

/// The five items of an `Authorization` value (§6.4), as received.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `mchid`.
    pub mchid: String,
    /// `nonce_str`.
    pub nonce: String,
    /// `signature` (Base64, not decoded).
    pub signature: String,
    /// `timestamp`, as written.
    pub timestamp: String,
    /// `serial_no`.
    pub serial_no: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("mchid", &self.mchid)
            .field("nonce", &self.nonce)
            .field("signature", &crate::redact::Bytes(self.signature.len()))
            .field("timestamp", &self.timestamp)
            .field("serial_no", &self.serial_no)
            .finish()
    }
}

/// Parses an `Authorization` value: the scheme, then `k="v"` items in any
/// order; unknown items are ignored, a repeated or missing item is an error
/// whose text names the item (never a value).
pub fn parse_authorization(value: &str) -> std::result::Result<Authorization, String> {
    const NAMES: [&str; 5] = ["mchid", "nonce_str", "signature", "timestamp", "serial_no"];
    let params = value
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("the Authorization scheme must be {SCHEME}"))?;
    let mut found: [Option<&str>; 5] = [None; 5];
    for item in params.split(',') {
        let (name, value) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| "an Authorization item has no '='".to_string())?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| "an Authorization value must be quoted".to_string())?;
        if let Some(i) = NAMES.iter().position(|n| *n == name)
            && found[i].replace(value).is_some()
        {
            return Err(format!("{} appears twice", NAMES[i]));
        }
    }
    let get = |i: usize| {
        found[i]
            .map(str::to_string)
            .ok_or_else(|| format!("{} is missing", NAMES[i]))
    };
    Ok(Authorization {
        mchid: get(0)?,
        nonce: get(1)?,
        signature: get(2)?,
        timestamp: get(3)?,
        serial_no: get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_round_trips_and_names_what_is_wrong() {
        let v = authorization_value("19", "N", "c2ln", 1, "AB");
        let a = parse_authorization(&v).unwrap();
        assert_eq!(
            (a.mchid.as_str(), a.nonce.as_str(), a.timestamp.as_str()),
            ("19", "N", "1")
        );
        assert!(!format!("{a:?}").contains("c2ln"));
        assert_eq!(
            parse_authorization(&v.replace(",serial_no=\"AB\"", "")).unwrap_err(),
            "serial_no is missing"
        );
        assert!(parse_authorization("Bearer x").is_err());
    }

    #[test]
    fn authorization_items_in_any_order() {
        let p = |items: &str| parse_authorization(&format!("{SCHEME} {items}"));
        let a = p(r#"serial_no="AB",timestamp="1",signature="c2ln",nonce_str="N",mchid="19""#).unwrap();
        assert_eq!(
            (
                a.mchid.as_str(),
                a.nonce.as_str(),
                a.signature.as_str(),
                a.timestamp.as_str(),
                a.serial_no.as_str()
            ),
            ("19", "N", "c2ln", "1", "AB")
        );
        assert!(
            p(r#"mchid="1",nonce_str="N",signature="s",timestamp="1""#)
                .unwrap_err()
                .contains("serial_no is missing")
        );
        assert!(
            p(r#"mchid="1",mchid="2",nonce_str="N",signature="s",timestamp="1",serial_no="A""#)
                .unwrap_err()
                .contains("twice")
        );
        assert!(p(r#"mchid=1,nonce_str="N""#).unwrap_err().contains("quoted"));
        assert!(p("garbage").is_err());
    }

    #[test]
    fn nonce_shape_and_freshness() {
        let a = generate_nonce();
        let b = generate_nonce();
        assert_eq!(a.len(), NONCE_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn message_has_five_terminated_lines() {
        assert_eq!(
            message("GET", "/v3/certificates", 1, "N", b""),
            b"GET\n/v3/certificates\n1\nN\n\n"
        );
        // A body that ends in \n still gets its own terminator.
        assert_eq!(message("POST", "/a", 2, "N", b"x\n"), b"POST\n/a\n2\nN\nx\n\n");
    }

    #[test]
    fn path_segment_encoding() {
        assert_eq!(encode_path_segment("478515832665"), "478515832665");
        assert_eq!(encode_path_segment("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode_path_segment("a/b?c#d%e f+g"), "a%2Fb%3Fc%23d%25e%20f%2Bg");
        assert_eq!(encode_path_segment("会"), "%E4%BC%9A");
    }
}
