//! Behaviour of the durable store: one suite run against every implementation,
//! plus SQLite-specific durability, configuration and concurrency checks.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use cardbridge::ErrorKind;
use cardbridge::store::*;

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
    OutboxEntry {
        id: id.to_owned(),
        kind: kind.to_owned(),
        target: format!("/v1/{kind}"),
        body: body.to_vec(),
        state: OutboxState::Pending,
        attempts: 0,
        result: None,
        last_error: None,
        created_ms,
        updated_ms: created_ms,
        fingerprint: format!("fp-{id}"),
        fixed_headers: vec![("Wechatpay-Serial".to_owned(), format!("PUB_KEY_ID_{created_ms}"))],
    }
}

fn attempt(number: u32, started_ms: i64, outcome: &str) -> Attempt {
    Attempt {
        number,
        started_ms,
        outcome: outcome.to_owned(),
    }
}

fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

// ------------------------------------------------- the shared behaviour suite

fn claim_first_sight_in_flight_and_done_replay(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k1", "fp-a", 1_000, 30_000).unwrap(), Claim::Claimed);
    // Same key while the lease runs, whatever the fingerprint: someone is on it.
    assert_eq!(s.claim_inbound("k1", "fp-a", 1_001, 30_000).unwrap(), Claim::InFlight);
    assert_eq!(s.claim_inbound("k1", "fp-b", 30_999, 30_000).unwrap(), Claim::InFlight);
    // Other keys are independent.
    assert_eq!(s.claim_inbound("k2", "fp-z", 1_002, 30_000).unwrap(), Claim::Claimed);

    let response = b"{\"result\":{\"resultStatus\":\"S\"}}\x00\xff";
    s.complete_inbound("k1", response, 2_000).unwrap();
    let done = Claim::Done {
        response: response.to_vec(),
        fingerprint: "fp-a".to_owned(),
    };
    assert_eq!(s.claim_inbound("k1", "fp-a", 2_001, 30_000).unwrap(), done);
    // A different fingerprint still gets the stored one back, for the caller to compare.
    assert_eq!(s.claim_inbound("k1", "fp-other", 999_999_999, 30_000).unwrap(), done);
}

fn claim_lease_expiry_takeover(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k", "fp-old", 1_000, 500).unwrap(), Claim::Claimed);
    assert_eq!(s.claim_inbound("k", "fp-new", 1_499, 500).unwrap(), Claim::InFlight);
    // Lease ends at 1_500: from then on the claim can be taken over.
    assert_eq!(s.claim_inbound("k", "fp-new", 1_500, 500).unwrap(), Claim::Claimed);
    // The takeover renewed the lease...
    assert_eq!(s.claim_inbound("k", "fp-x", 1_999, 500).unwrap(), Claim::InFlight);
    // ...and replaced the fingerprint.
    s.complete_inbound("k", b"resp", 1_600).unwrap();
    assert_eq!(
        s.claim_inbound("k", "fp-x", 2_000, 500).unwrap(),
        Claim::Done {
            response: b"resp".to_vec(),
            fingerprint: "fp-new".to_owned()
        }
    );
}

fn release_then_reclaim_and_done_untouched(s: &dyn Store) {
    assert_eq!(s.claim_inbound("k", "fp", 1_000, 60_000).unwrap(), Claim::Claimed);
    s.release_inbound("k").unwrap();
    // Released: the next duplicate claims afresh even though the lease had not run out.
    assert_eq!(s.claim_inbound("k", "fp2", 1_001, 60_000).unwrap(), Claim::Claimed);
    assert_eq!(s.claim_inbound("k", "fp2", 1_002, 60_000).unwrap(), Claim::InFlight);

    s.complete_inbound("k", b"final", 1_003).unwrap();
    s.release_inbound("k").unwrap();
    let done = Claim::Done {
        response: b"final".to_vec(),
        fingerprint: "fp2".to_owned(),
    };
    assert_eq!(s.claim_inbound("k", "fp2", 1_004, 60_000).unwrap(), done);

    // Releasing an unknown key is a no-op.
    s.release_inbound("never-seen").unwrap();
    assert_eq!(
        s.claim_inbound("never-seen", "fp", 1_005, 60_000).unwrap(),
        Claim::Claimed
    );
}

fn complete_without_claim_and_twice(s: &dyn Store) {
    // No claim: stored as done anyway, with an empty fingerprint.
    s.complete_inbound("orphan", b"r1", 5_000).unwrap();
    assert_eq!(
        s.claim_inbound("orphan", "fp", 5_001, 1_000).unwrap(),
        Claim::Done {
            response: b"r1".to_vec(),
            fingerprint: String::new()
        }
    );
    // Once decided, the first response stays.
    s.complete_inbound("orphan", b"r2", 5_002).unwrap();
    assert_eq!(
        s.claim_inbound("orphan", "fp", 5_003, 1_000).unwrap(),
        Claim::Done {
            response: b"r1".to_vec(),
            fingerprint: String::new()
        }
    );
    // An empty response is a valid response.
    assert_eq!(s.claim_inbound("empty", "fp", 1, 1_000).unwrap(), Claim::Claimed);
    s.complete_inbound("empty", b"", 2).unwrap();
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
        assert_eq!(s.claim_inbound(key, "fp", at, 1).unwrap(), Claim::Claimed);
        s.complete_inbound(key, key.as_bytes(), at).unwrap();
    }
    // A claim, even an old one with an expired lease, is never purged.
    assert_eq!(s.claim_inbound("claimed", "fp", 50, 1).unwrap(), Claim::Claimed);

    assert_eq!(s.purge_inbound(200).unwrap(), 2);
    assert_eq!(s.purge_inbound(200).unwrap(), 0);
    assert_eq!(s.claim_inbound("old1", "fp", 400, 1_000).unwrap(), Claim::Claimed);
    assert_eq!(s.claim_inbound("old2", "fp", 400, 1_000).unwrap(), Claim::Claimed);
    assert!(matches!(
        s.claim_inbound("edge", "fp", 400, 1_000).unwrap(),
        Claim::Done { .. }
    ));
    assert!(matches!(
        s.claim_inbound("new", "fp", 400, 1_000).unwrap(),
        Claim::Done { .. }
    ));
    // The old claim survived the purge (its lease expired, so it is taken over).
    assert_eq!(s.claim_inbound("claimed", "fp", 400, 1_000).unwrap(), Claim::Claimed);
    assert_eq!(s.claim_inbound("claimed", "fp", 401, 1_000).unwrap(), Claim::InFlight);
}

fn outbox_insert_is_idempotent(s: &dyn Store) {
    let original = entry("issue/app/req-1", "alipayplus.issueCard", b"{\"a\":1}", 1_000);
    assert_eq!(s.outbox_get(&original.id).unwrap(), None);
    assert_eq!(s.outbox_insert(&original).unwrap(), original);

    let mut imposter = entry("issue/app/req-1", "other.kind", b"{\"a\":2}", 9_000);
    imposter.target = "/elsewhere".to_owned();
    let stored = s.outbox_insert(&imposter).unwrap();
    assert_eq!(
        stored, original,
        "second insert must return the original entry unchanged"
    );
    assert_eq!(s.outbox_get(&original.id).unwrap(), Some(original));
}

fn outbox_attempts_counted_and_ordered(s: &dyn Store) {
    let e = entry("e1", "alipayplus.issueCard", b"body", 1_000);
    s.outbox_insert(&e).unwrap();
    assert!(s.outbox_attempts("e1").unwrap().is_empty());

    s.outbox_record_attempt("e1", &attempt(1, 1_100, "timeout"), Some("read timed out"))
        .unwrap();
    s.outbox_record_attempt("e1", &attempt(2, 1_200, "http 503"), Some("http 503"))
        .unwrap();
    let got = s.outbox_get("e1").unwrap().unwrap();
    assert_eq!(got.attempts, 2);
    assert_eq!(got.last_error.as_deref(), Some("http 503"));
    assert_eq!(got.updated_ms, 1_200);
    assert_eq!(got.state, OutboxState::Pending);
    assert_eq!(got.body, b"body");

    s.outbox_record_attempt("e1", &attempt(3, 1_300, "S"), None).unwrap();
    let got = s.outbox_get("e1").unwrap().unwrap();
    assert_eq!(got.attempts, 3);
    assert_eq!(got.last_error, None, "a successful attempt clears last_error");
    assert_eq!(
        s.outbox_attempts("e1").unwrap(),
        vec![
            attempt(1, 1_100, "timeout"),
            attempt(2, 1_200, "http 503"),
            attempt(3, 1_300, "S")
        ]
    );

    // A number already recorded is refused and changes nothing.
    let err = s
        .outbox_record_attempt("e1", &attempt(2, 1_400, "dup"), Some("x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert!(err.message().contains("attempt number 2"), "{}", err.message());
    let got = s.outbox_get("e1").unwrap().unwrap();
    assert_eq!((got.attempts, got.last_error), (3, None));
    assert_eq!(s.outbox_attempts("e1").unwrap().len(), 3);

    // Attempts of other entries do not leak in.
    s.outbox_insert(&entry("e2", "alipayplus.issueCard", b"b2", 1_000))
        .unwrap();
    s.outbox_record_attempt("e2", &attempt(1, 2_000, "F PROCESS_FAIL"), None)
        .unwrap();
    assert_eq!(s.outbox_attempts("e1").unwrap().len(), 3);
    assert_eq!(
        s.outbox_attempts("e2").unwrap(),
        vec![attempt(1, 2_000, "F PROCESS_FAIL")]
    );
    assert!(s.outbox_attempts("unknown").unwrap().is_empty());
}

fn outbox_finish_sets_state_and_result(s: &dyn Store) {
    s.outbox_insert(&entry("ok", "k", b"b", 1_000)).unwrap();
    s.outbox_insert(&entry("ko", "k", b"b", 1_000)).unwrap();
    s.outbox_finish("ok", OutboxState::Succeeded, b"{\"ok\":true}", 2_000)
        .unwrap();
    s.outbox_finish("ko", OutboxState::Failed, b"{\"ok\":false}", 2_001)
        .unwrap();

    let ok = s.outbox_get("ok").unwrap().unwrap();
    assert_eq!(ok.state, OutboxState::Succeeded);
    assert_eq!(ok.result.as_deref(), Some(&b"{\"ok\":true}"[..]));
    assert_eq!(ok.updated_ms, 2_000);
    assert_eq!(ok.created_ms, 1_000);
    assert_eq!(ok.body, b"b");
    let ko = s.outbox_get("ko").unwrap().unwrap();
    assert_eq!(ko.state, OutboxState::Failed);
    assert_eq!(ko.result.as_deref(), Some(&b"{\"ok\":false}"[..]));

    // "Finishing" back to Pending is a caller bug.
    let err = s.outbox_finish("ok", OutboxState::Pending, b"", 3_000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert_eq!(s.outbox_get("ok").unwrap().unwrap().state, OutboxState::Succeeded);
}

fn outbox_pending_filtered_and_ordered(s: &dyn Store) {
    // Inserted out of order; ties on created_ms break by id.
    s.outbox_insert(&entry("c", "issue", b"", 300)).unwrap();
    s.outbox_insert(&entry("b2", "issue", b"", 200)).unwrap();
    s.outbox_insert(&entry("a", "issue", b"", 100)).unwrap();
    s.outbox_insert(&entry("b1", "issue", b"", 200)).unwrap();
    s.outbox_insert(&entry("x", "update", b"", 50)).unwrap();
    s.outbox_insert(&entry("done", "issue", b"", 10)).unwrap();
    s.outbox_insert(&entry("failed", "issue", b"", 20)).unwrap();
    s.outbox_finish("done", OutboxState::Succeeded, b"r", 400).unwrap();
    s.outbox_finish("failed", OutboxState::Failed, b"r", 400).unwrap();
    // Attempts do not take an entry out of the pending list.
    s.outbox_record_attempt("c", &attempt(1, 500, "U UNKNOWN_EXCEPTION"), Some("unknown"))
        .unwrap();

    let pending = s.outbox_pending("issue").unwrap();
    assert_eq!(ids(&pending), vec!["a", "b1", "b2", "c"]);
    assert!(
        pending
            .iter()
            .all(|e| e.state == OutboxState::Pending && e.kind == "issue")
    );
    assert_eq!(pending[3].attempts, 1);
    assert_eq!(ids(&s.outbox_pending("update").unwrap()), vec!["x"]);
    assert!(s.outbox_pending("nothing").unwrap().is_empty());
}

fn unknown_ids_are_invalid_parameters(s: &dyn Store) {
    let err = s.outbox_record_attempt("ghost", &attempt(1, 1, "S"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert!(
        err.message().contains("outbox_record_attempt") && err.message().contains("ghost"),
        "{}",
        err.message()
    );

    let err = s.outbox_finish("ghost", OutboxState::Succeeded, b"r", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert!(
        err.message().contains("outbox_finish") && err.message().contains("ghost"),
        "{}",
        err.message()
    );

    // Nothing was created as a side effect.
    assert_eq!(s.outbox_get("ghost").unwrap(), None);
    assert!(s.outbox_attempts("ghost").unwrap().is_empty());
}

/// A named behaviour test.
type Case = (&'static str, fn(&dyn Store));

/// Every behaviour test, each on a fresh store from `make`.
fn run_suite(make: &dyn Fn() -> Box<dyn Store>) {
    let tests: &[Case] = &[
        (
            "claim_first_sight_in_flight_and_done_replay",
            claim_first_sight_in_flight_and_done_replay,
        ),
        ("claim_lease_expiry_takeover", claim_lease_expiry_takeover),
        (
            "release_then_reclaim_and_done_untouched",
            release_then_reclaim_and_done_untouched,
        ),
        ("complete_without_claim_and_twice", complete_without_claim_and_twice),
        ("purge_respects_cutoff_and_state", purge_respects_cutoff_and_state),
        ("outbox_insert_is_idempotent", outbox_insert_is_idempotent),
        (
            "outbox_attempts_counted_and_ordered",
            outbox_attempts_counted_and_ordered,
        ),
        (
            "outbox_finish_sets_state_and_result",
            outbox_finish_sets_state_and_result,
        ),
        (
            "outbox_pending_filtered_and_ordered",
            outbox_pending_filtered_and_ordered,
        ),
        ("unknown_ids_are_invalid_parameters", unknown_ids_are_invalid_parameters),
    ];
    for &(name, test) in tests {
        eprintln!("  {name}");
        let store = make();
        test(store.as_ref());
    }
}

#[test]
fn memory_store_behaviour() {
    run_suite(&|| Box::new(MemoryStore::new()));
    // Default is the same empty store.
    let s = MemoryStore::default();
    assert_eq!(s.claim_inbound("k", "fp", 0, 1).unwrap(), Claim::Claimed);
}

#[test]
fn sqlite_in_memory_behaviour() {
    run_suite(&|| Box::new(SqliteStore::open_in_memory().unwrap()));
}

#[test]
fn sqlite_file_behaviour() {
    let dir = TempDir::new("suite");
    let n = AtomicU32::new(0);
    run_suite(&|| {
        let path = dir.0.join(format!("suite-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Box::new(SqliteStore::open(path).unwrap())
    });
}

#[test]
fn stores_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<SqliteStore>();
}

// ------------------------------------------------------------ SQLite only

#[test]
fn sqlite_data_survives_restart() {
    let dir = TempDir::new("restart");
    let path = dir.db();
    {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.claim_inbound("done", "fp-d", 1_000, 60_000).unwrap(), Claim::Claimed);
        s.complete_inbound("done", b"resp\x00bytes", 1_001).unwrap();
        assert_eq!(
            s.claim_inbound("inflight", "fp-i", 1_000, 60_000).unwrap(),
            Claim::Claimed
        );
        s.outbox_insert(&entry("o1", "issue", b"\x01body\xfe", 1_000)).unwrap();
        s.outbox_record_attempt("o1", &attempt(1, 1_100, "timeout"), Some("timed out"))
            .unwrap();
        s.outbox_insert(&entry("o2", "issue", b"b2", 1_000)).unwrap();
        s.outbox_finish("o2", OutboxState::Succeeded, b"ok", 1_200).unwrap();
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
    assert_eq!(s.outbox_attempts("o1").unwrap(), vec![attempt(1, 1_100, "timeout")]);
    assert_eq!(ids(&s.outbox_pending("issue").unwrap()), vec!["o1"]);
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
    assert_eq!(s.pragma("synchronous").unwrap(), "2", "synchronous must be FULL");
    assert_eq!(s.pragma("foreign_keys").unwrap(), "1");
    assert_eq!(s.pragma("busy_timeout").unwrap(), "5000");
    assert_eq!(
        s.pragma("user_version").unwrap(),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
    const { assert!(SqliteStore::SCHEMA_VERSION >= 1) };

    let m = SqliteStore::open_in_memory().unwrap();
    assert_eq!(m.pragma("synchronous").unwrap(), "2");
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
        let claimed = claims.iter().filter(|c| **c == Claim::Claimed).count();
        let in_flight = claims.iter().filter(|c| **c == Claim::InFlight).count();
        assert_eq!(
            (claimed, in_flight),
            (1, 2 * PER_HANDLE - 1),
            "round {round}: {claims:?}"
        );
    }
}

#[test]
fn sqlite_two_handles_see_each_others_writes() {
    let dir = TempDir::new("handles");
    let a = SqliteStore::open(dir.db()).unwrap();
    let b = SqliteStore::open(dir.db()).unwrap();
    a.outbox_insert(&entry("o", "issue", b"from-a", 1)).unwrap();
    assert_eq!(
        b.outbox_insert(&entry("o", "issue", b"from-b", 2)).unwrap().body,
        b"from-a"
    );
    b.outbox_record_attempt("o", &attempt(1, 3, "S"), None).unwrap();
    a.outbox_finish("o", OutboxState::Succeeded, b"done", 4).unwrap();
    let seen = b.outbox_get("o").unwrap().unwrap();
    assert_eq!((seen.state, seen.attempts), (OutboxState::Succeeded, 1));
    assert_eq!(a.outbox_attempts("o").unwrap(), vec![attempt(1, 3, "S")]);
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let path = std::env::temp_dir().join(format!("cardbridge-migrate-{}-{}.db", std::process::id(), line!()));
    let _ = std::fs::remove_file(&path);
    {
        // The v1 schema exactly as the first release created it, with one pending entry.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE inbound_idempotency (key TEXT NOT NULL PRIMARY KEY, fingerprint TEXT NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('claimed', 'done')), lease_until_ms INTEGER NOT NULL,
                 response BLOB, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
             CREATE TABLE outbox (id TEXT NOT NULL PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
                 body BLOB NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
                 attempts INTEGER NOT NULL CHECK (attempts >= 0), result BLOB, last_error TEXT,
                 created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
             CREATE TABLE outbox_attempts (outbox_id TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
                 number INTEGER NOT NULL, started_ms INTEGER NOT NULL, outcome TEXT NOT NULL,
                 PRIMARY KEY (outbox_id, number)) STRICT;
             INSERT INTO outbox VALUES ('old', 'k', '/t', x'7b7d', 'pending', 0, NULL, NULL, 1, 1);
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
    assert_eq!(old.fingerprint, "");
    assert!(old.fixed_headers.is_empty());
    assert_eq!(store.outbox_pending("k").unwrap().len(), 1);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
