//! Alipay+ configuration (`alipayplus-mpp.md` §10), buildable in Rust or from
//! a JSON document (the form the C, Python and C# callers use).

use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Error, Result};
use crate::http::TransportConfig;
use crate::json::{Member, Shape};
use crate::retry::{RETRY_SHAPE, RetryOverrides, RetryPolicy};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Default path prefix of the Alipay Connect instance (§2).
pub const DEFAULT_PATH_PREFIX: &str = "/api/open";

/// Everything the Alipay+ module needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Scheme and host of the platform gateway, no path (needed for `issueCard`).
    pub base_url: Option<String>,
    /// Per-super-app path prefix placed before `/v2/...` (default `/api/open`).
    pub path_prefix: String,
    /// Our `Client-Id`.
    pub client_id: String,
    /// `keyVersion` we emit (default `1`).
    pub key_version: String,
    /// Signs our requests and our answers.
    pub merchant_private_key: PrivateKey,
    /// Verifies the platform's requests and answers (default key).
    pub platform_public_key: PublicKey,
    /// Further platform keys selected by the `keyVersion` the platform presents.
    pub platform_public_keys_by_version: BTreeMap<String, PublicKey>,
    /// Sign our answers to inbound calls (§4.8, default true).
    pub sign_responses: bool,
    /// Public path prefix the platform used, when a proxy rewrites paths: the
    /// verified URI becomes `<prefix>/v2/pds/memberships/<api>` (§4.1 rule 4).
    pub inbound_public_prefix: Option<String>,
    /// Reject inbound calls whose `Request-Time` is further off than this (default: off).
    pub max_clock_skew: Option<Duration>,
    /// Offset of the times we emit, in minutes east of UTC (default 0).
    pub time_offset_minutes: i32,
    /// Timeouts, extra CA, user agent.
    pub transport: TransportConfig,
    /// Retry policy for `issueCard`.
    pub retry: RetryPolicy,
    /// How long inbound idempotency records are kept (default 30 days).
    pub idempotency_retention: Duration,
    /// How long an undecided inbound claim blocks duplicates before it expires (default 60 s).
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
    pub fn new(client_id: impl Into<String>, merchant_private_key: PrivateKey, platform_public_key: PublicKey) -> Self {
        Config {
            base_url: None,
            path_prefix: DEFAULT_PATH_PREFIX.to_string(),
            client_id: client_id.into(),
            key_version: "1".to_string(),
            merchant_private_key,
            platform_public_key,
            platform_public_keys_by_version: BTreeMap::new(),
            sign_responses: true,
            inbound_public_prefix: None,
            max_clock_skew: None,
            time_offset_minutes: 0,
            transport: TransportConfig::default(),
            retry: RetryPolicy::default(),
            idempotency_retention: Duration::from_secs(30 * 24 * 3600),
            claim_lease: Duration::from_secs(60),
            store_path: None,
            max_body_bytes: crate::http::DEFAULT_MAX_BODY_BYTES,
            clock: crate::clock::Clock::system(),
        }
    }

    /// Parses the JSON form. Keys are PEM text; durations are milliseconds.
    ///
    /// ```json
    /// {"client_id":"...","merchant_private_key":"-----BEGIN PRIVATE KEY-----...",
    ///  "platform_public_key":"-----BEGIN PUBLIC KEY-----...","base_url":"https://...",
    ///  "path_prefix":"/api/open","retry":{"max_attempts":5}}
    /// ```
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let raw: RawConfig = crate::json::parse_config(json, "config", &Shape::Object(&CONFIG_SHAPE))?;
        raw.into_config()
    }

    /// Checks consistency (called by the constructors of the client and handler).
    pub fn check(&self) -> Result<()> {
        if self.client_id.trim().is_empty() {
            return Err(Error::config("config.client_id: must not be empty").with_field("config.client_id"));
        }
        // Both go into headers (Client-Id, Signature): no CR, LF or other control character.
        crate::http::check_header_value("config.client_id", &self.client_id)?;
        crate::http::check_header_value("config.key_version", &self.key_version)?;
        if self.key_version.contains([',', '=', '"']) {
            return Err(Error::config(
                "config.key_version: must not contain ',', '=' or '\"' (it is a Signature header item)",
            )
            .with_field("config.key_version"));
        }
        for (field, prefix) in [
            ("config.path_prefix", Some(&self.path_prefix)),
            ("config.inbound_public_prefix", self.inbound_public_prefix.as_ref()),
        ] {
            // Part of the request line and of the signed URI.
            if prefix.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')) {
                return Err(Error::config(format!(
                    "{field}: must be printable ASCII without spaces, control characters, '?' or '#'"
                ))
                .with_field(field));
            }
        }
        if let Some(url) = &self.base_url {
            let parsed = crate::http::check_url(url).map_err(|e| in_field("base_url", &e))?;
            if parsed.path() != "/" || parsed.has_query_or_fragment() {
                return Err(Error::config(
                    "config.base_url: must be scheme and host only; put the path in path_prefix",
                )
                .with_field("config.base_url"));
            }
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            return Err(Error::config("config.path_prefix: must start with '/'"));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::config("config.retry.max_attempts: must be at least 1"));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::config("config.max_body_bytes: must be at least 1")
                .with_field("config.max_body_bytes")
                .with_limit(Some("1".into())));
        }
        if !(-14 * 60..=14 * 60).contains(&self.time_offset_minutes) {
            return Err(Error::config("config.time_offset_minutes: must be within ±840"));
        }
        Ok(())
    }

    /// The platform key for a presented `keyVersion` (default key when absent or unknown).
    pub fn platform_key(&self, key_version: Option<&str>) -> &PublicKey {
        key_version
            .and_then(|v| self.platform_public_keys_by_version.get(v))
            .unwrap_or(&self.platform_public_key)
    }
}

/// The JSON form's members: checked before deserialising, so errors name the
/// member and the rule and never repeat a value.
static CONFIG_SHAPE: [Member; 19] = [
    Member::optional("base_url", Shape::Str),
    Member::optional("path_prefix", Shape::Str),
    Member::required("client_id", Shape::Str),
    Member::optional("key_version", Shape::Str),
    Member::required("merchant_private_key", Shape::Str),
    Member::required("platform_public_key", Shape::Str),
    Member::optional("platform_public_keys_by_version", Shape::MapOf(&Shape::Str)),
    Member::optional("sign_responses", Shape::Bool),
    Member::optional("inbound_public_prefix", Shape::Str),
    Member::optional("max_clock_skew_ms", Shape::U64),
    Member::optional("time_offset_minutes", Shape::I32),
    Member::optional("connect_timeout_ms", Shape::U64),
    Member::optional("read_timeout_ms", Shape::U64),
    Member::optional("extra_ca_pem", Shape::Str),
    Member::optional("retry", Shape::Object(&RETRY_SHAPE)),
    Member::optional("idempotency_retention_days", Shape::U64),
    Member::optional("claim_lease_ms", Shape::U64),
    Member::optional("store_path", Shape::Str),
    Member::optional("max_body_bytes", Shape::U64),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base_url: Option<String>,
    path_prefix: Option<String>,
    client_id: String,
    key_version: Option<String>,
    merchant_private_key: String,
    platform_public_key: String,
    #[serde(default)]
    platform_public_keys_by_version: BTreeMap<String, String>,
    sign_responses: Option<bool>,
    inbound_public_prefix: Option<String>,
    max_clock_skew_ms: Option<u64>,
    time_offset_minutes: Option<i32>,
    connect_timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    extra_ca_pem: Option<String>,
    retry: Option<RetryOverrides>,
    idempotency_retention_days: Option<u64>,
    claim_lease_ms: Option<u64>,
    store_path: Option<String>,
    max_body_bytes: Option<u64>,
}

/// `e` restated for the config member `field`: `config.<field>: <message>`.
fn in_field(field: &str, e: &Error) -> Error {
    Error::new(e.kind(), format!("config.{field}: {}", e.message())).with_field(format!("config.{field}"))
}

fn key_in(field: &str, e: Error) -> Error {
    Error::new(e.kind(), format!("config.{field}: {}", e.message())).with_field(format!("config.{field}"))
}

impl RawConfig {
    fn into_config(self) -> Result<Config> {
        let private =
            PrivateKey::from_pem(&self.merchant_private_key).map_err(|e| key_in("merchant_private_key", e))?;
        let public = PublicKey::from_pem(&self.platform_public_key).map_err(|e| key_in("platform_public_key", e))?;
        let mut c = Config::new(self.client_id, private, public);
        for (version, pem) in self.platform_public_keys_by_version {
            let key = PublicKey::from_pem(&pem).map_err(|e| {
                let name = crate::json::config_key_name(&version);
                key_in(&format!("platform_public_keys_by_version.{name}"), e)
            })?;
            c.platform_public_keys_by_version.insert(version, key);
        }
        c.base_url = self.base_url.map(|u| u.trim_end_matches('/').to_string());
        if let Some(p) = self.path_prefix {
            c.path_prefix = p.trim_end_matches('/').to_string();
        }
        if let Some(v) = self.key_version {
            c.key_version = v;
        }
        if let Some(v) = self.sign_responses {
            c.sign_responses = v;
        }
        c.inbound_public_prefix = self.inbound_public_prefix.map(|p| p.trim_end_matches('/').to_string());
        c.max_clock_skew = self.max_clock_skew_ms.map(Duration::from_millis);
        if let Some(v) = self.time_offset_minutes {
            c.time_offset_minutes = v;
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
        if let Some(days) = self.idempotency_retention_days {
            c.idempotency_retention = Duration::from_secs(days.saturating_mul(24 * 3600));
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
