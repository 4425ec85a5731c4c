//! AEAD_AES_256_GCM as WeChat Pay APIv3 uses it (`wechatpay-card-member.md` §8.4):
//! RFC 5116 AES-GCM, 12-byte nonce, 16-byte tag appended to the ciphertext,
//! everything Base64 on the wire.
//!
//! The free functions [`encrypt`] / [`decrypt`] are the primitive and accept a
//! 16- or 32-byte key (AES-128 / AES-256), so the public 16-byte test vectors
//! can run against them. Configuration goes through [`ApiV3Key`], which only
//! accepts exactly 32 bytes, as WeChat Pay requires.

use super::keys::Zeroizing;
use crate::error::{Error, ErrorKind, Result};
use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use std::fmt;
use std::sync::Arc;

/// Nonce length in bytes (`resource.nonce`, 12 characters).
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes, appended to the ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of a WeChat Pay APIv3 key in bytes.
pub const API_V3_KEY_LEN: usize = 32;

/// The merchant's APIv3 key: exactly 32 raw bytes (the ASCII characters of
/// the key string, not hex- or Base64-decoded). Cheap to clone; the bytes are
/// wiped when the last clone is dropped and `Debug` never shows them.
#[derive(Clone)]
pub struct ApiV3Key(Arc<Zeroizing>);

impl ApiV3Key {
    /// Takes the key bytes; anything but 32 bytes is an `InvalidConfig` error
    /// that states the length and never echoes the key.
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() != API_V3_KEY_LEN {
            return Err(Error::config(format!(
                "APIv3 key must be exactly {API_V3_KEY_LEN} bytes, got {}",
                key.len()
            )));
        }
        Ok(ApiV3Key(Arc::new(Zeroizing(key.to_vec()))))
    }

    /// [`decrypt`] with this key.
    pub fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext_b64: &str) -> Result<Vec<u8>> {
        decrypt(&self.0.0, nonce, aad, ciphertext_b64)
    }

    /// [`encrypt`] with this key.
    pub fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<String> {
        encrypt(&self.0.0, nonce, aad, plaintext)
    }
}

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(redacted)")
    }
}

fn decrypt_error(detail: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::DecryptFailed,
        format!("AEAD_AES_256_GCM decryption failed: {detail}"),
    )
}

/// An AES-GCM key for a 16- or 32-byte key; other lengths are `InvalidKey`.
fn gcm_key(key: &[u8]) -> Result<LessSafeKey> {
    let algorithm = match key.len() {
        16 => &AES_128_GCM,
        32 => &AES_256_GCM,
        n => {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!("AES-GCM key must be 16 or 32 bytes, got {n}"),
            ));
        }
    };
    let unbound =
        UnboundKey::new(algorithm, key).map_err(|_| Error::internal("AES-GCM key setup", "aws-lc refused"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Decrypts Base64(`ciphertext ‖ tag`) with `key` (16 or 32 bytes), the
/// 12-byte `nonce` and the associated data `aad` (empty when absent).
///
/// Bad Base64, a nonce that is not 12 bytes, input shorter than the tag
/// (including empty input) and a tag mismatch (wrong key, nonce, AAD or
/// tampered data) are all `DecryptFailed`; a wrong key length is `InvalidKey`.
pub fn decrypt(key: &[u8], nonce: &[u8], aad: &[u8], ciphertext_b64: &str) -> Result<Vec<u8>> {
    let key = gcm_key(key)?;
    if nonce.len() != NONCE_LEN {
        return Err(decrypt_error(format!(
            "nonce must be {NONCE_LEN} bytes, got {}",
            nonce.len()
        )));
    }
    let mut data =
        super::b64_decode_strict(ciphertext_b64).ok_or_else(|| decrypt_error("ciphertext is not valid Base64"))?;
    if data.len() < TAG_LEN {
        return Err(decrypt_error(format!(
            "ciphertext is {} bytes, shorter than the {TAG_LEN}-byte tag",
            data.len()
        )));
    }
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| decrypt_error("bad nonce"))?;
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut data)
        .map_err(|_| decrypt_error("authentication tag mismatch (wrong APIv3 key, nonce or associated data)"))?
        .len();
    data.truncate(plain_len);
    Ok(data)
}

/// Encrypts `plaintext` with `key` (16 or 32 bytes), the 12-byte `nonce` and
/// `aad`, returning Base64(`ciphertext ‖ tag`) — the inverse of [`decrypt`].
/// Used by the emulator to build callbacks and certificate downloads.
pub fn encrypt(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<String> {
    let key = gcm_key(key)?;
    if nonce.len() != NONCE_LEN {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("AES-GCM nonce must be {NONCE_LEN} bytes, got {}", nonce.len()),
        ));
    }
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::new(ErrorKind::InvalidParameter, "AES-GCM nonce rejected"))?;
    let mut data = plaintext.to_vec();
    key.seal_in_place_append_tag(nonce, Aad::from(aad), &mut data)
        .map_err(|_| Error::internal("AES-GCM encryption", "aws-lc refused"))?;
    Ok(super::b64_encode(&data))
}

#[cfg(test)]
mod tests {
    use super::*;

    // §11.4 (wechatpay-java AeadAesCipherTest)
    const KEY: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
    const NONCE: &[u8] = b"uluk4a9R25RW";
    const AAD: &[u8] = b"associatedData";
    const CT: &str = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=";

    #[test]
    fn java_vector_both_directions() {
        let k = ApiV3Key::new(KEY).unwrap();
        assert_eq!(k.decrypt(NONCE, AAD, CT).unwrap(), b"message");
        assert_eq!(k.encrypt(NONCE, AAD, b"message").unwrap(), CT);
    }

    #[test]
    fn go_aes_util_vector_with_16_byte_key() {
        // §11.3: AES-128 at the primitive level only
        let pt = decrypt(
            b"testAPIv3Key0000",
            b"wCq51qZv4Yfg",
            b"Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC",
        )
        .unwrap();
        assert_eq!(pt, b"Hello World");
        let err = ApiV3Key::new(b"testAPIv3Key0000").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn negative_cases_are_decrypt_failed() {
        let k = ApiV3Key::new(KEY).unwrap();
        let check = |r: Result<Vec<u8>>, needle: &str| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DecryptFailed, "{}", e.message());
            assert!(e.message().contains(needle), "{}", e.message());
        };
        check(k.decrypt(NONCE, b"associatedDatA", CT), "tag mismatch");
        check(k.decrypt(b"bad-4a9R25RW", AAD, CT), "tag mismatch");
        check(k.decrypt(b"uluk4a9R25R", AAD, CT), "nonce must be 12 bytes, got 11");
        check(k.decrypt(NONCE, AAD, ""), "shorter than the 16-byte tag");
        check(k.decrypt(NONCE, AAD, "!!notbase64"), "not valid Base64");
        let mut raw = crate::crypto::b64_decode_strict(CT).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x01; // flip one tag bit
        check(k.decrypt(NONCE, AAD, &crate::crypto::b64_encode(&raw)), "tag mismatch");
        // Empty plaintext round-trips: a bare tag is a valid ciphertext.
        let only_tag = k.encrypt(NONCE, AAD, b"").unwrap();
        assert_eq!(k.decrypt(NONCE, AAD, &only_tag).unwrap(), b"");
    }

    #[test]
    fn key_length_rules() {
        for n in [0usize, 16, 31, 33, 40] {
            let e = ApiV3Key::new(&vec![b'k'; n]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert_eq!(e.message(), format!("APIv3 key must be exactly 32 bytes, got {n}"));
        }
        let e = decrypt(&[0u8; 24], NONCE, AAD, CT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
        let e = encrypt(KEY, b"short", AAD, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    }

    #[test]
    fn debug_is_redacted() {
        let k = ApiV3Key::new(KEY).unwrap();
        let dbg = format!("{k:?}");
        assert_eq!(dbg, "ApiV3Key(redacted)");
    }
}
