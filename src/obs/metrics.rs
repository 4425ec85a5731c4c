//! Cumulative counters of one integration (README "Metrics" lists the names).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// One integration's counters since it was built. Thread-safe; cheap to bump.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (api, result) → count; result is `S`/`F`/`U` (Alipay+) or
    /// `accepted`/`redeliver`/`refused` (WeChat callbacks).
    inbound: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// (kind, outcome) → count, one per attempt (a send or a read-back).
    attempts: Mutex<BTreeMap<(String, &'static str), u64>>,
    retries: AtomicU64,
    duplicates_replayed: AtomicU64,
    inbound_reclaimed: AtomicU64,
    lease_takeovers: AtomicU64,
    outcomes_unknown: AtomicU64,
    certificate_refreshes: AtomicU64,
    store_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn inbound(&self, api: &'static str, result: &'static str) {
        let mut m = self.inbound.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((api, result)).or_default() += 1;
    }
    pub(crate) fn attempt(&self, kind: &str, outcome: &'static str) {
        let mut m = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((kind.to_string(), outcome)).or_default() += 1;
    }
    pub(crate) fn retry(&self) {
        bump(&self.retries);
    }
    pub(crate) fn duplicate_replayed(&self) {
        bump(&self.duplicates_replayed);
    }
    pub(crate) fn inbound_reclaimed(&self) {
        bump(&self.inbound_reclaimed);
    }
    pub(crate) fn lease_takeover(&self) {
        bump(&self.lease_takeovers);
    }
    pub(crate) fn outcome_unknown(&self) {
        bump(&self.outcomes_unknown);
    }
    pub(crate) fn certificate_refresh(&self) {
        bump(&self.certificate_refreshes);
    }
    pub(crate) fn store_error(&self) {
        bump(&self.store_errors);
    }

    /// The counters as JSON, with `pending_entries` (read from the store by
    /// the caller; `null` when the store could not be read):
    ///
    /// ```json
    /// {"inbound": {"notifyCardRegistration": {"S": 2}},
    ///  "outbound_attempts": {"alipayplus.issueCard": {"succeeded": 1, "retryable": 1}},
    ///  "retries": 1, "duplicates_replayed": 0, "inbound_reclaimed": 0,
    ///  "lease_takeovers": 0, "outcomes_unknown": 0, "certificate_refreshes": 0,
    ///  "store_errors": 0, "pending_entries": 0}
    /// ```
    pub fn snapshot(&self, pending_entries: Option<u64>) -> Value {
        let mut inbound = serde_json::Map::new();
        for ((api, result), n) in self.inbound.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let per = inbound.entry(*api).or_insert_with(|| json!({}));
            per[*result] = json!(n);
        }
        let mut attempts = serde_json::Map::new();
        for ((kind, outcome), n) in self.attempts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let per = attempts.entry(kind.clone()).or_insert_with(|| json!({}));
            per[*outcome] = json!(n);
        }
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "inbound": inbound,
            "outbound_attempts": attempts,
            "retries": get(&self.retries),
            "duplicates_replayed": get(&self.duplicates_replayed),
            "inbound_reclaimed": get(&self.inbound_reclaimed),
            "lease_takeovers": get(&self.lease_takeovers),
            "outcomes_unknown": get(&self.outcomes_unknown),
            "certificate_refreshes": get(&self.certificate_refreshes),
            "store_errors": get(&self.store_errors),
            "pending_entries": pending_entries,
        })
    }
}
