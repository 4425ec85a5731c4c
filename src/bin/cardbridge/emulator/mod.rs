//! Loopback platform emulator: test support, not production code, and not in
//! the library: it lives in the `cardbridge` binary (`cardbridge emulator`,
//! which the C, Python and C# suites start), and the Rust integration tests
//! and the demo compile this module into themselves with
//! `#[path = ".../src/bin/cardbridge/emulator/mod.rs"]`. It uses the library
//! through its public API only. It exercises the full protocol without a real
//! platform account:
//!
//! * [`AlipayPlatformEmulator`] plays the Alipay+ platform's `issueCard`
//!   endpoint: it verifies the merchant's signature exactly as the platform
//!   does, issues cards idempotently by `requestId`, signs its answers with a
//!   test platform key, and can inject [`Fault`]s (`U`/`F` answers, HTTP
//!   errors, lost or delayed answers, missing or bad signatures) to prove the
//!   client's retry and verification rules.
//! * [`PlatformDriver`] plays the platform as a caller: it builds signed (or
//!   deliberately spoiled, see [`Tamper`]) platform → merchant requests, sends
//!   them to a merchant endpoint and checks the merchant's signed answer.
//! * [`WechatPayEmulator`] plays the WeChat Pay card-member APIs: it verifies
//!   the merchant's `Authorization` and `Wechatpay-Serial` like the real
//!   service, decrypts sensitive request fields, confirms / reads / updates
//!   user cards and syncs points, serves `/v3/certificates` in certificate
//!   mode, signs its answers, injects [`WechatFault`]s, and builds signed card
//!   callbacks (optionally spoiled, see [`CallbackTamper`]) for a merchant's
//!   `notify_url`.
//! * [`HttpServer`] is the tiny HTTP/1.1 server underneath, usable on its own
//!   as a stub endpoint.
//! * [`AlipayPlatformHandler`] and [`WechatPayHandler`] are the two
//!   emulators without a server of their own, for a host that serves both
//!   from one port (the `cardbridge emulator` binary).
//!
//! Everything listens on `127.0.0.1` only, speaks plain HTTP (which the
//! library's transport accepts for loopback hosts only) and uses test keys.

pub mod alipayplus;
pub mod brand;
pub mod server;
pub mod wechatpay;

pub use alipayplus::{
    AlipayPlatformEmulator, AlipayPlatformHandler, EmulatorConfig, Fault, ISSUE_CARD_PATH, PlatformDriver, Tamper,
    sample_registration,
};
pub use brand::{sample_event, sample_point_exchange_coupon, sample_sync_user_point};
pub use server::{Action, HttpServer, MAX_BODY_BYTES, text_response};
pub use wechatpay::{
    CallbackTamper, PlatformCertificate, RandomFaults, SAMPLE_BRAND_ID, WechatEmulatorConfig, WechatFault,
    WechatPayEmulator, WechatPayHandler, sample_user_card_create,
};

/// How a proxy or web framework on the way changes a request before the
/// platform verifies it (`WechatFault::Altered`, Alipay+ `Fault::BodyReencodedInTransit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alteration {
    /// The JSON body is parsed and pretty-printed again (equal after parsing,
    /// not byte-equal).
    ReserializedBody,
    /// Every `-` of the query string arrives percent-encoded (`%2D`).
    ReencodedQuery,
}

impl Alteration {
    /// The request as it arrives.
    pub fn apply(self, request: &cardbridge::http::HttpRequest) -> cardbridge::http::HttpRequest {
        let mut altered = request.clone();
        match self {
            Alteration::ReserializedBody => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&request.body) {
                    altered.body = serde_json::to_vec_pretty(&v).unwrap_or_else(|_| request.body.clone());
                }
            }
            Alteration::ReencodedQuery => {
                if let Some((path, query)) = request.target.split_once('?') {
                    altered.target = format!("{path}?{}", query.replace('-', "%2D"));
                }
            }
        }
        altered
    }
}
