//! RSA key loading: PEM PKCS#8 / PKCS#1 private keys, SPKI / PKCS#1 public
//! keys, and the bare Base64 DER form Ant's consoles hand out.
//!
//! Errors say what was wrong (encrypted PEM, wrong PEM type, weak key) and
//! never echo key material.

use crate::error::{Error, ErrorKind, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, PublicEncryptingKey};
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::KeyPair as _;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Smallest RSA modulus we accept, in bits (Alipay+ and WeChat both use 2048).
pub const MIN_RSA_BITS: usize = 2048;

/// An RSA private key (signing, OAEP decryption). Cheap to clone.
#[derive(Clone)]
pub struct PrivateKey {
    pub(crate) pair: Arc<KeyPair>,
    pkcs8: Arc<Zeroizing>,
    /// The OAEP decryption form, parsed on first use (parsing an RSA key is costly).
    oaep: Arc<OnceLock<Option<OaepPrivateDecryptingKey>>>,
}

/// Key bytes that are wiped when dropped (also used for the WeChat APIv3 key).
pub(crate) struct Zeroizing(pub(crate) Vec<u8>);
impl Drop for Zeroizing {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            wipe(b);
        }
    }
}
/// Zeroes one byte through `black_box` so the wipe is not optimised away.
#[inline(never)]
fn wipe(b: &mut u8) {
    *std::hint::black_box(b) = 0;
}

/// An RSA public key (verification, OAEP encryption). Cheap to clone.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) key: Arc<aws_lc_rs::rsa::PublicKey>,
    spki_der: Arc<Vec<u8>>,
    bits: usize,
    /// The OAEP encryption form, parsed on first use.
    oaep: Arc<OnceLock<Option<OaepPublicEncryptingKey>>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(RSA-{}, redacted)", self.bits())
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{})", self.bits)
    }
}

fn key_error(what: &str, detail: impl fmt::Display) -> Error {
    let detail = detail.to_string();
    if detail.contains("TooSmall") {
        // aws-lc refuses weak keys before we can measure them
        return Error::new(
            ErrorKind::InvalidKey,
            format!("{what}: RSA key is too small; at least {MIN_RSA_BITS} bits are required"),
        );
    }
    Error::new(ErrorKind::InvalidKey, format!("{what}: {detail}"))
}

/// Splits text into (PEM label, DER) or treats it as bare Base64 DER.
fn decode_pem_or_base64(text: &str, what: &str) -> Result<(Option<String>, Vec<u8>)> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(key_error(what, "empty input"));
    }
    if trimmed.starts_with("-----BEGIN") {
        let parsed = pem::parse(trimmed).map_err(|e| key_error(what, super::pem_problem(&e)))?;
        return Ok((Some(parsed.tag().to_string()), parsed.contents().to_vec()));
    }
    // Bare Base64 of the DER (what Ant's console and the Java SDK use); tolerate line breaks.
    let compact: String = trimmed.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = crate::crypto::b64_decode_strict(&compact)
        .ok_or_else(|| key_error(what, "neither PEM nor Base64-encoded DER"))?;
    Ok((None, der))
}

impl PrivateKey {
    /// Loads a private key from PEM (`PRIVATE KEY` = PKCS#8, `RSA PRIVATE KEY` =
    /// PKCS#1) or from bare Base64 DER of either. Encrypted keys are refused.
    pub fn from_pem(text: &str) -> Result<Self> {
        const WHAT: &str = "private key";
        let (label, der) = decode_pem_or_base64(text, WHAT)?;
        let pair = match label.as_deref() {
            Some("PRIVATE KEY") => {
                KeyPair::from_pkcs8(&der).map_err(|e| key_error(WHAT, format!("not an RSA PKCS#8 key ({e})")))?
            }
            Some("RSA PRIVATE KEY") => {
                if text.contains("Proc-Type: 4,ENCRYPTED") {
                    return Err(key_error(
                        WHAT,
                        "encrypted PEM is not supported; export the key without a passphrase",
                    ));
                }
                KeyPair::from_der(&der).map_err(|e| key_error(WHAT, format!("not an RSA PKCS#1 key ({e})")))?
            }
            Some("ENCRYPTED PRIVATE KEY") => {
                return Err(key_error(
                    WHAT,
                    "encrypted PEM is not supported; export the key without a passphrase",
                ));
            }
            Some(other) => {
                return Err(key_error(
                    WHAT,
                    format!(
                        "expected PEM type PRIVATE KEY or RSA PRIVATE KEY, got {}",
                        super::pem_label(other)
                    ),
                ));
            }
            None => KeyPair::from_pkcs8(&der)
                .or_else(|_| KeyPair::from_der(&der))
                .map_err(|_| key_error(WHAT, "Base64 DER is neither an RSA PKCS#8 nor a PKCS#1 key"))?,
        };
        let bits = pair.public_modulus_len() * 8;
        if bits < MIN_RSA_BITS {
            return Err(key_error(
                WHAT,
                format!("RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"),
            ));
        }
        let pkcs8 = match label.as_deref() {
            Some("PRIVATE KEY") | None if KeyPair::from_pkcs8(&der).is_ok() => der,
            _ => pair
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| key_error(WHAT, "cannot re-encode key as PKCS#8"))?,
        };
        Ok(PrivateKey {
            pair: Arc::new(pair),
            pkcs8: Arc::new(Zeroizing(pkcs8)),
            oaep: Arc::default(),
        })
    }

    /// Generates a fresh RSA-2048 key (used by the emulator and tests).
    pub fn generate_rsa2048() -> Result<Self> {
        let pair = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| Error::internal("key generation", "aws-lc refused"))?;
        let der = pair.as_der().map_err(|_| Error::internal("key generation", "encode"))?;
        let pkcs8 = der.as_ref().to_vec();
        Ok(PrivateKey {
            pair: Arc::new(pair),
            pkcs8: Arc::new(Zeroizing(pkcs8)),
            oaep: Arc::default(),
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let pk = self.pair.public_key().clone();
        PublicKey::from_aws(pk).expect("public half of a valid key pair is valid")
    }

    /// The key in its OAEP decryption form, parsed once per key.
    pub(crate) fn oaep_decrypting(&self) -> Result<&OaepPrivateDecryptingKey> {
        self.oaep
            .get_or_init(|| {
                PrivateDecryptingKey::from_pkcs8(&self.pkcs8.0)
                    .ok()
                    .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
            })
            .as_ref()
            .ok_or_else(|| key_error("private key", "cannot be used for RSA-OAEP"))
    }

    /// PEM (PKCS#8) text of this key, for handing a generated key to a peer in tests.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.0.clone()))
    }
}

impl PublicKey {
    /// Loads a public key from PEM `PUBLIC KEY` (SPKI), PEM `RSA PUBLIC KEY`
    /// (PKCS#1) or bare Base64 DER of either.
    pub fn from_pem(text: &str) -> Result<Self> {
        const WHAT: &str = "public key";
        let (label, der) = decode_pem_or_base64(text, WHAT)?;
        match label.as_deref() {
            Some("PUBLIC KEY") | Some("RSA PUBLIC KEY") | None => {}
            Some("CERTIFICATE") => {
                return Err(key_error(
                    WHAT,
                    "got a CERTIFICATE; pass the public key (PEM PUBLIC KEY) instead",
                ));
            }
            Some(other) => {
                return Err(key_error(
                    WHAT,
                    format!("expected PEM type PUBLIC KEY, got {}", super::pem_label(other)),
                ));
            }
        }
        let key = aws_lc_rs::rsa::PublicKey::from_der(&der)
            .map_err(|e| key_error(WHAT, format!("not an RSA public key ({e})")))?;
        Self::from_aws(key)
    }

    /// Loads a public key from SubjectPublicKeyInfo DER (e.g. out of a certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| key_error("public key", format!("not an RSA public key ({e})")))?;
        Self::from_aws(key)
    }

    fn from_aws(key: aws_lc_rs::rsa::PublicKey) -> Result<Self> {
        let spki = key
            .as_der()
            .map_err(|_| key_error("public key", "cannot encode as SPKI"))?;
        let spki_der = spki.as_ref().to_vec();
        let bits = PublicEncryptingKey::from_der(&spki_der)
            .map_err(|e| key_error("public key", e))?
            .key_size_bits();
        if bits < MIN_RSA_BITS {
            return Err(key_error(
                "public key",
                format!("RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"),
            ));
        }
        Ok(PublicKey {
            key: Arc::new(key),
            spki_der: Arc::new(spki_der),
            bits,
            oaep: Arc::default(),
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key in its OAEP encryption form, parsed once per key.
    pub(crate) fn oaep_encrypting(&self) -> Result<&OaepPublicEncryptingKey> {
        self.oaep
            .get_or_init(|| {
                PublicEncryptingKey::from_der(&self.spki_der)
                    .ok()
                    .and_then(|k| OaepPublicEncryptingKey::new(k).ok())
            })
            .as_ref()
            .ok_or_else(|| key_error("public key", "cannot be used for RSA-OAEP"))
    }

    /// PEM `PUBLIC KEY` text.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der.to_vec()))
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}
impl Eq for PublicKey {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The throwaway key of `alipayplus-mpp.md` §5.1.
    pub const SPEC_PRIVATE_PEM: &str = include_str!("../../tests/fixtures/keys/spec_alipay_private.pem");
    pub const SPEC_PUBLIC_PEM: &str = include_str!("../../tests/fixtures/keys/spec_alipay_public.pem");

    #[test]
    fn loads_pkcs8_and_spki_and_they_match() {
        let k = PrivateKey::from_pem(SPEC_PRIVATE_PEM).unwrap();
        assert_eq!(k.bits(), 2048);
        let p = PublicKey::from_pem(SPEC_PUBLIC_PEM).unwrap();
        assert_eq!(k.public_key(), p);
    }

    #[test]
    fn loads_bare_base64_der() {
        let pem = pem::parse(SPEC_PRIVATE_PEM).unwrap();
        let b64 = crate::crypto::b64_encode(pem.contents());
        let k = PrivateKey::from_pem(&b64).unwrap();
        let p = PublicKey::from_pem(&crate::crypto::b64_encode(
            pem::parse(SPEC_PUBLIC_PEM).unwrap().contents(),
        ))
        .unwrap();
        assert_eq!(k.public_key(), p);
    }

    #[test]
    fn loads_pkcs1_private_and_public() {
        let k = PrivateKey::from_pem(SPEC_PRIVATE_PEM).unwrap();
        let pkcs1_pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/spec_alipay_private_pkcs1.pem"
        ))
        .unwrap();
        let k1 = PrivateKey::from_pem(&pkcs1_pem).unwrap();
        assert_eq!(k1.public_key(), k.public_key());
        let pub_pkcs1 = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/spec_alipay_public_pkcs1.pem"
        ))
        .unwrap();
        assert_eq!(PublicKey::from_pem(&pub_pkcs1).unwrap(), k.public_key());
    }

    #[test]
    fn clear_errors_for_wrong_inputs() {
        let err = PrivateKey::from_pem(SPEC_PUBLIC_PEM).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(
            err.message().contains("expected PEM type PRIVATE KEY"),
            "{}",
            err.message()
        );

        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = PrivateKey::from_pem(enc).unwrap_err();
        assert!(
            err.message().contains("encrypted PEM is not supported"),
            "{}",
            err.message()
        );

        let err = PublicKey::from_pem(SPEC_PRIVATE_PEM).unwrap_err();
        assert!(
            err.message().contains("expected PEM type PUBLIC KEY"),
            "{}",
            err.message()
        );

        assert!(PrivateKey::from_pem("").unwrap_err().message().contains("empty"));
        assert!(
            PrivateKey::from_pem("not a key!")
                .unwrap_err()
                .message()
                .contains("neither PEM nor Base64")
        );
        let broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(PrivateKey::from_pem(broken).unwrap_err().kind(), ErrorKind::InvalidKey);
    }

    #[test]
    fn rejects_keys_below_2048_bits() {
        let small = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/rsa1024_private.pem"
        ))
        .unwrap();
        let err = PrivateKey::from_pem(&small).unwrap_err();
        assert!(err.message().contains("at least 2048"), "{}", err.message());
    }

    #[test]
    fn debug_output_is_redacted() {
        let k = PrivateKey::from_pem(SPEC_PRIVATE_PEM).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("MII"));
    }
}
