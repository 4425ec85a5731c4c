//! WeChat Pay APIv3 brand member cards for service providers
//! (`wechatpay-card-member.md`): the cryptographic foundation.
//!
//! * [`sign`]: request signing and the `Authorization` header (§6), nonces,
//!   path-segment encoding (§5.1);
//! * [`verify`]: verification of responses and callbacks — message, headers,
//!   signature type, 300 s clock skew, `WECHATPAY/SIGNTEST/` probes (§7);
//! * [`keyring`]: WeChat Pay public keys and platform certificates, key
//!   selection for verification and for outbound encryption (§7.2, §8.1–8.3);
//! * [`certificates`]: decrypting a `/v3/certificates` answer (§8.2).
//!
//! The primitives live in [`crate::crypto`]: [`crate::crypto::aead`]
//! (AEAD_AES_256_GCM, [`crate::crypto::aead::ApiV3Key`]), [`crate::crypto::oaep`]
//! (RSA-OAEP SHA-1 sensitive fields, §9) and [`crate::crypto::x509`].

pub mod certificates;
pub mod config;
pub mod keyring;
pub mod model;
pub mod sign;
pub mod verify;

pub use certificates::decrypt_certificates;
pub use keyring::KeyRing;
pub use sign::{RequestSigner, SignedRequest};
pub use verify::{Verified, VerifyFailure, VerifyOptions, VerifyReason};
