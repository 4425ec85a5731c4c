//! SQLite store: WAL, versioned schema (`PRAGMA user_version`), one
//! connection per handle, and group commit for concurrent writers.
//!
//! Every write runs inside a `BEGIN IMMEDIATE` transaction taken by the
//! group-commit leader ([`super::group`]), so writers of several handles or
//! processes on the same file queue on SQLite's write lock (up to the busy
//! timeout) instead of racing on a read-then-write. A transaction that holds a
//! durable write commits with `synchronous=FULL` (the WAL is flushed before
//! the call returns); one that holds only leases and attempt records commits
//! with `synchronous=NORMAL` (atomic, flushed by the next durable commit or
//! checkpoint).
//!
//! The host must not open the same file through another SQLite library in
//! the same process: POSIX advisory locks belong to the process, and closing
//! that other handle would silently drop this one's locks.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::group::{self, Batch, GroupCommit, Job};
use super::{
    Acquired, Attempt, Claim, ClaimTicket, Completion, Inserted, LeaseRequest, OutboxEntry, OutboxQuery, OutboxState,
    Store,
};
use crate::error::{Error, ErrorKind, Result};

/// How long a call waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most writes one group transaction takes.
const MAX_BATCH: usize = 64;

/// One schema migration: SQL, or Rust where SQL cannot express it.
enum Migration {
    Sql(&'static str),
    Rust(fn(&Connection) -> rusqlite::Result<()>),
}

/// Schema migrations; entry `i` moves the database from version `i` to `i + 1`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[Migration] = &[
    // v1: inbound idempotency records, the outbox and its attempt log.
    Migration::Sql(
        "CREATE TABLE inbound_idempotency (
            key            TEXT    NOT NULL PRIMARY KEY,
            fingerprint    TEXT    NOT NULL,
            state          TEXT    NOT NULL CHECK (state IN ('claimed', 'done')),
            lease_until_ms INTEGER NOT NULL,
            response       BLOB,
            created_ms     INTEGER NOT NULL,
            updated_ms     INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX inbound_idempotency_purge ON inbound_idempotency (state, updated_ms);
        CREATE TABLE outbox (
            id         TEXT    NOT NULL PRIMARY KEY,
            kind       TEXT    NOT NULL,
            target     TEXT    NOT NULL,
            body       BLOB    NOT NULL,
            state      TEXT    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
            attempts   INTEGER NOT NULL CHECK (attempts >= 0),
            result     BLOB,
            last_error TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX outbox_pending ON outbox (kind, state, created_ms, id);
        CREATE TABLE outbox_attempts (
            outbox_id  TEXT    NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
            number     INTEGER NOT NULL,
            started_ms INTEGER NOT NULL,
            outcome    TEXT    NOT NULL,
            PRIMARY KEY (outbox_id, number)
        ) STRICT;",
    ),
    // v2: the caller's fingerprint of what an outbox entry stands for (for payloads that are
    // encrypted with randomised padding, the body bytes cannot show that two requests are the same).
    // Also the headers fixed at enqueue time that every attempt must repeat (e.g. the serial of
    // the key that encrypted the body), as a JSON array of [name, value] pairs.
    Migration::Sql(
        "ALTER TABLE outbox ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
         ALTER TABLE outbox ADD COLUMN fixed_headers TEXT NOT NULL DEFAULT '[]';",
    ),
    // v3: fenced claims and leases, collision-free keys.
    Migration::Rust(migrate_v3),
];

/// v3: the inbound table becomes `inbound` (WITHOUT ROWID: one page per write, no secondary
/// index) with a claim generation as fencing token; outbox entries get a method, the last HTTP
/// status and a delivery lease (owner, expiry, token); attempts get their HTTP status. Keys and
/// ids written as `kind/part/part` are re-encoded with [`super::key`] where the split is
/// unambiguous; the rest (a part that held `/`) can never equal a new key and stay as they are.
fn migrate_v3(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE inbound (
            key            TEXT    NOT NULL PRIMARY KEY,
            fingerprint    TEXT    NOT NULL,
            generation     INTEGER NOT NULL CHECK (generation >= 1),
            lease_until_ms INTEGER NOT NULL,
            response       BLOB,
            created_ms     INTEGER NOT NULL,
            updated_ms     INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        INSERT INTO inbound (key, fingerprint, generation, lease_until_ms, response, created_ms, updated_ms)
            SELECT key, fingerprint, 1, lease_until_ms, CASE state WHEN 'done' THEN COALESCE(response, x'') END,
                   created_ms, updated_ms
            FROM inbound_idempotency;
        DROP TABLE inbound_idempotency;
        ALTER TABLE outbox ADD COLUMN method TEXT NOT NULL DEFAULT 'POST';
        ALTER TABLE outbox ADD COLUMN last_status INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE outbox ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox_attempts ADD COLUMN status INTEGER NOT NULL DEFAULT 0;",
    )?;
    let rekey = |select: &str, update: &[&str]| -> rusqlite::Result<()> {
        let old: Vec<String> = tx
            .prepare(select)?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for key in old {
            if let Some(new) = reencode_legacy_key(&key).filter(|n| *n != key) {
                for sql in update {
                    tx.execute(sql, params![new, key])?;
                }
            }
        }
        Ok(())
    };
    rekey(
        "SELECT key FROM inbound",
        &["UPDATE OR IGNORE inbound SET key = ?1 WHERE key = ?2"],
    )?;
    rekey(
        "SELECT id FROM outbox",
        &[
            "INSERT INTO outbox (id, kind, target, body, state, attempts, result, last_error, created_ms,
                 updated_ms, fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token)
             SELECT ?1, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms,
                 fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token
             FROM outbox WHERE id = ?2 AND NOT EXISTS (SELECT 1 FROM outbox WHERE id = ?1)",
            "UPDATE outbox_attempts SET outbox_id = ?1
             WHERE outbox_id = ?2 AND EXISTS (SELECT 1 FROM outbox WHERE id = ?1)",
            "DELETE FROM outbox WHERE id = ?2 AND EXISTS (SELECT 1 FROM outbox WHERE id = ?1)",
        ],
    )
}

/// The v3 form of a key written by v1/v2 as `kind/part/part`, when its kind
/// is known and the split is unambiguous.
fn reencode_legacy_key(old: &str) -> Option<String> {
    let (kind, rest) = old.split_once('/')?;
    let parts = match kind {
        "wechatpay.callback" => 1,
        "alipayplus.notifyCardRegistration" | "alipayplus.issueCard" | "wechatpay.confirm" => 2,
        _ => return None,
    };
    let split: Vec<&str> = if parts == 1 {
        vec![rest]
    } else {
        rest.split('/').collect()
    };
    (split.len() == parts).then(|| super::key(kind, &split))
}

/// The schema version this code creates and understands (also
/// [`SqliteStore::SCHEMA_VERSION`]).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const OUTBOX_COLUMNS: &str = "id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms, \
     fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token";

/// A connection and the `synchronous` level it is set to.
struct Conn {
    c: Connection,
    full: bool,
}

/// Durable store on an embedded SQLite database (the default store).
///
/// Safe to share between threads; several handles (or processes) may open the
/// same file. See the module docs for the locking model.
pub struct SqliteStore {
    conn: Mutex<Conn>,
    writes: GroupCommit<Conn>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The schema version this code creates and understands; a database with a
    /// higher `PRAGMA user_version` is refused.
    pub const SCHEMA_VERSION: u32 = SCHEMA_VERSION;

    /// Opens (creating if needed) the database file at `path` and brings its
    /// schema up to [`Self::SCHEMA_VERSION`].
    ///
    /// Fails with [`ErrorKind::InvalidConfig`], naming the path, when the file
    /// cannot be opened or written, is not an SQLite database, cannot use WAL,
    /// or was written by a newer cardbridge (schema version above ours).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // A path is named, unless it is something else pasted there (a key: control characters, length).
        let full = path.display().to_string();
        let shown = Some(full.clone())
            .filter(|s| s.len() <= 512 && !s.chars().any(char::is_control))
            .unwrap_or_else(|| "(the configured path)".to_string());
        // SQLite's own message may repeat the path: it gets the same treatment.
        let fail = |step: &str, e: rusqlite::Error| {
            let detail = e.to_string().replace(&full, &shown);
            Error::config(format!("store: cannot open database {shown}: {step}: {detail}"))
        };
        let mut conn = Connection::open(path).map_err(|e| fail("open", e))?;
        // The busy timeout comes first: switching to WAL needs a lock another
        // handle may hold for a moment.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail("busy_timeout", e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| fail("journal_mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::config(format!(
                "store: cannot open database {shown}: journal_mode must be wal, SQLite kept {mode} \
                 (is the file on a filesystem without shared-memory support?)"
            )));
        }
        configure(&conn).map_err(|e| fail("pragmas", e))?;
        migrate(&mut conn, &shown)?;
        Ok(Self::with(conn))
    }

    /// Opens a private in-memory database (for tests). It uses SQLite's
    /// in-memory journal, as WAL needs a file; it is lost when dropped.
    pub fn open_in_memory() -> Result<Self> {
        const SHOWN: &str = ":memory:";
        let mut conn = Connection::open_in_memory()
            .map_err(|e| Error::config(format!("store: cannot open database {SHOWN}: {e}")))?;
        configure(&conn).map_err(|e| Error::config(format!("store: cannot open database {SHOWN}: pragmas: {e}")))?;
        migrate(&mut conn, SHOWN)?;
        Ok(Self::with(conn))
    }

    fn with(c: Connection) -> Self {
        // Every statement the store runs stays prepared (rusqlite keeps 16 by default).
        c.set_prepared_statement_cache_capacity(64);
        SqliteStore {
            conn: Mutex::new(Conn { c, full: true }),
            writes: GroupCommit::new(MAX_BATCH),
        }
    }

    /// The current value of `PRAGMA <name>` as text (for tests and diagnostics).
    #[doc(hidden)]
    pub fn pragma(&self, name: &str) -> Result<String> {
        const OP: &str = "pragma";
        let conn = group::lock(&self.conn, OP)?;
        let value: Value = conn
            .c
            .pragma_query_value(None, name, |row| row.get(0))
            .map_err(sql(OP))?;
        Ok(match value {
            Value::Null => String::new(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Text(s) => s,
            Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
        })
    }

    /// Runs `run` inside the next group transaction.
    fn write<R: Send + 'static>(
        &self,
        durable: bool,
        run: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.writes
            .submit::<R, SqliteBatch>(&self.conn, durable, move |conn: &mut Conn| run(&conn.c))
    }

    fn read<R>(&self, op: &'static str, run: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        let conn = group::lock(&self.conn, op)?;
        run(&conn.c).map_err(sql(op))
    }
}

/// Per-connection settings (not stored in the file, so set on every open).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Applies the migrations the database lacks, each in its own IMMEDIATE
/// transaction, re-reading the version under the lock so two handles opening
/// a fresh file concurrently do not both migrate.
fn migrate(conn: &mut Connection, shown: &str) -> Result<()> {
    let fail = |e: rusqlite::Error| Error::config(format!("store: cannot migrate database {shown}: {e}"));
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let version: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(Error::config(format!(
                "store: database {shown} has schema version {version}, newer than the {SCHEMA_VERSION} \
                 this cardbridge {} understands; upgrade cardbridge or use another file",
                crate::VERSION
            )));
        }
        let Some(step) = MIGRATIONS.get(version as usize) else {
            // Up to date; the empty transaction just ends.
            return tx.commit().map_err(fail);
        };
        match step {
            Migration::Sql(s) => tx.execute_batch(s).map_err(fail)?,
            Migration::Rust(f) => f(&tx).map_err(fail)?,
        }
        tx.pragma_update(None, "user_version", version + 1).map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

/// The group transaction: `synchronous` set for the batch, `BEGIN IMMEDIATE`,
/// one savepoint per job (a failed job rolls back alone), `COMMIT`.
struct SqliteBatch;

impl Batch<Conn> for SqliteBatch {
    fn run_batch(conn: &mut Conn, mut jobs: Vec<Job<Conn>>) -> Vec<Result<Box<dyn std::any::Any + Send>>> {
        const OP: &str = "write";
        let durable = jobs.iter().any(|j| j.durable);
        let all_fail = |n: usize, e: &Error| (0..n).map(|_| Err(e.clone())).collect::<Vec<_>>();
        // Fixed statements run cached: parsed once per connection, not per batch.
        let run = |c: &rusqlite::Connection, stmt: &str| c.prepare_cached(stmt).and_then(|mut s| s.execute([]));
        if conn.full != durable {
            let level = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if let Err(e) = run(&conn.c, level) {
                return all_fail(jobs.len(), &sql(OP)(e));
            }
            conn.full = durable;
        }
        if let Err(e) = run(&conn.c, "BEGIN IMMEDIATE") {
            return all_fail(jobs.len(), &sql(OP)(e));
        }
        // One job alone needs no savepoint: its failure rolls the transaction back.
        if jobs.len() == 1
            && let Some(job) = jobs.pop()
        {
            let r = (job.run)(conn);
            let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
            if let Err(e) = run(&conn.c, end) {
                let _ = run(&conn.c, "ROLLBACK");
                return vec![Err(sql(OP)(e))];
            }
            return vec![r];
        }
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let result = match run(&conn.c, "SAVEPOINT job") {
                Err(e) => Err(sql(OP)(e)),
                Ok(_) => {
                    let r = (job.run)(conn);
                    let end = |c: &rusqlite::Connection| {
                        if r.is_err() {
                            run(c, "ROLLBACK TO job")?;
                        }
                        run(c, "RELEASE job")
                    };
                    match end(&conn.c) {
                        Ok(_) => r,
                        Err(e) => Err(sql(OP)(e)),
                    }
                }
            };
            results.push(result);
        }
        if let Err(e) = run(&conn.c, "COMMIT") {
            let _ = run(&conn.c, "ROLLBACK");
            let e = sql(OP)(e);
            return all_fail(results.len(), &e);
        }
        results
    }
}

fn headers_to_json(headers: &[crate::http::Header]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

/// Unreadable stored headers read as none; they are only ever written by `headers_to_json`.
fn headers_from_json(text: &str) -> Vec<crate::http::Header> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Maps an SQLite failure in operation `op` to an internal error.
fn sql(op: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::internal(&format!("store: {op}"), e)
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = row.get(4)?;
    let state = OutboxState::parse(&state)
        .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, "unknown outbox state".into()))?;
    Ok(OutboxEntry {
        id: row.get(0)?,
        kind: row.get(1)?,
        target: row.get(2)?,
        body: row.get(3)?,
        state,
        attempts: row.get(5)?,
        result: row.get(6)?,
        last_error: row.get(7)?,
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        fingerprint: row.get(10)?,
        fixed_headers: headers_from_json(&row.get::<_, String>(11)?),
        method: row.get(12)?,
        last_status: row.get(13)?,
        lease_owner: row.get(14)?,
        lease_until_ms: row.get(15)?,
        lease_token: row.get(16)?,
    })
}

fn get_entry(conn: &Connection, id: &str) -> rusqlite::Result<Option<OutboxEntry>> {
    conn.prepare_cached(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"))?
        .query_row([id], entry_from_row)
        .optional()
}

/// A new key is taken by one insert; only a key already there is read (and
/// taken over when its claim was released or has expired).
fn claim(conn: &Connection, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> rusqlite::Result<Claim> {
    let lease_until = now_ms.saturating_add(lease_ms);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO inbound (key, fingerprint, generation, lease_until_ms, response, created_ms, updated_ms)
             VALUES (?1, ?2, 1, ?3, NULL, ?4, ?4) ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![key, fingerprint, lease_until, now_ms])?;
    if inserted == 1 {
        return Ok(Claim::Claimed(ClaimTicket { token: 1 }));
    }
    let (generation, lease_until_ms, response, stored_fingerprint): (i64, i64, Option<Vec<u8>>, String) = conn
        .prepare_cached("SELECT generation, lease_until_ms, response, fingerprint FROM inbound WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(match response {
        Some(response) => Claim::Done {
            response,
            fingerprint: stored_fingerprint,
        },
        None if now_ms < lease_until_ms => Claim::InFlight,
        None => {
            // Expired or released: the previous holder is presumed gone; take over.
            conn.prepare_cached(
                "UPDATE inbound SET fingerprint = ?2, generation = ?3, lease_until_ms = ?4, updated_ms = ?5
                 WHERE key = ?1",
            )?
            .execute(params![key, fingerprint, generation + 1, lease_until, now_ms])?;
            Claim::Claimed(ClaimTicket { token: generation + 1 })
        }
    })
}

/// One upsert stores the answer when this claim still holds the key (or the
/// row is gone); otherwise the row says whether another delivery decided.
fn complete(conn: &Connection, key: &str, token: i64, response: &[u8], now_ms: i64) -> rusqlite::Result<Completion> {
    let stored = conn
        .prepare_cached(
            "INSERT INTO inbound AS i (key, fingerprint, generation, lease_until_ms, response, created_ms, updated_ms)
             VALUES (?1, '', max(?2, 1), 0, ?3, ?4, ?4)
             ON CONFLICT (key) DO UPDATE SET response = excluded.response, updated_ms = excluded.updated_ms
                WHERE i.response IS NULL AND i.generation = ?2",
        )?
        .execute(params![key, token, response, now_ms])?;
    if stored == 1 {
        return Ok(Completion::Stored);
    }
    let existing: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT response FROM inbound WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(match existing {
        Some(Some(stored)) => Completion::AlreadyDone(stored),
        // Taken over by a later claim that has not decided yet: nothing was stored.
        _ => Completion::Lost,
    })
}

fn insert_entry(conn: &Connection, e: &OutboxEntry, owner: &str, until: i64) -> rusqlite::Result<Inserted> {
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT OR IGNORE INTO outbox ({OUTBOX_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1)"
        ))?
        .execute(params![
            e.id,
            e.kind,
            e.target,
            e.body,
            e.state.as_str(),
            e.attempts,
            e.result,
            e.last_error,
            e.created_ms,
            e.updated_ms,
            e.fingerprint,
            headers_to_json(&e.fixed_headers),
            e.method,
            e.last_status,
            owner,
            until,
        ])?;
    let stored = get_entry(conn, &e.id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(if inserted == 1 {
        Inserted::New(stored)
    } else {
        Inserted::Existing(stored)
    })
}

fn acquire(conn: &Connection, id: &str, owner: &str, now_ms: i64, until: i64) -> rusqlite::Result<Acquired> {
    let Some(e) = get_entry(conn, id)? else {
        return Ok(Acquired::Missing);
    };
    if e.state != OutboxState::Pending {
        return Ok(Acquired::Final(e));
    }
    if e.leased_by_other(owner, now_ms) {
        return Ok(Acquired::Busy(e));
    }
    conn.prepare_cached(
        "UPDATE outbox SET lease_owner = ?2, lease_until_ms = ?3, lease_token = lease_token + 1 WHERE id = ?1",
    )?
    .execute(params![id, owner, until])?;
    let e = get_entry(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(Acquired::Leased(e))
}

/// Whether `token` is the current lease of pending entry `id`.
fn holds_lease(conn: &Connection, id: &str, token: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'")?
        .query_row(params![id, token], |_| Ok(()))
        .optional()?
        .is_some())
}

fn record_attempt(
    conn: &Connection,
    id: &str,
    token: i64,
    a: &Attempt,
    last_error: Option<&str>,
    until: i64,
) -> rusqlite::Result<bool> {
    if !holds_lease(conn, id, token)? {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO outbox_attempts (outbox_id, number, started_ms, outcome, status)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, a.number, a.started_ms, a.outcome, a.status])?;
    conn.prepare_cached(
        "UPDATE outbox
         SET attempts = (SELECT COUNT(*) FROM outbox_attempts WHERE outbox_id = ?1),
             last_error = ?2, last_status = ?3, updated_ms = MAX(updated_ms, ?4), lease_until_ms = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, last_error, a.status, a.started_ms, until])?;
    Ok(true)
}

fn opt_text(v: Option<&str>) -> rusqlite::types::Value {
    v.map_or(rusqlite::types::Value::Null, |s| {
        rusqlite::types::Value::Text(s.to_owned())
    })
}

impl Store for SqliteStore {
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        // A claim is only a lease: losing it in a power cut means the next delivery asks a host
        // again, exactly as lease expiry would. So it is not a durable write.
        self.write(false, move |c| {
            claim(c, &key, &fingerprint, now_ms, lease_ms).map_err(sql("claim_inbound"))
        })
    }

    fn complete_inbound(&self, key: &str, token: i64, response: &[u8], now_ms: i64) -> Result<Completion> {
        let (key, response) = (key.to_owned(), response.to_vec());
        self.write(true, move |c| {
            complete(c, &key, token, &response, now_ms).map_err(sql("complete_inbound"))
        })
    }

    fn release_inbound(&self, key: &str, token: i64) -> Result<()> {
        let key = key.to_owned();
        self.write(false, move |c| {
            c.prepare_cached(
                "UPDATE inbound SET lease_until_ms = 0 WHERE key = ?1 AND generation = ?2 AND response IS NULL",
            )
            .and_then(|mut st| st.execute(params![key, token]))
            .map(drop)
            .map_err(sql("release_inbound"))
        })
    }

    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize> {
        self.write(false, move |c| {
            c.execute(
                "DELETE FROM inbound WHERE updated_ms < ?1 AND (response IS NOT NULL OR lease_until_ms < ?1)",
                [cutoff_ms],
            )
            .map_err(sql("purge_inbound"))
        })
    }

    fn outbox_insert(&self, entry: &OutboxEntry, lease: LeaseRequest<'_>) -> Result<Inserted> {
        let (entry, owner, until) = (entry.clone(), lease.owner.to_owned(), lease.until());
        self.write(true, move |c| {
            insert_entry(c, &entry, &owner, until).map_err(sql("outbox_insert"))
        })
    }

    fn outbox_acquire(&self, id: &str, lease: LeaseRequest<'_>) -> Result<Acquired> {
        let (id, owner, now, until) = (id.to_owned(), lease.owner.to_owned(), lease.now_ms, lease.until());
        self.write(false, move |c| {
            acquire(c, &id, &owner, now, until).map_err(sql("outbox_acquire"))
        })
    }

    fn outbox_record_attempt(
        &self,
        id: &str,
        token: i64,
        attempt: &Attempt,
        last_error: Option<&str>,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let (id, attempt, last_error) = (id.to_owned(), attempt.clone(), last_error.map(str::to_owned));
        self.write(false, move |c| {
            record_attempt(c, &id, token, &attempt, last_error.as_deref(), lease_until_ms)
                .map_err(sql("outbox_record_attempt"))
        })
    }

    fn outbox_finish(&self, id: &str, token: i64, state: OutboxState, result: &[u8], now_ms: i64) -> Result<bool> {
        const OP: &str = "outbox_finish";
        if state == OutboxState::Pending {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("store: {OP}: state must be succeeded or failed, got pending"),
            ));
        }
        let (id, result) = (id.to_owned(), result.to_vec());
        // Not durable: a final state lost in a power cut leaves the entry pending, and the next
        // delivery reconciles it under the same idempotency key (ARCHITECTURE.md, durability).
        self.write(false, move |c| {
            c.prepare_cached(
                "UPDATE outbox SET state = ?3, result = ?4, updated_ms = ?5, lease_owner = '', lease_until_ms = 0
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )
            .and_then(|mut st| st.execute(params![id, token, state.as_str(), result, now_ms]))
            .map(|n| n == 1)
            .map_err(sql(OP))
        })
    }

    fn outbox_release(&self, id: &str, token: i64) -> Result<()> {
        let id = id.to_owned();
        self.write(false, move |c| {
            c.prepare_cached(
                "UPDATE outbox SET lease_owner = '', lease_until_ms = 0
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )
            .and_then(|mut st| st.execute(params![id, token]))
            .map(drop)
            .map_err(sql("outbox_release"))
        })
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>> {
        self.read("outbox_get", |c| get_entry(c, id))
    }

    fn outbox_pending(&self, kind: &str, now_ms: i64) -> Result<Vec<OutboxEntry>> {
        self.read("outbox_pending", |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox
                 WHERE kind = ?1 AND state = 'pending' AND lease_until_ms <= ?2
                 ORDER BY created_ms, id"
            ))?;
            let rows = stmt.query_map(params![kind, now_ms], entry_from_row)?;
            rows.collect()
        })
    }

    fn outbox_list(&self, q: &OutboxQuery) -> Result<Vec<OutboxEntry>> {
        self.read("outbox_list", |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR created_ms < ?3) AND (?4 IS NULL OR id > ?4)
                 ORDER BY id LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    opt_text(q.state.map(OutboxState::as_str)),
                    opt_text(q.kind.as_deref()),
                    q.created_before_ms,
                    opt_text(q.after_id.as_deref()),
                    q.page_size() as i64
                ],
                entry_from_row,
            )?;
            rows.collect()
        })
    }

    fn outbox_count_pending(&self, kind: Option<&str>) -> Result<u64> {
        self.read("outbox_count_pending", |c| {
            c.prepare_cached("SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND (?1 IS NULL OR kind = ?1)")?
                .query_row([opt_text(kind)], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        self.read("outbox_attempts", |c| {
            let mut stmt = c.prepare_cached(
                "SELECT number, started_ms, outcome, status FROM outbox_attempts WHERE outbox_id = ?1 ORDER BY number",
            )?;
            let rows = stmt.query_map([id], |row| {
                Ok(Attempt {
                    number: row.get(0)?,
                    started_ms: row.get(1)?,
                    outcome: row.get(2)?,
                    status: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn outbox_purge(&self, cutoff_ms: i64) -> Result<usize> {
        self.write(false, move |c| {
            c.execute(
                "DELETE FROM outbox WHERE state <> 'pending' AND updated_ms < ?1",
                [cutoff_ms],
            )
            .map_err(sql("outbox_purge"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_lock_is_an_internal_error() {
        let store = SqliteStore::open_in_memory().unwrap();
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = store.conn.lock().unwrap();
                panic!("poison the store lock");
            })
            .join()
        });
        let err = store.claim_inbound("k", "fp", 0, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().starts_with("store: "), "{}", err.message());
    }

    #[test]
    fn legacy_keys_are_reencoded_only_when_unambiguous() {
        assert_eq!(
            reencode_legacy_key("alipayplus.notifyCardRegistration/app/R%1").as_deref(),
            Some("alipayplus.notifyCardRegistration/app/R%251")
        );
        assert_eq!(
            reencode_legacy_key("wechatpay.callback/a/b").as_deref(),
            Some("wechatpay.callback/a%2Fb")
        );
        assert_eq!(reencode_legacy_key("alipayplus.issueCard/a/b/c"), None);
        assert_eq!(reencode_legacy_key("other.kind/a"), None);
        assert_eq!(
            reencode_legacy_key("wechatpay.confirm/card/code").as_deref(),
            Some("wechatpay.confirm/card/code")
        );
    }
}
