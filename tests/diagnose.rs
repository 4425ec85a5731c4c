//! Inbound signature diagnosis (issue 13.1): each proxy, body and clock
//! hypothesis makes the library name the right fix, the call is still
//! refused, and the diagnosis carries no body, signature or personal data.

use cardbridge::alipayplus::{AlipayPlus, Begin, Config, signature};
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::crypto::{b64_encode, rsa};
use cardbridge::diagnose::{self, Diagnosis, Variant};
use cardbridge::http::HttpRequest;
use cardbridge::store::MemoryStore;
use cardbridge::wechatpay::KeyRing;
use cardbridge::wechatpay::verify::{VerifyOptions, message};
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "2022TEST_CLIENT";
const API: &str = "/v2/pds/memberships/notifyCardRegistration";
const PERSONAL: &str = "alice@example.com";

fn key(name: &str) -> PrivateKey {
    let pem = std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    PrivateKey::from_pem(&pem).unwrap()
}

fn platform() -> PrivateKey {
    key("test_platform_private.pem")
}

fn config() -> Config {
    Config::new(CLIENT, key("test_merchant_private.pem"), platform().public_key())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn body() -> Vec<u8> {
    format!(
        r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"REQ-DIAG-1","customerId":"210911290000","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{{"fieldCode":"EMAIL","fieldValue":"{PERSONAL}"}}]}}"#
    )
    .into_bytes()
}

fn request_time(now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// A platform call signed over `signed_uri` and `signed_body`, received as
/// `target` with `received_body`.
fn alipay_call(
    signed_uri: &str,
    signed_body: &[u8],
    target: &str,
    received_body: &[u8],
    time: &str,
    extra: &[(&str, &str)],
) -> HttpRequest {
    let sig = signature::sign_base64(&platform(), "POST", signed_uri, CLIENT, time, signed_body).unwrap();
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/json; charset=UTF-8".to_string(),
        ),
        ("Client-Id".to_string(), CLIENT.to_string()),
        ("Request-Time".to_string(), time.to_string()),
        ("Signature".to_string(), signature::header_value("1", &sig)),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    HttpRequest {
        method: "POST".into(),
        target: target.into(),
        headers,
        body: received_body.to_vec(),
    }
}

/// Diagnoses `req` under `config` and checks the handler refuses it anyway.
fn diagnosed(config: Config, req: &HttpRequest) -> Diagnosis {
    let now = now_ms();
    let d = diagnose::alipay_inbound(&config, req, now).expect("a refused call has a diagnosis");
    let ap = AlipayPlus::new(config, Some(Arc::new(MemoryStore::new()))).unwrap();
    assert!(
        matches!(ap.begin(req, now), Begin::Respond(_)),
        "the diagnosis must not weaken the check"
    );
    let shown = d.to_json().to_string();
    assert!(!shown.contains(PERSONAL), "no personal data in {shown}");
    assert!(!shown.contains("fieldValue"), "no body in {shown}");
    if let Some(sig) = cardbridge::http::find_header(&req.headers, "Signature") {
        let sig_value = sig.rsplit('=').next().unwrap_or_default();
        assert!(
            sig_value.len() < 20 || !shown.contains(&sig_value[..20]),
            "no signature in {shown}"
        );
    }
    d
}

#[test]
fn a_correct_call_has_no_diagnosis() {
    let t = request_time(now_ms());
    let req = alipay_call(API, &body(), API, &body(), &t, &[]);
    assert!(diagnose::alipay_inbound(&config(), &req, now_ms()).is_none());
}

#[test]
fn a_prefix_stripped_by_a_proxy_is_found_in_the_proxy_header() {
    let t = request_time(now_ms());
    let public = format!("/api/membership{API}");
    let req = alipay_call(&public, &body(), API, &body(), &t, &[("X-Original-URI", &public)]);
    let d = diagnosed(config(), &req);
    assert_eq!(d.check, "mismatch");
    assert_eq!(
        d.verified,
        Some(Variant::ProxyHeaderTarget {
            header: "X-Original-URI",
            prefix: Some("/api/membership".into())
        })
    );
    let fix = d.verified.unwrap().fix();
    assert!(
        fix.contains("`inbound_public_prefix`") && fix.contains("\"/api/membership\""),
        "{fix}"
    );
    // With the fix applied, the same call is accepted.
    let mut fixed = config();
    fixed.inbound_public_prefix = Some("/api/membership".into());
    assert!(diagnose::alipay_inbound(&fixed, &req, now_ms()).is_none());
}

#[test]
fn a_forwarded_prefix_header_names_the_prefix() {
    let t = request_time(now_ms());
    let public = format!("/shop{API}");
    let req = alipay_call(&public, &body(), API, &body(), &t, &[("X-Forwarded-Prefix", "/shop")]);
    let d = diagnosed(config(), &req);
    assert_eq!(
        d.verified,
        Some(Variant::ProxyHeaderTarget {
            header: "X-Forwarded-Prefix",
            prefix: Some("/shop".into())
        })
    );
}

#[test]
fn a_configured_prefix_that_is_not_needed_is_named() {
    let t = request_time(now_ms());
    let req = alipay_call(API, &body(), API, &body(), &t, &[]);
    let mut c = config();
    c.inbound_public_prefix = Some("/api/membership".into());
    let d = diagnosed(c, &req);
    assert_eq!(d.verified, Some(Variant::PrefixRemoved));
    assert!(
        d.summary().contains("remove `inbound_public_prefix`"),
        "{}",
        d.summary()
    );
}

#[test]
fn an_added_query_string_is_found() {
    let t = request_time(now_ms());
    let received = format!("{API}?s=/index/index/index");
    let req = alipay_call(API, &body(), &received, &body(), &t, &[]);
    let d = diagnosed(config(), &req);
    assert_eq!(d.verified, Some(Variant::QueryDropped));
}

#[test]
fn trailing_slashes_either_way_are_found() {
    let t = request_time(now_ms());
    let slashed = format!("{API}/");
    let req = alipay_call(API, &body(), &slashed, &body(), &t, &[]);
    assert_eq!(
        diagnose::alipay_inbound(&config(), &req, now_ms()).unwrap().verified,
        Some(Variant::TrailingSlashRemoved)
    );
    let req = alipay_call(&slashed, &body(), API, &body(), &t, &[]);
    assert_eq!(
        diagnose::alipay_inbound(&config(), &req, now_ms()).unwrap().verified,
        Some(Variant::TrailingSlashAdded)
    );
}

#[test]
fn percent_decoding_differences_are_found() {
    let t = request_time(now_ms());
    let mut c = config();
    // Signed encoded, received decoded (a framework decoded the path).
    c.inbound_public_prefix = None;
    let encoded = format!("/member%20card{API}");
    let decoded = format!("/member card{API}");
    let req = alipay_call(&encoded, &body(), &decoded, &body(), &t, &[]);
    assert_eq!(diagnosed(c.clone(), &req).verified, Some(Variant::PercentEncoded));
    // Signed plain, received with an encoded character.
    let plain = format!("/member~card{API}");
    let escaped = format!("/member%7Ecard{API}");
    let req = alipay_call(&plain, &body(), &escaped, &body(), &t, &[]);
    assert_eq!(diagnosed(c, &req).verified, Some(Variant::PercentDecoded));
}

#[test]
fn a_byte_order_mark_crlf_and_re_serialised_json_are_found() {
    let t = request_time(now_ms());
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(body());
    let req = alipay_call(API, &body(), API, &bom, &t, &[]);
    assert_eq!(diagnosed(config(), &req).verified, Some(Variant::BomRemoved));

    let lf = b"{\n\"a\":1\n}".to_vec();
    let crlf = b"{\r\n\"a\":1\r\n}".to_vec();
    let req = alipay_call(API, &lf, API, &crlf, &t, &[]);
    assert_eq!(diagnosed(config(), &req).verified, Some(Variant::CrlfToLf));
    let req = alipay_call(API, &crlf, API, &lf, &t, &[]);
    assert_eq!(diagnosed(config(), &req).verified, Some(Variant::LfToCrlf));

    let value: serde_json::Value = serde_json::from_slice(&body()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let req = alipay_call(API, &body(), API, &pretty, &t, &[]);
    let d = diagnosed(config(), &req);
    assert_eq!(d.verified, Some(Variant::JsonReserialised));
    assert!(
        d.verified.as_ref().unwrap().fix().contains("raw body"),
        "{}",
        d.summary()
    );
    assert_eq!(d.body_len, pretty.len());
}

#[test]
fn an_unexplained_mismatch_says_so_and_hints_at_re_encoding() {
    let t = request_time(now_ms());
    let value: serde_json::Value = serde_json::from_slice(&body()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    // Signed by another key: nothing verifies.
    let other = key("spec_alipay_private.pem");
    let sig = signature::sign_base64(&other, "POST", API, CLIENT, &t, &pretty).unwrap();
    let mut req = alipay_call(API, &pretty, API, &pretty, &t, &[]);
    req.headers[3].1 = signature::header_value("1", &sig);
    let d = diagnosed(config(), &req);
    assert_eq!(d.check, "mismatch");
    assert_eq!(d.verified, None);
    assert!(d.summary().contains("platform key"), "{}", d.summary());
    assert!(d.hints.iter().any(|h| h.contains("re-encoded")), "{:?}", d.hints);
}

#[test]
fn clock_skew_reports_the_measured_offset() {
    let now = now_ms();
    let t = request_time(now - 600_000);
    let req = alipay_call(API, &body(), API, &body(), &t, &[]);
    let mut c = config();
    c.max_clock_skew = Some(Duration::from_secs(300));
    let d = diagnose::alipay_inbound(&c, &req, now).unwrap();
    assert_eq!(d.check, "clock_skew");
    assert_eq!(d.offset_ms, Some(-600_000));
    assert!(d.summary().contains("-600000 ms"), "{}", d.summary());
    // Without a skew limit the same call verifies.
    assert!(diagnose::alipay_inbound(&config(), &req, now).is_none());
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let t = request_time(now_ms());
    let mut req = alipay_call(API, &body(), API, &body(), &t, &[]);
    req.headers.retain(|(n, _)| n != "Signature");
    assert_eq!(diagnosed(config(), &req).check, "header_missing");
    req.headers
        .push(("Signature".into(), "algorithm=RSA256,keyVersion=1".into()));
    assert!(matches!(
        diagnose::alipay_inbound(&config(), &req, now_ms()).unwrap().check,
        "header_missing" | "header_malformed"
    ));
    let mut req = alipay_call(API, &body(), API, &body(), &t, &[]);
    req.headers[1].1 = "SOMEONE_ELSE".into();
    assert_eq!(diagnosed(config(), &req).check, "unknown_key");
}

// WeChat Pay callbacks: the path is not signed, the body and the clock are.

const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_public_key(KEY_ID, platform().public_key()).unwrap();
    ring
}

fn callback(signed: &[u8], received: &[u8], ts: i64, serial: &str) -> HttpRequest {
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let sig = b64_encode(&rsa::sign_sha256(&platform(), &message(&ts.to_string(), nonce, signed)).unwrap());
    HttpRequest {
        method: "POST".into(),
        target: "/wechat/notify".into(),
        headers: vec![
            ("Wechatpay-Timestamp".into(), ts.to_string()),
            ("Wechatpay-Nonce".into(), nonce.into()),
            ("Wechatpay-Signature".into(), sig),
            ("Wechatpay-Serial".into(), serial.into()),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ],
        body: received.to_vec(),
    }
}

#[test]
fn wechat_callbacks_name_the_body_rewrite_and_the_clock() {
    let now = now_ms();
    let ts = now / 1000;
    let signed = format!(r#"{{"id":"EV-1","resource":{{"ciphertext":"{PERSONAL}"}}}}"#).into_bytes();
    let ok = callback(&signed, &signed, ts, KEY_ID);
    assert!(diagnose::wechat_callback(&ring(), &ok, now, VerifyOptions::default()).is_none());

    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(&signed);
    let d = diagnose::wechat_callback(
        &ring(),
        &callback(&signed, &bom, ts, KEY_ID),
        now,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!((d.check, d.verified), ("mismatch", Some(Variant::BomRemoved)));

    let value: serde_json::Value = serde_json::from_slice(&signed).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let d = diagnose::wechat_callback(
        &ring(),
        &callback(&signed, &pretty, ts, KEY_ID),
        now,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(d.verified, Some(Variant::JsonReserialised));
    let shown = d.to_json().to_string();
    assert!(!shown.contains(PERSONAL), "{shown}");

    let d = diagnose::wechat_callback(
        &ring(),
        &callback(&signed, &signed, ts - 900, KEY_ID),
        now,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(d.check, "clock_skew");
    let off = d.offset_ms.unwrap();
    assert!((-901_000..=-899_000).contains(&off), "{off}");
    assert_eq!(d.platform_clock_offset_ms, None, "no Date header");
    // With the platform's Date: its clock agrees with ours, so the message is old, not our clock wrong.
    let mut stale = callback(&signed, &signed, ts - 900, KEY_ID);
    let date = chrono::DateTime::from_timestamp(ts, 0).unwrap();
    stale
        .headers
        .push(("Date".into(), date.format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
    let d = diagnose::wechat_callback(&ring(), &stale, now, VerifyOptions::default()).unwrap();
    let platform = d.platform_clock_offset_ms.expect("measured from Date");
    assert!((-1_000..=0).contains(&platform), "{platform}");
    assert!(d.summary().contains("platform Date"), "{}", d.summary());

    let d = diagnose::wechat_callback(
        &ring(),
        &callback(&signed, &signed, ts, "PUB_KEY_ID_0000000000000000000000000000"),
        now,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(d.check, "unknown_key");
}
