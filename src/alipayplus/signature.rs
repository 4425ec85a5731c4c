//! Alipay+ request/response signatures (`alipayplus-mpp.md` §4).
//!
//! Content to sign: `<METHOD> <URI>\n<Client-Id>.<Time>.<Body>`, RSA-SHA256,
//! Base64, then form-URL-encoded into
//! `Signature: algorithm=RSA256,keyVersion=<n>,signature=<value>`.

use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::{b64_decode_strict, b64_encode, rsa};
use crate::error::{Error, ErrorKind, Result};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Why a signature was refused (`alipayplus-mpp.md` §4.4 step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// No `Signature` header or no `signature=` in it.
    HeaderMissing,
    /// The header could not be parsed (duplicate keys, only one of the response headers, ...).
    HeaderMalformed,
    /// An algorithm other than RSA256.
    UnsupportedAlgorithm,
    /// The value is not valid percent-encoded Base64.
    BadEncoding,
    /// The signature does not match the content.
    Mismatch,
    /// No key is configured for the presented Client-Id / keyVersion.
    UnknownClientId,
    /// A success answer without any signature.
    UnsignedSuccess,
}

impl SignatureFailure {
    /// The reason code used in messages and logs.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureFailure::HeaderMissing => "header_missing",
            SignatureFailure::HeaderMalformed => "header_malformed",
            SignatureFailure::UnsupportedAlgorithm => "unsupported_algorithm",
            SignatureFailure::BadEncoding => "bad_encoding",
            SignatureFailure::Mismatch => "mismatch",
            SignatureFailure::UnknownClientId => "unknown_client_id",
            SignatureFailure::UnsignedSuccess => "unsigned_success",
        }
    }

    /// The crate error for this failure.
    pub fn into_error(self, context: &str) -> Error {
        let kind = match self {
            SignatureFailure::UnknownClientId => ErrorKind::UnknownKeySerial,
            _ => ErrorKind::SignatureInvalid,
        };
        Error::new(kind, format!("{context}: signature invalid ({})", self.reason()))
    }
}

/// The exact bytes that are signed.
pub fn content_to_sign(method: &str, uri: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(method.len() + uri.len() + client_id.len() + time.len() + body.len() + 4);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(client_id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(time.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// Signs and returns the Base64 signature (not yet URL-encoded).
pub fn sign_base64(
    key: &PrivateKey,
    method: &str,
    uri: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Result<String> {
    let sig = rsa::sign_sha256(key, &content_to_sign(method, uri, client_id, time, body))?;
    Ok(b64_encode(&sig))
}

/// The `Signature` header value we emit: no spaces, keys in documented order,
/// upper-case percent escapes.
pub fn header_value(key_version: &str, signature_b64: &str) -> String {
    let mut v = String::with_capacity(40 + key_version.len() + signature_b64.len() * 3 / 2);
    v.push_str("algorithm=RSA256,keyVersion=");
    v.push_str(key_version);
    v.push_str(",signature=");
    v.extend(utf8_percent_encode(signature_b64, NON_ALPHANUMERIC));
    v
}

/// A parsed `Signature` header. `Debug` hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// `algorithm`, `RSA256` when absent.
    pub algorithm: String,
    /// `keyVersion`, when present.
    pub key_version: Option<String>,
    /// The raw `signature` value (possibly percent-encoded).
    pub signature: String,
}

crate::redact::redacted_debug!(ParsedSignature {
    algorithm: show,
    key_version: show,
    signature: hide
});

/// Parses a `Signature` header per §4.5: split on `,`, trim, split on the
/// first `=`, keys case-insensitive, one pair of quotes stripped, unknown keys
/// ignored, repeated known keys refused.
pub fn parse_header(value: &str) -> std::result::Result<ParsedSignature, SignatureFailure> {
    let mut algorithm = None;
    let mut key_version = None;
    let mut signature: Option<String> = None;
    for part in value.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(SignatureFailure::HeaderMalformed);
        };
        let k = k.trim_matches([' ', '\t']);
        let mut v = v.trim_matches([' ', '\t']);
        if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v = &v[1..v.len() - 1];
        }
        let slot = if k.eq_ignore_ascii_case("algorithm") {
            &mut algorithm
        } else if k.eq_ignore_ascii_case("keyVersion") {
            &mut key_version
        } else if k.eq_ignore_ascii_case("signature") {
            &mut signature
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(SignatureFailure::HeaderMalformed);
        }
        *slot = Some(v.to_string());
    }
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or(SignatureFailure::HeaderMissing)?;
    let algorithm = algorithm.unwrap_or_else(|| "RSA256".to_string());
    if !algorithm.eq_ignore_ascii_case("RSA256") {
        return Err(SignatureFailure::UnsupportedAlgorithm);
    }
    Ok(ParsedSignature {
        algorithm,
        key_version,
        signature,
    })
}

/// Decodes a signature value: percent-decoding only when it contains `%`
/// (never `+` → space), then strict Base64.
pub fn decode_signature_value(value: &str) -> std::result::Result<Vec<u8>, SignatureFailure> {
    let b64 = if value.contains('%') {
        percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| SignatureFailure::BadEncoding)?
            .into_owned()
    } else {
        value.to_string()
    };
    b64_decode_strict(&b64).ok_or(SignatureFailure::BadEncoding)
}

/// Verifies a `Signature` header value against the content parts.
pub fn verify(
    key: &PublicKey,
    header: Option<&str>,
    method: &str,
    uri: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> std::result::Result<ParsedSignature, SignatureFailure> {
    let parsed = parse_header(header.ok_or(SignatureFailure::HeaderMissing)?)?;
    let raw = decode_signature_value(&parsed.signature)?;
    if rsa::verify_sha256(key, &content_to_sign(method, uri, client_id, time, body), &raw) {
        Ok(parsed)
    } else {
        Err(SignatureFailure::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::tests::{SPEC_PRIVATE_PEM, SPEC_PUBLIC_PEM};
    use crate::crypto::sha256_hex;

    const URI_A: &str = "/api/open/v2/pds/memberships/issueCard";
    const CLIENT: &str = "2022XXXX_TEST_CLIENT";
    const TIME_A: &str = "2019-04-04T12:08:56.253+05:30";
    const BODY_A: &str = r#"{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"20191127190741010007013213123000","customerId":"210911290000","externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{"fieldCode":"EMAIL","fieldValue":"email@example.com"}]}"#;
    const SIG_A: &str = "S4cz5/dj8MnFXjAWXicwZ6k+3k82xqBVy5AVTEbs2I5a6jihm7DeKGxB0JIVkH7N/hW4fsHfJK2qEZPaqmZzIj79D4JorQ2ijDiKmJMs6GZztBLeJewuj0Oc3GHiajsFwaS60NF6ksl6fNvO4826dxfKjgOfq97F32qErCCk8KaRDfYdl5T5VvdYJmUbaXneyyQgHCwG4jugkIfkQPCvSWbKi4zx/gRvj2ypC7aE0kMAoV4gOyFhfEWmMSuQRatDB+c+5bXAyqO5XtduBlxw3VTmcNhWewKPaOdJS5lLRTIPt5GYKw2QWlZb/rQr4BaSVqG49xI0h4rBt9pQa6yOsw==";
    const HEADER_A: &str = "algorithm=RSA256,keyVersion=1,signature=S4cz5%2Fdj8MnFXjAWXicwZ6k%2B3k82xqBVy5AVTEbs2I5a6jihm7DeKGxB0JIVkH7N%2FhW4fsHfJK2qEZPaqmZzIj79D4JorQ2ijDiKmJMs6GZztBLeJewuj0Oc3GHiajsFwaS60NF6ksl6fNvO4826dxfKjgOfq97F32qErCCk8KaRDfYdl5T5VvdYJmUbaXneyyQgHCwG4jugkIfkQPCvSWbKi4zx%2FgRvj2ypC7aE0kMAoV4gOyFhfEWmMSuQRatDB%2Bc%2B5bXAyqO5XtduBlxw3VTmcNhWewKPaOdJS5lLRTIPt5GYKw2QWlZb%2FrQr4BaSVqG49xI0h4rBt9pQa6yOsw%3D%3D";

    const URI_B: &str = "/v2/pds/memberships/notifyCardRegistration";
    const TIME_B: &str = "2019-04-04T12:08:57.001+05:30";
    const BODY_B: &str = r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
    const SIG_B: &str = "eAOUrGPq8ZWIkPnT43FAgreRRdYQk30uklIbVu5+eNi4G9oLTVV8JlVT/MehfbqeoXXo5hVanTeXI7TZRJWYxX8wSjy+SU9poFRBvq5NhxodYXyKGf1PzQ9g82OTfeIfi/n4X4fVDe1LhJ4UtpOoyMSGmjacgqXxzpsFfcYUfrBIit4XP49VEeesYBNlHhG39pFcnljDS+ZxRd3Lj4pE6uBe8wDp200Nx+YN2PxKZcEjhO2Pa4FPWaF0YlrMLzu0ajmNE4fRH5xUQ9mW6J0y9L0pLrIu3VE5/Al7WHlWLnvX9iRHWdzUIezw2CXUpCzSQZSAEgDbp3rC3hGf8ty98g==";
    const HEADER_B: &str = "algorithm=RSA256,keyVersion=1,signature=eAOUrGPq8ZWIkPnT43FAgreRRdYQk30uklIbVu5%2BeNi4G9oLTVV8JlVT%2FMehfbqeoXXo5hVanTeXI7TZRJWYxX8wSjy%2BSU9poFRBvq5NhxodYXyKGf1PzQ9g82OTfeIfi%2Fn4X4fVDe1LhJ4UtpOoyMSGmjacgqXxzpsFfcYUfrBIit4XP49VEeesYBNlHhG39pFcnljDS%2BZxRd3Lj4pE6uBe8wDp200Nx%2BYN2PxKZcEjhO2Pa4FPWaF0YlrMLzu0ajmNE4fRH5xUQ9mW6J0y9L0pLrIu3VE5%2FAl7WHlWLnvX9iRHWdzUIezw2CXUpCzSQZSAEgDbp3rC3hGf8ty98g%3D%3D";

    fn keys() -> (PrivateKey, PublicKey) {
        (
            PrivateKey::from_pem(SPEC_PRIVATE_PEM).unwrap(),
            PublicKey::from_pem(SPEC_PUBLIC_PEM).unwrap(),
        )
    }

    #[test]
    fn vector_a_content_and_signature_and_header() {
        let (k, _) = keys();
        let content = content_to_sign("POST", URI_A, CLIENT, TIME_A, BODY_A.as_bytes());
        assert_eq!(content.len(), 369);
        assert_eq!(
            sha256_hex(&content),
            "b3378e72e2e53350e7d10fef575858baf1200805f4066900d969bdf462c1b3ed"
        );
        let sig = sign_base64(&k, "POST", URI_A, CLIENT, TIME_A, BODY_A.as_bytes()).unwrap();
        assert_eq!(sig, SIG_A);
        assert_eq!(header_value("1", &sig), HEADER_A);
    }

    #[test]
    fn vector_b_response_signature() {
        let (k, p) = keys();
        let content = content_to_sign("POST", URI_B, CLIENT, TIME_B, BODY_B.as_bytes());
        assert_eq!(content.len(), 179);
        assert_eq!(
            sha256_hex(&content),
            "d18cd0e2db7d61272959d0d37649445866a558040e92957662f46538abfa585d"
        );
        let sig = sign_base64(&k, "POST", URI_B, CLIENT, TIME_B, BODY_B.as_bytes()).unwrap();
        assert_eq!(sig, SIG_B);
        assert_eq!(header_value("1", &sig), HEADER_B);
        assert!(verify(&p, Some(HEADER_B), "POST", URI_B, CLIENT, TIME_B, BODY_B.as_bytes()).is_ok());
    }

    fn verify_a(header: &str) -> std::result::Result<ParsedSignature, SignatureFailure> {
        verify(
            &keys().1,
            Some(header),
            "POST",
            URI_A,
            CLIENT,
            TIME_A,
            BODY_A.as_bytes(),
        )
    }

    #[test]
    fn verifier_accepts_every_documented_form() {
        assert!(verify_a(HEADER_A).is_ok());
        assert!(
            verify_a(&format!("algorithm=RSA256,keyVersion=1,signature={SIG_A}")).is_ok(),
            "raw base64"
        );
        let lower = HEADER_A
            .replace("%2B", "%2b")
            .replace("%2F", "%2f")
            .replace("%3D", "%3d");
        assert!(verify_a(&lower).is_ok(), "lower-case hex");
        assert!(verify_a(&HEADER_A.replace(',', ", ")).is_ok(), "documented spaced form");
        let sig_part = HEADER_A.split(',').nth(2).unwrap();
        assert!(
            verify_a(&format!("{sig_part},keyVersion=1,algorithm=RSA256")).is_ok(),
            "any key order"
        );
        assert!(
            verify_a(&format!(
                "ALGORITHM=rsa256, KeyVersion=1, Signature={}",
                &sig_part[10..]
            ))
            .is_ok()
        );
        assert!(
            verify_a(&format!("algorithm=RSA256,signature=\"{}\"", &sig_part[10..])).is_ok(),
            "quoted value"
        );
        assert!(verify_a(&format!("{sig_part},foo=bar")).is_ok(), "unknown key ignored");
    }

    #[test]
    fn verifier_rejects_any_change_of_content() {
        let p = keys().1;
        let body = BODY_A.as_bytes();
        let mut changed = body.to_vec();
        changed[5] ^= 1;
        let check = |uri: &str, client: &str, time: &str, body: &[u8]| {
            verify(&p, Some(HEADER_A), "POST", uri, client, time, body)
        };
        assert_eq!(check(URI_A, CLIENT, TIME_A, &changed), Err(SignatureFailure::Mismatch));
        let mut nl = body.to_vec();
        nl.push(b'\n');
        assert_eq!(check(URI_A, CLIENT, TIME_A, &nl), Err(SignatureFailure::Mismatch));
        assert_eq!(
            check("/v2/pds/memberships/issueCard", CLIENT, TIME_A, body),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            check(URI_A, "2022XXXX_TEST_CLIENX", TIME_A, body),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            check(URI_A, CLIENT, "2019-04-04T12:08:56.254+05:30", body),
            Err(SignatureFailure::Mismatch)
        );
        assert_eq!(
            verify(&p, Some(HEADER_A), "GET", URI_A, CLIENT, TIME_A, body),
            Err(SignatureFailure::Mismatch)
        );
        // \n -> \r\n in the content itself
        let crlf = String::from_utf8(content_to_sign("POST", URI_A, CLIENT, TIME_A, body))
            .unwrap()
            .replacen('\n', "\r\n", 1);
        let raw = decode_signature_value(SIG_A).unwrap();
        assert!(!rsa::verify_sha256(&p, crlf.as_bytes(), &raw));
        // '+' decoded to a space by a careless URL decoder
        let spaced = format!("algorithm=RSA256,signature={}", SIG_A.replace('+', " "));
        assert!(verify_a(&spaced).is_err());
    }

    #[test]
    fn parser_rejections_are_clean() {
        let sig_part = HEADER_A.split(',').nth(2).unwrap();
        assert_eq!(
            verify_a(&format!("{sig_part},{sig_part}")),
            Err(SignatureFailure::HeaderMalformed)
        );
        assert_eq!(
            verify_a(&format!("algorithm=ECC224,{sig_part}")),
            Err(SignatureFailure::UnsupportedAlgorithm)
        );
        assert_eq!(
            verify_a("algorithm=RSA256,signature=!!!"),
            Err(SignatureFailure::BadEncoding)
        );
        assert_eq!(
            verify_a("algorithm=RSA256,signature=%ZZ%"),
            Err(SignatureFailure::BadEncoding)
        );
        assert_eq!(
            verify_a("algorithm=RSA256,keyVersion=1"),
            Err(SignatureFailure::HeaderMissing)
        );
        assert_eq!(
            verify_a("algorithm=RSA256,signature="),
            Err(SignatureFailure::HeaderMissing)
        );
        assert_eq!(verify_a("garbage"), Err(SignatureFailure::HeaderMalformed));
        assert_eq!(
            verify(&keys().1, None, "POST", URI_A, CLIENT, TIME_A, b""),
            Err(SignatureFailure::HeaderMissing)
        );
    }
}
