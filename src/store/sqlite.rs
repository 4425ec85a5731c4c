//! SQLite store: one connection behind a mutex, WAL, `synchronous=FULL`,
//! schema versioned with `PRAGMA user_version`.
//!
//! Inside one process the mutex serialises every call. Across processes (or
//! several handles on the same file) every write runs in a `BEGIN IMMEDIATE`
//! transaction, so writers queue on SQLite's write lock (waiting up to the busy
//! timeout) instead of racing on a read-then-write.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{Attempt, Claim, OutboxEntry, OutboxState, Store};
use crate::error::{Error, ErrorKind, Result};

/// How long a call waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; entry `i` moves the database from version `i` to `i + 1`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // v1: inbound idempotency records, the outbox and its attempt log.
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
    // v2: the caller's fingerprint of what an outbox entry stands for (for payloads that are
    // encrypted with randomised padding, the body bytes cannot show that two requests are the same).
    // Also the headers fixed at enqueue time that every attempt must repeat (e.g. the serial of
    // the key that encrypted the body), as a JSON array of [name, value] pairs.
    "ALTER TABLE outbox ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
     ALTER TABLE outbox ADD COLUMN fixed_headers TEXT NOT NULL DEFAULT '[]';",
];

/// The schema version this code creates and understands (also
/// [`SqliteStore::SCHEMA_VERSION`]).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const OUTBOX_COLUMNS: &str =
    "id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms, fingerprint, fixed_headers";

/// Durable store on an embedded SQLite database (the default store).
///
/// Safe to share between threads; several handles (or processes) may open the
/// same file. See the module docs for the locking model.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
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
        let shown = path.display().to_string();
        let fail =
            |step: &str, e: rusqlite::Error| Error::config(format!("store: cannot open database {shown}: {step}: {e}"));
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
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// Opens a private in-memory database (for tests). It uses SQLite's
    /// in-memory journal, as WAL needs a file; it is lost when dropped.
    pub fn open_in_memory() -> Result<Self> {
        const SHOWN: &str = ":memory:";
        let mut conn = Connection::open_in_memory()
            .map_err(|e| Error::config(format!("store: cannot open database {SHOWN}: {e}")))?;
        configure(&conn).map_err(|e| Error::config(format!("store: cannot open database {SHOWN}: pragmas: {e}")))?;
        migrate(&mut conn, SHOWN)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// The current value of `PRAGMA <name>` as text (for tests and diagnostics).
    #[doc(hidden)]
    pub fn pragma(&self, name: &str) -> Result<String> {
        const OP: &str = "pragma";
        let conn = self.lock(OP)?;
        let value: Value = conn.pragma_query_value(None, name, |row| row.get(0)).map_err(sql(OP))?;
        Ok(match value {
            Value::Null => String::new(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Text(s) => s,
            Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
        })
    }

    fn lock(&self, op: &str) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                format!("store: {op}: connection lock poisoned (a thread panicked while using the store)"),
            )
        })
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
        tx.execute_batch(step).map_err(fail)?;
        tx.pragma_update(None, "user_version", version + 1).map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

fn headers_to_json(headers: &[crate::http::Header]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

/// Unreadable stored headers read as none; they are only ever written by `headers_to_json`.
fn headers_from_json(text: &str) -> Vec<crate::http::Header> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The common case in one atomic statement: a key never seen before is
/// inserted as claimed. `false` when the key exists (then [`claim_in`] decides).
fn claim_first_sight(conn: &Connection, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<bool> {
    const OP: &str = "claim_inbound";
    let inserted = conn
        .prepare_cached(
            "INSERT INTO inbound_idempotency
                 (key, fingerprint, state, lease_until_ms, response, created_ms, updated_ms)
             VALUES (?1, ?2, 'claimed', ?3, NULL, ?4, ?4)
             ON CONFLICT (key) DO NOTHING",
        )
        .and_then(|mut st| st.execute(params![key, fingerprint, now_ms.saturating_add(lease_ms), now_ms]))
        .map_err(sql(OP))?;
    Ok(inserted == 1)
}

/// The claim transaction of [`SqliteStore::claim_inbound`] for a key that exists.
fn claim_in(conn: &mut Connection, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim> {
    const OP: &str = "claim_inbound";
    let tx = immediate(conn, OP)?;
    let lease_until = now_ms.saturating_add(lease_ms);
    let existing: Option<(String, i64, Option<Vec<u8>>, String)> = tx
        .query_row(
            "SELECT state, lease_until_ms, response, fingerprint FROM inbound_idempotency WHERE key = ?1",
            [key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()
        .map_err(sql(OP))?;
    let claim = match existing {
        None => {
            tx.execute(
                "INSERT INTO inbound_idempotency
                     (key, fingerprint, state, lease_until_ms, response, created_ms, updated_ms)
                 VALUES (?1, ?2, 'claimed', ?3, NULL, ?4, ?4)",
                params![key, fingerprint, lease_until, now_ms],
            )
            .map_err(sql(OP))?;
            Claim::Claimed
        }
        Some((state, _, response, fingerprint)) if state == "done" => Claim::Done {
            response: response.unwrap_or_default(),
            fingerprint,
        },
        Some((_, lease_until_ms, _, _)) if now_ms < lease_until_ms => Claim::InFlight,
        Some(_) => {
            // Expired lease: the previous holder is presumed dead; take over.
            tx.execute(
                "UPDATE inbound_idempotency
                 SET fingerprint = ?2, lease_until_ms = ?3, updated_ms = ?4
                 WHERE key = ?1",
                params![key, fingerprint, lease_until, now_ms],
            )
            .map_err(sql(OP))?;
            Claim::Claimed
        }
    };
    tx.commit().map_err(sql(OP))?;
    Ok(claim)
}

/// Maps an SQLite failure in operation `op` to an internal error.
fn sql(op: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::internal(&format!("store: {op}"), e)
}

fn unknown_id(op: &str, id: &str) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("store: {op}: unknown outbox id {id:?}"),
    )
}

fn immediate<'c>(conn: &'c mut Connection, op: &'static str) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(op))
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = row.get(4)?;
    let state = OutboxState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(4, Type::Text, format!("unknown outbox state {state:?}").into())
    })?;
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
    })
}

fn get_entry(conn: &Connection, id: &str) -> rusqlite::Result<Option<OutboxEntry>> {
    conn.query_row(
        &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"),
        [id],
        entry_from_row,
    )
    .optional()
}

impl Store for SqliteStore {
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim> {
        const OP: &str = "claim_inbound";
        let mut conn = self.lock(OP)?;
        // A claim is only a lease: losing it in a power cut means the next duplicate asks the host
        // again, exactly as lease expiry would. So it commits without an fsync (still atomic in
        // WAL); the final answer (complete_inbound) is the durable write. Saves one fsync per call.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql(OP))?;
        let claim = claim_first_sight(&conn, key, fingerprint, now_ms, lease_ms).and_then(|claimed| {
            if claimed {
                Ok(Claim::Claimed)
            } else {
                claim_in(&mut conn, key, fingerprint, now_ms, lease_ms)
            }
        });
        let restored = conn.pragma_update(None, "synchronous", "FULL").map_err(sql(OP));
        let claim = claim?;
        restored?;
        Ok(claim)
    }

    /// Marks `key` done with `response`. A key with no claim (released, purged
    /// or never claimed) is inserted as done anyway, with an empty fingerprint:
    /// losing a decided response is worse than accepting an unexpected call.
    /// An already-done key keeps its first response: once decided, replays stay
    /// byte-identical.
    fn complete_inbound(&self, key: &str, response: &[u8], now_ms: i64) -> Result<()> {
        const OP: &str = "complete_inbound";
        let conn = self.lock(OP)?;
        conn.prepare_cached(
            "INSERT INTO inbound_idempotency
                 (key, fingerprint, state, lease_until_ms, response, created_ms, updated_ms)
             VALUES (?1, '', 'done', 0, ?2, ?3, ?3)
             ON CONFLICT (key) DO UPDATE
                 SET state = 'done', response = excluded.response, updated_ms = excluded.updated_ms
                 WHERE state = 'claimed'",
        )
        .and_then(|mut st| st.execute(params![key, response, now_ms]))
        .map_err(sql(OP))?;
        Ok(())
    }

    fn release_inbound(&self, key: &str) -> Result<()> {
        const OP: &str = "release_inbound";
        let conn = self.lock(OP)?;
        conn.execute(
            "DELETE FROM inbound_idempotency WHERE key = ?1 AND state = 'claimed'",
            [key],
        )
        .map_err(sql(OP))?;
        Ok(())
    }

    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize> {
        const OP: &str = "purge_inbound";
        let conn = self.lock(OP)?;
        conn.execute(
            "DELETE FROM inbound_idempotency WHERE state = 'done' AND updated_ms < ?1",
            [cutoff_ms],
        )
        .map_err(sql(OP))
    }

    fn outbox_insert(&self, entry: &OutboxEntry) -> Result<OutboxEntry> {
        const OP: &str = "outbox_insert";
        let mut conn = self.lock(OP)?;
        let tx = immediate(&mut conn, OP)?;
        // OR IGNORE: an existing id keeps its original body and state.
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO outbox ({OUTBOX_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                entry.id,
                entry.kind,
                entry.target,
                entry.body,
                entry.state.as_str(),
                entry.attempts,
                entry.result,
                entry.last_error,
                entry.created_ms,
                entry.updated_ms,
                entry.fingerprint,
                headers_to_json(&entry.fixed_headers),
            ],
        )
        .map_err(sql(OP))?;
        let stored = get_entry(&tx, &entry.id)
            .map_err(sql(OP))?
            .ok_or_else(|| Error::internal(&format!("store: {OP}"), "entry vanished right after insert"))?;
        tx.commit().map_err(sql(OP))?;
        Ok(stored)
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>> {
        const OP: &str = "outbox_get";
        let conn = self.lock(OP)?;
        get_entry(&conn, id).map_err(sql(OP))
    }

    /// Records `attempt`, sets `attempts` to the number of recorded attempts,
    /// `last_error`, and `updated_ms` to the attempt's start (never moving it
    /// backwards). Unknown ids and already-recorded numbers are
    /// [`ErrorKind::InvalidParameter`].
    fn outbox_record_attempt(&self, id: &str, attempt: &Attempt, last_error: Option<&str>) -> Result<()> {
        const OP: &str = "outbox_record_attempt";
        let mut conn = self.lock(OP)?;
        let tx = immediate(&mut conn, OP)?;
        let known = tx
            .query_row("SELECT 1 FROM outbox WHERE id = ?1", [id], |_| Ok(()))
            .optional()
            .map_err(sql(OP))?;
        if known.is_none() {
            return Err(unknown_id(OP, id));
        }
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO outbox_attempts (outbox_id, number, started_ms, outcome)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, attempt.number, attempt.started_ms, attempt.outcome],
            )
            .map_err(sql(OP))?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "store: {OP}: attempt number {} already recorded for outbox id {id:?}",
                    attempt.number
                ),
            ));
        }
        tx.execute(
            "UPDATE outbox
             SET attempts = (SELECT COUNT(*) FROM outbox_attempts WHERE outbox_id = ?1),
                 last_error = ?2,
                 updated_ms = MAX(updated_ms, ?3)
             WHERE id = ?1",
            params![id, last_error, attempt.started_ms],
        )
        .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))
    }

    /// `state` must be `Succeeded` or `Failed` ([`ErrorKind::InvalidParameter`]
    /// otherwise, and for unknown ids).
    fn outbox_finish(&self, id: &str, state: OutboxState, result: &[u8], now_ms: i64) -> Result<()> {
        const OP: &str = "outbox_finish";
        if state == OutboxState::Pending {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("store: {OP}: state must be succeeded or failed, got pending"),
            ));
        }
        let conn = self.lock(OP)?;
        let changed = conn
            .execute(
                "UPDATE outbox SET state = ?2, result = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, state.as_str(), result, now_ms],
            )
            .map_err(sql(OP))?;
        if changed == 0 {
            return Err(unknown_id(OP, id));
        }
        Ok(())
    }

    fn outbox_pending(&self, kind: &str) -> Result<Vec<OutboxEntry>> {
        const OP: &str = "outbox_pending";
        let conn = self.lock(OP)?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox
                 WHERE kind = ?1 AND state = 'pending'
                 ORDER BY created_ms, id"
            ))
            .map_err(sql(OP))?;
        let rows = stmt.query_map([kind], entry_from_row).map_err(sql(OP))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql(OP))
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        const OP: &str = "outbox_attempts";
        let conn = self.lock(OP)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT number, started_ms, outcome FROM outbox_attempts WHERE outbox_id = ?1 ORDER BY number",
            )
            .map_err(sql(OP))?;
        let rows = stmt
            .query_map([id], |row| {
                Ok(Attempt {
                    number: row.get(0)?,
                    started_ms: row.get(1)?,
                    outcome: row.get(2)?,
                })
            })
            .map_err(sql(OP))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql(OP))
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
        assert!(err.message().starts_with("store: claim_inbound: "), "{}", err.message());
    }
}
