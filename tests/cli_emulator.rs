//! `cardbridge emulator` and `cardbridge notify`, run as processes: the
//! library talks to the standalone emulator (Alipay+ issueCard and WeChat Pay
//! confirm on one port), the control API scripts faults, seeds cards, reads
//! counters and delivers signed calls to a merchant, and `notify` judges a
//! loopback merchant built from the library's own begin/finish.

mod common;

use crate::common::emulator::{Action, HttpServer, text_response};
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, Begin};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::http::{HttpRequest, HttpResponse, Transport, TransportConfig};
use cardbridge::store::MemoryStore;
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{self, CallbackBegin, WechatPay};
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const MCHID: &str = "1900000001";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const API_V3: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardbridge"));
    for var in [
        "CARDBRIDGE_CONFIG",
        "CARDBRIDGE_STORE",
        "CARDBRIDGE_PLATFORM_CONFIG",
        "CARDBRIDGE_KEYS",
    ] {
        c.env_remove(var);
    }
    c
}

/// A running `cardbridge emulator`; stopped through the control API on drop.
struct Emu {
    child: Child,
    url: String,
    info: Value,
    _stdout: BufReader<ChildStdout>,
}

impl Emu {
    fn start(extra: &[&str]) -> Emu {
        let mut child = bin()
            .args(["--json", "emulator", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the emulator did not start: {line}{err}")
        });
        let url = info["url"].as_str().unwrap().to_string();
        Emu {
            child,
            url,
            info,
            _stdout: stdout,
        }
    }

    fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let transport = Transport::new(&TransportConfig::default()).unwrap();
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let r = transport
            .send(&format!("{}/__cardbridge{path}", self.url), method, &headers, &body)
            .unwrap();
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, doc) = self.control(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {doc}");
        doc
    }

    /// Waits for the process to exit (after SIGTERM or shutdown).
    fn wait(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                return (status.code(), err);
            }
            assert!(Instant::now() < deadline, "the emulator did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.control("POST", "/shutdown", None);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn issue_card_request(request_id: &str) -> IssueCardRequest {
    let json = json!({"appId": "2102010113769000", "customerBelongsTo": "TNG", "requestId": request_id,
                      "customerId": "210911290000", "externalCustomerId": "M-000123",
                      "registerDate": "2019-11-27T19:07:41+08:00",
                      "cardFields": [{"fieldCode": "POINT", "fieldValue": "123"}]});
    model::parse(json.to_string().as_bytes(), Direction::Outbound).unwrap()
}

fn alipay(base_url: &str) -> AlipayPlus {
    AlipayPlus::new(config(Some(base_url.to_string())), Some(Arc::new(MemoryStore::new()))).unwrap()
}

fn wechat_config(base_url: &str) -> wechatpay::Config {
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, platform_key().public_key()).unwrap();
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let mut c = wechatpay::Config::new(signer, merchant_key(), ApiV3Key::new(API_V3).unwrap(), ring);
    c.base_url = base_url.to_string();
    c.transport.read_timeout = Duration::from_millis(400);
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(20);
    c
}

fn wechat(base_url: &str) -> WechatPay {
    WechatPay::new(wechat_config(base_url), Some(Arc::new(MemoryStore::new()))).unwrap()
}

fn confirm_input(code: &str) -> Vec<u8> {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID,
           "phone_number": "13800000000", "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    .to_string()
    .into_bytes()
}

/// The raw head of an HTTP answer, header names exactly as sent.
fn raw_answer_head(url: &str, request: &HttpRequest) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\n", request.method, request.target);
    for (n, v) in &request.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", request.body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&request.body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split("\r\n\r\n").next().unwrap().to_string()
}

#[test]
fn one_process_serves_issue_card_and_confirm_with_faults_and_counters() {
    let emu = Emu::start(&[]);
    for role in [
        "platform_private_key",
        "platform_public_key",
        "merchant_private_key",
        "merchant_public_key",
    ] {
        let path = emu.info["keys"][role].as_str().unwrap();
        assert!(Path::new(path).is_file(), "{role}: {path}");
    }
    assert_eq!(emu.info["alipayplus"]["client_id"], CLIENT_ID);
    assert_eq!(emu.info["control"], format!("{}/__cardbridge/", emu.url));

    // Alipay+: a card, then a U answer the library retries through.
    let ap = alipay(&emu.url);
    let card = ap.issue_card(&issue_card_request("CLI-1")).unwrap();
    assert!(card.signed);
    assert_eq!(
        emu.ok("POST", "/alipayplus/faults", Some(json!({"fault": "unknown"})))["queued"],
        1
    );
    let again = ap.issue_card(&issue_card_request("CLI-2")).unwrap();
    assert_ne!(again.card_no, card.card_no);
    let counters = emu.ok("GET", "/counters", None);
    assert_eq!(counters["alipayplus"]["hits"]["CLI-1"], 1);
    assert_eq!(counters["alipayplus"]["hits"]["CLI-2"], 2, "the U answer was retried");
    assert_eq!(counters["alipayplus"]["cards_issued"], 2);
    let cards = emu.ok("GET", "/alipayplus/cards", None);
    assert_eq!(cards["cards"]["CLI-1"], card.card_no.as_str());

    // The answer's header names are lower case, as the gateway writes them
    // (Ant's SDKs look them up case-sensitively); the library accepted them above.
    let minted = emu.ok(
        "POST",
        "/alipayplus/mint",
        Some(json!({"api": "notifyCardRegistration", "request_id": "HDR-1"})),
    );
    assert_eq!(
        minted["request"]["target"],
        "/v2/pds/memberships/notifyCardRegistration"
    );
    let signed = cardbridge::alipayplus::signature::sign_base64(
        &merchant_key(),
        "POST",
        "/api/open/v2/pds/memberships/issueCard",
        CLIENT_ID,
        "2026-01-01T00:00:00.000+00:00",
        b"{}",
    )
    .unwrap();
    let head = raw_answer_head(
        &emu.url,
        &HttpRequest {
            method: "POST".into(),
            target: "/api/open/v2/pds/memberships/issueCard".into(),
            headers: vec![
                ("Client-Id".into(), CLIENT_ID.into()),
                ("Request-Time".into(), "2026-01-01T00:00:00.000+00:00".into()),
                (
                    "Signature".into(),
                    cardbridge::alipayplus::signature::header_value("1", &signed),
                ),
            ],
            body: b"{}".to_vec(),
        },
    );
    for name in ["\r\nsignature: ", "\r\nresponse-time: ", "\r\nclient-id: "] {
        assert!(head.contains(name), "{name:?} in {head}");
    }

    // WeChat Pay on the same port: a seeded card is confirmed once.
    let seeded = emu.ok("POST", "/wechatpay/cards", Some(json!({"user_card_code": "900001"})));
    assert_eq!(seeded["card"]["user_card_state"], "UNACTIVATED");
    let wp = wechat(&emu.url);
    let answer = wp.confirm(&confirm_input("900001")).unwrap();
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    // The answer to a confirm is lost after it was applied: the library reads
    // the card back instead of confirming it a second time.
    emu.ok("POST", "/wechatpay/cards", Some(json!({"user_card_code": "900002"})));
    emu.ok("POST", "/wechatpay/faults", Some(json!({"fault": "drop"})));
    let answer = wp.confirm(&confirm_input("900002")).unwrap();
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    let counters = emu.ok("GET", "/counters", None);
    let w = &counters["wechatpay"];
    assert_eq!(w["confirm_hits"]["900001"], 1);
    assert_eq!(w["confirm_hits"]["900002"], 1, "no second confirm");
    assert_eq!(w["confirms_applied"]["900002"], 1);
    assert_eq!(w["cards_confirmed"], 2);
    assert_eq!(
        w["hits_by_path"]["/v3/brand/partner/card-member/user-cards/900002"], 1,
        "one read-back"
    );
    let card = emu.ok("GET", "/wechatpay/cards/900002", None);
    assert_eq!(card["card"]["phone_number"], "13800000000", "decrypted by the emulator");
    assert_eq!(card["confirms_applied"], 1);

    // Random faults: every confirm fails with 500 until they are turned off.
    emu.ok("POST", "/wechatpay/cards", Some(json!({"user_card_code": "900003"})));
    emu.ok(
        "POST",
        "/wechatpay/random-faults",
        Some(json!({"seed": 7, "status_500": 1.0, "path_contains": "/confirm"})),
    );
    let mut c = wechat_config(&emu.url);
    c.retry.max_attempts = 2;
    let wp2 = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    assert!(wp2.confirm(&confirm_input("900003")).is_err());
    emu.ok("DELETE", "/wechatpay/random-faults", None);
    assert_eq!(
        wp2.resume_pending().unwrap()[0].1.as_ref().unwrap().json["user_card_state"],
        "EFFECTIVE"
    );
}

#[test]
fn the_control_api_refuses_bad_input_by_field_and_unknown_endpoints() {
    let emu = Emu::start(&[]);
    let (status, doc) = emu.control("POST", "/alipayplus/faults", Some(json!({"fault": "nonsense"})));
    assert_eq!((status, doc["field"].as_str()), (400, Some("fault")), "{doc}");
    let (status, doc) = emu.control("POST", "/alipayplus/faults", Some(json!({"fault": "delay"})));
    assert_eq!((status, doc["field"].as_str()), (400, Some("delay_ms")), "{doc}");
    let (status, doc) = emu.control(
        "POST",
        "/wechatpay/random-faults",
        Some(json!({"status_500": 0.8, "drop_after_processing": 0.5})),
    );
    assert_eq!(status, 400, "{doc}");
    let (status, doc) = emu.control("POST", "/wechatpay/cards", Some(json!({"user_card_code": 7})));
    assert_eq!((status, doc["field"].as_str()), (400, Some("user_card_code")), "{doc}");
    let (status, doc) = emu.control("POST", "/wechatpay/mint", Some(json!({"tamper": "wrong-client-id"})));
    assert_eq!((status, doc["field"].as_str()), (400, Some("tamper")), "{doc}");
    assert_eq!(emu.control("GET", "/wechatpay/cards/nope", None).0, 404);
    assert_eq!(emu.control("GET", "/nothing-here", None).0, 404);
    assert_eq!(emu.control("PUT", "/counters", None).0, 405);
    // A queued fault list: three faults in one call.
    let doc = emu.ok(
        "POST",
        "/wechatpay/faults",
        Some(json!([{"fault": "status", "status": 429}, {"fault": "accepted_202", "count": 2}])),
    );
    assert_eq!(doc["queued"], 3);
}

/// A loopback merchant built from the library: Alipay+ inbound calls through
/// begin/finish (always `S`), WeChat Pay callbacks under `/wechat/` through
/// callback_begin/finish (always accepted).
fn library_merchant() -> HttpServer {
    let ap = alipay("http://127.0.0.1:9");
    let wp = wechat("http://127.0.0.1:9");
    HttpServer::start(move |request| {
        let now = now_ms();
        if request.target.starts_with("/wechat/") {
            return Action::Respond(match wp.callback_begin(request, now) {
                CallbackBegin::Respond(r) => r,
                CallbackBegin::Handle(mut event) => wp.callback_finish(&mut event, true, "", now).unwrap(),
            });
        }
        Action::Respond(match ap.begin(request, now) {
            Begin::Respond(r) => r,
            Begin::Decide(mut pending) => ap
                .finish(&mut pending, br#"{"cardNo":"MERCHANT-CARD-1"}"#, now)
                .unwrap(),
        })
    })
    .unwrap()
}

fn notify(args: &[&str]) -> (Option<i32>, Value, String) {
    let out: Output = bin().arg("--json").arg("notify").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        text,
    )
}

#[test]
fn notify_judges_a_library_merchant_correct_for_every_tamper() {
    let merchant = library_merchant();
    let base = merchant.base_url();
    let full = format!("{base}/v2/pds/memberships/notifyCardRegistration");
    for (url, tamper) in [
        (&full, "none"),
        (&base, "none"),
        (&full, "bad-signature"),
        (&full, "probe"),
        (&full, "stale"),
        (&full, "duplicate"),
        (&full, "wrong-client-id"),
        (&full, "malformed-header"),
    ] {
        let (code, v, text) = notify(&["--tamper", tamper, url]);
        assert_eq!(code, Some(0), "{tamper}: {text}");
        assert_eq!(v["verdict"], "PASS", "{tamper}: {text}");
        assert_eq!(v["answers"][0]["signature_valid"], true, "{tamper}: {text}");
        assert_eq!(v["answers"][0]["format_valid"], true, "{tamper}: {text}");
        let want = match tamper {
            "none" | "duplicate" | "stale" => "S",
            _ => "F",
        };
        assert_eq!(v["answers"][0]["outcome"]["resultStatus"], want, "{tamper}: {text}");
    }
    let (_, dup, _) = notify(&["--tamper", "duplicate", "--request-id", "DUP-1", &full]);
    assert_eq!(dup["answers"].as_array().unwrap().len(), 2);
    assert_eq!(dup["request"]["requestId"], "DUP-1");
    assert!(dup["request"]["http"]["body"].is_null(), "notify prints no body");
    assert!(dup["request"]["http"]["body_bytes"].as_u64().unwrap() > 0);
    assert!(!dup.to_string().contains("John Doe"), "nor the sample's personal data");

    let wx = format!("{base}/wechat/notify");
    for tamper in [
        "none",
        "bad-signature",
        "probe",
        "stale",
        "duplicate",
        "bad-tag",
        "wrong-serial",
        "missing-header",
    ] {
        let (code, v, text) = notify(&["--wechat", "--tamper", tamper, &wx]);
        assert_eq!(code, Some(0), "{tamper}: {text}");
        assert_eq!(
            v["answers"][0]["signature_valid"],
            Value::Null,
            "WeChat Pay does not sign callback answers"
        );
        let accepted = matches!(tamper, "none" | "duplicate");
        assert_eq!(v["answers"][0]["accepted"], accepted, "{tamper}: {text}");
    }
    // Human output names the verdict and what was expected.
    let out = bin().args(["notify", "--tamper", "probe", &full]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("PASS: notifyCardRegistration"), "{text}");
    assert!(text.contains("expected: refused"), "{text}");
    // A tamper of the other platform is a usage error.
    let (code, _, text) = notify(&["--wechat", "--tamper", "wrong-key", &wx]);
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn notify_fails_a_wrong_merchant_and_reports_no_answer() {
    // Answers S to everything, unsigned; and a 500 with a text body to WeChat Pay.
    let careless = HttpServer::start(|request| {
        if request.target.starts_with("/wechat/") {
            return Action::Respond(text_response(500, "oops"));
        }
        Action::Respond(HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"ok"}}"#.to_vec(),
        })
    })
    .unwrap();
    let url = careless.base_url();
    let (code, v, text) = notify(&["--tamper", "bad-signature", &url]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(v["verdict"], "FAIL");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("not correctly signed"), "{reasons}");
    assert!(reasons.contains("should have refused"), "{reasons}");
    assert_eq!(v["answers"][0]["signature_valid"], false);
    let (code, v, text) = notify(&["--wechat", &format!("{url}/wechat/notify")]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(v["answers"][0]["format_valid"], false, "a 5XX needs {{code, message}}");
    drop(careless);
    // Nobody listens any more.
    let (code, v, text) = notify(&["--timeout-ms", "2000", &url]);
    assert_eq!(code, Some(3), "{text}");
    assert_eq!(v["verdict"], "NO ANSWER");
}

#[test]
fn the_emulator_delivers_signed_calls_and_the_merchant_confirms_against_it() {
    let emu = Emu::start(&[]);
    let merchant = library_merchant();
    let base = merchant.base_url();

    let doc = emu.ok(
        "POST",
        "/alipayplus/deliver",
        Some(json!({"url": format!("{base}/v2/pds/memberships/notifyCardRegistration"), "request_id": "DLV-1"})),
    );
    assert_eq!(doc["pass"], true, "{doc}");
    let answer: Value = serde_json::from_str(doc["answer_body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["cardNo"], "MERCHANT-CARD-1");
    let doc = emu.ok(
        "POST",
        "/alipayplus/deliver",
        Some(json!({"url": base, "tamper": "wrong-key"})),
    );
    assert_eq!(doc["pass"], true, "{doc}");
    assert_eq!(doc["answers"][0]["outcome"]["resultCode"], "ACCESS_DENIED");

    // The verify endpoint checks an answer the test got itself.
    let minted = emu.ok("POST", "/alipayplus/mint", Some(json!({"request_id": "VER-1"})));
    let r = &minted["request"];
    let headers: Vec<(String, String)> = r["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    let target = r["target"].as_str().unwrap();
    let answer = Transport::new(&TransportConfig::default())
        .unwrap()
        .send(
            &format!("{base}{target}"),
            "POST",
            &headers,
            r["body"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
    let as_pairs = |h: &[(String, String)]| h.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>();
    let body = String::from_utf8(answer.body.clone()).unwrap();
    let verified = emu.ok(
        "POST",
        "/alipayplus/verify",
        Some(json!({"target": target, "headers": as_pairs(&answer.headers), "body": body})),
    );
    assert_eq!(verified["valid"], true, "{verified}");
    let spoiled = emu.ok(
        "POST",
        "/alipayplus/verify",
        Some(json!({"target": target, "headers": as_pairs(&answer.headers), "body": format!("{body} ")})),
    );
    assert_eq!(spoiled["valid"], false);

    // WeChat Pay: the callback seeds the card in the emulator, so the
    // merchant's confirm that follows finds it.
    let doc = emu.ok(
        "POST",
        "/wechatpay/deliver",
        Some(json!({"url": format!("{base}/wechat/notify"), "user_card_code": "770001"})),
    );
    assert_eq!(doc["pass"], true, "{doc}");
    assert_eq!(doc["request"]["user_card_code"], "770001");
    let wp = wechat(&emu.url);
    assert_eq!(
        wp.confirm(&confirm_input("770001")).unwrap().json["user_card_state"],
        "EFFECTIVE"
    );
    let doc = emu.ok(
        "POST",
        "/wechatpay/deliver",
        Some(json!({"url": format!("{base}/wechat/notify"), "tamper": "probe"})),
    );
    assert_eq!(doc["pass"], true, "{doc}");
    assert_eq!(doc["answers"][0]["status"], 401);

    // Every event type can be delivered: a points-for-coupon exchange for
    // the card just opened, which the merchant then confirms.
    for event_type in [
        "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON",
        "BRAND_MEMBER_CARD_SP.SYNC_USER_POINT",
        "BRAND_MEMBER_CARD_SP.USER_CARD.DELETE",
    ] {
        let doc = emu.ok(
            "POST",
            "/wechatpay/deliver",
            Some(json!({"url": format!("{base}/wechat/notify"), "user_card_code": "770001", "event_type": event_type})),
        );
        assert_eq!(doc["pass"], true, "{event_type}: {doc}");
    }
    let minted = emu.ok(
        "POST",
        "/wechatpay/mint",
        Some(json!({"user_card_code": "770001", "event_type": "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON"})),
    );
    let r = &minted["request"];
    let request = HttpRequest {
        method: "POST".into(),
        target: "/".into(),
        headers: r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
        body: r["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    let CallbackBegin::Handle(event) = wp.callback_begin(&request, chrono::Utc::now().timestamp_millis()) else {
        panic!("the exchange event reaches the host");
    };
    assert_eq!(event.kind, cardbridge::wechatpay::EventKind::PointExchangeCoupon);
    let confirm =
        cardbridge::wechatpay::feeds::exchange_confirm_from_event(&event.resource, true, Some("COUPON-1"), None);
    let answer = wp.confirm_exchange_coupon(confirm.to_string().as_bytes()).unwrap();
    assert_eq!(answer.json["record_id"], event.resource["record_id"]);
    assert_eq!(answer.json["state"], "POINT_EXCHANGE_COUPON_SUCCESS");

    // Minting alone: signed headers the library verifies.
    let minted = emu.ok(
        "POST",
        "/wechatpay/mint",
        Some(json!({"user_card_code": "770002", "seed": false})),
    );
    let r = &minted["request"];
    let request = HttpRequest {
        method: "POST".into(),
        target: "/".into(),
        headers: r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
        body: r["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    assert!(matches!(
        wp.callback_begin(&request, chrono::Utc::now().timestamp_millis()),
        CallbackBegin::Handle(_)
    ));
    assert_eq!(emu.control("GET", "/wechatpay/cards/770002", None).0, 404, "not seeded");
}

#[test]
fn state_survives_a_restart_and_sigterm_stops_cleanly() {
    let state = temp_db("cli-emu-state").with_extension("json");
    let state_arg = state.to_str().unwrap();
    let mut emu = Emu::start(&["--state", state_arg]);
    assert_eq!(emu.info["state"], state_arg);
    let first = alipay(&emu.url).issue_card(&issue_card_request("ST-1")).unwrap();
    emu.ok("POST", "/wechatpay/cards", Some(json!({"user_card_code": "880001"})));
    wechat(&emu.url).confirm(&confirm_input("880001")).unwrap();

    let pid = emu.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let (code, err) = emu.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(state.is_file());

    let emu = Emu::start(&["--state", state_arg]);
    assert_eq!(emu.info["restored_cards"], 2);
    // Idempotent across the restart: the same requestId gets the same card.
    let again = alipay(&emu.url).issue_card(&issue_card_request("ST-1")).unwrap();
    assert_eq!(again.card_no, first.card_no);
    assert_eq!(again.response_body, first.response_body);
    let next = alipay(&emu.url).issue_card(&issue_card_request("ST-2")).unwrap();
    assert_ne!(next.card_no, first.card_no, "numbering continues past restored cards");
    let card = emu.ok("GET", "/wechatpay/cards/880001", None);
    assert_eq!(card["card"]["user_card_state"], "EFFECTIVE");
    assert_eq!(card["confirms_applied"], 1);
    drop(emu);
    let _ = std::fs::remove_file(&state);
}

#[test]
fn certificate_mode_and_configuration_errors() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wechatpay/emulator");
    let emu = Emu::start(&[
        "--wechat-certificate",
        &format!("{fixtures}/platform_cert.pem"),
        "--wechat-certificate-key",
        &format!("{fixtures}/platform_private.pem"),
    ]);
    assert_eq!(
        emu.info["wechatpay"]["certificate_serial"],
        "4E21A7C3D95B60F8E1A2B3C4D5E6F708192A3B4C"
    );
    let mut c = wechat_config(&emu.url);
    c.keys = KeyRing::new();
    c.certificate_mode = true;
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    assert_eq!(wp.refresh_certificates().unwrap(), 1);
    drop(emu);

    let unwritable = bin()
        .args(["emulator", "--state", "/nonexistent/dir/state.json"])
        .output()
        .unwrap();
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unwritable.stderr).contains("state: /nonexistent/dir/state.json cannot be written")
    );

    let missing = bin()
        .args(["emulator", "--keys", "/nonexistent/keys"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("keys:"));

    let config = temp_db("cli-emu-config").with_extension("json");
    let secret = fixture("test_merchant_private.pem");
    std::fs::write(
        &config,
        json!({"client_id": "X", "key_version": 1, "mchid": secret}).to_string(),
    )
    .unwrap();
    let bad = bin()
        .args(["emulator", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{text}");
    assert!(text.contains("config.key_version: must be a string"), "{text}");
    std::fs::write(
        &config,
        json!({"platform_private_key": secret, "extra": secret}).to_string(),
    )
    .unwrap();
    let bad = bin()
        .args(["emulator", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(text.contains("unknown member `extra`"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let _ = std::fs::remove_file(&config);
}
