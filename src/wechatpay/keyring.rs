//! WeChat Pay's verification and encryption keys (`wechatpay-card-member.md`
//! §7.2, §8.1–8.3): public keys by `PUB_KEY_ID_…` and platform certificates
//! by serial, both at once during a migration.

use crate::crypto::keys::PublicKey;
use crate::crypto::x509::{Certificate, normalize_serial};
use crate::error::{Error, ErrorKind, Result};

/// The prefix of every WeChat Pay public key ID.
pub const PUB_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

/// WeChat Pay public keys and platform certificates. Lookups take the
/// caller's `now` (Unix seconds) so certificate validity is testable.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// (ID, key) in insertion order; the last one is preferred for encryption.
    public_keys: Vec<(String, PublicKey)>,
    certificates: Vec<Certificate>,
}

impl KeyRing {
    /// An empty key ring.
    pub fn new() -> Self {
        KeyRing::default()
    }

    /// Adds (or replaces) the WeChat Pay public key with ID `id`, which must be
    /// `PUB_KEY_ID_` followed by digits (`InvalidConfig` otherwise).
    pub fn add_public_key(&mut self, id: &str, key: PublicKey) -> Result<()> {
        let digits = id.strip_prefix(PUB_KEY_ID_PREFIX).unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                Error::config("wechatpay.public_key_id: must be PUB_KEY_ID_ followed by digits")
                    .with_field("wechatpay.public_key_id"),
            );
        }
        self.public_keys.retain(|(existing, _)| existing != id);
        self.public_keys.push((id.to_string(), key));
        Ok(())
    }

    /// Adds (or replaces, by serial) a platform certificate.
    pub fn add_certificate(&mut self, cert: Certificate) {
        self.certificates.retain(|c| c.serial() != cert.serial());
        self.certificates.push(cert);
    }

    /// Replaces all platform certificates (after a `/v3/certificates` refresh).
    pub fn set_certificates(&mut self, certs: Vec<Certificate>) {
        self.certificates.clear();
        for c in certs {
            self.add_certificate(c);
        }
    }

    /// The configured public key IDs.
    pub fn public_key_ids(&self) -> impl Iterator<Item = &str> {
        self.public_keys.iter().map(|(id, _)| id.as_str())
    }

    /// The platform certificates held, valid or not.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// The key that verifies a message carrying `Wechatpay-Serial: serial`:
    /// `PUB_KEY_ID_…` matches a public key ID exactly (case-sensitive);
    /// anything else is a certificate serial, compared case-insensitively
    /// without leading zeros, and the certificate must be valid at `now`.
    /// No match is `UnknownKeySerial` (the message names the serial and, for
    /// a certificate outside its validity, says so).
    pub fn verification_key(&self, serial: &str, now: i64) -> Result<&PublicKey> {
        let unknown = |why: &str| {
            Error::new(
                ErrorKind::UnknownKeySerial,
                format!("Wechatpay-Serial {}: {why}", printable(serial)),
            )
        };
        if serial.starts_with(PUB_KEY_ID_PREFIX) {
            return self
                .public_keys
                .iter()
                .find(|(id, _)| id == serial)
                .map(|(_, k)| k)
                .ok_or_else(|| unknown("no WeChat Pay public key with this ID is configured"));
        }
        let wanted = normalize_serial(serial);
        let cert = self
            .certificates
            .iter()
            .find(|c| c.serial() == wanted)
            .ok_or_else(|| unknown("no platform certificate with this serial"))?;
        if !cert.is_valid_at(now) {
            return Err(unknown(if now < cert.not_before() {
                "platform certificate is not yet valid"
            } else {
                "platform certificate has expired"
            }));
        }
        Ok(cert.public_key())
    }

    /// The key that encrypts outbound sensitive fields, with the value for
    /// the request's `Wechatpay-Serial` header (§8.3): the most recently added
    /// public key if any, else the valid certificate with the latest
    /// `notBefore`. None → `InvalidConfig`.
    pub fn encryption_key(&self, now: i64) -> Result<(String, PublicKey)> {
        if let Some((id, key)) = self.public_keys.last() {
            return Ok((id.clone(), key.clone()));
        }
        self.certificates
            .iter()
            .filter(|c| c.is_valid_at(now))
            .max_by_key(|c| (c.not_before(), c.not_after()))
            .map(|c| (c.serial().to_string(), c.public_key().clone()))
            .ok_or_else(|| {
                Error::config("wechatpay: no WeChat Pay public key and no currently valid platform certificate")
            })
    }
}

/// A header value safe to put in a message: at most 64 printable ASCII characters.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
