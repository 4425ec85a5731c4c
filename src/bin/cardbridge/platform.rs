//! The platform side's identity: the keys and IDs with which the emulator
//! and `notify` play Alipay+ and WeChat Pay. Test material by default (the
//! repository's `tests/fixtures/keys`, or the same keys built into the
//! binary); a key directory or a JSON file overrides it. Values are never
//! printed, only the paths they came from.

use std::path::{Path, PathBuf};

use crate::emulator::{EmulatorConfig, PlatformCertificate, PlatformDriver, WechatEmulatorConfig};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::x509::Certificate;
use cardbridge::error::{Error, ErrorKind, Result};
use serde_json::{Map, Value};

/// The test client ID (the one the test suites configure).
pub const TEST_CLIENT_ID: &str = "2022TEST_CLIENT";
/// The test WeChat Pay service-provider merchant ID.
pub const TEST_MCHID: &str = "1900000001";
/// The test merchant API certificate serial.
pub const TEST_MERCHANT_SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
/// The test WeChat Pay public key ID.
pub const TEST_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
/// The test APIv3 key (also in the README and the test suites).
const TEST_API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";

/// The key files of a key directory, in the names of `tests/fixtures/keys`:
/// (file, role). The platform's private and the merchant's public key are
/// required; the other halves are only listed, for the merchant's side.
const KEY_FILES: [(&str, &str); 4] = [
    ("test_platform_private.pem", "platform_private_key"),
    ("test_platform_public.pem", "platform_public_key"),
    ("test_merchant_private.pem", "merchant_private_key"),
    ("test_merchant_public.pem", "merchant_public_key"),
];

/// The test keys, built in for a binary that runs away from the repository.
const EMBEDDED_KEYS: [(&str, &str); 4] = [
    (
        "test_platform_private.pem",
        include_str!("../../../tests/fixtures/keys/test_platform_private.pem"),
    ),
    (
        "test_platform_public.pem",
        include_str!("../../../tests/fixtures/keys/test_platform_public.pem"),
    ),
    (
        "test_merchant_private.pem",
        include_str!("../../../tests/fixtures/keys/test_merchant_private.pem"),
    ),
    (
        "test_merchant_public.pem",
        include_str!("../../../tests/fixtures/keys/test_merchant_public.pem"),
    ),
];

/// Everything the platform side needs. `Debug` names no key.
pub struct PlatformConfig {
    pub client_id: String,
    pub key_version: String,
    pub path_prefix: String,
    /// Signs Alipay+ answers and calls; by default also WeChat Pay's key.
    pub platform_private_key: PrivateKey,
    /// Verifies the merchant's signatures; encrypts WeChat Pay sensitive fields.
    pub merchant_public_key: PublicKey,
    pub wechatpay_private_key: PrivateKey,
    pub public_key_id: String,
    pub mchid: String,
    pub merchant_serial_no: String,
    pub api_v3_key: ApiV3Key,
    /// Whether `api_v3_key` is the published test key (then it may be shown).
    pub api_v3_key_is_test: bool,
    pub platform_certificate: Option<PlatformCertificate>,
    /// Role → path of the key files found (printed at start).
    pub key_paths: Vec<(&'static str, PathBuf)>,
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("client_id", &self.client_id)
            .field("mchid", &self.mchid)
            .finish_non_exhaustive()
    }
}

fn config_error(field: &str, rule: &str) -> Error {
    Error::new(ErrorKind::InvalidConfig, format!("{field}: {rule}")).with_field(field)
}

/// The key directory: `--keys`, else the repository's fixtures if this
/// binary was built from a checkout that is still there, else the built-in
/// copies written to a directory under the system's temporary directory.
fn key_dir(keys: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = keys {
        return Ok(dir.to_path_buf());
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    if KEY_FILES.iter().all(|(f, _)| repo.join(f).is_file()) {
        return Ok(repo);
    }
    let dir = std::env::temp_dir().join("cardbridge-test-keys");
    let io = |e: std::io::Error| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "keys: cannot write the built-in test keys to {} ({}); pass --keys DIR",
                dir.display(),
                e.kind()
            ),
        )
        .with_field("keys")
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    for (name, text) in EMBEDDED_KEYS {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).map_err(io)?;
        }
    }
    Ok(dir)
}

fn read_text(field: &str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("{field}: {} cannot be read ({})", path.display(), e.kind()),
        )
        .with_field(field)
    })
}

fn private_key(field: &str, pem: &str) -> Result<PrivateKey> {
    PrivateKey::from_pem(pem).map_err(|e| Error::new(e.kind(), format!("{field}: {}", e.message())).with_field(field))
}

fn public_key(field: &str, pem: &str) -> Result<PublicKey> {
    PublicKey::from_pem(pem).map_err(|e| Error::new(e.kind(), format!("{field}: {}", e.message())).with_field(field))
}

/// The members a configuration file may have; each is a string except
/// `platform_certificate` (`{"pem", "private_key"}`).
const MEMBERS: [&str; 11] = [
    "client_id",
    "key_version",
    "path_prefix",
    "platform_private_key",
    "merchant_public_key",
    "wechatpay_private_key",
    "public_key_id",
    "mchid",
    "merchant_serial_no",
    "api_v3_key",
    "platform_certificate",
];

/// Reads the configuration file (a JSON object; unknown members, and
/// members of the wrong type, are refused by name, never echoing a value).
fn read_file(path: &Path) -> Result<Map<String, Value>> {
    let text = read_text("config", path)?;
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(&text) else {
        return Err(config_error("config", "must be a JSON object"));
    };
    for (name, value) in &doc {
        if !MEMBERS.contains(&name.as_str()) {
            return Err(config_error(
                "config",
                &format!("unknown member `{name}`; expected one of {}", MEMBERS.join(", ")),
            ));
        }
        let ok = if name == "platform_certificate" {
            value.as_object().is_some_and(|o| {
                o.len() == 2
                    && o.get("pem").is_some_and(Value::is_string)
                    && o.get("private_key").is_some_and(Value::is_string)
            })
        } else {
            value.is_string()
        };
        if !ok {
            let rule = if name == "platform_certificate" {
                "must be an object with string members pem and private_key"
            } else {
                "must be a string"
            };
            return Err(config_error(&format!("config.{name}"), rule));
        }
    }
    Ok(doc)
}

/// Where the platform configuration comes from.
pub struct Sources<'a> {
    /// `--config` (JSON), members override the key directory and the test IDs.
    pub config: Option<&'a Path>,
    /// `--keys` (a directory with the `tests/fixtures/keys` file names).
    pub keys: Option<&'a Path>,
    /// `--wechat-certificate` and `--wechat-certificate-key` (certificate mode).
    pub certificate: Option<(&'a Path, &'a Path)>,
}

impl PlatformConfig {
    pub fn load(sources: &Sources<'_>) -> Result<Self> {
        let doc = match sources.config {
            Some(p) => read_file(p)?,
            None => Map::new(),
        };
        let text = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_string);
        let dir = key_dir(sources.keys)?;
        let mut key_paths = Vec::new();
        let mut from_dir = |file: &str, role: &'static str, required: bool| -> Result<Option<String>> {
            let path = dir.join(file);
            if !path.is_file() {
                if required {
                    return Err(config_error(
                        "keys",
                        &format!("{} has no {file} (the names of tests/fixtures/keys)", dir.display()),
                    ));
                }
                return Ok(None);
            }
            let pem = read_text("keys", &path)?;
            key_paths.push((role, path));
            Ok(Some(pem))
        };
        // Each key: the configuration file's PEM, else the key directory's
        // file (and then the other half of the pair is listed too).
        let platform_pem = match text("platform_private_key") {
            Some(pem) => pem,
            None => {
                let pem = from_dir(KEY_FILES[0].0, KEY_FILES[0].1, true)?;
                from_dir(KEY_FILES[1].0, KEY_FILES[1].1, false)?;
                pem.unwrap_or_default()
            }
        };
        let merchant_pem = match text("merchant_public_key") {
            Some(pem) => pem,
            None => {
                from_dir(KEY_FILES[2].0, KEY_FILES[2].1, false)?;
                from_dir(KEY_FILES[3].0, KEY_FILES[3].1, true)?.unwrap_or_default()
            }
        };
        let platform_private_key = private_key("platform_private_key", &platform_pem)?;
        let merchant_public_key = public_key("merchant_public_key", &merchant_pem)?;
        let wechatpay_private_key = match text("wechatpay_private_key") {
            Some(pem) => private_key("wechatpay_private_key", &pem)?,
            None => platform_private_key.clone(),
        };
        let api_v3 = text("api_v3_key");
        let api_v3_key_is_test = api_v3.is_none();
        let api_v3_key = ApiV3Key::new(api_v3.as_deref().unwrap_or(TEST_API_V3_KEY).as_bytes())
            .map_err(|e| config_error("api_v3_key", e.message()))?;
        let certificate = match (sources.certificate, doc.get("platform_certificate")) {
            (Some((cert, key)), _) => {
                let pem = read_text("wechat_certificate", cert)?;
                let key_pem = read_text("wechat_certificate_key", key)?;
                key_paths.push(("wechat_certificate", cert.to_path_buf()));
                key_paths.push(("wechat_certificate_key", key.to_path_buf()));
                Some((pem, key_pem))
            }
            (None, Some(c)) => Some((
                c["pem"].as_str().unwrap_or_default().to_string(),
                c["private_key"].as_str().unwrap_or_default().to_string(),
            )),
            (None, None) => None,
        };
        let platform_certificate = match certificate {
            None => None,
            Some((pem, key_pem)) => {
                let cert =
                    Certificate::from_pem(&pem).map_err(|e| config_error("platform_certificate.pem", e.message()))?;
                Some(PlatformCertificate {
                    serial: cert.serial().to_string(),
                    pem,
                    private_key: private_key("platform_certificate.private_key", &key_pem)?,
                })
            }
        };
        Ok(PlatformConfig {
            client_id: text("client_id").unwrap_or_else(|| TEST_CLIENT_ID.into()),
            key_version: text("key_version").unwrap_or_else(|| "1".into()),
            path_prefix: text("path_prefix").unwrap_or_else(|| "/api/open".into()),
            platform_private_key,
            merchant_public_key,
            wechatpay_private_key,
            public_key_id: text("public_key_id").unwrap_or_else(|| TEST_PUBLIC_KEY_ID.into()),
            mchid: text("mchid").unwrap_or_else(|| TEST_MCHID.into()),
            merchant_serial_no: text("merchant_serial_no").unwrap_or_else(|| TEST_MERCHANT_SERIAL.into()),
            api_v3_key,
            api_v3_key_is_test,
            platform_certificate,
            key_paths,
        })
    }

    pub fn alipay(&self) -> EmulatorConfig {
        EmulatorConfig {
            platform_private_key: self.platform_private_key.clone(),
            merchant_public_key: self.merchant_public_key.clone(),
            client_id: self.client_id.clone(),
            path_prefix: self.path_prefix.clone(),
            key_version: self.key_version.clone(),
        }
    }

    pub fn wechat(&self) -> WechatEmulatorConfig {
        WechatEmulatorConfig {
            wechatpay_private_key: self.wechatpay_private_key.clone(),
            public_key_id: self.public_key_id.clone(),
            merchant_public_key: self.merchant_public_key.clone(),
            mchid: self.mchid.clone(),
            merchant_serial_no: self.merchant_serial_no.clone(),
            api_v3_key: self.api_v3_key.clone(),
            platform_certificate: self.platform_certificate.clone(),
        }
    }

    pub fn driver(&self) -> PlatformDriver {
        PlatformDriver::new(
            self.platform_private_key.clone(),
            self.client_id.clone(),
            self.key_version.clone(),
        )
    }

    /// Role → path, as JSON.
    pub fn key_paths_json(&self) -> Value {
        Value::Object(
            self.key_paths
                .iter()
                .map(|(role, p)| ((*role).to_string(), Value::String(p.display().to_string())))
                .collect(),
        )
    }
}
