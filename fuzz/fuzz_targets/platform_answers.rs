//! Platform answers: an issueCard answer judged exactly as the delivery
//! engine judges it (status, headers and body fuzzed, and the same body
//! validly signed), and WeChat Pay answer verification.
#![no_main]
use cardbridge::alipayplus::{self, client::judge};
use cardbridge::http::HttpResponse;
use cardbridge::outbox::Verdict;
use cardbridge::wechatpay::{self, KeyRing, VerifyOptions};
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;

const TARGET: &str = "/v2/pds/memberships/issueCard";

fuzz_target!(|data: &[u8]| {
    let request = framed_request(data);
    let k = keys();
    let config = alipayplus::Config::new(CLIENT_ID, k.merchant.clone(), k.platform.public_key());
    let status = data
        .first()
        .map_or(200, |b| if b & 1 == 0 { 200 } else { u16::from(*b) + 100 });
    let raw = HttpResponse {
        status,
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    if let Verdict::Success { .. } = judge(&config, TARGET, raw) {
        panic!("an answer without a valid signature was trusted");
    }
    // The same body, validly signed by the platform, as the engine receives it.
    let signed = signed_alipay_request(TARGET, &request.body);
    let answer = HttpResponse {
        status: 200,
        headers: vec![
            ("Client-Id".into(), CLIENT_ID.into()),
            ("Response-Time".into(), signed.headers[2].1.clone()),
            ("Signature".into(), signed.headers[3].1.clone()),
        ],
        body: request.body.clone(),
    };
    let _ = judge(&config, TARGET, answer);

    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, k.platform.public_key()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let _ = wechatpay::verify::verify(&ring, &request.headers, &request.body, now, VerifyOptions::default());
});
