//! In-memory store with the same semantics as the SQLite store; for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{Attempt, Claim, OutboxEntry, OutboxState, Store};
use crate::error::{Error, ErrorKind, Result};

/// Non-durable store: everything lives in a mutex-guarded map and is lost on
/// drop. Behaves exactly like [`super::SqliteStore`] otherwise.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    inbound: HashMap<String, Inbound>,
    outbox: BTreeMap<String, Outbox>,
}

#[derive(Debug)]
struct Inbound {
    fingerprint: String,
    /// `None` while claimed, the response once done.
    response: Option<Vec<u8>>,
    lease_until_ms: i64,
    updated_ms: i64,
}

#[derive(Debug)]
struct Outbox {
    entry: OutboxEntry,
    /// Kept sorted by attempt number.
    attempts: Vec<Attempt>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self, op: &str) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                format!("store: {op}: store lock poisoned (a thread panicked while using the store)"),
            )
        })
    }
}

fn unknown_id(op: &str, id: &str) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("store: {op}: unknown outbox id {id:?}"),
    )
}

impl Store for MemoryStore {
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim> {
        let mut inner = self.lock("claim_inbound")?;
        let lease_until_ms = now_ms.saturating_add(lease_ms);
        match inner.inbound.get_mut(key) {
            None => {
                inner.inbound.insert(
                    key.to_owned(),
                    Inbound {
                        fingerprint: fingerprint.to_owned(),
                        response: None,
                        lease_until_ms,
                        updated_ms: now_ms,
                    },
                );
                Ok(Claim::Claimed)
            }
            Some(Inbound {
                response: Some(response),
                fingerprint,
                ..
            }) => Ok(Claim::Done {
                response: response.clone(),
                fingerprint: fingerprint.clone(),
            }),
            Some(rec) if now_ms < rec.lease_until_ms => Ok(Claim::InFlight),
            Some(rec) => {
                // Expired lease: the previous holder is presumed dead; take over.
                rec.fingerprint = fingerprint.to_owned();
                rec.lease_until_ms = lease_until_ms;
                rec.updated_ms = now_ms;
                Ok(Claim::Claimed)
            }
        }
    }

    /// Same rules as the SQLite store: an unclaimed key is inserted as done
    /// (empty fingerprint); an already-done key keeps its first response.
    fn complete_inbound(&self, key: &str, response: &[u8], now_ms: i64) -> Result<()> {
        let mut inner = self.lock("complete_inbound")?;
        let rec = inner.inbound.entry(key.to_owned()).or_insert_with(|| Inbound {
            fingerprint: String::new(),
            response: None,
            lease_until_ms: 0,
            updated_ms: now_ms,
        });
        if rec.response.is_none() {
            rec.response = Some(response.to_vec());
            rec.updated_ms = now_ms;
        }
        Ok(())
    }

    fn release_inbound(&self, key: &str) -> Result<()> {
        let mut inner = self.lock("release_inbound")?;
        if inner.inbound.get(key).is_some_and(|rec| rec.response.is_none()) {
            inner.inbound.remove(key);
        }
        Ok(())
    }

    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize> {
        let mut inner = self.lock("purge_inbound")?;
        let before = inner.inbound.len();
        inner
            .inbound
            .retain(|_, rec| rec.response.is_none() || rec.updated_ms >= cutoff_ms);
        Ok(before - inner.inbound.len())
    }

    fn outbox_insert(&self, entry: &OutboxEntry) -> Result<OutboxEntry> {
        let mut inner = self.lock("outbox_insert")?;
        let stored = inner.outbox.entry(entry.id.clone()).or_insert_with(|| Outbox {
            entry: entry.clone(),
            attempts: Vec::new(),
        });
        Ok(stored.entry.clone())
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>> {
        let inner = self.lock("outbox_get")?;
        Ok(inner.outbox.get(id).map(|o| o.entry.clone()))
    }

    fn outbox_record_attempt(&self, id: &str, attempt: &Attempt, last_error: Option<&str>) -> Result<()> {
        const OP: &str = "outbox_record_attempt";
        let mut inner = self.lock(OP)?;
        let o = inner.outbox.get_mut(id).ok_or_else(|| unknown_id(OP, id))?;
        let at = match o.attempts.binary_search_by_key(&attempt.number, |a| a.number) {
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "store: {OP}: attempt number {} already recorded for outbox id {id:?}",
                        attempt.number
                    ),
                ));
            }
            Err(at) => at,
        };
        o.attempts.insert(at, attempt.clone());
        o.entry.attempts = u32::try_from(o.attempts.len()).unwrap_or(u32::MAX);
        o.entry.last_error = last_error.map(str::to_owned);
        o.entry.updated_ms = o.entry.updated_ms.max(attempt.started_ms);
        Ok(())
    }

    fn outbox_finish(&self, id: &str, state: OutboxState, result: &[u8], now_ms: i64) -> Result<()> {
        const OP: &str = "outbox_finish";
        if state == OutboxState::Pending {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("store: {OP}: state must be succeeded or failed, got pending"),
            ));
        }
        let mut inner = self.lock(OP)?;
        let o = inner.outbox.get_mut(id).ok_or_else(|| unknown_id(OP, id))?;
        o.entry.state = state;
        o.entry.result = Some(result.to_vec());
        o.entry.updated_ms = now_ms;
        Ok(())
    }

    fn outbox_pending(&self, kind: &str) -> Result<Vec<OutboxEntry>> {
        let inner = self.lock("outbox_pending")?;
        let mut pending: Vec<OutboxEntry> = inner
            .outbox
            .values()
            .filter(|o| o.entry.kind == kind && o.entry.state == OutboxState::Pending)
            .map(|o| o.entry.clone())
            .collect();
        // The map is ordered by id, and the sort is stable: ties on created_ms stay by id.
        pending.sort_by_key(|e| e.created_ms);
        Ok(pending)
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        let inner = self.lock("outbox_attempts")?;
        Ok(inner.outbox.get(id).map(|o| o.attempts.clone()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_lock_is_an_internal_error() {
        let store = MemoryStore::new();
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = store.inner.lock().unwrap();
                panic!("poison the store lock");
            })
            .join()
        });
        let err = store.outbox_get("id").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().starts_with("store: outbox_get: "), "{}", err.message());
    }
}
