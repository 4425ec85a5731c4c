//! The durable store handle: inbound idempotency records and the issueCard
//! outbox, shared by the integrations built on it.

use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, free_arc};
use crate::store::{MemoryStore, PostgresStore, SqliteStore, Store};
use std::ffi::c_char;
use std::sync::Arc;

/// The Rust value behind a `cardbridge_store`: a shared store of any kind.
pub(crate) struct StoreRef(pub(crate) Arc<dyn Store>);

/// A durable store: an embedded SQLite database (one machine), a PostgreSQL
/// database (several processes or nodes) or memory (tests). Immutable and
/// shareable between threads; several integrations may use one store, and
/// each keeps its own reference.
pub struct cardbridge_store {
    _private: [u8; 0],
}

impl Castable for cardbridge_store {
    type Ownership = OwnershipArc;
    type RustType = StoreRef;
}

/// Opens (creating it if needed) the SQLite store at `path`: WAL journal,
/// `synchronous=FULL`, schema migrated to the current version.
///
/// `path` is a UTF-8 file path of `path_len` bytes, no NUL terminator needed;
/// it is only read during the call. On success `*store_out` receives the
/// store. Ownership: the caller owns `*store_out` and must release it with
/// `cardbridge_store_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (empty path; the file cannot be opened
/// or written, is not an SQLite database, cannot use WAL, or was written by a
/// newer cardbridge; the message names the path and says why). On failure `*store_out` is unchanged and, if
/// `error_out` is not NULL, `*error_out` receives an error the caller must
/// release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_open_sqlite(
    path: *const c_char,
    path_len: usize,
    store_out: *mut *const cardbridge_store,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store_out = try_out!(store_out);
        let path = try_str!(path, path_len);
        if path.is_empty() {
            return Err(crate::Error::config("path: must not be empty").with_field("path"));
        }
        store_out.write_arc(StoreRef(Arc::new(SqliteStore::open(path)?)));
        Ok(())
    })
}

/// Opens the PostgreSQL store on the database named by `conninfo` and brings
/// its schema up to the current version (a `schema_version` table records it;
/// nodes starting together migrate once). Several processes and nodes may
/// open the same database: claims and outbox leases are arbitrated by the
/// database.
///
/// `conninfo` is a libpq connection string of `conninfo_len` bytes (UTF-8,
/// no NUL terminator needed), key/value (`host=db.example.com dbname=cards
/// user=cardbridge password=…`) or URL (`postgresql://…`) form, parsed by the
/// `postgres` crate; it is only read during the call. Any host other than
/// loopback or a Unix socket is reached over TLS with the server certificate
/// verified (Mozilla roots, or only the CAs in the file named by the
/// `PGSSLROOTCERT` environment variable); `sslmode=disable` is refused for
/// such hosts. Connections are pooled (at most 8) and replaced by themselves
/// after a connection loss or a server restart.
///
/// On success `*store_out` receives the store. Ownership: the caller owns
/// `*store_out` and must release it with `cardbridge_store_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (unparsable connection string, field
/// `conninfo`; no TLS towards a non-loopback host, field `conninfo.sslmode`;
/// login, permission or database refused by the server; a schema written by a
/// newer cardbridge), `CARDBRIDGE_RESULT_TRANSPORT` (the server cannot be
/// reached or the TLS handshake failed: try again later). Messages never
/// contain the password. On failure `*store_out` is unchanged; `error_out` as
/// for `cardbridge_store_open_sqlite`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_open_postgres(
    conninfo: *const c_char,
    conninfo_len: usize,
    store_out: *mut *const cardbridge_store,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store_out = try_out!(store_out);
        let conninfo = try_str!(conninfo, conninfo_len);
        if conninfo.trim().is_empty() {
            return Err(crate::Error::config("conninfo: must not be empty").with_field("conninfo"));
        }
        store_out.write_arc(StoreRef(Arc::new(PostgresStore::open(conninfo)?)));
        Ok(())
    })
}

/// Creates an in-memory store (lost when the last reference is released), for
/// tests and demos.
///
/// On success `*store_out` receives the store. Ownership: the caller owns
/// `*store_out` and must release it with `cardbridge_store_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`. On failure `*store_out` is
/// unchanged; `error_out` as for `cardbridge_store_open_sqlite`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_new_memory(
    store_out: *mut *const cardbridge_store,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store_out = try_out!(store_out);
        store_out.write_arc(StoreRef(Arc::new(MemoryStore::new())));
        Ok(())
    })
}

/// Releases the caller's reference to a store. NULL is a no-op.
///
/// Ownership: takes `store`, which must not be used afterwards. Integrations
/// built on the store keep their own reference, so this may be called as soon
/// as they exist; the database closes when the last one is released.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_free(store: *const cardbridge_store) {
    ffi_boundary!({
        // SAFETY: `store` is NULL or a store reference the caller owns and gives up.
        unsafe { free_arc(store) }
    })
}

/// A page of outbox entries as a JSON array, oldest first, **without bodies or
/// stored answers** (they may hold personal data): each entry has `id`, `kind`,
/// `method`, `target`, `state`, `attempts`, `last_status`, `last_error`,
/// `created_ms`, `updated_ms`, `body_bytes`, `lease_owner`, `lease_until_ms`.
///
/// `query_json` (UTF-8, `query_len` bytes, only read during the call; empty
/// means `{}`) filters: `state` (`"pending"`, `"succeeded"`, `"failed"`),
/// `kind` (e.g. `"alipayplus.issueCard"`, `"wechatpay.confirm"`),
/// `created_before_ms`, `after_id` (the page cursor: the last id seen),
/// `limit` (1–1000, default 100).
///
/// On success `*json_out` receives the array; release it with
/// `cardbridge_bytes_free`. Errors: `NULL_PARAMETER`, `INVALID_UTF8`,
/// `INVALID_JSON`, `INVALID_PARAMETER` (a query member, named), store errors
/// (`INTERNAL`, `TRANSPORT`). On failure `*json_out` is unchanged; `error_out`
/// as for `cardbridge_store_open_sqlite`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_outbox_list(
    store: *const cardbridge_store,
    query_json: *const c_char,
    query_len: usize,
    json_out: *mut crate::ffi::bytes::cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store = try_ref!(store);
        let json_out = try_out!(json_out);
        let query = if query_len == 0 {
            ""
        } else {
            try_str!(query_json, query_len)
        };
        let query = crate::outbox::view::query_from_json(query.as_bytes())?;
        let entries = store.0.outbox_list(&query)?;
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| crate::outbox::view::entry_json(e, None))
            .collect();
        json_out.write_bytes(serde_json::to_vec(&list).map_err(|e| crate::Error::internal("outbox list", e))?);
        Ok(())
    })
}

/// One outbox entry by id, as JSON with its attempt log (`attempt_log`:
/// `number`, `started_ms`, `outcome`, `status`), without body or answer.
/// `id` is UTF-8 of `id_len` bytes (the id a `REMOTE_UNKNOWN` names, see
/// `cardbridge_error_outbox_id`).
///
/// On success `*json_out` receives the object; release it with
/// `cardbridge_bytes_free`. Errors: `NULL_PARAMETER`, `INVALID_UTF8`,
/// `INVALID_PARAMETER` (field `id`: no such entry), store errors. On failure
/// `*json_out` is unchanged; `error_out` as for `cardbridge_store_open_sqlite`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_outbox_get(
    store: *const cardbridge_store,
    id: *const c_char,
    id_len: usize,
    json_out: *mut crate::ffi::bytes::cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store = try_ref!(store);
        let json_out = try_out!(json_out);
        let id = try_str!(id, id_len);
        let Some(entry) = store.0.outbox_get(id)? else {
            return Err(
                crate::Error::new(crate::ErrorKind::InvalidParameter, "id: no outbox entry with this id")
                    .with_field("id"),
            );
        };
        let attempts = store.0.outbox_attempts(id)?;
        let v = crate::outbox::view::entry_json(&entry, Some(&attempts));
        json_out.write_bytes(serde_json::to_vec(&v).map_err(|e| crate::Error::internal("outbox get", e))?);
        Ok(())
    })
}

/// How many outbox entries are pending (of every kind): requests whose outcome
/// is not known yet. On success `*count_out` receives the number. Errors:
/// `NULL_PARAMETER`, store errors; `error_out` as for
/// `cardbridge_store_open_sqlite`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_store_outbox_count_pending(
    store: *const cardbridge_store,
    count_out: *mut u64,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let store = try_ref!(store);
        let count_out = try_out!(count_out);
        count_out.write(store.0.outbox_count_pending(None)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arc handles may be used from several threads at once (§5.4).
    #[test]
    fn store_handle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<<cardbridge_store as Castable>::RustType>();
    }
}
