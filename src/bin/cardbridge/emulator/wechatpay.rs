//! The WeChat Pay side of the emulator (`wechatpay-card-member.md`).
//!
//! [`WechatPayEmulator`] plays the service-provider card-member APIs on
//! loopback:
//!
//! * it checks requests like the real service: `Accept` and `User-Agent`
//!   present (§5.2), the merchant's `Authorization` (§6: five items in any
//!   order, `mchid` and `serial_no` as configured, |now − timestamp| ≤ 300 s,
//!   RSA-SHA256 over `METHOD\nTARGET\nTIMESTAMP\nNONCE\nBODY\n` with the
//!   request-target as received), and `Wechatpay-Serial` plus RSA-OAEP
//!   decryption of the sensitive request fields (§9);
//! * it serves `POST …/user-cards/{code}/confirm`, `GET` / `PATCH
//!   …/user-cards/{code}`, `POST …/user-points/sync` and `GET
//!   /v3/certificates` over an in-memory set of user cards, and signs its
//!   answers (§7.1) with `Wechatpay-Timestamp/-Nonce/-Signature/-Serial/
//!   -Signature-Type` and a `Request-ID`;
//! * [`WechatFault`]s make it misbehave (HTTP errors, `202`, late, lost,
//!   unsigned, badly signed, stale or probe-signed answers);
//! * [`WechatPayEmulator::callback`] builds signed card-event callbacks (§3),
//!   optionally spoiled with a [`CallbackTamper`], and
//!   [`WechatPayEmulator::send`] delivers them to a loopback merchant.
//!
//! Keys: answers and callbacks are signed with the WeChat Pay public-key pair
//! (`Wechatpay-Serial` = the `PUB_KEY_ID_…`). In certificate mode
//! ([`WechatEmulatorConfig::platform_certificate`] set) the emulator plays a
//! merchant that has not migrated yet: `/v3/certificates` answers, callbacks
//! and answers to requests that do not name the public key ID in
//! `Wechatpay-Serial` are signed with the certificate key and carry its serial.
//! Sensitive request fields are decrypted with the key their
//! `Wechatpay-Serial` names; sensitive answer and callback fields are
//! encrypted to the merchant's public key.
//!
//! Error `code`s follow §10 and the Chinese `message`s of `SIGN_ERROR`,
//! `INVALID_REQUEST`, the `Wechatpay-Serial` `PARAM_ERROR` and the
//! `/v3/certificates` 404 are those the spec quotes; the `NOT_FOUND` /
//! `METHOD_NOT_ALLOWED` answers for unknown URLs and methods, the other
//! messages and every `detail` are the emulator's own.

use super::Alteration;
use super::server::{Action, HttpServer};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::x509::{Certificate, normalize_serial};
use cardbridge::crypto::{b64_decode_strict, b64_encode, oaep, random_bytes, rsa};
use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{Header, HttpRequest, HttpResponse, Transport, TransportConfig, find_header};
use cardbridge::wechatpay::certificates::AEAD_ALGORITHM;
use cardbridge::wechatpay::keyring::PUB_KEY_ID_PREFIX;
use cardbridge::wechatpay::model::{CARD_MEMBER_PATH, CONFIRM_STATES};
use cardbridge::wechatpay::sign::{self, SCHEME, generate_nonce};
use cardbridge::wechatpay::verify::{
    self, HEADER_NONCE, HEADER_SERIAL, HEADER_SIGNATURE, HEADER_SIGNATURE_TYPE, HEADER_TIMESTAMP, MAX_CLOCK_SKEW_SECS,
    PROBE_PREFIX,
};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Brand ID used by [`sample_user_card_create`] (the reference samples' `1004`).
pub const SAMPLE_BRAND_ID: &str = "1004";

/// How old a [`WechatFault::StaleTimestamp`] / [`CallbackTamper::StaleTimestamp`]
/// timestamp is: ten minutes, twice the accepted skew.
pub const STALE_SECS: i64 = 600;

const CERTIFICATES_PATH: &str = "/v3/certificates";
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const SIGN_ERROR_MESSAGE: &str = "错误的签名，验签失败";
const SERIAL_ERROR_MESSAGE: &str = "平台证书序列号Wechatpay-Serial错误";
const NO_CERTIFICATE_MESSAGE: &str = "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥";
const CARD_NOT_FOUND_MESSAGE: &str = "用户会员卡不存在";

/// Members of the user-card answer (§5.6), in answer order.
const USER_CARD_FIELDS: [&str; 16] = [
    "user_card_code",
    "card_id",
    "openid",
    "card_color",
    "card_picture_url",
    "brand_id",
    "card_type",
    "phone_number",
    "level",
    "valid_date_information",
    "pickup_time",
    "user_information",
    "attach",
    "user_card_state",
    "invalid_reason",
    "invalid_time",
];

/// Body members that `confirm` and `PATCH` copy onto the card.
const UPDATABLE_FIELDS: [&str; 8] = [
    "card_color",
    "card_picture_url",
    "phone_number",
    "level",
    "valid_date_information",
    "pickup_time",
    "user_information",
    "attach",
];

/// WeChat Pay's platform certificate, for certificate mode (§8.2).
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// The certificate as PEM; served AEAD-sealed by `/v3/certificates`.
    pub pem: String,
    /// Its serial in hex, as written into `Wechatpay-Serial`; must equal the
    /// certificate's serial (case and leading zeros aside).
    pub serial: String,
    /// The certificate's private key: signs in certificate mode and decrypts
    /// request fields sent under the certificate serial.
    pub private_key: PrivateKey,
}

/// How the WeChat Pay emulator is keyed.
#[derive(Debug, Clone)]
pub struct WechatEmulatorConfig {
    /// WeChat Pay's key: signs answers and callbacks; its public half is the
    /// "WeChat Pay public key" and it decrypts fields sent under `public_key_id`.
    pub wechatpay_private_key: PrivateKey,
    /// The public key's ID, `PUB_KEY_ID_` followed by digits.
    pub public_key_id: String,
    /// Verifies the merchant's `Authorization`; encrypts the sensitive fields
    /// of answers and callbacks.
    pub merchant_public_key: PublicKey,
    /// The service-provider merchant ID requests must be signed for.
    pub mchid: String,
    /// The merchant API certificate serial requests must name (`serial_no`).
    pub merchant_serial_no: String,
    /// Seals callback resources and `/v3/certificates`.
    pub api_v3_key: ApiV3Key,
    /// `Some` for certificate mode (see the module docs).
    pub platform_certificate: Option<PlatformCertificate>,
}

/// A misbehaviour for the next request. Faults queue up (FIFO) and each is
/// used up by exactly one request, whatever its path. "Processed" means the
/// request went through normal handling (checks, and the change it asks for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WechatFault {
    /// Answer this status with `{"code","message"}`, unsigned; not processed.
    /// E.g. `500 SYSTEM_ERROR`, `429 RATELIMIT_EXCEEDED`, `400 PARAM_ERROR`.
    Status {
        /// HTTP status.
        status: u16,
        /// `code` of the error body.
        code: String,
        /// `message` of the error body.
        message: String,
    },
    /// Answer `202 Accepted` with an empty body; not processed.
    Accepted202,
    /// Process, then answer after this delay (past the client's read timeout:
    /// a lost answer whose change was made).
    DelayThenAnswer(Duration),
    /// Process, then close the connection without answering.
    DropAfterProcessing,
    /// Process, then answer without any `Wechatpay-*` header.
    Unsigned,
    /// Process, then answer with a well-formed signature that does not verify.
    BadSignature,
    /// Process, then answer signed correctly but with a `Wechatpay-Timestamp`
    /// [`STALE_SECS`] old.
    StaleTimestamp,
    /// Process, then answer with `Wechatpay-Signature` = `WECHATPAY/SIGNTEST/`
    /// + the valid signature (a probe, §7.4).
    SignTestProbe,
    /// A proxy or web framework changes the request on its way in: the
    /// platform verifies (and echoes in its `SIGN_ERROR`) what arrived.
    Altered(Alteration),
}

/// How [`WechatPayEmulator::callback`] spoils a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackTamper {
    /// Correct.
    None,
    /// `Wechatpay-Signature` = `WECHATPAY/SIGNTEST/` + the valid signature.
    SignTestProbe,
    /// Correctly signed, with a `Wechatpay-Timestamp` [`STALE_SECS`] before `now_unix`.
    StaleTimestamp,
    /// One bit of the AEAD ciphertext flipped before signing: the signature
    /// verifies, decryption fails.
    BadTag,
    /// `Wechatpay-Serial` names a key the merchant does not have (the right
    /// form, one character changed).
    WrongSerial,
    /// One letter or digit of the body changed after signing (JSON stays
    /// well-formed).
    BodyByte,
    /// No `Wechatpay-Signature` header.
    MissingHeader,
}

/// Which WeChat Pay key signs (and decrypts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyChoice {
    PublicKey,
    Certificate,
}

/// How an answer is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    Valid,
    Unsigned,
    Corrupted,
    Stale,
    Probe,
}

/// An answer before signing.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    /// JSON, or empty for `204`.
    body: Vec<u8>,
    /// Sign with this key rather than the one the request implies.
    key: Option<KeyChoice>,
}

/// A handler step: `Err` is the (error) answer to send.
type Step<T> = std::result::Result<T, Reply>;

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            body: body.to_string().into_bytes(),
            key: None,
        }
    }

    fn error(status: u16, code: &str, message: &str, detail: Option<Value>) -> Reply {
        let mut body = json!({"code": code, "message": message});
        if let Some(d) = detail {
            body["detail"] = d;
        }
        Reply::json(status, &body)
    }

    /// `400 PARAM_ERROR` naming the parameter (a JSON Pointer for body
    /// members, the name for query and path parameters).
    fn param(location: &str, field: &str, issue: &str) -> Reply {
        Reply::error(
            400,
            "PARAM_ERROR",
            "参数错误",
            Some(json!({"field": field, "location": location, "issue": issue})),
        )
    }

    /// `401 SIGN_ERROR`; `detail.issue` says which check failed.
    fn sign_error(issue: &str, sign_information: Option<Value>) -> Reply {
        let mut detail = json!({"field": "authorization", "location": "header", "issue": issue});
        if let Some(info) = sign_information {
            detail["sign_information"] = info;
        }
        Reply::error(401, "SIGN_ERROR", SIGN_ERROR_MESSAGE, Some(detail))
    }

    fn card_not_found() -> Reply {
        Reply::error(404, "RESOURCE_NOT_EXISTS", CARD_NOT_FOUND_MESSAGE, None)
    }

    fn system_error(what: &str) -> Reply {
        Reply::error(500, "SYSTEM_ERROR", "系统错误", Some(json!({"issue": what})))
    }
}

/// A user card the emulator knows, sensitive fields in cleartext.
#[derive(Debug, Clone)]
struct UserCard {
    fields: Map<String, Value>,
    /// A `confirm` was applied (later ones answer without changing anything).
    confirmed: bool,
    /// Confirms that passed every check and reached this card (the first
    /// one changes it; any later one is a second confirm of an open card).
    confirms_applied: usize,
}

/// Seeded random faults: each request draws one of these with the given
/// probability (checked in this order), else is handled normally.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomFaults {
    /// Seed of the generator, so a failing run can be replayed.
    pub seed: u64,
    /// Probability of [`WechatFault::DropAfterProcessing`].
    pub drop_after_processing: f64,
    /// Probability of [`WechatFault::DelayThenAnswer`] with `delay`.
    pub delay_then_answer: f64,
    /// The delay for `delay_then_answer` (past the client's read timeout).
    pub delay: Duration,
    /// Probability of an unprocessed `500 SYSTEM_ERROR`.
    pub status_500: f64,
    /// Only requests whose path contains this are faulted (empty: all).
    pub path_contains: &'static str,
}

/// SplitMix64: small, seeded, good enough to spread test faults.
#[derive(Debug, Clone, Copy)]
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits → [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct State {
    faults: VecDeque<WechatFault>,
    random: Option<(RandomFaults, SplitMix)>,
    paths: Vec<String>,
    confirm_hits: HashMap<String, usize>,
    cards: HashMap<String, UserCard>,
    points: HashMap<String, i64>,
    last_request: Option<HttpRequest>,
    brand: super::brand::BrandState,
}

impl super::brand::CardBook for HashMap<String, UserCard> {
    fn fields_mut(&mut self, code: &str) -> Option<&mut Map<String, Value>> {
        self.get_mut(code).map(|c| &mut c.fields)
    }
    fn all_fields(&self) -> Vec<Map<String, Value>> {
        self.values().map(|c| c.fields.clone()).collect()
    }
    fn insert_open(&mut self, code: &str, fields: Map<String, Value>) {
        let card = UserCard {
            fields,
            confirmed: true,
            confirms_applied: 0,
        };
        self.insert(code.to_string(), card);
    }
}

/// The parsed platform certificate next to its configuration.
struct CertMode {
    config: PlatformCertificate,
    cert: Certificate,
}

struct Emulator {
    config: WechatEmulatorConfig,
    cert: Option<CertMode>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("public_key_id", &self.config.public_key_id)
            .field("certificate_mode", &self.cert.is_some())
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `2020-07-13T23:27:38+08:00` (China Standard Time, as WeChat Pay writes times).
fn rfc3339_cst(unix: i64) -> Option<String> {
    let offset = chrono::FixedOffset::east_opt(8 * 3600)?;
    let t = chrono::DateTime::from_timestamp(unix, 0)?;
    Some(t.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    random_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02X}")).collect()
}

/// A 12-character AEAD nonce (`resource.nonce`).
fn aead_nonce() -> String {
    generate_nonce()
        .chars()
        .take(cardbridge::crypto::aead::NONCE_LEN)
        .collect()
}

/// A random UUID-shaped notification ID (36 characters).
fn notification_id() -> String {
    let h = random_hex(16).to_ascii_lowercase();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Flips one bit of the raw signature: still well-formed Base64, never valid.
fn corrupt_signature(b64: &str) -> String {
    match b64_decode_strict(b64) {
        Some(mut raw) if !raw.is_empty() => {
            raw[0] ^= 0x01;
            b64_encode(&raw)
        }
        _ => "AAAA".into(),
    }
}

/// The successor of an ASCII letter or digit, wrapping within its class.
fn next_alphanumeric(b: u8) -> u8 {
    match b {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        _ => b + 1,
    }
}

/// Changes the last ASCII letter or digit (or appends a space if none).
fn change_one_alphanumeric(body: &mut Vec<u8>) {
    match body.iter_mut().rev().find(|b| b.is_ascii_alphanumeric()) {
        Some(b) => *b = next_alphanumeric(*b),
        None => body.push(b' '),
    }
}

/// Calls `f` with the JSON Pointer and value of every sensitive field of a
/// user card or callback resource (§9): `phone_number`,
/// `user_information.common_field_list[].value` and
/// `user_information.custom_field_list[].user_chosen_values[]`.
fn for_each_sensitive<E>(
    v: &mut Value,
    mut f: impl FnMut(&str, &mut Value) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if let Some(p) = v.get_mut("phone_number") {
        f("/phone_number", p)?;
    }
    let Some(info) = v.get_mut("user_information") else {
        return Ok(());
    };
    if let Some(list) = info.get_mut("common_field_list").and_then(Value::as_array_mut) {
        for (i, item) in list.iter_mut().enumerate() {
            if let Some(val) = item.get_mut("value") {
                f(&format!("/user_information/common_field_list/{i}/value"), val)?;
            }
        }
    }
    if let Some(list) = info.get_mut("custom_field_list").and_then(Value::as_array_mut) {
        for (i, item) in list.iter_mut().enumerate() {
            if let Some(values) = item.get_mut("user_chosen_values").and_then(Value::as_array_mut) {
                for (j, val) in values.iter_mut().enumerate() {
                    f(
                        &format!("/user_information/custom_field_list/{i}/user_chosen_values/{j}"),
                        val,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Encrypts every sensitive string field of `v` to `key` (RSA-OAEP, §9).
/// Errors name the field's JSON Pointer.
fn encrypt_sensitive(v: &mut Value, key: &PublicKey) -> Result<()> {
    for_each_sensitive(v, |pointer, slot| {
        let Some(clear) = slot.as_str() else {
            return Err(
                Error::new(ErrorKind::InvalidParameter, format!("{pointer}: must be a string")).with_field(pointer),
            );
        };
        let sealed = oaep::encrypt(key, clear.as_bytes())
            .map_err(|e| Error::new(e.kind(), format!("{pointer}: {}", e.message())).with_field(pointer))?;
        *slot = Value::String(sealed);
        Ok(())
    })
}

/// `(path, raw query)` of a request-target.
fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// Percent-decoded `name=value` pairs of a query, in order.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(n), decode(v))
        })
        .collect()
}

fn required_query<'a>(query: &'a [(String, String)], name: &str) -> Step<&'a str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Reply::param("query", name, "required query parameter is missing or empty"))
}

fn decode_segment(raw: &str) -> Step<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Reply::param("path", "user_card_code", "not UTF-8 once percent-decoded"))
}

/// The user-card path segment of a `…/user-cards/{code}/confirm` path.
fn confirm_segment(path: &str) -> Option<&str> {
    path.strip_prefix(CARD_MEMBER_PATH)?
        .strip_prefix("/user-cards/")?
        .strip_suffix("/confirm")
        .filter(|c| !c.is_empty() && !c.contains('/'))
}

fn body_object(body: &[u8]) -> Step<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reply::param("body", "/", "the body must be a JSON object")),
    }
}

fn required_str<'a>(body: &'a Map<String, Value>, name: &str) -> Step<&'a str> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(Reply::param("body", &format!("/{name}"), "must be a non-empty string")),
        None => Err(Reply::param("body", &format!("/{name}"), "is required")),
    }
}

/// The answer form of a card: §5.6 members in order.
fn card_view(fields: &Map<String, Value>) -> Map<String, Value> {
    USER_CARD_FIELDS
        .iter()
        .filter_map(|k| fields.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect()
}

impl Emulator {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters and cards stay usable even if a handler thread panicked mid-update.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signing_key(&self, choice: KeyChoice) -> (&PrivateKey, &str) {
        match (&self.cert, choice) {
            (Some(c), KeyChoice::Certificate) => (&c.config.private_key, &c.config.serial),
            _ => (&self.config.wechatpay_private_key, &self.config.public_key_id),
        }
    }

    /// The key named by a `Wechatpay-Serial` value, if the emulator has it.
    fn key_for_serial(&self, serial: &str) -> Option<KeyChoice> {
        if serial == self.config.public_key_id {
            return Some(KeyChoice::PublicKey);
        }
        let cert = self.cert.as_ref()?;
        let hex = !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && normalize_serial(serial) == cert.cert.serial()).then_some(KeyChoice::Certificate)
    }

    /// Unsolicited messages: the certificate in certificate mode, else the public key.
    fn default_key(&self) -> KeyChoice {
        if self.cert.is_some() {
            KeyChoice::Certificate
        } else {
            KeyChoice::PublicKey
        }
    }

    /// The key that signs the answer to `request`: the one its
    /// `Wechatpay-Serial` names, else the default.
    fn answer_key(&self, request: &HttpRequest) -> KeyChoice {
        find_header(&request.headers, HEADER_SERIAL)
            .and_then(|s| self.key_for_serial(s))
            .unwrap_or_else(|| self.default_key())
    }

    /// The key a request's `Wechatpay-Serial` names; missing or unknown is
    /// the real service's `PARAM_ERROR`.
    fn request_key(&self, request: &HttpRequest) -> Step<KeyChoice> {
        find_header(&request.headers, HEADER_SERIAL)
            .and_then(|s| self.key_for_serial(s))
            .ok_or_else(|| {
                Reply::error(
                    400,
                    "PARAM_ERROR",
                    SERIAL_ERROR_MESSAGE,
                    Some(json!({"field": HEADER_SERIAL, "location": "header",
                                "issue": "missing, or names no key of this merchant"})),
                )
            })
    }

    /// `Wechatpay-*` headers for `body`, signed as `signing` says.
    fn signature_headers(&self, choice: KeyChoice, now: i64, body: &[u8], signing: Signing) -> Result<Vec<Header>> {
        let (key, serial) = self.signing_key(choice);
        let timestamp = if signing == Signing::Stale {
            now - STALE_SECS
        } else {
            now
        }
        .to_string();
        let nonce = generate_nonce();
        let mut signature = b64_encode(&rsa::sign_sha256(key, &verify::message(&timestamp, &nonce, body))?);
        match signing {
            Signing::Corrupted => signature = corrupt_signature(&signature),
            Signing::Probe => signature = format!("{PROBE_PREFIX}{signature}"),
            _ => {}
        }
        Ok(vec![
            (HEADER_TIMESTAMP.into(), timestamp),
            (HEADER_NONCE.into(), nonce),
            (HEADER_SIGNATURE.into(), signature),
            (HEADER_SERIAL.into(), serial.to_string()),
            (HEADER_SIGNATURE_TYPE.into(), SCHEME.into()),
        ])
    }

    /// Turns a reply into the HTTP answer: `Request-ID`, `Content-Type` for a
    /// body, and the signature headers unless `signing` says otherwise.
    fn finish(&self, reply: Reply, key: KeyChoice, signing: Signing) -> HttpResponse {
        // `Date` as any HTTP server writes it: the platform's clock, which a
        // client compares with its own when a timestamp is refused.
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let mut headers: Vec<Header> = vec![("Request-ID".into(), random_hex(16)), ("Date".into(), date)];
        if !reply.body.is_empty() {
            headers.push(("Content-Type".into(), JSON_CONTENT_TYPE.into()));
        }
        if signing != Signing::Unsigned {
            match self.signature_headers(reply.key.unwrap_or(key), now_unix(), &reply.body, signing) {
                Ok(h) => headers.extend(h),
                Err(_) => return self.finish(Reply::system_error("signing failed"), key, Signing::Unsigned),
            }
        }
        HttpResponse {
            status: reply.status,
            headers,
            body: reply.body,
        }
    }

    fn handle(&self, request: &HttpRequest) -> Action {
        let fault = {
            let mut st = self.lock();
            st.last_request = Some(request.clone());
            let (path, _) = split_target(&request.target);
            st.paths.push(path.to_string());
            if request.method == "POST" {
                if let Some(raw) = confirm_segment(path) {
                    let code = decode_segment(raw).unwrap_or_else(|_| raw.to_string());
                    *st.confirm_hits.entry(code).or_default() += 1;
                }
            }
            let queued = st.faults.pop_front();
            queued.or_else(|| Self::draw_random(&mut st, path))
        };
        let key = self.answer_key(request);
        let processed = |signing| self.finish(self.process(request), key, signing);
        match fault {
            None => Action::Respond(processed(Signing::Valid)),
            Some(WechatFault::Status { status, code, message }) => {
                Action::Respond(self.finish(Reply::error(status, &code, &message, None), key, Signing::Unsigned))
            }
            Some(WechatFault::Accepted202) => Action::Respond(self.finish(
                Reply {
                    status: 202,
                    body: Vec::new(),
                    key: None,
                },
                key,
                Signing::Unsigned,
            )),
            Some(WechatFault::DelayThenAnswer(delay)) => Action::RespondAfter(delay, processed(Signing::Valid)),
            Some(WechatFault::DropAfterProcessing) => {
                // The change is made; only the answer is lost.
                let _ = self.process(request);
                Action::Drop
            }
            Some(WechatFault::Unsigned) => Action::Respond(processed(Signing::Unsigned)),
            Some(WechatFault::BadSignature) => Action::Respond(processed(Signing::Corrupted)),
            Some(WechatFault::StaleTimestamp) => Action::Respond(processed(Signing::Stale)),
            Some(WechatFault::SignTestProbe) => Action::Respond(processed(Signing::Probe)),
            Some(WechatFault::Altered(how)) => {
                let arrived = how.apply(request);
                Action::Respond(self.finish(self.process(&arrived), key, Signing::Valid))
            }
        }
    }

    fn draw_random(st: &mut State, path: &str) -> Option<WechatFault> {
        let (config, rng) = st.random.as_mut()?;
        if !path.contains(config.path_contains) {
            return None;
        }
        let roll = rng.next_unit();
        let mut edge = config.drop_after_processing;
        if roll < edge {
            return Some(WechatFault::DropAfterProcessing);
        }
        edge += config.delay_then_answer;
        if roll < edge {
            return Some(WechatFault::DelayThenAnswer(config.delay));
        }
        edge += config.status_500;
        if roll < edge {
            return Some(WechatFault::Status {
                status: 500,
                code: "SYSTEM_ERROR".into(),
                message: "系统错误".into(),
            });
        }
        None
    }

    /// Normal handling: header and signature checks, then the API.
    fn process(&self, request: &HttpRequest) -> Reply {
        let checked = self
            .check_headers(request)
            .and_then(|()| self.check_authorization(request, now_unix()))
            .and_then(|()| self.route(request));
        checked.unwrap_or_else(|refusal| refusal)
    }

    fn check_headers(&self, request: &HttpRequest) -> Step<()> {
        let present = |name| find_header(&request.headers, name).is_some_and(|v| !v.is_empty());
        if present("Accept") && present("User-Agent") {
            Ok(())
        } else {
            Err(Reply::error(
                400,
                "INVALID_REQUEST",
                "Http头缺少Accept或User-Agent",
                None,
            ))
        }
    }

    /// Verifies `Authorization` as the real service does (§6).
    fn check_authorization(&self, request: &HttpRequest, now: i64) -> Step<()> {
        let refuse = |issue: &str| Reply::sign_error(issue, None);
        let value = find_header(&request.headers, "Authorization")
            .ok_or_else(|| refuse("the Authorization header is missing"))?;
        let auth = sign::parse_authorization(value).map_err(|issue| refuse(&issue))?;
        if auth.mchid != self.config.mchid {
            return Err(refuse("mchid is not this merchant"));
        }
        if normalize_serial(&auth.serial_no) != normalize_serial(&self.config.merchant_serial_no) {
            return Err(refuse("serial_no is not the merchant API certificate serial"));
        }
        let timestamp = auth
            .timestamp
            .parse::<i64>()
            .ok()
            .filter(|t| auth.timestamp.bytes().all(|b| b.is_ascii_digit()) && t.to_string() == auth.timestamp)
            .ok_or_else(|| refuse("timestamp must be decimal Unix seconds"))?;
        if (i128::from(now) - i128::from(timestamp)).abs() > i128::from(MAX_CLOCK_SKEW_SECS) {
            return Err(refuse("timestamp is more than 300 s away from the server time"));
        }
        let signature = b64_decode_strict(&auth.signature).ok_or_else(|| refuse("signature is not valid Base64"))?;
        let message = sign::message(&request.method, &request.target, timestamp, &auth.nonce, &request.body);
        if !rsa::verify_sha256(&self.config.merchant_public_key, &message, &signature) {
            let truncated: String = String::from_utf8_lossy(&message).chars().take(128).collect();
            return Err(Reply::sign_error(
                "signature does not match",
                Some(json!({"method": request.method, "url": request.target,
                            "sign_message_length": message.len(), "truncated_sign_message": truncated})),
            ));
        }
        Ok(())
    }

    fn route(&self, request: &HttpRequest) -> Step<Reply> {
        let (path, raw_query) = split_target(&request.target);
        let query = parse_query(raw_query);
        let method = request.method.as_str();
        let not_allowed = || Err(Reply::error(405, "METHOD_NOT_ALLOWED", "不支持的HTTP方法", None));
        if path == CERTIFICATES_PATH {
            return if method == "GET" {
                self.certificates()
            } else {
                not_allowed()
            };
        }
        if path == format!("{CARD_MEMBER_PATH}/user-points/sync") {
            return if method == "POST" {
                self.sync_points(&request.body)
            } else {
                not_allowed()
            };
        }
        if super::brand::serves(path) {
            return self.brand(request, path, &query);
        }
        if let Some(raw) = confirm_segment(path) {
            let code = decode_segment(raw)?;
            return if method == "POST" {
                self.confirm(request, &code, &query)
            } else {
                not_allowed()
            };
        }
        let card_segment = path
            .strip_prefix(CARD_MEMBER_PATH)
            .and_then(|p| p.strip_prefix("/user-cards/"))
            .filter(|c| !c.is_empty() && !c.contains('/'));
        if let Some(raw) = card_segment {
            let code = decode_segment(raw)?;
            return match method {
                "GET" => self.get_card(&code, &query),
                "PATCH" => self.patch_card(request, &code, &query),
                _ => not_allowed(),
            };
        }
        Err(Reply::error(
            404,
            "NOT_FOUND",
            "the emulator does not serve this URL",
            None,
        ))
    }

    /// The rest of the §4 family ([`super::brand`]): request fields
    /// decrypted here, user cards in the answer sealed to the merchant key.
    fn brand(&self, request: &HttpRequest, path: &str, query: &[(String, String)]) -> Step<Reply> {
        if super::brand::needs_serial(path) {
            self.request_key(request)?;
        }
        let body = if request.body.is_empty() {
            None
        } else {
            let mut b = body_object(&request.body)?;
            self.decrypt_fields(&mut b, request)?;
            Some(b)
        };
        let answer = {
            let mut st = self.lock();
            let st = &mut *st;
            super::brand::route(&mut st.brand, &mut st.cards, &request.method, path, query, body)
        };
        let seal = |v: &mut Value| -> Step<()> {
            if let Value::Object(m) = v {
                *v = Value::Object(card_view(m));
            }
            encrypt_sensitive(v, &self.config.merchant_public_key)
                .map_err(|_| Reply::system_error("cannot encrypt a sensitive field to the merchant key"))
        };
        let mut body = answer.body;
        match answer.seal {
            super::brand::Seal::Plain => {}
            super::brand::Seal::Card => seal(&mut body)?,
            super::brand::Seal::CardList => {
                for item in body.get_mut("data").and_then(Value::as_array_mut).into_iter().flatten() {
                    seal(item)?;
                }
            }
        }
        Ok(Reply::json(answer.status, &body))
    }

    /// Decrypts the sensitive members of a request body in place, with the
    /// key `Wechatpay-Serial` names (required only if there is such a member).
    fn decrypt_fields(&self, body: &mut Map<String, Value>, request: &HttpRequest) -> Step<()> {
        let mut value = Value::Object(std::mem::take(body));
        let outcome = for_each_sensitive(&mut value, |pointer, slot| {
            let key = match self.request_key(request)? {
                KeyChoice::Certificate => match &self.cert {
                    Some(c) => &c.config.private_key,
                    None => &self.config.wechatpay_private_key,
                },
                KeyChoice::PublicKey => &self.config.wechatpay_private_key,
            };
            let Some(sealed) = slot.as_str() else {
                return Err(Reply::param("body", pointer, "must be a string (RSA-OAEP ciphertext)"));
            };
            let clear = oaep::decrypt(key, sealed)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or_else(|| {
                    Reply::param(
                        "body",
                        pointer,
                        "cannot be decrypted with the key Wechatpay-Serial names (RSA-OAEP SHA-1)",
                    )
                })?;
            *slot = Value::String(clear);
            Ok(())
        });
        if let Value::Object(m) = value {
            *body = m;
        }
        outcome
    }

    /// The card `code` if it belongs to `card_id` (and to `brand_id` /
    /// `openid` where given).
    fn matching_card<'a>(
        cards: &'a mut HashMap<String, UserCard>,
        code: &str,
        card_id: &str,
        brand_id: Option<&str>,
        openid: Option<&str>,
    ) -> Step<&'a mut UserCard> {
        let matches = |card: &UserCard, name: &str, want: Option<&str>| {
            want.is_none_or(|w| card.fields.get(name).and_then(Value::as_str) == Some(w))
        };
        cards
            .get_mut(code)
            .filter(|c| {
                matches(c, "card_id", Some(card_id)) && matches(c, "brand_id", brand_id) && matches(c, "openid", openid)
            })
            .ok_or_else(Reply::card_not_found)
    }

    /// A `200` answer carrying `card` with its sensitive fields encrypted to
    /// the merchant key.
    fn card_reply(&self, card: Map<String, Value>) -> Step<Reply> {
        let mut value = Value::Object(card_view(&card));
        encrypt_sensitive(&mut value, &self.config.merchant_public_key)
            .map_err(|_| Reply::system_error("cannot encrypt a sensitive field to the merchant key"))?;
        Ok(Reply::json(200, &value))
    }

    fn confirm(&self, request: &HttpRequest, code: &str, query: &[(String, String)]) -> Step<Reply> {
        let card_id = required_query(query, "card_id")?;
        self.request_key(request)?;
        let mut body = body_object(&request.body)?;
        let brand_id = required_str(&body, "brand_id")?.to_string();
        let openid = required_str(&body, "openid")?.to_string();
        let state = required_str(&body, "user_card_confirm_state")?;
        if !CONFIRM_STATES.contains(&state) {
            return Err(Reply::param(
                "body",
                "/user_card_confirm_state",
                "must be CREATE_CARD_SUCCESS or CREATE_CARD_FAIL",
            ));
        }
        let success = state == CONFIRM_STATES[0];
        if body.get("card_id").is_some_and(|c| c.as_str() != Some(card_id)) {
            return Err(Reply::param(
                "body",
                "/card_id",
                "differs from the card_id query parameter",
            ));
        }
        self.decrypt_fields(&mut body, request)?;
        let mut st = self.lock();
        let card = Self::matching_card(&mut st.cards, code, card_id, Some(&brand_id), Some(&openid))?;
        card.confirms_applied += 1;
        if !card.confirmed {
            for name in UPDATABLE_FIELDS {
                if let Some(v) = body.get(name) {
                    card.fields.insert(name.into(), v.clone());
                }
            }
            let new_state = if success { "EFFECTIVE" } else { "INVALID" };
            card.fields.insert("user_card_state".into(), new_state.into());
            if !success {
                card.fields.insert(
                    "invalid_time".into(),
                    rfc3339_cst(now_unix()).unwrap_or_default().into(),
                );
            }
            card.confirmed = true;
        }
        let fields = card.fields.clone();
        drop(st);
        self.card_reply(fields)
    }

    fn get_card(&self, code: &str, query: &[(String, String)]) -> Step<Reply> {
        let brand_id = required_query(query, "brand_id")?;
        let card_id = required_query(query, "card_id")?;
        let openid = required_query(query, "openid")?;
        let mut st = self.lock();
        let fields = Self::matching_card(&mut st.cards, code, card_id, Some(brand_id), Some(openid))?
            .fields
            .clone();
        drop(st);
        self.card_reply(fields)
    }

    fn patch_card(&self, request: &HttpRequest, code: &str, query: &[(String, String)]) -> Step<Reply> {
        let card_id = required_query(query, "card_id")?;
        let mut body = body_object(&request.body)?;
        let brand_id = required_str(&body, "brand_id")?.to_string();
        let openid = required_str(&body, "openid")?.to_string();
        self.decrypt_fields(&mut body, request)?;
        let mut st = self.lock();
        let card = Self::matching_card(&mut st.cards, code, card_id, Some(&brand_id), Some(&openid))?;
        for name in UPDATABLE_FIELDS {
            if let Some(v) = body.get(name) {
                card.fields.insert(name.into(), v.clone());
            }
        }
        let fields = card.fields.clone();
        drop(st);
        self.card_reply(fields)
    }

    fn sync_points(&self, raw: &[u8]) -> Step<Reply> {
        let body = body_object(raw)?;
        for name in ["out_request_no", "brand_id", "card_id", "openid", "user_card_code"] {
            required_str(&body, name)?;
        }
        let balance = body
            .get("point_balance")
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| Reply::param("body", "/point_balance", "must be a non-negative integer"))?;
        let field = |name| body.get(name).and_then(Value::as_str).unwrap_or_default();
        let code = field("user_card_code");
        let mut st = self.lock();
        Self::matching_card(
            &mut st.cards,
            code,
            field("card_id"),
            Some(field("brand_id")),
            Some(field("openid")),
        )?;
        st.points.insert(code.to_string(), balance);
        Ok(Reply {
            status: 204,
            body: Vec::new(),
            key: None,
        })
    }

    /// `GET /v3/certificates` (§8.1, §8.2).
    fn certificates(&self) -> Step<Reply> {
        let Some(c) = &self.cert else {
            return Err(Reply::error(404, "RESOURCE_NOT_EXISTS", NO_CERTIFICATE_MESSAGE, None));
        };
        let nonce = aead_nonce();
        let ciphertext = self
            .config
            .api_v3_key
            .encrypt(nonce.as_bytes(), b"certificate", c.config.pem.as_bytes())
            .map_err(|_| Reply::system_error("cannot seal the certificate"))?;
        let times = rfc3339_cst(c.cert.not_before()).zip(rfc3339_cst(c.cert.not_after()));
        let (effective, expire) = times.ok_or_else(|| Reply::system_error("certificate validity out of range"))?;
        let body = json!({"data": [{
            "serial_no": c.config.serial,
            "effective_time": effective,
            "expire_time": expire,
            "encrypt_certificate": {
                "algorithm": AEAD_ALGORITHM,
                "nonce": nonce,
                "associated_data": "certificate",
                "ciphertext": ciphertext,
            },
        }]});
        Ok(Reply {
            key: Some(KeyChoice::Certificate),
            ..Reply::json(200, &body)
        })
    }
}

/// Checks the configuration; errors are `InvalidConfig` naming the field.
fn check_config(config: &WechatEmulatorConfig) -> Result<Option<CertMode>> {
    let bad =
        |field: &str, rule: &str| Error::new(ErrorKind::InvalidConfig, format!("{field}: {rule}")).with_field(field);
    let digits = config.public_key_id.strip_prefix(PUB_KEY_ID_PREFIX).unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("emulator.public_key_id", "must be PUB_KEY_ID_ followed by digits"));
    }
    if config.mchid.is_empty() || config.mchid.len() > 32 || !config.mchid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("emulator.mchid", "must be 1 to 32 ASCII digits"));
    }
    let serial = &config.merchant_serial_no;
    if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("emulator.merchant_serial_no", "must be 1 to 40 hex digits"));
    }
    let Some(pc) = &config.platform_certificate else {
        return Ok(None);
    };
    let cert = Certificate::from_pem(&pc.pem).map_err(|e| bad("emulator.platform_certificate.pem", e.message()))?;
    let hex = !pc.serial.is_empty() && pc.serial.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || normalize_serial(&pc.serial) != cert.serial() {
        return Err(bad(
            "emulator.platform_certificate.serial",
            &format!("must be the certificate's serial {} in hex", cert.serial()),
        ));
    }
    if cert.public_key() != &pc.private_key.public_key() {
        return Err(bad(
            "emulator.platform_certificate.private_key",
            "must be the private key of the certificate",
        ));
    }
    Ok(Some(CertMode {
        config: pc.clone(),
        cert,
    }))
}

/// The WeChat Pay card-member APIs' request handling without a server of
/// its own: what [`WechatPayEmulator`] runs, for a host that routes requests
/// to it from its own server (the `cardbridge emulator` binary). Cheap to
/// clone; clones share the cards, counters and queued faults.
#[derive(Debug, Clone)]
pub struct WechatPayHandler {
    emulator: Arc<Emulator>,
}

impl WechatPayHandler {
    /// Checks `config` (see [`WechatPayEmulator::start`]) and builds the handler.
    pub fn new(config: WechatEmulatorConfig) -> Result<Self> {
        let cert = check_config(&config)?;
        Ok(WechatPayHandler {
            emulator: Arc::new(Emulator {
                config,
                cert,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// Handles one request as WeChat Pay would.
    pub fn handle(&self, request: &HttpRequest) -> Action {
        self.emulator.handle(request)
    }

    /// Queues a fault for a later request (first in, first out).
    pub fn push_fault(&self, fault: WechatFault) {
        self.emulator.lock().faults.push_back(fault);
    }

    /// Requests received whose path (without the query) starts with
    /// `path_prefix`, refused and faulted ones included.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.emulator
            .lock()
            .paths
            .iter()
            .filter(|p| p.starts_with(path_prefix))
            .count()
    }

    /// `POST …/user-cards/{user_card_code}/confirm` requests received for this
    /// (percent-decoded) code, refused and faulted ones included.
    pub fn confirm_hits(&self, user_card_code: &str) -> usize {
        self.emulator
            .lock()
            .confirm_hits
            .get(user_card_code)
            .copied()
            .unwrap_or(0)
    }

    /// `POST …/confirm` requests received for all cards, refused and faulted ones included.
    pub fn hits_confirm_total(&self) -> usize {
        self.emulator.lock().confirm_hits.values().sum()
    }

    /// Draws a random fault for every later request without a queued one
    /// (`None` turns random faults off).
    pub fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.emulator.lock().random = faults.map(|f| (f, SplitMix(f.seed)));
    }

    /// Confirms that passed every check and reached this card: 1 after a
    /// correct confirm, more if the card was confirmed again while open.
    pub fn confirms_applied_for(&self, user_card_code: &str) -> usize {
        self.emulator
            .lock()
            .cards
            .get(user_card_code)
            .map_or(0, |c| c.confirms_applied)
    }

    /// Distinct user cards a `confirm` was applied to.
    pub fn confirms_applied(&self) -> usize {
        self.emulator.lock().cards.values().filter(|c| c.confirmed).count()
    }

    /// The emulator's view of a user card: the §5.6 members with sensitive
    /// fields in cleartext; `user_card_state` is `UNACTIVATED` until a
    /// confirm makes it `EFFECTIVE` (success) or `INVALID` (failure).
    pub fn user_card(&self, code: &str) -> Option<Value> {
        let st = self.emulator.lock();
        st.cards.get(code).map(|c| Value::Object(card_view(&c.fields)))
    }

    /// The last `point_balance` synced for a user card.
    pub fn point_balance(&self, code: &str) -> Option<i64> {
        self.emulator.lock().points.get(code).copied()
    }

    /// The last request received on any path, as the server saw it.
    pub fn last_request(&self) -> Option<HttpRequest> {
        self.emulator.lock().last_request.clone()
    }

    /// Seeds a user card, as after a `USER_CARD.CREATE`: `card_type`
    /// `NORMAL`, `valid_date_information` `PERMANENT`, `pickup_time` now,
    /// state `UNACTIVATED`, not confirmed. Replaces a card with the same code.
    pub fn add_user_card(&self, code: &str, card_id: &str, openid: &str, brand_id: &str) {
        let fields = json!({
            "user_card_code": code,
            "card_id": card_id,
            "openid": openid,
            "brand_id": brand_id,
            "card_type": "NORMAL",
            "valid_date_information": {"type": "PERMANENT"},
            "pickup_time": rfc3339_cst(now_unix()).unwrap_or_default(),
            "user_card_state": "UNACTIVATED",
        });
        let Value::Object(fields) = fields else {
            return;
        };
        self.emulator.lock().cards.insert(
            code.to_string(),
            UserCard {
                fields,
                confirmed: false,
                confirms_applied: 0,
            },
        );
    }

    /// A signed card-event callback (§3) for a merchant's `notify_url`.
    ///
    /// `plaintext` is the decrypted resource (e.g. [`sample_user_card_create`])
    /// with its sensitive fields (`phone_number`, `common_field_list[].value`,
    /// `custom_field_list[].user_chosen_values[]`) in cleartext; they are
    /// RSA-OAEP-encrypted to the merchant key here, then the resource is
    /// sealed with the APIv3 key (nonce random, `associated_data` =
    /// `original_type`, left out when empty). The envelope is signed at
    /// `now_unix` by the public key (the certificate in certificate mode),
    /// then spoiled as `tamper` says. The request's target is `/`: the
    /// callback signature does not cover the URL; [`WechatPayEmulator::send`] posts it
    /// to the URL given there.
    ///
    /// Errors: `InvalidParameter` for a non-string sensitive field or a
    /// `now_unix` out of range, `PlaintextTooLong` for a sensitive value too
    /// long for RSA-OAEP (both naming the field).
    pub fn callback(
        &self,
        event_type: &str,
        original_type: &str,
        plaintext: &Value,
        now_unix: i64,
        tamper: CallbackTamper,
    ) -> Result<HttpRequest> {
        let emu = &self.emulator;
        let create_time = rfc3339_cst(now_unix)
            .ok_or_else(|| Error::new(ErrorKind::InvalidParameter, "now_unix: out of the supported time range"))?;
        let mut resource = plaintext.clone();
        encrypt_sensitive(&mut resource, &emu.config.merchant_public_key)?;
        let resource_json = serde_json::to_vec(&resource)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("serialising resource: {e}")))?;
        let nonce = aead_nonce();
        let mut ciphertext =
            emu.config
                .api_v3_key
                .encrypt(nonce.as_bytes(), original_type.as_bytes(), &resource_json)?;
        if tamper == CallbackTamper::BadTag {
            ciphertext = corrupt_signature(&ciphertext);
        }
        let mut sealed = Map::new();
        sealed.insert("original_type".into(), original_type.into());
        sealed.insert("algorithm".into(), AEAD_ALGORITHM.into());
        sealed.insert("ciphertext".into(), ciphertext.into());
        if !original_type.is_empty() {
            sealed.insert("associated_data".into(), original_type.into());
        }
        sealed.insert("nonce".into(), nonce.into());
        let summary = if event_type.ends_with(".USER_CARD.CREATE") {
            "用户开通会员卡通知"
        } else if event_type.ends_with(".USER_CARD.DELETE") {
            "用户删除会员卡通知"
        } else {
            "会员卡事件通知"
        };
        let envelope = json!({
            "id": notification_id(),
            "create_time": create_time,
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": sealed,
        });
        let mut body = envelope.to_string().into_bytes();
        let signing = match tamper {
            CallbackTamper::SignTestProbe => Signing::Probe,
            CallbackTamper::StaleTimestamp => Signing::Stale,
            _ => Signing::Valid,
        };
        let mut headers: Vec<Header> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Request-ID".into(), random_hex(16)),
        ];
        for (name, mut value) in emu.signature_headers(emu.default_key(), now_unix, &body, signing)? {
            if tamper == CallbackTamper::MissingHeader && name == HEADER_SIGNATURE {
                continue;
            }
            if tamper == CallbackTamper::WrongSerial && name == HEADER_SERIAL {
                let mut bytes = value.into_bytes();
                change_one_alphanumeric(&mut bytes);
                value = String::from_utf8_lossy(&bytes).into_owned();
            }
            headers.push((name, value));
        }
        if tamper == CallbackTamper::BodyByte {
            change_one_alphanumeric(&mut body);
        }
        Ok(HttpRequest {
            method: "POST".into(),
            target: "/".into(),
            headers,
            body,
        })
    }

    /// [`Self::hits`] per path (without the query).
    pub fn hits_by_path(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in &self.emulator.lock().paths {
            *out.entry(p.clone()).or_default() += 1;
        }
        out
    }

    /// [`Self::confirm_hits`] of every code seen.
    pub fn confirm_hits_by_code(&self) -> BTreeMap<String, usize> {
        self.emulator
            .lock()
            .confirm_hits
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The codes of every user card the emulator knows, sorted.
    pub fn user_card_codes(&self) -> Vec<String> {
        let mut codes: Vec<String> = self.emulator.lock().cards.keys().cloned().collect();
        codes.sort();
        codes
    }

    /// The brand-family state (test view): `{"templates":[…],"feeds":[…],
    /// "exchanges":[…],"activities":[…]}`, each as stored (feeds and exchange
    /// confirmations as received; one element per applied request).
    pub fn brand_state(&self) -> Value {
        self.emulator.lock().brand.snapshot()
    }

    /// What must survive a restart: the user cards (cleartext fields, whether
    /// confirmed, confirms applied), point balances and the brand-family state
    /// (templates, feeds, exchange confirmations, activities and their request keys), as
    /// `{"cards": {code: {"fields", "confirmed", "confirms_applied"}}, "points": {code: n}, "brand": {..}}`
    /// (counters and queued faults are not kept).
    pub fn export_state(&self) -> Value {
        let st = self.emulator.lock();
        let cards: Map<String, Value> = st
            .cards
            .iter()
            .map(|(code, c)| {
                let card = json!({"fields": Value::Object(c.fields.clone()), "confirmed": c.confirmed,
                                  "confirms_applied": c.confirms_applied});
                (code.clone(), card)
            })
            .collect();
        let points: Map<String, Value> = st.points.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        json!({"cards": cards, "points": points, "brand": st.brand.export()})
    }

    /// Adds the cards and balances of an [`Self::export_state`] document
    /// (existing codes are replaced).
    pub fn import_state(&self, state: &Value) -> Result<()> {
        let bad = |field: &str, rule: &str| {
            Error::new(ErrorKind::InvalidParameter, format!("state.{field}: {rule}"))
                .with_field(format!("state.{field}"))
        };
        let object = |name: &str| match state.get(name) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(bad(name, "must be an object")),
        };
        let (cards, points) = (object("cards")?, object("points")?);
        let mut restored = Vec::with_capacity(cards.len());
        for (code, c) in cards {
            let fields = c.get("fields").and_then(Value::as_object).cloned();
            let confirmed = c.get("confirmed").and_then(Value::as_bool);
            let applied = c.get("confirms_applied").and_then(Value::as_u64);
            let (Some(fields), Some(confirmed), Some(applied)) = (fields, confirmed, applied) else {
                return Err(bad(
                    "cards",
                    "each card must have fields (object), confirmed (boolean) and confirms_applied (integer)",
                ));
            };
            let confirms_applied = usize::try_from(applied).unwrap_or(usize::MAX);
            restored.push((
                code,
                UserCard {
                    fields,
                    confirmed,
                    confirms_applied,
                },
            ));
        }
        let mut balances = Vec::with_capacity(points.len());
        for (code, n) in points {
            let n = n
                .as_i64()
                .ok_or_else(|| bad("points", "each balance must be an integer"))?;
            balances.push((code, n));
        }
        let mut brand = super::brand::BrandState::default();
        if let Some(b) = state.get("brand") {
            brand.import(b).map_err(|rule| bad("brand", &rule))?;
        }
        let mut st = self.emulator.lock();
        st.cards.extend(restored);
        st.points.extend(balances);
        st.brand.import(&brand.export()).map_err(|rule| bad("brand", &rule))?;
        Ok(())
    }
}

/// A loopback emulator of the WeChat Pay card-member APIs (see the module
/// docs). Stops on [`WechatPayEmulator::stop`] or drop.
#[derive(Debug)]
pub struct WechatPayEmulator {
    server: HttpServer,
    handler: WechatPayHandler,
}

impl WechatPayEmulator {
    /// Checks `config` (`InvalidConfig` naming the field: a `public_key_id`
    /// not `PUB_KEY_ID_<digits>`, a non-digit `mchid`, a non-hex merchant
    /// serial, or a platform certificate that does not parse, does not have
    /// the given serial or does not match its private key) and starts the
    /// emulator on `127.0.0.1` on a free port.
    pub fn start(config: WechatEmulatorConfig) -> Result<Self> {
        let handler = WechatPayHandler::new(config)?;
        let serving = handler.clone();
        let server = HttpServer::start(move |request| serving.handle(request))?;
        Ok(WechatPayEmulator { server, handler })
    }

    /// `http://127.0.0.1:<port>`: the merchant's base URL (paths start with `/v3/`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Stops the server and joins its threads.
    pub fn stop(self) {
        self.server.stop();
    }

    /// The handler behind the server (shares its state).
    pub fn handler(&self) -> &WechatPayHandler {
        &self.handler
    }

    /// See [`WechatPayHandler::push_fault`].
    pub fn push_fault(&self, fault: WechatFault) {
        self.handler.push_fault(fault);
    }

    /// See [`WechatPayHandler::hits`].
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.handler.hits(path_prefix)
    }

    /// See [`WechatPayHandler::confirm_hits`].
    pub fn confirm_hits(&self, user_card_code: &str) -> usize {
        self.handler.confirm_hits(user_card_code)
    }

    /// See [`WechatPayHandler::hits_confirm_total`].
    pub fn hits_confirm_total(&self) -> usize {
        self.handler.hits_confirm_total()
    }

    /// See [`WechatPayHandler::set_random_faults`].
    pub fn set_random_faults(&self, faults: Option<RandomFaults>) {
        self.handler.set_random_faults(faults);
    }

    /// See [`WechatPayHandler::confirms_applied_for`].
    pub fn confirms_applied_for(&self, user_card_code: &str) -> usize {
        self.handler.confirms_applied_for(user_card_code)
    }

    /// See [`WechatPayHandler::confirms_applied`].
    pub fn confirms_applied(&self) -> usize {
        self.handler.confirms_applied()
    }

    /// See [`WechatPayHandler::user_card`].
    pub fn user_card(&self, code: &str) -> Option<Value> {
        self.handler.user_card(code)
    }

    /// See [`WechatPayHandler::point_balance`].
    pub fn point_balance(&self, code: &str) -> Option<i64> {
        self.handler.point_balance(code)
    }

    /// See [`WechatPayHandler::last_request`].
    pub fn last_request(&self) -> Option<HttpRequest> {
        self.handler.last_request()
    }

    /// See [`WechatPayHandler::brand_state`].
    pub fn brand_state(&self) -> Value {
        self.handler.brand_state()
    }

    /// See [`WechatPayHandler::add_user_card`].
    pub fn add_user_card(&self, code: &str, card_id: &str, openid: &str, brand_id: &str) {
        self.handler.add_user_card(code, card_id, openid, brand_id);
    }

    /// See [`WechatPayHandler::callback`].
    pub fn callback(
        &self,
        event_type: &str,
        original_type: &str,
        plaintext: &Value,
        now_unix: i64,
        tamper: CallbackTamper,
    ) -> Result<HttpRequest> {
        self.handler
            .callback(event_type, original_type, plaintext, now_unix, tamper)
    }

    /// Sends `request` (method, headers, body) to `url`, a full `http://` URL
    /// on a loopback host (e.g. the merchant's `notify_url` stub), and returns
    /// the answer whatever its status; `timeout` bounds connect and read.
    pub fn send(&self, url: &str, request: &HttpRequest, timeout: Duration) -> Result<HttpResponse> {
        cardbridge::http::check_url(url)?;
        if !url.starts_with("http://") {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "callback URL: must be http:// to a loopback host",
            ));
        }
        let transport = Transport::new(&TransportConfig {
            connect_timeout: timeout,
            read_timeout: timeout,
            ..TransportConfig::default()
        })?;
        transport.send(url, &request.method, &request.headers, &request.body)
    }
}

/// A `USER_CARD.CREATE` resource (§3.5) in cleartext, for
/// [`WechatPayEmulator::callback`]: brand [`SAMPLE_BRAND_ID`], `NORMAL`,
/// `PERMANENT`, `phone_number` `13800000000`, user information (name, sex,
/// a custom choice list), state `NOT_EFFECTIVE` (the callback page's set,
/// §3.6). `code` `None` leaves `user_card_code` out (`MERCHANT_ALLOCATE`).
pub fn sample_user_card_create(code: Option<&str>, card_id: &str, openid: &str) -> Value {
    let mut m = Map::new();
    if let Some(c) = code {
        m.insert("user_card_code".into(), c.into());
    }
    m.insert("card_id".into(), card_id.into());
    m.insert("openid".into(), openid.into());
    let rest = json!({
        "card_color": "#63B359",
        "card_picture_url": "https://wxpaylogo.qpic.cn/wxpaylogo/xxxxx/0",
        "brand_id": SAMPLE_BRAND_ID,
        "card_type": "NORMAL",
        "phone_number": "13800000000",
        "level": "普通会员",
        "valid_date_information": {"type": "PERMANENT"},
        "pickup_time": "2021-06-24T16:37:26+08:00",
        "user_information": {
            "common_field_list": [
                {"name": "USER_FORM_FLAG_NAME", "value": "张三"},
                {"name": "USER_FORM_FLAG_SEX", "value": "男"},
            ],
            "custom_field_list": [
                {"name": "喜欢的运动", "user_chosen_values": ["跑步", "游泳"]},
            ],
        },
        "user_card_state": "NOT_EFFECTIVE",
        "create_time": "2021-06-24T16:37:26+08:00",
        "modify_time": "2021-06-24T16:37:26+08:00",
    });
    if let Value::Object(rest) = rest {
        m.extend(rest);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cst_times_and_ids() {
        assert_eq!(rfc3339_cst(1_594_654_058).unwrap(), "2020-07-13T23:27:38+08:00");
        assert!(rfc3339_cst(i64::MAX).is_none());
        let id = notification_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(aead_nonce().len(), 12);
    }

    #[test]
    fn sensitive_walk_names_json_pointers() {
        let mut v = sample_user_card_create(Some("1"), "c", "o");
        let mut seen = Vec::new();
        for_each_sensitive::<()>(&mut v, |p, _| {
            seen.push(p.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "/phone_number",
                "/user_information/common_field_list/0/value",
                "/user_information/common_field_list/1/value",
                "/user_information/custom_field_list/0/user_chosen_values/0",
                "/user_information/custom_field_list/0/user_chosen_values/1",
            ]
        );
    }

    #[test]
    fn query_and_target_parsing() {
        assert_eq!(split_target("/a?b=1"), ("/a", "b=1"));
        assert_eq!(split_target("/a"), ("/a", ""));
        assert_eq!(
            parse_query("card_id=p%2F1&x&openid=o"),
            vec![
                ("card_id".to_string(), "p/1".to_string()),
                ("x".to_string(), String::new()),
                ("openid".to_string(), "o".to_string())
            ]
        );
        assert_eq!(
            confirm_segment("/v3/brand/partner/card-member/user-cards/12%2F3/confirm"),
            Some("12%2F3")
        );
        assert_eq!(
            confirm_segment("/v3/brand/partner/card-member/user-cards//confirm"),
            None
        );
    }
}
