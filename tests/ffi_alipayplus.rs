//! The Alipay+ and store exports driven from Rust through raw pointers, the
//! way C, ctypes and P/Invoke call them: the inbound begin → decide → finish
//! flow with replays and refusals (also on a PostgreSQL store shared by two
//! integrations), issueCard through the emulator with faults and resume,
//! request building, validation detail, NULL parameters and use after finish.
//! The platform side (the emulator and the signed platform requests) is the
//! in-process emulator module of the `cardbridge` binary, not the C ABI.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{AlipayPlatformEmulator, EmulatorConfig, Fault, PlatformDriver, Tamper, sample_registration};
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::ffi::alipayplus::*;
use cardbridge::ffi::bytes::*;
use cardbridge::ffi::error::*;
use cardbridge::ffi::store::*;
use cardbridge::http::{HttpRequest, HttpResponse};
use serde_json::{Value, json};
use std::ffi::c_char;
use std::ptr;

mod pg;

const CLIENT_ID: &str = "2022TEST_CLIENT";
const T: &str = "2026-11-23T10:00:00.000+00:00";
const NOTIFY: &str = "/v2/pds/memberships/notifyCardRegistration";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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
    };
    cardbridge_error_free(err);
    info
}

/// Panics with the error message unless `rc` is OK.
fn check(rc: cardbridge_result, err: *mut cardbridge_error) {
    if rc != cardbridge_result::Ok {
        panic!("call failed: {:?}", take_error(err));
    }
    assert!(err.is_null(), "error_out untouched on success");
}

/// Runs a fallible call expected to fail and returns the error detail.
fn expect_error(
    expected: cardbridge_result,
    call: impl FnOnce(*mut *mut cardbridge_error) -> cardbridge_result,
) -> ErrorInfo {
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = call(&mut err);
    assert_eq!(rc, expected);
    let info = take_error(err);
    assert_eq!(info.code, expected);
    info
}

// ---------------------------------------------------------------------------
// Fixtures built through the exports
// ---------------------------------------------------------------------------

/// Integration (freed on drop) + the platform's driver and emulator + the
/// merchant public key the platform verifies answers with.
struct Fixture {
    ap: *const cardbridge_alipayplus,
    driver: PlatformDriver,
    merchant_public: PublicKey,
    emulator: Option<AlipayPlatformEmulator>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        cardbridge_alipayplus_free(self.ap);
    }
}

impl Fixture {
    fn emulator(&self) -> &AlipayPlatformEmulator {
        self.emulator.as_ref().expect("set up with an emulator")
    }
}

fn start_emulator() -> (AlipayPlatformEmulator, String) {
    let emulator = AlipayPlatformEmulator::start(EmulatorConfig::new(
        PrivateKey::from_pem(&fixture("test_platform_private.pem")).unwrap(),
        PublicKey::from_pem(&fixture("test_merchant_public.pem")).unwrap(),
        CLIENT_ID,
    ))
    .unwrap();
    let url = emulator.base_url();
    (emulator, url)
}

fn config_json(base_url: Option<&str>, max_attempts: u32, store_path: Option<&str>) -> String {
    let mut c = json!({
        "client_id": CLIENT_ID,
        "merchant_private_key": fixture("test_merchant_private.pem"),
        "platform_public_key": fixture("test_platform_public.pem"),
        "connect_timeout_ms": 1000,
        "read_timeout_ms": 2000,
        "retry": {"max_attempts": max_attempts, "base_delay_ms": 5, "max_delay_ms": 20, "deadline_ms": 20000},
    });
    if let Some(url) = base_url {
        c["base_url"] = json!(url);
    }
    if let Some(path) = store_path {
        c["store_path"] = json!(path);
    }
    c.to_string()
}

fn new_integration(config: &str, store: *const cardbridge_store) -> *const cardbridge_alipayplus {
    let mut ap: *const cardbridge_alipayplus = ptr::null();
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_new(config.as_ptr().cast(), config.len(), store, &mut ap, &mut err),
        err,
    );
    assert!(!ap.is_null());
    ap
}

/// An integration on a memory store; with an emulator when `with_emulator`.
fn setup(with_emulator: bool, max_attempts: u32) -> Fixture {
    let (emulator, url) = if with_emulator {
        let (e, u) = start_emulator();
        (Some(e), Some(u))
    } else {
        (None, None)
    };
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    check(cardbridge_store_new_memory(&mut store, &mut err), err);
    let ap = new_integration(&config_json(url.as_deref(), max_attempts, None), store);
    // The integration keeps its own reference.
    cardbridge_store_free(store);

    let driver = PlatformDriver::new(
        PrivateKey::from_pem(&fixture("test_platform_private.pem")).unwrap(),
        CLIENT_ID,
        "1",
    );
    let merchant_public = PublicKey::from_pem(&fixture("test_merchant_public.pem")).unwrap();
    Fixture {
        ap,
        driver,
        merchant_public,
        emulator,
    }
}

fn sample(request_id: &str) -> Vec<u8> {
    sample_registration(request_id)
}

/// A platform request signed (or spoiled) by the platform's driver.
fn mint(driver: &PlatformDriver, target: &str, body: &[u8], tamper: Tamper) -> HttpRequest {
    driver.request(target, body, T, tamper).unwrap()
}

/// Whether the merchant's answer `resp` to `req` verifies as the platform checks it.
fn verify(f: &Fixture, req: &HttpRequest, resp: *const cardbridge_http_response) -> bool {
    PlatformDriver::verify_response(&f.merchant_public, req, &response_parts(resp))
}

fn response_parts(resp: *const cardbridge_http_response) -> HttpResponse {
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
    HttpResponse {
        status: cardbridge_http_response_status(resp),
        headers,
        // SAFETY: borrowed from `resp`.
        body: unsafe { std::slice::from_raw_parts(b, n) }.to_vec(),
    }
}

enum Began {
    Respond(*mut cardbridge_http_response),
    Decide(*mut cardbridge_alipayplus_call),
}

fn begin(ap: *const cardbridge_alipayplus, req: &HttpRequest) -> Began {
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
    let mut call = ptr::dangling_mut::<cardbridge_alipayplus_call>();
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_begin(
            ap,
            req.method.as_ptr().cast(),
            req.method.len(),
            req.target.as_ptr().cast(),
            req.target.len(),
            views.as_ptr(),
            views.len(),
            req.body.as_ptr(),
            req.body.len(),
            now_ms(),
            &mut resp,
            &mut call,
            &mut err,
        ),
        err,
    );
    match (resp.is_null(), call.is_null()) {
        (false, true) => Began::Respond(resp),
        (true, false) => Began::Decide(call),
        _ => panic!("begin must set exactly one of response_out / call_out"),
    }
}

fn expect_respond(b: Began) -> *mut cardbridge_http_response {
    match b {
        Began::Respond(r) => r,
        Began::Decide(c) => panic!(
            "expected an immediate answer, host asked for API {}",
            cardbridge_alipayplus_call_api(c)
        ),
    }
}

fn expect_decide(b: Began) -> *mut cardbridge_alipayplus_call {
    match b {
        Began::Decide(c) => c,
        Began::Respond(r) => panic!(
            "expected a host decision, got {}",
            String::from_utf8_lossy(&response_parts(r).body)
        ),
    }
}

fn finish(
    ap: *const cardbridge_alipayplus,
    call: *mut cardbridge_alipayplus_call,
    decision: &str,
) -> *mut cardbridge_http_response {
    let mut resp = ptr::null_mut();
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_finish(
            ap,
            call,
            decision.as_ptr().cast(),
            decision.len(),
            now_ms(),
            &mut resp,
            &mut err,
        ),
        err,
    );
    assert!(!resp.is_null());
    resp
}

fn result_of(resp: *const cardbridge_http_response) -> (String, String) {
    let v = json_of(&response_parts(resp).body);
    (
        v["result"]["resultStatus"].as_str().unwrap().to_string(),
        v["result"]["resultCode"].as_str().unwrap().to_string(),
    )
}

fn call_request(call: *const cardbridge_alipayplus_call) -> Vec<u8> {
    let (mut p, mut n) = (ptr::null(), 0);
    let mut err = ptr::null_mut();
    check(cardbridge_alipayplus_call_request(call, &mut p, &mut n, &mut err), err);
    // SAFETY: borrowed from `call`, alive here.
    unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
}

fn issue_card(ap: *const cardbridge_alipayplus, request: &[u8]) -> Result<Vec<u8>, ErrorInfo> {
    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    match cardbridge_alipayplus_issue_card(ap, request.as_ptr().cast(), request.len(), &mut out, &mut err) {
        cardbridge_result::Ok => Ok(take_bytes(out)),
        _ => {
            assert!(out.data.is_null(), "no output on failure");
            Err(take_error(err))
        }
    }
}

fn build_issue_card(registration: &[u8], external_id: &str, date: &str, fields: &str) -> Result<Vec<u8>, ErrorInfo> {
    build_issue_card_with(registration, external_id, date, fields, None)
}

fn build_issue_card_with(
    registration: &[u8],
    external_id: &str,
    date: &str,
    fields: &str,
    options: Option<&str>,
) -> Result<Vec<u8>, ErrorInfo> {
    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    let rc = cardbridge_alipayplus_build_issue_card(
        registration.as_ptr().cast(),
        registration.len(),
        external_id.as_ptr().cast(),
        external_id.len(),
        date.as_ptr().cast(),
        date.len(),
        fields.as_ptr().cast(),
        fields.len(),
        options.map_or(ptr::null(), |o| o.as_ptr().cast()),
        options.map_or(0, str::len),
        &mut out,
        &mut err,
    );
    match rc {
        cardbridge_result::Ok => Ok(take_bytes(out)),
        _ => Err(take_error(err)),
    }
}

fn push_fault(emu: &AlipayPlatformEmulator, fault: Fault) {
    emu.push_fault(fault);
}

const FIELDS: &str =
    r#"[{"fieldCode":"POINT","fieldValue":"120"},{"fieldCode":"BALANCE","fieldValue":{"value":100,"currency":"SGD"}}]"#;
const DATE: &str = "2026-11-23T18:00:00+08:00";

// ---------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------

#[test]
fn registration_flows_through_begin_and_finish_and_duplicates_replay_byte_identical() {
    let f = setup(false, 4);
    let body = sample("FFI-R-1");
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let parts = req.clone();
    assert_eq!((parts.method.as_str(), parts.target.as_str()), ("POST", NOTIFY));
    assert_eq!(parts.body, body);

    let call = expect_decide(begin(f.ap, &parts));
    assert_eq!(
        cardbridge_alipayplus_call_api(call),
        CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION
    );
    assert_eq!(call_request(call), body, "the host sees the body as received");
    let resp = finish(f.ap, call, r#"{"extendInfo":"{\"memberId\":\"M-1\"}"}"#);
    assert_eq!(cardbridge_http_response_status(resp), 200);
    assert_eq!(result_of(resp), ("S".into(), "SUCCESS".into()));
    assert!(verify(&f, &req, resp));
    let first = response_parts(resp).body;
    cardbridge_alipayplus_call_free(call);
    cardbridge_http_response_free(resp);

    // The platform retries: answered from the store, same bytes, host not involved.
    let again = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let replay = expect_respond(begin(f.ap, &again));
    assert_eq!(response_parts(replay).body, first);
    assert!(verify(&f, &again, replay));
    cardbridge_http_response_free(replay);
}

#[test]
fn tampered_requests_get_access_denied_without_a_call() {
    let f = setup(false, 4);
    let body = sample("FFI-R-TAMPER");
    for tamper in [
        Tamper::BodyByte,
        Tamper::Unsigned,
        Tamper::MalformedHeader,
        Tamper::WrongClientId,
    ] {
        let req = mint(&f.driver, NOTIFY, &body, tamper);
        let resp = expect_respond(begin(f.ap, &req));
        assert_eq!(
            result_of(resp),
            ("F".into(), "ACCESS_DENIED".into()),
            "tamper {tamper:?}"
        );
        cardbridge_http_response_free(resp);
    }
    // The refusals stored nothing: the genuine request still reaches the host.
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let call = expect_decide(begin(f.ap, &req));
    cardbridge_alipayplus_call_free(call);
}

#[test]
fn invalid_field_gets_param_illegal_naming_the_field() {
    let f = setup(false, 4);
    let mut v = json_of(&sample("FFI-R-BAD"));
    v["appId"] = json!("A".repeat(33));
    let body = serde_json::to_vec(&v).unwrap();
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let resp = expect_respond(begin(f.ap, &req));
    assert_eq!(result_of(resp), ("F".into(), "PARAM_ILLEGAL".into()));
    let message = json_of(&response_parts(resp).body)["result"]["resultMessage"].clone();
    assert!(
        message.as_str().unwrap().contains("notifyCardRegistration.appId"),
        "{message}"
    );
    assert!(verify(&f, &req, resp));
    cardbridge_http_response_free(resp);
}

#[test]
fn invalid_decision_keeps_the_call_usable_and_a_second_finish_is_already_used() {
    let f = setup(false, 4);
    let req = mint(&f.driver, NOTIFY, &sample("FFI-R-TWICE"), Tamper::None);
    let call = expect_decide(begin(f.ap, &req));
    let finish_err = |decision: &str, expected| {
        expect_error(expected, |err| {
            let mut resp = ptr::null_mut();
            let rc = cardbridge_alipayplus_finish(
                f.ap,
                call,
                decision.as_ptr().cast(),
                decision.len(),
                now_ms(),
                &mut resp,
                err,
            );
            assert!(resp.is_null(), "no response on failure");
            rc
        })
    };
    let e = finish_err(
        r#"{"result":{"resultStatus":"S","resultCode":"PROCESS_FAIL"}}"#,
        cardbridge_result::Validation,
    );
    assert_eq!(e.field, "notifyCardRegistrationResponse.result.resultCode");
    finish_err("{not json", cardbridge_result::InvalidJson);

    let resp = finish(f.ap, call, "{}");
    assert_eq!(result_of(resp), ("S".into(), "SUCCESS".into()));
    cardbridge_http_response_free(resp);

    let e = finish_err("{}", cardbridge_result::AlreadyUsed);
    assert_eq!(e.field, "call");
    let e = expect_error(cardbridge_result::AlreadyUsed, |err| {
        let mut resp = ptr::null_mut();
        cardbridge_alipayplus_finish_unknown(f.ap, call, now_ms(), &mut resp, err)
    });
    assert_eq!(e.field, "call");
    cardbridge_alipayplus_call_free(call);
}

#[test]
fn undecided_call_freed_or_finished_unknown_lets_the_next_duplicate_reach_the_host() {
    let f = setup(false, 4);
    let body = sample("FFI-R-RELEASE");
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let parts = req.clone();

    let call = expect_decide(begin(f.ap, &parts));
    // While it is undecided a duplicate is told to retry.
    let busy = expect_respond(begin(f.ap, &parts));
    assert_eq!(result_of(busy), ("U".into(), "UNKNOWN_EXCEPTION".into()));
    cardbridge_http_response_free(busy);
    cardbridge_alipayplus_call_free(call);

    // Freed undecided: the claim is gone, the host is asked again.
    let call = expect_decide(begin(f.ap, &parts));
    let mut resp = ptr::null_mut();
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_finish_unknown(f.ap, call, now_ms(), &mut resp, &mut err),
        err,
    );
    assert_eq!(result_of(resp), ("U".into(), "UNKNOWN_EXCEPTION".into()));
    assert!(verify(&f, &req, resp));
    cardbridge_http_response_free(resp);
    cardbridge_alipayplus_call_free(call);

    // U released the claim too.
    let call = expect_decide(begin(f.ap, &parts));
    cardbridge_alipayplus_call_free(call);
}

#[test]
fn other_apis_report_their_number() {
    let f = setup(false, 4);
    let body = json!({"appId":"2102010113769000","customerBelongsTo":"TNG","customerId":"1236450862137570000",
                      "cardNo":"EMU1","assetTypes":["POINT"]})
    .to_string();
    let req = mint(
        &f.driver,
        "/v2/pds/memberships/inquireMemberAssets",
        body.as_bytes(),
        Tamper::None,
    );
    let call = expect_decide(begin(f.ap, &req));
    assert_eq!(
        cardbridge_alipayplus_call_api(call),
        CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_MEMBER_ASSETS
    );
    cardbridge_alipayplus_call_free(call);
}

#[test]
fn purge_expired_counts_deleted_records() {
    let f = setup(false, 4);
    let req = mint(&f.driver, NOTIFY, &sample("FFI-R-PURGE"), Tamper::None);
    let call = expect_decide(begin(f.ap, &req));
    cardbridge_http_response_free(finish(f.ap, call, "{}"));
    cardbridge_alipayplus_call_free(call);

    let mut purged = usize::MAX;
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_purge_expired(f.ap, now_ms(), &mut purged, &mut err),
        err,
    );
    assert_eq!(purged, 0, "a fresh record is kept");
    let later = now_ms() + 31 * 24 * 3600 * 1000;
    check(
        cardbridge_alipayplus_purge_expired(f.ap, later, &mut purged, &mut err),
        err,
    );
    assert_eq!(purged, 1);
}

#[test]
fn integration_handle_is_used_from_several_threads_at_once() {
    let f = setup(false, 4);
    let (ap, driver) = (f.ap as usize, &f.driver);
    std::thread::scope(|s| {
        for i in 0..4 {
            s.spawn(move || {
                let body = crate::emulator::sample_registration(&format!("FFI-THREAD-{i}"));
                let ap = ap as *const cardbridge_alipayplus;
                let req = mint(driver, NOTIFY, &body, Tamper::None);
                let call = expect_decide(begin(ap, &req));
                let resp = finish(ap, call, "{}");
                assert_eq!(result_of(resp).0, "S");
                cardbridge_http_response_free(resp);
                cardbridge_alipayplus_call_free(call);
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------

#[test]
fn build_issue_card_reuses_the_registration_and_validates() {
    let reg = sample("FFI-B-1");
    let built = json_of(&build_issue_card(&reg, "M-000123", DATE, FIELDS).unwrap());
    let r = json_of(&reg);
    for k in ["appId", "customerBelongsTo", "requestId", "customerId"] {
        assert_eq!(built[k], r[k], "{k}");
    }
    assert_eq!(built["externalCustomerId"], "M-000123");
    assert_eq!(built["registerDate"], DATE);
    assert_eq!(built["cardFields"][1]["fieldValue"]["currency"], "SGD");

    let e = build_issue_card(&reg, &"x".repeat(65), DATE, FIELDS).unwrap_err();
    assert_eq!(e.code, cardbridge_result::Validation);
    assert_eq!(
        (e.field.as_str(), e.limit.as_str()),
        ("issueCard.externalCustomerId", "64")
    );
    let e = build_issue_card(&reg, "M-1", "yesterday", FIELDS).unwrap_err();
    assert_eq!(e.field, "issueCard.registerDate");
    let e = build_issue_card(&reg, "M-1", DATE, r#"[{"fieldCode":"bad code","fieldValue":"1"}]"#).unwrap_err();
    assert_eq!(e.field, "issueCard.cardFields[0].fieldCode");
    let e = build_issue_card(&reg, "M-1", DATE, r#"{"fieldCode":"POINT"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidJson, "card_fields_json")
    );
    let e = build_issue_card(b"{}", "M-1", DATE, FIELDS).unwrap_err();
    assert_eq!(e.field, "notifyCardRegistration.appId");
}

#[test]
fn build_issue_card_takes_the_optional_members_and_validates_them() {
    let reg = sample("FFI-B-OPT");
    let options = r#"{"externalCardNo":"CARD-1","expireDate":"2027-11-23T00:00:00+08:00","extendInfo":"{\"tier\":1}"}"#;
    let built = json_of(&build_issue_card_with(&reg, "M-1", DATE, FIELDS, Some(options)).unwrap());
    assert_eq!(built["externalCardNo"], "CARD-1");
    assert_eq!(built["expireDate"], "2027-11-23T00:00:00+08:00");
    assert_eq!(built["extendInfo"], "{\"tier\":1}");
    // NULL and "" are no options; null members are absent.
    for none in [None, Some(""), Some(r#"{"extendInfo":null}"#)] {
        let built = json_of(&build_issue_card_with(&reg, "M-1", DATE, FIELDS, none).unwrap());
        assert!(built.get("extendInfo").is_none(), "{none:?}");
    }
    let at = |options: String| build_issue_card_with(&reg, "M-1", DATE, FIELDS, Some(&options)).unwrap_err();
    let e = at(format!(r#"{{"extendInfo":"{}"}}"#, "x".repeat(2049)));
    assert_eq!(
        (e.code, e.field.as_str(), e.limit.as_str()),
        (cardbridge_result::Validation, "issueCard.extendInfo", "2048")
    );
    let e = at(format!(r#"{{"externalCardNo":"{}"}}"#, "x".repeat(65)));
    assert_eq!((e.field.as_str(), e.limit.as_str()), ("issueCard.externalCardNo", "64"));
    let e = at(r#"{"expireDate":"tomorrow"}"#.into());
    assert_eq!(e.field, "issueCard.expireDate");
    let e = at(r#"{"cardNo":"1"}"#.into());
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::Validation, "issueCard.cardNo")
    );
    let e = at("[1]".into());
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidJson, "options_json")
    );
    let e = at("{".into());
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidJson, "options_json")
    );
}

#[test]
fn issue_card_through_the_emulator_retries_a_fault_and_returns_the_card() {
    let f = setup(true, 4);
    let request = build_issue_card(&sample("FFI-I-1"), "M-000123", DATE, FIELDS).unwrap();
    push_fault(f.emulator(), Fault::Unknown);
    let answer = json_of(&issue_card(f.ap, &request).unwrap());
    assert_eq!(answer["result"]["resultStatus"], "S");
    let card_no = answer["cardNo"].as_str().unwrap();
    assert!(card_no.starts_with("EMU"), "{card_no}");
    let id = "FFI-I-1";
    assert_eq!(f.emulator().hits_for(id), 2);
    assert_eq!(f.emulator().issue_card_hits(), 2);
    assert_eq!(f.emulator().cards_issued(), 1);

    // Same requestId: answered from the outbox, nothing sent.
    assert_eq!(json_of(&issue_card(f.ap, &request).unwrap())["cardNo"], card_no);
    assert_eq!(f.emulator().issue_card_hits(), 2);
}

#[test]
fn issue_card_validation_error_carries_field_and_limit_and_sends_nothing() {
    let f = setup(true, 4);
    let mut request = json_of(&build_issue_card(&sample("FFI-I-BAD"), "M-1", DATE, FIELDS).unwrap());
    request["externalCustomerId"] = json!("x".repeat(65));
    let e = issue_card(f.ap, request.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.code, cardbridge_result::Validation);
    assert_eq!(e.field, "issueCard.externalCustomerId");
    assert_eq!(e.limit, "64");
    assert!(e.message.contains("at most 64"), "{}", e.message);
    assert_eq!(f.emulator().issue_card_hits(), 0);

    let e = issue_card(f.ap, b"[1,2]").unwrap_err();
    assert_eq!(e.code, cardbridge_result::InvalidJson);
}

#[test]
fn final_refusal_is_remote_failed_with_the_platform_code() {
    let f = setup(true, 4);
    let request = build_issue_card(&sample("FFI-I-F"), "M-1", DATE, FIELDS).unwrap();
    push_fault(
        f.emulator(),
        Fault::Fail {
            code: "PROCESS_FAIL".into(),
            message: "refused".into(),
        },
    );
    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    let rc = cardbridge_alipayplus_issue_card(f.ap, request.as_ptr().cast(), request.len(), &mut out, &mut err);
    assert_eq!(rc, cardbridge_result::RemoteFailed);
    assert_eq!(text(cardbridge_error_remote_code, err), "PROCESS_FAIL");
    assert_eq!(text(cardbridge_error_remote_status, err), "F");
    cardbridge_error_free(err);
}

#[test]
fn resume_pending_reports_unknown_then_the_card() {
    let f = setup(true, 2);
    let request = build_issue_card(&sample("FFI-RESUME"), "M-1", DATE, FIELDS).unwrap();
    for _ in 0..2 {
        push_fault(f.emulator(), Fault::Unknown);
    }
    let e = issue_card(f.ap, &request).unwrap_err();
    assert_eq!(e.code, cardbridge_result::RemoteUnknown);

    let resume = || {
        let mut out = empty_bytes();
        let mut err = ptr::null_mut();
        check(cardbridge_alipayplus_resume_pending(f.ap, &mut out, &mut err), err);
        json_of(&take_bytes(out))
    };
    for _ in 0..2 {
        push_fault(f.emulator(), Fault::HttpStatus(503));
    }
    let report = resume();
    let entries = report.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let id = entries[0]["id"].as_str().unwrap();
    assert!(id.ends_with("/FFI-RESUME"), "{id}");
    assert_eq!(entries[0]["ok"], false);
    assert_eq!(entries[0]["code"], 501);
    assert_eq!(entries[0]["name"], "CARDBRIDGE_RESULT_REMOTE_UNKNOWN");
    assert!(entries[0]["message"].as_str().unwrap().contains("unknown"));

    let report = resume();
    assert_eq!(report[0]["ok"], true, "{report}");
    assert!(report[0]["response"]["cardNo"].as_str().unwrap().starts_with("EMU"));
    assert_eq!(resume(), json!([]), "nothing pending any more");
    let rid = "FFI-RESUME";
    assert_eq!(f.emulator().hits_for(rid), 5);
}

#[test]
fn issue_card_without_base_url_is_invalid_config() {
    let f = setup(false, 4);
    let request = build_issue_card(&sample("FFI-NOURL"), "M-1", DATE, FIELDS).unwrap();
    let e = issue_card(f.ap, &request).unwrap_err();
    assert_eq!(e.code, cardbridge_result::InvalidConfig);
    assert!(e.message.contains("base_url"), "{}", e.message);
}

// ---------------------------------------------------------------------------
// Store, configuration, emulator parameters, NULLs
// ---------------------------------------------------------------------------

#[test]
fn sqlite_store_is_opened_from_a_path_or_from_the_config() {
    let dir = std::env::temp_dir().join(format!("cardbridge-ffi-ap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("explicit.db");
    let path_str = path.to_str().unwrap();
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    check(
        cardbridge_store_open_sqlite(path_str.as_ptr().cast(), path_str.len(), &mut store, &mut err),
        err,
    );
    let ap = new_integration(&config_json(None, 4, None), store);
    cardbridge_store_free(store);
    cardbridge_alipayplus_free(ap);
    assert!(path.exists());

    // NULL store: config.store_path is opened.
    let from_config = dir.join("config.db");
    let ap = new_integration(&config_json(None, 4, from_config.to_str()), ptr::null());
    cardbridge_alipayplus_free(ap);
    assert!(from_config.exists());

    let e = expect_error(cardbridge_result::InvalidConfig, |err| {
        let config = config_json(None, 4, None);
        let mut ap = ptr::null();
        cardbridge_alipayplus_new(config.as_ptr().cast(), config.len(), ptr::null(), &mut ap, err)
    });
    assert!(e.message.contains("store_path"), "{}", e.message);
    let e = expect_error(cardbridge_result::InvalidConfig, |err| {
        let mut s = ptr::null();
        cardbridge_store_open_sqlite(b"".as_ptr().cast(), 0, &mut s, err)
    });
    assert_eq!(e.field, "path");
    let bad_dir = dir.join("missing/dir/x.db");
    let bad = bad_dir.to_str().unwrap();
    expect_error(cardbridge_result::InvalidConfig, |err| {
        let mut s = ptr::null();
        cardbridge_store_open_sqlite(bad.as_ptr().cast(), bad.len(), &mut s, err)
    });
    std::fs::remove_dir_all(&dir).ok();
}

fn open_postgres(conninfo: &str) -> Result<*const cardbridge_store, ErrorInfo> {
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    match cardbridge_store_open_postgres(conninfo.as_ptr().cast(), conninfo.len(), &mut store, &mut err) {
        cardbridge_result::Ok => Ok(store),
        _ => {
            assert!(store.is_null(), "no output on failure");
            Err(take_error(err))
        }
    }
}

/// Two integrations ("nodes") on one PostgreSQL database: a registration
/// decided on one is answered from the store, byte for byte, on the other.
#[test]
fn postgres_store_is_shared_by_two_integrations() {
    let Some(schema) = pg::Schema::create("ffi") else {
        return;
    };
    let node_a = open_postgres(&schema.dsn()).unwrap_or_else(|e| panic!("{e:?}"));
    let node_b = open_postgres(&schema.dsn()).unwrap_or_else(|e| panic!("{e:?}"));
    let f = setup(false, 4);
    let a = new_integration(&config_json(None, 4, None), node_a);
    let b = new_integration(&config_json(None, 4, None), node_b);
    cardbridge_store_free(node_a);
    cardbridge_store_free(node_b);

    let body = sample("FFI-PG-1");
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let parts = req.clone();
    let call = expect_decide(begin(a, &parts));
    // While node A decides, node B answers U for the same requestId (never F, never a second host call).
    let busy = expect_respond(begin(b, &parts));
    assert_eq!(result_of(busy), ("U".into(), "UNKNOWN_EXCEPTION".into()));
    cardbridge_http_response_free(busy);
    let resp = finish(a, call, r#"{"extendInfo":"{\"memberId\":\"M-PG\"}"}"#);
    assert_eq!(result_of(resp), ("S".into(), "SUCCESS".into()));
    let decided = response_parts(resp).body;
    cardbridge_alipayplus_call_free(call);
    cardbridge_http_response_free(resp);

    let replay = expect_respond(begin(b, &parts));
    assert_eq!(response_parts(replay).body, decided);
    assert!(verify(&f, &req, replay));
    cardbridge_http_response_free(replay);
    cardbridge_alipayplus_free(a);
    cardbridge_alipayplus_free(b);
}

#[test]
fn postgres_store_refuses_bad_connection_strings_without_showing_the_password() {
    let e = open_postgres("").unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidConfig, "conninfo")
    );
    let e = open_postgres("host=127.0.0.1 password=Sup3rS3cret port=notaport").unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidConfig, "conninfo")
    );
    assert!(!e.message.contains("Sup3rS3cret"), "{}", e.message);
    // Nothing crosses a network in clear: refused before any connection is tried.
    let e = open_postgres("host=db.example.com sslmode=disable password=Sup3rS3cret").unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (cardbridge_result::InvalidConfig, "conninfo.sslmode")
    );
    assert!(!e.message.contains("Sup3rS3cret"), "{}", e.message);
    let bad = [0xffu8, 0xfe];
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    assert_eq!(
        cardbridge_store_open_postgres(bad.as_ptr().cast(), bad.len(), &mut store, &mut err),
        cardbridge_result::InvalidUtf8
    );
    cardbridge_error_free(err);
    assert_eq!(
        cardbridge_store_open_postgres(ptr::null(), 3, &mut store, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
}

#[test]
fn bad_configs_are_refused_with_a_message() {
    let mut config = json_of(config_json(None, 4, None).as_bytes());
    config["merchant_private_key"] = json!("not a key");
    let text = config.to_string();
    let e = expect_error(cardbridge_result::InvalidKey, |err| {
        let mut ap = ptr::null();
        cardbridge_alipayplus_new(text.as_ptr().cast(), text.len(), ptr::null(), &mut ap, err)
    });
    assert!(e.message.contains("merchant_private_key"), "{}", e.message);
}

#[test]
fn null_parameters_are_named_and_getters_return_neutral_values() {
    let f = setup(false, 4);
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let mut ap = ptr::null();
        cardbridge_alipayplus_new(ptr::null(), 5, ptr::null(), &mut ap, err)
    });
    assert_eq!(e.field, "config_json");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_alipayplus_new(b"{}".as_ptr().cast(), 2, ptr::null(), ptr::null_mut(), err)
    });
    assert_eq!(e.field, "alipayplus_out");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let mut out = empty_bytes();
        cardbridge_alipayplus_issue_card(ptr::null(), b"{}".as_ptr().cast(), 2, &mut out, err)
    });
    assert_eq!(e.field, "alipayplus");

    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let (mut r, mut c) = (ptr::null_mut(), ptr::null_mut());
        cardbridge_alipayplus_begin(
            f.ap,
            b"POST".as_ptr().cast(),
            4,
            NOTIFY.as_ptr().cast(),
            NOTIFY.len(),
            ptr::null(),
            2,
            ptr::null(),
            0,
            0,
            &mut r,
            &mut c,
            err,
        )
    });
    assert_eq!(e.field, "headers");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let mut r = ptr::null_mut();
        cardbridge_alipayplus_begin(
            f.ap,
            b"POST".as_ptr().cast(),
            4,
            NOTIFY.as_ptr().cast(),
            NOTIFY.len(),
            ptr::null(),
            0,
            ptr::null(),
            0,
            0,
            &mut r,
            ptr::null_mut(),
            err,
        )
    });
    assert_eq!(e.field, "call_out");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let mut r = ptr::null_mut();
        cardbridge_alipayplus_finish(f.ap, ptr::null_mut(), b"{}".as_ptr().cast(), 2, 0, &mut r, err)
    });
    assert_eq!(e.field, "call");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        let mut n = 0;
        cardbridge_alipayplus_call_request(ptr::null(), ptr::null_mut(), &mut n, err)
    });
    assert_eq!(e.field, "call");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_alipayplus_purge_expired(f.ap, 0, ptr::null_mut(), err)
    });
    assert_eq!(e.field, "purged_out");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_alipayplus_resume_pending(f.ap, ptr::null_mut(), err)
    });
    assert_eq!(e.field, "report_out");
    let e = expect_error(cardbridge_result::NullParameter, |err| {
        cardbridge_store_new_memory(ptr::null_mut(), err)
    });
    assert_eq!(e.field, "store_out");
    // Getters and predicates without an error channel.
    assert_eq!(cardbridge_alipayplus_call_api(ptr::null()), 0);
    assert_eq!(cardbridge_http_response_header_count(ptr::null()), 0);

    // A response checked against the wrong request does not verify.
    let req = mint(&f.driver, NOTIFY, &sample("FFI-NULL-1"), Tamper::None);
    let other = mint(&f.driver, "/v2/pds/memberships/inquireCardDetail", b"{}", Tamper::None);
    let call = expect_decide(begin(f.ap, &req));
    let resp = finish(f.ap, call, "{}");
    assert!(verify(&f, &req, resp));
    assert!(!verify(&f, &other, resp));
    let mut h = cardbridge_header {
        name: ptr::null(),
        name_len: 0,
        value: ptr::null(),
        value_len: 0,
    };
    let e = expect_error(cardbridge_result::InvalidParameter, |err| {
        cardbridge_http_response_header(resp, 99, &mut h, err)
    });
    assert_eq!(e.field, "index");
    cardbridge_http_response_free(resp);
    cardbridge_alipayplus_call_free(call);

    // Every _free accepts NULL.
    cardbridge_store_free(ptr::null());
    cardbridge_alipayplus_free(ptr::null());
    cardbridge_alipayplus_call_free(ptr::null_mut());
    cardbridge_http_response_free(ptr::null_mut());
}

/// Issue 7.1 and 7.7 through the C ABI: host A's decision outlives its claim,
/// a redelivery reaches host B (told it is redelivered), B decides S; A's late
/// F gets B's answer, byte for byte, and A giving up cannot free B's claim.
#[test]
fn a_late_finish_from_an_expired_claim_returns_the_stored_answer_and_the_redelivery_is_flagged() {
    let f = setup(false, 4);
    let mut config: Value = serde_json::from_str(&config_json(None, 4, None)).unwrap();
    config["claim_lease_ms"] = json!(100);
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    check(cardbridge_store_new_memory(&mut store, &mut err), err);
    let ap = new_integration(&config.to_string(), store);
    cardbridge_store_free(store);

    let body = sample("FFI-R-FENCE");
    let req = mint(&f.driver, NOTIFY, &body, Tamper::None);
    let parts = req.clone();
    let host_a = expect_decide(begin(ap, &parts));
    assert_eq!(cardbridge_alipayplus_call_earlier_claims(host_a), 0, "first sight");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let host_b = expect_decide(begin(ap, &parts));
    assert_eq!(
        cardbridge_alipayplus_call_earlier_claims(host_b),
        1,
        "redelivered after one expired claim"
    );
    assert_eq!(
        cardbridge_alipayplus_call_earlier_claims(ptr::null()),
        0,
        "NULL reads as 0"
    );

    // A gives up while B decides: B's claim stays, a third delivery is told to retry.
    let mut resp = ptr::null_mut();
    let mut err = ptr::null_mut();
    check(
        cardbridge_alipayplus_finish_unknown(ap, host_a, now_ms(), &mut resp, &mut err),
        err,
    );
    cardbridge_http_response_free(resp);
    let busy = expect_respond(begin(ap, &parts));
    assert_eq!(result_of(busy), ("U".into(), "UNKNOWN_EXCEPTION".into()));
    cardbridge_http_response_free(busy);
    cardbridge_alipayplus_call_free(host_a);

    // A second stale host finishing before B: CLAIM_LOST, nothing stored.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let host_c = expect_decide(begin(ap, &parts));
    assert_eq!(cardbridge_alipayplus_call_earlier_claims(host_c), 2);
    let f_decision = r#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"paused"}}"#;
    let mut resp = ptr::null_mut();
    let lost = expect_error(cardbridge_result::ClaimLost, |err| {
        cardbridge_alipayplus_finish(
            ap,
            host_b,
            f_decision.as_ptr().cast(),
            f_decision.len(),
            now_ms(),
            &mut resp,
            err,
        )
    });
    assert!(resp.is_null(), "no answer of its own");
    assert!(lost.message.contains("finish_unknown"), "{}", lost.message);
    let answer_c = finish(ap, host_c, "{}");
    assert_eq!(result_of(answer_c), ("S".into(), "SUCCESS".into()));
    // B, late, decides F: it gets C's stored S, byte for byte.
    let answer_b = finish(ap, host_b, f_decision);
    assert_eq!(response_parts(answer_b).body, response_parts(answer_c).body);
    let duplicate = expect_respond(begin(ap, &parts));
    assert_eq!(response_parts(duplicate).body, response_parts(answer_c).body);
    for r in [answer_b, answer_c, duplicate] {
        cardbridge_http_response_free(r);
    }
    cardbridge_alipayplus_call_free(host_b);
    cardbridge_alipayplus_call_free(host_c);
    cardbridge_alipayplus_free(ap);
}

/// Issue 10: a REMOTE_UNKNOWN names the outbox id it left pending, its
/// attempts and the last HTTP status, so the host can resume or look it up.
#[test]
fn remote_unknown_names_the_outbox_id_attempts_and_last_http_status() {
    let f = setup(true, 2);
    let request = build_issue_card(&sample("FFI-PENDING"), "M-1", DATE, FIELDS).unwrap();
    for _ in 0..2 {
        push_fault(f.emulator(), Fault::HttpStatus(503));
    }
    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    let rc = cardbridge_alipayplus_issue_card(f.ap, request.as_ptr().cast(), request.len(), &mut out, &mut err);
    assert_eq!(rc, cardbridge_result::RemoteUnknown);
    assert_eq!(
        text(cardbridge_error_outbox_id, err),
        cardbridge::alipayplus::client::outbox_id("2102010113769000", "FFI-PENDING")
    );
    assert_eq!(cardbridge_error_attempts(err), 2);
    assert_eq!(cardbridge_error_http_status(err), 503);
    cardbridge_error_free(err);
    assert_eq!(cardbridge_error_attempts(ptr::null()), 0, "NULL reads as 0");

    // Other errors carry no outbox id.
    let mut err = ptr::null_mut();
    let rc = cardbridge_alipayplus_issue_card(f.ap, b"{".as_ptr().cast(), 1, &mut out, &mut err);
    assert_ne!(rc, cardbridge_result::Ok);
    assert_eq!(text_or_empty(cardbridge_error_outbox_id, err), "");
    assert_eq!(cardbridge_error_attempts(err), 0);
    cardbridge_error_free(err);
}

fn text_or_empty(
    accessor: extern "C" fn(*const cardbridge_error, *mut c_char, usize, *mut usize) -> cardbridge_result,
    err: *const cardbridge_error,
) -> String {
    let mut buf = vec![0 as c_char; 256];
    let mut written = 0;
    assert_eq!(
        accessor(err, buf.as_mut_ptr(), buf.len(), &mut written),
        cardbridge_result::Ok
    );
    String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
}

/// Issue 10.3: the outbox view through the C ABI — list, get with attempts,
/// count pending — without bodies.
#[test]
fn outbox_view_lists_gets_and_counts_without_bodies() {
    let (emulator, url) = start_emulator();
    let mut store: *const cardbridge_store = ptr::null();
    let mut err = ptr::null_mut();
    check(cardbridge_store_new_memory(&mut store, &mut err), err);
    let ap = new_integration(&config_json(Some(&url), 2, None), store);
    let request = build_issue_card(&sample("FFI-VIEW"), "M-1", DATE, FIELDS).unwrap();
    for _ in 0..2 {
        push_fault(&emulator, Fault::HttpStatus(503));
    }
    assert_eq!(
        issue_card(ap, &request).unwrap_err().code,
        cardbridge_result::RemoteUnknown
    );
    let id = cardbridge::alipayplus::client::outbox_id("2102010113769000", "FFI-VIEW");

    let list = |query: &str| -> Result<Value, ErrorInfo> {
        let mut out = empty_bytes();
        let mut err = ptr::null_mut();
        match cardbridge_store_outbox_list(store, query.as_ptr().cast(), query.len(), &mut out, &mut err) {
            cardbridge_result::Ok => Ok(json_of(&take_bytes(out))),
            _ => Err(take_error(err)),
        }
    };
    let pending = list(r#"{"state":"pending"}"#).unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["id"], id.as_str());
    assert_eq!(pending[0]["attempts"], 2);
    assert_eq!(pending[0]["last_status"], 503);
    assert!(pending[0].get("body").is_none() && pending[0]["body_bytes"].as_u64().unwrap() > 0);
    assert!(!pending.to_string().contains("FFI-VIEW\",\"customerId"), "no body");
    assert_eq!(list(r#"{"state":"succeeded"}"#).unwrap().as_array().unwrap().len(), 0);
    assert_eq!(list("").unwrap().as_array().unwrap().len(), 1, "empty query is {{}}");
    let bad = list(r#"{"state":"later"}"#).unwrap_err();
    assert_eq!(
        (bad.code, bad.field.as_str()),
        (cardbridge_result::InvalidParameter, "query.state")
    );
    let bad = list(r#"{"limit":0}"#).unwrap_err();
    assert_eq!(bad.field, "query.limit");

    let mut out = empty_bytes();
    let mut err = ptr::null_mut();
    check(
        cardbridge_store_outbox_get(store, id.as_ptr().cast(), id.len(), &mut out, &mut err),
        err,
    );
    let one = json_of(&take_bytes(out));
    assert_eq!(one["attempt_log"].as_array().unwrap().len(), 2);
    assert_eq!(one["attempt_log"][1]["status"], 503);
    let missing = expect_error(cardbridge_result::InvalidParameter, |err| {
        cardbridge_store_outbox_get(store, b"nope".as_ptr().cast(), 4, &mut empty_bytes(), err)
    });
    assert_eq!(missing.field, "id");

    let mut n = 0u64;
    let mut err = ptr::null_mut();
    check(cardbridge_store_outbox_count_pending(store, &mut n, &mut err), err);
    assert_eq!(n, 1);
    assert_eq!(
        cardbridge_store_outbox_count_pending(ptr::null(), &mut n, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
    cardbridge_alipayplus_free(ap);
    cardbridge_store_free(store);
    drop(emulator);
}

/// The diagnosis JSON text a refused call's response carries (empty when none).
fn diagnosis_of(resp: *const cardbridge_http_response) -> String {
    let mut n = 0;
    let rc = cardbridge_http_response_diagnosis(resp, ptr::null_mut(), 0, &mut n);
    assert_eq!(rc, cardbridge_result::InsufficientSize);
    let mut buf = vec![0 as c_char; n];
    let mut written = 0;
    let rc = cardbridge_http_response_diagnosis(resp, buf.as_mut_ptr(), n, &mut written);
    assert_eq!((rc, written), (cardbridge_result::Ok, n - 1));
    String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
}

#[test]
fn a_refused_call_carries_its_diagnosis_on_the_response() {
    let f = setup(false, 4);
    let body = sample("FFI-R-DIAG");
    let req = mint(&f.driver, NOTIFY, &body, Tamper::BodyByte);
    let resp = expect_respond(begin(f.ap, &req));
    assert_eq!(result_of(resp), ("F".into(), "ACCESS_DENIED".into()));
    let text = diagnosis_of(resp);
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["check"], "mismatch", "{d}");
    assert_eq!(d["body_len"], req.body.len());
    assert_eq!(d["body_sha256"], cardbridge::crypto::sha256_hex(&req.body));
    assert!(!text.contains("FFI-R-DIAG"), "no body: {text}");
    // A fixed buffer gets a truncated, NUL-terminated prefix and the full size.
    let mut small = [0 as c_char; 16];
    let mut needed = 0;
    let rc = cardbridge_http_response_diagnosis(resp, small.as_mut_ptr(), small.len(), &mut needed);
    assert_eq!((rc, needed), (cardbridge_result::InsufficientSize, text.len() + 1));
    assert_eq!(small[15], 0);
    cardbridge_http_response_free(resp);
    // Refused for a field, not the signature: no diagnosis.
    let unsigned = mint(&f.driver, NOTIFY, b"{}", Tamper::None);
    let resp = expect_respond(begin(f.ap, &unsigned));
    assert_eq!(result_of(resp).1, "PARAM_ILLEGAL");
    assert_eq!(diagnosis_of(resp), "");
    cardbridge_http_response_free(resp);
}

#[cfg(feature = "ffi-test")]
#[test]
fn the_outbound_request_time_follows_the_handle_clock() {
    let f = setup(true, 4);
    let request = build_issue_card(&sample("FFI-CLK-1"), "M-000123", DATE, FIELDS).unwrap();
    // Pinned: Request-Time is exactly that instant, in the emitted format.
    let pinned_ms = 1_765_000_000_123;
    let mut err = ptr::null_mut();
    check(
        cardbridge::ffi::cardbridge_test_alipayplus_set_clock(f.ap, 1, pinned_ms, &mut err),
        err,
    );
    issue_card(f.ap, &request).unwrap();
    let sent = f.emulator().last_request().unwrap();
    let time = cardbridge::http::find_header(&sent.headers, "Request-Time").unwrap();
    assert_eq!(time, cardbridge::alipayplus::time::format_request_time(pinned_ms, 0));
    // Shifted back a day: the next request's time follows.
    check(
        cardbridge::ffi::cardbridge_test_alipayplus_set_clock(f.ap, 2, -86_400_000, &mut err),
        err,
    );
    let request = build_issue_card(&sample("FFI-CLK-2"), "M-000123", DATE, FIELDS).unwrap();
    issue_card(f.ap, &request).unwrap();
    let sent = f.emulator().last_request().unwrap();
    let time = cardbridge::http::find_header(&sent.headers, "Request-Time").unwrap();
    let sent_ms = cardbridge::alipayplus::time::parse_header_time(time).unwrap();
    let behind = now_ms() - sent_ms;
    assert!((86_390_000..=86_410_000).contains(&behind), "{time}");
}
