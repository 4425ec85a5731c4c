//! Test support: the loopback Alipay+ platform emulator and the platform
//! request driver, and the loopback WeChat Pay emulator with its callback
//! minting, so C, Python and C# tests can run the whole protocol without a
//! platform account. Not for production use: test keys, plain HTTP on
//! `127.0.0.1` only.

use crate::crypto::aead::ApiV3Key;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::x509::Certificate;
use crate::emulator::{
    AlipayPlatformEmulator, CallbackTamper, EmulatorConfig, Fault, PlatformCertificate, PlatformDriver, Tamper,
    WechatEmulatorConfig, WechatFault, WechatPayEmulator, sample_registration, sample_user_card_create,
};
use crate::error::{Error, ErrorKind, Result};
use crate::ffi::bytes::{cardbridge_bytes, cardbridge_http_request, cardbridge_http_response};
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, OwnershipBox, free_arc, free_box};
use crate::ffi::keys::cardbridge_public_key;
use crate::json::{Member, Shape};
use crate::validate::{Object, Path, check_range};
use serde::Deserialize;
use serde_json::Value;
use std::ffi::c_char;
use std::time::Duration;

/// `tamper` value of `cardbridge_platform_driver_request`: correctly signed.
pub const CARDBRIDGE_TAMPER_NONE: u32 = 0;
/// `tamper` value: one letter or digit of the body changed after signing.
pub const CARDBRIDGE_TAMPER_BODY_BYTE: u32 = 1;
/// `tamper` value: signed with a freshly generated key (slow: generates an RSA key).
pub const CARDBRIDGE_TAMPER_WRONG_KEY: u32 = 2;
/// `tamper` value: no `Signature` header.
pub const CARDBRIDGE_TAMPER_UNSIGNED: u32 = 3;
/// `tamper` value: a `Signature` header without its `signature=` key.
pub const CARDBRIDGE_TAMPER_MALFORMED_HEADER: u32 = 4;
/// `tamper` value: signed for, and carrying, another `Client-Id`.
pub const CARDBRIDGE_TAMPER_WRONG_CLIENT_ID: u32 = 5;

/// Test support: a loopback emulator of the Alipay+ platform's `issueCard`
/// endpoint (plain HTTP on `127.0.0.1`, a free port). It verifies the
/// merchant's signature, issues cards idempotently by requestId, signs its
/// answers with the test platform key and can inject faults.
///
/// Functions taking a `const cardbridge_emulator *` may run concurrently.
pub struct cardbridge_emulator {
    _private: [u8; 0],
}

impl Castable for cardbridge_emulator {
    type Ownership = OwnershipBox;
    type RustType = AlipayPlatformEmulator;
}

/// Test support: builds platform → merchant requests the way the platform
/// does, signed with the (test) platform key or deliberately spoiled.
/// Immutable and shareable between threads.
pub struct cardbridge_platform_driver {
    _private: [u8; 0],
}

impl Castable for cardbridge_platform_driver {
    type Ownership = OwnershipArc;
    type RustType = PlatformDriver;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmulatorConfig {
    platform_private_key: String,
    merchant_public_key: String,
    client_id: String,
    path_prefix: Option<String>,
    key_version: Option<String>,
}

/// Prefixes a key error with the config member it came from.
fn key_in(field: &str, e: Error) -> Error {
    Error::new(e.kind(), format!("emulator.{field}: {}", e.message())).with_field(format!("emulator.{field}"))
}

static EMULATOR_CONFIG_SHAPE: [Member; 5] = [
    Member::required("platform_private_key", Shape::Str),
    Member::required("merchant_public_key", Shape::Str),
    Member::required("client_id", Shape::Str),
    Member::optional("path_prefix", Shape::Str),
    Member::optional("key_version", Shape::Str),
];

fn emulator_config(json: &str) -> Result<EmulatorConfig> {
    let raw: RawEmulatorConfig =
        crate::json::parse_config(json.as_bytes(), "emulator", &Shape::Object(&EMULATOR_CONFIG_SHAPE))?;
    let private = PrivateKey::from_pem(&raw.platform_private_key).map_err(|e| key_in("platform_private_key", e))?;
    let public = PublicKey::from_pem(&raw.merchant_public_key).map_err(|e| key_in("merchant_public_key", e))?;
    let mut config = EmulatorConfig::new(private, public, raw.client_id);
    if let Some(prefix) = raw.path_prefix {
        config.path_prefix = prefix;
    }
    if let Some(version) = raw.key_version {
        config.key_version = version;
    }
    Ok(config)
}

/// Test support: starts the emulator on `127.0.0.1` on a free port.
///
/// `config_json` (UTF-8, only read during the call):
/// `{"platform_private_key":"<PEM>","merchant_public_key":"<PEM>","client_id":"...",
/// "path_prefix":"/api/open","key_version":"1"}`; the last two are optional
/// (defaults shown). Point the integration's `base_url` at
/// `cardbridge_emulator_base_url` and use the same `path_prefix`.
///
/// On success `*emulator_out` receives the running emulator. Ownership: the
/// caller owns `*emulator_out` and must release it with
/// `cardbridge_emulator_free`, which stops it.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (bad JSON, missing or unknown member,
/// empty `client_id` or `key_version`, bad `path_prefix`, no free port),
/// `CARDBRIDGE_RESULT_INVALID_KEY`. On failure `*emulator_out` is unchanged
/// and, if `error_out` is not NULL, `*error_out` receives an error the caller
/// must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_alipayplus_start(
    config_json: *const c_char,
    config_json_len: usize,
    emulator_out: *mut *mut cardbridge_emulator,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator_out = try_out!(emulator_out);
        let config_json = try_str!(config_json, config_json_len);
        let emulator = AlipayPlatformEmulator::start(emulator_config(config_json)?)?;
        emulator_out.write_box(emulator);
        Ok(())
    })
}

/// Test support: writes the emulator's base URL, `http://127.0.0.1:<port>`
/// (no path), into `*url_out` as text followed by a NUL.
///
/// Ownership: the caller owns `*url_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`;
/// `error_out` as for `cardbridge_emulator_alipayplus_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_base_url(
    emulator: *const cardbridge_emulator,
    url_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let url_out = try_out!(url_out);
        url_out.write_bytes(emulator.base_url().into_bytes());
        Ok(())
    })
}

/// Fault names accepted by `cardbridge_emulator_push_fault`.
const FAULT_NAMES: [&str; 9] = [
    "unknown",
    "fail",
    "traffic_limit",
    "http_status",
    "delay",
    "drop",
    "unsigned",
    "bad_signature",
    "no_card_no",
];

/// Longest accepted `delay_ms`, so a typo cannot hang a test run.
const MAX_DELAY_MS: u64 = 600_000;

/// A non-negative integer member, or a validation error naming it.
fn integer(o: &Object<'_>, key: &str, min: u64, max: u64) -> Result<u64> {
    let path = o.field(key);
    let n = o
        .required(key)?
        .as_u64()
        .ok_or_else(|| path.error("must be a non-negative integer", None))?;
    check_range(&path, i128::from(n), i128::from(min), i128::from(max))?;
    Ok(n)
}

fn parse_fault(json: &str) -> Result<Fault> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        Error::new(ErrorKind::InvalidJson, format!("fault_json: not valid JSON ({e})")).with_field("fault_json")
    })?;
    let o = Object::new(&value, Path::root("fault_json"))?;
    let name = o.required_str("fault", None)?;
    let fault = match name {
        "unknown" => Fault::Unknown,
        "fail" => Fault::Fail {
            code: o.optional_str("code", Some(64))?.unwrap_or("PROCESS_FAIL").to_string(),
            message: o
                .optional_str("message", Some(256))?
                .unwrap_or("emulated failure")
                .to_string(),
        },
        "traffic_limit" => Fault::TrafficLimit,
        // The range check keeps the value within u16.
        "http_status" => Fault::HttpStatus(integer(&o, "status", 100, 599)? as u16),
        "delay" => Fault::DelayThenAnswer(Duration::from_millis(integer(&o, "delay_ms", 0, MAX_DELAY_MS)?)),
        "drop" => Fault::DropAfterProcessing,
        "unsigned" => Fault::Unsigned,
        "bad_signature" => Fault::BadSignature,
        "no_card_no" => Fault::SuccessWithoutCardNo,
        _ => {
            let list = FAULT_NAMES.join(", ");
            return Err(o.field("fault").error(format!("must be one of {list}"), Some(list)));
        }
    };
    let members: &[&str] = match name {
        "fail" => &["fault", "code", "message"],
        "http_status" => &["fault", "status"],
        "delay" => &["fault", "delay_ms"],
        _ => &["fault"],
    };
    check_members(&value, &o, name, members)?;
    Ok(fault)
}

/// Refuses a member of `value` that a `name` fault does not take.
fn check_members(value: &Value, o: &Object<'_>, name: &str, members: &[&str]) -> Result<()> {
    if let Some(extra) = value
        .as_object()
        .and_then(|m| m.keys().find(|k| !members.contains(&k.as_str())))
    {
        return Err(o
            .field(extra)
            .error(format!("is not a member of a \"{name}\" fault"), None));
    }
    Ok(())
}

/// Test support: queues a fault for a later `issueCard` request (first in,
/// first out; each fault is used up by exactly one request).
///
/// `fault_json` (UTF-8, only read during the call) is an object whose
/// `"fault"` is one of: `"unknown"` (answer `U`), `"fail"` (answer `F` with
/// optional `"code"`, default `PROCESS_FAIL`, and `"message"`),
/// `"traffic_limit"` (`F REQUEST_TRAFFIC_EXCEED_LIMIT`), `"http_status"`
/// (plain-text answer with `"status"`, 100–599), `"delay"` (process, then
/// answer after `"delay_ms"`, at most 600000), `"drop"` (process, then close
/// without answering), `"unsigned"` / `"bad_signature"` (process, then answer
/// without / with a wrong signature), `"no_card_no"` (`S` without `cardNo`).
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON`, `CARDBRIDGE_RESULT_VALIDATION` (field
/// path such as `fault_json.fault` or `fault_json.status`, and the limit);
/// nothing is queued then. `error_out` as for
/// `cardbridge_emulator_alipayplus_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_push_fault(
    emulator: *const cardbridge_emulator,
    fault_json: *const c_char,
    fault_json_len: usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let fault_json = try_str!(fault_json, fault_json_len);
        emulator.push_fault(parse_fault(fault_json)?);
        Ok(())
    })
}

/// Test support: how many `issueCard` requests carried this requestId
/// (faulted and refused ones included). 0 when a pointer is NULL or the text
/// is not UTF-8. `request_id` is only read during the call.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_hits(
    emulator: *const cardbridge_emulator,
    request_id: *const c_char,
    request_id_len: usize,
) -> usize {
    ffi_boundary!({
        let emulator = try_ref!(emulator);
        let request_id = try_str!(request_id, request_id_len);
        emulator.hits_for(request_id)
    })
}

/// Test support: every `issueCard` request received, including refused and
/// faulted ones (0 when `emulator` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_issue_card_hits(emulator: *const cardbridge_emulator) -> usize {
    ffi_boundary!({ try_ref!(emulator).issue_card_hits() })
}

/// Test support: distinct requestIds that got a card (0 when `emulator` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_cards_issued(emulator: *const cardbridge_emulator) -> usize {
    ffi_boundary!({ try_ref!(emulator).cards_issued() })
}

/// Test support: stops the emulator (joining its threads) and releases it.
/// NULL is a no-op.
///
/// Ownership: takes `emulator`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_free(emulator: *mut cardbridge_emulator) {
    ffi_boundary!({
        // SAFETY: `emulator` is NULL or an emulator the caller owns and gives up.
        unsafe { free_box(emulator) }
    })
}

/// Test support: a driver signing platform → merchant requests with
/// `platform_private_key_pem` for `client_id`, emitting
/// `keyVersion=<key_version>` (an empty `key_version` means `1`).
///
/// All three texts are UTF-8, pointer plus length, only read during the call.
/// On success `*driver_out` receives the driver. Ownership: the caller owns
/// `*driver_out` and must release it with `cardbridge_platform_driver_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_KEY`, `CARDBRIDGE_RESULT_INVALID_CONFIG` (empty
/// `client_id`). On failure `*driver_out` is unchanged; `error_out` as for
/// `cardbridge_emulator_alipayplus_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_platform_driver_new(
    platform_private_key_pem: *const c_char,
    platform_private_key_pem_len: usize,
    client_id: *const c_char,
    client_id_len: usize,
    key_version: *const c_char,
    key_version_len: usize,
    driver_out: *mut *const cardbridge_platform_driver,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let driver_out = try_out!(driver_out);
        let pem = try_str!(platform_private_key_pem, platform_private_key_pem_len);
        let client_id = try_str!(client_id, client_id_len);
        let key_version = try_str!(key_version, key_version_len);
        if client_id.is_empty() {
            return Err(Error::config("client_id: must not be empty").with_field("client_id"));
        }
        let key = PrivateKey::from_pem(pem)?;
        let key_version = if key_version.is_empty() { "1" } else { key_version };
        driver_out.write_arc(PlatformDriver::new(key, client_id, key_version));
        Ok(())
    })
}

/// Test support: releases the caller's reference to a driver. NULL is a no-op.
///
/// Ownership: takes `driver`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_platform_driver_free(driver: *const cardbridge_platform_driver) {
    ffi_boundary!({
        // SAFETY: `driver` is NULL or a driver reference the caller owns and gives up.
        unsafe { free_arc(driver) }
    })
}

fn tamper_from(code: u32) -> Result<Tamper> {
    Ok(match code {
        CARDBRIDGE_TAMPER_NONE => Tamper::None,
        CARDBRIDGE_TAMPER_BODY_BYTE => Tamper::BodyByte,
        CARDBRIDGE_TAMPER_WRONG_KEY => Tamper::WrongKey,
        CARDBRIDGE_TAMPER_UNSIGNED => Tamper::Unsigned,
        CARDBRIDGE_TAMPER_MALFORMED_HEADER => Tamper::MalformedHeader,
        CARDBRIDGE_TAMPER_WRONG_CLIENT_ID => Tamper::WrongClientId,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("tamper: {other} is not a CARDBRIDGE_TAMPER_* value (0 to 5)"),
            )
            .with_field("tamper"));
        }
    })
}

/// Test support: builds a platform → merchant `POST` to `target` (the
/// merchant-side request-target, e.g.
/// `/v2/pds/memberships/notifyCardRegistration`) carrying `body`, with the
/// headers `Content-Type`, `Client-Id`, `Request-Time` (= `request_time`, e.g.
/// `2026-11-23T10:00:00.000+00:00`) and `Signature`, spoiled as `tamper`
/// says (`CARDBRIDGE_TAMPER_*`).
///
/// `target` and `request_time` are UTF-8 and `body` raw bytes, each pointer
/// plus length, only read during the call. On success `*request_out`
/// receives the request; pass its parts to `cardbridge_alipayplus_begin`.
/// Ownership: the caller owns `*request_out` and must release it with
/// `cardbridge_http_request_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER` (unknown `tamper`, field `tamper`).
/// On failure `*request_out` is unchanged; `error_out` as for
/// `cardbridge_emulator_alipayplus_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_platform_driver_request(
    driver: *const cardbridge_platform_driver,
    target: *const c_char,
    target_len: usize,
    body: *const u8,
    body_len: usize,
    request_time: *const c_char,
    request_time_len: usize,
    tamper: u32,
    request_out: *mut *mut cardbridge_http_request,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let driver = try_ref!(driver);
        let request_out = try_out!(request_out);
        let target = try_str!(target, target_len);
        let body = try_bytes!(body, body_len);
        let request_time = try_str!(request_time, request_time_len);
        let tamper = tamper_from(tamper)?;
        let request = driver.request(target, body, request_time, tamper)?;
        request_out.write(cardbridge_http_request::into_raw(request));
        Ok(())
    })
}

/// Test support: whether `response` is the merchant's answer to `request`
/// signed with `merchant_key` as `alipayplus-mpp.md` §4.8 requires
/// (`Signature` and `Response-Time` present, matching `Client-Id`, signature
/// over the request's method and target, the response time and the exact
/// body). False when a pointer is NULL.
///
/// Borrowed: all three objects are only read during the call.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_platform_driver_verify_response(
    merchant_key: *const cardbridge_public_key,
    request: *const cardbridge_http_request,
    response: *const cardbridge_http_response,
) -> bool {
    ffi_boundary!({
        let merchant_key = try_ref!(merchant_key);
        let request = try_ref!(request);
        let response = try_ref!(response);
        PlatformDriver::verify_response(merchant_key, request, response)
    })
}

/// Test support: a valid `notifyCardRegistration` body for `request_id`
/// (modelled on the official sample; it holds personal-looking test data).
///
/// `request_id` is UTF-8, only read during the call. On success `*body_out`
/// receives compact JSON followed by a NUL. Ownership: the caller owns
/// `*body_out` and must release it with `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`.
/// On failure `*body_out` is unchanged; `error_out` as for
/// `cardbridge_emulator_alipayplus_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_sample_registration(
    request_id: *const c_char,
    request_id_len: usize,
    body_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let body_out = try_out!(body_out);
        let request_id = try_str!(request_id, request_id_len);
        body_out.write_bytes(sample_registration(request_id));
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// WeChat Pay
// ---------------------------------------------------------------------------

/// `tamper` value of `cardbridge_emulator_wechatpay_callback`: correctly signed.
pub const CARDBRIDGE_CALLBACK_TAMPER_NONE: u32 = 0;
/// `tamper` value: `Wechatpay-Signature` = `WECHATPAY/SIGNTEST/` + the valid
/// signature (a signature probe; the merchant must refuse it).
pub const CARDBRIDGE_CALLBACK_TAMPER_SIGNTEST_PROBE: u32 = 1;
/// `tamper` value: correctly signed, with a `Wechatpay-Timestamp` ten minutes
/// before `now_unix`.
pub const CARDBRIDGE_CALLBACK_TAMPER_STALE_TIMESTAMP: u32 = 2;
/// `tamper` value: one bit of the sealed resource flipped before signing (the
/// signature verifies, decryption fails).
pub const CARDBRIDGE_CALLBACK_TAMPER_BAD_TAG: u32 = 3;
/// `tamper` value: `Wechatpay-Serial` names a key the merchant does not have.
pub const CARDBRIDGE_CALLBACK_TAMPER_WRONG_SERIAL: u32 = 4;
/// `tamper` value: one letter or digit of the body changed after signing.
pub const CARDBRIDGE_CALLBACK_TAMPER_BODY_BYTE: u32 = 5;
/// `tamper` value: no `Wechatpay-Signature` header.
pub const CARDBRIDGE_CALLBACK_TAMPER_MISSING_HEADER: u32 = 6;

/// Test support: a loopback emulator of the WeChat Pay card-member APIs
/// (plain HTTP on `127.0.0.1`, a free port). It checks the merchant's
/// `Authorization` and `Wechatpay-Serial` like the real service, decrypts
/// sensitive request fields, confirms / reads / updates user cards, syncs
/// points, signs its answers with the (test) WeChat Pay key, injects faults
/// and mints signed card-event callbacks.
///
/// Functions taking a `const cardbridge_wechatpay_emulator *` may run
/// concurrently.
pub struct cardbridge_wechatpay_emulator {
    _private: [u8; 0],
}

impl Castable for cardbridge_wechatpay_emulator {
    type Ownership = OwnershipBox;
    type RustType = WechatPayEmulator;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWechatEmulatorConfig {
    wechatpay_private_key: String,
    public_key_id: String,
    merchant_public_key: String,
    mchid: String,
    merchant_serial_no: String,
    api_v3_key: String,
    platform_certificate: Option<RawPlatformCertificate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatformCertificate {
    pem: String,
    private_key: String,
}

static PLATFORM_CERTIFICATE_SHAPE: [Member; 2] = [
    Member::required("pem", Shape::Str),
    Member::required("private_key", Shape::Str),
];

static WECHAT_EMULATOR_CONFIG_SHAPE: [Member; 7] = [
    Member::required("wechatpay_private_key", Shape::Str),
    Member::required("public_key_id", Shape::Str),
    Member::required("merchant_public_key", Shape::Str),
    Member::required("mchid", Shape::Str),
    Member::required("merchant_serial_no", Shape::Str),
    Member::required("api_v3_key", Shape::Str),
    Member::optional("platform_certificate", Shape::Object(&PLATFORM_CERTIFICATE_SHAPE)),
];

fn wechat_emulator_config(json: &str) -> Result<WechatEmulatorConfig> {
    let raw: RawWechatEmulatorConfig = crate::json::parse_config(
        json.as_bytes(),
        "emulator",
        &Shape::Object(&WECHAT_EMULATOR_CONFIG_SHAPE),
    )?;
    let wechatpay_private_key =
        PrivateKey::from_pem(&raw.wechatpay_private_key).map_err(|e| key_in("wechatpay_private_key", e))?;
    let merchant_public_key =
        PublicKey::from_pem(&raw.merchant_public_key).map_err(|e| key_in("merchant_public_key", e))?;
    let api_v3_key = ApiV3Key::new(raw.api_v3_key.as_bytes()).map_err(|e| key_in("api_v3_key", e))?;
    let platform_certificate = match raw.platform_certificate {
        None => None,
        Some(pc) => {
            // The serial is the certificate's own, so a C host cannot get it wrong.
            let cert = Certificate::from_pem(&pc.pem).map_err(|e| key_in("platform_certificate.pem", e))?;
            let private_key =
                PrivateKey::from_pem(&pc.private_key).map_err(|e| key_in("platform_certificate.private_key", e))?;
            Some(PlatformCertificate {
                serial: cert.serial().to_string(),
                pem: pc.pem,
                private_key,
            })
        }
    };
    Ok(WechatEmulatorConfig {
        wechatpay_private_key,
        public_key_id: raw.public_key_id,
        merchant_public_key,
        mchid: raw.mchid,
        merchant_serial_no: raw.merchant_serial_no,
        api_v3_key,
        platform_certificate,
    })
}

/// Test support: starts the WeChat Pay emulator on `127.0.0.1` on a free port.
///
/// `config_json` (UTF-8, only read during the call):
/// `{"wechatpay_private_key":"<PEM>","public_key_id":"PUB_KEY_ID_<digits>",
/// "merchant_public_key":"<PEM>","mchid":"<digits>","merchant_serial_no":"<hex>",
/// "api_v3_key":"<32 ASCII bytes>","platform_certificate":{"pem":"<PEM>","private_key":"<PEM>"}}`.
/// `wechatpay_private_key` signs answers and callbacks (its public half is the
/// integration's `wechatpay_public_key`, `public_key_id` its ID);
/// `merchant_public_key`, `mchid` and `merchant_serial_no` are what the
/// merchant's requests must be signed with. `platform_certificate` is
/// optional: with it the emulator plays a merchant in certificate mode
/// (`/v3/certificates`, callbacks signed with the certificate key; the serial
/// is read from the certificate). Point the integration's `base_url` at
/// `cardbridge_emulator_wechatpay_base_url`.
///
/// On success `*emulator_out` receives the running emulator. Ownership: the
/// caller owns `*emulator_out` and must release it with
/// `cardbridge_emulator_wechatpay_free`, which stops it.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (bad JSON, missing or unknown member,
/// an `api_v3_key` that is not 32 bytes, a malformed `public_key_id`, `mchid`
/// or `merchant_serial_no`, a certificate that does not match its private
/// key, no free port; field path such as `emulator.api_v3_key`),
/// `CARDBRIDGE_RESULT_INVALID_KEY` (a PEM key or certificate that does not
/// parse). On failure `*emulator_out` is unchanged and, if `error_out` is not
/// NULL, `*error_out` receives an error the caller must release with
/// `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_start(
    config_json: *const c_char,
    config_json_len: usize,
    emulator_out: *mut *mut cardbridge_wechatpay_emulator,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator_out = try_out!(emulator_out);
        let config_json = try_str!(config_json, config_json_len);
        let emulator = WechatPayEmulator::start(wechat_emulator_config(config_json)?)?;
        emulator_out.write_box(emulator);
        Ok(())
    })
}

/// Test support: writes the WeChat Pay emulator's base URL,
/// `http://127.0.0.1:<port>` (no path; API paths start with `/v3/`), into
/// `*url_out` as text followed by a NUL.
///
/// Ownership: the caller owns `*url_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`;
/// `error_out` as for `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_base_url(
    emulator: *const cardbridge_wechatpay_emulator,
    url_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let url_out = try_out!(url_out);
        url_out.write_bytes(emulator.base_url().into_bytes());
        Ok(())
    })
}

/// Fault names accepted by `cardbridge_emulator_wechatpay_push_fault`.
const WECHAT_FAULT_NAMES: [&str; 8] = [
    "status",
    "accepted",
    "delay",
    "drop",
    "unsigned",
    "bad_signature",
    "stale_timestamp",
    "signtest_probe",
];

fn parse_wechat_fault(json: &str) -> Result<WechatFault> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        Error::new(ErrorKind::InvalidJson, format!("fault_json: not valid JSON ({e})")).with_field("fault_json")
    })?;
    let o = Object::new(&value, Path::root("fault_json"))?;
    let name = o.required_str("fault", None)?;
    let fault = match name {
        "status" => WechatFault::Status {
            // The range check keeps the value within u16.
            status: integer(&o, "status", 100, 599)? as u16,
            code: o.optional_str("code", Some(64))?.unwrap_or("SYSTEM_ERROR").to_string(),
            message: o
                .optional_str("message", Some(256))?
                .unwrap_or("emulated failure")
                .to_string(),
        },
        "accepted" => WechatFault::Accepted202,
        "delay" => WechatFault::DelayThenAnswer(Duration::from_millis(integer(&o, "delay_ms", 0, MAX_DELAY_MS)?)),
        "drop" => WechatFault::DropAfterProcessing,
        "unsigned" => WechatFault::Unsigned,
        "bad_signature" => WechatFault::BadSignature,
        "stale_timestamp" => WechatFault::StaleTimestamp,
        "signtest_probe" => WechatFault::SignTestProbe,
        _ => {
            let list = WECHAT_FAULT_NAMES.join(", ");
            return Err(o.field("fault").error(format!("must be one of {list}"), Some(list)));
        }
    };
    let members: &[&str] = match name {
        "status" => &["fault", "status", "code", "message"],
        "delay" => &["fault", "delay_ms"],
        _ => &["fault"],
    };
    check_members(&value, &o, name, members)?;
    Ok(fault)
}

/// Test support: queues a fault for a later request to the WeChat Pay
/// emulator (first in, first out; each fault is used up by exactly one
/// request, whatever its path).
///
/// `fault_json` (UTF-8, only read during the call) is an object whose
/// `"fault"` is one of: `"status"` (answer `"status"`, 100–599, with
/// `{"code","message"}`, defaults `SYSTEM_ERROR` / `emulated failure`,
/// unsigned, not processed), `"accepted"` (`202` with an empty body, not
/// processed), `"delay"` (process, then answer after `"delay_ms"`, at most
/// 600000), `"drop"` (process, then close without answering), `"unsigned"` /
/// `"bad_signature"` / `"stale_timestamp"` / `"signtest_probe"` (process,
/// then answer without a signature / with one that does not verify / with a
/// `Wechatpay-Timestamp` ten minutes old / with a `WECHATPAY/SIGNTEST/` probe
/// signature).
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON`, `CARDBRIDGE_RESULT_VALIDATION` (field
/// path such as `fault_json.fault` or `fault_json.status`, and the limit);
/// nothing is queued then. `error_out` as for
/// `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_push_fault(
    emulator: *const cardbridge_wechatpay_emulator,
    fault_json: *const c_char,
    fault_json_len: usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let fault_json = try_str!(fault_json, fault_json_len);
        emulator.push_fault(parse_wechat_fault(fault_json)?);
        Ok(())
    })
}

/// Test support: seeds a user card, as WeChat holds it after the user opened
/// it (`USER_CARD.CREATE`): `card_type` `NORMAL`, `valid_date_information`
/// `PERMANENT`, `pickup_time` now, `user_card_state` `UNACTIVATED`, not
/// confirmed. Replaces a card with the same `user_card_code`.
///
/// All four texts are UTF-8, pointer plus length, only read during the call.
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`;
/// `error_out` as for `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_add_user_card(
    emulator: *const cardbridge_wechatpay_emulator,
    user_card_code: *const c_char,
    user_card_code_len: usize,
    card_id: *const c_char,
    card_id_len: usize,
    openid: *const c_char,
    openid_len: usize,
    brand_id: *const c_char,
    brand_id_len: usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let user_card_code = try_str!(user_card_code, user_card_code_len);
        let card_id = try_str!(card_id, card_id_len);
        let openid = try_str!(openid, openid_len);
        let brand_id = try_str!(brand_id, brand_id_len);
        emulator.add_user_card(user_card_code, card_id, openid, brand_id);
        Ok(())
    })
}

/// Test support: how many `confirm` requests the WeChat Pay emulator received
/// for this (percent-decoded) `user_card_code`, refused and faulted ones
/// included. 0 when a pointer is NULL or the text is not UTF-8.
/// `user_card_code` is only read during the call.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_confirm_hits(
    emulator: *const cardbridge_wechatpay_emulator,
    user_card_code: *const c_char,
    user_card_code_len: usize,
) -> usize {
    ffi_boundary!({
        let emulator = try_ref!(emulator);
        let user_card_code = try_str!(user_card_code, user_card_code_len);
        emulator.confirm_hits(user_card_code)
    })
}

/// Test support: distinct user cards a `confirm` was applied to (0 when
/// `emulator` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_confirms_applied(
    emulator: *const cardbridge_wechatpay_emulator,
) -> usize {
    ffi_boundary!({ try_ref!(emulator).confirms_applied() })
}

/// Test support: requests the WeChat Pay emulator received whose path
/// (without the query) starts with `path_prefix` (e.g. `/v3` for all, or
/// `/v3/certificates`), refused and faulted ones included. 0 when a pointer
/// is NULL or the text is not UTF-8. `path_prefix` is only read during the call.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_hits(
    emulator: *const cardbridge_wechatpay_emulator,
    path_prefix: *const c_char,
    path_prefix_len: usize,
) -> usize {
    ffi_boundary!({
        let emulator = try_ref!(emulator);
        let path_prefix = try_str!(path_prefix, path_prefix_len);
        emulator.hits(path_prefix)
    })
}

/// Test support: the WeChat Pay emulator's view of a user card as JSON: the
/// user-card members with sensitive fields in cleartext; `user_card_state` is
/// `UNACTIVATED` until a confirm makes it `EFFECTIVE` (or `INVALID`).
///
/// `user_card_code` is UTF-8, only read during the call. On success
/// `*json_out` receives compact JSON followed by a NUL. Ownership: the caller
/// owns `*json_out` and must release it with `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER` (no card with this code; field
/// `user_card_code`). On failure `*json_out` is unchanged; `error_out` as for
/// `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_user_card(
    emulator: *const cardbridge_wechatpay_emulator,
    user_card_code: *const c_char,
    user_card_code_len: usize,
    json_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let json_out = try_out!(json_out);
        let user_card_code = try_str!(user_card_code, user_card_code_len);
        let card = emulator.user_card(user_card_code).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                "user_card_code: the emulator holds no user card with this code",
            )
            .with_field("user_card_code")
        })?;
        json_out.write_bytes(serde_json::to_vec(&card).map_err(|e| Error::internal("user card", e))?);
        Ok(())
    })
}

fn callback_tamper_from(code: u32) -> Result<CallbackTamper> {
    Ok(match code {
        CARDBRIDGE_CALLBACK_TAMPER_NONE => CallbackTamper::None,
        CARDBRIDGE_CALLBACK_TAMPER_SIGNTEST_PROBE => CallbackTamper::SignTestProbe,
        CARDBRIDGE_CALLBACK_TAMPER_STALE_TIMESTAMP => CallbackTamper::StaleTimestamp,
        CARDBRIDGE_CALLBACK_TAMPER_BAD_TAG => CallbackTamper::BadTag,
        CARDBRIDGE_CALLBACK_TAMPER_WRONG_SERIAL => CallbackTamper::WrongSerial,
        CARDBRIDGE_CALLBACK_TAMPER_BODY_BYTE => CallbackTamper::BodyByte,
        CARDBRIDGE_CALLBACK_TAMPER_MISSING_HEADER => CallbackTamper::MissingHeader,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("tamper: {other} is not a CARDBRIDGE_CALLBACK_TAMPER_* value (0 to 6)"),
            )
            .with_field("tamper"));
        }
    })
}

/// Test support: a signed WeChat Pay card-event callback for the merchant's
/// `notify_url`, as WeChat Pay sends it.
///
/// `event_type` (e.g. `BRAND_MEMBER_CARD_SP.USER_CARD.CREATE`) and
/// `original_type` (e.g. `user_card`; the AEAD associated data, left out
/// when empty) are UTF-8; `plaintext_json` is the decrypted resource (e.g.
/// from `cardbridge_emulator_wechatpay_sample_user_card_create`) with its
/// sensitive fields (`phone_number`, `common_field_list[].value`,
/// `custom_field_list[].user_chosen_values[]`) in cleartext: they are
/// RSA-OAEP-encrypted to the merchant key, the resource is sealed with the
/// APIv3 key, and the envelope is signed at `now_unix` (Unix seconds) and
/// spoiled as `tamper` says (`CARDBRIDGE_CALLBACK_TAMPER_*`). All inputs are
/// only read during the call.
///
/// On success `*request_out` receives the `POST` (target `/`: the signature
/// does not cover the URL); pass its parts to
/// `cardbridge_wechatpay_callback_begin`. Ownership: the caller owns
/// `*request_out` and must release it with `cardbridge_http_request_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON` (field `plaintext_json`),
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER` (unknown `tamper`, a non-string
/// sensitive field, `now_unix` out of range), `CARDBRIDGE_RESULT_PLAINTEXT_TOO_LONG`
/// (a sensitive value too long for RSA-OAEP). On failure `*request_out` is
/// unchanged; `error_out` as for `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_callback(
    emulator: *const cardbridge_wechatpay_emulator,
    event_type: *const c_char,
    event_type_len: usize,
    original_type: *const c_char,
    original_type_len: usize,
    plaintext_json: *const c_char,
    plaintext_json_len: usize,
    now_unix: i64,
    tamper: u32,
    request_out: *mut *mut cardbridge_http_request,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let emulator = try_ref!(emulator);
        let request_out = try_out!(request_out);
        let event_type = try_str!(event_type, event_type_len);
        let original_type = try_str!(original_type, original_type_len);
        let plaintext_json = try_str!(plaintext_json, plaintext_json_len);
        let tamper = callback_tamper_from(tamper)?;
        let plaintext: Value = serde_json::from_str(plaintext_json).map_err(|e| {
            Error::new(ErrorKind::InvalidJson, format!("plaintext_json: not valid JSON ({e})"))
                .with_field("plaintext_json")
        })?;
        let request = emulator.callback(event_type, original_type, &plaintext, now_unix, tamper)?;
        request_out.write(cardbridge_http_request::into_raw(request));
        Ok(())
    })
}

/// Test support: a `USER_CARD.CREATE` callback resource in cleartext, for
/// `cardbridge_emulator_wechatpay_callback`: brand `1004`, `NORMAL`,
/// `PERMANENT`, `phone_number` `13800000000`, user information (name, sex, a
/// custom choice list), state `NOT_EFFECTIVE`. An empty `user_card_code`
/// leaves `user_card_code` out (the merchant allocates the code). It holds
/// personal-looking test data.
///
/// The three texts are UTF-8, pointer plus length, only read during the call
/// (`user_card_code` may be NULL when its length is 0). On success
/// `*json_out` receives compact JSON followed by a NUL. Ownership: the caller
/// owns `*json_out` and must release it with `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`.
/// On failure `*json_out` is unchanged; `error_out` as for
/// `cardbridge_emulator_wechatpay_start`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_sample_user_card_create(
    user_card_code: *const c_char,
    user_card_code_len: usize,
    card_id: *const c_char,
    card_id_len: usize,
    openid: *const c_char,
    openid_len: usize,
    json_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let json_out = try_out!(json_out);
        let user_card_code = try_str!(user_card_code, user_card_code_len);
        let card_id = try_str!(card_id, card_id_len);
        let openid = try_str!(openid, openid_len);
        let code = (!user_card_code.is_empty()).then_some(user_card_code);
        let sample = sample_user_card_create(code, card_id, openid);
        json_out.write_bytes(serde_json::to_vec(&sample).map_err(|e| Error::internal("sample", e))?);
        Ok(())
    })
}

/// Test support: stops the WeChat Pay emulator (joining its threads) and
/// releases it. NULL is a no-op.
///
/// Ownership: takes `emulator`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_emulator_wechatpay_free(emulator: *mut cardbridge_wechatpay_emulator) {
    ffi_boundary!({
        // SAFETY: `emulator` is NULL or an emulator the caller owns and gives up.
        unsafe { free_box(emulator) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_handle_is_send_and_sync_and_emulator_is_send() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<<cardbridge_platform_driver as Castable>::RustType>();
        assert_send_sync::<<cardbridge_emulator as Castable>::RustType>();
    }

    #[test]
    fn faults_parse_with_their_parameters() {
        assert_eq!(parse_fault(r#"{"fault":"unknown"}"#).unwrap(), Fault::Unknown);
        assert_eq!(
            parse_fault(r#"{"fault":"fail","code":"PROCESS_FAIL","message":"no"}"#).unwrap(),
            Fault::Fail {
                code: "PROCESS_FAIL".into(),
                message: "no".into()
            }
        );
        assert_eq!(
            parse_fault(r#"{"fault":"http_status","status":503}"#).unwrap(),
            Fault::HttpStatus(503)
        );
        assert_eq!(
            parse_fault(r#"{"fault":"delay","delay_ms":250}"#).unwrap(),
            Fault::DelayThenAnswer(Duration::from_millis(250))
        );
        assert_eq!(
            parse_fault(r#"{"fault":"no_card_no"}"#).unwrap(),
            Fault::SuccessWithoutCardNo
        );
    }

    #[test]
    fn bad_faults_name_the_field() {
        let e = parse_fault(r#"{"fault":"explode"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.field(), Some("fault_json.fault"));
        assert_eq!(e.limit(), Some(FAULT_NAMES.join(", ").as_str()));
        let e = parse_fault(r#"{"fault":"http_status","status":1000}"#).unwrap_err();
        assert_eq!((e.field(), e.limit()), (Some("fault_json.status"), Some("599")));
        let e = parse_fault(r#"{"fault":"http_status"}"#).unwrap_err();
        assert_eq!(e.field(), Some("fault_json.status"));
        let e = parse_fault(r#"{"fault":"unknown","delay_ms":5}"#).unwrap_err();
        assert_eq!(e.field(), Some("fault_json.delay_ms"));
        let e = parse_fault("[1]").unwrap_err();
        assert_eq!(e.field(), Some("fault_json"));
        assert_eq!(parse_fault("{").unwrap_err().kind(), ErrorKind::InvalidJson);
    }

    #[test]
    fn tamper_numbers_map_and_unknown_is_invalid_parameter() {
        assert_eq!(tamper_from(0).unwrap(), Tamper::None);
        assert_eq!(tamper_from(5).unwrap(), Tamper::WrongClientId);
        let e = tamper_from(6).unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::InvalidParameter, Some("tamper")));
    }

    #[test]
    fn wechat_faults_parse_with_their_parameters() {
        assert_eq!(
            parse_wechat_fault(r#"{"fault":"status","status":429,"code":"RATELIMIT_EXCEEDED","message":"m"}"#).unwrap(),
            WechatFault::Status {
                status: 429,
                code: "RATELIMIT_EXCEEDED".into(),
                message: "m".into()
            }
        );
        assert_eq!(
            parse_wechat_fault(r#"{"fault":"status","status":500}"#).unwrap(),
            WechatFault::Status {
                status: 500,
                code: "SYSTEM_ERROR".into(),
                message: "emulated failure".into()
            }
        );
        assert_eq!(
            parse_wechat_fault(r#"{"fault":"delay","delay_ms":900}"#).unwrap(),
            WechatFault::DelayThenAnswer(Duration::from_millis(900))
        );
        for (name, fault) in [
            ("accepted", WechatFault::Accepted202),
            ("drop", WechatFault::DropAfterProcessing),
            ("unsigned", WechatFault::Unsigned),
            ("bad_signature", WechatFault::BadSignature),
            ("stale_timestamp", WechatFault::StaleTimestamp),
            ("signtest_probe", WechatFault::SignTestProbe),
        ] {
            assert_eq!(parse_wechat_fault(&format!(r#"{{"fault":"{name}"}}"#)).unwrap(), fault);
        }
    }

    #[test]
    fn bad_wechat_faults_name_the_field() {
        let e = parse_wechat_fault(r#"{"fault":"unknown"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.field(), Some("fault_json.fault"));
        assert_eq!(e.limit(), Some(WECHAT_FAULT_NAMES.join(", ").as_str()));
        let e = parse_wechat_fault(r#"{"fault":"status","status":600}"#).unwrap_err();
        assert_eq!((e.field(), e.limit()), (Some("fault_json.status"), Some("599")));
        let e = parse_wechat_fault(r#"{"fault":"drop","status":500}"#).unwrap_err();
        assert_eq!(e.field(), Some("fault_json.status"));
        let e = parse_wechat_fault(r#"{"fault":"delay"}"#).unwrap_err();
        assert_eq!(e.field(), Some("fault_json.delay_ms"));
        assert_eq!(parse_wechat_fault("nope").unwrap_err().kind(), ErrorKind::InvalidJson);
    }

    #[test]
    fn callback_tamper_numbers_map_and_unknown_is_invalid_parameter() {
        assert_eq!(callback_tamper_from(0).unwrap(), CallbackTamper::None);
        assert_eq!(callback_tamper_from(1).unwrap(), CallbackTamper::SignTestProbe);
        assert_eq!(callback_tamper_from(6).unwrap(), CallbackTamper::MissingHeader);
        let e = callback_tamper_from(7).unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::InvalidParameter, Some("tamper")));
    }
}
