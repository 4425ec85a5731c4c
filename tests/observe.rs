//! Issue 10.1 / 10.2: the log hook (levels, replacement, reentrancy, panics)
//! and the counters, moving as real flows run against the loopback emulator.
//! The hook is process-wide, so the tests of this binary take turns.

mod common;

use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, Begin};
use cardbridge::obs::{self, Event, Level};
use cardbridge::store::{LeaseRequest, MemoryStore, Store};
use common::emulator::{Fault, PlatformDriver, Tamper, sample_registration};
use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};

const NOTIFY: &str = "/v2/pds/memberships/notifyCardRegistration";
const T: &str = "2026-11-23T10:00:00.000+00:00";

/// One test at a time owns the process-wide hook.
static TURN: Mutex<()> = Mutex::new(());

type Seen = Arc<Mutex<Vec<(Level, String, Value)>>>;

fn record(min: Level) -> Seen {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    obs::set_hook(
        min,
        Some(Box::new(move |e: &Event<'_>| {
            s.lock()
                .unwrap()
                .push((e.level, e.message.to_string(), e.fields_json()))
        })),
    );
    seen
}

fn issue(rid: &str) -> IssueCardRequest {
    let reg = model::parse(&sample_registration(rid), Direction::Inbound).unwrap();
    IssueCardRequest::from_registration(&reg, "C-1".into(), "2026-11-23T10:00:00+08:00".into(), vec![])
}

fn n(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn counters_move_as_alipay_flows_run() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let seen = record(Level::Info);
    let emu = start_emulator();
    let store = Arc::new(MemoryStore::new());
    let ap = AlipayPlus::new(config(Some(emu.base_url())), Some(store.clone())).unwrap();
    let m0 = ap.metrics();
    assert_eq!(n(&m0, "/retries"), 0);
    assert_eq!(m0["pending_entries"], 0);
    assert_eq!(m0["inbound"], serde_json::json!({}));

    // issueCard: U (ambiguous: it may have been applied), then success.
    emu.push_fault(Fault::Unknown);
    ap.issue_card(&issue("OBS-1")).unwrap();
    let m = ap.metrics();
    assert_eq!(n(&m, "/outbound_attempts/alipayplus.issueCard/ambiguous"), 1);
    assert_eq!(n(&m, "/outbound_attempts/alipayplus.issueCard/succeeded"), 1);
    assert_eq!(n(&m, "/retries"), 1);
    // The same call again: the stored answer is replayed.
    ap.issue_card(&issue("OBS-1")).unwrap();
    assert_eq!(n(&ap.metrics(), "/duplicates_replayed"), 1);
    assert_eq!(emu.hits_for("OBS-1"), 2, "the replay sent nothing");

    // Every attempt answers HTTP 500: outcome unknown, the entry stays pending.
    for _ in 0..4 {
        emu.push_fault(Fault::HttpStatus(500));
    }
    let e = ap.issue_card(&issue("OBS-2")).unwrap_err();
    let id = e.pending().unwrap().outbox_id.clone();
    let m = ap.metrics();
    assert_eq!(n(&m, "/outcomes_unknown"), 1);
    assert_eq!(m["pending_entries"], 1);
    assert_eq!(n(&m, "/retries"), 1 + 3);

    // A crashed owner's lease, expired: the next delivery takes it over.
    let past = now_ms() - 600_000;
    store
        .outbox_acquire(
            &id,
            LeaseRequest {
                owner: "crashed-node",
                now_ms: past,
                lease_ms: 1000,
            },
        )
        .unwrap();
    ap.resume(&id).unwrap();
    let m = ap.metrics();
    assert_eq!(n(&m, "/lease_takeovers"), 1);
    assert_eq!(m["pending_entries"], 0);

    // Inbound: a decided registration, then its duplicate, then a forged one.
    let driver = PlatformDriver::new(platform_key(), CLIENT_ID, "1");
    let req = driver
        .request(NOTIFY, &sample_registration("OBS-IN-1"), T, Tamper::None)
        .unwrap();
    let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
        panic!("host not asked")
    };
    ap.finish(&mut call, b"{}", now_ms()).unwrap();
    assert!(matches!(ap.begin(&req, now_ms()), Begin::Respond(_)));
    let forged = driver
        .request(NOTIFY, &sample_registration("OBS-IN-2"), T, Tamper::WrongKey)
        .unwrap();
    assert!(matches!(ap.begin(&forged, now_ms()), Begin::Respond(_)));
    let m = ap.metrics();
    assert_eq!(n(&m, "/inbound/notifyCardRegistration/S"), 1);
    assert_eq!(n(&m, "/inbound/notifyCardRegistration/replayed"), 1);
    assert_eq!(n(&m, "/inbound/notifyCardRegistration/F"), 1);
    assert_eq!(n(&m, "/duplicates_replayed"), 2);
    assert_eq!(n(&m, "/store_errors"), 0);

    // The same story in events: what happened, with identifiers and numbers.
    let seen = seen.lock().unwrap().clone();
    obs::set_hook(Level::Error, None);
    let has = |level: Level, message: &str, key: &str, value: Value| {
        seen.iter()
            .any(|(l, m, f)| *l == level && m == message && f[key] == value)
    };
    assert!(has(Level::Warn, "retry scheduled", "attempt", 1.into()));
    assert!(has(Level::Info, "outbound attempt", "outcome", "succeeded".into()));
    assert!(has(
        Level::Warn,
        "outcome unknown: left pending",
        "http_status",
        500.into()
    ));
    assert!(has(
        Level::Warn,
        "delivery lease taken over",
        "out_id",
        id.as_str().into()
    ));
    assert!(has(Level::Info, "inbound answer", "request_id", "OBS-IN-1".into()));
    assert!(has(
        Level::Warn,
        "inbound call answered without the host",
        "result_code",
        "ACCESS_DENIED".into()
    ));
    let attempt = seen
        .iter()
        .find(|(_, m, f)| m == "outbound attempt" && f["outcome"] == "succeeded")
        .unwrap();
    for key in ["kind", "out_id", "attempt", "outcome", "http_status", "latency_ms"] {
        assert!(!attempt.2[key].is_null(), "{key} in {}", attempt.2);
    }
}

#[test]
fn hook_filters_levels_survives_panics_and_reentrancy_and_can_be_replaced_from_inside() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let emit = |level| {
        obs::emit(&Event {
            level,
            target: "cardbridge::test",
            message: "m",
            fields: &[],
        })
    };
    // Level filter: WARN delivers errors and warnings only.
    let seen = record(Level::Warn);
    for l in [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace] {
        emit(l);
    }
    let levels: Vec<Level> = seen.lock().unwrap().iter().map(|e| e.0).collect();
    assert_eq!(levels, [Level::Error, Level::Warn]);

    // A hook that panics, and one that emits from inside: both harmless.
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    obs::set_hook(
        Level::Trace,
        Some(Box::new(move |_: &Event<'_>| {
            *c.lock().unwrap() += 1;
            emit(Level::Error); // reentrant: dropped, not delivered recursively
            panic!("a careless hook");
        })),
    );
    emit(Level::Info);
    emit(Level::Info);
    assert_eq!(*calls.lock().unwrap(), 2, "one call per event, none recursive");

    // A hook that removes itself while running: no deadlock, no more calls.
    let c = calls.clone();
    obs::set_hook(
        Level::Trace,
        Some(Box::new(move |_: &Event<'_>| {
            *c.lock().unwrap() += 10;
            obs::set_hook(Level::Error, None);
        })),
    );
    emit(Level::Info);
    emit(Level::Info);
    assert_eq!(*calls.lock().unwrap(), 12);
}

#[test]
fn a_refused_signature_is_diagnosed_through_the_hook_without_values() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let seen = record(Level::Warn);
    let ap = AlipayPlus::new(config(None), Some(Arc::new(MemoryStore::new()))).unwrap();
    let driver = PlatformDriver::new(platform_key(), CLIENT_ID, "1");
    // Signed for the public path, received behind a proxy that stripped its prefix.
    let public = format!("/api/membership{NOTIFY}");
    let mut request = driver
        .request(&public, &sample_registration("OBS-DIAG-1"), T, Tamper::None)
        .unwrap();
    request.target = NOTIFY.into();
    request.headers.push(("X-Original-URI".into(), public.clone()));
    assert!(
        matches!(ap.begin(&request, now_ms()), Begin::Respond(_)),
        "still refused"
    );
    obs::set_hook(Level::Error, None);
    let seen = seen.lock().unwrap();
    let (_, _, fields) = seen
        .iter()
        .find(|(_, m, _)| m == "signature check failed: diagnosis")
        .expect("a diagnosis event");
    assert_eq!(fields["check"], "mismatch");
    assert_eq!(fields["verified_variant"], "proxy_header_target");
    assert_eq!(fields["api"], "notifyCardRegistration");
    let text = fields.to_string();
    assert!(
        !text.contains("api/membership") && !text.contains("OBS-DIAG-1"),
        "{text}"
    );
}
