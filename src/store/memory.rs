//! In-memory store with the same semantics as the SQLite store; for tests
//! and for hosts that keep no state between runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{
    Acquired, Attempt, Claim, ClaimTicket, Completion, Inserted, LeaseRequest, OutboxEntry, OutboxQuery, OutboxState,
    Store,
};
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
    generation: i64,
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

fn invalid_state(op: &str) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("store: {op}: state must be succeeded or failed, got pending"),
    )
}

impl Inner {
    /// The entry when `token` is its current lease.
    fn leased(&mut self, id: &str, token: i64) -> Option<&mut Outbox> {
        self.outbox
            .get_mut(id)
            .filter(|o| o.entry.lease_token == token && o.entry.state == OutboxState::Pending)
    }
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
                        generation: 1,
                        response: None,
                        lease_until_ms,
                        updated_ms: now_ms,
                    },
                );
                Ok(Claim::Claimed(ClaimTicket { token: 1 }))
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
                // Expired or released: the previous holder is presumed gone; take over.
                rec.fingerprint = fingerprint.to_owned();
                rec.generation += 1;
                rec.lease_until_ms = lease_until_ms;
                rec.updated_ms = now_ms;
                Ok(Claim::Claimed(ClaimTicket { token: rec.generation }))
            }
        }
    }

    fn complete_inbound(&self, key: &str, token: i64, response: &[u8], now_ms: i64) -> Result<Completion> {
        let mut inner = self.lock("complete_inbound")?;
        let rec = inner.inbound.entry(key.to_owned()).or_insert_with(|| Inbound {
            fingerprint: String::new(),
            generation: token,
            response: None,
            lease_until_ms: 0,
            updated_ms: now_ms,
        });
        Ok(match &rec.response {
            Some(stored) => Completion::AlreadyDone(stored.clone()),
            None if rec.generation != token => Completion::Lost,
            None => {
                rec.response = Some(response.to_vec());
                rec.updated_ms = now_ms;
                Completion::Stored
            }
        })
    }

    fn release_inbound(&self, key: &str, token: i64) -> Result<()> {
        let mut inner = self.lock("release_inbound")?;
        if let Some(rec) = inner.inbound.get_mut(key) {
            if rec.response.is_none() && rec.generation == token {
                rec.lease_until_ms = 0;
            }
        }
        Ok(())
    }

    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize> {
        let mut inner = self.lock("purge_inbound")?;
        let before = inner.inbound.len();
        inner.inbound.retain(|_, rec| {
            let abandoned = rec.response.is_none() && rec.lease_until_ms < cutoff_ms;
            let old = rec.updated_ms < cutoff_ms;
            !(old && (rec.response.is_some() || abandoned))
        });
        Ok(before - inner.inbound.len())
    }

    fn outbox_insert(&self, entry: &OutboxEntry, lease: LeaseRequest<'_>) -> Result<Inserted> {
        let mut inner = self.lock("outbox_insert")?;
        if let Some(existing) = inner.outbox.get(&entry.id) {
            return Ok(Inserted::Existing(existing.entry.clone()));
        }
        let mut stored = entry.clone();
        stored.lease_owner = lease.owner.to_owned();
        stored.lease_until_ms = lease.until();
        stored.lease_token = 1;
        inner.outbox.insert(
            entry.id.clone(),
            Outbox {
                entry: stored.clone(),
                attempts: Vec::new(),
            },
        );
        Ok(Inserted::New(stored))
    }

    fn outbox_acquire(&self, id: &str, lease: LeaseRequest<'_>) -> Result<Acquired> {
        let mut inner = self.lock("outbox_acquire")?;
        let Some(o) = inner.outbox.get_mut(id) else {
            return Ok(Acquired::Missing);
        };
        let e = &mut o.entry;
        if e.state != OutboxState::Pending {
            return Ok(Acquired::Final(e.clone()));
        }
        if e.leased_by_other(lease.owner, lease.now_ms) {
            return Ok(Acquired::Busy(e.clone()));
        }
        e.lease_owner = lease.owner.to_owned();
        e.lease_until_ms = lease.until();
        e.lease_token += 1;
        Ok(Acquired::Leased(e.clone()))
    }

    fn outbox_record_attempt(
        &self,
        id: &str,
        token: i64,
        attempt: &Attempt,
        last_error: Option<&str>,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let mut inner = self.lock("outbox_record_attempt")?;
        let Some(o) = inner.leased(id, token) else {
            return Ok(false);
        };
        let at = o.attempts.partition_point(|a| a.number < attempt.number);
        if o.attempts.get(at).is_some_and(|a| a.number == attempt.number) {
            o.attempts[at] = attempt.clone();
        } else {
            o.attempts.insert(at, attempt.clone());
        }
        o.entry.attempts = u32::try_from(o.attempts.len()).unwrap_or(u32::MAX);
        o.entry.last_error = last_error.map(str::to_owned);
        o.entry.last_status = attempt.status;
        o.entry.updated_ms = o.entry.updated_ms.max(attempt.started_ms);
        o.entry.lease_until_ms = lease_until_ms;
        Ok(true)
    }

    fn outbox_finish(&self, id: &str, token: i64, state: OutboxState, result: &[u8], now_ms: i64) -> Result<bool> {
        const OP: &str = "outbox_finish";
        if state == OutboxState::Pending {
            return Err(invalid_state(OP));
        }
        let mut inner = self.lock(OP)?;
        let Some(o) = inner.leased(id, token) else {
            return Ok(false);
        };
        o.entry.state = state;
        o.entry.result = Some(result.to_vec());
        o.entry.updated_ms = now_ms;
        o.entry.lease_owner.clear();
        o.entry.lease_until_ms = 0;
        Ok(true)
    }

    fn outbox_release(&self, id: &str, token: i64) -> Result<()> {
        let mut inner = self.lock("outbox_release")?;
        if let Some(o) = inner.leased(id, token) {
            o.entry.lease_owner.clear();
            o.entry.lease_until_ms = 0;
        }
        Ok(())
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>> {
        let inner = self.lock("outbox_get")?;
        Ok(inner.outbox.get(id).map(|o| o.entry.clone()))
    }

    fn outbox_pending(&self, kind: &str, now_ms: i64) -> Result<Vec<OutboxEntry>> {
        let inner = self.lock("outbox_pending")?;
        let mut pending: Vec<OutboxEntry> = inner
            .outbox
            .values()
            .map(|o| &o.entry)
            .filter(|e| e.kind == kind && e.state == OutboxState::Pending && now_ms >= e.lease_until_ms)
            .cloned()
            .collect();
        // The map is ordered by id, and the sort is stable: ties on created_ms stay by id.
        pending.sort_by_key(|e| e.created_ms);
        Ok(pending)
    }

    fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>> {
        let inner = self.lock("outbox_list")?;
        let start = match &query.after_id {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(inner
            .outbox
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, o)| &o.entry)
            .filter(|e| query.matches(e))
            .take(query.page_size())
            .cloned()
            .collect())
    }

    fn outbox_count_pending(&self, kind: Option<&str>) -> Result<u64> {
        let inner = self.lock("outbox_count_pending")?;
        let n = inner
            .outbox
            .values()
            .filter(|o| o.entry.state == OutboxState::Pending && kind.is_none_or(|k| k == o.entry.kind))
            .count();
        Ok(n as u64)
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        let inner = self.lock("outbox_attempts")?;
        Ok(inner.outbox.get(id).map(|o| o.attempts.clone()).unwrap_or_default())
    }

    fn outbox_purge(&self, cutoff_ms: i64) -> Result<usize> {
        let mut inner = self.lock("outbox_purge")?;
        let before = inner.outbox.len();
        inner
            .outbox
            .retain(|_, o| o.entry.state == OutboxState::Pending || o.entry.updated_ms >= cutoff_ms);
        Ok(before - inner.outbox.len())
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
