//! RSASSA-PKCS1-v1_5 with SHA-256 ("SHA256withRSA"), the signature scheme of
//! both Alipay+ and WeChat Pay APIv3. Deterministic: equal inputs, equal output.

use super::keys::{PrivateKey, PublicKey};
use crate::error::{Error, Result};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey};

/// Signs `message` with `key`.
pub fn sign_sha256(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>> {
    let mut sig = vec![0u8; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut sig,
        )
        .map_err(|_| Error::internal("RSA signing", "aws-lc refused"))?;
    Ok(sig)
}

/// `true` when `signature` is a valid signature of `message` under `key`.
pub fn verify_sha256(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.key.as_ref().as_ref())
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::tests::{SPEC_PRIVATE_PEM, SPEC_PUBLIC_PEM};

    #[test]
    fn sign_then_verify_and_tamper() {
        let k = PrivateKey::from_pem(SPEC_PRIVATE_PEM).unwrap();
        let p = PublicKey::from_pem(SPEC_PUBLIC_PEM).unwrap();
        let sig = sign_sha256(&k, b"hello").unwrap();
        assert_eq!(sig.len(), 256);
        assert_eq!(sig, sign_sha256(&k, b"hello").unwrap(), "PKCS#1 v1.5 is deterministic");
        assert!(verify_sha256(&p, b"hello", &sig));
        assert!(!verify_sha256(&p, b"hellp", &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verify_sha256(&p, b"hello", &bad));
        assert!(!verify_sha256(&p, b"hello", &[]));
    }
}
