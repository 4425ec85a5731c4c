//! RSA key handles: the first real exports, showing the patterns for Arc
//! handles, string inputs and owned byte outputs.

use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::ffi::bytes::cardbridge_bytes;
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, free_arc};
use std::ffi::c_char;

/// An RSA private key (at least 2048 bits), immutable and shareable between
/// threads. The key bytes are wiped when the last reference is released.
pub struct cardbridge_private_key {
    _private: [u8; 0],
}

impl Castable for cardbridge_private_key {
    type Ownership = OwnershipArc;
    type RustType = PrivateKey;
}

/// An RSA public key (at least 2048 bits), immutable and shareable between threads.
pub struct cardbridge_public_key {
    _private: [u8; 0],
}

impl Castable for cardbridge_public_key {
    type Ownership = OwnershipArc;
    type RustType = PublicKey;
}

/// Loads a private key from PEM (`PRIVATE KEY` = PKCS#8 or `RSA PRIVATE KEY` =
/// PKCS#1) or from bare Base64 DER of either, as Ant's console hands it out.
/// Encrypted PEM and keys under 2048 bits are refused.
///
/// `pem` is UTF-8 text of `pem_len` bytes, no NUL terminator needed; it is
/// only read during the call. On success `*key_out` receives the key.
/// Ownership: the caller owns `*key_out` and must release it with
/// `cardbridge_private_key_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_KEY` (the message says what is wrong and never
/// echoes key material). On failure `*key_out` is unchanged and, if
/// `error_out` is not NULL, `*error_out` receives an error the caller must
/// release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_private_key_from_pem(
    pem: *const c_char,
    pem_len: usize,
    key_out: *mut *const cardbridge_private_key,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let key_out = try_out!(key_out);
        let pem = try_str!(pem, pem_len);
        key_out.write_arc(PrivateKey::from_pem(pem)?);
        Ok(())
    })
}

/// Releases the caller's reference to a private key. NULL is a no-op.
///
/// Ownership: takes `key`, which must not be used afterwards. Objects built
/// from the key keep their own reference, so this may be called as soon as
/// they exist.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_private_key_free(key: *const cardbridge_private_key) {
    ffi_boundary!({
        // SAFETY: `key` is NULL or a key reference the caller owns and gives up.
        unsafe { free_arc(key) }
    })
}

/// Writes the matching public key as PEM `PUBLIC KEY` (SubjectPublicKeyInfo)
/// text into `*pem_out`, e.g. to register it on a platform console.
///
/// Borrowed: `key` is only read during the call. On success `*pem_out`
/// receives UTF-8 text followed by a NUL not counted in its `len`.
/// Ownership: the caller owns `*pem_out` and must release it with
/// `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`. On failure `*pem_out` is
/// unchanged; `error_out` as for `cardbridge_private_key_from_pem`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_private_key_public_key_pem(
    key: *const cardbridge_private_key,
    pem_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let key = try_ref!(key);
        let pem_out = try_out!(pem_out);
        pem_out.write_bytes(key.public_key().to_pem().into_bytes());
        Ok(())
    })
}

/// Loads a public key from PEM `PUBLIC KEY` (SubjectPublicKeyInfo), PEM
/// `RSA PUBLIC KEY` (PKCS#1) or bare Base64 DER of either. Keys under 2048
/// bits are refused.
///
/// `pem` is UTF-8 text of `pem_len` bytes, no NUL terminator needed; it is
/// only read during the call. On success `*key_out` receives the key.
/// Ownership: the caller owns `*key_out` and must release it with
/// `cardbridge_public_key_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_KEY`. On failure `*key_out` is unchanged and, if
/// `error_out` is not NULL, `*error_out` receives an error the caller must
/// release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_public_key_from_pem(
    pem: *const c_char,
    pem_len: usize,
    key_out: *mut *const cardbridge_public_key,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let key_out = try_out!(key_out);
        let pem = try_str!(pem, pem_len);
        key_out.write_arc(PublicKey::from_pem(pem)?);
        Ok(())
    })
}

/// Releases the caller's reference to a public key. NULL is a no-op.
///
/// Ownership: takes `key`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_public_key_free(key: *const cardbridge_public_key) {
    ffi_boundary!({
        // SAFETY: `key` is NULL or a key reference the caller owns and gives up.
        unsafe { free_arc(key) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arc handles may be used from several threads at once (§5.4).
    #[test]
    fn arc_key_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<<cardbridge_private_key as Castable>::RustType>();
        assert_send_sync::<<cardbridge_public_key as Castable>::RustType>();
    }
}
