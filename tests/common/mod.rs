//! Shared fixtures for the integration tests: keys, configs and a running emulator.
#![allow(dead_code)]

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none): `common::emulator::...` in the tests.
#[allow(unused_imports)]
#[path = "../../src/bin/cardbridge/emulator/mod.rs"]
pub mod emulator;

pub mod wechat;

use cardbridge::alipayplus::Config;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use emulator::{AlipayPlatformEmulator, EmulatorConfig};
use std::time::Duration;

pub const CLIENT_ID: &str = "2022TEST_CLIENT";

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn merchant_key() -> PrivateKey {
    PrivateKey::from_pem(&fixture("test_merchant_private.pem")).unwrap()
}
pub fn platform_key() -> PrivateKey {
    PrivateKey::from_pem(&fixture("test_platform_private.pem")).unwrap()
}

pub fn start_emulator() -> AlipayPlatformEmulator {
    AlipayPlatformEmulator::start(EmulatorConfig {
        platform_private_key: platform_key(),
        merchant_public_key: merchant_key().public_key(),
        client_id: CLIENT_ID.to_string(),
        path_prefix: "/api/open".to_string(),
        key_version: "1".to_string(),
    })
    .unwrap()
}

/// A config pointed at `base_url` with fast retries and short timeouts.
pub fn config(base_url: Option<String>) -> Config {
    let mut c = Config::new(CLIENT_ID, merchant_key(), platform_key().public_key());
    c.base_url = base_url;
    c.transport.connect_timeout = Duration::from_millis(500);
    c.transport.read_timeout = Duration::from_millis(400);
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(20);
    c.retry.max_attempts = 4;
    c.retry.deadline = Duration::from_secs(20);
    c
}

pub fn public_key(pem: &str) -> PublicKey {
    PublicKey::from_pem(pem).unwrap()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A unique temporary path for a SQLite file.
pub fn temp_db(tag: &str) -> std::path::PathBuf {
    let mut b = [0u8; 8];
    cardbridge::crypto::random_bytes(&mut b);
    let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::env::temp_dir().join(format!("cardbridge-{tag}-{name}.db"))
}
