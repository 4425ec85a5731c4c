//! Issue 10.4 / 10.5: a per-call deadline overrides the configured retry
//! budget, and a cancel token stops retries between attempts; either way the
//! entry stays pending and a later call completes it. No timing assertions:
//! a 1 ms deadline is shorter than any backoff wait (the config's shortest is
//! 2.5 ms), so exactly one attempt is made.

mod common;

use cardbridge::ErrorKind;
use cardbridge::alipayplus::AlipayPlus;
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::outbox::CallOptions;
use cardbridge::store::MemoryStore;
use common::emulator::{Fault, sample_registration};
use common::*;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn issue(rid: &str) -> IssueCardRequest {
    let reg = model::parse(&sample_registration(rid), Direction::Inbound).unwrap();
    IssueCardRequest::from_registration(&reg, "C-1".into(), "2026-11-23T10:00:00+08:00".into(), vec![])
}

fn setup() -> (common::emulator::AlipayPlatformEmulator, AlipayPlus) {
    let emu = start_emulator();
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(Arc::new(MemoryStore::new()))).unwrap();
    (emu, ap)
}

#[test]
fn a_short_deadline_makes_one_attempt_and_leaves_the_entry_pending() {
    let (emu, ap) = setup();
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(500));
    }
    let e = ap
        .issue_card_with(&issue("OPT-1"), &CallOptions::with_deadline(Duration::from_millis(1)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
    assert_eq!(
        emu.hits_for("OPT-1"),
        1,
        "the configured budget (4 attempts) was overridden"
    );
    let pending = e.pending().expect("names its entry");
    assert_eq!((pending.attempts, pending.last_status), (1, 500));
    assert_eq!(pending.request_id, "OPT-1", "names the requestId to repeat");
    assert_eq!(ap.metrics()["pending_entries"], 1);
    // Without options the configured budget applies: the next call completes it.
    ap.issue_card(&issue("OPT-1")).unwrap();
    assert_eq!(ap.metrics()["pending_entries"], 0);
}

#[test]
fn a_cancelled_call_stops_between_attempts_and_says_so() {
    let (emu, ap) = setup();
    emu.push_fault(Fault::Unknown);
    let cancel = Arc::new(AtomicBool::new(true));
    let options = CallOptions {
        deadline: None,
        cancel: Some(cancel),
    };
    let e = ap.issue_card_with(&issue("OPT-2"), &options).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown);
    assert!(e.message().contains("cancelled after 1 attempt"), "{e}");
    assert_eq!(emu.hits_for("OPT-2"), 1, "no attempt after the cancel");
    assert_eq!(e.pending().unwrap().attempts, 1);
    // The entry stayed pending, unleased: resume finishes it at once.
    let id = e.pending().unwrap().outbox_id.clone();
    ap.resume(&id).unwrap();
    assert_eq!(ap.metrics()["pending_entries"], 0);
}
