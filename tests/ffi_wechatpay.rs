//! The WeChat Pay exports (integration, callback events) driven from Rust
//! through raw pointers, the way C, ctypes and P/Invoke call them:
//! configuration errors, the card-opening callback begin → event → finish
//! with duplicates, refusals and redelivery, confirm through the outbox with
//! faults, validation detail and resume after a crash, the rest of the
//! user-card lifecycle, certificate mode, NULL parameters. WeChat Pay itself
//! is the in-process emulator module of the `cardbridge` binary.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{
    CallbackTamper, PlatformCertificate, WechatEmulatorConfig, WechatFault, WechatPayEmulator, sample_user_card_create,
};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::x509::Certificate;
use cardbridge::ffi::bytes::*;
use cardbridge::ffi::error::*;
use cardbridge::ffi::store::*;
use cardbridge::ffi::wechatpay::*;
use cardbridge::http::{HttpRequest, HttpResponse};
use serde_json::{Value, json};
use std::ffi::c_char;
use std::ptr;

const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const MCHID: &str = "1900000001";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const API_V3: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
const BRAND_ID: &str = "1004";
const EVENT_TYPE: &str = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn emulator_fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/wechatpay/emulator/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A unique temporary path for a SQLite file.
fn temp_db(tag: &str) -> std::path::PathBuf {
    let mut b = [0u8; 8];
    cardbridge::crypto::random_bytes(&mut b);
    let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::env::temp_dir().join(format!("cardbridge-{tag}-{name}.db"))
}

fn empty_bytes() -> cardbridge_bytes {
    cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    }
}

/// Copies a library buffer out and frees it.
fn take_bytes(mut b: cardbridge_bytes) -> Vec<u8> {
    assert!(!b.data.is_null());
    // SAFETY: filled by the library with `len` bytes plus a NUL.
    let (v, nul) = unsafe { (std::slice::from_raw_parts(b.data, b.len).to_vec(), *b.data.add(b.len)) };
    assert_eq!(nul, 0, "text outputs end with a NUL");
    cardbridge_bytes_free(&mut b);
    v
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Everything an error object says, read through the accessors.
#[derive(Debug)]
struct ErrorInfo {
    code: cardbridge_result,
    message: String,
    field: String,
    limit: String,
    remote_code: String,
    http_status: u16,
}

fn text(
    accessor: extern "C" fn(*const cardbridge_error, *mut c_char, usize, *mut usize) -> cardbridge_result,
    err: *const cardbridge_error,
) -> String {
    let mut n = 0;
    assert_eq!(
        accessor(err, ptr::null_mut(), 0, &mut n),
        cardbridge_result::InsufficientSize
    );
    let mut buf = vec![0 as c_char; n];
    let mut written = 0;
    assert_eq!(accessor(err, buf.as_mut_ptr(), n, &mut written), cardbridge_result::Ok);
    String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
}

/// Reads and frees the error a failed call left in `err`.
fn take_error(err: *mut cardbridge_error) -> ErrorInfo {
    assert!(!err.is_null(), "error_out was not filled");
    let info = ErrorInfo {
        code: cardbridge_error_code(err),
        message: text(cardbridge_error_message, err),
        field: text(cardbridge_error_field, err),
        limit: text(cardbridge_error_limit, err),
        remote_code: text(cardbridge_error_remote_code, err),
        http_status: cardbridge_error_http_status(err),
    };
    cardbridge_error_free(err);
    info
}

/// Panics with the error detail unless `rc` is OK.
fn check(rc: cardbridge_result, err: *mut cardbridge_error) {
    if rc != cardbridge_result::Ok {
        panic!("call failed: {:?}", take_error(err));
    }
    assert!(err.is_null(), "error_out untouched on success");
}

/// Runs a fallible call expected to fail with `expected` and returns the detail.
fn expect_error(
    expected: cardbridge_result,
    call: impl FnOnce(*mut *mut cardbridge_error) -> cardbridge_result,
) -> ErrorInfo {
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = call(&mut err);
    let info = take_error(err);
    assert_eq!(rc, expected, "{info:?}");
    assert_eq!(info.code, expected);
    info
}

// ---------------------------------------------------------------------------
// Emulator and integration through the exports
// ---------------------------------------------------------------------------

fn emulator_config(api_v3_key: &str) -> Value {
    json!({
        "wechatpay_private_key": fixture("test_platform_private.pem"),
        "public_key_id": PUB_KEY_ID,
        "merchant_public_key": fixture("test_merchant_public.pem"),
        "mchid": MCHID,
        "merchant_serial_no": SERIAL,
        "api_v3_key": api_v3_key,
    })
}

/// The emulator for `config` (the members of [`emulator_config`], optionally
/// `platform_certificate` {pem, private_key}).
fn start_emulator(config: &Value) -> (WechatPayEmulator, String) {
    let text = |k: &str| config[k].as_str().unwrap().to_string();
    let platform_certificate = config.get("platform_certificate").map(|c| PlatformCertificate {
        serial: Certificate::from_pem(c["pem"].as_str().unwrap())
            .unwrap()
            .serial()
            .to_string(),
        pem: c["pem"].as_str().unwrap().to_string(),
        private_key: PrivateKey::from_pem(c["private_key"].as_str().unwrap()).unwrap(),
    });
    let emu = WechatPayEmulator::start(WechatEmulatorConfig {
        wechatpay_private_key: PrivateKey::from_pem(&text("wechatpay_private_key")).unwrap(),
        public_key_id: text("public_key_id"),
        merchant_public_key: PublicKey::from_pem(&text("merchant_public_key")).unwrap(),
        mchid: text("mchid"),
        merchant_serial_no: text("merchant_serial_no"),
        api_v3_key: ApiV3Key::new(text("api_v3_key").as_bytes()).unwrap(),
        platform_certificate,
    })
    .unwrap();
    let url = emu.base_url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (emu, url)
}

fn wechat_config(base_url: &str, max_attempts: u32) -> Value {
    json!({
        "mchid": MCHID,
        "merchant_serial_no": SERIAL,
        "merchant_private_key": fixture("test_merchant_private.pem"),
        "api_v3_key": API_V3,
        "wechatpay_public_key_id": PUB_KEY_ID,
        "wechatpay_public_key": fixture("test_platform_public.pem"),
        "base_url": base_url,
        "connect_timeout_ms": 2000,
        "read_timeout_ms": 2000,
        "retry": {"max_attempts": max_attempts, "base_delay_ms": 5, "max_delay_ms": 20, "deadline_ms": 30000},
    })
}

fn new_wechat(config: &Value, store: *const cardbridge_store) -> *const cardbridge_wechatpay {
    let config = config.to_string();
    let mut wp: *const cardbridge_wechatpay = ptr::null();
    let mut err = ptr::null_mut();
    check(
        cardbridge_wechatpay_new(config.as_ptr().cast(), config.len(), store, &mut wp, &mut err),
        err,
    );
    assert!(!wp.is_null());
    wp
}

fn memory_store() -> *const cardbridge_store {
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    check(cardbridge_store_new_memory(&mut store, &mut err), err);
    store
}

/// A WeChat emulator and an integration pointed at it, freed on drop.
struct Wx {
    emu: WechatPayEmulator,
    wp: *const cardbridge_wechatpay,
}

impl Drop for Wx {
    fn drop(&mut self) {
        cardbridge_wechatpay_free(self.wp);
    }
}

fn setup(max_attempts: u32) -> Wx {
    let (emu, url) = start_emulator(&emulator_config(API_V3));
    let store = memory_store();
    let wp = new_wechat(&wechat_config(&url, max_attempts), store);
    // The integration keeps its own reference.
    cardbridge_store_free(store);
    Wx { emu, wp }
}

fn add_card(emu: &WechatPayEmulator, code: &str) {
    emu.add_user_card(code, CARD_ID, OPENID, BRAND_ID);
}

fn emulator_card(emu: &WechatPayEmulator, code: &str) -> Value {
    emu.user_card(code).expect("the emulator holds the card")
}

fn confirm_hits(emu: &WechatPayEmulator, code: &str) -> usize {
    emu.confirm_hits(code)
}

fn hits(emu: &WechatPayEmulator, prefix: &str) -> usize {
    emu.hits(prefix)
}

/// Queues a fault given as the control API spells it (`{"fault":"status",...}`).
fn push_fault(emu: &WechatPayEmulator, fault: &str) {
    let v = json_of(fault.as_bytes());
    let text = |k: &str| v[k].as_str().map(str::to_string);
    emu.push_fault(match v["fault"].as_str().unwrap() {
        "status" => WechatFault::Status {
            status: u16::try_from(v["status"].as_u64().unwrap()).unwrap(),
            code: text("code").unwrap_or_else(|| "SYSTEM_ERROR".into()),
            message: text("message").unwrap_or_else(|| "系统错误".into()),
        },
        "accepted" => WechatFault::Accepted202,
        "signtest_probe" => WechatFault::SignTestProbe,
        "stale_timestamp" => WechatFault::StaleTimestamp,
        "bad_signature" => WechatFault::BadSignature,
        "unsigned" => WechatFault::Unsigned,
        "drop" => WechatFault::DropAfterProcessing,
        other => panic!("no such fault in this test: {other}"),
    });
}

fn sample(code: &str) -> Vec<u8> {
    sample_user_card_create(Some(code), CARD_ID, OPENID)
        .to_string()
        .into_bytes()
}

/// A callback as WeChat Pay sends it, minted by the emulator.
fn mint(emu: &WechatPayEmulator, plaintext: &[u8], now_unix: i64, tamper: CallbackTamper) -> HttpRequest {
    emu.callback(EVENT_TYPE, "user_card", &json_of(plaintext), now_unix, tamper)
        .unwrap()
}

/// Mints a callback signed now.
fn callback(emu: &WechatPayEmulator, plaintext: &[u8], tamper: CallbackTamper) -> HttpRequest {
    mint(emu, plaintext, now(), tamper)
}

/// Reads a response handle through its accessors and frees it.
fn take_response(resp: *mut cardbridge_http_response) -> HttpResponse {
    assert!(!resp.is_null());
    let view = |p: *const c_char, n: usize| {
        // SAFETY: views borrowed from `resp`.
        String::from_utf8(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec()).unwrap()
    };
    let headers = (0..cardbridge_http_response_header_count(resp))
        .map(|i| {
            let mut h = cardbridge_header {
                name: ptr::null(),
                name_len: 0,
                value: ptr::null(),
                value_len: 0,
            };
            let mut err = ptr::null_mut();
            check(cardbridge_http_response_header(resp, i, &mut h, &mut err), err);
            (view(h.name, h.name_len), view(h.value, h.value_len))
        })
        .collect();
    let (mut b, mut n) = (ptr::null(), 0);
    let mut err = ptr::null_mut();
    check(cardbridge_http_response_body(resp, &mut b, &mut n, &mut err), err);
    let parts = HttpResponse {
        status: cardbridge_http_response_status(resp),
        headers,
        // SAFETY: borrowed from `resp`.
        body: unsafe { std::slice::from_raw_parts(b, n) }.to_vec(),
    };
    cardbridge_http_response_free(resp);
    parts
}

fn code_of(r: &HttpResponse) -> String {
    json_of(&r.body)["code"].as_str().unwrap_or_default().to_string()
}

enum Began {
    /// The answer and its signature diagnosis (JSON text, empty when none).
    Respond(HttpResponse, String),
    Handle(*mut cardbridge_wechatpay_event),
}

/// The diagnosis text of a response, read with the error-text convention:
/// size query, truncated copy, full copy.
fn diagnosis_of(resp: *const cardbridge_http_response) -> String {
    let mut n = 0;
    let rc = cardbridge_http_response_diagnosis(resp, ptr::null_mut(), 0, &mut n);
    assert_eq!(rc, cardbridge_result::InsufficientSize);
    if n > 8 {
        let mut small = [0 as c_char; 8];
        let mut needed = 0;
        let rc = cardbridge_http_response_diagnosis(resp, small.as_mut_ptr(), small.len(), &mut needed);
        assert_eq!((rc, needed), (cardbridge_result::InsufficientSize, n));
        assert_eq!(small[7], 0, "truncated and NUL-terminated");
    }
    let mut buf = vec![0 as c_char; n];
    let mut written = 0;
    let rc = cardbridge_http_response_diagnosis(resp, buf.as_mut_ptr(), n, &mut written);
    assert_eq!((rc, written), (cardbridge_result::Ok, n - 1));
    String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
}

fn begin(wp: *const cardbridge_wechatpay, req: &HttpRequest) -> Began {
    let views: Vec<cardbridge_header> = req
        .headers
        .iter()
        .map(|(n, v)| cardbridge_header {
            name: n.as_ptr().cast(),
            name_len: n.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        })
        .collect();
    // Sentinels prove both outputs are written.
    let mut resp = ptr::dangling_mut::<cardbridge_http_response>();
    let mut event = ptr::dangling_mut::<cardbridge_wechatpay_event>();
    let mut err = ptr::null_mut();
    check(
        cardbridge_wechatpay_callback_begin(
            wp,
            req.method.as_ptr().cast(),
            req.method.len(),
            req.target.as_ptr().cast(),
            req.target.len(),
            views.as_ptr(),
            views.len(),
            req.body.as_ptr(),
            req.body.len(),
            now() * 1000,
            &mut resp,
            &mut event,
            &mut err,
        ),
        err,
    );
    match (resp.is_null(), event.is_null()) {
        (false, true) => {
            let diagnosis = diagnosis_of(resp);
            Began::Respond(take_response(resp), diagnosis)
        }
        (true, false) => Began::Handle(event),
        _ => panic!("begin must set exactly one of response_out / event_out"),
    }
}

fn expect_handle(b: Began) -> *mut cardbridge_wechatpay_event {
    match b {
        Began::Handle(e) => e,
        Began::Respond(r, _) => panic!(
            "expected an event for the host, got {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
    }
}

fn expect_respond(b: Began) -> HttpResponse {
    expect_respond_diagnosed(b).0
}

fn expect_respond_diagnosed(b: Began) -> (HttpResponse, String) {
    match b {
        Began::Respond(r, d) => (r, d),
        Began::Handle(e) => {
            cardbridge_wechatpay_event_free(e);
            panic!("the host was asked to handle an event that should have been answered")
        }
    }
}

fn event_json(event: *const cardbridge_wechatpay_event) -> Value {
    let (mut p, mut n) = (ptr::null(), 0);
    let mut err = ptr::null_mut();
    check(cardbridge_wechatpay_event_json(event, &mut p, &mut n, &mut err), err);
    // SAFETY: borrowed from `event`, which is alive.
    json_of(unsafe { std::slice::from_raw_parts(p, n) })
}

fn finish(
    wp: *const cardbridge_wechatpay,
    event: *mut cardbridge_wechatpay_event,
    accepted: bool,
    reason: &str,
) -> HttpResponse {
    let mut resp = ptr::null_mut();
    let mut err = ptr::null_mut();
    check(
        cardbridge_wechatpay_callback_finish(
            wp,
            event,
            accepted,
            reason.as_ptr().cast(),
            reason.len(),
            now() * 1000,
            &mut resp,
            &mut err,
        ),
        err,
    );
    take_response(resp)
}

type ClientCall = extern "C" fn(
    *const cardbridge_wechatpay,
    *const c_char,
    usize,
    *mut cardbridge_bytes,
    *mut *mut cardbridge_error,
) -> cardbridge_result;

/// Runs one of the four client calls; `Ok(answer JSON)` or the error detail.
fn call(f: ClientCall, wp: *const cardbridge_wechatpay, input: &Value) -> Result<Value, ErrorInfo> {
    let input = input.to_string();
    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    let rc = f(wp, input.as_ptr().cast(), input.len(), &mut out, &mut err);
    if rc == cardbridge_result::Ok {
        assert!(err.is_null());
        Ok(json_of(&take_bytes(out)))
    } else {
        assert!(out.data.is_null(), "no output on failure");
        let info = take_error(err);
        assert_eq!(info.code, rc);
        Err(info)
    }
}

fn confirm_input(code: &str) -> Value {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": BRAND_ID, "openid": OPENID,
           "phone_number": "13800000000",
           "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
           "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[test]
fn integration_refuses_a_16_byte_api_v3_key() {
    let mut config = wechat_config("http://127.0.0.1:9", 1);
    config["api_v3_key"] = json!("testMchAPIv3Key0");
    let config = config.to_string();
    let mut wp: *const cardbridge_wechatpay = ptr::dangling();
    let info = expect_error(cardbridge_result::InvalidConfig, |err| {
        cardbridge_wechatpay_new(config.as_ptr().cast(), config.len(), ptr::null(), &mut wp, err)
    });
    assert!(
        info.message.contains("api_v3_key") && info.message.contains("32"),
        "{}",
        info.message
    );
    assert_eq!(wp, ptr::dangling(), "output untouched on failure");
}

#[test]
fn certificate_mode_emulator_takes_the_serial_from_the_certificate() {
    let mut config = emulator_config(API_V3);
    config["platform_certificate"] = json!({"pem": emulator_fixture("platform_cert.pem"),
                                            "private_key": emulator_fixture("platform_private.pem")});
    let (emu, url) = start_emulator(&config);
    let mut c = wechat_config(&url, 2);
    for k in ["wechatpay_public_key_id", "wechatpay_public_key"] {
        c.as_object_mut().unwrap().remove(k);
    }
    c["certificate_mode"] = json!(true);
    let store = memory_store();
    let wp = new_wechat(&c, store);
    cardbridge_store_free(store);
    // A callback signed with the certificate: its serial triggers the download.
    let req = callback(&emu, &sample("7007"), CallbackTamper::None);
    let event = expect_handle(begin(wp, &req));
    cardbridge_wechatpay_event_free(event);
    assert_eq!(hits(&emu, "/v3/certificates"), 1);
    let mut count = 0usize;
    let mut err = ptr::null_mut();
    check(cardbridge_wechatpay_refresh_certificates(wp, &mut count, &mut err), err);
    assert_eq!(count, 1);
    cardbridge_wechatpay_free(wp);
    drop(emu);
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

#[test]
fn card_opening_callback_reaches_the_host_once_with_the_phone_in_cleartext() {
    let wx = setup(2);
    let req = callback(&wx.emu, &sample("478515832665"), CallbackTamper::None);
    assert_eq!(req.method, "POST");
    let wire = String::from_utf8_lossy(&req.body);
    assert!(!wire.contains("13800000000"), "the phone is encrypted on the wire");

    let event = expect_handle(begin(wx.wp, &req));
    let v = event_json(event);
    assert_eq!(v["kind"], "USER_CARD.CREATE");
    assert_eq!(v["event_type"], EVENT_TYPE);
    assert!(!v["id"].as_str().unwrap().is_empty());
    assert_eq!(v["resource"]["phone_number"], "13800000000", "decrypted for the host");
    assert_eq!(v["resource"]["user_card_code"], "478515832665");
    assert_eq!(
        v["resource"]["user_information"]["common_field_list"][0]["value"],
        "张三"
    );
    assert_eq!(v["undecryptable"], json!([]));

    let answer = finish(wx.wp, event, true, "");
    assert_eq!((answer.status, code_of(&answer).as_str()), (200, "SUCCESS"));
    // The event is not consumed by finish; a second finish is refused.
    let mut resp = ptr::dangling_mut::<cardbridge_http_response>();
    let info = expect_error(cardbridge_result::AlreadyUsed, |err| {
        cardbridge_wechatpay_callback_finish(wx.wp, event, true, ptr::null(), 0, now() * 1000, &mut resp, err)
    });
    assert_eq!(info.field, "event");
    assert_eq!(resp, ptr::dangling_mut(), "no response on failure");
    cardbridge_wechatpay_event_free(event);

    // WeChat redelivers the same notification: acknowledged without the host.
    let dup = expect_respond(begin(wx.wp, &req));
    assert_eq!((dup.status, code_of(&dup).as_str()), (200, "SUCCESS"));
}

#[test]
fn probes_stale_and_forged_callbacks_are_answered_without_an_event() {
    let wx = setup(2);
    let plain = sample("2002");
    for (tamper, status) in [
        (CallbackTamper::SignTestProbe, 401),
        (CallbackTamper::StaleTimestamp, 401),
        (CallbackTamper::WrongSerial, 401),
        (CallbackTamper::BodyByte, 401),
        (CallbackTamper::BadTag, 400),
        (CallbackTamper::MissingHeader, 400),
    ] {
        let req = callback(&wx.emu, &plain, tamper);
        let r = expect_respond(begin(wx.wp, &req));
        assert_eq!((r.status, code_of(&r).as_str()), (status, "FAIL"), "tamper {tamper:?}");
    }
    // The untampered callback still reaches the host: refusals claimed nothing.
    let event = expect_handle(begin(wx.wp, &callback(&wx.emu, &plain, CallbackTamper::None)));
    cardbridge_wechatpay_event_free(event);
}

#[test]
fn freeing_an_unfinished_event_lets_the_redelivery_reach_the_host() {
    let wx = setup(1);
    let req = callback(&wx.emu, &sample("1001"), CallbackTamper::None);
    let event = expect_handle(begin(wx.wp, &req));
    // While the host holds it, a redelivery is told to come back later.
    let busy = expect_respond(begin(wx.wp, &req));
    assert_eq!((busy.status, code_of(&busy).as_str()), (500, "FAIL"));
    cardbridge_wechatpay_event_free(event);

    let event = expect_handle(begin(wx.wp, &req));
    // The host asks for redelivery explicitly.
    let r = finish(wx.wp, event, false, "CRM busy");
    assert_eq!((r.status, code_of(&r).as_str()), (500, "FAIL"));
    assert_eq!(json_of(&r.body)["message"], "CRM busy");
    cardbridge_wechatpay_event_free(event);

    let event = expect_handle(begin(wx.wp, &req));
    let r = finish(wx.wp, event, true, "");
    assert_eq!(r.status, 200);
    cardbridge_wechatpay_event_free(event);
    assert_eq!(expect_respond(begin(wx.wp, &req)).status, 200);
}

// ---------------------------------------------------------------------------
// Confirm and the rest of the lifecycle
// ---------------------------------------------------------------------------

#[test]
fn confirm_opens_the_card_once() {
    let wx = setup(2);
    add_card(&wx.emu, "478515832665");
    assert_eq!(emulator_card(&wx.emu, "478515832665")["user_card_state"], "UNACTIVATED");
    let answer = call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("478515832665")).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["user_card_state"], "EFFECTIVE");
    assert_eq!(answer["body"]["phone_number"], "13800000000", "decrypted answer field");
    assert_eq!(answer["undecryptable"], json!([]));
    assert_eq!(confirm_hits(&wx.emu, "478515832665"), 1);
    assert_eq!(wx.emu.confirms_applied(), 1);
    let card = emulator_card(&wx.emu, "478515832665");
    assert_eq!(card["user_card_state"], "EFFECTIVE");
    assert_eq!(
        card["phone_number"], "13800000000",
        "the emulator decrypted what was sent"
    );
    assert_eq!(card["user_information"]["common_field_list"][0]["value"], "Li Lei");

    let again = call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("478515832665")).unwrap();
    assert_eq!(again["body"]["user_card_state"], "EFFECTIVE");
    assert_eq!(confirm_hits(&wx.emu, "478515832665"), 1, "answered from the outbox");

    let mut other = confirm_input("478515832665");
    other["level"] = json!("gold");
    let e = call(cardbridge_wechatpay_confirm, wx.wp, &other).unwrap_err();
    assert_eq!(e.code, cardbridge_result::IdempotencyConflict);
    assert_eq!(confirm_hits(&wx.emu, "478515832665"), 1);
}

#[test]
fn invalid_confirm_names_the_field_and_sends_nothing() {
    let wx = setup(2);
    let mut bad = confirm_input("3003");
    bad["card_color"] = json!("yellow");
    let e = call(cardbridge_wechatpay_confirm, wx.wp, &bad).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::Validation, "confirm.card_color")
    );
    let mut long = confirm_input("3004");
    long["phone_number"] = json!("1".repeat(215));
    let e = call(cardbridge_wechatpay_confirm, wx.wp, &long).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str(), e.limit.as_str()),
        (cardbridge_result::Validation, "confirm.phone_number", "214")
    );
    let input = b"{not json";
    let mut out = empty_bytes();
    expect_error(cardbridge_result::InvalidJson, |err| {
        cardbridge_wechatpay_confirm(wx.wp, input.as_ptr().cast(), input.len(), &mut out, err)
    });
    assert_eq!(hits(&wx.emu, "/v3"), 0);
}

#[test]
fn emulator_faults_are_retried_and_final_answers_are_not() {
    // Refusals that applied nothing (a 500 before processing, 202) are re-sent: two confirms
    // reach the platform. Answers that may hide an applied confirm (a bad or missing signature,
    // a dropped answer) are followed by a read-back, which finds the card EFFECTIVE: one confirm.
    for (fault, confirms) in [
        (
            r#"{"fault":"status","status":500,"code":"SYSTEM_ERROR","message":"系统错误"}"#,
            2,
        ),
        (r#"{"fault":"accepted"}"#, 2),
        (r#"{"fault":"signtest_probe"}"#, 1),
        (r#"{"fault":"stale_timestamp"}"#, 1),
        (r#"{"fault":"bad_signature"}"#, 1),
        (r#"{"fault":"unsigned"}"#, 1),
        (r#"{"fault":"drop"}"#, 1),
    ] {
        let wx = setup(3);
        add_card(&wx.emu, "4004");
        push_fault(&wx.emu, fault);
        let answer = call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("4004"))
            .unwrap_or_else(|e| panic!("{fault}: {e:?}"));
        assert_eq!(answer["body"]["user_card_state"], "EFFECTIVE", "{fault}");
        assert_eq!(confirm_hits(&wx.emu, "4004"), confirms, "{fault}");
        assert_eq!(wx.emu.confirms_applied(), 1, "{fault}");
    }
    let wx = setup(3);
    add_card(&wx.emu, "4005");
    push_fault(
        &wx.emu,
        r#"{"fault":"status","status":400,"code":"PARAM_ERROR","message":"参数错误"}"#,
    );
    let e = call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("4005")).unwrap_err();
    assert_eq!(e.code, cardbridge_result::RemoteFailed);
    assert_eq!((e.remote_code.as_str(), e.http_status), ("PARAM_ERROR", 400));
    assert_eq!(confirm_hits(&wx.emu, "4005"), 1, "a 4xx is final");

    // Nothing was left queued by the final answer.
    add_card(&wx.emu, "4006");
    call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("4006")).unwrap();
    assert_eq!(confirm_hits(&wx.emu, "4006"), 1);
}

#[test]
fn resume_pending_reports_a_confirm_interrupted_before_a_restart() {
    let (emu, url) = start_emulator(&emulator_config(API_V3));
    add_card(&emu, "5005");
    let db = temp_db("ffi-wechat-resume");
    let path = db.display().to_string();
    let open = || {
        let mut store: *const cardbridge_store = ptr::null();
        let mut err = ptr::null_mut();
        check(
            cardbridge_store_open_sqlite(path.as_ptr().cast(), path.len(), &mut store, &mut err),
            err,
        );
        store
    };
    {
        let store = open();
        let wp = new_wechat(&wechat_config(&url, 4), store);
        cardbridge_store_free(store);
        // Four attempts and the card read-back all meet a 503: outcome unknown.
        for _ in 0..5 {
            push_fault(&emu, r#"{"fault":"status","status":503,"code":"SERVICE_UNAVAILABLE"}"#);
        }
        let e = call(cardbridge_wechatpay_confirm, wp, &confirm_input("5005")).unwrap_err();
        assert_eq!(e.code, cardbridge_result::RemoteUnknown, "{e:?}");
        cardbridge_wechatpay_free(wp);
    }
    assert_eq!(emu.confirms_applied(), 0);

    let store = open();
    let wp = new_wechat(&wechat_config(&url, 4), store);
    cardbridge_store_free(store);
    let resume = || {
        let mut out = empty_bytes();
        let mut err = ptr::null_mut();
        check(cardbridge_wechatpay_resume_pending(wp, &mut out, &mut err), err);
        json_of(&take_bytes(out))
    };
    let report = resume();
    let entries = report.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report}");
    assert_eq!(entries[0]["ok"], true, "{report}");
    assert!(!entries[0]["id"].as_str().unwrap().is_empty());
    assert_eq!(entries[0]["answer"]["body"]["user_card_state"], "EFFECTIVE");
    assert_eq!(emu.confirms_applied(), 1);
    assert_eq!(resume(), json!([]), "nothing left pending");

    cardbridge_wechatpay_free(wp);
    drop(emu);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

#[test]
fn get_update_and_points_sync_reach_the_emulator() {
    let wx = setup(2);
    add_card(&wx.emu, "6006");
    let got = call(
        cardbridge_wechatpay_get_user_card,
        wx.wp,
        &json!({"user_card_code": "6006", "brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID}),
    )
    .unwrap();
    assert_eq!(got["body"]["user_card_code"], "6006");
    assert_eq!(got["body"]["user_card_state"], "UNACTIVATED");
    let updated = call(
        cardbridge_wechatpay_update_user_card,
        wx.wp,
        &json!({"user_card_code": "6006", "card_id": CARD_ID, "brand_id": BRAND_ID, "openid": OPENID,
                "level": "gold", "phone_number": "13900000000"}),
    )
    .unwrap();
    assert_eq!(updated["body"]["level"], "gold");
    assert_eq!(updated["body"]["phone_number"], "13900000000");
    let card = emulator_card(&wx.emu, "6006");
    assert_eq!(
        (card["level"].as_str(), card["phone_number"].as_str()),
        (Some("gold"), Some("13900000000"))
    );
    let synced = call(
        cardbridge_wechatpay_sync_user_points,
        wx.wp,
        &json!({"out_request_no": "P1", "brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID,
                "user_card_code": "6006", "point_balance": 120}),
    )
    .unwrap();
    assert_eq!(synced["status"], 204);
    assert_eq!(hits(&wx.emu, "/v3/brand/partner/card-member/user-points/sync"), 1);
    // A card the emulator does not hold: a final 4xx.
    let e = call(
        cardbridge_wechatpay_get_user_card,
        wx.wp,
        &json!({"user_card_code": "404", "brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID}),
    )
    .unwrap_err();
    assert_eq!((e.code, e.http_status), (cardbridge_result::RemoteFailed, 404));
    // Without a public-key-mode integration, certificates are a configuration error.
    let mut count = 7usize;
    expect_error(cardbridge_result::InvalidConfig, |err| {
        cardbridge_wechatpay_refresh_certificates(wx.wp, &mut count, err)
    });
    assert_eq!(count, 7);
}

// ---------------------------------------------------------------------------
// NULL parameters
// ---------------------------------------------------------------------------

#[test]
fn null_parameters_are_refused_with_their_name() {
    let wx = setup(1);
    fn null_field(call: impl FnOnce(*mut *mut cardbridge_error) -> cardbridge_result) -> String {
        expect_error(cardbridge_result::NullParameter, call).field
    }
    let mut out = empty_bytes();
    let mut wp: *const cardbridge_wechatpay = ptr::null();
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_new(ptr::null(), 5, ptr::null(), &mut wp, err)),
        "config_json"
    );
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_confirm(ptr::null(), b"{}".as_ptr().cast(), 2, &mut out, err)),
        "wechatpay"
    );
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_confirm(wx.wp, b"{}".as_ptr().cast(), 2, ptr::null_mut(), err)),
        "answer_out"
    );
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_resume_pending(wx.wp, ptr::null_mut(), err)),
        "report_out"
    );
    let mut resp: *mut cardbridge_http_response = ptr::null_mut();
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_callback_begin(
            wx.wp,
            b"POST".as_ptr().cast(),
            4,
            b"/".as_ptr().cast(),
            1,
            ptr::null(),
            0,
            ptr::null(),
            0,
            now() * 1000,
            &mut resp,
            ptr::null_mut(),
            err
        )),
        "event_out"
    );
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_callback_finish(
            wx.wp,
            ptr::null_mut(),
            true,
            ptr::null(),
            0,
            now() * 1000,
            &mut resp,
            err
        )),
        "event"
    );
    let (mut p, mut n) = (ptr::null(), 0usize);
    assert_eq!(
        null_field(|err| cardbridge_wechatpay_event_json(ptr::null(), &mut p, &mut n, err)),
        "event"
    );
    // NULL error_out is allowed; outputs stay untouched on failure.
    assert_eq!(
        cardbridge_wechatpay_new(ptr::null(), 5, ptr::null(), &mut wp, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
    assert!(wp.is_null() && resp.is_null() && out.data.is_null());
    // Frees of NULL are no-ops.
    cardbridge_wechatpay_event_free(ptr::null_mut());
    cardbridge_wechatpay_free(ptr::null());
}

// ---------------------------------------------------------------------------
// The brand family (src/ffi/brand.rs)
// ---------------------------------------------------------------------------

#[test]
fn brand_family_exports_reach_the_emulator_and_check_their_pointers() {
    use cardbridge::ffi::brand::*;
    let wx = setup(2);
    let template = json!({"out_request_no": "T-FFI", "brand_id": BRAND_ID, "appid": "wxea9c30890f48d5ae",
        "card_type": "NORMAL", "card_title": "Gold", "card_color": "#FFFF00",
        "card_picture_url": "https://wxpaylogo.qpic.cn/x/0", "code_mode": "SYSTEM_ALLOCATE", "code_type": "QR_CODE",
        "benefits": "b", "notify_url": "https://merchant.example/cb", "valid_date_information": {"type": "PERMANENT"}});
    let created = call(cardbridge_wechatpay_create_card_template, wx.wp, &template).unwrap();
    let card_id = created["body"]["card_id"].as_str().unwrap().to_string();
    let listed = call(
        cardbridge_wechatpay_list_card_templates,
        wx.wp,
        &json!({"brand_id": BRAND_ID}),
    )
    .unwrap();
    assert_eq!(listed["body"]["total_count"], 1);
    // An import with an encrypted phone, decrypted in the answer.
    let imported = call(
        cardbridge_wechatpay_import_user_card,
        wx.wp,
        &json!({"brand_id": BRAND_ID, "card_id": card_id, "openid": OPENID, "user_card_code": "FFI-1",
                "phone_number": "13800000000", "date_information": {"type": "PERMANENT"},
                "pickup_time": "2024-05-20T13:29:35+08:00"}),
    )
    .unwrap();
    assert_eq!(imported["body"]["phone_number"], "13800000000");
    assert_eq!(emulator_card(&wx.emu, "FFI-1")["phone_number"], "13800000000");
    // Validation errors carry the path and limit through the boundary.
    let e = call(
        cardbridge_wechatpay_list_user_cards,
        wx.wp,
        &json!({"brand_id": BRAND_ID, "openid": OPENID, "limit": 21}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str(), e.limit.as_str()),
        (cardbridge_result::Validation, "listUserCards.limit", "20")
    );
    // NULL pointers are refused, naming the parameter.
    let input = "{}";
    let mut out = empty_bytes();
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_wechatpay_terminate_membership_activity(ptr::null(), input.as_ptr().cast(), 2, &mut out, err)
    });
    assert_eq!(e.field, "wechatpay");
    expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_wechatpay_create_user_feed(wx.wp, input.as_ptr().cast(), 2, ptr::null_mut(), err)
    });
    // validate: the request, unsent; options may be NULL.
    let op_name = "removeCardTemplate";
    let (op, opl) = (op_name.as_ptr().cast::<c_char>(), op_name.len());
    let body = json!({"brand_id": BRAND_ID, "card_id": "c1"}).to_string();
    let options = r#"{"card_template_removal":"delete"}"#;
    let mut err = ptr::null_mut();
    check(
        cardbridge_wechatpay_validate(
            op,
            opl,
            body.as_ptr().cast(),
            body.len(),
            options.as_ptr().cast(),
            options.len(),
            &mut out,
            &mut err,
        ),
        err,
    );
    assert_eq!(json_of(&take_bytes(out))["method"], "DELETE");
    let mut out = empty_bytes();
    check(
        cardbridge_wechatpay_validate(
            op,
            opl,
            body.as_ptr().cast(),
            body.len(),
            ptr::null(),
            0,
            &mut out,
            &mut err,
        ),
        err,
    );
    assert_eq!(json_of(&take_bytes(out))["method"], "POST");
    let hits_before = hits(&wx.emu, "/");
    let mut out = empty_bytes();
    let e = expect_error(cardbridge_result::InvalidParameter, |err| {
        cardbridge_wechatpay_validate(
            "nope".as_ptr().cast::<c_char>(),
            4,
            body.as_ptr().cast(),
            body.len(),
            ptr::null(),
            0,
            &mut out,
            err,
        )
    });
    assert_eq!(e.field, "operation");
    assert_eq!(hits(&wx.emu, "/"), hits_before, "validate never sends");
}

#[test]
fn a_refused_callback_carries_its_diagnosis_on_the_response() {
    let wx = setup(2);
    let plain = sample("2003");
    // Signed an hour ago: refused for the clock, with the measured offset.
    let stale = mint(&wx.emu, &plain, now() - 3600, CallbackTamper::None);
    let (r, text) = expect_respond_diagnosed(begin(wx.wp, &stale));
    assert_eq!(r.status, 401);
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["check"], "clock_skew", "{d}");
    let off = d["offset_ms"].as_i64().unwrap();
    assert!((-3_700_000..=-3_500_000).contains(&off), "{d}");
    // A changed body: a mismatch; lengths and digests only, never the body or a signature.
    let forged = callback(&wx.emu, &plain, CallbackTamper::BodyByte);
    let (_, text) = expect_respond_diagnosed(begin(wx.wp, &forged));
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["check"], "mismatch", "{d}");
    assert_eq!(d["body_len"], forged.body.len());
    let sig = forged.headers.iter().find(|(n, _)| n == "Wechatpay-Signature").unwrap();
    assert!(!text.contains(&sig.1[..20]) && !text.contains("ciphertext"), "{text}");
    // Any other answer carries none.
    let event = expect_handle(begin(wx.wp, &callback(&wx.emu, &plain, CallbackTamper::None)));
    cardbridge_wechatpay_event_free(event);
    let req = callback(&wx.emu, &plain, CallbackTamper::None);
    let event = expect_handle(begin(wx.wp, &req));
    let (busy, text) = expect_respond_diagnosed(begin(wx.wp, &req));
    assert_eq!((busy.status, text.as_str()), (500, ""));
    cardbridge_wechatpay_event_free(event);
    // NULL response: named.
    let mut n = 0;
    assert_eq!(
        cardbridge_http_response_diagnosis(ptr::null(), ptr::null_mut(), 0, &mut n),
        cardbridge_result::NullParameter
    );
}

#[cfg(feature = "ffi-test")]
#[test]
fn the_outbound_timestamp_follows_the_handle_clock() {
    let wx = setup(1);
    add_card(&wx.emu, "478515832668");
    // Pinned 100 s ahead (inside the platform's window): the Authorization timestamp is exactly it.
    let pinned_ms = (now() + 100) * 1000 + 250;
    let mut err = ptr::null_mut();
    check(
        cardbridge::ffi::cardbridge_test_wechatpay_set_clock(wx.wp, 1, pinned_ms, &mut err),
        err,
    );
    call(cardbridge_wechatpay_confirm, wx.wp, &confirm_input("478515832668")).unwrap();
    let sent = wx.emu.last_request().unwrap();
    let auth = cardbridge::http::find_header(&sent.headers, "Authorization").unwrap();
    let parsed = cardbridge::wechatpay::sign::parse_authorization(auth).unwrap();
    assert_eq!(parsed.timestamp, (pinned_ms / 1000).to_string());
    // An unknown mode is refused naming it; NULL handles are named.
    let mut err = ptr::null_mut();
    let rc = cardbridge::ffi::cardbridge_test_wechatpay_set_clock(wx.wp, 9, 0, &mut err);
    assert_eq!(rc, cardbridge_result::InvalidParameter);
    assert_eq!(take_error(err).field, "mode");
    assert_eq!(
        cardbridge::ffi::cardbridge_test_wechatpay_set_clock(ptr::null(), 0, 0, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
}
