//! WeChat Pay configuration, buildable in Rust or from JSON (the form C,
//! Python and C# pass). Keys are PEM text; durations are milliseconds.

use crate::crypto::aead::ApiV3Key;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::x509::Certificate;
use crate::error::{Error, Result};
use crate::http::TransportConfig;
use crate::json::{Member, Shape};
use crate::retry::{RETRY_SHAPE, RetryOverrides, RetryPolicy};
use crate::wechatpay::keyring::KeyRing;
use crate::wechatpay::model::{FeedContentMember, TemplateRemoval, WireOptions};
use crate::wechatpay::sign::RequestSigner;
use serde::Deserialize;
use std::time::Duration;

/// Primary API host (§1).
pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";
/// Backup API host, used after a connection failure when enabled (§10).
pub const DEFAULT_BACKUP_URL: &str = "https://api2.mch.weixin.qq.com";

/// Everything the WeChat Pay module needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// API host (scheme and host).
    pub base_url: String,
    /// Backup host tried after a connection failure, when set.
    pub backup_base_url: Option<String>,
    /// Signs our requests (`mchid`, merchant certificate serial, merchant key).
    pub signer: RequestSigner,
    /// Decrypts sensitive fields WeChat sends us (merchant API private key).
    pub merchant_private_key: PrivateKey,
    /// Decrypts callback resources and downloaded certificates.
    pub api_v3_key: ApiV3Key,
    /// WeChat Pay public keys and platform certificates known up front.
    pub keys: KeyRing,
    /// Download `/v3/certificates` (platform-certificate mode).
    pub certificate_mode: bool,
    /// Refresh downloaded certificates when older than this (default 60 min).
    pub certificate_refresh: Duration,
    /// Wire-form switches (card_id in the confirm body, custom value
    /// encryption, template removal method, feed content name, import by phone).
    pub wire: WireOptions,
    /// Answer accepted callbacks with 200 and `{"code":"SUCCESS"}` (true) or 204 (false).
    pub callback_success_body: bool,
    /// Timeouts, extra CA, user agent.
    pub transport: TransportConfig,
    /// Retries for 5xx, 202, 429 and network errors (default 3 retries, 1 s base, 8 s cap).
    pub retry: RetryPolicy,
    /// Lease of an undecided callback claim.
    pub claim_lease: Duration,
    /// Where the SQLite store lives, when the caller does not pass a store.
    pub store_path: Option<String>,
    /// Largest inbound body accepted, in bytes (default 1 MiB), checked
    /// before anything else: a larger one is refused unread.
    pub max_body_bytes: usize,
    /// Where outbound timestamps, leases and attempt times come from (system clock by default).
    pub clock: crate::clock::Clock,
}

impl Config {
    /// A configuration with defaults for everything but identity and keys.
    pub fn new(signer: RequestSigner, merchant_private_key: PrivateKey, api_v3_key: ApiV3Key, keys: KeyRing) -> Self {
        Config {
            base_url: DEFAULT_BASE_URL.to_string(),
            backup_base_url: None,
            signer,
            merchant_private_key,
            api_v3_key,
            keys,
            certificate_mode: false,
            certificate_refresh: Duration::from_secs(3600),
            wire: WireOptions::default(),
            callback_success_body: true,
            transport: TransportConfig::default(),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(8),
                deadline: Duration::from_secs(60),
            },
            claim_lease: Duration::from_secs(60),
            store_path: None,
            max_body_bytes: crate::http::DEFAULT_MAX_BODY_BYTES,
            clock: crate::clock::Clock::system(),
        }
    }

    /// Parses the JSON form:
    ///
    /// ```json
    /// {"mchid":"1900000001","merchant_serial_no":"5F1C...","merchant_private_key":"-----BEGIN PRIVATE KEY-----...",
    ///  "api_v3_key":"32 ASCII bytes...","wechatpay_public_key_id":"PUB_KEY_ID_...",
    ///  "wechatpay_public_key":"-----BEGIN PUBLIC KEY-----...","platform_certificates":["-----BEGIN CERTIFICATE-----..."],
    ///  "certificate_mode":false,"base_url":"https://api.mch.weixin.qq.com"}
    /// ```
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let raw: RawConfig = crate::json::parse_config(json, "config", &Shape::Object(&CONFIG_SHAPE))?;
        raw.into_config()
    }

    /// Checks consistency.
    pub fn check(&self) -> Result<()> {
        crate::http::check_url(&self.base_url).map_err(|e| within("base_url", e))?;
        if let Some(b) = &self.backup_base_url {
            crate::http::check_url(b).map_err(|e| within("backup_base_url", e))?;
        }
        if self.keys.public_key_ids().next().is_none() && self.keys.certificates().is_empty() && !self.certificate_mode
        {
            return Err(Error::config(
                "config: no WeChat Pay key: set wechatpay_public_key(+_id), platform_certificates or certificate_mode",
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::config("config.retry.max_attempts: must be at least 1"));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::config("config.max_body_bytes: must be at least 1")
                .with_field("config.max_body_bytes")
                .with_limit(Some("1".into())));
        }
        Ok(())
    }
}

/// The JSON form's members: checked before deserialising, so errors name the
/// member and the rule and never repeat a value.
static CONFIG_SHAPE: [Member; 25] = [
    Member::required("mchid", Shape::Str),
    Member::required("merchant_serial_no", Shape::Str),
    Member::required("merchant_private_key", Shape::Str),
    Member::required("api_v3_key", Shape::Str),
    Member::optional("wechatpay_public_key_id", Shape::Str),
    Member::optional("wechatpay_public_key", Shape::Str),
    Member::optional("platform_certificates", Shape::ListOf(&Shape::Str)),
    Member::optional("certificate_mode", Shape::Bool),
    Member::optional("certificate_refresh_ms", Shape::U64),
    Member::optional("base_url", Shape::Str),
    Member::optional("backup_base_url", Shape::Str),
    Member::optional("confirm_card_id_in_body", Shape::Bool),
    Member::optional("encrypt_custom_field_values", Shape::Bool),
    Member::optional("card_template_removal", Shape::Str),
    Member::optional("card_template_out_request_no", Shape::Bool),
    Member::optional("user_feed_content_member", Shape::Str),
    Member::optional("import_by_phone_enabled", Shape::Bool),
    Member::optional("callback_success_body", Shape::Bool),
    Member::optional("connect_timeout_ms", Shape::U64),
    Member::optional("read_timeout_ms", Shape::U64),
    Member::optional("extra_ca_pem", Shape::Str),
    Member::optional("retry", Shape::Object(&RETRY_SHAPE)),
    Member::optional("claim_lease_ms", Shape::U64),
    Member::optional("store_path", Shape::Str),
    Member::optional("max_body_bytes", Shape::U64),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mchid: String,
    merchant_serial_no: String,
    merchant_private_key: String,
    api_v3_key: String,
    wechatpay_public_key_id: Option<String>,
    wechatpay_public_key: Option<String>,
    #[serde(default)]
    platform_certificates: Vec<String>,
    #[serde(default)]
    certificate_mode: bool,
    certificate_refresh_ms: Option<u64>,
    base_url: Option<String>,
    backup_base_url: Option<String>,
    confirm_card_id_in_body: Option<bool>,
    encrypt_custom_field_values: Option<bool>,
    card_template_removal: Option<String>,
    card_template_out_request_no: Option<bool>,
    user_feed_content_member: Option<String>,
    import_by_phone_enabled: Option<bool>,
    callback_success_body: Option<bool>,
    connect_timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    extra_ca_pem: Option<String>,
    retry: Option<RetryOverrides>,
    claim_lease_ms: Option<u64>,
    store_path: Option<String>,
    max_body_bytes: Option<u64>,
}

/// The wire-form members alone (the `validate` export's options).
static WIRE_SHAPE: [Member; 6] = [
    Member::optional("confirm_card_id_in_body", Shape::Bool),
    Member::optional("encrypt_custom_field_values", Shape::Bool),
    Member::optional("card_template_removal", Shape::Str),
    Member::optional("card_template_out_request_no", Shape::Bool),
    Member::optional("user_feed_content_member", Shape::Str),
    Member::optional("import_by_phone_enabled", Shape::Bool),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWire {
    confirm_card_id_in_body: Option<bool>,
    encrypt_custom_field_values: Option<bool>,
    card_template_removal: Option<String>,
    card_template_out_request_no: Option<bool>,
    user_feed_content_member: Option<String>,
    import_by_phone_enabled: Option<bool>,
}

impl RawWire {
    fn apply(self, wire: &mut WireOptions) -> Result<()> {
        if let Some(v) = self.confirm_card_id_in_body {
            wire.confirm_card_id_in_body = v;
        }
        if let Some(v) = self.encrypt_custom_field_values {
            wire.encrypt_custom_field_values = v;
        }
        if let Some(v) = self.card_template_removal {
            wire.card_template_removal = TemplateRemoval::parse(&v).ok_or_else(|| {
                Error::config("config.card_template_removal: must be one of invalidate, delete")
                    .with_field("config.card_template_removal")
                    .with_limit(Some("invalidate, delete".into()))
            })?;
        }
        if let Some(v) = self.card_template_out_request_no {
            wire.card_template_out_request_no = v;
        }
        if let Some(v) = self.user_feed_content_member {
            wire.user_feed_content = FeedContentMember::parse(&v).ok_or_else(|| {
                Error::config("config.user_feed_content_member: must be one of cell, cell_message")
                    .with_field("config.user_feed_content_member")
                    .with_limit(Some("cell, cell_message".into()))
            })?;
        }
        if let Some(v) = self.import_by_phone_enabled {
            wire.import_by_phone_enabled = v;
        }
        Ok(())
    }
}

/// Wire-form options from their JSON members (a subset of the configuration
/// document: `confirm_card_id_in_body`, `encrypt_custom_field_values`,
/// `card_template_removal`, `card_template_out_request_no`,
/// `user_feed_content_member`, `import_by_phone_enabled`).
pub fn wire_options_from_json(json: &[u8]) -> Result<WireOptions> {
    let raw: RawWire = crate::json::parse_config(json, "config", &Shape::Object(&WIRE_SHAPE))?;
    let mut wire = WireOptions::default();
    raw.apply(&mut wire)?;
    Ok(wire)
}

fn within(field: &str, e: Error) -> Error {
    Error::new(e.kind(), format!("config.{field}: {}", e.message())).with_field(format!("config.{field}"))
}

impl RawConfig {
    fn into_config(self) -> Result<Config> {
        let key = PrivateKey::from_pem(&self.merchant_private_key).map_err(|e| within("merchant_private_key", e))?;
        let signer = RequestSigner::new(&self.mchid, &self.merchant_serial_no, key.clone())?;
        let api_v3_key = ApiV3Key::new(self.api_v3_key.as_bytes()).map_err(|e| within("api_v3_key", e))?;
        let mut keys = KeyRing::new();
        match (self.wechatpay_public_key_id, self.wechatpay_public_key) {
            (Some(id), Some(pem)) => {
                let pk = PublicKey::from_pem(&pem).map_err(|e| within("wechatpay_public_key", e))?;
                keys.add_public_key(&id, pk)
                    .map_err(|e| within("wechatpay_public_key_id", e))?;
            }
            (None, None) => {}
            _ => {
                return Err(Error::config(
                    "config: wechatpay_public_key_id and wechatpay_public_key go together",
                ));
            }
        }
        for (i, pem) in self.platform_certificates.iter().enumerate() {
            let cert = Certificate::from_pem(pem).map_err(|e| within(&format!("platform_certificates[{i}]"), e))?;
            keys.add_certificate(cert);
        }
        let mut c = Config::new(signer, key, api_v3_key, keys);
        c.certificate_mode = self.certificate_mode;
        if let Some(v) = self.certificate_refresh_ms {
            c.certificate_refresh = Duration::from_millis(v);
        }
        if let Some(u) = self.base_url {
            c.base_url = u.trim_end_matches('/').to_string();
        }
        c.backup_base_url = self.backup_base_url.map(|u| u.trim_end_matches('/').to_string());
        RawWire {
            confirm_card_id_in_body: self.confirm_card_id_in_body,
            encrypt_custom_field_values: self.encrypt_custom_field_values,
            card_template_removal: self.card_template_removal,
            card_template_out_request_no: self.card_template_out_request_no,
            user_feed_content_member: self.user_feed_content_member,
            import_by_phone_enabled: self.import_by_phone_enabled,
        }
        .apply(&mut c.wire)?;
        if let Some(v) = self.callback_success_body {
            c.callback_success_body = v;
        }
        if let Some(v) = self.connect_timeout_ms {
            c.transport.connect_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.read_timeout_ms {
            c.transport.read_timeout = Duration::from_millis(v);
        }
        c.transport.extra_ca_pem = self.extra_ca_pem;
        if let Some(r) = self.retry {
            r.apply(&mut c.retry);
        }
        if let Some(v) = self.claim_lease_ms {
            c.claim_lease = Duration::from_millis(v);
        }
        c.store_path = self.store_path;
        if let Some(v) = self.max_body_bytes {
            c.max_body_bytes = usize::try_from(v).unwrap_or(usize::MAX);
        }
        c.check()?;
        Ok(c)
    }
}
