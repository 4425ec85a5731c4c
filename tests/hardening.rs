//! Issue 7, items 4–6: configured header values, URL checks, body size,
//! duplicate members and numbers that pass through unaltered. Each test
//! failed before its fix. Loopback only (most need no network at all).

mod common;

use crate::common::emulator::{EmulatorConfig, PlatformDriver, Tamper, sample_registration};
use cardbridge::alipayplus::model::{self, Direction};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::{b64_encode, rsa};
use cardbridge::http::{HttpRequest, HttpResponse};
use cardbridge::store::MemoryStore;
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{self, CallbackBegin, WechatPay};
use cardbridge::{Error, ErrorKind};
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;

const INJECTION: &str = "\r\nSet-Cookie: x=1";
const NOTIFY: &str = "/v2/pds/memberships/notifyCardRegistration";
const T: &str = "2026-11-23T10:00:00.000+00:00";

fn alipay_json(extra: Value) -> Vec<u8> {
    let mut c = json!({
        "client_id": CLIENT_ID,
        "merchant_private_key": fixture("test_merchant_private.pem"),
        "platform_public_key": fixture("test_platform_public.pem"),
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string().into_bytes()
}

fn alipay_error(extra: Value) -> Error {
    Config::from_json(&alipay_json(extra)).expect_err("config accepted")
}

fn handler(config: Config) -> AlipayPlus {
    AlipayPlus::new(config, Some(Arc::new(MemoryStore::new()))).unwrap()
}

fn driver() -> PlatformDriver {
    PlatformDriver::new(platform_key(), CLIENT_ID, "1")
}

fn result_of(resp: &HttpResponse) -> (String, String, String) {
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    let text = |k: &str| v["result"][k].as_str().unwrap_or_default().to_string();
    (text("resultStatus"), text("resultCode"), text("resultMessage"))
}

fn respond(b: Begin) -> HttpResponse {
    match b {
        Begin::Respond(r) => r,
        Begin::Decide(p) => panic!("the host was asked for {:?}", p.api()),
    }
}

fn assert_no_header_injection(resp: &HttpResponse) {
    for (n, v) in &resp.headers {
        assert!(
            !n.bytes().chain(v.bytes()).any(|b| b.is_ascii_control()),
            "control character in header {n}"
        );
        assert!(!n.eq_ignore_ascii_case("Set-Cookie"), "injected header");
    }
}

// ---------------------------------------------------------------------------
// 4. Header values
// ---------------------------------------------------------------------------

#[test]
fn alipay_header_values_with_control_characters_are_refused_at_configuration() {
    for field in ["client_id", "key_version"] {
        for bad in [
            format!("2022X{INJECTION}"),
            "a\nb".into(),
            "a\u{7f}".into(),
            "a b".into(),
            "a\tb".into(),
        ] {
            let e = alipay_error(json!({ field: bad }));
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{field}");
            assert_eq!(e.field(), Some(format!("config.{field}").as_str()));
            assert!(e.message().contains("control characters"), "{e}");
            assert!(!e.message().contains("Set-Cookie"), "the value is never echoed: {e}");
        }
    }
    let e = alipay_error(json!({"key_version": "1,signature=x"}));
    assert_eq!(e.field(), Some("config.key_version"));
    let e = alipay_error(json!({"path_prefix": "/api\r\nX: y"}));
    assert_eq!(e.field(), Some("config.path_prefix"));
    let e = alipay_error(json!({"inbound_public_prefix": "/a?b"}));
    assert_eq!(e.field(), Some("config.inbound_public_prefix"));

    // A Config built in Rust is checked too, when the integration is made.
    let mut c = config(None);
    c.client_id = format!("{CLIENT_ID}{INJECTION}");
    let e = AlipayPlus::new(c, Some(Arc::new(MemoryStore::new()))).unwrap_err();
    assert_eq!(e.field(), Some("config.client_id"));
    let mut c = config(None);
    c.key_version = format!("1{INJECTION}");
    let e = AlipayPlus::new(c, Some(Arc::new(MemoryStore::new()))).unwrap_err();
    assert_eq!(e.field(), Some("config.key_version"));

    // And the emulator, which emits the same headers.
    let mut ec = EmulatorConfig::new(platform_key(), merchant_key().public_key(), CLIENT_ID);
    ec.key_version = format!("1{INJECTION}");
    let e = crate::common::emulator::AlipayPlatformEmulator::start(ec).unwrap_err();
    assert_eq!(e.field(), Some("emulator.key_version"));
}

#[test]
fn wechat_header_values_with_control_characters_are_refused_with_the_field_named() {
    let base = || {
        json!({"mchid": "1900000001", "merchant_serial_no": "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
               "merchant_private_key": fixture("test_merchant_private.pem"),
               "api_v3_key": "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
               "wechatpay_public_key_id": "PUB_KEY_ID_0114232134912410000000000000",
               "wechatpay_public_key": fixture("test_platform_public.pem")})
    };
    assert!(wechatpay::Config::from_json(base().to_string().as_bytes()).is_ok());
    for (member, field) in [
        ("mchid", "wechatpay.mchid"),
        ("merchant_serial_no", "wechatpay.merchant_serial_no"),
        ("wechatpay_public_key_id", "config.wechatpay_public_key_id"),
    ] {
        let mut c = base();
        c[member] = json!(format!("{}{INJECTION}", c[member].as_str().unwrap()));
        let e = wechatpay::Config::from_json(c.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_eq!(e.field(), Some(field), "{member}: {e}");
        assert!(!e.message().contains("Set-Cookie"), "{e}");
    }
    let t = cardbridge::http::TransportConfig {
        user_agent: format!("pos/1{INJECTION}"),
        ..Default::default()
    };
    let e = cardbridge::http::Transport::new(&t).unwrap_err();
    assert_eq!(e.field(), Some("transport.user_agent"));
}

#[test]
fn the_received_client_id_is_never_echoed_into_response_headers() {
    let ap = handler(config(None));
    let mut req = driver()
        .request(NOTIFY, &sample_registration("HDR-1"), T, Tamper::None)
        .unwrap();
    for (n, v) in req.headers.iter_mut() {
        if n.eq_ignore_ascii_case("Client-Id") {
            *v = format!("{CLIENT_ID}{INJECTION}");
        }
    }
    let resp = respond(ap.begin(&req, now_ms()));
    assert_eq!(result_of(&resp).1, "ACCESS_DENIED");
    assert_eq!(
        resp.header("Client-Id"),
        Some(CLIENT_ID),
        "the configured id, not the received one"
    );
    assert_no_header_injection(&resp);

    // A correct call: the answer carries the configured id as well.
    let req = driver()
        .request(NOTIFY, &sample_registration("HDR-2"), T, Tamper::None)
        .unwrap();
    let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
        panic!("host not asked")
    };
    let resp = ap.finish(&mut call, b"{}", now_ms()).unwrap();
    assert_eq!(resp.header("Client-Id"), Some(CLIENT_ID));
    assert_no_header_injection(&resp);
}

// ---------------------------------------------------------------------------
// 5. URLs
// ---------------------------------------------------------------------------

#[test]
fn base_urls_with_user_information_or_remote_plain_http_are_refused() {
    for url in [
        "http://localhost:1@192.0.2.2",
        "http://127.0.0.1:1@192.0.2.2:8080",
        "http://[::ffff:192.0.2.2]",
        "https://merchant:s3cret@open-sea-global.alipay.com",
        "http://%6c%6fcalhost:1",
    ] {
        let e = alipay_error(json!({ "base_url": url }));
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        assert_eq!(e.field(), Some("config.base_url"), "{url}: {e}");
        assert!(!e.message().contains("s3cret"), "{e}");
    }
    for url in [
        "http://[::1]:8080",
        "HTTP://127.0.0.1:9",
        "HTTPS://open-sea-global.alipay.com",
    ] {
        Config::from_json(&alipay_json(json!({ "base_url": url }))).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let mut c = config(Some("http://localhost:1@192.0.2.2".into()));
    c.base_url = Some("http://localhost:1@192.0.2.2".into());
    assert_eq!(
        AlipayPlus::new(c, Some(Arc::new(MemoryStore::new())))
            .unwrap_err()
            .field(),
        Some("config.base_url")
    );
}

// ---------------------------------------------------------------------------
// 6. Body size
// ---------------------------------------------------------------------------

#[test]
fn oversized_alipay_bodies_are_refused_first_with_a_signed_param_illegal() {
    assert_eq!(config(None).max_body_bytes, 1 << 20, "documented default");
    let mut c = config(None);
    c.max_body_bytes = 600;
    let ap = handler(c);
    let body = sample_registration("SIZE-1");
    assert!(body.len() < 600);
    // At the limit: handled normally.
    let mut padded = body.clone();
    padded.truncate(padded.len() - 1);
    padded.extend(std::iter::repeat_n(b' ', 600 - body.len()));
    padded.push(b'}');
    assert_eq!(padded.len(), 600);
    let req = driver().request(NOTIFY, &padded, T, Tamper::None).unwrap();
    assert!(matches!(ap.begin(&req, now_ms()), Begin::Decide(_)));
    // One byte over, validly signed: refused before verification, parsing and the store.
    let mut over = padded.clone();
    over.insert(over.len() - 1, b' ');
    let req = driver().request(NOTIFY, &over, T, Tamper::None).unwrap();
    let resp = respond(ap.begin(&req, now_ms()));
    let (status, code, message) = result_of(&resp);
    assert_eq!((status.as_str(), code.as_str()), ("F", "PARAM_ILLEGAL"));
    assert_eq!(message, "the body must be at most 600 bytes");
    assert!(
        PlatformDriver::verify_response(&merchant_key().public_key(), &req, &resp),
        "signed"
    );
    // Unsigned garbage of that size gets the same answer: the size comes first.
    let junk = HttpRequest {
        method: "GET".into(),
        target: "/nowhere".into(),
        headers: vec![],
        body: vec![b'x'; 601],
    };
    assert_eq!(result_of(&respond(ap.begin(&junk, now_ms()))).2, message);

    let e = alipay_error(json!({"max_body_bytes": 0}));
    assert_eq!(e.field(), Some("config.max_body_bytes"));
    let e = alipay_error(json!({"max_body_bytes": "1MB"}));
    assert_eq!(e.message(), "config.max_body_bytes: must be an unsigned integer");
    let c = Config::from_json(&alipay_json(json!({"max_body_bytes": 4096}))).unwrap();
    assert_eq!(c.max_body_bytes, 4096);
}

const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const API_V3: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";

fn wechat(max_body_bytes: Option<usize>) -> WechatPay {
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, platform_key().public_key()).unwrap();
    let signer = RequestSigner::new("1900000001", "5F1C72E2A8931B72A2E13AF8DEE92471EB397115", merchant_key()).unwrap();
    let mut c = wechatpay::Config::new(signer, merchant_key(), ApiV3Key::new(API_V3).unwrap(), ring);
    c.base_url = "http://127.0.0.1:9".into();
    if let Some(m) = max_body_bytes {
        c.max_body_bytes = m;
    }
    WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap()
}

/// A callback whose raw body is exactly `body`, signed by WeChat Pay's (test) key.
fn signed_callback(body: &[u8], now: i64) -> HttpRequest {
    let ts = now.to_string();
    let nonce = "NONCE0123456789";
    let sig = rsa::sign_sha256(&platform_key(), &wechatpay::verify::message(&ts, nonce, body)).unwrap();
    HttpRequest {
        method: "POST".into(),
        target: "/notify".into(),
        headers: vec![
            ("Wechatpay-Timestamp".into(), ts),
            ("Wechatpay-Nonce".into(), nonce.into()),
            ("Wechatpay-Signature".into(), b64_encode(&sig)),
            ("Wechatpay-Serial".into(), PUB_KEY_ID.into()),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ],
        body: body.to_vec(),
    }
}

/// A callback envelope (raw text, members as given) sealing `resource` (raw text).
fn envelope(id_members: &str, resource: &str) -> String {
    let key = ApiV3Key::new(API_V3).unwrap();
    let ct = key.encrypt(b"0123456789ab", b"user_card", resource.as_bytes()).unwrap();
    format!(
        r#"{{{id_members},"event_type":"BRAND_MEMBER_CARD_SP.USER_CARD.CREATE","resource_type":"encrypt-resource","resource":{{"algorithm":"AEAD_AES_256_GCM","ciphertext":"{ct}","associated_data":"user_card","nonce":"0123456789ab"}}}}"#
    )
}

fn chrono_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn oversized_wechat_callbacks_get_413_before_anything_else() {
    assert_eq!(
        wechatpay::Config::new(
            RequestSigner::new("1", "A", merchant_key()).unwrap(),
            merchant_key(),
            ApiV3Key::new(API_V3).unwrap(),
            KeyRing::new()
        )
        .max_body_bytes,
        1 << 20
    );
    let wp = wechat(Some(700));
    let ok = envelope(r#""id":"EV-SIZE""#, r#"{"card_id":"c","user_card_code":"1"}"#);
    assert!(ok.len() <= 700, "{}", ok.len());
    assert!(matches!(
        wp.callback_begin(&signed_callback(ok.as_bytes(), chrono_now()), chrono_now() * 1000),
        CallbackBegin::Handle(_)
    ));
    let big = format!("{ok}{}", " ".repeat(701 - ok.len()));
    match wp.callback_begin(&signed_callback(big.as_bytes(), chrono_now()), chrono_now() * 1000) {
        CallbackBegin::Respond(r) => {
            assert_eq!(r.status, 413);
            assert!(String::from_utf8_lossy(&r.body).contains("at most 700 bytes"));
        }
        CallbackBegin::Handle(_) => panic!("an oversized callback reached the host"),
    }
    // Unsigned and not even POST: still 413 first.
    let junk = HttpRequest {
        method: "GET".into(),
        body: vec![0; 701],
        ..Default::default()
    };
    let CallbackBegin::Respond(r) = wp.callback_begin(&junk, chrono_now() * 1000) else {
        panic!()
    };
    assert_eq!(r.status, 413);
}

// ---------------------------------------------------------------------------
// 6. Duplicate members
// ---------------------------------------------------------------------------

#[test]
fn duplicate_members_in_alipay_calls_are_refused_naming_the_member() {
    let ap = handler(config(None));
    let body = String::from_utf8(sample_registration("DUP-A")).unwrap();
    let cases = [
        (
            body.replacen(
                r#""requestId":"DUP-A""#,
                r#""requestId":"DUP-A","requestId":"DUP-B""#,
                1,
            ),
            "notifyCardRegistration.requestId: must appear only once (duplicate member)",
        ),
        (
            body.replacen(
                r#""fieldValue":"John Doe""#,
                r#""fieldValue":"John Doe","fieldValue":"Jane Roe""#,
                1,
            ),
            "notifyCardRegistration.registrationFields[0].fieldValue: must appear only once (duplicate member)",
        ),
    ];
    for (raw, want) in cases {
        assert_ne!(raw, body);
        let req = driver().request(NOTIFY, raw.as_bytes(), T, Tamper::None).unwrap();
        let resp = respond(ap.begin(&req, now_ms()));
        assert_eq!(result_of(&resp), ("F".into(), "PARAM_ILLEGAL".into(), want.into()));
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("Jane"),
            "values are not echoed"
        );
    }
    // The host's decision and the normaliser refuse them too.
    let req = driver()
        .request(NOTIFY, &sample_registration("DUP-C"), T, Tamper::None)
        .unwrap();
    let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
        panic!()
    };
    let e = ap
        .finish(&mut call, br#"{"extendInfo":"a","extendInfo":"b"}"#, now_ms())
        .unwrap_err();
    assert_eq!(e.field(), Some("notifyCardRegistrationResponse.extendInfo"));
    let e = model::normalize("issueCard", br#"{"appId":"a","appId":"b"}"#, Direction::Outbound).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::Validation, Some("issueCard.appId")));
}

#[test]
fn duplicate_members_in_wechat_callbacks_are_refused_naming_the_member() {
    let wp = wechat(None);
    let good_resource = r#"{"card_id":"c","user_card_code":"1"}"#;
    let cases = [
        (envelope(r#""id":"EV-1","id":"EV-2""#, good_resource), "callback.id"),
        (
            envelope(
                r#""id":"EV-3""#,
                r#"{"card_id":"c","user_card_code":"1","user_card_code":"2"}"#,
            ),
            "callback.resource.user_card_code",
        ),
    ];
    for (body, member) in cases {
        match wp.callback_begin(&signed_callback(body.as_bytes(), chrono_now()), chrono_now() * 1000) {
            CallbackBegin::Respond(r) => {
                assert_eq!(r.status, 400);
                let msg: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(
                    msg["message"],
                    format!("{member}: must appear only once (duplicate member)")
                );
            }
            CallbackBegin::Handle(_) => panic!("a callback with duplicate members reached the host"),
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Numbers pass through unaltered
// ---------------------------------------------------------------------------

#[test]
fn normalisation_keeps_numbers_exactly_and_is_a_fixed_point() {
    let mut v: Value = serde_json::from_slice(&sample_registration("NUM-1")).unwrap();
    let mut body = serde_json::to_string(&v).unwrap();
    body.truncate(body.len() - 1);
    body.push_str(r#","score":9.888888888888888888e+27,"big":123456789012345678901234567890,"f":0.1000}"#);
    let once = model::normalize("notifyCardRegistration", body.as_bytes(), Direction::Inbound).unwrap();
    let text = String::from_utf8(once.clone()).unwrap();
    for n in ["9.888888888888888888e+27", "123456789012345678901234567890", "0.1000"] {
        assert!(text.contains(n), "{n} altered: {text}");
    }
    let twice = model::normalize("notifyCardRegistration", &once, Direction::Inbound).unwrap();
    assert_eq!(once, twice, "normalisation is a fixed point");

    // A numeric card field value becomes its exact text.
    v = json!({"appId": "2102010113769000", "customerBelongsTo": "TNG", "requestId": "NUM-2",
               "customerId": "1", "externalCustomerId": "M-1", "registerDate": "2026-11-23T10:00:00+08:00",
               "cardFields": [{"fieldCode": "POINT", "fieldValue": 0}]});
    let raw = serde_json::to_string(&v)
        .unwrap()
        .replace(r#""fieldValue":0"#, r#""fieldValue":9.888888888888888888e+27"#);
    let once = model::normalize("issueCard", raw.as_bytes(), Direction::Outbound).unwrap();
    assert!(
        String::from_utf8_lossy(&once).contains(r#""fieldValue":"9.888888888888888888e+27""#),
        "{}",
        String::from_utf8_lossy(&once)
    );
    assert_eq!(model::normalize("issueCard", &once, Direction::Outbound).unwrap(), once);
}

#[test]
fn the_c_abi_refuses_oversized_bodies_for_both_platforms() {
    use cardbridge::ffi::alipayplus::*;
    use cardbridge::ffi::bytes::*;
    use cardbridge::ffi::error::cardbridge_result;
    use cardbridge::ffi::wechatpay::*;
    use std::ptr;

    fn body_of(resp: *mut cardbridge_http_response) -> (u16, String) {
        let (mut data, mut len, mut err) = (ptr::null(), 0, ptr::null_mut());
        assert_eq!(
            cardbridge_http_response_body(resp, &mut data, &mut len, &mut err),
            cardbridge_result::Ok
        );
        // SAFETY: `len` bytes at `data`, valid while `resp` lives.
        let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(data, len) }).into_owned();
        let status = cardbridge_http_response_status(resp);
        cardbridge_http_response_free(resp);
        (status, text)
    }

    let body = vec![b' '; 2049];
    let config = String::from_utf8(alipay_json(json!({"max_body_bytes": 2048}))).unwrap();
    let (mut ap, mut err) = (ptr::null(), ptr::null_mut());
    assert_eq!(
        cardbridge_alipayplus_new(config.as_ptr().cast(), config.len(), ptr::null(), &mut ap, &mut err),
        cardbridge_result::InvalidConfig,
        "no store: refused"
    );
    cardbridge::ffi::error::cardbridge_error_free(err);
    let mut store = ptr::null();
    let mut err = ptr::null_mut();
    assert_eq!(
        cardbridge::ffi::store::cardbridge_store_new_memory(&mut store, &mut err),
        cardbridge_result::Ok
    );
    assert_eq!(
        cardbridge_alipayplus_new(config.as_ptr().cast(), config.len(), store, &mut ap, &mut err),
        cardbridge_result::Ok
    );
    let (mut resp, mut call) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(
        cardbridge_alipayplus_begin(
            ap,
            "POST".as_ptr().cast(),
            4,
            NOTIFY.as_ptr().cast(),
            NOTIFY.len(),
            ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            now_ms(),
            &mut resp,
            &mut call,
            &mut err,
        ),
        cardbridge_result::Ok
    );
    assert!(call.is_null());
    let (status, text) = body_of(resp);
    assert_eq!(status, 200);
    assert!(
        text.contains("PARAM_ILLEGAL") && text.contains("at most 2048 bytes"),
        "{text}"
    );
    cardbridge_alipayplus_free(ap);

    let wechat = json!({"mchid": "1900000001", "merchant_serial_no": "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
                        "merchant_private_key": fixture("test_merchant_private.pem"),
                        "api_v3_key": "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                        "wechatpay_public_key_id": PUB_KEY_ID,
                        "wechatpay_public_key": fixture("test_platform_public.pem"),
                        "base_url": "http://127.0.0.1:9", "max_body_bytes": 2048})
    .to_string();
    let mut wp = ptr::null();
    assert_eq!(
        cardbridge_wechatpay_new(wechat.as_ptr().cast(), wechat.len(), store, &mut wp, &mut err),
        cardbridge_result::Ok
    );
    let (mut resp, mut event) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(
        cardbridge_wechatpay_callback_begin(
            wp,
            "POST".as_ptr().cast(),
            4,
            "/notify".as_ptr().cast(),
            7,
            ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            chrono_now() * 1000,
            &mut resp,
            &mut event,
            &mut err,
        ),
        cardbridge_result::Ok
    );
    assert!(event.is_null());
    assert_eq!(body_of(resp).0, 413);
    cardbridge_wechatpay_free(wp);
    cardbridge::ffi::store::cardbridge_store_free(store);
}
