//! Decrypting a `GET /v3/certificates` answer into platform certificates
//! (`wechatpay-card-member.md` §8.2, vector §11.5).
//!
//! Each `data[]` entry's `encrypt_certificate` is AEAD_AES_256_GCM under the
//! APIv3 key; the tag authenticates the certificate. The decrypted serial must
//! equal the entry's `serial_no`. The response signature is checked separately
//! (with [`super::verify`]) once the certificates are known.

use crate::crypto::aead::ApiV3Key;
use crate::crypto::x509::{Certificate, normalize_serial};
use crate::error::{Error, ErrorKind, Result};
use serde::Deserialize;

/// The only algorithm WeChat Pay uses for sealed resources.
pub const AEAD_ALGORITHM: &str = "AEAD_AES_256_GCM";

#[derive(Deserialize)]
struct CertificatesResponse {
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    serial_no: String,
    encrypt_certificate: Sealed,
}

#[derive(Deserialize)]
struct Sealed {
    algorithm: String,
    nonce: String,
    #[serde(default)]
    associated_data: Option<String>,
    ciphertext: String,
}

/// Decrypts and parses every certificate in a `/v3/certificates` response
/// body, in order.
///
/// Errors carry the field path: `InvalidJson` for a body of the wrong shape,
/// `UnsupportedAlgorithm` for an algorithm other than `AEAD_AES_256_GCM`,
/// `DecryptFailed` for a bad ciphertext (usually a wrong APIv3 key),
/// `InvalidKey` for a plaintext that is not a usable certificate, and
/// `Protocol` when the decrypted serial differs from `serial_no`.
/// The `effective_time` / `expire_time` fields are not used: the
/// authenticated certificate's own validity is authoritative.
pub fn decrypt_certificates(key: &ApiV3Key, body: &[u8]) -> Result<Vec<Certificate>> {
    let value = crate::json::parse_strict(body, &crate::validate::Path::root("/v3/certificates response"))?;
    // serde's own message would quote the answer's values: only the shape is named.
    let parsed: CertificatesResponse = serde_json::from_value(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidJson,
            "/v3/certificates response: expected {\"data\":[{\"serial_no\",\"encrypt_certificate\":{…}}]}",
        )
        .with_field("data")
    })?;
    parsed
        .data
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = format!("data[{i}].encrypt_certificate");
            let sealed = &entry.encrypt_certificate;
            if sealed.algorithm != AEAD_ALGORITHM {
                return Err(Error::new(
                    ErrorKind::UnsupportedAlgorithm,
                    format!("{path}.algorithm: must be {AEAD_ALGORITHM}"),
                )
                .with_field(format!("{path}.algorithm")));
            }
            let aad = sealed.associated_data.as_deref().unwrap_or("");
            let plain = key
                .decrypt(sealed.nonce.as_bytes(), aad.as_bytes(), &sealed.ciphertext)
                .map_err(|e| Error::new(e.kind(), format!("{path}: {}", e.message())).with_field(path.clone()))?;
            let text = std::str::from_utf8(&plain).map_err(|_| {
                Error::new(ErrorKind::InvalidKey, format!("{path}: plaintext is not UTF-8 PEM"))
                    .with_field(path.clone())
            })?;
            let cert = Certificate::from_pem(text)
                .map_err(|e| Error::new(e.kind(), format!("{path}: {}", e.message())).with_field(path.clone()))?;
            if normalize_serial(&entry.serial_no) != cert.serial() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "data[{i}].serial_no: {} does not match the decrypted certificate serial {}",
                        normalize_serial(&entry.serial_no),
                        cert.serial()
                    ),
                )
                .with_field(format!("data[{i}].serial_no")));
            }
            Ok(cert)
        })
        .collect()
}
