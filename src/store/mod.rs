//! The durable store: inbound idempotency records and the outbound outbox.
//!
//! One small trait with two implementations: [`SqliteStore`] (embedded SQLite,
//! WAL, `synchronous=FULL`, versioned schema; the default) and [`MemoryStore`]
//! (tests). Every method is atomic on its own; `claim_inbound` is the one
//! place where concurrent duplicates are arbitrated.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use crate::error::Result;

/// Outcome of trying to claim an inbound idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First sight (or an expired lease taken over): the caller runs the business logic.
    Claimed,
    /// Another caller holds an unexpired claim and has not decided yet.
    InFlight,
    /// Already decided: replay this stored response body.
    Done {
        /// The stored response body, byte for byte.
        response: Vec<u8>,
        /// Fingerprint (SHA-256 hex of the request body) stored with the claim.
        fingerprint: String,
    },
}

/// State of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Not yet known to have succeeded or failed; to be (re)sent with the same body.
    Pending,
    /// The platform confirmed success; `result` holds the verified answer body.
    Succeeded,
    /// The platform refused for good; `result` holds the verified answer body.
    Failed,
}

impl OutboxState {
    /// Stable text form stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Succeeded => "succeeded",
            OutboxState::Failed => "failed",
        }
    }
    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxState::Pending),
            "succeeded" => Some(OutboxState::Succeeded),
            "failed" => Some(OutboxState::Failed),
            _ => None,
        }
    }
}

/// A request accepted for sending. `id` is the idempotency identity
/// (e.g. `alipayplus.issueCard/<appId>/<requestId>`); `body` never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unique key; the same key always means the same request.
    pub id: String,
    /// What kind of call this is, e.g. `alipayplus.issueCard`.
    pub kind: String,
    /// Where it goes: request-target (path and query) relative to the configured base URL.
    pub target: String,
    /// Exact body bytes, re-sent byte-identical on every attempt.
    pub body: Vec<u8>,
    /// Current state.
    pub state: OutboxState,
    /// Number of attempts recorded so far.
    pub attempts: u32,
    /// Final verified answer body (for `Succeeded` / `Failed`).
    pub result: Option<Vec<u8>>,
    /// Short description of the last failure, for operators (never personal data).
    pub last_error: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_ms: i64,
    /// What the entry stands for, as the caller fingerprints it (e.g. SHA-256
    /// of the cleartext input when the body is encrypted); compared to detect a
    /// key reused for a different request.
    pub fingerprint: String,
    /// Headers fixed when the entry was made, repeated on every attempt (e.g.
    /// `Wechatpay-Serial`, naming the key that encrypted the body).
    pub fixed_headers: Vec<crate::http::Header>,
}

/// One attempt to deliver an outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based attempt number within the entry.
    pub number: u32,
    /// When the attempt started, Unix milliseconds.
    pub started_ms: i64,
    /// Short outcome, e.g. `S`, `F PROCESS_FAIL`, `U UNKNOWN_EXCEPTION`, `timeout`, `http 503`.
    pub outcome: String,
}

/// The storage interface. Implementations must be safe to share between threads.
pub trait Store: Send + Sync {
    /// Atomically claims `key` for processing.
    ///
    /// * no record → insert a claim leased until `now_ms + lease_ms` → [`Claim::Claimed`];
    /// * a claim whose lease has expired → take it over (new fingerprint, new lease) → `Claimed`;
    /// * an unexpired claim → [`Claim::InFlight`];
    /// * a completed record → [`Claim::Done`] with the stored response.
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim>;

    /// Stores the final response for a claimed key (durably, before it is sent).
    fn complete_inbound(&self, key: &str, response: &[u8], now_ms: i64) -> Result<()>;

    /// Drops an unfinished claim so the next duplicate asks the host again.
    /// Completed records are left untouched.
    fn release_inbound(&self, key: &str) -> Result<()>;

    /// Deletes completed records older than `cutoff_ms`; returns how many.
    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize>;

    /// Inserts `entry` if no entry with its id exists; returns the stored entry
    /// (the existing one when the id was already known).
    fn outbox_insert(&self, entry: &OutboxEntry) -> Result<OutboxEntry>;

    /// The entry with `id`, if any.
    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>>;

    /// Records one attempt (and bumps `attempts`), with the entry's `last_error`.
    fn outbox_record_attempt(&self, id: &str, attempt: &Attempt, last_error: Option<&str>) -> Result<()>;

    /// Moves the entry to `state` with its final `result` body.
    fn outbox_finish(&self, id: &str, state: OutboxState, result: &[u8], now_ms: i64) -> Result<()>;

    /// Every `Pending` entry of `kind`, oldest first.
    fn outbox_pending(&self, kind: &str) -> Result<Vec<OutboxEntry>>;

    /// The attempts recorded for `id`, in order.
    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>>;
}
