//! The durable store: inbound idempotency claims and the outbound outbox.
//!
//! One trait with three implementations: [`SqliteStore`] (embedded SQLite,
//! WAL, versioned schema; the default), [`PostgresStore`] (several nodes on
//! one database) and [`MemoryStore`] (tests). Every method is atomic on its
//! own. The two places where concurrent callers are arbitrated are
//! [`Store::claim_inbound`] (who decides an inbound call) and
//! [`Store::outbox_acquire`] (who delivers an outbox entry); both hand out a
//! *fencing token*, and every later write for that claim or lease names the
//! token, so a caller whose lease expired and was taken over can no longer
//! change anything.
//!
//! # Durability
//!
//! Exactly one write per operation is durable (waits for the disk):
//! [`Store::complete_inbound`] (the final answer of an inbound call) and
//! [`Store::outbox_insert`] (the request, before its first byte is sent).
//! Claims, leases, attempt records and the final state of an outbox entry are
//! committed atomically but without waiting for the disk; losing them in a
//! power cut only causes what lease expiry causes anyway: the host is asked
//! again, or the entry is reconciled and re-sent under the same idempotency
//! key. `ARCHITECTURE.md` argues each case.

mod group;
mod memory;
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::{DEFAULT_POOL_SIZE, PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::http::Header;

/// Builds a store key from a kind and its components, without ambiguity:
/// each component is percent-encoded (`%`, `/` and control characters), so
/// `("a/b", "c")` and `("a", "b/c")` give different keys. Components without
/// those characters appear verbatim, so keys stay readable and keys written by
/// earlier versions (`kind/part/part`) keep matching.
///
/// ```
/// use cardbridge::store::key;
/// assert_eq!(key("alipayplus.issueCard", &["2102", "R-1"]), "alipayplus.issueCard/2102/R-1");
/// assert_ne!(key("k", &["a/b", "c"]), key("k", &["a", "b/c"]));
/// ```
pub fn key(kind: &str, parts: &[&str]) -> String {
    let mut out = String::with_capacity(kind.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    out.push_str(kind);
    for part in parts {
        out.push('/');
        out.extend(percent_encoding::utf8_percent_encode(part, KEY_PART));
    }
    out
}

/// What [`key`] escapes in a component.
const KEY_PART: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'/');

/// A claim handed to one caller: the fencing token that every later
/// [`Store::complete_inbound`] / [`Store::release_inbound`] must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTicket {
    /// The claim's generation: 1 for the first claim of a key, +1 for every
    /// claim after an earlier one expired or was released.
    pub token: i64,
}

impl ClaimTicket {
    /// How many earlier claims on this key were handed to a host and ended
    /// without a final answer (expired or released). Non-zero means the host
    /// may already have acted on an earlier delivery.
    pub fn earlier_claims(self) -> u32 {
        u32::try_from(self.token.saturating_sub(1)).unwrap_or(u32::MAX)
    }
}

/// Outcome of trying to claim an inbound idempotency key. `Debug` shows the
/// size of a stored response, not the response.
#[derive(Clone, PartialEq, Eq)]
pub enum Claim {
    /// First sight, or an expired or released claim taken over: the caller decides.
    Claimed(ClaimTicket),
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

/// Outcome of [`Store::complete_inbound`]. `Debug` shows the size of a
/// stored response, not the response.
#[derive(Clone, PartialEq, Eq)]
pub enum Completion {
    /// The response is now the key's final answer.
    Stored,
    /// The key already had a final answer (decided under a later claim, or an
    /// earlier one): that answer stands and is returned here, byte for byte.
    AlreadyDone(Vec<u8>),
    /// The claim was taken over by another caller that has not decided yet;
    /// nothing was stored.
    Lost,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Claimed(t) => f.debug_tuple("Claimed").field(t).finish(),
            Claim::InFlight => f.write_str("InFlight"),
            Claim::Done { response, fingerprint } => f
                .debug_struct("Done")
                .field("response", &crate::redact::Bytes(response.len()))
                .field("fingerprint", fingerprint)
                .finish(),
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Completion::Stored => f.write_str("Stored"),
            Completion::AlreadyDone(r) => f
                .debug_tuple("AlreadyDone")
                .field(&crate::redact::Bytes(r.len()))
                .finish(),
            Completion::Lost => f.write_str("Lost"),
        }
    }
}

/// State of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// A request accepted for sending. `id` is the idempotency identity (made by
/// [`key`], e.g. `alipayplus.issueCard/<appId>/<requestId>`); `body` never changes.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unique key; the same key always means the same request.
    pub id: String,
    /// What kind of call this is, e.g. `alipayplus.issueCard`.
    pub kind: String,
    /// HTTP method, e.g. `POST`.
    pub method: String,
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
    /// HTTP status of the last answer, 0 when none arrived.
    pub last_status: u16,
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
    pub fixed_headers: Vec<Header>,
    /// Who holds the delivery lease (empty when nobody does).
    pub lease_owner: String,
    /// Until when the lease holds, Unix milliseconds (0 when nobody holds it).
    pub lease_until_ms: i64,
    /// The lease's fencing token: +1 on every acquisition.
    pub lease_token: i64,
}

impl std::fmt::Debug for OutboxEntry {
    /// Bodies and results hold personal data: only their sizes are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("body_len", &self.body.len())
            .field("result_len", &self.result.as_ref().map(Vec::len))
            .field("last_error", &self.last_error)
            .field("last_status", &self.last_status)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until_ms", &self.lease_until_ms)
            .field("lease_token", &self.lease_token)
            .finish_non_exhaustive()
    }
}

impl OutboxEntry {
    /// A new pending entry created at `now_ms`, not leased.
    pub fn new(
        id: String,
        kind: &str,
        method: &str,
        target: String,
        body: Vec<u8>,
        fingerprint: String,
        now_ms: i64,
    ) -> Self {
        OutboxEntry {
            id,
            kind: kind.to_string(),
            method: method.to_string(),
            target,
            body,
            state: OutboxState::Pending,
            attempts: 0,
            result: None,
            last_error: None,
            last_status: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            fingerprint,
            fixed_headers: Vec::new(),
            lease_owner: String::new(),
            lease_until_ms: 0,
            lease_token: 0,
        }
    }

    /// Whether someone other than `owner` holds an unexpired lease at `now_ms`.
    pub fn leased_by_other(&self, owner: &str, now_ms: i64) -> bool {
        !self.lease_owner.is_empty() && self.lease_owner != owner && now_ms < self.lease_until_ms
    }
}

/// Who asks for a lease, when, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    /// The caller's identity (unique per process and integration).
    pub owner: &'a str,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// Lease length in milliseconds.
    pub lease_ms: i64,
}

impl LeaseRequest<'_> {
    /// When the lease ends.
    pub fn until(&self) -> i64 {
        self.now_ms.saturating_add(self.lease_ms)
    }
}

/// Outcome of [`Store::outbox_insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The entry is new and leased to the caller (token in `entry.lease_token`).
    New(OutboxEntry),
    /// An entry with this id already existed; it is returned unchanged (not leased).
    Existing(OutboxEntry),
}

/// Outcome of [`Store::outbox_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The caller now holds the lease (`entry.lease_token` is the fencing token).
    /// The entry existed before this call: whatever happened to it earlier
    /// (a crash, a lost answer) is unknown to the caller.
    Leased(OutboxEntry),
    /// Another owner holds an unexpired lease.
    Busy(OutboxEntry),
    /// The entry is already final.
    Final(OutboxEntry),
    /// No entry has this id.
    Missing,
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
    /// HTTP status of the answer, 0 when none arrived.
    pub status: u16,
}

/// Filter and page of [`Store::outbox_list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    /// Only entries in this state.
    pub state: Option<OutboxState>,
    /// Only entries of this kind.
    pub kind: Option<String>,
    /// Only entries created before this time (Unix ms), e.g. to find old pending ones.
    pub created_before_ms: Option<i64>,
    /// Only entries whose id sorts after this one (the page cursor: pass the last id seen).
    pub after_id: Option<String>,
    /// At most this many entries (0 = a default of 100).
    pub limit: usize,
}

impl OutboxQuery {
    /// The effective page size: `limit`, 100 when 0, at most 1000.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 100,
            n => n.min(1000),
        }
    }
    /// Whether `e` passes the filter (not the cursor or the page size).
    pub fn matches(&self, e: &OutboxEntry) -> bool {
        self.state.is_none_or(|s| s == e.state)
            && self.kind.as_deref().is_none_or(|k| k == e.kind)
            && self.created_before_ms.is_none_or(|t| e.created_ms < t)
    }
}

/// The storage interface. Implementations must be safe to share between
/// threads, and between processes where the backend allows it.
pub trait Store: Send + Sync {
    /// Atomically claims `key` for processing (a lease, not a durable write).
    ///
    /// * no record → a claim with token 1, leased until `now_ms + lease_ms`;
    /// * a claim whose lease expired, or a released claim → taken over, token + 1;
    /// * an unexpired claim → [`Claim::InFlight`];
    /// * a completed record → [`Claim::Done`] with the stored response.
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim>;

    /// Stores the final response for the claim `token` of `key`, durably,
    /// before it is sent. Fenced: only the current claim may complete.
    /// A key with no record at all (purged meanwhile) is stored as done.
    fn complete_inbound(&self, key: &str, token: i64, response: &[u8], now_ms: i64) -> Result<Completion>;

    /// Gives up the claim `token` of `key` so the next delivery asks a host
    /// again. Fenced: a claim taken over by someone else, and a completed
    /// record, are left untouched.
    fn release_inbound(&self, key: &str, token: i64) -> Result<()>;

    /// Deletes completed records, and claims abandoned for good, last updated
    /// before `cutoff_ms`; returns how many.
    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize>;

    /// Inserts `entry` durably, leased to `lease.owner`, if no entry with its
    /// id exists: [`Inserted::New`]. Otherwise the stored entry is returned
    /// unchanged: [`Inserted::Existing`].
    fn outbox_insert(&self, entry: &OutboxEntry, lease: LeaseRequest<'_>) -> Result<Inserted>;

    /// Takes the delivery lease of a pending entry when nobody else holds an
    /// unexpired one (the caller's own lease is renewed with a new token).
    fn outbox_acquire(&self, id: &str, lease: LeaseRequest<'_>) -> Result<Acquired>;

    /// Records one attempt (bumps `attempts`, sets `last_error`, `last_status`)
    /// and extends the lease to `lease_until_ms`. Fenced by `token`: returns
    /// `false` and changes nothing when the lease was taken over.
    fn outbox_record_attempt(
        &self,
        id: &str,
        token: i64,
        attempt: &Attempt,
        last_error: Option<&str>,
        lease_until_ms: i64,
    ) -> Result<bool>;

    /// Moves the entry to `state` (`Succeeded` or `Failed`) with its final
    /// `result` and ends the lease. Fenced by `token` (`false`: lease lost).
    fn outbox_finish(&self, id: &str, token: i64, state: OutboxState, result: &[u8], now_ms: i64) -> Result<bool>;

    /// Ends the lease `token` of a still-pending entry, so another caller or
    /// [`Store::outbox_pending`] can take it at once.
    fn outbox_release(&self, id: &str, token: i64) -> Result<()>;

    /// The entry with `id`, if any.
    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>>;

    /// Every `Pending` entry of `kind` nobody holds an unexpired lease on at
    /// `now_ms`, oldest first. Listing takes nothing: call
    /// [`Store::outbox_acquire`] on each.
    fn outbox_pending(&self, kind: &str, now_ms: i64) -> Result<Vec<OutboxEntry>>;

    /// A page of entries matching `query`, ordered by id.
    fn outbox_list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>>;

    /// How many entries are pending (of `kind`, or of every kind).
    fn outbox_count_pending(&self, kind: Option<&str>) -> Result<u64>;

    /// The attempts recorded for `id`, in order.
    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>>;

    /// Deletes final entries (and their attempts) last updated before
    /// `cutoff_ms`; pending entries are never purged. Returns how many.
    fn outbox_purge(&self, cutoff_ms: i64) -> Result<usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide_and_stay_readable() {
        let a = key("alipayplus.notifyCardRegistration", &["2102010113769000/X", "Y"]);
        let b = key("alipayplus.notifyCardRegistration", &["2102010113769000", "X/Y"]);
        assert_ne!(a, b);
        assert_eq!(a, "alipayplus.notifyCardRegistration/2102010113769000%2FX/Y");
        assert_eq!(key("k", &["100%", "a"]), "k/100%25/a");
        assert_ne!(key("k", &["a%2Fb"]), key("k", &["a/b"]));
        assert_eq!(key("k", &["a\nb"]), "k/a%0Ab");
        assert_eq!(key("k", &["REQ-1", "2026"]), "k/REQ-1/2026");
    }

    #[test]
    fn earlier_claims_count_from_the_token() {
        assert_eq!(ClaimTicket { token: 1 }.earlier_claims(), 0);
        assert_eq!(ClaimTicket { token: 3 }.earlier_claims(), 2);
    }
}
