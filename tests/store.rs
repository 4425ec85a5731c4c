//! Behaviour of the durable store: one suite run against every implementation
//! (memory, SQLite in memory and on disk, PostgreSQL), plus SQLite-specific
//! durability, migration, configuration and concurrency checks.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use cardbridge::ErrorKind;
use cardbridge::store::*;

mod pg;

// ---------------------------------------------------------------- helpers

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "cardbridge-store-{tag}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("store.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entry(id: &str, kind: &str, body: &[u8], created_ms: i64) -> OutboxEntry {
    let mut e = OutboxEntry::new(
        id.to_owned(),
        kind,
        "POST",
        format!("/v1/{kind}"),
        body.to_vec(),
        format!("fp-{id}"),
        created_ms,
    );
    e.fixed_headers = vec![("Wechatpay-Serial".to_owned(), format!("PUB_KEY_ID_{created_ms}"))];
    e
}

fn attempt(number: u32, started_ms: i64, outcome: &str, status: u16) -> Attempt {
    Attempt {
        number,
        started_ms,
        outcome: outcome.to_owned(),
        status,
    }
}

fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

fn lease(owner: &str, now_ms: i64, lease_ms: i64) -> LeaseRequest<'_> {
    LeaseRequest {
        owner,
        now_ms,
        lease_ms,
    }
}

fn claimed(token: i64) -> Claim {
    Claim::Claimed(ClaimTicket { token })
}

/// Inserts `e` leased to `owner` and returns its lease token.
fn insert_new(s: &dyn Store, e: &OutboxEntry, owner: &str, now: i64) -> i64 {
    match s.outbox_insert(e, lease(owner, now, 10_000)).unwrap() {
        Inserted::New(stored) => {
            assert_eq!(stored.lease_owner, owner);
            stored.lease_token
        }
        other => panic!("expected a new entry, got {other:?}"),
    }
}

// ------------------------------------------------- the shared behaviour suite

fn claim_first_sight_in_flight_and_done_replay(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k1", "fp-a", 1_000, 30_000).unwrap(), claimed(1));
    // Same key while the lease runs, whatever the fingerprint: someone is on it.
    assert_eq!(s.claim_inbound("k1", "fp-a", 1_001, 30_000).unwrap(), Claim::InFlight);
    assert_eq!(s.claim_inbound("k1", "fp-b", 30_999, 30_000).unwrap(), Claim::InFlight);
    // Other keys are independent.
    assert_eq!(s.claim_inbound("k2", "fp-z", 1_002, 30_000).unwrap(), claimed(1));

    let response = b"{\"result\":{\"resultStatus\":\"S\"}}\x00\xff";
    assert_eq!(
        s.complete_inbound("k1", 1, response, 2_000).unwrap(),
        Completion::Stored
    );
    let done = Claim::Done {
        response: response.to_vec(),
        fingerprint: "fp-a".to_owned(),
    };
    assert_eq!(s.claim_inbound("k1", "fp-a", 2_001, 30_000).unwrap(), done);
    // A different fingerprint still gets the stored one back, for the caller to compare.
    assert_eq!(s.claim_inbound("k1", "fp-other", 999_999_999, 30_000).unwrap(), done);
}

/// Issue 7 finding 1: a late finish from a lost claim must not change the answer,
/// and a lost claim's release must not release the new holder's claim.
fn claims_are_fenced(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k", "fp-a", 1_000, 500).unwrap(), claimed(1));
    assert_eq!(s.claim_inbound("k", "fp-b", 1_499, 500).unwrap(), Claim::InFlight);
    // Lease ends at 1_500: from then on the claim can be taken over, with a new token.
    assert_eq!(s.claim_inbound("k", "fp-b", 1_500, 500).unwrap(), claimed(2));
    assert_eq!(ClaimTicket { token: 2 }.earlier_claims(), 1);
    // The lost holder gives up: its release must not free B's claim.
    s.release_inbound("k", 1).unwrap();
    assert_eq!(s.claim_inbound("k", "fp-c", 1_600, 500).unwrap(), Claim::InFlight);
    // The lost holder finishes before B: nothing is stored.
    assert_eq!(
        s.complete_inbound("k", 1, b"answer-A", 1_700).unwrap(),
        Completion::Lost
    );
    // B decides.
    assert_eq!(
        s.complete_inbound("k", 2, b"answer-B", 1_800).unwrap(),
        Completion::Stored
    );
    // The lost holder finishes after B: it gets B's answer, byte for byte.
    assert_eq!(
        s.complete_inbound("k", 1, b"answer-A", 1_900).unwrap(),
        Completion::AlreadyDone(b"answer-B".to_vec())
    );
    // B finishing twice keeps its first answer too.
    assert_eq!(
        s.complete_inbound("k", 2, b"answer-B2", 1_950).unwrap(),
        Completion::AlreadyDone(b"answer-B".to_vec())
    );
    assert_eq!(
        s.claim_inbound("k", "fp-x", 2_000, 500).unwrap(),
        Claim::Done {
            response: b"answer-B".to_vec(),
            fingerprint: "fp-b".to_owned()
        }
    );
}

fn release_then_reclaim_counts_earlier_claims(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k", "fp", 1_000, 60_000).unwrap(), claimed(1));
    s.release_inbound("k", 1).unwrap();
    // Released: the next delivery claims afresh although the lease had not run out, and is told
    // that an earlier claim existed.
    assert_eq!(s.claim_inbound("k", "fp2", 1_001, 60_000).unwrap(), claimed(2));
    assert_eq!(s.claim_inbound("k", "fp2", 1_002, 60_000).unwrap(), Claim::InFlight);

    assert_eq!(s.complete_inbound("k", 2, b"final", 1_003).unwrap(), Completion::Stored);
    s.release_inbound("k", 2).unwrap();
    let done = Claim::Done {
        response: b"final".to_vec(),
        fingerprint: "fp2".to_owned(),
    };
    assert_eq!(s.claim_inbound("k", "fp2", 1_004, 60_000).unwrap(), done);

    // Releasing an unknown key is a no-op.
    s.release_inbound("never-seen", 1).unwrap();
    assert_eq!(s.claim_inbound("never-seen", "fp", 1_005, 60_000).unwrap(), claimed(1));
}

fn complete_without_claim_and_twice(s: &dyn Store) {
    // No record at all (purged meanwhile): stored as done anyway, with an empty fingerprint.
    assert_eq!(
        s.complete_inbound("orphan", 1, b"r1", 5_000).unwrap(),
        Completion::Stored
    );
    assert_eq!(
        s.claim_inbound("orphan", "fp", 5_001, 1_000).unwrap(),
        Claim::Done {
            response: b"r1".to_vec(),
            fingerprint: String::new()
        }
    );
    // Once decided, the first response stays.
    assert_eq!(
        s.complete_inbound("orphan", 1, b"r2", 5_002).unwrap(),
        Completion::AlreadyDone(b"r1".to_vec())
    );
    // An empty response is a valid response.
    assert_eq!(s.claim_inbound("empty", "fp", 1, 1_000).unwrap(), claimed(1));
    assert_eq!(s.complete_inbound("empty", 1, b"", 2).unwrap(), Completion::Stored);
    assert_eq!(
        s.claim_inbound("empty", "fp", 3, 1_000).unwrap(),
        Claim::Done {
            response: Vec::new(),
            fingerprint: "fp".to_owned()
        }
    );
}

fn purge_respects_cutoff_and_state(s: &dyn Store) {
    for (key, at) in [("old1", 100), ("old2", 199), ("edge", 200), ("new", 300)] {
        assert_eq!(s.claim_inbound(key, "fp", at, 1).unwrap(), claimed(1));
        assert_eq!(
            s.complete_inbound(key, 1, key.as_bytes(), at).unwrap(),
            Completion::Stored
        );
    }
    // A claim abandoned long ago (lease over before the cutoff) goes too; a live one stays.
    assert_eq!(s.claim_inbound("abandoned", "fp", 50, 1).unwrap(), claimed(1));
    assert_eq!(s.claim_inbound("live", "fp", 150, 1_000_000).unwrap(), claimed(1));

    assert_eq!(s.purge_inbound(200).unwrap(), 3);
    assert_eq!(s.purge_inbound(200).unwrap(), 0);
    assert_eq!(s.claim_inbound("old1", "fp", 400, 1_000).unwrap(), claimed(1));
    assert_eq!(s.claim_inbound("old2", "fp", 400, 1_000).unwrap(), claimed(1));
    assert_eq!(s.claim_inbound("abandoned", "fp", 400, 1_000).unwrap(), claimed(1));
    assert!(matches!(
        s.claim_inbound("edge", "fp", 400, 1_000).unwrap(),
        Claim::Done { .. }
    ));
    assert!(matches!(
        s.claim_inbound("new", "fp", 400, 1_000).unwrap(),
        Claim::Done { .. }
    ));
    assert_eq!(s.claim_inbound("live", "fp", 400, 1_000).unwrap(), Claim::InFlight);
}

/// Issue 7 finding 2: keys built from components never collide.
fn keys_with_slashes_do_not_collide(s: &dyn Store) {
    let a = key("alipayplus.notifyCardRegistration", &["2102010113769000/X", "Y"]);
    let b = key("alipayplus.notifyCardRegistration", &["2102010113769000", "X/Y"]);
    assert_eq!(s.claim_inbound(&a, "fp-a", 1, 1_000).unwrap(), claimed(1));
    assert_eq!(s.complete_inbound(&a, 1, b"A", 2).unwrap(), Completion::Stored);
    assert_eq!(s.claim_inbound(&b, "fp-b", 3, 1_000).unwrap(), claimed(1));
}

fn outbox_insert_is_idempotent_and_leased(s: &dyn Store) {
    let original = entry("issue/app/req-1", "alipayplus.issueCard", b"{\"a\":1}", 1_000);
    assert_eq!(s.outbox_get(&original.id).unwrap(), None);
    let token = insert_new(s, &original, "owner-a", 1_000);
    assert_eq!(token, 1);
    let stored = s.outbox_get(&original.id).unwrap().unwrap();
    assert_eq!(stored.body, original.body);
    assert_eq!(stored.fixed_headers, original.fixed_headers);
    assert_eq!(stored.method, "POST");
    assert_eq!(
        (stored.lease_owner.as_str(), stored.lease_until_ms),
        ("owner-a", 11_000)
    );

    let mut imposter = entry("issue/app/req-1", "other.kind", b"{\"a\":2}", 9_000);
    imposter.target = "/elsewhere".to_owned();
    match s.outbox_insert(&imposter, lease("owner-b", 9_000, 10_000)).unwrap() {
        Inserted::Existing(e) => assert_eq!(e, stored, "a second insert returns the original unchanged"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.outbox_get(&original.id).unwrap(), Some(stored));
}

fn outbox_leases_exclude_other_owners(s: &dyn Store) {
    let e = entry("e", "k", b"body", 1_000);
    let t1 = insert_new(s, &e, "a", 1_000);
    assert!(matches!(
        s.outbox_acquire("e", lease("b", 5_000, 10_000)).unwrap(),
        Acquired::Busy(_)
    ));
    // Expired at 11_000: another owner takes it over with a new token.
    let t2 = match s.outbox_acquire("e", lease("b", 11_000, 10_000)).unwrap() {
        Acquired::Leased(e) => {
            assert_eq!(e.lease_owner, "b");
            e.lease_token
        }
        other => panic!("{other:?}"),
    };
    assert!(t2 > t1);
    // The old owner is fenced out of every write.
    assert!(
        !s.outbox_record_attempt("e", t1, &attempt(1, 11_100, "timeout", 0), Some("t"), 30_000)
            .unwrap()
    );
    assert!(
        !s.outbox_finish("e", t1, OutboxState::Succeeded, b"late", 11_200)
            .unwrap()
    );
    s.outbox_release("e", t1).unwrap();
    assert!(matches!(
        s.outbox_acquire("e", lease("c", 12_000, 10_000)).unwrap(),
        Acquired::Busy(_)
    ));
    // The current owner records and finishes; then the entry is final for everyone.
    assert!(
        s.outbox_record_attempt("e", t2, &attempt(1, 11_300, "200 ok", 200), None, 30_000)
            .unwrap()
    );
    assert!(s.outbox_finish("e", t2, OutboxState::Succeeded, b"ok", 11_400).unwrap());
    match s.outbox_acquire("e", lease("c", 12_000, 10_000)).unwrap() {
        Acquired::Final(e) => {
            assert_eq!(
                (e.state, e.result.as_deref()),
                (OutboxState::Succeeded, Some(&b"ok"[..]))
            );
            assert_eq!((e.lease_owner.as_str(), e.lease_until_ms), ("", 0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.outbox_acquire("missing", lease("c", 1, 1)).unwrap(),
        Acquired::Missing
    );
    // A released lease is free at once.
    let f = entry("f", "k", b"b", 1_000);
    let tf = insert_new(s, &f, "a", 1_000);
    s.outbox_release("f", tf).unwrap();
    assert!(matches!(
        s.outbox_acquire("f", lease("b", 1_001, 10_000)).unwrap(),
        Acquired::Leased(_)
    ));
}

fn outbox_attempts_counted_and_ordered(s: &dyn Store) {
    let e = entry("e1", "alipayplus.issueCard", b"body", 1_000);
    let t = insert_new(s, &e, "o", 1_000);
    assert!(s.outbox_attempts("e1").unwrap().is_empty());

    assert!(
        s.outbox_record_attempt(
            "e1",
            t,
            &attempt(1, 1_100, "timeout", 0),
            Some("read timed out"),
            50_000
        )
        .unwrap()
    );
    assert!(
        s.outbox_record_attempt("e1", t, &attempt(2, 1_200, "http 503", 503), Some("HTTP 503"), 60_000)
            .unwrap()
    );
    let got = s.outbox_get("e1").unwrap().unwrap();
    assert_eq!(got.attempts, 2);
    assert_eq!(got.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(got.last_status, 503);
    assert_eq!(got.updated_ms, 1_200);
    assert_eq!(got.lease_until_ms, 60_000, "recording extends the lease");
    // The same number again (a record lost and redone) replaces, never duplicates.
    assert!(
        s.outbox_record_attempt("e1", t, &attempt(2, 1_250, "U", 200), Some("U"), 60_000)
            .unwrap()
    );
    assert_eq!(
        s.outbox_attempts("e1").unwrap(),
        vec![attempt(1, 1_100, "timeout", 0), attempt(2, 1_250, "U", 200)]
    );
    // A success clears last_error.
    assert!(
        s.outbox_record_attempt("e1", t, &attempt(3, 1_300, "S", 200), None, 60_000)
            .unwrap()
    );
    let got = s.outbox_get("e1").unwrap().unwrap();
    assert_eq!((got.attempts, got.last_error), (3, None));
    // Unknown ids are simply not leased by the caller.
    assert!(
        !s.outbox_record_attempt("nope", 1, &attempt(1, 1, "x", 0), None, 1)
            .unwrap()
    );
}

fn outbox_finish_sets_state_and_result(s: &dyn Store) {
    let t = insert_new(s, &entry("ok", "k", b"b", 1_000), "o", 1_000);
    assert!(
        s.outbox_finish("ok", t, OutboxState::Succeeded, b"{\"cardNo\":\"1\"}", 2_000)
            .unwrap()
    );
    let got = s.outbox_get("ok").unwrap().unwrap();
    assert_eq!(got.state, OutboxState::Succeeded);
    assert_eq!(got.result.as_deref(), Some(&b"{\"cardNo\":\"1\"}"[..]));
    assert_eq!(got.updated_ms, 2_000);
    // Final entries are not finished twice.
    assert!(!s.outbox_finish("ok", t, OutboxState::Failed, b"no", 3_000).unwrap());

    let t = insert_new(s, &entry("ko", "k", b"b", 1_000), "o", 1_000);
    assert!(s.outbox_finish("ko", t, OutboxState::Failed, b"F", 2_000).unwrap());
    assert_eq!(s.outbox_get("ko").unwrap().unwrap().state, OutboxState::Failed);

    let t = insert_new(s, &entry("p", "k", b"b", 1_000), "o", 1_000);
    let err = s.outbox_finish("p", t, OutboxState::Pending, b"", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
}

fn outbox_pending_skips_live_leases(s: &dyn Store) {
    let t3 = insert_new(s, &entry("c", "issue", b"3", 300), "o", 300);
    insert_new(s, &entry("a", "issue", b"1", 100), "o", 100);
    insert_new(s, &entry("b2", "issue", b"2", 200), "o", 200);
    insert_new(s, &entry("b1", "issue", b"2", 200), "o", 200);
    insert_new(s, &entry("x", "other", b"x", 50), "o", 50);
    assert!(s.outbox_finish("c", t3, OutboxState::Succeeded, b"", 400).unwrap());
    // Every lease (10 s) still runs at 5_000.
    assert!(s.outbox_pending("issue", 5_000).unwrap().is_empty());
    // At 10_150 the lease of "a" (until 10_100) has run out, "b1"/"b2" (until 10_200) not yet.
    assert_eq!(ids(&s.outbox_pending("issue", 10_150).unwrap()), vec!["a"]);
    // Oldest first, ties by id; finished and other kinds excluded.
    assert_eq!(ids(&s.outbox_pending("issue", 20_000).unwrap()), vec!["a", "b1", "b2"]);
    assert_eq!(ids(&s.outbox_pending("other", 20_000).unwrap()), vec!["x"]);
    assert!(s.outbox_pending("none", 20_000).unwrap().is_empty());
    assert_eq!(s.outbox_count_pending(None).unwrap(), 4);
    assert_eq!(s.outbox_count_pending(Some("issue")).unwrap(), 3);
    assert_eq!(s.outbox_count_pending(Some("none")).unwrap(), 0);
}

fn outbox_list_filters_and_pages(s: &dyn Store) {
    for (id, kind, at) in [("a1", "k1", 10), ("a2", "k2", 20), ("a3", "k1", 30), ("a4", "k1", 40)] {
        insert_new(s, &entry(id, kind, b"b", at), "o", at);
    }
    let t = s.outbox_get("a3").unwrap().unwrap().lease_token;
    assert!(s.outbox_finish("a3", t, OutboxState::Failed, b"F", 50).unwrap());
    let all = OutboxQuery::default();
    assert_eq!(ids(&s.outbox_list(&all).unwrap()), vec!["a1", "a2", "a3", "a4"]);
    let q = OutboxQuery {
        state: Some(OutboxState::Pending),
        kind: Some("k1".into()),
        ..Default::default()
    };
    assert_eq!(ids(&s.outbox_list(&q).unwrap()), vec!["a1", "a4"]);
    let old = OutboxQuery {
        created_before_ms: Some(30),
        ..Default::default()
    };
    assert_eq!(ids(&s.outbox_list(&old).unwrap()), vec!["a1", "a2"]);
    // Pages of two, following the cursor.
    let mut page = OutboxQuery {
        limit: 2,
        ..Default::default()
    };
    let first = s.outbox_list(&page).unwrap();
    assert_eq!(ids(&first), vec!["a1", "a2"]);
    page.after_id = Some("a2".into());
    assert_eq!(ids(&s.outbox_list(&page).unwrap()), vec!["a3", "a4"]);
    page.after_id = Some("a4".into());
    assert!(s.outbox_list(&page).unwrap().is_empty());
}

fn outbox_purge_keeps_pending_and_recent(s: &dyn Store) {
    let t = insert_new(s, &entry("old-done", "k", b"b", 10), "o", 10);
    assert!(
        s.outbox_record_attempt("old-done", t, &attempt(1, 20, "ok", 200), None, 100)
            .unwrap()
    );
    assert!(
        s.outbox_finish("old-done", t, OutboxState::Succeeded, b"", 100)
            .unwrap()
    );
    let t = insert_new(s, &entry("new-done", "k", b"b", 10), "o", 10);
    assert!(s.outbox_finish("new-done", t, OutboxState::Failed, b"", 500).unwrap());
    insert_new(s, &entry("old-pending", "k", b"b", 10), "o", 10);
    assert_eq!(s.outbox_purge(200).unwrap(), 1);
    assert_eq!(s.outbox_get("old-done").unwrap(), None);
    assert!(s.outbox_attempts("old-done").unwrap().is_empty());
    assert!(s.outbox_get("new-done").unwrap().is_some());
    assert!(s.outbox_get("old-pending").unwrap().is_some());
}

fn outbox_entry_debug_hides_the_body(s: &dyn Store) {
    let mut e = entry("dbg", "k", b"{\"phone_number\":\"13800138000\"}", 1);
    e.id = "dbg".into();
    insert_new(s, &e, "o", 1);
    let shown = format!("{:?}", s.outbox_get("dbg").unwrap().unwrap());
    assert!(!shown.contains("13800138000"), "{shown}");
    assert!(shown.contains("body_len"), "{shown}");
}

/// One named case of the suite.
type Case = (&'static str, fn(&dyn Store));

/// The whole suite against fresh stores from `make`.
fn run_suite(make: &dyn Fn() -> Box<dyn Store>) {
    let cases: &[Case] = &[
        (
            "claim_first_sight_in_flight_and_done_replay",
            claim_first_sight_in_flight_and_done_replay,
        ),
        ("claims_are_fenced", claims_are_fenced),
        (
            "release_then_reclaim_counts_earlier_claims",
            release_then_reclaim_counts_earlier_claims,
        ),
        ("complete_without_claim_and_twice", complete_without_claim_and_twice),
        ("purge_respects_cutoff_and_state", purge_respects_cutoff_and_state),
        ("keys_with_slashes_do_not_collide", keys_with_slashes_do_not_collide),
        (
            "outbox_insert_is_idempotent_and_leased",
            outbox_insert_is_idempotent_and_leased,
        ),
        ("outbox_leases_exclude_other_owners", outbox_leases_exclude_other_owners),
        (
            "outbox_attempts_counted_and_ordered",
            outbox_attempts_counted_and_ordered,
        ),
        (
            "outbox_finish_sets_state_and_result",
            outbox_finish_sets_state_and_result,
        ),
        ("outbox_pending_skips_live_leases", outbox_pending_skips_live_leases),
        ("outbox_list_filters_and_pages", outbox_list_filters_and_pages),
        (
            "outbox_purge_keeps_pending_and_recent",
            outbox_purge_keeps_pending_and_recent,
        ),
        ("outbox_entry_debug_hides_the_body", outbox_entry_debug_hides_the_body),
    ];
    for (name, case) in cases {
        let store = make();
        eprintln!("store suite: {name}");
        case(store.as_ref());
    }
}

#[test]
fn memory_store_behaviour() {
    run_suite(&|| Box::new(MemoryStore::new()));
}

#[test]
fn sqlite_in_memory_behaviour() {
    run_suite(&|| Box::new(SqliteStore::open_in_memory().unwrap()));
}

#[test]
fn sqlite_file_behaviour() {
    let dir = TempDir::new("suite");
    let seq = AtomicU32::new(0);
    run_suite(&|| {
        let path = dir.0.join(format!("s{}.db", seq.fetch_add(1, Ordering::Relaxed)));
        Box::new(SqliteStore::open(path).unwrap())
    });
}

/// The same suite against PostgreSQL: a fresh schema per case.
#[test]
fn postgres_behaviour() {
    let schemas = std::cell::RefCell::new(Vec::new());
    let Some(first) = pg::Schema::create("suite") else {
        return;
    };
    schemas.borrow_mut().push(first);
    let fresh = std::cell::Cell::new(true);
    run_suite(&|| {
        if !fresh.replace(false) {
            schemas
                .borrow_mut()
                .push(pg::Schema::create("suite").expect("the server answered a moment ago"));
        }
        let dsn = schemas.borrow().last().unwrap().dsn();
        Box::new(PostgresStore::open(&dsn).unwrap())
    });
}

#[test]
fn stores_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<SqliteStore>();
    assert_send_sync::<PostgresStore>();
    assert_send_sync::<Arc<dyn Store>>();
}

// ---------------------------------------------------------- SQLite specifics

#[test]
fn sqlite_data_survives_restart() {
    let dir = TempDir::new("restart");
    let path = dir.db();
    {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.claim_inbound("done", "fp-d", 1_000, 60_000).unwrap(), claimed(1));
        s.complete_inbound("done", 1, b"resp\x00bytes", 1_001).unwrap();
        assert_eq!(s.claim_inbound("inflight", "fp-i", 1_000, 60_000).unwrap(), claimed(1));
        let t = insert_new(&s, &entry("o1", "issue", b"\x01body\xfe", 1_000), "o", 1_000);
        assert!(
            s.outbox_record_attempt("o1", t, &attempt(1, 1_100, "timeout", 0), Some("timed out"), 2_000)
                .unwrap()
        );
        let t = insert_new(&s, &entry("o2", "issue", b"b2", 1_000), "o", 1_000);
        assert!(s.outbox_finish("o2", t, OutboxState::Succeeded, b"ok", 1_200).unwrap());
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.claim_inbound("done", "fp-x", 2_000, 60_000).unwrap(),
        Claim::Done {
            response: b"resp\x00bytes".to_vec(),
            fingerprint: "fp-d".to_owned()
        }
    );
    assert_eq!(
        s.claim_inbound("inflight", "fp-i", 2_000, 60_000).unwrap(),
        Claim::InFlight
    );
    let o1 = s.outbox_get("o1").unwrap().unwrap();
    assert_eq!(o1.body, b"\x01body\xfe");
    assert_eq!((o1.attempts, o1.last_error.as_deref()), (1, Some("timed out")));
    assert_eq!(s.outbox_attempts("o1").unwrap(), vec![attempt(1, 1_100, "timeout", 0)]);
    assert_eq!(ids(&s.outbox_pending("issue", 2_000).unwrap()), vec!["o1"]);
    let o2 = s.outbox_get("o2").unwrap().unwrap();
    assert_eq!(
        (o2.state, o2.result.as_deref()),
        (OutboxState::Succeeded, Some(&b"ok"[..]))
    );
    assert_eq!(
        s.pragma("user_version").unwrap(),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
}

#[test]
fn sqlite_pragmas() {
    let dir = TempDir::new("pragmas");
    let s = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(s.pragma("journal_mode").unwrap(), "wal");
    assert_eq!(s.pragma("synchronous").unwrap(), "2", "synchronous starts FULL");
    assert_eq!(s.pragma("foreign_keys").unwrap(), "1");
    assert_eq!(s.pragma("busy_timeout").unwrap(), "5000");
    assert_eq!(
        s.pragma("user_version").unwrap(),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
    // A durable write runs at FULL, whatever ran before it.
    s.claim_inbound("k", "fp", 1, 1_000).unwrap();
    s.complete_inbound("k", 1, b"r", 2).unwrap();
    assert_eq!(s.pragma("synchronous").unwrap(), "2");

    let m = SqliteStore::open_in_memory().unwrap();
    assert_eq!(m.pragma("foreign_keys").unwrap(), "1");
    assert_eq!(
        m.pragma("user_version").unwrap(),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
}

#[test]
fn sqlite_refuses_newer_schema() {
    let dir = TempDir::new("newer");
    let path = dir.db();
    drop(SqliteStore::open(&path).unwrap());
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let msg = err.message();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("schema version {newer}")), "{msg}");
    assert!(msg.contains("upgrade cardbridge"), "{msg}");
    // Refusing did not touch the file's version.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, newer);
}

fn assert_open_refused(path: &Path) {
    let err = SqliteStore::open(path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", err.message());
    assert!(err.message().contains(&path.display().to_string()), "{}", err.message());
}

#[test]
fn sqlite_refuses_unusable_paths() {
    let dir = TempDir::new("badpath");
    // Parent directory does not exist.
    assert_open_refused(&dir.0.join("missing-dir").join("store.db"));
    // A directory is not a database file.
    assert_open_refused(&dir.0);
    // A file that is not an SQLite database (and must be left as it was).
    let garbage = dir.0.join("garbage.db");
    let content = vec![b'x'; 4096];
    std::fs::write(&garbage, &content).unwrap();
    assert_open_refused(&garbage);
    assert_eq!(std::fs::read(&garbage).unwrap(), content);
}

#[test]
fn sqlite_concurrent_claims_from_two_handles() {
    const PER_HANDLE: usize = 4;
    let dir = TempDir::new("concurrent");
    let a = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let b = Arc::new(SqliteStore::open(dir.db()).unwrap());
    // Several rounds, each on a new key, to give a race a real chance to show.
    for round in 0..10 {
        let key = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(2 * PER_HANDLE));
        let mut threads = Vec::new();
        for (h, store) in [&a, &b].into_iter().enumerate() {
            for t in 0..PER_HANDLE {
                let store = Arc::clone(store);
                let barrier = Arc::clone(&barrier);
                let key = key.clone();
                threads.push(std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .claim_inbound(&key, &format!("fp-{h}-{t}"), 1_000, 3_600_000)
                        .unwrap()
                }));
            }
        }
        let claims: Vec<Claim> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won = claims.iter().filter(|c| **c == claimed(1)).count();
        let in_flight = claims.iter().filter(|c| **c == Claim::InFlight).count();
        assert_eq!((won, in_flight), (1, 2 * PER_HANDLE - 1), "round {round}: {claims:?}");
    }
}

#[test]
fn sqlite_concurrent_leases_from_two_handles() {
    let dir = TempDir::new("leases");
    let a = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let b = Arc::new(SqliteStore::open(dir.db()).unwrap());
    for round in 0..10 {
        let id = format!("e-{round}");
        let t = insert_new(a.as_ref(), &entry(&id, "k", b"b", 0), "creator", 0);
        a.outbox_release(&id, t).unwrap();
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let store = if n % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, id) = (barrier.clone(), id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let owner = format!("owner-{n}");
                    store.outbox_acquire(&id, lease(&owner, 1_000, 60_000)).unwrap()
                })
            })
            .collect();
        let got: Vec<Acquired> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let leased = got.iter().filter(|g| matches!(g, Acquired::Leased(_))).count();
        assert_eq!(leased, 1, "round {round}: exactly one delivery lease: {got:?}");
    }
}

#[test]
fn sqlite_two_handles_see_each_others_writes() {
    let dir = TempDir::new("handles");
    let a = SqliteStore::open(dir.db()).unwrap();
    let b = SqliteStore::open(dir.db()).unwrap();
    let t = insert_new(&a, &entry("o", "issue", b"from-a", 1), "a", 1);
    match b
        .outbox_insert(&entry("o", "issue", b"from-b", 2), lease("b", 2, 10))
        .unwrap()
    {
        Inserted::Existing(e) => assert_eq!(e.body, b"from-a"),
        other => panic!("{other:?}"),
    }
    assert!(
        b.outbox_record_attempt("o", t, &attempt(1, 3, "S", 200), None, 100)
            .unwrap()
    );
    assert!(a.outbox_finish("o", t, OutboxState::Succeeded, b"done", 4).unwrap());
    let seen = b.outbox_get("o").unwrap().unwrap();
    assert_eq!((seen.state, seen.attempts), (OutboxState::Succeeded, 1));
    assert_eq!(a.outbox_attempts("o").unwrap(), vec![attempt(1, 3, "S", 200)]);
}

/// Many threads writing through one handle share group transactions and each
/// gets its own answer.
#[test]
fn sqlite_group_commit_keeps_every_answer_apart() {
    let dir = TempDir::new("group");
    let s = Arc::new(SqliteStore::open(dir.db()).unwrap());
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..40 {
                    let k = key("t", &[&t.to_string(), &i.to_string()]);
                    assert_eq!(s.claim_inbound(&k, "fp", 1, 60_000).unwrap(), claimed(1));
                    let answer = format!("answer {t}/{i}");
                    assert_eq!(
                        s.complete_inbound(&k, 1, answer.as_bytes(), 2).unwrap(),
                        Completion::Stored
                    );
                }
            });
        }
    });
    for t in 0..8 {
        for i in 0..40 {
            let k = key("t", &[&t.to_string(), &i.to_string()]);
            match s.claim_inbound(&k, "fp", 3, 60_000).unwrap() {
                Claim::Done { response, .. } => assert_eq!(response, format!("answer {t}/{i}").into_bytes()),
                other => panic!("{other:?}"),
            }
        }
    }
}

/// The v1 schema exactly as the first release created it.
const V1_SCHEMA: &str = "CREATE TABLE inbound_idempotency (key TEXT NOT NULL PRIMARY KEY, fingerprint TEXT NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('claimed', 'done')), lease_until_ms INTEGER NOT NULL,
         response BLOB, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
     CREATE INDEX inbound_idempotency_purge ON inbound_idempotency (state, updated_ms);
     CREATE TABLE outbox (id TEXT NOT NULL PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
         body BLOB NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
         attempts INTEGER NOT NULL CHECK (attempts >= 0), result BLOB, last_error TEXT,
         created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
     CREATE INDEX outbox_pending ON outbox (kind, state, created_ms, id);
     CREATE TABLE outbox_attempts (outbox_id TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
         number INTEGER NOT NULL, started_ms INTEGER NOT NULL, outcome TEXT NOT NULL,
         PRIMARY KEY (outbox_id, number)) STRICT;";

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let dir = TempDir::new("migrate-v1");
    let path = dir.db();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO outbox VALUES ('old', 'k', '/t', x'7b7d', 'pending', 1, NULL, 'timeout', 1, 1);
             INSERT INTO outbox_attempts VALUES ('old', 1, 1, 'timeout');
             INSERT INTO inbound_idempotency VALUES ('alipayplus.notifyCardRegistration/app/R-1', 'fp', 'done', 0,
                 x'7b7d', 1, 1);
             INSERT INTO inbound_idempotency VALUES ('alipayplus.notifyCardRegistration/app/R-2', 'fp', 'claimed',
                 9999999999999, NULL, 1, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.pragma("user_version").unwrap(),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
    let old = store.outbox_get("old").unwrap().unwrap();
    assert_eq!(old.body, b"{}");
    assert_eq!((old.method.as_str(), old.fingerprint.as_str()), ("POST", ""));
    assert!(old.fixed_headers.is_empty());
    assert_eq!(store.outbox_attempts("old").unwrap(), vec![attempt(1, 1, "timeout", 0)]);
    assert_eq!(ids(&store.outbox_pending("k", 2).unwrap()), vec!["old"]);
    // A pending entry of an old version can be leased and finished.
    match store.outbox_acquire("old", lease("o", 2, 1_000)).unwrap() {
        Acquired::Leased(e) => assert!(
            store
                .outbox_finish("old", e.lease_token, OutboxState::Succeeded, b"", 3)
                .unwrap()
        ),
        other => panic!("{other:?}"),
    }
    // Decided answers still replay; a claim still in flight stays in flight.
    let done = key("alipayplus.notifyCardRegistration", &["app", "R-1"]);
    assert!(matches!(
        store.claim_inbound(&done, "fp", 5, 1_000).unwrap(),
        Claim::Done { response, .. } if response == b"{}"
    ));
    let live = key("alipayplus.notifyCardRegistration", &["app", "R-2"]);
    assert_eq!(store.claim_inbound(&live, "fp", 5, 1_000).unwrap(), Claim::InFlight);
}

/// Keys and ids written by v1/v2 whose parts held `%` or `/` are re-encoded
/// where the split is unambiguous, so the answers they carry are still found.
#[test]
fn legacy_keys_are_reencoded_by_the_v3_migration() {
    let dir = TempDir::new("migrate-keys");
    let path = dir.db();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute_batch(
            "ALTER TABLE outbox ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
             ALTER TABLE outbox ADD COLUMN fixed_headers TEXT NOT NULL DEFAULT '[]';
             INSERT INTO inbound_idempotency VALUES ('alipayplus.notifyCardRegistration/app/R%1', 'fp', 'done', 0,
                 x'41', 1, 1);
             INSERT INTO inbound_idempotency VALUES ('wechatpay.callback/id/with/slashes', 'fp', 'done', 0, x'42', 1, 1);
             INSERT INTO outbox (id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms)
                 VALUES ('alipayplus.issueCard/app/R%1', 'alipayplus.issueCard', '/t', x'7b7d', 'pending', 1,
                 NULL, NULL, 1, 1);
             INSERT INTO outbox_attempts VALUES ('alipayplus.issueCard/app/R%1', 1, 1, 'timeout');
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let k1 = key("alipayplus.notifyCardRegistration", &["app", "R%1"]);
    assert!(
        matches!(store.claim_inbound(&k1, "fp", 5, 1_000).unwrap(), Claim::Done { response, .. } if response == b"A")
    );
    let k2 = key("wechatpay.callback", &["id/with/slashes"]);
    assert!(
        matches!(store.claim_inbound(&k2, "fp", 5, 1_000).unwrap(), Claim::Done { response, .. } if response == b"B")
    );
    let id = key("alipayplus.issueCard", &["app", "R%1"]);
    assert_eq!(store.outbox_get(&id).unwrap().unwrap().attempts, 1);
    assert_eq!(store.outbox_attempts(&id).unwrap().len(), 1);
    assert_eq!(store.outbox_get("alipayplus.issueCard/app/R%1").unwrap(), None);
}

/// One frame per write: the inbound table is WITHOUT ROWID with no secondary
/// index, so a claim and a final answer each touch a single page.
#[test]
fn sqlite_inbound_table_is_one_page_per_write() {
    let dir = TempDir::new("layout");
    drop(SqliteStore::open(dir.db()).unwrap());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let sql: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'inbound'", [], |r| r.get(0))
        .unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    let indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inbound' AND sql IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
}
