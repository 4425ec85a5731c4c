//! X.509 certificates, as far as WeChat Pay platform certificates need them
//! (`wechatpay-card-member.md` §8.2): serial, validity and RSA public key.
//!
//! Parsing only: no chain building or signature check. A platform certificate
//! is trusted because it arrived AEAD-sealed under the APIv3 key, or because
//! the merchant configured it.

use super::keys::PublicKey;
use crate::error::{Error, ErrorKind, Result};
use std::fmt;
use x509_cert::der::{Decode as _, Encode as _};

/// A parsed certificate. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    serial: String,
    not_before: i64,
    not_after: i64,
    subject: String,
    issuer: String,
    public_key: PublicKey,
}

fn cert_error(detail: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidKey, format!("certificate: {detail}"))
}

/// Canonical form of a certificate serial for comparisons: upper-case hex
/// without leading zeros (`"00d7ce"` → `"D7CE"`, all zeros → `"0"`).
/// Does not check that the input is hex.
pub fn normalize_serial(serial: &str) -> String {
    let trimmed = serial.trim_start_matches('0');
    if trimmed.is_empty() && !serial.is_empty() {
        return "0".to_string();
    }
    trimmed.to_ascii_uppercase()
}

impl Certificate {
    /// Parses one PEM `CERTIFICATE` block (surrounding whitespace allowed).
    pub fn from_pem(text: &str) -> Result<Self> {
        let parsed = pem::parse(text.trim()).map_err(|e| cert_error(super::pem_problem(&e)))?;
        if parsed.tag() != "CERTIFICATE" {
            return Err(cert_error(format!(
                "expected PEM type CERTIFICATE, got {}",
                super::pem_label(parsed.tag())
            )));
        }
        Self::from_der(parsed.contents())
    }

    /// Parses a DER certificate. The key must be RSA of at least 2048 bits.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| cert_error(format!("malformed DER ({e})")))?;
        let tbs = cert.tbs_certificate();
        let hex: String = tbs
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let validity = tbs.validity();
        let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| cert_error(format!("cannot re-encode the public key ({e})")))?;
        let public_key = PublicKey::from_spki_der(&spki).map_err(|e| cert_error(e.message()))?;
        Ok(Certificate {
            serial: normalize_serial(&hex),
            not_before: secs(validity.not_before),
            not_after: secs(validity.not_after),
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            public_key,
        })
    }

    /// Serial as upper-case hex without leading zeros, e.g. `D7CE59D1F522D701`.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// `notBefore` in Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// `notAfter` in Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Subject distinguished name (RFC 4514 text), for logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Issuer distinguished name (RFC 4514 text), for logs.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The certificate's RSA public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whether `now` (Unix seconds) lies within `notBefore ..= notAfter`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whether `serial` names this certificate: hex compared
    /// case-insensitively after stripping leading zeros.
    pub fn has_serial(&self, serial: &str) -> bool {
        normalize_serial(serial) == self.serial
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &self.serial)
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CERT: &str = include_str!("../../tests/fixtures/wechatpay/test_platform_cert.pem");

    #[test]
    fn parses_the_go_sdk_test_certificate() {
        let c = Certificate::from_pem(TEST_CERT).unwrap();
        assert_eq!(c.serial(), "D7CE59D1F522D701");
        // 2021-04-27T08:55:23Z → 2031-04-25T08:55:23Z
        assert_eq!(c.not_before(), 1_619_513_723);
        assert_eq!(c.not_after(), 1_934_873_723);
        assert!(c.is_valid_at(1_624_523_846));
        assert!(!c.is_valid_at(1_619_513_722));
        assert!(!c.is_valid_at(1_934_873_724));
        assert!(c.has_serial("d7ce59d1f522d701") && c.has_serial("00D7CE59D1F522D701"));
        assert!(!c.has_serial("D7CE59D1F522D70"));
        assert_eq!(c.public_key().bits(), 2048);
        assert!(c.subject().contains("O=Default Company Ltd"), "{}", c.subject());
    }

    #[test]
    fn serial_normalisation() {
        assert_eq!(normalize_serial("00ab"), "AB");
        assert_eq!(normalize_serial("000"), "0");
        assert_eq!(normalize_serial(""), "");
    }

    #[test]
    fn rejects_non_certificates_cleanly() {
        let e = Certificate::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
        assert!(e.message().contains("expected PEM type CERTIFICATE"), "{}", e.message());
        let e = Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(e.message().contains("malformed DER"), "{}", e.message());
        assert!(Certificate::from_pem("garbage").is_err());
        assert!(Certificate::from_der(&[]).is_err());
    }
}
