//! issueCard client against the loopback emulator: success, idempotency,
//! every scripted fault, validation before sending, outbox and restart.

mod common;

use crate::common::emulator::Fault;
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, client::OUTBOX_KIND};
use cardbridge::store::{MemoryStore, OutboxState, SqliteStore, Store};
use cardbridge::{Error, ErrorKind};
use common::*;
use std::sync::Arc;
use std::time::Duration;

fn request(request_id: &str) -> IssueCardRequest {
    let json = format!(
        r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"{request_id}","customerId":"210911290000",
        "externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00",
        "cardFields":[{{"fieldCode":"POINT","fieldValue":"123"}},{{"fieldCode":"BALANCE","fieldValue":{{"value":100,"currency":"SGD"}}}}]}}"#
    );
    model::parse(json.as_bytes(), Direction::Outbound).unwrap()
}

fn setup() -> (
    crate::common::emulator::AlipayPlatformEmulator,
    AlipayPlus,
    Arc<MemoryStore>,
) {
    let emu = start_emulator();
    let store = Arc::new(MemoryStore::new());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();
    (emu, ap, store)
}

fn outbox_id(request_id: &str) -> String {
    format!("{OUTBOX_KIND}/2102010113769000/{request_id}")
}

#[test]
fn issues_a_card_and_records_it() {
    let (emu, ap, store) = setup();
    let card = ap.issue_card(&request("REQ-OK-1")).unwrap();
    assert!(card.card_no.starts_with("EMU"), "{}", card.card_no);
    assert!(card.signed);
    assert_eq!(card.response.result.result_status, "S");
    let entry = store.outbox_get(&outbox_id("REQ-OK-1")).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Succeeded);
    assert_eq!(entry.result.as_deref(), Some(card.response_body.as_slice()));
    assert_eq!(store.outbox_attempts(&entry.id).unwrap().len(), 1);
    // A second call with the same requestId is answered from the outbox, without the network.
    let again = ap.issue_card(&request("REQ-OK-1")).unwrap();
    assert_eq!(again.card_no, card.card_no);
    assert_eq!(emu.issue_card_hits(), 1);
}

#[test]
fn sent_body_is_the_validated_serialisation_and_signed_with_the_prefix() {
    let (emu, ap, _) = setup();
    ap.issue_card(&request("REQ-WIRE")).unwrap();
    let seen = emu.last_request().unwrap();
    assert_eq!(seen.target, "/api/open/v2/pds/memberships/issueCard");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["requestId"], "REQ-WIRE");
    assert_eq!(body["cardFields"][1]["fieldValue"]["value"], 100);
    let sig = cardbridge::http::find_header(&seen.headers, "signature").unwrap();
    assert!(sig.starts_with("algorithm=RSA256,keyVersion=1,signature="), "{sig}");
}

#[test]
fn invalid_request_is_refused_before_anything_is_sent_or_stored() {
    let (emu, ap, store) = setup();
    let mut r = request("REQ-BAD");
    r.external_customer_id = "merchant@01".to_string();
    let e = ap.issue_card(&r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.field(), Some("issueCard.externalCustomerId"));
    assert_eq!(emu.issue_card_hits(), 0);
    assert!(store.outbox_get(&outbox_id("REQ-BAD")).unwrap().is_none());
}

#[test]
fn same_request_id_with_a_different_body_is_a_conflict() {
    let (emu, ap, _) = setup();
    ap.issue_card(&request("REQ-CONFLICT")).unwrap();
    let mut r = request("REQ-CONFLICT");
    r.external_customer_id = "M-999".to_string();
    let e = ap.issue_card(&r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IdempotencyConflict);
    assert_eq!(e.field(), Some("issueCard.requestId"));
    assert_eq!(emu.issue_card_hits(), 1);
}

fn remote_code(e: &Error) -> &str {
    e.remote().map(|r| r.code.as_str()).unwrap_or("")
}

#[test]
fn transient_faults_are_retried_with_identical_bytes() {
    let cases: Vec<(&str, Fault)> = vec![
        ("u", Fault::Unknown),
        ("traffic", Fault::TrafficLimit),
        ("503", Fault::HttpStatus(503)),
        ("unsigned", Fault::Unsigned),
        ("badsig", Fault::BadSignature),
        ("nocardno", Fault::SuccessWithoutCardNo),
        ("drop", Fault::DropAfterProcessing),
        ("delay", Fault::DelayThenAnswer(Duration::from_millis(900))),
    ];
    for (tag, fault) in cases {
        let (emu, ap, store) = setup();
        emu.push_fault(fault);
        let rid = format!("REQ-FAULT-{tag}");
        let card = ap.issue_card(&request(&rid)).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert!(card.card_no.starts_with("EMU"), "{tag}");
        assert_eq!(emu.hits_for(&rid), 2, "{tag}: one faulted attempt, one retry");
        assert_eq!(emu.cards_issued(), 1, "{tag}: the platform issued exactly one card");
        let attempts = store.outbox_attempts(&outbox_id(&rid)).unwrap();
        assert_eq!(attempts.len(), 2, "{tag}");
        assert_eq!(attempts[1].outcome, "S SUCCESS", "{tag}");
    }
}

#[test]
fn f_answer_is_final_and_remembered() {
    let (emu, ap, store) = setup();
    emu.push_fault(Fault::Fail {
        code: "PROCESS_FAIL".into(),
        message: "member blocked".into(),
    });
    let e = ap.issue_card(&request("REQ-F")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteFailed);
    assert_eq!(remote_code(&e), "PROCESS_FAIL");
    assert_eq!(e.remote().unwrap().status, "F");
    assert_eq!(emu.hits_for("REQ-F"), 1, "F is not retried");
    assert_eq!(
        store.outbox_get(&outbox_id("REQ-F")).unwrap().unwrap().state,
        OutboxState::Failed
    );
    let again = ap.issue_card(&request("REQ-F")).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::RemoteFailed);
    assert_eq!(remote_code(&again), "PROCESS_FAIL");
    assert_eq!(emu.hits_for("REQ-F"), 1, "the stored answer is replayed");
}

#[test]
fn exhausted_retries_report_unknown_and_a_later_call_finishes_it() {
    let (emu, ap, store) = setup();
    for _ in 0..4 {
        emu.push_fault(Fault::Unknown);
    }
    let e = ap.issue_card(&request("REQ-U")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
    assert!(
        e.message().contains("retry later with the same requestId"),
        "{}",
        e.message()
    );
    assert_eq!(remote_code(&e), "UNKNOWN_EXCEPTION");
    assert_eq!(emu.hits_for("REQ-U"), 4);
    let entry = store.outbox_get(&outbox_id("REQ-U")).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Pending);
    assert_eq!(entry.attempts, 4);
    let card = ap.issue_card(&request("REQ-U")).unwrap();
    assert_eq!(emu.hits_for("REQ-U"), 5);
    assert_eq!(
        store.outbox_attempts(&entry.id).unwrap().len(),
        5,
        "attempt numbers continue"
    );
    assert!(!card.card_no.is_empty());
}

#[test]
fn total_deadline_bounds_the_call() {
    let emu = start_emulator();
    let mut c = config(Some(emu.base_url()));
    c.retry.max_attempts = 50;
    c.retry.base_delay = Duration::from_millis(200);
    c.retry.max_delay = Duration::from_millis(200);
    c.retry.deadline = Duration::from_millis(700);
    let ap = AlipayPlus::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    for _ in 0..50 {
        emu.push_fault(Fault::HttpStatus(500));
    }
    let e = ap.issue_card(&request("REQ-DEADLINE")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
    let hits = emu.hits_for("REQ-DEADLINE");
    assert!((2..=8).contains(&hits), "deadline stops retries early, got {hits}");
}

#[test]
fn pending_requests_resume_after_a_restart() {
    let emu = start_emulator();
    let db = temp_db("resume");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
        let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store)).unwrap();
        for _ in 0..4 {
            emu.push_fault(Fault::HttpStatus(502));
        }
        assert_eq!(
            ap.issue_card(&request("REQ-RESTART")).unwrap_err().kind(),
            ErrorKind::RemoteUnknown
        );
    } // "crash": everything dropped
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();
    let outcomes = ap.resume_pending().unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].0, outbox_id("REQ-RESTART"));
    let card = outcomes[0].1.as_ref().unwrap();
    assert_eq!(emu.cards_issued(), 1);
    assert_eq!(
        store.outbox_get(&outcomes[0].0).unwrap().unwrap().state,
        OutboxState::Succeeded
    );
    assert!(ap.resume_pending().unwrap().is_empty());
    assert_eq!(ap.issue_card(&request("REQ-RESTART")).unwrap().card_no, card.card_no);
    let _ = std::fs::remove_file(&db);
}

#[test]
fn a_resume_left_pending_names_the_request_id() {
    let (emu, ap, _) = setup();
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(502));
    }
    let first = ap.issue_card(&request("REQ-NAMED")).unwrap_err();
    assert_eq!(first.pending().unwrap().request_id, "REQ-NAMED");
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(502));
    }
    let e = ap.resume(&outbox_id("REQ-NAMED")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
    let p = e.pending().unwrap();
    assert_eq!(
        (p.request_id.as_str(), p.outbox_id.as_str()),
        ("REQ-NAMED", outbox_id("REQ-NAMED").as_str())
    );
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(502));
    }
    let outcomes = ap.resume_pending().unwrap();
    let e = outcomes[0].1.as_ref().unwrap_err();
    assert_eq!(e.pending().unwrap().request_id, "REQ-NAMED");
    assert!(!ap.resume_pending().unwrap()[0].1.as_ref().unwrap().card_no.is_empty());
}

#[test]
fn every_attempt_reuses_the_same_body_bytes() {
    let (emu, ap, _) = setup();
    emu.push_fault(Fault::Unknown);
    emu.push_fault(Fault::HttpStatus(500));
    ap.issue_card(&request("REQ-BYTES")).unwrap();
    let bodies = emu.bodies_for("REQ-BYTES");
    assert_eq!(bodies.len(), 3);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn connection_refused_is_unknown_not_failed() {
    // Nothing listens on this port once the emulator is stopped.
    let emu = start_emulator();
    let url = emu.base_url();
    emu.stop();
    let ap = AlipayPlus::new(config(Some(url)), Some(Arc::new(MemoryStore::new()))).unwrap();
    let e = ap.issue_card(&request("REQ-REFUSED")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
}

#[test]
fn client_requires_a_base_url_and_refuses_plain_http_off_loopback() {
    let ap = AlipayPlus::new(config(None), Some(Arc::new(MemoryStore::new()))).unwrap();
    assert_eq!(
        ap.issue_card(&request("X")).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );
    let e = AlipayPlus::new(
        config(Some("http://example.com".into())),
        Some(Arc::new(MemoryStore::new())),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

#[test]
fn a_mis_signed_issue_card_is_diagnosed_from_the_gateway_echo() {
    let diagnosis = |e: &Error| -> serde_json::Value {
        let remote = e.remote().expect("the platform's refusal");
        assert_eq!(
            (remote.code.as_str(), remote.status.as_str()),
            ("INVALID_SIGNATURE", "F")
        );
        // The echo holds the body: the error names only its length.
        assert!(remote.message.contains("bytes, not shown"), "{}", remote.message);
        assert!(!e.to_string().contains("M-000123") && !remote.message.contains("M-000123"));
        let detail: serde_json::Value = serde_json::from_str(&remote.detail).unwrap();
        detail["cardbridge_diagnosis"].clone()
    };

    // A proxy re-serialised the body: the body part differs, and it grew.
    let (emu, ap, store) = setup();
    emu.push_fault(Fault::BodyReencodedInTransit);
    let e = ap.issue_card(&request("REQ-SIG1")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteFailed);
    let d = diagnosis(&e);
    assert_eq!(d["differing_line"], "body", "{d}");
    assert!(d["length_delta"].as_i64().unwrap() > 0, "{d}");
    assert!(d["likely_cause"].as_str().unwrap().contains("re-serialised"), "{d}");
    assert_eq!(emu.cards_issued(), 0);
    // Stored with the refusal: a replay reports the same.
    let stored = store.outbox_get(&outbox_id("REQ-SIG1")).unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored.result.unwrap()).unwrap();
    assert_eq!(stored["cardbridge_diagnosis"], d);
    assert_eq!(diagnosis(&ap.issue_card(&request("REQ-SIG1")).unwrap_err()), d);

    // Signed with another key: every part matches, the key is wrong.
    let emu = start_emulator();
    let mut c = config(Some(emu.base_url()));
    c.merchant_private_key = platform_key();
    let ap = cardbridge::alipayplus::AlipayPlus::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    let d = diagnosis(&ap.issue_card(&request("REQ-SIG2")).unwrap_err());
    assert_eq!(d["differing_line"], serde_json::Value::Null, "{d}");
    assert_eq!(d["length_delta"], 0, "{d}");
    assert!(
        d["likely_cause"].as_str().unwrap().contains("merchant_private_key"),
        "{d}"
    );
}

#[test]
fn a_refusal_carries_the_offset_measured_from_the_platform_response_time() {
    let emu = start_emulator();
    let mut c = config(Some(emu.base_url()));
    // This host runs two hours behind the platform.
    c.clock = cardbridge::clock::Clock::offset(-7_200_000);
    let ap = cardbridge::alipayplus::AlipayPlus::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    let offset_of = |e: &Error| -> serde_json::Value {
        let detail: serde_json::Value = serde_json::from_str(&e.remote().unwrap().detail).unwrap();
        detail["cardbridge_diagnosis"].clone()
    };
    let near_two_hours = |d: &serde_json::Value| {
        let off = d["platform_clock_offset_ms"].as_i64().expect("an offset");
        assert!((7_140_000..=7_260_000).contains(&off), "{d}");
    };
    // A refusal without an echo: the clocks alone explain it.
    emu.push_fault(Fault::Fail {
        code: "PARAM_ILLEGAL".into(),
        message: "Request-Time is out of range".into(),
    });
    let d = offset_of(&ap.issue_card(&request("REQ-CLK1")).unwrap_err());
    near_two_hours(&d);
    assert!(d["likely_cause"].as_str().unwrap().contains("NTP"), "{d}");
    // A business refusal is not blamed on the clock.
    emu.push_fault(Fault::Fail {
        code: "PROCESS_FAIL".into(),
        message: "member blocked".into(),
    });
    let e = ap.issue_card(&request("REQ-CLK3")).unwrap_err();
    assert_eq!(e.remote().unwrap().detail, "", "no diagnosis");
    // With an echo that differs in the body: the body stays the cause, the offset is reported.
    emu.push_fault(Fault::BodyReencodedInTransit);
    let d = offset_of(&ap.issue_card(&request("REQ-CLK2")).unwrap_err());
    near_two_hours(&d);
    assert_eq!(d["differing_line"], "body", "{d}");
}
