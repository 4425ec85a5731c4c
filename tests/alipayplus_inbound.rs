//! Inbound handler: signature checks, validation, the two-step host decision,
//! idempotency of notifyCardRegistration and signed answers.

mod common;

use crate::common::emulator::{PlatformDriver, Tamper, sample_registration};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config, InboundApi, InboundRequest, PendingCall};
use cardbridge::error::Result;
use cardbridge::http::{HttpRequest, HttpResponse};
use cardbridge::store::{
    Acquired, Attempt, Claim, Completion, Inserted, LeaseRequest, MemoryStore, OutboxEntry, OutboxQuery, OutboxState,
    Store,
};
use cardbridge::{Error, ErrorKind};
use common::*;
use serde_json::Value;
use std::sync::Arc;

const T: &str = "2026-11-23T10:00:00.000+00:00";

fn driver() -> PlatformDriver {
    PlatformDriver::new(platform_key(), CLIENT_ID, "1")
}

fn handler_with(config: Config) -> AlipayPlus {
    AlipayPlus::new(config, Some(Arc::new(MemoryStore::new()))).unwrap()
}

fn handler() -> AlipayPlus {
    handler_with(config(None))
}

fn notify(rid: &str, tamper: Tamper) -> HttpRequest {
    driver()
        .request(
            "/v2/pds/memberships/notifyCardRegistration",
            &sample_registration(rid),
            T,
            tamper,
        )
        .unwrap()
}

fn result_of(resp: &HttpResponse) -> (String, String, String) {
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    let r = &v["result"];
    (
        r["resultStatus"].as_str().unwrap().to_string(),
        r["resultCode"].as_str().unwrap().to_string(),
        r["resultMessage"].as_str().unwrap_or_default().to_string(),
    )
}

fn expect_respond(b: Begin) -> HttpResponse {
    match b {
        Begin::Respond(r) => r,
        Begin::Decide(p) => panic!("expected an immediate answer, host was asked for {:?}", p.api()),
    }
}

fn expect_decide(b: Begin) -> Box<PendingCall> {
    match b {
        Begin::Decide(p) => p,
        Begin::Respond(r) => panic!("expected a host decision, got {:?}", result_of(&r)),
    }
}

fn merchant_public() -> cardbridge::crypto::keys::PublicKey {
    merchant_key().public_key()
}

#[test]
fn registration_reaches_the_host_and_the_answer_is_signed() {
    let ap = handler();
    let req = notify("R-1", Tamper::None);
    let mut p = expect_decide(ap.begin(&req, now_ms()));
    assert_eq!(p.api(), InboundApi::NotifyCardRegistration);
    match p.request() {
        InboundRequest::NotifyCardRegistration(r) => {
            assert_eq!(r.request_id, "R-1");
            assert_eq!(r.registration_fields.len(), 5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.request_json(), req.body.as_slice());
    let resp = ap.finish(&mut p, b"{}", now_ms()).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(result_of(&resp), ("S".into(), "SUCCESS".into(), "Success".into()));
    assert!(PlatformDriver::verify_response(&merchant_public(), &req, &resp));
    assert_eq!(resp.header("client-id"), Some(CLIENT_ID));
    assert!(resp.header("response-time").is_some());
}

#[test]
fn duplicate_after_decision_gets_the_byte_identical_body_without_the_host() {
    let ap = handler();
    let mut p = expect_decide(ap.begin(&notify("R-DUP", Tamper::None), now_ms()));
    let first = ap
        .finish(&mut p, br#"{"extendInfo":"{\"memberId\":\"M1\"}"}"#, now_ms())
        .unwrap();
    let req2 = notify("R-DUP", Tamper::None);
    let second = expect_respond(ap.begin(&req2, now_ms() + 5));
    assert_eq!(second.body, first.body);
    assert!(
        PlatformDriver::verify_response(&merchant_public(), &req2, &second),
        "replay is re-signed"
    );
    // A duplicate carrying a different payload still gets the stored result (§8.1).
    let other = sample_registration("R-DUP")
        .into_iter()
        .chain(b" ".iter().copied())
        .collect::<Vec<u8>>();
    let req3 = driver()
        .request("/v2/pds/memberships/notifyCardRegistration", &other, T, Tamper::None)
        .unwrap();
    assert_eq!(expect_respond(ap.begin(&req3, now_ms())).body, first.body);
}

#[test]
fn refusal_is_final_and_replayed_too() {
    let ap = handler();
    let mut p = expect_decide(ap.begin(&notify("R-REFUSE", Tamper::None), now_ms()));
    let decision = br#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"member exists"}}"#;
    let first = ap.finish(&mut p, decision, now_ms()).unwrap();
    assert_eq!(
        result_of(&first),
        ("F".into(), "PROCESS_FAIL".into(), "member exists".into())
    );
    assert_eq!(
        expect_respond(ap.begin(&notify("R-REFUSE", Tamper::None), now_ms())).body,
        first.body
    );
}

#[test]
fn duplicate_while_undecided_gets_u_and_the_claim_expires_after_the_lease() {
    let mut c = config(None);
    c.claim_lease = std::time::Duration::from_secs(30);
    let ap = handler_with(c);
    let t0 = now_ms();
    let first = expect_decide(ap.begin(&notify("R-INFLIGHT", Tamper::None), t0));
    let dup = expect_respond(ap.begin(&notify("R-INFLIGHT", Tamper::None), t0 + 1_000));
    assert_eq!(result_of(&dup).0, "U");
    assert_eq!(result_of(&dup).1, "UNKNOWN_EXCEPTION");
    std::mem::forget(first); // an abandoned claim: the host crashed without deciding
    let mut again = expect_decide(ap.begin(&notify("R-INFLIGHT", Tamper::None), t0 + 31_000));
    assert_eq!(result_of(&ap.finish(&mut again, b"{}", t0 + 31_001).unwrap()).0, "S");
}

#[test]
fn dropping_an_undecided_call_releases_the_claim() {
    let ap = handler();
    drop(expect_decide(ap.begin(&notify("R-DROP", Tamper::None), now_ms())));
    expect_decide(ap.begin(&notify("R-DROP", Tamper::None), now_ms()));
}

#[test]
fn u_decision_is_not_stored() {
    let ap = handler();
    let mut p = expect_decide(ap.begin(&notify("R-U", Tamper::None), now_ms()));
    let resp = ap.finish_unknown(&mut p, now_ms()).unwrap();
    assert_eq!(result_of(&resp).0, "U");
    let mut p2 = expect_decide(ap.begin(&notify("R-U", Tamper::None), now_ms()));
    assert_eq!(result_of(&ap.finish(&mut p2, b"{}", now_ms()).unwrap()).0, "S");
}

#[test]
fn bad_signatures_never_reach_the_host() {
    let ap = handler();
    for tamper in [
        Tamper::BodyByte,
        Tamper::WrongKey,
        Tamper::Unsigned,
        Tamper::MalformedHeader,
        Tamper::WrongClientId,
    ] {
        let wrong_client = matches!(tamper, Tamper::WrongClientId);
        let req = notify("R-SIG", tamper);
        let resp = expect_respond(ap.begin(&req, now_ms()));
        let (status, code, msg) = result_of(&resp);
        assert_eq!((status.as_str(), code.as_str()), ("F", "ACCESS_DENIED"), "{msg}");
        // Refusals are signed too, always under our own Client-Id (§4.8).
        assert_eq!(
            PlatformDriver::verify_response(&merchant_public(), &req, &resp),
            !wrong_client
        );
        assert_eq!(resp.header("Client-Id"), Some(CLIENT_ID));
    }
    // None of them claimed the requestId.
    expect_decide(ap.begin(&notify("R-SIG", Tamper::None), now_ms()));
}

#[test]
fn signature_covers_the_received_path() {
    let ap = handler();
    let mut req = notify("R-PATH", Tamper::None);
    req.target = "/merchant/v2/pds/memberships/notifyCardRegistration".into();
    assert_eq!(result_of(&expect_respond(ap.begin(&req, now_ms()))).1, "ACCESS_DENIED");
    // Behind a rewriting proxy the configured public prefix is what the platform signed.
    let mut c = config(None);
    c.inbound_public_prefix = Some(String::new());
    let ap = handler_with(c);
    expect_decide(ap.begin(&req, now_ms()));
}

#[test]
fn invalid_fields_get_param_illegal_naming_the_field() {
    let ap = handler();
    let body = String::from_utf8(sample_registration("R-INVALID"))
        .unwrap()
        .replace("\"2102010113769000\"", &format!("\"{}\"", "9".repeat(33)));
    let req = driver()
        .request(
            "/v2/pds/memberships/notifyCardRegistration",
            body.as_bytes(),
            T,
            Tamper::None,
        )
        .unwrap();
    let (s, code, msg) = result_of(&expect_respond(ap.begin(&req, now_ms())));
    assert_eq!((s.as_str(), code.as_str()), ("F", "PARAM_ILLEGAL"));
    assert!(msg.starts_with("notifyCardRegistration.appId:"), "{msg}");
    assert!(msg.contains("32"), "{msg}");
    let req = driver()
        .request(
            "/v2/pds/memberships/notifyCardRegistration",
            b"not json",
            T,
            Tamper::None,
        )
        .unwrap();
    assert_eq!(result_of(&expect_respond(ap.begin(&req, now_ms()))).1, "PARAM_ILLEGAL");
}

#[test]
fn protocol_level_refusals() {
    let ap = handler();
    let mut req = notify("R-P", Tamper::None);
    req.headers
        .push(("Encrypt".into(), "algorithm=RSA_AES,keyVersion=1,symmetricKey=x".into()));
    assert_eq!(result_of(&expect_respond(ap.begin(&req, now_ms()))).1, "PARAM_ILLEGAL");
    let mut req = notify("R-P", Tamper::None);
    req.target = "/v2/pds/memberships/deleteCard".into();
    assert_eq!(result_of(&expect_respond(ap.begin(&req, now_ms()))).1, "PARAM_ILLEGAL");
    let mut req = notify("R-P", Tamper::None);
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("request-time"));
    assert_eq!(result_of(&expect_respond(ap.begin(&req, now_ms()))).1, "PARAM_ILLEGAL");
}

#[test]
fn header_names_match_case_insensitively() {
    let ap = handler();
    let mut req = notify("R-CASE", Tamper::None);
    for (n, _) in req.headers.iter_mut() {
        *n = n.to_ascii_uppercase();
    }
    expect_decide(ap.begin(&req, now_ms()));
}

#[test]
fn optional_clock_skew_window() {
    let mut c = config(None);
    c.max_clock_skew = Some(std::time::Duration::from_secs(300));
    let ap = handler_with(c);
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00+00:00")
        .unwrap()
        .timestamp_millis();
    expect_decide(ap.begin(&notify("R-SKEW1", Tamper::None), t + 300_000));
    let resp = expect_respond(ap.begin(&notify("R-SKEW2", Tamper::None), t + 300_001));
    assert_eq!(result_of(&resp).1, "PARAM_ILLEGAL");
}

#[test]
fn answers_can_be_left_unsigned_by_configuration() {
    let mut c = config(None);
    c.sign_responses = false;
    let ap = handler_with(c);
    let mut p = expect_decide(ap.begin(&notify("R-UNSIGNED", Tamper::None), now_ms()));
    let resp = ap.finish(&mut p, b"{}", now_ms()).unwrap();
    assert!(resp.header("Signature").is_none());
}

#[test]
fn host_decisions_are_validated() {
    let ap = handler();
    let mut p = expect_decide(ap.begin(&notify("R-DECIDE", Tamper::None), now_ms()));
    let e = ap
        .finish(
            &mut p,
            br#"{"result":{"resultStatus":"F","resultCode":"NOPE"}}"#,
            now_ms(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.field(), Some("notifyCardRegistrationResponse.result.resultCode"));
    let e = ap.finish(&mut p, b"[1]", now_ms()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(
        ap.finish(&mut p, b"{oops", now_ms()).unwrap_err().kind(),
        ErrorKind::InvalidJson
    );
    // Still usable after a rejected decision, and only once.
    let long = "x".repeat(300);
    let decision =
        format!(r#"{{"result":{{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"{long}"}}}}"#);
    let resp = ap.finish(&mut p, decision.as_bytes(), now_ms()).unwrap();
    assert_eq!(
        result_of(&resp).2.chars().count(),
        256,
        "resultMessage is truncated to 256"
    );
    assert_eq!(
        ap.finish(&mut p, b"{}", now_ms()).unwrap_err().kind(),
        ErrorKind::AlreadyUsed
    );
}

#[test]
fn the_other_three_apis_reach_the_host_with_their_answers_validated() {
    let ap = handler();
    let d = driver();
    let cases: [(&str, &str, &str); 3] = [
        (
            "inquireCardDetail",
            r#"{"appId":"2102010113769000","cardNo":"C1"}"#,
            r#"{"cardFields":[{"fieldCode":"POINT","fieldValue":"10"},{"fieldCode":"BALANCE","fieldValue":{"value":5,"currency":"SGD"}}]}"#,
        ),
        (
            "updateCardDetail",
            r#"{"cardNo":"C1","requestTime":"2019-06-12T14:07:05+08:00","cardFields":[{"fieldCode":"EMAIL","fieldValue":"a@b.c"}]}"#,
            "{}",
        ),
        (
            "inquireMemberAssets",
            r#"{"cardNo":"C1","assetTypes":["POINT","BALANCE"]}"#,
            r#"{"assetDetails":[{"assetType":"BALANCE","assetValue":"{\"value\":5,\"currency\":\"SGD\"}"}]}"#,
        ),
    ];
    for (api, body, answer) in cases {
        let req = d
            .request(&format!("/v2/pds/memberships/{api}"), body.as_bytes(), T, Tamper::None)
            .unwrap();
        let mut p = expect_decide(ap.begin(&req, now_ms()));
        assert_eq!(p.api().name(), api);
        let resp = ap.finish(&mut p, answer.as_bytes(), now_ms()).unwrap();
        assert_eq!(result_of(&resp).0, "S", "{api}");
        assert!(
            PlatformDriver::verify_response(&merchant_public(), &req, &resp),
            "{api}"
        );
        // Not idempotency-keyed: a repeat goes to the host again.
        expect_decide(ap.begin(&req, now_ms()));
    }
    let too_many = r#"{"cardFields":[1,2,3,4,5,6,7,8,9,10,11]}"#;
    let req = d
        .request(
            "/v2/pds/memberships/inquireCardDetail",
            br#"{"appId":"A","cardNo":"C1"}"#,
            T,
            Tamper::None,
        )
        .unwrap();
    let mut p = expect_decide(ap.begin(&req, now_ms()));
    assert_eq!(
        ap.finish(&mut p, too_many.as_bytes(), now_ms()).unwrap_err().kind(),
        ErrorKind::Validation
    );
}

/// A store whose every call fails, to show that internal trouble answers U.
struct BrokenStore;
fn fire<T>() -> Result<T> {
    Err(Error::new(ErrorKind::Internal, "disk on fire"))
}
impl Store for BrokenStore {
    fn claim_inbound(&self, _: &str, _: &str, _: i64, _: i64) -> Result<Claim> {
        fire()
    }
    fn complete_inbound(&self, _: &str, _: i64, _: &[u8], _: i64) -> Result<Completion> {
        fire()
    }
    fn release_inbound(&self, _: &str, _: i64) -> Result<()> {
        fire()
    }
    fn purge_inbound(&self, _: i64) -> Result<usize> {
        fire()
    }
    fn outbox_insert(&self, _: &OutboxEntry, _: LeaseRequest<'_>) -> Result<Inserted> {
        fire()
    }
    fn outbox_acquire(&self, _: &str, _: LeaseRequest<'_>) -> Result<Acquired> {
        fire()
    }
    fn outbox_record_attempt(&self, _: &str, _: i64, _: &Attempt, _: Option<&str>, _: i64) -> Result<bool> {
        fire()
    }
    fn outbox_finish(&self, _: &str, _: i64, _: OutboxState, _: &[u8], _: i64) -> Result<bool> {
        fire()
    }
    fn outbox_release(&self, _: &str, _: i64) -> Result<()> {
        fire()
    }
    fn outbox_get(&self, _: &str) -> Result<Option<OutboxEntry>> {
        fire()
    }
    fn outbox_pending(&self, _: &str, _: i64) -> Result<Vec<OutboxEntry>> {
        fire()
    }
    fn outbox_list(&self, _: &OutboxQuery) -> Result<Vec<OutboxEntry>> {
        fire()
    }
    fn outbox_count_pending(&self, _: Option<&str>) -> Result<u64> {
        fire()
    }
    fn outbox_attempts(&self, _: &str) -> Result<Vec<Attempt>> {
        fire()
    }
    fn outbox_purge(&self, _: i64) -> Result<usize> {
        fire()
    }
}

#[test]
fn internal_failure_answers_u() {
    let ap = AlipayPlus::new(config(None), Some(Arc::new(BrokenStore))).unwrap();
    let resp = expect_respond(ap.begin(&notify("R-BROKEN", Tamper::None), now_ms()));
    assert_eq!(result_of(&resp).0, "U");
    assert_eq!(result_of(&resp).1, "UNKNOWN_EXCEPTION");
    assert!(
        !String::from_utf8_lossy(&resp.body).contains("fire"),
        "internal detail is not leaked"
    );
}
