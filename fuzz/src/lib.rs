//! Shared set-up for the fuzz targets: the test keys, integrations on a fresh
//! memory store, request framing and valid signing, and the property checks
//! every target asserts (no panic is implied by libFuzzer itself).

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use cardbridge::alipayplus::{self, AlipayPlus, Begin, InboundApi};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::crypto::rsa;
use cardbridge::http::{HttpRequest, HttpResponse};
use cardbridge::store::{MemoryStore, Store};
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{self, CallbackBegin, WechatPay};

pub const CLIENT_ID: &str = "2022TEST_CLIENT";
pub const NOTIFY: &str = "/v2/pds/memberships/notifyCardRegistration";
pub const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
pub const API_V3: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";

pub struct Keys {
    pub merchant: PrivateKey,
    pub platform: PrivateKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        merchant: PrivateKey::from_pem(include_str!("../../tests/fixtures/keys/test_merchant_private.pem")).unwrap(),
        platform: PrivateKey::from_pem(include_str!("../../tests/fixtures/keys/test_platform_private.pem")).unwrap(),
    })
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An Alipay+ integration (inbound only) on a fresh memory store.
pub fn alipay() -> AlipayPlus {
    let k = keys();
    let config = alipayplus::Config::new(CLIENT_ID, k.merchant.clone(), k.platform.public_key());
    AlipayPlus::new(config, Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>)).unwrap()
}

/// A WeChat Pay integration (callbacks) on a fresh memory store.
pub fn wechat() -> WechatPay {
    let k = keys();
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, k.platform.public_key()).unwrap();
    let signer = RequestSigner::new(
        "1900000001",
        "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
        k.merchant.clone(),
    )
    .unwrap();
    let config = wechatpay::Config::new(signer, k.merchant.clone(), ApiV3Key::new(API_V3).unwrap(), ring);
    WechatPay::new(config, Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>)).unwrap()
}

/// Frames raw bytes as a request: line 1 `METHOD TARGET`, then `Name: value`
/// lines up to an empty line, then the body. Anything goes, lossily.
pub fn framed_request(data: &[u8]) -> HttpRequest {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or(("POST", first));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpRequest {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: body.to_vec(),
    }
}

/// A notification to `target` signed correctly by the platform key.
pub fn signed_alipay_request(target: &str, body: &[u8]) -> HttpRequest {
    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string();
    let sig = alipayplus::signature::sign_base64(&keys().platform, "POST", target, CLIENT_ID, &time, body).unwrap();
    HttpRequest {
        method: "POST".into(),
        target: target.into(),
        headers: vec![
            ("Content-Type".into(), "application/json; charset=UTF-8".into()),
            ("Client-Id".into(), CLIENT_ID.into()),
            ("Request-Time".into(), time),
            ("Signature".into(), alipayplus::signature::header_value("1", &sig)),
        ],
        body: body.to_vec(),
    }
}

/// A WeChat Pay callback whose body is signed correctly with the platform key.
pub fn signed_wechat_callback(body: &[u8]) -> HttpRequest {
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = "fuzzNonce0123456789abcdef0123456";
    let message = wechatpay::verify::message(&ts, nonce, body);
    let sig = base64::engine::general_purpose::STANDARD.encode(rsa::sign_sha256(&keys().platform, &message).unwrap());
    HttpRequest {
        method: "POST".into(),
        target: "/notify".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Wechatpay-Timestamp".into(), ts),
            ("Wechatpay-Nonce".into(), nonce.into()),
            ("Wechatpay-Signature".into(), sig),
            ("Wechatpay-Serial".into(), PUB_KEY_ID.into()),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ],
        body: body.to_vec(),
    }
}

/// Drives one Alipay+ request through begin/finish and asserts the
/// properties: a decided answer is what every duplicate gets, byte for byte;
/// a late finish never changes it; refusals are well-formed HTTP answers.
pub fn check_alipay(ap: &AlipayPlus, request: &HttpRequest, decide_failure: bool) {
    let now = now_ms();
    match ap.begin(request, now) {
        Begin::Respond(r) => check_answer(&r),
        Begin::Decide(mut call) => {
            let decision: &[u8] = if decide_failure {
                br#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"fuzz"}}"#
            } else {
                b"{}"
            };
            let Ok(first) = ap.finish(&mut call, decision, now) else {
                return;
            };
            check_answer(&first);
            if call.api() == InboundApi::NotifyCardRegistration {
                match ap.begin(request, now) {
                    Begin::Respond(again) => assert_eq!(again.body, first.body, "answer stability"),
                    Begin::Decide(_) => panic!("a decided requestId reached the host again"),
                }
            }
            assert!(ap.finish(&mut call, b"{}", now).is_err(), "a call finishes once");
        }
    }
}

/// Drives one WeChat callback through begin/finish: a processed id is
/// acknowledged without the host afterwards.
pub fn check_wechat(wp: &WechatPay, request: &HttpRequest) {
    let now = chrono::Utc::now().timestamp_millis();
    match wp.callback_begin(request, now) {
        CallbackBegin::Respond(r) => check_answer(&r),
        CallbackBegin::Handle(mut event) => {
            let _ = event.to_json();
            let Ok(first) = wp.callback_finish(&mut event, true, "", now) else {
                return;
            };
            check_answer(&first);
            match wp.callback_begin(request, now) {
                CallbackBegin::Respond(again) => assert_eq!(again.status, first.status, "duplicate acknowledged"),
                CallbackBegin::Handle(_) => panic!("an accepted notification reached the host again"),
            }
        }
    }
}

/// Every answer is a sane HTTP answer whose headers carry no control characters.
pub fn check_answer(r: &HttpResponse) {
    assert!((100..600).contains(&r.status), "status {}", r.status);
    for (name, value) in &r.headers {
        assert!(
            !name.bytes().chain(value.bytes()).any(|b| b < 0x20 || b == 0x7f),
            "control character in header {name}"
        );
    }
}
