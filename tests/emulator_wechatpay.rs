//! The WeChat Pay emulator: request checks (headers, Authorization,
//! Wechatpay-Serial, sensitive-field decryption), the card-member APIs,
//! `/v3/certificates` in both key modes, faults, and signed callbacks with
//! every tamper — all checked with the library's own signer and verifier.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{
    Action, CallbackTamper, HttpServer, PlatformCertificate, SAMPLE_BRAND_ID, WechatEmulatorConfig, WechatFault,
    WechatPayEmulator, sample_user_card_create,
};
use cardbridge::ErrorKind;
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::oaep;
use cardbridge::crypto::x509::Certificate;
use cardbridge::http::{Header, HttpRequest, HttpResponse, Transport, TransportConfig, find_header};
use cardbridge::wechatpay::KeyRing;
use cardbridge::wechatpay::certificates::decrypt_certificates;
use cardbridge::wechatpay::model::{
    PreparedRequest, WireOptions, decrypt_sensitive_fields, prepare_confirm, prepare_get_user_card,
    prepare_sync_points, prepare_update_user_card,
};
use cardbridge::wechatpay::sign::{RequestSigner, authorization_value};
use cardbridge::wechatpay::verify::{self, Verified, VerifyFailure, VerifyOptions, VerifyReason};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const MCHID: &str = "1900000109";
const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD7A1B0B2E";
const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const API_V3_KEY: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const CERT_SERIAL: &str = "4E21A7C3D95B60F8E1A2B3C4D5E6F708192A3B4C";
const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
const BRAND: &str = SAMPLE_BRAND_ID;
const CARDS: &str = "/v3/brand/partner/card-member/user-cards";
const CREATE_EVENT: &str = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE";

struct Keys {
    wechatpay_private: PrivateKey,
    wechatpay_public: PublicKey,
    merchant_private: PrivateKey,
    merchant_public: PublicKey,
    cert_private: PrivateKey,
    cert_pem: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let wechatpay_private = PrivateKey::from_pem(&read("keys/test_platform_private.pem")).unwrap();
        let merchant_private = PrivateKey::from_pem(&read("keys/test_merchant_private.pem")).unwrap();
        Keys {
            wechatpay_public: wechatpay_private.public_key(),
            merchant_public: merchant_private.public_key(),
            wechatpay_private,
            merchant_private,
            cert_private: PrivateKey::from_pem(&read("wechatpay/emulator/platform_private.pem")).unwrap(),
            cert_pem: read("wechatpay/emulator/platform_cert.pem"),
        }
    })
}

fn config(cert_mode: bool) -> WechatEmulatorConfig {
    let k = keys();
    WechatEmulatorConfig {
        wechatpay_private_key: k.wechatpay_private.clone(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: k.merchant_public.clone(),
        mchid: MCHID.into(),
        merchant_serial_no: MERCHANT_SERIAL.into(),
        api_v3_key: ApiV3Key::new(API_V3_KEY).unwrap(),
        platform_certificate: cert_mode.then(|| PlatformCertificate {
            pem: k.cert_pem.clone(),
            serial: CERT_SERIAL.into(),
            private_key: k.cert_private.clone(),
        }),
    }
}

fn start(cert_mode: bool) -> WechatPayEmulator {
    WechatPayEmulator::start(config(cert_mode)).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn signer() -> RequestSigner {
    RequestSigner::new(MCHID, MERCHANT_SERIAL, keys().merchant_private.clone()).unwrap()
}

/// `Authorization` (signed at `timestamp`), `Accept`, and `Content-Type` for a body.
fn signed_headers(method: &str, target: &str, body: &[u8], timestamp: i64) -> Vec<Header> {
    let signed = signer().sign(method, target, body, timestamp).unwrap();
    let mut h: Vec<Header> = vec![
        ("Authorization".into(), signed.authorization),
        ("Accept".into(), "application/json".into()),
    ];
    if !body.is_empty() {
        h.push(("Content-Type".into(), "application/json".into()));
    }
    h
}

fn with_serial(mut headers: Vec<Header>, serial: &str) -> Vec<Header> {
    headers.push(("Wechatpay-Serial".into(), serial.into()));
    headers
}

fn transport(read_timeout: Duration) -> Transport {
    Transport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout,
        ..TransportConfig::default()
    })
    .unwrap()
}

fn send_with(
    emu: &WechatPayEmulator,
    method: &str,
    target: &str,
    headers: &[Header],
    body: &[u8],
    read_timeout: Duration,
) -> cardbridge::Result<HttpResponse> {
    transport(read_timeout).send(&format!("{}{target}", emu.base_url()), method, headers, body)
}

fn send(emu: &WechatPayEmulator, method: &str, target: &str, headers: &[Header], body: &[u8]) -> HttpResponse {
    send_with(emu, method, target, headers, body, Duration::from_secs(10)).unwrap()
}

/// A prepared request, signed now, with `Wechatpay-Serial: serial` if given.
fn call(emu: &WechatPayEmulator, p: &PreparedRequest, serial: Option<&str>) -> HttpResponse {
    let mut headers = signed_headers(p.method, &p.target, &p.body, now());
    if let Some(s) = serial {
        headers = with_serial(headers, s);
    }
    send(emu, p.method, &p.target, &headers, &p.body)
}

fn encrypt_to(key: &PublicKey) -> impl FnMut(&cardbridge::validate::Path, &str) -> cardbridge::Result<String> + '_ {
    move |_, s| oaep::encrypt(key, s.as_bytes())
}

fn confirm_input(code: &str, state: &str) -> Value {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": BRAND, "openid": OPENID,
           "user_card_confirm_state": state})
}

fn rich_confirm_input(code: &str) -> Value {
    let mut v = confirm_input(code, "CREATE_CARD_SUCCESS");
    v["phone_number"] = json!("13800000000");
    v["level"] = json!("钻石会员");
    v["card_color"] = json!("#FFFF00");
    v["user_information"] = json!({
        "common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "李四"}],
        "custom_field_list": [{"name": "喜欢的运动", "user_chosen_values": ["跑步", "游泳"]}],
    });
    v
}

/// `confirm` prepared by the library, sensitive fields encrypted to `key`.
fn prepare(input: &Value, key: &PublicKey) -> PreparedRequest {
    prepare_confirm(
        input.to_string().as_bytes(),
        WireOptions::default(),
        &mut encrypt_to(key),
    )
    .unwrap()
}

fn public_key_ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, keys().wechatpay_public.clone())
        .unwrap();
    ring
}

fn certificate_ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_certificate(Certificate::from_pem(&keys().cert_pem).unwrap());
    ring
}

fn verify_with(ring: &KeyRing, headers: &[Header], body: &[u8]) -> Result<Verified, VerifyFailure> {
    verify::verify(
        ring,
        headers,
        body,
        now(),
        VerifyOptions {
            require_signature_type: true,
        },
    )
}

fn verify_answer(resp: &HttpResponse) -> Result<Verified, VerifyFailure> {
    verify_with(&public_key_ring(), &resp.headers, &resp.body)
}

fn body_json(resp: &HttpResponse) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&resp.body)))
}

fn merchant_decrypt(ct: &Value) -> String {
    String::from_utf8(oaep::decrypt(&keys().merchant_private, ct.as_str().unwrap()).unwrap()).unwrap()
}

/// Status and `code` of an error answer.
fn error_of(resp: &HttpResponse) -> (u16, String, String) {
    let v = body_json(resp);
    (
        resp.status,
        v["code"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

fn state_of(emu: &WechatPayEmulator, code: &str) -> String {
    emu.user_card(code).unwrap()["user_card_state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls until `cond` holds (the emulator processes before it answers late).
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn confirm_applies_the_card_and_answers_it_signed() {
    let emu = start(false);
    emu.add_user_card("478515832665", CARD_ID, OPENID, BRAND);
    assert_eq!(state_of(&emu, "478515832665"), "UNACTIVATED");
    let p = prepare(&rich_confirm_input("478515832665"), &keys().wechatpay_public);
    assert!(p.encrypted);
    let resp = call(&emu, &p, Some(PUB_KEY_ID));

    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let verified = verify_answer(&resp).unwrap();
    assert_eq!(verified.serial, PUB_KEY_ID);
    assert_eq!(
        resp.header("Wechatpay-Signature-Type"),
        Some("WECHATPAY2-SHA256-RSA2048")
    );
    assert_eq!(resp.header("Content-Type"), Some("application/json; charset=utf-8"));
    assert!(resp.header("Request-ID").is_some_and(|r| r.len() == 32));
    assert!((verified.timestamp - now()).abs() < 60);
    // Only WeChat Pay's key verifies it: the merchant key under the same ID does not.
    let mut wrong = KeyRing::new();
    wrong
        .add_public_key(PUB_KEY_ID, keys().merchant_public.clone())
        .unwrap();
    assert_eq!(
        verify_with(&wrong, &resp.headers, &resp.body).unwrap_err().reason,
        VerifyReason::Mismatch
    );

    let card = body_json(&resp);
    let members: Vec<&str> = card.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        members,
        [
            "user_card_code",
            "card_id",
            "openid",
            "card_color",
            "brand_id",
            "card_type",
            "phone_number",
            "level",
            "valid_date_information",
            "pickup_time",
            "user_information",
            "user_card_state"
        ]
    );
    assert_eq!(card["user_card_code"], "478515832665");
    assert_eq!(card["user_card_state"], "EFFECTIVE");
    assert_eq!(card["level"], "钻石会员");
    assert_eq!(card["card_color"], "#FFFF00");
    assert_ne!(card["phone_number"], "13800000000", "sensitive fields are encrypted");
    assert_eq!(merchant_decrypt(&card["phone_number"]), "13800000000");
    let info = &card["user_information"];
    assert_eq!(merchant_decrypt(&info["common_field_list"][0]["value"]), "李四");
    assert_eq!(
        merchant_decrypt(&info["custom_field_list"][0]["user_chosen_values"][1]),
        "游泳"
    );

    // The emulator decrypted what the library encrypted to the WeChat Pay key.
    let view = emu.user_card("478515832665").unwrap();
    assert_eq!(view["user_card_state"], "EFFECTIVE");
    assert_eq!(view["phone_number"], "13800000000");
    assert_eq!(view["user_information"]["common_field_list"][0]["value"], "李四");
    assert_eq!(
        view["user_information"]["custom_field_list"][0]["user_chosen_values"],
        json!(["跑步", "游泳"])
    );
    assert_eq!(emu.confirms_applied(), 1);
    assert_eq!(emu.confirm_hits("478515832665"), 1);
    assert_eq!(emu.confirm_hits("other"), 0);
    assert_eq!(emu.hits(CARDS), 1);
    assert_eq!(emu.hits("/v3/certificates"), 0);
    let last = emu.last_request().unwrap();
    assert_eq!(last.target, p.target);
    assert_eq!(last.body, p.body);
    assert_eq!(find_header(&last.headers, "wechatpay-serial"), Some(PUB_KEY_ID));
}

#[test]
fn repeated_confirm_answers_the_same_card_without_reapplying() {
    let emu = start(false);
    emu.add_user_card("1001", CARD_ID, OPENID, BRAND);
    let first = call(
        &emu,
        &prepare(&rich_confirm_input("1001"), &keys().wechatpay_public),
        Some(PUB_KEY_ID),
    );
    assert_eq!(first.status, 200);

    // Same confirm again, then a contradicting one: both answer the confirmed card.
    let again = call(
        &emu,
        &prepare(&rich_confirm_input("1001"), &keys().wechatpay_public),
        Some(PUB_KEY_ID),
    );
    let mut fail = confirm_input("1001", "CREATE_CARD_FAIL");
    fail["level"] = json!("铜牌会员");
    let contradicting = call(&emu, &prepare(&fail, &keys().wechatpay_public), Some(PUB_KEY_ID));
    for resp in [&again, &contradicting] {
        assert_eq!(resp.status, 200);
        verify_answer(resp).unwrap();
        let card = body_json(resp);
        assert_eq!(card["user_card_state"], "EFFECTIVE");
        assert_eq!(card["level"], "钻石会员");
        assert_eq!(merchant_decrypt(&card["phone_number"]), "13800000000");
    }
    assert_eq!(emu.confirm_hits("1001"), 3);
    assert_eq!(emu.confirms_applied(), 1);

    // A failed opening makes another card INVALID.
    emu.add_user_card("1002", CARD_ID, OPENID, BRAND);
    let failed = call(
        &emu,
        &prepare(&confirm_input("1002", "CREATE_CARD_FAIL"), &keys().wechatpay_public),
        Some(PUB_KEY_ID),
    );
    assert_eq!(failed.status, 200);
    assert_eq!(body_json(&failed)["user_card_state"], "INVALID");
    assert!(
        body_json(&failed)["invalid_time"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00"))
    );
    assert_eq!(state_of(&emu, "1002"), "INVALID");
    assert_eq!(emu.confirms_applied(), 2);
}

#[test]
fn unknown_or_foreign_cards_are_not_found() {
    let emu = start(false);
    emu.add_user_card("2001", CARD_ID, OPENID, BRAND);
    let unknown = call(
        &emu,
        &prepare(&confirm_input("2999", "CREATE_CARD_SUCCESS"), &keys().wechatpay_public),
        Some(PUB_KEY_ID),
    );
    assert_eq!(error_of(&unknown).0, 404);
    assert_eq!(error_of(&unknown).1, "RESOURCE_NOT_EXISTS");
    verify_answer(&unknown).unwrap();

    let mut other_user = confirm_input("2001", "CREATE_CARD_SUCCESS");
    other_user["openid"] = json!("someone-else");
    let mut other_template = confirm_input("2001", "CREATE_CARD_SUCCESS");
    other_template["card_id"] = json!("another-card");
    for input in [other_user, other_template] {
        let resp = call(&emu, &prepare(&input, &keys().wechatpay_public), Some(PUB_KEY_ID));
        assert_eq!((resp.status, error_of(&resp).1.as_str()), (404, "RESOURCE_NOT_EXISTS"));
    }
    assert_eq!(state_of(&emu, "2001"), "UNACTIVATED");
    assert_eq!(emu.confirms_applied(), 0);
    assert_eq!(emu.confirm_hits("2999"), 1);
}

#[test]
fn bad_authorization_is_a_401_sign_error_and_nothing_is_applied() {
    let emu = start(false);
    emu.add_user_card("3001", CARD_ID, OPENID, BRAND);
    let p = prepare(&confirm_input("3001", "CREATE_CARD_SUCCESS"), &keys().wechatpay_public);
    let ts = now();
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    let good = signer().sign_with_nonce("POST", &p.target, &p.body, ts, nonce).unwrap();
    let sig_of = |auth: &str| {
        auth.split("signature=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    };
    let good_sig = sig_of(&good.authorization);
    let other_key = RequestSigner::new(MCHID, MERCHANT_SERIAL, keys().wechatpay_private.clone())
        .unwrap()
        .sign_with_nonce("POST", &p.target, &p.body, ts, nonce)
        .unwrap()
        .authorization;
    let path_only = p.target.split('?').next().unwrap();
    let without_query = signer()
        .sign_with_nonce("POST", path_only, &p.body, ts, nonce)
        .unwrap()
        .authorization;
    let other_mchid = RequestSigner::new("1900000110", MERCHANT_SERIAL, keys().merchant_private.clone())
        .unwrap()
        .sign_with_nonce("POST", &p.target, &p.body, ts, nonce)
        .unwrap()
        .authorization;
    let other_serial = RequestSigner::new(
        MCHID,
        "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
        keys().merchant_private.clone(),
    )
    .unwrap()
    .sign_with_nonce("POST", &p.target, &p.body, ts, nonce)
    .unwrap()
    .authorization;
    let mut changed_body = p.body.clone();
    *changed_body.iter_mut().rev().find(|b| b.is_ascii_alphabetic()).unwrap() ^= 0x20;

    let cases: Vec<(&str, Option<String>, Vec<u8>)> = vec![
        ("no Authorization", None, p.body.clone()),
        ("signed with another key", Some(other_key), p.body.clone()),
        (
            "body changed after signing",
            Some(good.authorization.clone()),
            changed_body,
        ),
        (
            "query left out of the signed target",
            Some(without_query),
            p.body.clone(),
        ),
        ("another mchid", Some(other_mchid), p.body.clone()),
        ("another merchant serial", Some(other_serial), p.body.clone()),
        (
            "another scheme",
            Some(
                good.authorization
                    .replacen("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA4096", 1),
            ),
            p.body.clone(),
        ),
        (
            "an item missing",
            Some(
                good.authorization
                    .replacen(&format!(",serial_no=\"{MERCHANT_SERIAL}\""), "", 1),
            ),
            p.body.clone(),
        ),
        (
            "a probe-like signature",
            Some(
                good.authorization
                    .replacen(&good_sig, &format!("WECHATPAY/SIGNTEST/{good_sig}"), 1),
            ),
            p.body.clone(),
        ),
        (
            "another nonce",
            Some(
                good.authorization
                    .replacen(nonce, "593BEC0C930BF1AFEB40B4A08C8FB243", 1),
            ),
            p.body.clone(),
        ),
    ];
    for (what, auth, body) in cases {
        let mut headers: Vec<Header> = vec![("Accept".into(), "application/json".into())];
        if let Some(a) = auth {
            headers.push(("Authorization".into(), a));
        }
        let resp = send(&emu, "POST", &p.target, &with_serial(headers, PUB_KEY_ID), &body);
        assert_eq!(
            error_of(&resp),
            (401, "SIGN_ERROR".to_string(), "错误的签名，验签失败".to_string()),
            "{what}"
        );
    }
    let mismatch_detail = {
        let headers = vec![
            ("Accept".to_string(), "application/json".to_string()),
            ("Authorization".to_string(), good.authorization.clone()),
        ];
        let resp = send(&emu, "POST", path_only, &with_serial(headers, PUB_KEY_ID), &p.body);
        body_json(&resp)["detail"]["sign_information"].clone()
    };
    assert_eq!(mismatch_detail["url"], path_only);
    assert!(
        mismatch_detail["truncated_sign_message"]
            .as_str()
            .unwrap()
            .starts_with("POST\n/v3/")
    );
    assert_eq!(state_of(&emu, "3001"), "UNACTIVATED");
    assert_eq!(emu.confirms_applied(), 0);
    assert_eq!(emu.confirm_hits("3001"), 11);

    // The five items in another order are accepted.
    let reordered = format!(
        "WECHATPAY2-SHA256-RSA2048 serial_no=\"{MERCHANT_SERIAL}\",timestamp=\"{ts}\",signature=\"{good_sig}\",nonce_str=\"{nonce}\",mchid=\"{MCHID}\""
    );
    assert_ne!(
        reordered,
        authorization_value(MCHID, nonce, &good_sig, ts, MERCHANT_SERIAL)
    );
    let headers = vec![
        ("Accept".to_string(), "application/json".to_string()),
        ("Authorization".to_string(), reordered),
    ];
    let resp = send(&emu, "POST", &p.target, &with_serial(headers, PUB_KEY_ID), &p.body);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(state_of(&emu, "3001"), "EFFECTIVE");
}

#[test]
fn request_timestamps_beyond_300_seconds_are_refused() {
    let emu = start(false);
    emu.add_user_card("4001", CARD_ID, OPENID, BRAND);
    let p = prepare(&confirm_input("4001", "CREATE_CARD_SUCCESS"), &keys().wechatpay_public);
    for offset in [-400i64, -301 - 30, 331, 3600] {
        let headers = with_serial(signed_headers("POST", &p.target, &p.body, now() + offset), PUB_KEY_ID);
        let resp = send(&emu, "POST", &p.target, &headers, &p.body);
        assert_eq!(
            (resp.status, error_of(&resp).1.as_str()),
            (401, "SIGN_ERROR"),
            "offset {offset}"
        );
        assert!(body_json(&resp)["detail"]["issue"].as_str().unwrap().contains("300 s"));
    }
    assert_eq!(state_of(&emu, "4001"), "UNACTIVATED");
    // Well inside the window (with room for a slow test machine) is accepted.
    let headers = with_serial(signed_headers("POST", &p.target, &p.body, now() - 240), PUB_KEY_ID);
    let resp = send(&emu, "POST", &p.target, &headers, &p.body);
    assert_eq!(resp.status, 200);
    assert_eq!(state_of(&emu, "4001"), "EFFECTIVE");
}

#[test]
fn confirm_needs_the_wechatpay_serial_of_a_known_key() {
    let emu = start(false);
    emu.add_user_card("5001", CARD_ID, OPENID, BRAND);
    let p = prepare(&confirm_input("5001", "CREATE_CARD_SUCCESS"), &keys().wechatpay_public);
    for serial in [
        None,
        Some("PUB_KEY_ID_0114232134912410000000000001"),
        Some(CERT_SERIAL),
        Some(""),
    ] {
        let resp = call(&emu, &p, serial);
        assert_eq!(
            error_of(&resp),
            (
                400,
                "PARAM_ERROR".to_string(),
                "平台证书序列号Wechatpay-Serial错误".to_string()
            ),
            "{serial:?}"
        );
        verify_answer(&resp).unwrap();
    }
    assert_eq!(state_of(&emu, "5001"), "UNACTIVATED");
    assert_eq!(emu.confirm_hits("5001"), 4);
}

#[test]
fn undecryptable_sensitive_fields_are_a_param_error() {
    let emu = start(false);
    emu.add_user_card("6001", CARD_ID, OPENID, BRAND);
    // Encrypted to the wrong key (the merchant's own).
    let wrong_key = prepare(&rich_confirm_input("6001"), &keys().merchant_public);
    let resp = call(&emu, &wrong_key, Some(PUB_KEY_ID));
    assert_eq!(error_of(&resp).0, 400);
    assert_eq!(error_of(&resp).1, "PARAM_ERROR");
    let detail = &body_json(&resp)["detail"];
    assert_eq!(detail["field"], "/phone_number");
    assert_eq!(detail["location"], "body");

    // Only one chosen value is bad.
    let mut body: Value =
        serde_json::from_slice(&prepare(&rich_confirm_input("6001"), &keys().wechatpay_public).body).unwrap();
    body["user_information"]["custom_field_list"][0]["user_chosen_values"][1] = json!("bm90IGNpcGhlcnRleHQ=");
    let body = serde_json::to_vec(&body).unwrap();
    let headers = with_serial(signed_headers("POST", &wrong_key.target, &body, now()), PUB_KEY_ID);
    let resp = send(&emu, "POST", &wrong_key.target, &headers, &body);
    assert_eq!(error_of(&resp).0, 400);
    assert_eq!(
        body_json(&resp)["detail"]["field"],
        "/user_information/custom_field_list/0/user_chosen_values/1"
    );

    // Plain values where ciphertext is expected (custom values left unencrypted by the host's choice).
    let plain = prepare_confirm(
        rich_confirm_input("6001").to_string().as_bytes(),
        WireOptions {
            encrypt_custom_field_values: false,
            ..WireOptions::default()
        },
        &mut encrypt_to(&keys().wechatpay_public),
    )
    .unwrap();
    let resp = call(&emu, &plain, Some(PUB_KEY_ID));
    assert_eq!(
        body_json(&resp)["detail"]["field"],
        "/user_information/custom_field_list/0/user_chosen_values/0"
    );
    assert_eq!(state_of(&emu, "6001"), "UNACTIVATED");
    assert_eq!(emu.confirms_applied(), 0);
}

#[test]
fn body_and_query_errors_name_the_parameter() {
    let emu = start(false);
    emu.add_user_card("6101", CARD_ID, OPENID, BRAND);
    let target = format!("{CARDS}/6101/confirm?card_id={CARD_ID}");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            r#"{"openid":"o","user_card_confirm_state":"CREATE_CARD_SUCCESS"}"#,
            target.clone(),
            "/brand_id",
        ),
        (
            r#"{"brand_id":"1004","openid":"o","user_card_confirm_state":"DONE"}"#,
            target.clone(),
            "/user_card_confirm_state",
        ),
        (r#"[1]"#, target.clone(), "/"),
        (
            r#"{"brand_id":"1004","openid":"o","user_card_confirm_state":"CREATE_CARD_SUCCESS"}"#,
            format!("{CARDS}/6101/confirm"),
            "card_id",
        ),
        (
            r#"{"brand_id":"1004","openid":"o","card_id":"x","user_card_confirm_state":"CREATE_CARD_SUCCESS"}"#,
            target.clone(),
            "/card_id",
        ),
    ];
    for (body, target, field) in cases {
        let headers = with_serial(signed_headers("POST", &target, body.as_bytes(), now()), PUB_KEY_ID);
        let resp = send(&emu, "POST", &target, &headers, body.as_bytes());
        assert_eq!(
            (resp.status, error_of(&resp).1.as_str()),
            (400, "PARAM_ERROR"),
            "{body}"
        );
        assert_eq!(body_json(&resp)["detail"]["field"], field, "{body}");
    }
    // Unknown URL and wrong method.
    let headers = signed_headers("GET", "/v3/nothing", b"", now());
    assert_eq!(send(&emu, "GET", "/v3/nothing", &headers, b"").status, 404);
    let headers = signed_headers("DELETE", &target, b"", now());
    assert_eq!(send(&emu, "DELETE", &target, &headers, b"").status, 405);
}

/// Sends a raw HTTP/1.1 request (to leave out headers ureq always adds).
fn raw_request(emu: &WechatPayEmulator, head: &str, body: &[u8]) -> (u16, Value) {
    let addr = emu.base_url().trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{head}Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let (_, json) = text.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(json).unwrap())
}

#[test]
fn accept_and_user_agent_are_required() {
    let emu = start(false);
    let target = "/v3/certificates";
    let auth = signer().sign("GET", target, b"", now()).unwrap().authorization;
    let full = format!("GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n");
    let (status, v) = raw_request(&emu, &format!("{full}User-Agent: t\r\n"), b"");
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_REQUEST")));
    assert_eq!(v["message"], "Http头缺少Accept或User-Agent");
    let (status, v) = raw_request(&emu, &format!("{full}Accept: */*\r\n"), b"");
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_REQUEST")));
    // Both present: past the header check (public-key mode has no certificate).
    let (status, v) = raw_request(&emu, &format!("{full}Accept: */*\r\nUser-Agent: t\r\n"), b"");
    assert_eq!((status, v["code"].as_str()), (404, Some("RESOURCE_NOT_EXISTS")));
}

fn fresh_confirm(emu: &WechatPayEmulator, code: &str) -> PreparedRequest {
    emu.add_user_card(code, CARD_ID, OPENID, BRAND);
    prepare(&rich_confirm_input(code), &keys().wechatpay_public)
}

#[test]
fn status_and_202_faults_are_not_processed() {
    let emu = start(false);
    let p = fresh_confirm(&emu, "7001");
    let faults = [
        (500, "SYSTEM_ERROR", "系统错误"),
        (429, "RATELIMIT_EXCEEDED", "请求超过频率限制"),
        (400, "PARAM_ERROR", "参数错误"),
    ];
    for (status, code, message) in faults {
        emu.push_fault(WechatFault::Status {
            status,
            code: code.into(),
            message: message.into(),
        });
    }
    emu.push_fault(WechatFault::Accepted202);
    for (status, code, message) in faults {
        let resp = call(&emu, &p, Some(PUB_KEY_ID));
        assert_eq!(error_of(&resp), (status, code.to_string(), message.to_string()));
        assert!(
            resp.header("Wechatpay-Signature").is_none(),
            "fault answers are unsigned"
        );
        assert!(resp.header("Request-ID").is_some());
        assert_eq!(state_of(&emu, "7001"), "UNACTIVATED");
    }
    let accepted = call(&emu, &p, Some(PUB_KEY_ID));
    assert_eq!(accepted.status, 202);
    assert!(accepted.body.is_empty());
    assert_eq!(state_of(&emu, "7001"), "UNACTIVATED");
    assert_eq!(emu.confirms_applied(), 0);

    // The queue is empty: the next request is handled normally.
    let ok = call(&emu, &p, Some(PUB_KEY_ID));
    assert_eq!(ok.status, 200);
    verify_answer(&ok).unwrap();
    assert_eq!(emu.confirm_hits("7001"), 5);
    assert_eq!(emu.confirms_applied(), 1);
}

#[test]
fn late_and_lost_answers_are_processed() {
    let emu = start(false);
    // Late but within the client's patience: a normal signed answer, at least the delay later.
    let p = fresh_confirm(&emu, "7101");
    emu.push_fault(WechatFault::DelayThenAnswer(Duration::from_millis(300)));
    let started = Instant::now();
    let resp = call(&emu, &p, Some(PUB_KEY_ID));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status, 200);
    verify_answer(&resp).unwrap();

    // Later than the client's read timeout: the client times out, the card is confirmed.
    let p = fresh_confirm(&emu, "7102");
    emu.push_fault(WechatFault::DelayThenAnswer(Duration::from_secs(5)));
    let headers = with_serial(signed_headers("POST", &p.target, &p.body, now()), PUB_KEY_ID);
    let err = send_with(&emu, "POST", &p.target, &headers, &p.body, Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(eventually(|| state_of(&emu, "7102") == "EFFECTIVE"));

    // Dropped after processing: no answer at all, the card is confirmed.
    let p = fresh_confirm(&emu, "7103");
    emu.push_fault(WechatFault::DropAfterProcessing);
    let headers = with_serial(signed_headers("POST", &p.target, &p.body, now()), PUB_KEY_ID);
    let err = send_with(&emu, "POST", &p.target, &headers, &p.body, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport | ErrorKind::Timeout), "{err}");
    assert!(eventually(|| state_of(&emu, "7103") == "EFFECTIVE"));
    assert_eq!(emu.confirms_applied(), 3);
}

#[test]
fn signature_faults_spoil_the_answer_of_a_processed_request() {
    let emu = start(false);
    let cases = [
        (WechatFault::Unsigned, VerifyReason::HeaderMissing, false),
        (WechatFault::BadSignature, VerifyReason::Mismatch, false),
        (WechatFault::StaleTimestamp, VerifyReason::ClockSkew, false),
        (WechatFault::SignTestProbe, VerifyReason::BadEncoding, true),
    ];
    for (i, (fault, reason, probe)) in cases.into_iter().enumerate() {
        let code = format!("720{i}");
        let p = fresh_confirm(&emu, &code);
        emu.push_fault(fault.clone());
        let resp = call(&emu, &p, Some(PUB_KEY_ID));
        assert_eq!(resp.status, 200, "{fault:?}");
        assert_eq!(state_of(&emu, &code), "EFFECTIVE", "{fault:?} is processed");
        assert_eq!(body_json(&resp)["user_card_state"], "EFFECTIVE");
        let failure = verify_answer(&resp).unwrap_err();
        assert!(
            failure.reason == reason || (probe && failure.reason == VerifyReason::Mismatch),
            "{fault:?}: {failure}"
        );
        assert_eq!(failure.probe, probe, "{fault:?}");
        match fault {
            WechatFault::Unsigned => {
                assert!(
                    resp.headers
                        .iter()
                        .all(|(n, _)| !n.to_ascii_lowercase().starts_with("wechatpay-"))
                );
                assert!(resp.header("Request-ID").is_some());
            }
            WechatFault::StaleTimestamp => {
                let ts: i64 = resp.header("Wechatpay-Timestamp").unwrap().parse().unwrap();
                assert!((now() - 600 - ts).abs() < 60, "{ts}");
                // Signed correctly for that time.
                let then = verify::verify(
                    &public_key_ring(),
                    &resp.headers,
                    &resp.body,
                    ts,
                    VerifyOptions::default(),
                );
                assert!(then.is_ok());
            }
            WechatFault::SignTestProbe => {
                assert!(
                    resp.header("Wechatpay-Signature")
                        .unwrap()
                        .starts_with("WECHATPAY/SIGNTEST/")
                );
            }
            _ => {}
        }
    }
    assert_eq!(emu.confirms_applied(), 4);
}

#[test]
fn get_patch_and_points_sync() {
    let emu = start(false);
    emu.add_user_card("8001", CARD_ID, OPENID, BRAND);
    let get = prepare_get_user_card(
        json!({"user_card_code": "8001", "brand_id": BRAND, "card_id": CARD_ID, "openid": OPENID})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let resp = call(&emu, &get, None);
    assert_eq!(resp.status, 200);
    verify_answer(&resp).unwrap();
    let card = body_json(&resp);
    assert_eq!(card["user_card_state"], "UNACTIVATED");
    assert_eq!(card["card_type"], "NORMAL");
    assert_eq!(card["valid_date_information"], json!({"type": "PERMANENT"}));
    assert!(card.get("phone_number").is_none());

    // PATCH with an encrypted phone number needs Wechatpay-Serial.
    let patch_input = json!({"user_card_code": "8001", "card_id": CARD_ID, "brand_id": BRAND, "openid": OPENID,
                             "level": "金牌会员", "phone_number": "13900000000"});
    let patch = prepare_update_user_card(
        patch_input.to_string().as_bytes(),
        WireOptions::default(),
        &mut encrypt_to(&keys().wechatpay_public),
    )
    .unwrap();
    let refused = call(&emu, &patch, None);
    assert_eq!(error_of(&refused).2, "平台证书序列号Wechatpay-Serial错误");
    let resp = call(&emu, &patch, Some(PUB_KEY_ID));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    verify_answer(&resp).unwrap();
    assert_eq!(body_json(&resp)["level"], "金牌会员");
    assert_eq!(merchant_decrypt(&body_json(&resp)["phone_number"]), "13900000000");
    assert_eq!(emu.user_card("8001").unwrap()["phone_number"], "13900000000");
    // Without sensitive fields no serial is needed.
    let level_only = prepare_update_user_card(
        json!({"user_card_code": "8001", "card_id": CARD_ID, "brand_id": BRAND, "openid": OPENID, "level": "银牌会员"})
            .to_string()
            .as_bytes(),
        WireOptions::default(),
        &mut encrypt_to(&keys().wechatpay_public),
    )
    .unwrap();
    assert_eq!(call(&emu, &level_only, None).status, 200);

    let after = call(&emu, &get, None);
    assert_eq!(body_json(&after)["level"], "银牌会员");
    assert_eq!(merchant_decrypt(&body_json(&after)["phone_number"]), "13900000000");
    let wrong_user = prepare_get_user_card(
        json!({"user_card_code": "8001", "brand_id": BRAND, "card_id": CARD_ID, "openid": "nobody"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(error_of(&call(&emu, &wrong_user, None)).0, 404);
    let missing = format!("{CARDS}/8001?brand_id={BRAND}&card_id={CARD_ID}");
    let resp = send(&emu, "GET", &missing, &signed_headers("GET", &missing, b"", now()), b"");
    assert_eq!(body_json(&resp)["detail"]["field"], "openid");

    // Points sync: 204, signed over the empty body.
    let sync = |balance: i64, code: &str| {
        json!({"out_request_no": "R-1", "brand_id": BRAND, "card_id": CARD_ID, "openid": OPENID,
               "user_card_code": code, "point_balance": balance})
    };
    let p = prepare_sync_points(sync(120, "8001").to_string().as_bytes()).unwrap();
    let resp = call(&emu, &p, None);
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());
    verify_answer(&resp).unwrap();
    assert_eq!(emu.point_balance("8001"), Some(120));
    let unknown = prepare_sync_points(sync(5, "8999").to_string().as_bytes()).unwrap();
    assert_eq!(error_of(&call(&emu, &unknown, None)).1, "RESOURCE_NOT_EXISTS");
    let negative = serde_json::to_vec(&sync(-1, "8001")).unwrap();
    let headers = signed_headers("POST", &p.target, &negative, now());
    let resp = send(&emu, "POST", &p.target, &headers, &negative);
    assert_eq!(body_json(&resp)["detail"]["field"], "/point_balance");
    assert_eq!(emu.point_balance("8001"), Some(120));
    assert_eq!(emu.hits("/v3/brand/partner/card-member/user-points/sync"), 3);
    assert_eq!(emu.hits(CARDS), 7);
}

fn get_certificates(emu: &WechatPayEmulator) -> HttpResponse {
    let target = "/v3/certificates?algorithm_type=RSA";
    send(emu, "GET", target, &signed_headers("GET", target, b"", now()), b"")
}

#[test]
fn certificates_in_public_key_mode_are_not_available() {
    let emu = start(false);
    let resp = get_certificates(&emu);
    let (status, code, message) = error_of(&resp);
    assert_eq!((status, code.as_str()), (404, "RESOURCE_NOT_EXISTS"));
    assert!(message.starts_with("无可用的平台证书"), "{message}");
    verify_answer(&resp).unwrap();
    assert_eq!(emu.hits("/v3/certificates"), 1);
}

#[test]
fn certificates_in_certificate_mode_decrypt_and_sign() {
    let emu = start(true);
    let resp = get_certificates(&emu);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let v = body_json(&resp);
    let entry = &v["data"][0];
    assert_eq!(entry["serial_no"], CERT_SERIAL);
    assert_eq!(entry["effective_time"], "2024-01-01T08:00:00+08:00");
    assert_eq!(entry["expire_time"], "2124-01-01T08:00:00+08:00");
    assert_eq!(entry["encrypt_certificate"]["associated_data"], "certificate");
    assert_eq!(entry["encrypt_certificate"]["algorithm"], "AEAD_AES_256_GCM");
    assert_eq!(entry["encrypt_certificate"]["nonce"].as_str().unwrap().len(), 12);

    let certs = decrypt_certificates(&ApiV3Key::new(API_V3_KEY).unwrap(), &resp.body).unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].serial(), CERT_SERIAL);
    assert_eq!(certs[0].public_key(), &keys().cert_private.public_key());
    let wrong_key = decrypt_certificates(&ApiV3Key::new(&[b'k'; 32]).unwrap(), &resp.body).unwrap_err();
    assert_eq!(wrong_key.kind(), ErrorKind::DecryptFailed);

    // Signed by the downloaded certificate itself, under its serial.
    assert_eq!(resp.header("Wechatpay-Serial"), Some(CERT_SERIAL));
    let mut ring = KeyRing::new();
    ring.set_certificates(certs);
    verify_with(&ring, &resp.headers, &resp.body).unwrap();
    assert_eq!(verify_answer(&resp).unwrap_err().reason, VerifyReason::UnknownSerial);
}

#[test]
fn certificate_mode_answers_with_the_key_the_request_names() {
    let emu = start(true);
    let cert_public = keys().cert_private.public_key();
    // Encrypted to the certificate, named by its serial (lower case is the same serial).
    emu.add_user_card("9001", CARD_ID, OPENID, BRAND);
    let p = prepare(&rich_confirm_input("9001"), &cert_public);
    let resp = call(&emu, &p, Some(&CERT_SERIAL.to_ascii_lowercase()));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("Wechatpay-Serial"), Some(CERT_SERIAL));
    verify_with(&certificate_ring(), &resp.headers, &resp.body).unwrap();
    assert_eq!(emu.user_card("9001").unwrap()["phone_number"], "13800000000");

    // Encrypted to the public key, named by its ID: answered under the public key.
    let p = fresh_confirm(&emu, "9002");
    let resp = call(&emu, &p, Some(PUB_KEY_ID));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Wechatpay-Serial"), Some(PUB_KEY_ID));
    verify_answer(&resp).unwrap();

    // Encrypted to the public key but naming the certificate: cannot be decrypted.
    let p = fresh_confirm(&emu, "9003");
    let resp = call(&emu, &p, Some(CERT_SERIAL));
    assert_eq!(error_of(&resp).1, "PARAM_ERROR");
    assert_eq!(body_json(&resp)["detail"]["field"], "/phone_number");
    verify_with(&certificate_ring(), &resp.headers, &resp.body).unwrap();
    assert_eq!(state_of(&emu, "9003"), "UNACTIVATED");

    // A request naming no key is answered under the certificate.
    let get = prepare_get_user_card(
        json!({"user_card_code": "9001", "brand_id": BRAND, "card_id": CARD_ID, "openid": OPENID})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let resp = call(&emu, &get, None);
    assert_eq!(resp.header("Wechatpay-Serial"), Some(CERT_SERIAL));
    verify_with(&certificate_ring(), &resp.headers, &resp.body).unwrap();
}

#[test]
fn config_is_checked() {
    let field_of = |c: WechatEmulatorConfig| {
        let e = WechatPayEmulator::start(c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        e.field().unwrap().to_string()
    };
    let mut c = config(false);
    c.public_key_id = "PUB_KEY_ID_12AB".into();
    assert_eq!(field_of(c), "emulator.public_key_id");
    let mut c = config(false);
    c.mchid = "19x".into();
    assert_eq!(field_of(c), "emulator.mchid");
    let mut c = config(false);
    c.merchant_serial_no = "PUB_KEY_ID_1".into();
    assert_eq!(field_of(c), "emulator.merchant_serial_no");
    let mut c = config(true);
    c.platform_certificate.as_mut().unwrap().serial = "4E21A7C3D95B60F8E1A2B3C4D5E6F708192A3B4D".into();
    assert_eq!(field_of(c), "emulator.platform_certificate.serial");
    let mut c = config(true);
    c.platform_certificate.as_mut().unwrap().private_key = keys().wechatpay_private.clone();
    assert_eq!(field_of(c), "emulator.platform_certificate.private_key");
    let mut c = config(true);
    c.platform_certificate.as_mut().unwrap().pem = "not a certificate".into();
    assert_eq!(field_of(c), "emulator.platform_certificate.pem");
    // Leading zeros and case do not matter.
    let mut c = config(true);
    c.platform_certificate.as_mut().unwrap().serial = format!("00{}", CERT_SERIAL.to_ascii_lowercase());
    WechatPayEmulator::start(c).unwrap().stop();
}

/// What a merchant's callback handler does: verify, then open the resource
/// with the APIv3 key and the sensitive fields with the merchant key.
fn open_callback(ring: &KeyRing, request: &HttpRequest) -> (Value, Value) {
    verify_with(ring, &request.headers, &request.body).unwrap();
    let envelope: Value = serde_json::from_slice(&request.body).unwrap();
    let resource = &envelope["resource"];
    let plain = ApiV3Key::new(API_V3_KEY)
        .unwrap()
        .decrypt(
            resource["nonce"].as_str().unwrap().as_bytes(),
            resource["associated_data"].as_str().unwrap_or("").as_bytes(),
            resource["ciphertext"].as_str().unwrap(),
        )
        .unwrap();
    let mut plaintext: Value = serde_json::from_slice(&plain).unwrap();
    let failed = decrypt_sensitive_fields(&mut plaintext, &mut |ct: &str| {
        oaep::decrypt(&keys().merchant_private, ct).map(|b| String::from_utf8(b).unwrap())
    });
    assert!(failed.is_empty(), "{failed:?}");
    (envelope, plaintext)
}

#[test]
fn callbacks_verify_and_decrypt_like_the_real_ones() {
    let emu = start(false);
    let sample = sample_user_card_create(Some("478515832665"), CARD_ID, OPENID);
    let ts = now();
    let request = emu
        .callback(CREATE_EVENT, "user_card", &sample, ts, CallbackTamper::None)
        .unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(find_header(&request.headers, "Content-Type"), Some("application/json"));
    assert!(find_header(&request.headers, "Request-ID").is_some());
    assert_eq!(
        find_header(&request.headers, "Wechatpay-Timestamp"),
        Some(ts.to_string().as_str())
    );
    assert_eq!(find_header(&request.headers, "Wechatpay-Serial"), Some(PUB_KEY_ID));

    let (envelope, plaintext) = open_callback(&public_key_ring(), &request);
    let members: Vec<&str> = envelope.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        members,
        [
            "id",
            "create_time",
            "resource_type",
            "event_type",
            "summary",
            "resource"
        ]
    );
    assert_eq!(envelope["id"].as_str().unwrap().len(), 36);
    assert!(envelope["create_time"].as_str().unwrap().ends_with("+08:00"));
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(envelope["create_time"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        ts
    );
    assert_eq!(envelope["event_type"], CREATE_EVENT);
    assert_eq!(envelope["resource_type"], "encrypt-resource");
    assert_eq!(envelope["summary"], "用户开通会员卡通知");
    assert_eq!(envelope["resource"]["original_type"], "user_card");
    assert_eq!(envelope["resource"]["associated_data"], "user_card");
    assert_eq!(envelope["resource"]["algorithm"], "AEAD_AES_256_GCM");
    // After both decryptions the merchant sees exactly the sample.
    assert_eq!(plaintext, sample);
    assert_eq!(plaintext["phone_number"], "13800000000");

    // On the wire the sensitive fields are RSA-OAEP ciphertext, not cleartext.
    let envelope_only: Value = serde_json::from_slice(&request.body).unwrap();
    let resource = &envelope_only["resource"];
    let sealed: Value = serde_json::from_slice(
        &ApiV3Key::new(API_V3_KEY)
            .unwrap()
            .decrypt(
                resource["nonce"].as_str().unwrap().as_bytes(),
                b"user_card",
                resource["ciphertext"].as_str().unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_ne!(sealed["phone_number"], "13800000000");
    assert_eq!(merchant_decrypt(&sealed["phone_number"]), "13800000000");
    assert_eq!(sealed["card_id"], CARD_ID);

    // MERCHANT_ALLOCATE sample without a code; an unknown event keeps a generic summary.
    let no_code = sample_user_card_create(None, CARD_ID, OPENID);
    assert!(no_code.get("user_card_code").is_none());
    let other = emu
        .callback(
            "BRAND_MEMBER_CARD_SP.SYNC_USER_POINT",
            "sync_user_point",
            &json!({"openid": OPENID}),
            ts,
            CallbackTamper::None,
        )
        .unwrap();
    let (env, plain) = open_callback(&public_key_ring(), &other);
    assert_eq!(env["resource"]["associated_data"], "sync_user_point");
    assert_eq!(plain, json!({"openid": OPENID}));

    // A non-string sensitive field is refused, naming it.
    let mut bad = sample.clone();
    bad["phone_number"] = json!(13800000000u64);
    let e = emu
        .callback(CREATE_EVENT, "user_card", &bad, ts, CallbackTamper::None)
        .unwrap_err();
    assert_eq!(e.field(), Some("/phone_number"));
}

#[test]
fn callbacks_are_delivered_to_a_loopback_merchant() {
    let emu = start(false);
    let received: Arc<Mutex<Vec<HttpRequest>>> = Arc::default();
    let sink = Arc::clone(&received);
    let merchant = HttpServer::start(move |req| {
        sink.lock().unwrap().push(req.clone());
        Action::Respond(HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"code":"SUCCESS","message":"OK"}"#.to_vec(),
        })
    })
    .unwrap();
    let sample = sample_user_card_create(Some("1"), CARD_ID, OPENID);
    let request = emu
        .callback(CREATE_EVENT, "user_card", &sample, now(), CallbackTamper::None)
        .unwrap();
    let url = format!("{}/wechatpay/notify", merchant.base_url());
    let answer = emu.send(&url, &request, Duration::from_secs(10)).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"{"code":"SUCCESS","message":"OK"}"#);
    let got = received.lock().unwrap().pop().unwrap();
    assert_eq!(got.target, "/wechatpay/notify");
    assert_eq!(got.body, request.body);
    for name in [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
        "Request-ID",
    ] {
        assert_eq!(
            find_header(&got.headers, name),
            find_header(&request.headers, name),
            "{name}"
        );
    }
    open_callback(&public_key_ring(), &got);

    let e = emu
        .send("http://example.com/notify", &request, Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    merchant.stop();
}

#[test]
fn each_callback_tamper_breaks_it_as_intended() {
    let emu = start(false);
    let sample = sample_user_card_create(Some("1"), CARD_ID, OPENID);
    let ring = public_key_ring();
    let ts = now();
    let make = |t| emu.callback(CREATE_EVENT, "user_card", &sample, ts, t).unwrap();

    let probe = make(CallbackTamper::SignTestProbe);
    let f = verify_with(&ring, &probe.headers, &probe.body).unwrap_err();
    assert!(f.probe, "{f}");
    assert!(matches!(f.reason, VerifyReason::BadEncoding | VerifyReason::Mismatch));
    assert!(
        find_header(&probe.headers, "Wechatpay-Signature")
            .unwrap()
            .starts_with("WECHATPAY/SIGNTEST/")
    );

    let stale = make(CallbackTamper::StaleTimestamp);
    assert_eq!(
        verify_with(&ring, &stale.headers, &stale.body).unwrap_err().reason,
        VerifyReason::ClockSkew
    );
    assert_eq!(
        find_header(&stale.headers, "Wechatpay-Timestamp"),
        Some((ts - 600).to_string().as_str())
    );
    assert!(verify::verify(&ring, &stale.headers, &stale.body, ts - 600, VerifyOptions::default()).is_ok());

    let bad_tag = make(CallbackTamper::BadTag);
    verify_with(&ring, &bad_tag.headers, &bad_tag.body).expect("the signature covers the spoiled ciphertext");
    let env: Value = serde_json::from_slice(&bad_tag.body).unwrap();
    let e = ApiV3Key::new(API_V3_KEY)
        .unwrap()
        .decrypt(
            env["resource"]["nonce"].as_str().unwrap().as_bytes(),
            b"user_card",
            env["resource"]["ciphertext"].as_str().unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptFailed);

    let wrong_serial = make(CallbackTamper::WrongSerial);
    let serial = find_header(&wrong_serial.headers, "Wechatpay-Serial").unwrap();
    assert!(serial.starts_with("PUB_KEY_ID_") && serial != PUB_KEY_ID, "{serial}");
    assert_eq!(
        verify_with(&ring, &wrong_serial.headers, &wrong_serial.body)
            .unwrap_err()
            .reason,
        VerifyReason::UnknownSerial
    );

    let body_byte = make(CallbackTamper::BodyByte);
    assert!(serde_json::from_slice::<Value>(&body_byte.body).is_ok(), "still JSON");
    assert_eq!(
        verify_with(&ring, &body_byte.headers, &body_byte.body)
            .unwrap_err()
            .reason,
        VerifyReason::Mismatch
    );

    let missing = make(CallbackTamper::MissingHeader);
    assert!(find_header(&missing.headers, "Wechatpay-Signature").is_none());
    assert_eq!(
        verify_with(&ring, &missing.headers, &missing.body).unwrap_err().reason,
        VerifyReason::HeaderMissing
    );

    // The untampered control passes all of it.
    open_callback(&ring, &make(CallbackTamper::None));
}

#[test]
fn certificate_mode_callbacks_are_signed_by_the_certificate() {
    let emu = start(true);
    let sample = sample_user_card_create(Some("1"), CARD_ID, OPENID);
    let request = emu
        .callback(CREATE_EVENT, "user_card", &sample, now(), CallbackTamper::None)
        .unwrap();
    assert_eq!(find_header(&request.headers, "Wechatpay-Serial"), Some(CERT_SERIAL));
    let (_, plaintext) = open_callback(&certificate_ring(), &request);
    assert_eq!(plaintext, sample);
    assert_eq!(
        verify_with(&public_key_ring(), &request.headers, &request.body)
            .unwrap_err()
            .reason,
        VerifyReason::UnknownSerial
    );
    let wrong = emu
        .callback(CREATE_EVENT, "user_card", &sample, now(), CallbackTamper::WrongSerial)
        .unwrap();
    let serial = find_header(&wrong.headers, "Wechatpay-Serial").unwrap();
    assert_ne!(serial, CERT_SERIAL);
    assert!(serial.bytes().all(|b| b.is_ascii_hexdigit()), "{serial}");
    assert_eq!(
        verify_with(&certificate_ring(), &wrong.headers, &wrong.body)
            .unwrap_err()
            .reason,
        VerifyReason::UnknownSerial
    );
}
