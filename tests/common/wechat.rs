//! The WeChat Pay side of the shared fixtures: the merchant's identifiers,
//! the loopback emulator playing WeChat Pay (the test platform key pair plays
//! its key pair) and a client configuration pointed at it.

use super::emulator::{WechatEmulatorConfig, WechatPayEmulator};
use super::{merchant_key, platform_key};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::store::MemoryStore;
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{Config, WechatPay};
use std::sync::Arc;
use std::time::Duration;

pub const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
pub const MCHID: &str = "1900000001";
pub const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
pub const API_V3: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
pub const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
pub const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
pub const BRAND_ID: &str = "1004";

/// The emulator's configuration in public-key mode.
pub fn emulator_config() -> WechatEmulatorConfig {
    WechatEmulatorConfig {
        wechatpay_private_key: platform_key(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: merchant_key().public_key(),
        mchid: MCHID.into(),
        merchant_serial_no: SERIAL.into(),
        api_v3_key: ApiV3Key::new(API_V3).unwrap(),
        platform_certificate: None,
    }
}

/// A running emulator and the key it signs with.
pub struct Setup {
    pub emu: WechatPayEmulator,
    pub wechat_key: PrivateKey,
}

/// Starts the emulator in public-key mode.
pub fn setup() -> Setup {
    Setup {
        emu: WechatPayEmulator::start(emulator_config()).unwrap(),
        wechat_key: platform_key(),
    }
}

/// A client configuration for `base_url` in public-key mode: fast retries,
/// a short read timeout.
pub fn wechat_config_for(base_url: &str) -> Config {
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, platform_key().public_key()).unwrap();
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let mut c = Config::new(signer, merchant_key(), ApiV3Key::new(API_V3).unwrap(), ring);
    c.base_url = base_url.to_string();
    c.transport.read_timeout = Duration::from_millis(400);
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(20);
    c
}

/// [`wechat_config_for`] the emulator of `s`.
pub fn wechat_config(s: &Setup) -> Config {
    wechat_config_for(&s.emu.base_url())
}

/// A client on a memory store, its configuration changed by `tweak`.
pub fn wechat_with(s: &Setup, tweak: impl FnOnce(&mut Config)) -> WechatPay {
    let mut c = wechat_config(s);
    tweak(&mut c);
    WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap()
}

/// A client on a memory store.
pub fn wechat(s: &Setup) -> WechatPay {
    wechat_with(s, |_| {})
}
