//! Bring your own transport: issueCard and confirm through `prepare` /
//! `complete`, exchanged by this test's own tiny HTTP client (std::net, not
//! the library's transport) against the loopback emulators.

mod common;

use crate::common::emulator::{Fault, WechatEmulatorConfig, WechatFault, WechatPayEmulator};
use cardbridge::ErrorKind;
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, IssuedCard};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::http::HttpResponse;
use cardbridge::outbox::{Outgoing, Prepared, Progress, Purpose, Reply};
use cardbridge::store::{MemoryStore, OutboxState, Store};
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{ApiAnswer, WechatPay};
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// The caller's own HTTP/1.1 exchange over a plain loopback socket.
fn exchange(out: &Outgoing) -> Reply {
    let rest = out.url.strip_prefix("http://").expect("loopback http");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut stream) = TcpStream::connect(host) else {
        return Reply::NotSent;
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        out.method
    );
    for (n, v) in &out.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", out.body.len()));
    if stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(&out.body))
        .is_err()
    {
        return Reply::NoAnswer;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return Reply::NoAnswer;
    }
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        if n.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().unwrap();
        }
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return Reply::NoAnswer;
    }
    Reply::Answered(HttpResponse { status, headers, body })
}

fn request(request_id: &str) -> IssueCardRequest {
    let json = format!(
        r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"{request_id}","customerId":"210911290000",
        "externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00",
        "cardFields":[{{"fieldCode":"POINT","fieldValue":"123"}}]}}"#
    );
    model::parse(json.as_bytes(), Direction::Outbound).unwrap()
}

/// Drives issueCard with the test's transport; returns the result and the prepared requests seen.
fn issue(ap: &AlipayPlus, r: &IssueCardRequest) -> (cardbridge::Result<IssuedCard>, Vec<(Purpose, Duration)>) {
    let mut seen = Vec::new();
    let mut step = ap.prepare_issue_card(r);
    loop {
        match step {
            Ok(Progress::Done(card)) => return (Ok(card), seen),
            Err(e) => return (Err(e), seen),
            Ok(Progress::Send(p)) => {
                seen.push((p.purpose(), p.wait()));
                std::thread::sleep(p.wait());
                let reply = exchange(p.request());
                step = ap.complete_issue_card(p, reply);
            }
        }
    }
}

#[test]
fn issue_card_over_the_callers_transport_matches_issue_card() {
    let emu = start_emulator();
    let store = Arc::new(MemoryStore::new());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();

    // The request is recorded before it is handed out: the one durable commit.
    let Progress::Send(p) = ap.prepare_issue_card(&request("BYO-1")).unwrap() else {
        panic!("a new request is sent")
    };
    assert_eq!(p.purpose(), Purpose::Send);
    assert_eq!(p.wait(), Duration::ZERO);
    assert_eq!(p.request().method, "POST");
    assert!(p.request().url.ends_with("/api/open/v2/pds/memberships/issueCard"));
    assert!(p.request().headers.iter().any(|(n, _)| n == "Signature"));
    let entry = store.outbox_get(p.outbox_id()).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Pending);
    assert_eq!(entry.body, p.request().body);
    assert_eq!(emu.issue_card_hits(), 0);
    let debug = format!("{p:?}");
    assert!(!debug.contains("M-000123") && !debug.contains("signature="), "{debug}");

    let reply = exchange(p.request());
    let Progress::Done(card) = ap.complete_issue_card(p, reply).unwrap() else {
        panic!("S is final")
    };
    assert!(card.card_no.starts_with("EMU"));
    assert_eq!(emu.issue_card_hits(), 1);
    // The same requestId: replayed from the outbox (no second send), equal to what issue_card returns.
    let (again, seen) = issue(&ap, &request("BYO-1"));
    assert_eq!(again.unwrap(), card);
    assert!(seen.is_empty());
    assert_eq!(ap.issue_card(&request("BYO-1")).unwrap(), card);
    assert_eq!(emu.issue_card_hits(), 1);
}

#[test]
fn a_500_answer_returns_the_retry_and_a_spent_budget_leaves_the_entry_pending() {
    let emu = start_emulator();
    let store = Arc::new(MemoryStore::new());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();
    emu.push_fault(Fault::HttpStatus(500));
    let (card, seen) = issue(&ap, &request("BYO-500"));
    assert!(card.unwrap().card_no.starts_with("EMU"));
    assert_eq!(seen.len(), 2, "the 500 gives a retry request");
    assert!(seen[1].1 > Duration::ZERO, "after a backoff wait");
    assert_eq!(emu.hits_for("BYO-500"), 2);
    assert_eq!(emu.cards_issued(), 1);

    // Every attempt (4) fails: RemoteUnknown, the entry pending and free for the next call.
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(500));
    }
    let (e, seen) = issue(&ap, &request("BYO-UNKNOWN"));
    let e = e.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown, "{e}");
    assert_eq!(seen.len(), 4);
    let pending = e.pending().unwrap();
    assert_eq!(pending.request_id, "BYO-UNKNOWN");
    assert_eq!(pending.attempts, 4);
    assert_eq!(e.remote().unwrap().http_status, 500);
    let entry = store.outbox_get(&pending.outbox_id).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Pending);
    assert!(entry.lease_owner.is_empty(), "lease released");
    // The next call finishes it with the same bytes.
    let (card, _) = issue(&ap, &request("BYO-UNKNOWN"));
    assert!(card.unwrap().card_no.starts_with("EMU"));
    assert_eq!(emu.cards_issued(), 2);
}

#[test]
fn transport_failures_are_judged_as_the_engine_judges_its_own() {
    let emu = start_emulator();
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(Arc::new(MemoryStore::new()))).unwrap();
    let Progress::Send(p) = ap.prepare_issue_card(&request("BYO-NS")).unwrap() else {
        panic!()
    };
    let Progress::Send(p) = ap.complete_issue_card(p, Reply::NotSent).unwrap() else {
        panic!("not sent: retried")
    };
    let Progress::Send(p) = ap.complete_issue_card(p, Reply::TimedOut).unwrap() else {
        panic!("timed out: retried (issueCard's reconcile is a re-send)")
    };
    assert_eq!(p.purpose(), Purpose::Send);
    let reply = exchange(p.request());
    assert!(matches!(ap.complete_issue_card(p, reply).unwrap(), Progress::Done(_)));
    let entry = ap.prepare_issue_card(&request("BYO-NS")).unwrap();
    assert!(matches!(entry, Progress::Done(_)));
}

// ---- WeChat Pay confirm ----

const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const MCHID: &str = "1900000001";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const API_V3: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
const OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";

fn wechat() -> (WechatPayEmulator, WechatPay) {
    let wechat_key = platform_key();
    let emu = WechatPayEmulator::start(WechatEmulatorConfig {
        wechatpay_private_key: wechat_key.clone(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: merchant_key().public_key(),
        mchid: MCHID.into(),
        merchant_serial_no: SERIAL.into(),
        api_v3_key: ApiV3Key::new(API_V3).unwrap(),
        platform_certificate: None,
    })
    .unwrap();
    let mut ring = KeyRing::new();
    ring.add_public_key(PUB_KEY_ID, wechat_key.public_key()).unwrap();
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let mut c = cardbridge::wechatpay::Config::new(signer, merchant_key(), ApiV3Key::new(API_V3).unwrap(), ring);
    c.base_url = emu.base_url();
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(20);
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    (emu, wp)
}

fn confirm_input(code: &str) -> Vec<u8> {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID,
           "phone_number": "13800000000", "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    .to_string()
    .into_bytes()
}

/// Drives confirm; `spoil` may change each reply before it is handed back.
fn confirm(
    wp: &WechatPay,
    input: &[u8],
    mut spoil: impl FnMut(&Prepared, Reply) -> Reply,
) -> (cardbridge::Result<ApiAnswer>, Vec<Purpose>) {
    let mut seen = Vec::new();
    let mut step = wp.prepare_confirm(input);
    loop {
        match step {
            Ok(Progress::Done(a)) => return (Ok(a), seen),
            Err(e) => return (Err(e), seen),
            Ok(Progress::Send(p)) => {
                seen.push(p.purpose());
                std::thread::sleep(p.wait());
                let reply = spoil(&p, exchange(p.request()));
                step = wp.complete_confirm(p, reply);
            }
        }
    }
}

#[test]
fn confirm_over_the_callers_transport_applies_once_and_replays() {
    let (emu, wp) = wechat();
    emu.add_user_card("7001", CARD_ID, OPENID, "1004");
    let (answer, seen) = confirm(&wp, &confirm_input("7001"), |_, r| r);
    let answer = answer.unwrap();
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    assert_eq!(answer.json["phone_number"], "13800000000", "decrypted as confirm does");
    assert_eq!(seen, vec![Purpose::Send]);
    // Duplicate: the stored answer, no second send; the same as confirm's replay.
    let (again, seen) = confirm(&wp, &confirm_input("7001"), |_, r| r);
    assert!(seen.is_empty());
    assert_eq!(again.unwrap().json, answer.json);
    assert_eq!(wp.confirm(&confirm_input("7001")).unwrap().json, answer.json);
    assert_eq!(emu.confirm_hits("7001"), 1);
    // Another request's Prepared is refused by complete_confirm.
    let (emu2, wp2) = wechat();
    emu2.add_user_card("7002", CARD_ID, OPENID, "1004");
    let ap = AlipayPlus::new(
        config(Some("http://127.0.0.1:9".into())),
        Some(Arc::new(MemoryStore::new())),
    )
    .unwrap();
    let Progress::Send(p) = ap.prepare_issue_card(&request("BYO-KIND")).unwrap() else {
        panic!()
    };
    let e = wp2.complete_confirm(p, Reply::NotSent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert_eq!(e.field(), Some("prepared"));
}

#[test]
fn a_tampered_confirm_answer_is_not_trusted_and_is_reconciled_by_a_read_back() {
    let (emu, wp) = wechat();
    emu.add_user_card("7003", CARD_ID, OPENID, "1004");
    let (answer, seen) = confirm(&wp, &confirm_input("7003"), |p, reply| match (p.purpose(), reply) {
        (Purpose::Send, Reply::Answered(mut r)) => {
            // One byte changed in transit: the signature no longer verifies.
            let at = r.body.iter().position(|b| *b == b'E').unwrap();
            r.body[at] = b'F';
            Reply::Answered(r)
        }
        (_, r) => r,
    });
    let answer = answer.unwrap();
    assert_eq!(seen, vec![Purpose::Send, Purpose::ReadBack], "never a blind re-send");
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    assert_eq!(emu.confirm_hits("7003"), 1);
    assert_eq!(emu.confirms_applied(), 1);
}

#[test]
fn a_confirm_500_is_read_back_then_sent_again() {
    let (emu, wp) = wechat();
    emu.add_user_card("7004", CARD_ID, OPENID, "1004");
    emu.push_fault(WechatFault::Status {
        status: 500,
        code: "SYSTEM_ERROR".into(),
        message: "busy".into(),
    });
    let (answer, seen) = confirm(&wp, &confirm_input("7004"), |_, r| r);
    assert_eq!(answer.unwrap().json["user_card_state"], "EFFECTIVE");
    // The 500 applied nothing: the read-back finds the card waiting, and the same attempt sends.
    assert_eq!(seen, vec![Purpose::Send, Purpose::ReadBack, Purpose::Send]);
    assert_eq!(emu.confirm_hits("7004"), 2);
    assert_eq!(emu.confirms_applied(), 1);
}

#[test]
fn a_request_another_caller_is_sending_is_unknown_at_once_and_free_after_a_drop() {
    let emu = start_emulator();
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(Arc::new(MemoryStore::new()))).unwrap();
    let Progress::Send(first) = ap.prepare_issue_card(&request("BYO-BUSY")).unwrap() else {
        panic!()
    };
    let e = ap.prepare_issue_card(&request("BYO-BUSY")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown, "{e}");
    assert!(e.to_string().contains("another caller is delivering"), "{e}");
    assert_eq!(e.pending().unwrap().outbox_id, first.outbox_id());
    // Dropped uncompleted: the lease is released at once; the next caller reconciles, then sends.
    drop(first);
    let (card, seen) = issue(&ap, &request("BYO-BUSY"));
    assert!(card.unwrap().card_no.starts_with("EMU"));
    assert_eq!(seen.len(), 1, "issueCard's reconcile is the send itself");
    assert_eq!(emu.hits_for("BYO-BUSY"), 1);
}

#[test]
fn c_exports_check_their_pointers_and_write_nothing_on_failure() {
    use cardbridge::ffi::bytes::cardbridge_bytes;
    use cardbridge::ffi::error::{cardbridge_error, cardbridge_error_free, cardbridge_result};
    use cardbridge::ffi::transport::*;
    use std::ptr;
    let mut answer = cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    };
    let mut next: *mut cardbridge_prepared = ptr::null_mut();
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let json = br#"{}"#;
    let rc = cardbridge_alipayplus_issue_card_prepare(
        ptr::null(),
        json.as_ptr().cast(),
        json.len(),
        &mut answer,
        &mut next,
        &mut err,
    );
    assert_eq!(rc, cardbridge_result::NullParameter);
    cardbridge_error_free(err);
    let rc = cardbridge_wechatpay_confirm_complete(
        ptr::null(),
        ptr::null_mut(),
        CARDBRIDGE_REPLY_NOT_SENT,
        0,
        ptr::null(),
        0,
        ptr::null(),
        0,
        &mut answer,
        &mut next,
        ptr::null_mut(),
    );
    assert_eq!(rc, cardbridge_result::NullParameter);
    assert!(answer.data.is_null() && next.is_null(), "nothing written on failure");
    assert_eq!(cardbridge_prepared_purpose(ptr::null()), 0);
    assert_eq!(cardbridge_prepared_wait_ms(ptr::null()), 0);
    assert_eq!(cardbridge_prepared_header_count(ptr::null()), 0);
    let (mut text, mut len) = (ptr::null(), 0usize);
    assert_eq!(
        cardbridge_prepared_url(ptr::null(), &mut text, &mut len, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
    cardbridge_prepared_free(ptr::null_mut());
}
