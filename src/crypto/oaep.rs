//! RSAES-OAEP with SHA-1 and MGF1(SHA-1), empty label, Base64 ciphertext:
//! the WeChat Pay APIv3 scheme for sensitive fields (`wechatpay-card-member.md` §9).
//!
//! Outbound fields are encrypted to the WeChat Pay public key (or platform
//! certificate); inbound fields are decrypted with the merchant private key.
//! OAEP is randomised, so equal plaintexts give different ciphertexts.

use super::keys::{PrivateKey, PublicKey};
use crate::error::{Error, ErrorKind, Result};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepAlgorithm};

/// OAEP overhead with SHA-1: two 20-byte hashes plus two bytes.
pub const OAEP_SHA1_OVERHEAD: usize = 2 * 20 + 2;

/// The longest plaintext, in bytes, that fits `public`:
/// `modulus_bytes − 42` (214 for a 2048-bit key).
pub fn max_plaintext_len(public: &PublicKey) -> usize {
    (public.bits() / 8).saturating_sub(OAEP_SHA1_OVERHEAD)
}

/// Encrypts `plaintext` (e.g. a phone number's UTF-8 bytes) to `public` and
/// returns the Base64 ciphertext.
///
/// A plaintext longer than [`max_plaintext_len`] is refused with
/// `PlaintextTooLong` before RSA runs; the message names the byte limit
/// ("at most 214 bytes" for 2048-bit keys). Callers add the field path with
/// [`Error::with_field`].
pub fn encrypt(public: &PublicKey, plaintext: &[u8]) -> Result<String> {
    let max = max_plaintext_len(public);
    if plaintext.len() > max {
        return Err(Error::new(
            ErrorKind::PlaintextTooLong,
            format!(
                "RSA-OAEP plaintext is {} bytes; at most {max} bytes fit a {}-bit key",
                plaintext.len(),
                public.bits()
            ),
        ));
    }
    let key = public.oaep_encrypting()?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let ct = key
        .encrypt(&OAEP_SHA1_MGF1SHA1, plaintext, &mut out, None)
        .map_err(|_| Error::internal("RSA-OAEP encryption", "aws-lc refused"))?;
    Ok(super::b64_encode(ct))
}

/// Decrypts a Base64 RSA-OAEP (SHA-1) ciphertext with the merchant key.
/// Bad Base64, a wrong length, a wrong key or wrong padding are `DecryptFailed`.
pub fn decrypt(private: &PrivateKey, ciphertext_b64: &str) -> Result<Vec<u8>> {
    decrypt_with(private, &OAEP_SHA1_MGF1SHA1, ciphertext_b64)
}

fn decrypt_with(private: &PrivateKey, algorithm: &'static OaepAlgorithm, ciphertext_b64: &str) -> Result<Vec<u8>> {
    let fail = |detail: &str| {
        Error::new(
            ErrorKind::DecryptFailed,
            format!("RSA-OAEP decryption failed: {detail}"),
        )
    };
    let ct = super::b64_decode_strict(ciphertext_b64).ok_or_else(|| fail("ciphertext is not valid Base64"))?;
    let modulus_bytes = private.bits() / 8;
    if ct.len() != modulus_bytes {
        return Err(fail(&format!(
            "ciphertext is {} bytes, expected {modulus_bytes} for this key",
            ct.len()
        )));
    }
    let key = private.oaep_decrypting()?;
    let mut out = vec![0u8; key.min_output_size()];
    let len = key
        .decrypt(algorithm, &ct, &mut out, None)
        .map_err(|_| fail("wrong key or not OAEP-SHA1 padding"))?
        .len();
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256;

    const MERCHANT_PEM: &str = include_str!("../../tests/fixtures/wechatpay/merchant_private.pem");
    // §11.6.3: "13800000000" encrypted to the §11.2 certificate's key (= the §11.1 key)
    const PHONE_CT: &str = "amoEqDHEEKtMX4+BdBfaeDjrz7pedmE7k+CiTl8i19UBPVUdTdAxgcxZSuPp7g5dacHqq+r5yJ4XYy/1t6Zhtj+K4jK5ffLxgs8TU++8puzEdCGa6wQM3PwsFYRzJbFWLKHYSyBEuSRsnJA5wNhw8H63jBwsi2EfVwfbsyu3BZjV3HSJID/PzJbVOvXQa0SwoZi/J+oh4fwQGq87ElxJRQp9Zw435TdorXvkkJ7IugyQyuOm3/ywXrkM0svltkXj2BV6lDgNfNydqxX3qs4oU2l/zraSLOfvSN9GZSdNqK7w/A7/CIXfx1waq8kefxqCnfvkolni47JbeeJR7q3b6Q==";

    #[test]
    fn sha256_parameters_do_not_decrypt_the_sha1_vector() {
        let k = PrivateKey::from_pem(MERCHANT_PEM).unwrap();
        assert_eq!(decrypt(&k, PHONE_CT).unwrap(), b"13800000000");
        let e = decrypt_with(&k, &OAEP_SHA256_MGF1SHA256, PHONE_CT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DecryptFailed);
    }

    #[test]
    fn limit_is_checked_before_rsa() {
        let k = PrivateKey::from_pem(MERCHANT_PEM).unwrap();
        assert_eq!(max_plaintext_len(&k.public_key()), 214);
        let e = encrypt(&k.public_key(), &[b'x'; 215]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PlaintextTooLong);
        assert!(e.message().contains("at most 214 bytes"), "{}", e.message());
    }
}
