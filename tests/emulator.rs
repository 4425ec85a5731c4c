//! The loopback emulator: the platform's `issueCard` endpoint (signatures,
//! idempotency, faults, counters), the platform → merchant driver, and the
//! HTTP server underneath.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{
    Action, AlipayPlatformEmulator, EmulatorConfig, Fault, HttpServer, PlatformDriver, Tamper, sample_registration,
};
use cardbridge::ErrorKind;
use cardbridge::alipayplus::signature::{self, SignatureFailure};
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::http::{Header, HttpRequest, HttpResponse, Transport, TransportConfig, find_header};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const CLIENT: &str = "2022EMU_TEST_CLIENT";
const ISSUE_TARGET: &str = "/api/open/v2/pds/memberships/issueCard";
const REQUEST_TIME: &str = "2024-05-22T06:42:21.123+08:00";

struct Keys {
    platform_private: PrivateKey,
    platform_public: PublicKey,
    merchant_private: PrivateKey,
    merchant_public: PublicKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let read = |name: &str| {
            std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        Keys {
            platform_private: PrivateKey::from_pem(&read("test_platform_private.pem")).unwrap(),
            platform_public: PublicKey::from_pem(&read("test_platform_public.pem")).unwrap(),
            merchant_private: PrivateKey::from_pem(&read("test_merchant_private.pem")).unwrap(),
            merchant_public: PublicKey::from_pem(&read("test_merchant_public.pem")).unwrap(),
        }
    })
}

fn config() -> EmulatorConfig {
    let k = keys();
    EmulatorConfig::new(k.platform_private.clone(), k.merchant_public.clone(), CLIENT)
}

fn emulator() -> AlipayPlatformEmulator {
    AlipayPlatformEmulator::start(config()).unwrap()
}

/// A compact issueCard body like the spec's vector A.
fn issue_body(request_id: &str) -> Vec<u8> {
    format!(
        r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"{request_id}","customerId":"210911290000","externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{{"fieldCode":"EMAIL","fieldValue":"email@example.com"}}]}}"#
    )
    .into_bytes()
}

/// Headers of a merchant request signed with `key` for `client_id`.
fn signed_headers(key: &PrivateKey, target: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<Header> {
    let sig = signature::sign_base64(key, "POST", target, client_id, time, body).unwrap();
    vec![
        ("Content-Type".into(), "application/json; charset=UTF-8".into()),
        ("Client-Id".into(), client_id.into()),
        ("Request-Time".into(), time.into()),
        ("Signature".into(), signature::header_value("1", &sig)),
    ]
}

fn transport(read_timeout: Duration) -> Transport {
    Transport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout,
        ..TransportConfig::default()
    })
    .unwrap()
}

fn post(
    emu: &AlipayPlatformEmulator,
    target: &str,
    headers: &[Header],
    body: &[u8],
) -> cardbridge::Result<HttpResponse> {
    transport(Duration::from_secs(10)).send(&format!("{}{target}", emu.base_url()), "POST", headers, body)
}

/// A correctly signed issueCard call.
fn issue(emu: &AlipayPlatformEmulator, body: &[u8]) -> cardbridge::Result<HttpResponse> {
    issue_at(emu, body, REQUEST_TIME)
}

fn issue_at(emu: &AlipayPlatformEmulator, body: &[u8], time: &str) -> cardbridge::Result<HttpResponse> {
    let headers = signed_headers(&keys().merchant_private, ISSUE_TARGET, CLIENT, time, body);
    post(emu, ISSUE_TARGET, &headers, body)
}

/// Verifies a platform answer as the merchant must (§4.7).
fn platform_signature_ok(response: &HttpResponse, target: &str) -> bool {
    let (Some(client), Some(time)) = (response.header("Client-Id"), response.header("Response-Time")) else {
        return false;
    };
    signature::verify(
        &keys().platform_public,
        response.header("Signature"),
        "POST",
        target,
        client,
        time,
        &response.body,
    )
    .is_ok()
}

/// (resultStatus, resultCode, resultMessage, cardNo)
fn outcome(response: &HttpResponse) -> (String, String, String, Option<String>) {
    let v: Value = serde_json::from_slice(&response.body).unwrap();
    let s = |x: &Value| x.as_str().unwrap().to_string();
    (
        s(&v["result"]["resultStatus"]),
        s(&v["result"]["resultCode"]),
        s(&v["result"]["resultMessage"]),
        v.get("cardNo").map(s),
    )
}

fn assert_signed_status(response: &HttpResponse, status: &str, code: &str) {
    assert_eq!(response.status, 200);
    let (s, c, _, _) = outcome(response);
    assert_eq!(
        (s.as_str(), c.as_str()),
        (status, code),
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(platform_signature_ok(response, ISSUE_TARGET), "answer must be signed");
}

#[test]
fn success_is_signed_by_the_platform_and_counted() {
    let emu = emulator();
    let body = issue_body("req-success");
    let resp = issue(&emu, &body).unwrap();

    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json; charset=UTF-8"));
    assert_eq!(resp.header("Client-Id"), Some(CLIENT));
    let time = resp.header("Response-Time").unwrap();
    assert_eq!(time.len(), "2019-04-04T12:08:56.253+00:00".len(), "{time}");
    assert!(time.ends_with("+00:00"));
    assert!(
        chrono::DateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.3f%:z").is_ok(),
        "{time}"
    );
    assert!(
        resp.header("Signature")
            .unwrap()
            .starts_with("algorithm=RSA256,keyVersion=1,signature=")
    );
    assert!(platform_signature_ok(&resp, ISSUE_TARGET));
    // The merchant key must not verify the platform's answer.
    let wrong = signature::verify(
        &keys().merchant_public,
        resp.header("Signature"),
        "POST",
        ISSUE_TARGET,
        CLIENT,
        time,
        &resp.body,
    );
    assert_eq!(wrong, Err(SignatureFailure::Mismatch));

    let (status, code, message, card) = outcome(&resp);
    assert_eq!(
        (status.as_str(), code.as_str(), message.as_str()),
        ("S", "SUCCESS", "Success")
    );
    let card = card.unwrap();
    assert!(card.starts_with("EMU") && card.len() == 27 && card[3..].bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        String::from_utf8(resp.body.clone()).unwrap(),
        format!(
            r#"{{"result":{{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}},"cardNo":"{card}"}}"#
        )
    );
    assert_eq!(emu.card_no_for("req-success"), Some(card));
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(emu.issue_card_hits(), 1);
    assert_eq!(emu.hits_for("req-success"), 1);
    assert_eq!(emu.hits_for("other"), 0);

    let last = emu.last_request().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.target, ISSUE_TARGET);
    assert_eq!(last.body, body);
    assert_eq!(find_header(&last.headers, "request-time"), Some(REQUEST_TIME));
}

#[test]
fn replay_by_request_id_returns_the_byte_identical_answer() {
    let emu = emulator();
    let body = issue_body("req-replay");
    let first = issue_at(&emu, &body, "2024-05-22T06:42:21.001+08:00").unwrap();
    let second = issue_at(&emu, &body, "2024-05-22T06:42:23.001+08:00").unwrap();
    assert_eq!(first.body, second.body);
    assert!(
        platform_signature_ok(&second, ISSUE_TARGET),
        "replays are signed afresh"
    );

    // Same requestId, different payload: still the stored result.
    let mut other: Value = serde_json::from_slice(&body).unwrap();
    other["externalCustomerId"] = "M-999999".into();
    let other = serde_json::to_vec(&other).unwrap();
    let third = issue(&emu, &other).unwrap();
    assert_eq!(third.body, first.body);

    // A different requestId gets a different card.
    let fresh = issue(&emu, &issue_body("req-replay-2")).unwrap();
    assert_ne!(outcome(&fresh).3, outcome(&first).3);

    assert_eq!(emu.cards_issued(), 2);
    assert_eq!(emu.hits_for("req-replay"), 3);
    assert_eq!(emu.issue_card_hits(), 4);
}

#[test]
fn bad_merchant_signatures_are_denied_and_not_processed() {
    let emu = emulator();
    let body = issue_body("req-badsig");
    let k = keys();
    let good = signed_headers(&k.merchant_private, ISSUE_TARGET, CLIENT, REQUEST_TIME, &body);

    let mut changed = body.clone();
    *changed.iter_mut().rev().find(|b| b.is_ascii_alphabetic()).unwrap() ^= 0x20;
    let wrong_key = signed_headers(&k.platform_private, ISSUE_TARGET, CLIENT, REQUEST_TIME, &body);
    let wrong_client = signed_headers(&k.merchant_private, ISSUE_TARGET, "OTHER_CLIENT", REQUEST_TIME, &body);
    let no_prefix = signed_headers(
        &k.merchant_private,
        "/v2/pds/memberships/issueCard",
        CLIENT,
        REQUEST_TIME,
        &body,
    );
    let other_time: Vec<Header> = good
        .iter()
        .map(|(n, v)| {
            if n == "Request-Time" {
                (n.clone(), "2024-05-22T06:42:21.124+08:00".into())
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    let unsigned: Vec<Header> = good.iter().filter(|(n, _)| n != "Signature").cloned().collect();

    let cases: Vec<(&str, Vec<Header>, Vec<u8>)> = vec![
        ("body changed after signing", good.clone(), changed),
        ("signed with the wrong key", wrong_key, body.clone()),
        ("unknown Client-Id", wrong_client, body.clone()),
        ("URI signed without the prefix", no_prefix, body.clone()),
        ("Request-Time changed after signing", other_time, body.clone()),
        ("no Signature header", unsigned, body.clone()),
    ];
    for (what, headers, payload) in cases {
        let resp = post(&emu, ISSUE_TARGET, &headers, &payload).unwrap();
        let (_, code, message, card) = outcome(&resp);
        assert!(card.is_none(), "{what}");
        if what == "unknown Client-Id" || what == "no Signature header" {
            assert_signed_status(&resp, "F", "ACCESS_DENIED");
            assert!(
                message == "signature verification failed" || message == "unknown Client-Id",
                "{what}: {message}"
            );
        } else {
            // Like the gateway: the string-to-sign it built from what it received.
            assert_signed_status(&resp, "F", "INVALID_SIGNATURE");
            let time = headers.iter().find(|(n, _)| n == "Request-Time").unwrap().1.clone();
            let built = signature::content_to_sign("POST", ISSUE_TARGET, CLIENT, &time, &payload);
            let echo = format!("网关生成的验签字符串为:{}", String::from_utf8_lossy(&built));
            assert!(message.ends_with(&echo), "{what} ({code}): {message}");
        }
    }
    assert_eq!(emu.cards_issued(), 0);
    assert_eq!(emu.hits_for("req-badsig"), 6);

    // The untouched request still succeeds afterwards.
    let resp = post(&emu, ISSUE_TARGET, &good, &body).unwrap();
    assert_signed_status(&resp, "S", "SUCCESS");
}

#[test]
fn missing_fields_are_param_illegal_naming_the_field() {
    let emu = emulator();
    let base: Value = serde_json::from_slice(&issue_body("req-fields")).unwrap();
    for field in [
        "appId",
        "customerBelongsTo",
        "requestId",
        "customerId",
        "externalCustomerId",
        "registerDate",
        "cardFields",
    ] {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(field);
        let resp = issue(&emu, &serde_json::to_vec(&v).unwrap()).unwrap();
        assert_signed_status(&resp, "F", "PARAM_ILLEGAL");
        assert_eq!(outcome(&resp).2, format!("{field} is required"));
    }
    let mut v = base.clone();
    v["cardFields"] = "EMAIL".into();
    let resp = issue(&emu, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_signed_status(&resp, "F", "PARAM_ILLEGAL");
    assert_eq!(outcome(&resp).2, "cardFields must be an array");

    let resp = issue(&emu, b"{not json").unwrap();
    assert_signed_status(&resp, "F", "PARAM_ILLEGAL");

    // Request-Time is required before a signature can even be checked.
    let body = issue_body("req-fields");
    let headers: Vec<Header> = signed_headers(&keys().merchant_private, ISSUE_TARGET, CLIENT, REQUEST_TIME, &body)
        .into_iter()
        .filter(|(n, _)| n != "Request-Time")
        .collect();
    let resp = post(&emu, ISSUE_TARGET, &headers, &body).unwrap();
    assert_signed_status(&resp, "F", "PARAM_ILLEGAL");
    assert!(outcome(&resp).2.contains("Request-Time"));

    assert_eq!(emu.cards_issued(), 0);
}

#[test]
fn unknown_paths_are_invalid_api_and_the_prefix_is_configurable() {
    let mut cfg = config();
    cfg.path_prefix = "/acl/api".into();
    let emu = AlipayPlatformEmulator::start(cfg).unwrap();
    let body = issue_body("req-prefix");

    // The default prefix is not served by this instance.
    let resp = issue(&emu, &body).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(outcome(&resp).1, "INVALID_API");
    assert!(platform_signature_ok(&resp, ISSUE_TARGET));
    assert_eq!(emu.issue_card_hits(), 0, "not an issueCard request");
    assert_eq!(emu.last_request().unwrap().target, ISSUE_TARGET);

    // The signed URI is the full request-target, query included.
    let target = "/acl/api/v2/pds/memberships/issueCard?trace=1";
    let headers = signed_headers(&keys().merchant_private, target, CLIENT, REQUEST_TIME, &body);
    let resp = post(&emu, target, &headers, &body).unwrap();
    assert_eq!(outcome(&resp).0, "S");
    assert!(platform_signature_ok(&resp, target));
    assert_eq!(emu.issue_card_hits(), 1);

    for bad in ["api/open", "/api/open/"] {
        let mut cfg = config();
        cfg.path_prefix = bad.into();
        assert_eq!(
            AlipayPlatformEmulator::start(cfg).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }
    let mut cfg = config();
    cfg.client_id.clear();
    assert_eq!(
        AlipayPlatformEmulator::start(cfg).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );
}

#[test]
fn faults_are_consumed_in_order_and_status_faults_do_not_process() {
    let emu = emulator();
    let body = issue_body("req-faults");
    emu.push_fault(Fault::Unknown);
    emu.push_fault(Fault::Fail {
        code: "PROCESS_FAIL".into(),
        message: "emulated failure".into(),
    });
    emu.push_fault(Fault::TrafficLimit);
    emu.push_fault(Fault::HttpStatus(503));
    emu.push_fault(Fault::SuccessWithoutCardNo);

    let r = issue(&emu, &body).unwrap();
    assert_signed_status(&r, "U", "UNKNOWN_EXCEPTION");
    assert!(outcome(&r).3.is_none());

    let r = issue(&emu, &body).unwrap();
    assert_signed_status(&r, "F", "PROCESS_FAIL");
    assert_eq!(outcome(&r).2, "emulated failure");

    let r = issue(&emu, &body).unwrap();
    assert_signed_status(&r, "F", "REQUEST_TRAFFIC_EXCEED_LIMIT");

    let r = issue(&emu, &body).unwrap();
    assert_eq!(r.status, 503);
    assert!(r.header("Signature").is_none() && r.header("Response-Time").is_none());
    assert!(serde_json::from_slice::<Value>(&r.body).is_err(), "plain body");

    let r = issue(&emu, &body).unwrap();
    assert_signed_status(&r, "S", "SUCCESS");
    assert!(outcome(&r).3.is_none(), "no cardNo");

    assert_eq!(emu.cards_issued(), 0, "none of these faults processes the request");

    // The queue is empty: the same requestId now gets a card (the F was not stored).
    let r = issue(&emu, &body).unwrap();
    assert_signed_status(&r, "S", "SUCCESS");
    assert_eq!(outcome(&r).3, emu.card_no_for("req-faults"));
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(emu.hits_for("req-faults"), 6);
    assert_eq!(emu.issue_card_hits(), 6);
}

#[test]
fn delayed_answer_times_out_but_the_card_is_issued_once() {
    let emu = emulator();
    let body = issue_body("req-delay");
    emu.push_fault(Fault::DelayThenAnswer(Duration::from_secs(1)));
    let headers = signed_headers(&keys().merchant_private, ISSUE_TARGET, CLIENT, REQUEST_TIME, &body);
    let url = format!("{}{ISSUE_TARGET}", emu.base_url());

    let err = transport(Duration::from_millis(300))
        .send(&url, "POST", &headers, &body)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(emu.cards_issued(), 1, "processed before the answer was delayed");
    let card = emu.card_no_for("req-delay").unwrap();

    let retry = issue(&emu, &body).unwrap();
    assert_signed_status(&retry, "S", "SUCCESS");
    assert_eq!(outcome(&retry).3, Some(card));
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(emu.hits_for("req-delay"), 2);
}

#[test]
fn delayed_answer_arrives_for_a_patient_client() {
    let emu = emulator();
    let body = issue_body("req-patient");
    emu.push_fault(Fault::DelayThenAnswer(Duration::from_millis(300)));
    let started = Instant::now();
    let resp = issue(&emu, &body).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_signed_status(&resp, "S", "SUCCESS");
}

#[test]
fn dropped_answer_is_a_transport_error_but_the_card_is_issued() {
    let emu = emulator();
    let body = issue_body("req-drop");
    emu.push_fault(Fault::DropAfterProcessing);
    let err = issue(&emu, &body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let card = emu.card_no_for("req-drop").unwrap();

    let retry = issue(&emu, &body).unwrap();
    assert_signed_status(&retry, "S", "SUCCESS");
    assert_eq!(outcome(&retry).3, Some(card));
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(emu.hits_for("req-drop"), 2);
}

#[test]
fn unsigned_and_badly_signed_answers_still_process() {
    let emu = emulator();
    emu.push_fault(Fault::Unsigned);
    emu.push_fault(Fault::BadSignature);

    let r = issue(&emu, &issue_body("req-unsigned")).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("Signature").is_none() && r.header("Response-Time").is_none());
    assert_eq!(r.header("Client-Id"), Some(CLIENT));
    let (status, _, _, card) = outcome(&r);
    assert_eq!(status, "S");
    assert_eq!(card, emu.card_no_for("req-unsigned"));

    let r = issue(&emu, &issue_body("req-badsigned")).unwrap();
    assert_eq!(r.status, 200);
    let header = r.header("Signature").unwrap();
    assert!(r.header("Response-Time").is_some());
    let parsed = signature::parse_header(header).unwrap();
    assert!(
        signature::decode_signature_value(&parsed.signature).is_ok(),
        "well-formed, just wrong"
    );
    let verdict = signature::verify(
        &keys().platform_public,
        Some(header),
        "POST",
        ISSUE_TARGET,
        CLIENT,
        r.header("Response-Time").unwrap(),
        &r.body,
    );
    assert_eq!(verdict, Err(SignatureFailure::Mismatch));
    assert_eq!(outcome(&r).3, emu.card_no_for("req-badsigned"));

    assert_eq!(emu.cards_issued(), 2);
    // Replays of both are properly signed again.
    let r = issue(&emu, &issue_body("req-badsigned")).unwrap();
    assert_signed_status(&r, "S", "SUCCESS");
}

#[test]
fn concurrent_duplicates_get_one_card() {
    let emu = Arc::new(emulator());
    let body = issue_body("req-concurrent");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (emu, body) = (Arc::clone(&emu), body.clone());
            std::thread::spawn(move || issue(&emu, &body).unwrap().body)
        })
        .collect();
    let bodies: Vec<Vec<u8>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(emu.hits_for("req-concurrent"), 6);
}

fn merchant_accepts(request: &HttpRequest) -> std::result::Result<(), SignatureFailure> {
    let client = find_header(&request.headers, "Client-Id").ok_or(SignatureFailure::HeaderMissing)?;
    if client != CLIENT {
        return Err(SignatureFailure::UnknownClientId);
    }
    signature::verify(
        &keys().platform_public,
        find_header(&request.headers, "Signature"),
        &request.method,
        &request.target,
        client,
        find_header(&request.headers, "Request-Time").ok_or(SignatureFailure::HeaderMissing)?,
        &request.body,
    )
    .map(|_| ())
}

fn driver() -> PlatformDriver {
    PlatformDriver::new(keys().platform_private.clone(), CLIENT, "1")
}

#[test]
fn driver_requests_verify_and_every_tamper_breaks_them() {
    let d = driver();
    let target = PlatformDriver::target_for("notifyCardRegistration");
    assert_eq!(target, "/v2/pds/memberships/notifyCardRegistration");
    let body = sample_registration("reg-1");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["requestId"], "reg-1");
    assert_eq!(v["appId"], "2102010113769000");
    assert_eq!(v["customerBelongsTo"], "TNG");
    assert_eq!(v["customerId"], "1236450862137570000");
    let codes: Vec<&str> = v["registrationFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fieldCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["USER_NAME", "GENDER", "BIRTH_DATE", "MOBILE_PHONE", "EMAIL"]);
    assert_eq!(body, serde_json::to_vec(&v).unwrap(), "compact JSON");

    let ok = d.request(&target, &body, REQUEST_TIME, Tamper::None).unwrap();
    assert_eq!(ok.method, "POST");
    assert_eq!(ok.target, target);
    assert_eq!(ok.body, body);
    let names: Vec<&str> = ok.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Content-Type", "Client-Id", "Request-Time", "Signature"]);
    assert_eq!(find_header(&ok.headers, "Request-Time"), Some(REQUEST_TIME));
    assert!(
        find_header(&ok.headers, "Signature")
            .unwrap()
            .starts_with("algorithm=RSA256,keyVersion=1,signature=")
    );
    assert_eq!(merchant_accepts(&ok), Ok(()));

    let expect = [
        (Tamper::BodyByte, SignatureFailure::Mismatch),
        (Tamper::WrongKey, SignatureFailure::Mismatch),
        (Tamper::Unsigned, SignatureFailure::HeaderMissing),
        (Tamper::MalformedHeader, SignatureFailure::HeaderMalformed),
        (Tamper::WrongClientId, SignatureFailure::UnknownClientId),
    ];
    for (tamper, failure) in expect {
        let req = d.request(&target, &body, REQUEST_TIME, tamper).unwrap();
        assert_eq!(merchant_accepts(&req), Err(failure), "{tamper:?}");
    }

    let tampered = d.request(&target, &body, REQUEST_TIME, Tamper::BodyByte).unwrap();
    assert_ne!(tampered.body, body);
    assert_eq!(tampered.body.len(), body.len());
    assert!(
        serde_json::from_slice::<Value>(&tampered.body).is_ok(),
        "only the signature can catch it"
    );

    // WrongClientId is consistently signed for the other id: only the id lookup catches it.
    let other = d.request(&target, &body, REQUEST_TIME, Tamper::WrongClientId).unwrap();
    let other_id = find_header(&other.headers, "Client-Id").unwrap();
    assert_ne!(other_id, CLIENT);
    let sig = find_header(&other.headers, "Signature");
    assert!(
        signature::verify(
            &keys().platform_public,
            sig,
            "POST",
            &target,
            other_id,
            REQUEST_TIME,
            &body
        )
        .is_ok()
    );
}

/// A stub merchant endpoint: verifies the platform's request and answers
/// signed with the merchant key (`S`, or `F ACCESS_DENIED`).
fn stub_merchant(seen: Arc<Mutex<Vec<HttpRequest>>>) -> HttpServer {
    HttpServer::start(move |req| {
        seen.lock().unwrap().push(req.clone());
        let body: &[u8] = match merchant_accepts(req) {
            Ok(()) => br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#,
            Err(_) => br#"{"result":{"resultCode":"ACCESS_DENIED","resultStatus":"F","resultMessage":"denied"}}"#,
        };
        let time = "2024-05-22T06:42:22.000+00:00";
        let sig =
            signature::sign_base64(&keys().merchant_private, &req.method, &req.target, CLIENT, time, body).unwrap();
        Action::Respond(HttpResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json; charset=UTF-8".into()),
                ("Response-Time".into(), time.into()),
                ("Client-Id".into(), CLIENT.into()),
                ("Signature".into(), signature::header_value("1", &sig)),
            ],
            body: body.to_vec(),
        })
    })
    .unwrap()
}

#[test]
fn driver_sends_to_a_merchant_and_verifies_its_answer() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let merchant = stub_merchant(Arc::clone(&seen));
    let d = driver();
    let k = keys();
    let target = PlatformDriver::target_for("inquireCardDetail");
    let body = br#"{"cardNo":"EMU000000000000000000000001","appId":"2102010113769000"}"#;

    let req = d.request(&target, body, REQUEST_TIME, Tamper::None).unwrap();
    let resp = d
        .send(&format!("{}/", merchant.base_url()), &req, Duration::from_secs(5))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(String::from_utf8_lossy(&resp.body).contains(r#""resultStatus":"S""#));
    assert!(PlatformDriver::verify_response(&k.merchant_public, &req, &resp));
    {
        let seen = seen.lock().unwrap();
        let got = seen.last().unwrap();
        assert_eq!(got.target, target);
        assert_eq!(got.body, body);
        assert_eq!(
            find_header(&got.headers, "Signature"),
            find_header(&req.headers, "Signature")
        );
    }

    // verify_response refuses anything off.
    assert!(
        !PlatformDriver::verify_response(&k.platform_public, &req, &resp),
        "wrong key"
    );
    let mut changed = resp.clone();
    changed.body.push(b' ');
    assert!(
        !PlatformDriver::verify_response(&k.merchant_public, &req, &changed),
        "body changed"
    );
    let mut no_time = resp.clone();
    no_time
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("Response-Time"));
    assert!(
        !PlatformDriver::verify_response(&k.merchant_public, &req, &no_time),
        "no Response-Time"
    );
    let mut other_client = resp.clone();
    for h in other_client
        .headers
        .iter_mut()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Client-Id"))
    {
        h.1 = "SOMEONE_ELSE".into();
    }
    assert!(
        !PlatformDriver::verify_response(&k.merchant_public, &req, &other_client),
        "Client-Id differs"
    );
    let other_req = d
        .request(
            &PlatformDriver::target_for("updateCardDetail"),
            body,
            REQUEST_TIME,
            Tamper::None,
        )
        .unwrap();
    assert!(
        !PlatformDriver::verify_response(&k.merchant_public, &other_req, &resp),
        "answer to another request"
    );

    // Tampered bytes really go over the wire.
    let bad = d.request(&target, body, REQUEST_TIME, Tamper::BodyByte).unwrap();
    let resp = d.send(&merchant.base_url(), &bad, Duration::from_secs(5)).unwrap();
    assert!(String::from_utf8_lossy(&resp.body).contains("ACCESS_DENIED"));

    // Loopback only.
    for url in ["http://example.com", "https://example.com", "ftp://127.0.0.1"] {
        let err = d.send(url, &req, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}");
    }
}

/// Writes raw bytes and reads the whole answer.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn echo_server(seen: Arc<Mutex<Vec<HttpRequest>>>) -> HttpServer {
    HttpServer::start(move |req| {
        seen.lock().unwrap().push(req.clone());
        Action::Respond(HttpResponse {
            status: 201,
            headers: vec![
                ("X-Echo".into(), req.target.clone()),
                ("Content-Length".into(), "999".into()),
            ],
            body: req.body.clone(),
        })
    })
    .unwrap()
}

#[test]
fn server_answers_malformed_requests_and_survives() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = echo_server(Arc::clone(&seen));
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(server.base_url(), format!("http://{addr}"));

    let status = |text: &str| text.lines().next().unwrap_or("").to_string();
    let mut oversized_head = b"POST / HTTP/1.1\r\nX-Big: ".to_vec();
    oversized_head.extend(std::iter::repeat_n(b'a', 70 * 1024));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        (
            "binary",
            b"\xff\xfe\x00\x01\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "no target",
            b"POST HTTP/1.1\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "bad version",
            b"POST / HTTQ/1.1\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "http/2",
            b"POST / HTTP/2.0\r\n\r\n".to_vec(),
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
        (
            "header without colon",
            b"POST / HTTP/1.1\r\nNoColon\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "folded header",
            b"POST / HTTP/1.1\r\nA: b\r\n c\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "bad length",
            b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "conflicting lengths",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "huge length",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            "body over 1 MiB",
            b"POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n".to_vec(),
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            "chunked",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            "HTTP/1.1 501 Not Implemented",
        ),
        (
            "short body",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "head too large",
            oversized_head,
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ];
    for (what, bytes, expected) in cases {
        let answer = raw(addr, &bytes);
        assert_eq!(status(&answer), expected, "{what}: {answer}");
        assert!(answer.contains("Connection: close\r\n"), "{what}");
    }
    // Connect and leave without a byte: nothing to answer.
    drop(TcpStream::connect(addr).unwrap());
    assert!(
        seen.lock().unwrap().is_empty(),
        "the handler never saw a malformed request"
    );

    // Still serving, with a body of exactly 1 MiB (the cap).
    let body = vec![b'x'; 1 << 20];
    let resp = transport(Duration::from_secs(10))
        .send(&format!("{}/echo?q=1", server.base_url()), "POST", &[], &body)
        .unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(resp.body, body);
    assert_eq!(resp.header("X-Echo"), Some("/echo?q=1"));
    assert_eq!(
        resp.header("Content-Length"),
        Some("1048576"),
        "the server frames the body itself"
    );
}

#[test]
fn server_keeps_header_case_and_order_and_handles_expect_continue() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = echo_server(Arc::clone(&seen));
    let answer = raw(
        server.local_addr(),
        b"\r\nPUT /a%20b HTTP/1.0\r\nX-First:  one \r\nx-second: Two\r\nX-FIRST: three\r\nContent-Length: 4\r\n\r\nbody",
    );
    assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nbody"), "{answer}");
    {
        let seen = seen.lock().unwrap();
        let req = seen.last().unwrap();
        assert_eq!(req.method, "PUT");
        assert_eq!(req.target, "/a%20b");
        let expected: Vec<Header> = vec![
            ("X-First".into(), "one".into()),
            ("x-second".into(), "Two".into()),
            ("X-FIRST".into(), "three".into()),
            ("Content-Length".into(), "4".into()),
        ];
        assert_eq!(req.headers, expected);
        assert_eq!(req.body, b"body");
    }

    // Expect: 100-continue gets the interim answer before the body is sent.
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 201 Created\r\n") && rest.ends_with("hello"),
        "{rest}"
    );
}

#[test]
fn emulator_answers_garbage_with_400_and_keeps_working() {
    let emu = emulator();
    let addr: SocketAddr = emu.base_url().trim_start_matches("http://").parse().unwrap();
    let answer = raw(addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let answer = raw(
        addr,
        b"POST /api/open/v2/pds/memberships/issueCard HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(emu.issue_card_hits(), 0);
    let resp = issue(&emu, &issue_body("req-after-garbage")).unwrap();
    assert_signed_status(&resp, "S", "SUCCESS");
}

#[test]
fn stopping_closes_pending_connections_promptly() {
    let server = HttpServer::start(|_| Action::RespondAfter(Duration::from_secs(60), HttpResponse::default())).unwrap();
    let url = format!("{}/slow", server.base_url());
    let client = std::thread::spawn(move || transport(Duration::from_secs(30)).send(&url, "POST", &[], b"x"));
    // Let the request reach the handler (a late arrival is refused, which the assertions below accept too).
    std::thread::sleep(Duration::from_millis(200));
    let addr = server.local_addr();
    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop must not wait for the 60 s answer"
    );
    let result = client.join().unwrap();
    assert!(result.is_err(), "the pending request was never answered");
    assert!(TcpStream::connect(addr).is_err(), "nothing listens after stop");

    let emu = emulator();
    let url = emu.base_url();
    emu.stop();
    let err = transport(Duration::from_secs(2))
        .send(&format!("{url}{ISSUE_TARGET}"), "POST", &[], b"{}")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
}
