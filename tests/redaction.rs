//! Issue 7 item 3: secrets and personal data never appear in errors or in
//! `Debug` output. Known values — a private key PEM, an APIv3 key, a phone
//! number, a user name and signatures — are pushed through every
//! configuration, key, validation and protocol error path and through the
//! `Debug` of the public types, in Rust and through the C ABI (the `ffi-test`
//! exports driven from Rust), and every resulting text is searched for them.
//! Loopback only.

mod common;

use crate::common::emulator::{
    AlipayPlatformEmulator, CallbackTamper, EmulatorConfig, PlatformDriver, Tamper, WechatPayEmulator,
    sample_registration, sample_user_card_create,
};
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{self, AlipayPlus, Begin};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::x509::Certificate;
use cardbridge::error::{Error, RemoteDetail};
use cardbridge::http::{Exchange, HttpRequest};
use cardbridge::outbox::{Outgoing, Reconciled, Verdict};
use cardbridge::store::{Claim, MemoryStore, OutboxEntry, Store};
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{self, CallbackBegin, WechatPay};
use common::*;
use serde_json::{Value, json};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Once};

const API_V3: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const PHONE: &str = "13800000000";
const USER_NAME: &str = "Zhao Redactable";
const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const MCHID: &str = "1900000001";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
const NOTIFY: &str = "/v2/pds/memberships/notifyCardRegistration";
const T: &str = "2026-11-23T10:00:00.000+00:00";

fn private_pem() -> String {
    fixture("test_merchant_private.pem")
}

/// Searches texts for the known secrets; signatures seen during the test are added.
struct Secrets(Vec<String>);

impl Secrets {
    fn new() -> Self {
        let pem = private_pem();
        // The marker and every 24-character run of the key's Base64 lines.
        let mut list = vec!["BEGIN PRIVATE KEY".to_string()];
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            for chunk in line.as_bytes().chunks(24).filter(|c| c.len() == 24) {
                list.push(String::from_utf8(chunk.to_vec()).unwrap());
            }
        }
        list.extend([API_V3.to_string(), PHONE.to_string(), USER_NAME.to_string()]);
        Secrets(list)
    }

    /// Adds a signature (Base64, as sent) and its percent-encoded form's core.
    fn add_signature(&mut self, sig: &str) {
        assert!(sig.len() >= 40, "a real signature");
        self.0.push(sig[..40].to_string());
        self.0.push(sig[sig.len() - 40..].to_string());
    }

    fn check(&self, what: &str, text: &str) {
        for s in &self.0 {
            assert!(!text.contains(s.as_str()), "{what} leaks {s:?}:\n{text}");
        }
    }

    fn check_error(&self, what: &str, e: &Error) {
        self.check(what, &e.to_string());
        self.check(what, &format!("{e:?}"));
        self.check(what, e.field().unwrap_or_default());
        self.check(what, e.limit().unwrap_or_default());
    }

    fn check_debug(&self, what: &str, v: &impl Debug) {
        self.check(what, &format!("{v:?}"));
        self.check(what, &format!("{v:#?}"));
    }
}

// ---------------------------------------------------------------------------
// Log events (issue 10.1): every event this test binary emits, through the
// hook (what C, Python and C# see) and through the `log` facade, rendered in
// full, is searched for the secrets.
// ---------------------------------------------------------------------------

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct FacadeCapture;

impl log::Log for FacadeCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        struct Kv(String);
        impl<'k> log::kv::VisitSource<'k> for Kv {
            fn visit_pair(&mut self, k: log::kv::Key<'k>, v: log::kv::Value<'k>) -> Result<(), log::kv::Error> {
                self.0.push_str(&format!(" {k}={v}"));
                Ok(())
            }
        }
        let mut kv = Kv(format!("log {} {} {}", record.level(), record.target(), record.args()));
        record.key_values().visit(&mut kv).unwrap();
        EVENTS.lock().unwrap().push(kv.0);
    }
    fn flush(&self) {}
}

/// Starts capturing (once per process) every event at every level.
fn capture_events() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        cardbridge::obs::set_hook(
            cardbridge::obs::Level::Trace,
            Some(Box::new(|e: &cardbridge::obs::Event<'_>| {
                let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                EVENTS.lock().unwrap().push(format!(
                    "hook {} {} {} {} {}",
                    e.level.name(),
                    e.target,
                    e.message,
                    fields.join(" "),
                    e.fields_json()
                ));
            })),
        );
        log::set_logger(&FacadeCapture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The captured events containing every one of `parts`.
fn events_with(parts: &[&str]) -> usize {
    let events = EVENTS.lock().unwrap();
    events.iter().filter(|e| parts.iter().all(|p| e.contains(p))).count()
}

impl Secrets {
    fn check_events(&self) {
        let events = EVENTS.lock().unwrap().clone();
        assert!(!events.is_empty(), "events were captured");
        for e in &events {
            self.check("log event", e);
        }
    }
}

/// Every secret as a JSON value to put where it does not belong.
fn misplaced_values() -> Vec<Value> {
    vec![
        json!(private_pem()),
        json!(API_V3),
        json!(PHONE),
        json!(USER_NAME),
        json!([private_pem()]),
        json!({"k": private_pem()}),
        json!({ private_pem(): API_V3 }),
    ]
}

// ---------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------

fn alipay_base() -> Value {
    json!({"client_id": CLIENT_ID, "merchant_private_key": private_pem(),
           "platform_public_key": fixture("test_platform_public.pem")})
}

const ALIPAY_MEMBERS: [&str; 19] = [
    "base_url",
    "path_prefix",
    "client_id",
    "key_version",
    "merchant_private_key",
    "platform_public_key",
    "platform_public_keys_by_version",
    "sign_responses",
    "inbound_public_prefix",
    "max_clock_skew_ms",
    "time_offset_minutes",
    "connect_timeout_ms",
    "read_timeout_ms",
    "extra_ca_pem",
    "retry",
    "idempotency_retention_days",
    "claim_lease_ms",
    "store_path",
    "max_body_bytes",
];

/// The value to try for `member`. A store path is named in errors on purpose
/// (it is a location, not a secret), unless it cannot be one (control
/// characters, e.g. a pasted key): only such values are tried there, inside a
/// directory that does not exist.
fn store_path_value(member: &str, value: &Value) -> Option<Value> {
    match (member, value) {
        ("store_path", Value::String(s)) if s.contains('\n') => Some(json!(format!("/nonexistent-cardbridge-dir/{s}"))),
        ("store_path", Value::String(_)) => None,
        _ => Some(value.clone()),
    }
}

/// Builds an integration from JSON the way every binding does; the error, if any.
fn alipay_from_json(config: &Value) -> Option<Error> {
    let c = match alipayplus::Config::from_json(config.to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let store: Option<Arc<dyn Store>> = match c.store_path {
        Some(_) => None,
        None => Some(Arc::new(MemoryStore::new())),
    };
    AlipayPlus::new(c, store).err()
}

#[test]
fn alipay_configuration_errors_never_repeat_a_value() {
    let secrets = Secrets::new();
    let mut refused = 0;
    for member in ALIPAY_MEMBERS {
        for value in misplaced_values() {
            let mut c = alipay_base();
            c[member] = match store_path_value(member, &value) {
                Some(v) => v,
                None => continue,
            };
            if let Some(e) = alipay_from_json(&c) {
                secrets.check_error(&format!("config.{member} = {value:.20}"), &e);
                refused += 1;
            }
        }
    }
    for (path, value) in [
        ("retry", json!({"max_attempts": private_pem()})),
        ("retry", json!({ API_V3: 1 })),
        ("platform_public_keys_by_version", json!({"2": private_pem()})),
        ("platform_public_keys_by_version", json!({ private_pem(): API_V3 })),
        ("platform_public_keys_by_version", json!({ PHONE: USER_NAME })),
        ("merchant_private_key", json!(private_pem().replace('M', "!"))),
        (
            "merchant_private_key",
            json!(private_pem().replace("PRIVATE KEY", "PRIVATE KEX")),
        ),
        ("platform_public_key", json!(private_pem())),
    ] {
        let mut c = alipay_base();
        c[path] = value;
        let e = alipay_from_json(&c).expect("refused");
        secrets.check_error(path, &e);
    }
    // Unknown members named with a secret, and a secret as the whole document.
    let mut c = alipay_base();
    c[PHONE] = json!(1);
    c[private_pem()] = json!(1);
    secrets.check_error("unknown member", &alipay_from_json(&c).unwrap());
    for doc in [
        private_pem(),
        format!("\"{API_V3}\""),
        format!("{{\"client_id\": {PHONE}"),
    ] {
        let e = alipayplus::Config::from_json(doc.as_bytes()).unwrap_err();
        secrets.check_error("document", &e);
    }
    assert!(refused > 80, "most misplaced values are refused ({refused})");
}

fn wechat_base() -> Value {
    json!({"mchid": MCHID, "merchant_serial_no": SERIAL, "merchant_private_key": private_pem(),
           "api_v3_key": API_V3, "wechatpay_public_key_id": PUB_KEY_ID,
           "wechatpay_public_key": fixture("test_platform_public.pem")})
}

const WECHAT_MEMBERS: [&str; 21] = [
    "mchid",
    "merchant_serial_no",
    "merchant_private_key",
    "api_v3_key",
    "wechatpay_public_key_id",
    "wechatpay_public_key",
    "platform_certificates",
    "certificate_mode",
    "certificate_refresh_ms",
    "base_url",
    "backup_base_url",
    "confirm_card_id_in_body",
    "encrypt_custom_field_values",
    "callback_success_body",
    "connect_timeout_ms",
    "read_timeout_ms",
    "extra_ca_pem",
    "retry",
    "claim_lease_ms",
    "store_path",
    "max_body_bytes",
];

#[test]
fn wechat_configuration_errors_never_repeat_a_value() {
    let secrets = Secrets::new();
    let mut refused = 0;
    for member in WECHAT_MEMBERS {
        for value in misplaced_values() {
            let mut c = wechat_base();
            c[member] = match store_path_value(member, &value) {
                Some(v) => v,
                None => continue,
            };
            let result = wechatpay::Config::from_json(c.to_string().as_bytes()).and_then(|cfg| {
                let store: Option<Arc<dyn Store>> = match cfg.store_path {
                    Some(_) => None,
                    None => Some(Arc::new(MemoryStore::new())),
                };
                WechatPay::new(cfg, store)
            });
            if let Err(e) = result {
                secrets.check_error(&format!("config.{member}"), &e);
                refused += 1;
            }
        }
    }
    assert!(refused > 90, "most misplaced values are refused ({refused})");
    // The APIv3 key one byte short or long, and the key where the private key belongs.
    for (member, value) in [
        ("api_v3_key", json!(&API_V3[1..])),
        ("api_v3_key", json!(format!("{API_V3}x"))),
        ("merchant_private_key", json!(API_V3)),
        ("platform_certificates", json!([private_pem(), API_V3])),
    ] {
        let mut c = wechat_base();
        c[member] = value;
        let e = wechatpay::Config::from_json(c.to_string().as_bytes()).unwrap_err();
        secrets.check_error(member, &e);
    }
}

#[test]
fn key_and_certificate_errors_never_repeat_key_material() {
    let secrets = Secrets::new();
    let pem = private_pem();
    let body_start = pem.find('\n').unwrap() + 1;
    let mut corrupted = pem.clone();
    corrupted.replace_range(body_start + 30..body_start + 31, "!");
    let variants = [
        corrupted,
        pem.replace("PRIVATE KEY", "PRIVATE KEX"),
        pem.replace("-----END PRIVATE KEY-----", "-----END PUBLIC KEY-----"),
        pem[..pem.len() / 2].to_string(),
        pem.replace(
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nProc-Type: x\n",
        ),
        pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>() + "!",
        format!("{API_V3}{PHONE}"),
    ];
    for v in &variants {
        if let Err(e) = PrivateKey::from_pem(v) {
            secrets.check_error("private key", &e);
        }
        secrets.check_error("public key", &PublicKey::from_pem(v).unwrap_err());
        secrets.check_error("certificate", &Certificate::from_pem(v).unwrap_err());
        secrets.check_error("APIv3 key", &ApiV3Key::new(v.as_bytes()).unwrap_err());
    }
    secrets.check_error("public key from a private PEM", &PublicKey::from_pem(&pem).unwrap_err());
    let key = PrivateKey::from_pem(&pem).unwrap();
    secrets.check_debug("PrivateKey", &key);
    secrets.check_debug("PublicKey", &key.public_key());
    secrets.check_debug("ApiV3Key", &ApiV3Key::new(API_V3.as_bytes()).unwrap());
    secrets.check_debug("RequestSigner", &RequestSigner::new(MCHID, SERIAL, key).unwrap());
}

// ---------------------------------------------------------------------------
// Validation errors
// ---------------------------------------------------------------------------

/// Sets the member at JSON pointer `ptr`, adding it to its object if absent.
fn set(doc: &mut Value, ptr: &str, v: Value) {
    if let Some(slot) = doc.pointer_mut(ptr) {
        *slot = v;
        return;
    }
    let (parent, name) = ptr.rsplit_once('/').unwrap();
    doc.pointer_mut(parent).unwrap_or_else(|| panic!("{ptr}"))[name] = v;
}

fn issue_card() -> Value {
    json!({"appId": "2102010113769000", "customerBelongsTo": "TNG", "requestId": "RED-1",
           "customerId": "1236450862137570000", "externalCustomerId": "M-1",
           "registerDate": "2026-11-23T10:00:00+08:00",
           "cardFields": [{"fieldCode": "LEVEL", "fieldValue": "GOLD"}]})
}

/// `(message, body)` pairs that break one rule each with a secret as the value.
fn invalid_payloads() -> Vec<(&'static str, Value)> {
    let long_name = format!("{USER_NAME} {USER_NAME}");
    let mut cases = vec![];
    let mut put = |api: &'static str, base: Value, ptr: &str, v: Value| {
        let mut b = base;
        set(&mut b, ptr, v);
        cases.push((api, b));
    };
    let reg: Value = serde_json::from_slice(&sample_registration("RED-2")).unwrap();
    for (ptr, v) in [
        ("/customerId", json!(format!("{PHONE}{}", "9".repeat(60)))),
        ("/customerId", json!(["x", PHONE])),
        ("/requestId", json!({ "phone": PHONE })),
        ("/registrationFields/0/fieldValue", json!(long_name)),
        ("/registrationFields/3/fieldValue", json!(PHONE.parse::<u64>().unwrap())),
        ("/registrationFields/0/fieldCode", json!(PHONE.repeat(7))),
        ("/extendInfo", json!(USER_NAME.repeat(200))),
        ("/customerBelongsTo", json!(PHONE.parse::<u64>().unwrap())),
    ] {
        put("notifyCardRegistration", reg.clone(), ptr, v);
    }
    for (ptr, v) in [
        ("/externalCustomerId", json!(format!("{PHONE}@x"))),
        ("/externalCustomerId", json!(PHONE.repeat(7))),
        ("/registerDate", json!(PHONE)),
        ("/customerBelongsTo", json!(USER_NAME)),
        ("/cardFields/0/fieldCode", json!(USER_NAME)),
        ("/cardFields/0/fieldValue", json!({"value": PHONE, "currency": "SGD"})),
        (
            "/cardFields/0",
            json!({"fieldCode": "BALANCE", "fieldValue": {"value": -1, "currency": PHONE}}),
        ),
        (
            "/cardFields/0",
            json!({"fieldCode": "FIRST_NAME", "fieldValue": long_name}),
        ),
        ("/appId", json!(format!("{API_V3}{API_V3}"))),
    ] {
        put("issueCard", issue_card(), ptr, v);
    }
    cases.push((
        "inquireMemberAssets",
        json!({"cardNo": PHONE, "assetTypes": ["POINT", USER_NAME]}),
    ));
    cases.push((
        "inquireMemberAssets",
        json!({"cardNo": "1", "assetTypes": ["POINT"], "queryConditions": format!("{{{PHONE}")}),
    ));
    cases.push((
        "updateCardDetail",
        json!({"cardNo": "1", "requestTime": PHONE, "cardFields": []}),
    ));
    cases.push((
        "inquireCardDetailResponse",
        json!({"result": {"resultCode": PHONE, "resultStatus": USER_NAME,
        "resultMessage": "x"}}),
    ));
    cases.push((
        "inquireMemberAssetsResponse",
        json!({"result": {"resultCode": "SUCCESS", "resultStatus": "S",
        "resultMessage": "ok"}, "assetDetails": [{"assetType": "POINT", "assetValue": format!("{{{PHONE}")}]}),
    ));
    cases
}

#[test]
fn validation_errors_never_repeat_a_value() {
    let secrets = Secrets::new();
    for (api, body) in invalid_payloads() {
        for dir in [Direction::Inbound, Direction::Outbound] {
            if let Err(e) = model::normalize(api, body.to_string().as_bytes(), dir) {
                secrets.check_error(&format!("{api} {dir:?}"), &e);
            }
        }
        let e = model::normalize(api, body.to_string().as_bytes(), Direction::Outbound).unwrap_err();
        assert!(e.field().is_some(), "{api}: {e}");
    }
    // Syntax errors and duplicates with secrets around them.
    for raw in [
        format!(r#"{{"customerId":"{PHONE}","customerId":"{USER_NAME}"}}"#),
        format!(r#"{{"customerId":"{PHONE}" "x":1}}"#),
        format!(r#"{{"customerId":"{PHONE}\q"}}"#),
        format!("{{\"{USER_NAME}\":1,\"{USER_NAME}\":2}}"),
        format!(r#"["{API_V3}""#),
    ] {
        let e = model::normalize("notifyCardRegistration", raw.as_bytes(), Direction::Inbound).unwrap_err();
        secrets.check_error(&raw, &e);
    }
    let e = model::normalize(PHONE, b"{}", Direction::Inbound).unwrap_err();
    secrets.check_error("unknown message name", &e);
    // The typed request with personal data in every field: Debug hides it.
    let mut v = issue_card();
    v["customerId"] = json!(PHONE);
    v["externalCustomerId"] = json!(PHONE);
    v["externalCardNo"] = json!(PHONE);
    v["extendInfo"] = json!(format!("{{\"name\":\"{USER_NAME}\"}}"));
    v["mobile"] = json!(PHONE);
    v["cardFields"] = json!([{"fieldCode": "USER_NAME", "fieldValue": USER_NAME},
                             {"fieldCode": "BALANCE", "fieldValue": {"value": 13800000, "currency": "SGD", "owner": USER_NAME}},
                             {"fieldCode": "MOBILE_PHONE", "fieldValue": PHONE, "note": PHONE}]);
    let request: IssueCardRequest = model::parse(v.to_string().as_bytes(), Direction::Outbound).unwrap();
    secrets.check_debug("IssueCardRequest", &request);
    secrets.check_debug("CardField", &request.card_fields);
}

// ---------------------------------------------------------------------------
// Alipay+ inbound and issueCard: answers, errors and Debug
// ---------------------------------------------------------------------------

fn registration_with_pii(rid: &str) -> Vec<u8> {
    let mut reg: Value = serde_json::from_slice(&sample_registration(rid)).unwrap();
    reg["registrationFields"][0]["fieldValue"] = json!(USER_NAME);
    reg["registrationFields"][3]["fieldValue"] = json!(PHONE);
    reg["customerId"] = json!(PHONE);
    reg["contactPhone"] = json!(PHONE);
    reg["extendInfo"] = json!(format!("{{\"referrer\":\"{USER_NAME}\"}}"));
    serde_json::to_vec(&reg).unwrap()
}

fn signature_of(headers: &[(String, String)], name: &str) -> String {
    let v = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap();
    let sig = v.rsplit("signature=").next().unwrap().trim_matches('"');
    percent_decode(sig)
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn alipay_inbound_answers_errors_and_debug_never_show_secrets() {
    capture_events();
    let mut secrets = Secrets::new();
    let ap = AlipayPlus::new(config(None), Some(Arc::new(MemoryStore::new()))).unwrap();
    let driver = PlatformDriver::new(platform_key(), CLIENT_ID, "1");
    secrets.check_debug("AlipayPlus", &ap);
    secrets.check_debug("Config", &config(None));
    secrets.check_debug("PlatformDriver", &driver);

    // A valid call full of personal data.
    let req = driver
        .request(NOTIFY, &registration_with_pii("RED-IN-1"), T, Tamper::None)
        .unwrap();
    secrets.add_signature(&signature_of(&req.headers, "Signature"));
    secrets.check_debug("HttpRequest", &req);
    let header = req.headers.iter().find(|(n, _)| n == "Signature").unwrap().1.clone();
    secrets.check_debug(
        "ParsedSignature",
        &alipayplus::signature::parse_header(&header).unwrap(),
    );
    let begin = ap.begin(&req, now_ms());
    secrets.check_debug("Begin::Decide", &begin);
    let Begin::Decide(mut call) = begin else {
        panic!("host not asked")
    };
    secrets.check_debug("PendingCall", &call);
    secrets.check_debug("InboundRequest", call.request());
    // An invalid decision mentioning the member: the error does not repeat it.
    for decision in [
        json!({"extendInfo": USER_NAME.repeat(200)}),
        json!({"result": {"resultStatus": PHONE, "resultCode": "SUCCESS"}}),
        json!({"result": {"resultStatus": "F", "resultCode": USER_NAME}}),
        json!({"extendInfo": PHONE.parse::<u64>().unwrap()}),
    ] {
        let e = ap
            .finish(&mut call, decision.to_string().as_bytes(), now_ms())
            .unwrap_err();
        secrets.check_error("decision", &e);
    }
    let e = ap
        .finish(&mut call, format!("{{\"x\":\"{PHONE}\"").as_bytes(), now_ms())
        .unwrap_err();
    secrets.check_error("decision JSON", &e);
    let resp = ap.finish(&mut call, b"{}", now_ms()).unwrap();
    secrets.add_signature(&signature_of(&resp.headers, "Signature"));
    secrets.check_debug("HttpResponse", &resp);
    secrets.check_debug("Exchange", &Exchange::Answered(resp.clone()));
    let e = ap.finish(&mut call, b"{}", now_ms()).unwrap_err();
    secrets.check_error("finished twice", &e);

    // Refused calls: the answer's message names the field, never the value.
    let mut refusals = vec![];
    for (api, body) in invalid_payloads().into_iter().filter(|(a, _)| !a.ends_with("Response")) {
        if api == "issueCard" {
            continue;
        }
        refusals.push(driver.request(
            &PlatformDriver::target_for(api),
            body.to_string().as_bytes(),
            T,
            Tamper::None,
        ));
    }
    for tamper in [
        Tamper::BodyByte,
        Tamper::WrongKey,
        Tamper::Unsigned,
        Tamper::WrongClientId,
        Tamper::MalformedHeader,
    ] {
        refusals.push(driver.request(NOTIFY, &registration_with_pii("RED-IN-2"), T, tamper));
    }
    refusals.push(driver.request(
        NOTIFY,
        format!(r#"{{"customerId":"{PHONE}","customerId":"1"}}"#).as_bytes(),
        T,
        Tamper::None,
    ));
    refusals.push(driver.request(
        NOTIFY,
        &[registration_with_pii("RED-IN-3"), vec![b' '; 1 << 20]].concat(),
        T,
        Tamper::None,
    ));
    for req in refusals {
        let req = req.unwrap();
        let resp = match ap.begin(&req, now_ms()) {
            Begin::Respond(r) => r,
            Begin::Decide(_) => panic!("an invalid call reached the host"),
        };
        secrets.check("refusal body", &String::from_utf8_lossy(&resp.body));
        secrets.check_debug("refusal", &resp);
    }
    // The answer and the refusals were logged, through the hook and the facade.
    for via in ["hook", "log"] {
        assert_eq!(
            events_with(&[via, "inbound answer", "request_id=RED-IN-1", "result=S"]),
            1
        );
        assert!(events_with(&[via, "answered without the host", "result_code=ACCESS_DENIED"]) >= 5);
    }
    secrets.check_events();
}

#[test]
fn issue_card_results_and_store_records_keep_personal_data_out_of_debug() {
    capture_events();
    let secrets = Secrets::new();
    let emu = AlipayPlatformEmulator::start(EmulatorConfig::new(
        platform_key(),
        merchant_key().public_key(),
        CLIENT_ID,
    ))
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();
    let reg = model::parse(&registration_with_pii("RED-IC-1"), Direction::Inbound).unwrap();
    let mut issue = IssueCardRequest::from_registration(
        &reg,
        PHONE.into(),
        "2026-11-23T10:00:00+08:00".into(),
        vec![
            model::CardField::text("FIRST_NAME", "Zhao"),
            model::CardField::text("MOBILE_PHONE", PHONE),
        ],
    );
    issue.extend_info = Some(format!("{{\"n\":\"{USER_NAME}\"}}"));
    let card = ap.issue_card(&issue).unwrap();
    secrets.check_debug("IssuedCard", &card);
    assert!(
        !format!("{card:?}").contains(&card.card_no),
        "the card number is hidden"
    );
    let entries = store.outbox_list(&Default::default()).unwrap();
    assert!(!entries.is_empty());
    for e in &entries {
        secrets.check_debug("OutboxEntry", e);
    }
    // Invalid requests: errors name the field.
    let mut bad = issue.clone();
    bad.external_customer_id = format!("{PHONE}#");
    secrets.check_error("issueCard", &ap.issue_card(&bad).unwrap_err());
    assert_eq!(
        events_with(&[
            "hook INFO cardbridge::outbox outbound attempt",
            "RED-IC-1",
            "outcome=succeeded"
        ]),
        1
    );
    secrets.check_events();

    // Store records and outbox verdicts hold bodies: only sizes are shown.
    let body = registration_with_pii("RED-ST-1");
    let Claim::Claimed(ticket) = store.claim_inbound("k", "f", 1, 1000).unwrap() else {
        panic!()
    };
    store.complete_inbound("k", ticket.token, &body, 2).unwrap();
    secrets.check_debug("Claim::Done", &store.claim_inbound("k", "f", 3, 1000).unwrap());
    secrets.check_debug("Completion", &store.complete_inbound("k", 99, &body, 4).unwrap());
    let entry = OutboxEntry::new("id".into(), "kind", "POST", "/x".into(), body.clone(), "fp".into(), 1);
    secrets.check_debug("OutboxEntry", &entry);
    let remote = RemoteDetail {
        code: "PARAM_ERROR".into(),
        ..Default::default()
    };
    secrets.check_debug(
        "Verdict",
        &[
            Verdict::Success {
                result: body.clone(),
                reference: None,
                note: "S".into(),
            },
            Verdict::Failed {
                result: body.clone(),
                remote,
                note: "F".into(),
            },
        ],
    );
    secrets.check_debug(
        "Reconciled",
        &Reconciled::Applied {
            result: body.clone(),
            outcome: "card EFFECTIVE".into(),
        },
    );
    secrets.check_debug(
        "Outgoing",
        &Outgoing {
            method: "POST".into(),
            url: "http://127.0.0.1:1/x".into(),
            headers: vec![("Signature".into(), API_V3.into())],
            body,
        },
    );
}

// ---------------------------------------------------------------------------
// WeChat Pay
// ---------------------------------------------------------------------------

fn wechat_setup() -> (WechatPayEmulator, WechatPay) {
    let s = common::wechat::setup();
    let wp = common::wechat::wechat(&s);
    (s.emu, wp)
}

#[test]
fn wechat_events_answers_signatures_and_errors_never_show_secrets() {
    capture_events();
    let mut secrets = Secrets::new();
    let (emu, wp) = wechat_setup();
    secrets.check_debug("WechatPay", &wp);
    secrets.check_debug("WechatPayEmulator", &emu);

    // A signed request: Debug hides the signature.
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let signed = signer.sign("POST", "/v3/x", PHONE.as_bytes(), 1_700_000_000).unwrap();
    let sig = signed
        .authorization
        .split("signature=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    secrets.add_signature(sig);
    secrets.check_debug("SignedRequest", &signed);

    // A card-opening callback with the phone number and a name.
    let mut plain = sample_user_card_create(Some("478515832601"), CARD_ID, OPENID);
    plain["phone_number"] = json!(PHONE);
    plain["user_information"]["common_field_list"][0]["value"] = json!(USER_NAME);
    let now = chrono::Utc::now().timestamp();
    let req = emu
        .callback(
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
            "user_card",
            &plain,
            now,
            CallbackTamper::None,
        )
        .unwrap();
    secrets.add_signature(&signature_of(&req.headers, "Wechatpay-Signature"));
    secrets.check_debug("callback HttpRequest", &req);
    let begin = wp.callback_begin(&req, now * 1000);
    secrets.check_debug("CallbackBegin", &begin);
    let CallbackBegin::Handle(mut event) = begin else {
        panic!("host not asked")
    };
    assert_eq!(event.resource["phone_number"], PHONE, "the host sees cleartext");
    secrets.check_debug("CallbackEvent", &event);
    let resp = wp.callback_finish(&mut event, false, "", now * 1000).unwrap();
    secrets.check_debug("callback answer", &resp);
    for tamper in [
        CallbackTamper::BodyByte,
        CallbackTamper::BadTag,
        CallbackTamper::WrongSerial,
        CallbackTamper::SignTestProbe,
        CallbackTamper::StaleTimestamp,
    ] {
        let req = emu
            .callback(
                "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
                "user_card",
                &plain,
                now,
                tamper,
            )
            .unwrap();
        let CallbackBegin::Respond(r) = wp.callback_begin(&req, now * 1000) else {
            panic!("{tamper:?} reached the host")
        };
        secrets.check("refusal body", &String::from_utf8_lossy(&r.body));
        let failure = wechatpay::verify::verify(
            &KeyRing::new(),
            &req.headers,
            &req.body,
            now,
            wechatpay::VerifyOptions::default(),
        )
        .unwrap_err();
        secrets.check_debug("VerifyFailure", &failure);
        secrets.check_error("VerifyFailure", &failure.to_error());
    }

    // Confirm: the answer's Debug hides the decrypted card; invalid input errors name fields.
    emu.add_user_card("478515832601", CARD_ID, OPENID, "1004");
    let input = json!({"user_card_code": "478515832601", "card_id": CARD_ID, "brand_id": "1004",
                       "openid": OPENID, "phone_number": PHONE,
                       "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": USER_NAME}]},
                       "user_card_confirm_state": "CREATE_CARD_SUCCESS"});
    let answer = wp.confirm(input.to_string().as_bytes()).unwrap();
    secrets.check_debug("ApiAnswer", &answer);
    let card = wp
        .get_user_card(
            json!({"user_card_code": "478515832601", "brand_id": "1004", "card_id": CARD_ID, "openid": OPENID})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(card.json["phone_number"], PHONE, "decrypted for the host");
    secrets.check_debug("ApiAnswer (read-back)", &card);
    let prepared = wechatpay::model::prepare_confirm(
        input.to_string().as_bytes(),
        Default::default(),
        &mut |_: &cardbridge::validate::Path, s: &str| Ok(s.to_string()),
    )
    .unwrap();
    secrets.check_debug("PreparedRequest", &prepared);
    for (ptr, v) in [
        ("/phone_number", json!(PHONE.repeat(30))),
        ("/openid", json!(PHONE.repeat(20))),
        ("/card_picture_url", json!(format!("ftp://{PHONE}"))),
        ("/brand_id", json!(USER_NAME.repeat(3))),
        (
            "/user_information/common_field_list/0/value",
            json!(PHONE.parse::<u64>().unwrap()),
        ),
        ("/user_card_confirm_state", json!(USER_NAME)),
        ("/pickup_time", json!(PHONE)),
        ("/phone_number", Value::Null),
    ] {
        let mut bad = input.clone();
        set(&mut bad, ptr, v);
        bad["user_card_code"] = json!("478515832602");
        let e = wp.confirm(bad.to_string().as_bytes()).unwrap_err();
        secrets.check_error(ptr, &e);
        assert!(e.field().is_some(), "{ptr}: {e}");
    }
    let e = wp
        .confirm(format!(r#"{{"phone_number":"{PHONE}","phone_number":"1"}}"#).as_bytes())
        .unwrap_err();
    secrets.check_error("duplicate", &e);
    assert!(events_with(&["hook WARN cardbridge::callback callback answer", "result=redeliver"]) >= 1);
    assert!(events_with(&["hook", "wechatpay.confirm", "outbound attempt", "outcome=succeeded"]) >= 1);
    secrets.check_events();
}

// ---------------------------------------------------------------------------
// The same through the C ABI
// ---------------------------------------------------------------------------

mod c_abi {
    use super::*;
    use cardbridge::ffi::alipayplus::*;
    use cardbridge::ffi::bytes::*;
    use cardbridge::ffi::error::*;
    use cardbridge::ffi::keys::*;
    use cardbridge::ffi::store::*;
    use cardbridge::ffi::wechatpay::*;
    use std::ffi::c_char;
    use std::ptr;

    type Accessor = extern "C" fn(*const cardbridge_error, *mut c_char, usize, *mut usize) -> cardbridge_result;

    fn text(accessor: Accessor, err: *const cardbridge_error) -> String {
        let mut n = 0;
        let _ = accessor(err, ptr::null_mut(), 0, &mut n);
        let mut buf = vec![0 as c_char; n.max(1)];
        let mut written = 0;
        assert_eq!(
            accessor(err, buf.as_mut_ptr(), buf.len(), &mut written),
            cardbridge_result::Ok
        );
        String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
    }

    /// Every text an error object gives a C host, then frees it.
    fn error_texts(err: *mut cardbridge_error) -> String {
        assert!(!err.is_null(), "the call failed without an error object");
        let accessors: [Accessor; 7] = [
            cardbridge_error_message,
            cardbridge_error_field,
            cardbridge_error_limit,
            cardbridge_error_remote_code,
            cardbridge_error_remote_message,
            cardbridge_error_remote_status,
            cardbridge_error_remote_detail,
        ];
        let all = accessors.iter().map(|a| text(*a, err)).collect::<Vec<_>>().join("\n");
        cardbridge_error_free(err);
        all
    }

    fn failed(secrets: &Secrets, what: &str, call: impl FnOnce(*mut *mut cardbridge_error) -> cardbridge_result) {
        let mut err = ptr::null_mut();
        let rc = call(&mut err);
        assert_ne!(rc, cardbridge_result::Ok, "{what}: accepted");
        secrets.check(what, &error_texts(err));
    }

    fn response_body(resp: *mut cardbridge_http_response) -> String {
        let mut body = ptr::null();
        let mut len = 0;
        let mut err = ptr::null_mut();
        assert_eq!(
            cardbridge_http_response_body(resp, &mut body, &mut len, &mut err),
            cardbridge_result::Ok
        );
        // SAFETY: the library returned `len` bytes at `body`, valid while `resp` lives.
        let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(body, len) }).into_owned();
        cardbridge_http_response_free(resp);
        text
    }

    #[test]
    fn configuration_key_and_validation_errors_through_the_c_abi() {
        let secrets = Secrets::new();
        for (member, value) in [
            ("connect_timeout_ms", json!(private_pem())),
            ("retry", json!({"max_attempts": API_V3})),
            ("client_id", json!(format!("{PHONE}\r\nSet-Cookie: {USER_NAME}"))),
            ("base_url", json!(format!("http://{USER_NAME}:{API_V3}@192.0.2.2"))),
            ("platform_public_key", json!(private_pem())),
            ("merchant_private_key", json!(private_pem().replace('M', "!"))),
            (
                "store_path",
                json!(format!("/nonexistent-cardbridge-dir/{}", private_pem())),
            ),
            (PHONE, json!(1)),
        ] {
            let mut c = alipay_base();
            c[member] = value;
            let c = c.to_string();
            failed(&secrets, &format!("alipayplus_new {member}"), |err| {
                let mut ap = ptr::null();
                cardbridge_alipayplus_new(c.as_ptr().cast(), c.len(), ptr::null(), &mut ap, err)
            });
        }
        for (member, value) in [
            ("api_v3_key", json!(private_pem())),
            ("mchid", json!(API_V3)),
            ("read_timeout_ms", json!(API_V3)),
            ("wechatpay_public_key", json!(private_pem())),
            ("platform_certificates", json!([private_pem()])),
            (API_V3, json!(PHONE)),
        ] {
            let mut c = wechat_base();
            c[member] = value;
            let c = c.to_string();
            failed(&secrets, &format!("wechatpay_new {member}"), |err| {
                let mut wp = ptr::null();
                cardbridge_wechatpay_new(c.as_ptr().cast(), c.len(), ptr::null(), &mut wp, err)
            });
        }
        let pem = private_pem();
        for bad in [
            pem.replace('M', "!"),
            pem.replace("PRIVATE KEY", "PRIVATE KEX"),
            API_V3.to_string(),
        ] {
            failed(&secrets, "private_key_from_pem", |err| {
                let mut k = ptr::null();
                cardbridge_private_key_from_pem(bad.as_ptr().cast(), bad.len(), &mut k, err)
            });
        }
        failed(&secrets, "public_key_from_pem", |err| {
            let mut k = ptr::null();
            cardbridge_public_key_from_pem(pem.as_ptr().cast(), pem.len(), &mut k, err)
        });
        let path = format!("/nonexistent-cardbridge-dir/{pem}");
        failed(&secrets, "store_open_sqlite", |err| {
            let mut s = ptr::null();
            cardbridge_store_open_sqlite(path.as_ptr().cast(), path.len(), &mut s, err)
        });
        for (api, body) in invalid_payloads() {
            let body = body.to_string();
            failed(&secrets, &format!("validate {api}"), |err| {
                let mut out = cardbridge_bytes {
                    data: ptr::null_mut(),
                    len: 0,
                };
                cardbridge_alipayplus_validate(
                    api.as_ptr().cast(),
                    api.len(),
                    body.as_ptr().cast(),
                    body.len(),
                    2,
                    &mut out,
                    err,
                )
            });
        }
        let reg = String::from_utf8(registration_with_pii("RED-C-1")).unwrap();
        let date = || "2026-11-23T10:00:00+08:00".to_string();
        for (customer, date, fields, options) in [
            (PHONE.repeat(7), date(), "[]".to_string(), "{}".to_string()),
            ("M-1".into(), PHONE.to_string(), "[]".into(), "{}".into()),
            (
                "M-1".into(),
                date(),
                json!([{"fieldCode": "FIRST_NAME", "fieldValue": USER_NAME.repeat(2)}]).to_string(),
                "{}".into(),
            ),
            ("M-1".into(), date(), format!("[{PHONE}"), "{}".into()),
            // The optional members: too long, not a date, not JSON.
            (
                "M-1".into(),
                date(),
                "[]".into(),
                json!({"externalCardNo": PHONE.repeat(7)}).to_string(),
            ),
            (
                "M-1".into(),
                date(),
                "[]".into(),
                json!({"expireDate": PHONE}).to_string(),
            ),
            (
                "M-1".into(),
                date(),
                "[]".into(),
                json!({"extendInfo": USER_NAME.repeat(700)}).to_string(),
            ),
            ("M-1".into(), date(), "[]".into(), format!("{{\"extendInfo\":{PHONE}")),
        ] {
            failed(&secrets, "build_issue_card", |err| {
                let mut out = cardbridge_bytes {
                    data: ptr::null_mut(),
                    len: 0,
                };
                cardbridge_alipayplus_build_issue_card(
                    reg.as_ptr().cast(),
                    reg.len(),
                    customer.as_ptr().cast(),
                    customer.len(),
                    date.as_ptr().cast(),
                    date.len(),
                    fields.as_ptr().cast(),
                    fields.len(),
                    options.as_ptr().cast(),
                    options.len(),
                    &mut out,
                    err,
                )
            });
        }
    }

    #[test]
    fn inbound_refusals_decisions_and_confirm_errors_through_the_c_abi() {
        let secrets = Secrets::new();
        let config = alipay_base().to_string();
        let mut store = ptr::null();
        let mut err = ptr::null_mut();
        assert_eq!(cardbridge_store_new_memory(&mut store, &mut err), cardbridge_result::Ok);
        let mut ap = ptr::null();
        assert_eq!(
            cardbridge_alipayplus_new(config.as_ptr().cast(), config.len(), store, &mut ap, &mut err),
            cardbridge_result::Ok
        );
        let driver = PlatformDriver::new(platform_key(), CLIENT_ID, "1");
        let begin = |req: &HttpRequest| {
            let headers: Vec<cardbridge_header> = req
                .headers
                .iter()
                .map(|(n, v)| cardbridge_header {
                    name: n.as_ptr().cast(),
                    name_len: n.len(),
                    value: v.as_ptr().cast(),
                    value_len: v.len(),
                })
                .collect();
            let (mut resp, mut call, mut err) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            let rc = cardbridge_alipayplus_begin(
                ap,
                req.method.as_ptr().cast(),
                req.method.len(),
                req.target.as_ptr().cast(),
                req.target.len(),
                headers.as_ptr(),
                headers.len(),
                req.body.as_ptr(),
                req.body.len(),
                now_ms(),
                &mut resp,
                &mut call,
                &mut err,
            );
            assert_eq!(rc, cardbridge_result::Ok);
            (resp, call)
        };
        // Refusals: their bodies name fields, never values.
        for (api, body) in invalid_payloads()
            .into_iter()
            .filter(|(a, _)| !a.ends_with("Response") && *a != "issueCard")
        {
            let req = driver
                .request(
                    &PlatformDriver::target_for(api),
                    body.to_string().as_bytes(),
                    T,
                    Tamper::None,
                )
                .unwrap();
            let (resp, call) = begin(&req);
            assert!(call.is_null(), "{api}: an invalid call reached the host");
            secrets.check(api, &response_body(resp));
        }
        // A valid call: invalid decisions are errors that repeat nothing.
        let req = driver
            .request(NOTIFY, &registration_with_pii("RED-C-2"), T, Tamper::None)
            .unwrap();
        let (resp, call) = begin(&req);
        assert!(resp.is_null() && !call.is_null());
        for decision in [
            json!({"extendInfo": USER_NAME.repeat(200)}).to_string(),
            json!({"result": {"resultStatus": PHONE, "resultCode": "SUCCESS"}}).to_string(),
            format!("{{\"x\":\"{PHONE}\""),
        ] {
            failed(&secrets, "finish", |err| {
                let mut resp = ptr::null_mut();
                cardbridge_alipayplus_finish(
                    ap,
                    call,
                    decision.as_ptr().cast(),
                    decision.len(),
                    now_ms(),
                    &mut resp,
                    err,
                )
            });
        }
        cardbridge_alipayplus_call_free(call);
        cardbridge_alipayplus_free(ap);

        // WeChat confirm with invalid personal data.
        let (emu, _) = wechat_setup();
        let mut c = wechat_base();
        c["base_url"] = json!(emu.base_url());
        let c = c.to_string();
        let mut wp = ptr::null();
        assert_eq!(
            cardbridge_wechatpay_new(c.as_ptr().cast(), c.len(), store, &mut wp, &mut err),
            cardbridge_result::Ok
        );
        for input in [
            json!({"user_card_code": "478515832603", "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID,
                   "phone_number": PHONE.repeat(30), "user_card_confirm_state": "CREATE_CARD_SUCCESS"}),
            json!({"user_card_code": "478515832604", "card_id": CARD_ID, "brand_id": USER_NAME.repeat(3),
                   "openid": OPENID, "phone_number": PHONE, "user_card_confirm_state": "CREATE_CARD_SUCCESS"}),
        ] {
            let input = input.to_string();
            failed(&secrets, "wechatpay_confirm", |err| {
                let mut out = cardbridge_bytes {
                    data: ptr::null_mut(),
                    len: 0,
                };
                cardbridge_wechatpay_confirm(wp, input.as_ptr().cast(), input.len(), &mut out, err)
            });
        }
        cardbridge_wechatpay_free(wp);
        cardbridge_store_free(store);
    }
}

// ---------------------------------------------------------------------------
// WeChat Pay typed inputs (issue 12.5): personal data in every member that can
// hold it, and in unknown members; Debug shows none of it.
// ---------------------------------------------------------------------------

#[test]
fn wechat_typed_inputs_debug_hides_personal_data() {
    use cardbridge::wechatpay::inputs::*;
    let secrets = Secrets::new();
    let info = json!({"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": USER_NAME}],
                      "custom_field_list": [{"name": "q", "user_chosen_values": [USER_NAME]}]});
    let base = json!({"user_card_code": "478515832665", "card_id": "c", "brand_id": "1004", "openid": PHONE,
                      "phone_number": PHONE, "user_information": info, "note": USER_NAME,
                      "attach": USER_NAME, "pickup_time": "2020-05-20T13:29:35+08:00",
                      "date_information": {"type": "PERMANENT"}, "invalid_reason": "left",
                      "out_request_no": "R-1", "cell": "15_1", "record_id": "REC", "exchange_coupon_template_id": "t",
                      "state": "POINT_EXCHANGE_COUPON_SUCCESS", "point_balance": 1, "user_card_confirm_state": "CREATE_CARD_SUCCESS"});
    fn read<T: serde::de::DeserializeOwned>(v: &Value) -> T {
        serde_json::from_value(v.clone()).unwrap()
    }
    secrets.check_debug("ConfirmInput", &read::<ConfirmInput>(&base));
    secrets.check_debug("PointsSyncInput", &read::<PointsSyncInput>(&base));
    secrets.check_debug("GetUserCardInput", &read::<GetUserCardInput>(&base));
    secrets.check_debug("UpdateUserCardInput", &read::<UpdateUserCardInput>(&base));
    secrets.check_debug("ListUserCardsInput", &read::<ListUserCardsInput>(&base));
    secrets.check_debug("InvalidateUserCardInput", &read::<InvalidateUserCardInput>(&base));
    secrets.check_debug("ImportUserCardInput", &read::<ImportUserCardInput>(&base));
    secrets.check_debug("ImportUserCardByPhoneInput", &read::<ImportUserCardByPhoneInput>(&base));
    secrets.check_debug("CreatePreAuthTokenInput", &read::<CreatePreAuthTokenInput>(&base));
    secrets.check_debug("CreateUserFeedInput", &read::<CreateUserFeedInput>(&base));
    secrets.check_debug("ConfirmExchangeCouponInput", &read::<ConfirmExchangeCouponInput>(&base));
}
