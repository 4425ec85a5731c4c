//! cardbridge: membership-card integration for the Alipay+ Mini Program
//! Platform and WeChat Pay APIv3, as a synchronous Rust core with a C ABI.
//!
//! Module map (see `ARCHITECTURE.md`):
//! * cross-cutting: [`error`], [`clock`], [`crypto`], [`http`], [`retry`], [`store`], [`validate`];
//! * troubleshooting: [`diagnose`] (why a signature check failed, and the fix);
//! * the delivery engine for outbound calls: [`outbox`];
//! * platforms: [`alipayplus`], [`wechatpay`];
//! * the C ABI: `ffi` (the only module with `unsafe`).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod alipayplus;
pub mod clock;
pub mod crypto;
pub mod diagnose;
pub mod error;
pub mod http;
pub(crate) mod json;
pub mod obs;
pub mod outbox;
mod redact;
pub mod retry;
pub mod store;
pub mod validate;
pub mod wechatpay;

#[allow(unsafe_code)]
pub mod ffi;

pub use error::{Error, ErrorKind, Result};

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's Rust blocks, compiled (and run) as doctests so the README cannot
/// drift from the API; `tests/readme.rs` checks the other blocks.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The generated C header, for `tests/header.rs`.
#[doc(hidden)]
pub const GENERATED_HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/include/cardbridge.h"));
