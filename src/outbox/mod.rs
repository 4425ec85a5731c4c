//! The one delivery engine for every outbound call that changes something on
//! a platform (Alipay+ `issueCard`, WeChat Pay `confirm`, ...).
//!
//! A platform supplies only a [`Delivery`]: how to sign an attempt, how to
//! classify an answer and how to reconcile an outcome that may hide an
//! applied request. Everything else lives here, once: the durable insert
//! (the operation's one durable commit, before the first byte is sent), the
//! delivery lease that keeps two threads, processes or nodes from sending the
//! same entry at the same time, retries with backoff under an attempt cap and
//! a deadline, attempt records, replay of final answers, and resume.
//!
//! # The rule for ambiguous outcomes
//!
//! An outcome that may hide an applied request (a timeout or broken
//! connection after the request may have left, a 5xx, an answer that does not
//! verify) is *ambiguous*. After one, the next step is always
//! a reconcile ([`Delivery::read_back`], then [`Delivery::judge_read_back`]
//! on its answer): a platform with a read-back (WeChat Pay reads the
//! card back) completes the entry when the read-back shows the request
//! applied, and allows a re-send only when it shows it was not. An entry this
//! call did not create itself (a repeated call, a resume after a restart, a
//! lease taken over from a crashed owner) starts with a reconcile too,
//! whatever its recorded attempts say: a crash between sending and recording
//! leaves no record, so the rule cannot depend on one.
//!
//! # Bring your own transport
//!
//! The engine never needs its own HTTP client: [`Engine::prepare`] does the
//! durable insert and returns the first signed request ([`Prepared`]: the
//! send, or the read-back a reconcile needs), and [`Engine::complete`] takes
//! the caller's reply (an answer, "not sent" or "no answer"), judges it with
//! the same rules and returns the outcome or the next request. The engine's
//! own loop is the same steps with its transport in between:
//! open → exchange → judge → conclude.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind, PendingDetail, RemoteDetail, Result};
use crate::http::{Exchange, Header, HttpResponse, Transport};
use crate::obs::{self, Id, Level, Metrics, Value};
use crate::retry::{Attempts, RetryPolicy};
use crate::store::{Acquired, Attempt, Inserted, LeaseRequest, OutboxEntry, OutboxQuery, OutboxState, Store};

/// One signed attempt, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Every header, signature included.
    pub headers: Vec<Header>,
    /// Body bytes (the entry's body, unchanged).
    pub body: Vec<u8>,
}

impl Outgoing {
    /// This request as the server received it at `target` (path and query):
    /// what an echoed string-to-sign is compared with.
    pub fn as_received_at(&self, target: String) -> crate::http::HttpRequest {
        crate::http::HttpRequest {
            method: self.method.clone(),
            target,
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What one answer (or its absence) means. `Debug` shows result sizes, not results.
#[derive(Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Final success: `result` is the verified answer body to store.
    Success {
        /// Stored as the entry's result.
        result: Vec<u8>,
        /// The platform's reference for this answer (e.g. WeChat `Request-ID`).
        reference: Option<String>,
        /// Short outcome for the attempt log, e.g. `S SUCCESS` or `200`.
        note: String,
    },
    /// Final refusal: `result` is stored; `remote` says what the platform said.
    Failed {
        /// Stored as the entry's result.
        result: Vec<u8>,
        /// The platform's answer.
        remote: RemoteDetail,
        /// Short outcome for the attempt log, e.g. `F PROCESS_FAIL` or `400 PARAM_ERROR`.
        note: String,
    },
    /// Not final: try again.
    Retry {
        /// Short reason for the attempt log (no personal data).
        why: String,
        /// What the platform said, if it said anything.
        remote: Option<RemoteDetail>,
        /// Whether the request may have been applied: then the next step is a
        /// reconcile, never a blind re-send.
        ambiguous: bool,
    },
}

/// What a reconcile found. `Debug` shows result sizes, not results.
#[derive(Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The request took effect: complete the entry with this result.
    Applied {
        /// Stored as the entry's result.
        result: Vec<u8>,
        /// Short description for the attempt log.
        outcome: String,
    },
    /// The request has not taken effect, or the platform's own idempotency
    /// key makes a re-send harmless: send (again).
    Send,
    /// The read-back failed: try it again later.
    Unknown {
        /// Short reason for the attempt log.
        why: String,
        /// HTTP status of the read-back's answer, 0 when none.
        status: u16,
    },
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::Bytes;
        match self {
            Verdict::Success {
                result,
                reference,
                note,
            } => f
                .debug_struct("Success")
                .field("result", &Bytes(result.len()))
                .field("reference", reference)
                .field("note", note)
                .finish(),
            Verdict::Failed { result, remote, note } => f
                .debug_struct("Failed")
                .field("result", &Bytes(result.len()))
                .field("remote", remote)
                .field("note", note)
                .finish(),
            Verdict::Retry { why, remote, ambiguous } => f
                .debug_struct("Retry")
                .field("why", why)
                .field("remote", remote)
                .field("ambiguous", ambiguous)
                .finish(),
        }
    }
}

impl std::fmt::Debug for Reconciled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reconciled::Applied { result, outcome } => f
                .debug_struct("Applied")
                .field("result", &crate::redact::Bytes(result.len()))
                .field("outcome", outcome)
                .finish(),
            Reconciled::Send => f.write_str("Send"),
            Reconciled::Unknown { why, status } => f
                .debug_struct("Unknown")
                .field("why", why)
                .field("status", status)
                .finish(),
        }
    }
}

/// The first half of a reconcile: a read-back to send, or what is known without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconcile {
    /// Exchange this signed read-back; its answer goes to [`Delivery::judge_read_back`].
    Read(Outgoing),
    /// Known without a read-back (e.g. [`Reconciled::Send`]: a re-send is harmless).
    Decided(Reconciled),
}

/// What the engine tells a platform about the attempt it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptContext {
    /// Now, Unix milliseconds (from the engine's clock).
    pub now_ms: i64,
    /// The previous attempt failed to connect at all (the platform may
    /// switch to a backup host).
    pub after_connection_failure: bool,
}

/// Prefix of the outcome of an attempt that never reached the platform.
const NOT_SENT: &str = "not sent: ";

/// What a platform supplies to the engine for one kind of call.
pub trait Delivery {
    /// Signs one attempt of `entry` (fresh timestamp, nonce and signature;
    /// the body is the entry's, unchanged).
    fn sign(&self, entry: &OutboxEntry, ctx: &AttemptContext) -> Result<Outgoing>;

    /// Classifies the answer to one attempt; `sent` is what was sent (for a
    /// diagnosis of a signature refusal: the string the platform verified
    /// against the one we signed).
    fn classify(&self, entry: &OutboxEntry, sent: &Outgoing, answer: HttpResponse) -> Verdict;

    /// After an ambiguous outcome, or before the first send of an entry this
    /// call did not create: how to find out whether the request took effect —
    /// a signed read-back to exchange (then [`Delivery::judge_read_back`]
    /// judges its answer), or a decision that needs none. The default: a
    /// re-send is harmless, send.
    fn read_back(&self, entry: &OutboxEntry, ctx: &AttemptContext) -> Reconcile {
        let _ = (entry, ctx);
        Reconcile::Decided(Reconciled::Send)
    }

    /// Judges the answer to the read-back `sent` (from [`Delivery::read_back`]).
    fn judge_read_back(&self, entry: &OutboxEntry, sent: &Outgoing, answer: HttpResponse) -> Reconciled {
        let _ = (entry, sent);
        Reconciled::Unknown {
            why: "no read-back expected".into(),
            status: answer.status,
        }
    }

    /// What the caller must repeat to get the outcome later, e.g. `requestId`.
    fn key_name(&self) -> &'static str {
        "key"
    }
}

/// Per-call options: a deadline overriding the retry budget's, and a flag to
/// cancel between attempts (the entry stays pending).
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// No attempt starts later than this after the call began.
    pub deadline: Option<Duration>,
    /// When set, no further attempt starts; the call returns `RemoteUnknown`.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl CallOptions {
    /// Options with a deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        CallOptions {
            deadline: Some(deadline),
            cancel: None,
        }
    }
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// The engine over one store and transport. Thread-safe; share it.
pub struct Engine {
    store: Arc<dyn Store>,
    transport: Transport,
    clock: Clock,
    policy: RetryPolicy,
    /// This engine's lease identity.
    owner: String,
    /// Lease length covering one attempt (connect + read timeouts) with margin.
    lease: Duration,
    /// The integration's counters.
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// How a delivery ended: the final entry (`Succeeded` with the verified
/// answer as its result, or `Failed` with the platform's refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The entry in its final state.
    pub entry: OutboxEntry,
    /// The platform's reference for the answer received in this call (e.g.
    /// WeChat `Request-ID`); `None` for a replayed or reconciled answer.
    pub reference: Option<String>,
}

impl Outcome {
    /// Whether the platform refused the request for good.
    pub fn failed(&self) -> bool {
        self.entry.state == OutboxState::Failed
    }
    /// The stored answer body.
    pub fn result(&self) -> &[u8] {
        self.entry.result.as_deref().unwrap_or_default()
    }
}

/// A fresh lease identity: process id, a random part and a counter.
fn new_owner() -> String {
    use std::sync::atomic::AtomicU64;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{:08x}-{}",
        std::process::id(),
        crate::crypto::random_below(u64::from(u32::MAX)),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Log target of the engine's events.
const TARGET: &str = "cardbridge::outbox";

/// How long to wait between looks at an entry another caller is delivering.
const BUSY_POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// An engine sending through `transport` under `policy`; `lease` must
    /// cover one attempt (connect + read timeout).
    pub fn new(
        store: Arc<dyn Store>,
        transport: Transport,
        clock: Clock,
        policy: RetryPolicy,
        lease: Duration,
    ) -> Self {
        Engine {
            store,
            transport,
            clock,
            policy,
            owner: new_owner(),
            lease,
            metrics: Arc::default(),
        }
    }

    /// The same engine counting into `metrics` (shared with the inbound side
    /// of the integration).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The counters this engine bumps.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn store_error(&self, operation: &'static str) -> impl Fn(Error) -> Error + '_ {
        move |e| {
            obs::store_error(&self.metrics, operation, &e);
            e
        }
    }

    /// The store entries live in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock attempts are timed with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A lease identity for one call: two calls never share a lease, even
    /// on one engine, so a concurrent duplicate waits instead of stealing it.
    fn call_owner(&self) -> String {
        use std::sync::atomic::AtomicU64;
        static CALLS: AtomicU64 = AtomicU64::new(0);
        format!("{}#{}", self.owner, CALLS.fetch_add(1, Ordering::Relaxed))
    }

    fn lease_request(&self, extra: Duration) -> (i64, i64) {
        let now = self.clock.now_ms();
        let ms = i64::try_from((self.lease + extra).as_millis()).unwrap_or(i64::MAX);
        (now, ms)
    }

    /// Records `entry` (durably, the operation's one durable commit) unless an
    /// entry with its id exists, then delivers it. An existing entry must have
    /// the same fingerprint (else `IdempotencyConflict`, naming `key_field`);
    /// when final its stored answer is returned without any network.
    pub fn submit(
        &self,
        entry: OutboxEntry,
        key_field: &str,
        delivery: &dyn Delivery,
        options: &CallOptions,
    ) -> Result<Outcome> {
        let owner = self.call_owner();
        match self.insert(entry, key_field, &owner)? {
            Inserted::New(stored) => self.run(stored, true, delivery, options),
            Inserted::Existing(stored) => self.deliver_as(&owner, &stored.id, delivery, options),
        }
    }

    /// The durable insert (leased to `owner` in the same commit), or the
    /// existing entry with the same id when it is the same request.
    fn insert(&self, entry: OutboxEntry, key_field: &str, owner: &str) -> Result<Inserted> {
        let (now, lease_ms) = self.lease_request(Duration::ZERO);
        let request = LeaseRequest {
            owner,
            now_ms: now,
            lease_ms,
        };
        let inserted = self
            .store
            .outbox_insert(&entry, request)
            .map_err(self.store_error("outbox_insert"))?;
        if let Inserted::Existing(stored) = &inserted
            && (stored.fingerprint != entry.fingerprint || stored.kind != entry.kind)
        {
            return Err(Error::new(
                ErrorKind::IdempotencyConflict,
                format!(
                    "{key_field}: this key was already used for a different request; \
                     resend the original request or use a new key"
                ),
            )
            .with_field(key_field));
        }
        Ok(inserted)
    }

    /// Delivers the existing entry `id`: replays a final answer, waits (up to
    /// the deadline) while another caller holds the lease, otherwise takes the
    /// lease and runs it, starting with a reconcile.
    pub fn deliver(&self, id: &str, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        self.deliver_as(&self.call_owner(), id, delivery, options)
    }

    /// Until when another owner's lease on `id` ran, as seen now.
    fn foreign_lease(&self, owner: &str, id: &str) -> Result<Option<i64>> {
        Ok(self
            .store
            .outbox_get(id)
            .map_err(self.store_error("outbox_get"))?
            .filter(|e| !e.lease_owner.is_empty() && e.lease_owner != owner)
            .map(|e| e.lease_until_ms))
    }

    /// One try to take the lease on `id` for `owner`. `foreign_lease_until`:
    /// until when another owner's lease ran, as last seen; acquiring the
    /// entry after that moment takes an expired lease over (a release is no
    /// takeover).
    fn acquire(&self, owner: &str, id: &str, foreign_lease_until: &mut Option<i64>) -> Result<Acquire> {
        let (now, lease_ms) = self.lease_request(Duration::ZERO);
        let request = LeaseRequest {
            owner,
            now_ms: now,
            lease_ms,
        };
        match self
            .store
            .outbox_acquire(id, request)
            .map_err(self.store_error("outbox_acquire"))?
        {
            Acquired::Missing => {
                Err(Error::new(ErrorKind::InvalidParameter, "outbox: no entry with this id").with_field("id"))
            }
            Acquired::Final(entry) => {
                self.metrics.duplicate_replayed();
                obs::event(Level::Info, TARGET, "final answer replayed from the outbox", || {
                    vec![
                        ("kind", Value::Id(Id::new(&entry.kind))),
                        ("out_id", Value::Id(Id::new(&entry.id))),
                        ("state", Value::Label(view::state_name(entry.state))),
                    ]
                });
                Ok(Acquire::Final(Outcome { entry, reference: None }))
            }
            Acquired::Leased(e) => {
                if foreign_lease_until.is_some_and(|until| until <= now) {
                    self.metrics.lease_takeover();
                    obs::event(Level::Warn, TARGET, "delivery lease taken over", || {
                        vec![
                            ("kind", Value::Id(Id::new(&e.kind))),
                            ("out_id", Value::Id(Id::new(&e.id))),
                            ("attempts", Value::Int(i64::from(e.attempts))),
                        ]
                    });
                }
                Ok(Acquire::Leased(e))
            }
            Acquired::Busy(e) => {
                *foreign_lease_until = Some(e.lease_until_ms);
                Ok(Acquire::Busy(e))
            }
        }
    }

    fn deliver_as(&self, owner: &str, id: &str, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        let started = Instant::now();
        let deadline = options.deadline.unwrap_or(self.policy.deadline);
        let mut foreign_lease_until = self.foreign_lease(owner, id)?;
        loop {
            match self.acquire(owner, id, &mut foreign_lease_until)? {
                Acquire::Final(outcome) => return Ok(outcome),
                Acquire::Leased(e) => return self.run(e, false, delivery, options),
                Acquire::Busy(e) => {
                    if started.elapsed() + BUSY_POLL > deadline || options.cancelled() {
                        return Err(busy(&e));
                    }
                    std::thread::sleep(BUSY_POLL);
                }
            }
        }
    }

    /// Bring your own transport, step 1: like [`Engine::submit`] (the same
    /// durable insert, the same idempotency and replay rules), but instead
    /// of sending, returns the first signed request for the caller to
    /// exchange over its own HTTP stack: `Progress::Send(prepared)`, or
    /// `Progress::Done` when the entry is already final (its stored answer,
    /// no network). An entry another caller is delivering right now is a
    /// `RemoteUnknown` at once (nothing waits here).
    ///
    /// The entry is leased to this call for the engine's lease (one
    /// attempt's connect + read timeouts, with margin), extended by every
    /// [`Engine::complete`] over its backoff wait: the caller's exchange must
    /// fit in it, else another caller may take the entry over (the lease's
    /// fencing makes this call's `complete` a `RemoteUnknown`, never a double
    /// record). Dropping a `Prepared` without completing it releases the
    /// lease and leaves the entry pending; the next call or resume reconciles
    /// it first.
    pub fn prepare(&self, entry: OutboxEntry, key_field: &str, delivery: &dyn Delivery) -> Result<Progress<Outcome>> {
        let owner = self.call_owner();
        let (leased, fresh) = match self.insert(entry, key_field, &owner)? {
            Inserted::New(stored) => (stored, true),
            Inserted::Existing(stored) => {
                let mut foreign_lease_until = self.foreign_lease(&owner, &stored.id)?;
                match self.acquire(&owner, &stored.id, &mut foreign_lease_until)? {
                    Acquire::Final(outcome) => return Ok(Progress::Done(outcome)),
                    Acquire::Leased(e) => (e, false),
                    Acquire::Busy(e) => return Err(busy(&e)),
                }
            }
        };
        let mut run = self.new_run(leased, fresh, true, &CallOptions::default());
        let turn = run.open(delivery);
        self.drive(run, turn, delivery)
    }

    /// Bring your own transport, step 2: judges `reply`, the caller's result
    /// of exchanging `prepared`'s request, exactly as the engine judges its
    /// own transport's (verification, classification, the ambiguity rule:
    /// after an ambiguous outcome the next request is a read-back), records
    /// the attempt, and returns the final outcome or the next request to
    /// exchange — after waiting [`Prepared::wait`] (the backoff; this call
    /// never sleeps). When the budget is spent: `RemoteUnknown`, the entry
    /// left pending and its lease released.
    pub fn complete(&self, prepared: Prepared, reply: Reply, delivery: &dyn Delivery) -> Result<Progress<Outcome>> {
        let Prepared {
            lease,
            entry,
            budget,
            last_status,
            reconcile,
            after_connection_failure,
            purpose,
            request,
            started_ms,
            timer,
            wait: _,
        } = prepared;
        lease.disarm();
        let mut run = Run {
            engine: self,
            entry,
            stored: true,
            budget,
            last_status,
            reconcile,
            after_connection_failure,
        };
        let exchange = match reply {
            Reply::Answered(resp) => Exchange::Answered(resp),
            Reply::NotSent => Exchange::NotSent(Error::new(ErrorKind::Transport, "not sent")),
            Reply::NoAnswer => Exchange::Lost(Error::new(ErrorKind::Transport, "no answer")),
            Reply::TimedOut => Exchange::Lost(Error::new(ErrorKind::Timeout, "timeout")),
        };
        let turn = run.judge(delivery, purpose, &request, exchange);
        self.drive_from(run, turn, started_ms, timer, delivery)
    }

    /// Steps `run` from `turn` (just opened) until it needs an exchange or ends.
    fn drive(&self, run: Run<'_>, turn: Turn, delivery: &dyn Delivery) -> Result<Progress<Outcome>> {
        let started_ms = self.clock.now_ms();
        self.drive_from(run, turn, started_ms, Instant::now(), delivery)
    }

    fn drive_from(
        &self,
        mut run: Run<'_>,
        mut turn: Turn,
        mut started_ms: i64,
        mut timer: Instant,
        delivery: &dyn Delivery,
    ) -> Result<Progress<Outcome>> {
        let mut wait = Duration::ZERO;
        let result = loop {
            match turn {
                Turn::Exchange(purpose, mut request) => {
                    // What the engine's transport adds by itself (WeChat Pay refuses a request without it).
                    if crate::http::find_header(&request.headers, "User-Agent").is_none() {
                        request
                            .headers
                            .push(("User-Agent".to_string(), self.transport.user_agent().to_string()));
                    }
                    return Ok(Progress::Send(Prepared {
                        lease: LeaseGuard {
                            store: Some(self.store.clone()),
                            id: run.entry.id.clone(),
                            token: run.entry.lease_token,
                        },
                        entry: run.entry,
                        budget: run.budget,
                        last_status: run.last_status,
                        reconcile: run.reconcile,
                        after_connection_failure: run.after_connection_failure,
                        purpose,
                        request,
                        started_ms,
                        timer,
                        wait,
                    }));
                }
                Turn::Judged(judged) => match run.conclude(judged, started_ms, timer) {
                    Err(e) => break Err(e),
                    Ok(Flow::Done(outcome)) => return Ok(Progress::Done(outcome)),
                    Ok(Flow::Again { delay: Some(d), .. }) => {
                        wait += d;
                        started_ms = self.clock.now_ms();
                        timer = Instant::now();
                        turn = run.open(delivery);
                    }
                    Ok(Flow::Again {
                        delay: None,
                        why,
                        remote,
                    }) => {
                        break Err(run.gave_up(delivery, &why, remote, false));
                    }
                },
            }
        };
        // Leave the entry pending and free at once for the next call or resume.
        let _ = self.store.outbox_release(&run.entry.id, run.entry.lease_token);
        result
    }

    /// Delivers every pending entry of `kind` nobody else is delivering, oldest
    /// first; one outcome per entry, keyed by outbox id.
    pub fn resume_pending(
        &self,
        kind: &str,
        delivery: &dyn Delivery,
        options: &CallOptions,
    ) -> Result<Vec<(String, Result<Outcome>)>> {
        let pending = self
            .store
            .outbox_pending(kind, self.clock.now_ms())
            .map_err(self.store_error("outbox_pending"))?;
        Ok(pending
            .into_iter()
            .map(|e| {
                let outcome = self.deliver(&e.id, delivery, options);
                (e.id, outcome)
            })
            .collect())
    }

    /// Runs `entry` through the same attempt loop without recording it: for
    /// reads, and for calls whose platform-side key makes them idempotent
    /// and whose outcome nobody needs to resume. Nothing is stored or leased.
    pub fn call(&self, entry: OutboxEntry, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        self.run_with(entry, true, false, delivery, options)
    }

    /// A page of entries (read-only view).
    pub fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>> {
        self.store.outbox_list(query)
    }

    /// Runs attempts for a leased entry until a final answer, the budget's end
    /// (the entry stays pending and the lease is given up), or a lost lease.
    fn run(&self, entry: OutboxEntry, fresh: bool, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        self.run_with(entry, fresh, true, delivery, options)
    }

    fn new_run(&self, entry: OutboxEntry, fresh: bool, stored: bool, options: &CallOptions) -> Run<'_> {
        let mut policy = self.policy;
        if let Some(d) = options.deadline {
            policy.deadline = d;
        }
        Run {
            engine: self,
            entry,
            stored,
            budget: Attempts::new(policy),
            last_status: 0,
            reconcile: !fresh,
            after_connection_failure: false,
        }
    }

    fn run_with(
        &self,
        entry: OutboxEntry,
        fresh: bool,
        stored: bool,
        delivery: &dyn Delivery,
        options: &CallOptions,
    ) -> Result<Outcome> {
        let mut run = self.new_run(entry, fresh, stored, options);
        let result = run.steps(delivery, options);
        if stored && result.is_err() {
            // Leave the entry pending and free at once for the next call or resume.
            let _ = self.store.outbox_release(&run.entry.id, run.entry.lease_token);
        }
        result
    }
}

/// A `RemoteUnknown` for an entry another caller holds the lease of.
fn busy(e: &OutboxEntry) -> Error {
    unknown(
        e,
        true,
        "another caller is delivering this request right now; \
         call again later with the same key to get its outcome",
        None,
    )
}

/// One try at an entry's lease.
enum Acquire {
    Final(Outcome),
    Leased(OutboxEntry),
    Busy(OutboxEntry),
}

/// Where a bring-your-own-transport delivery stands ([`Engine::prepare`],
/// [`Engine::complete`]): the final outcome, or a request to exchange.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a transient return value, moved straight into the next call; boxing would only add an allocation"
)]
pub enum Progress<T> {
    /// The final answer (also the replay of an entry already final).
    Done(T),
    /// Exchange [`Prepared::request`] (after [`Prepared::wait`]) and hand the
    /// reply to the matching `complete`.
    Send(Prepared),
}

impl<T> Progress<T> {
    /// Maps the final answer (a request to send passes through).
    pub fn try_map<U>(self, f: impl FnOnce(T) -> Result<U>) -> Result<Progress<U>> {
        Ok(match self {
            Progress::Done(t) => Progress::Done(f(t)?),
            Progress::Send(p) => Progress::Send(p),
        })
    }
}

/// What a prepared request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The request itself (a first send or a re-send of the stored bytes).
    Send,
    /// A read-back finding out whether an earlier, ambiguous send took effect.
    ReadBack,
}

/// What the caller's exchange of a prepared request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer arrived (any status): status, headers and the raw body.
    Answered(HttpResponse),
    /// The request certainly did not reach the peer (no connection was made).
    NotSent,
    /// The request may have reached the peer; no answer came (broken connection).
    NoAnswer,
    /// The request may have reached the peer; no answer came in time.
    TimedOut,
}

/// A signed request recorded in the outbox and leased to one caller, waiting
/// for the caller's own exchange ([`Engine::prepare`]). `Debug` shows the
/// outbox id, purpose and header names, never the body or header values.
pub struct Prepared {
    lease: LeaseGuard,
    entry: OutboxEntry,
    budget: Attempts,
    last_status: u16,
    reconcile: bool,
    after_connection_failure: bool,
    purpose: Purpose,
    request: Outgoing,
    started_ms: i64,
    timer: Instant,
    wait: Duration,
}

/// Releases a prepared request's lease when it is dropped without being
/// completed, so the entry is free at once for the next call (it stays pending).
struct LeaseGuard {
    store: Option<Arc<dyn Store>>,
    id: String,
    token: i64,
}

impl LeaseGuard {
    fn disarm(mut self) {
        self.store = None;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            let _ = store.outbox_release(&self.id, self.token);
        }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("outbox_id", &self.entry.id)
            .field("kind", &self.entry.kind)
            .field("purpose", &self.purpose)
            .field("request", &self.request)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The outbox id of the entry.
    pub fn outbox_id(&self) -> &str {
        &self.entry.id
    }
    /// The outbox kind of the entry (e.g. `alipayplus.issueCard`).
    pub fn kind(&self) -> &str {
        &self.entry.kind
    }
    /// The fencing token of this call's lease on the entry.
    pub fn lease_token(&self) -> i64 {
        self.entry.lease_token
    }
    /// Whether the request is the call itself or a read-back.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
    /// The signed request to send, unchanged: method, absolute URL, every header, body.
    pub fn request(&self) -> &Outgoing {
        &self.request
    }
    /// How long to wait before sending (the backoff after a failed attempt; zero at first).
    pub fn wait(&self) -> Duration {
        self.wait
    }
    /// The entry's request body (the stored bytes).
    pub(crate) fn entry_body(&self) -> &[u8] {
        &self.entry.body
    }
    /// `InvalidParameter` unless this request was prepared by `call` (outbox `kind`).
    pub(crate) fn check_kind(&self, kind: &str, call: &str) -> Result<()> {
        if self.entry.kind == kind {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("prepared: was not prepared by {call}"),
        )
        .with_field("prepared"))
    }
}

/// One call's delivery of one leased entry.
struct Run<'a> {
    engine: &'a Engine,
    entry: OutboxEntry,
    /// Whether the entry lives in the store (leased, recorded) or only in this call.
    stored: bool,
    budget: Attempts,
    last_status: u16,
    /// Whether the next attempt starts with a reconcile.
    reconcile: bool,
    /// Whether the previous attempt failed to connect at all.
    after_connection_failure: bool,
}

/// What one step (a send or a reconcile) ended with.
enum Step {
    Done(OutboxState, Vec<u8>, Option<String>),
    Again {
        why: String,
        remote: Option<RemoteDetail>,
        reconcile: bool,
    },
}

/// One attempt's judgement: the step, its attempt-log outcome, the HTTP
/// status (0: none) and whether a read-back decided it.
struct Judged {
    step: Step,
    outcome: String,
    status: u16,
    read_back: bool,
}

/// Where an attempt stands: a request to exchange, or judged.
enum Turn {
    Exchange(Purpose, Outgoing),
    Judged(Judged),
}

/// After an attempt is recorded: final, or another attempt after `delay`
/// (`None`: the budget is spent).
enum Flow {
    Done(Outcome),
    Again {
        delay: Option<Duration>,
        why: String,
        remote: Option<RemoteDetail>,
    },
}

impl Run<'_> {
    /// The engine's own loop: each attempt's exchanges through its transport.
    fn steps(&mut self, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        loop {
            let started = self.engine.clock.now_ms();
            let timer = Instant::now();
            let mut turn = self.open(delivery);
            let judged = loop {
                match turn {
                    Turn::Judged(j) => break j,
                    Turn::Exchange(purpose, out) => {
                        let exchange = self
                            .engine
                            .transport
                            .exchange(&out.url, &out.method, &out.headers, &out.body);
                        turn = self.judge(delivery, purpose, &out, exchange);
                    }
                }
            };
            match self.conclude(judged, started, timer)? {
                Flow::Done(outcome) => return Ok(outcome),
                Flow::Again { delay, why, remote } => {
                    match delay {
                        Some(d) if !options.cancelled() => sleep_unless_cancelled(d, options),
                        _ => return Err(self.gave_up(delivery, &why, remote, options.cancelled())),
                    }
                    if options.cancelled() {
                        return Err(self.gave_up(delivery, &why, None, true));
                    }
                }
            }
        }
    }

    /// Opens an attempt: the read-back a reconcile needs, or the signed send.
    fn open(&mut self, delivery: &dyn Delivery) -> Turn {
        if self.reconcile {
            let ctx = AttemptContext {
                now_ms: self.engine.clock.now_ms(),
                after_connection_failure: false,
            };
            match delivery.read_back(&self.entry, &ctx) {
                Reconcile::Read(out) => return Turn::Exchange(Purpose::ReadBack, out),
                Reconcile::Decided(r) => {
                    if let Some(j) = reconciled(r) {
                        return Turn::Judged(j);
                    }
                }
            }
        }
        self.sign(delivery)
    }

    fn sign(&self, delivery: &dyn Delivery) -> Turn {
        let ctx = AttemptContext {
            now_ms: self.engine.clock.now_ms(),
            after_connection_failure: self.after_connection_failure,
        };
        match delivery.sign(&self.entry, &ctx) {
            Ok(out) => Turn::Exchange(Purpose::Send, out),
            Err(e) => Turn::Judged(again(format!("signing failed: {}", e.message()), false)),
        }
    }

    /// Judges what became of one exchange; a read-back that allows a send
    /// goes on to the send, in the same attempt.
    fn judge(&mut self, delivery: &dyn Delivery, purpose: Purpose, out: &Outgoing, exchange: Exchange) -> Turn {
        match purpose {
            Purpose::ReadBack => {
                let r = match exchange {
                    Exchange::Answered(resp) => delivery.judge_read_back(&self.entry, out, resp),
                    Exchange::NotSent(e) | Exchange::Lost(e) => Reconciled::Unknown {
                        why: transport_reason(&e).to_string(),
                        status: 0,
                    },
                };
                match reconciled(r) {
                    Some(j) => Turn::Judged(j),
                    None => self.sign(delivery),
                }
            }
            Purpose::Send => Turn::Judged(match exchange {
                Exchange::Answered(resp) => {
                    let status = resp.status;
                    let (step, outcome) = match delivery.classify(&self.entry, out, resp) {
                        Verdict::Success {
                            result,
                            reference,
                            note,
                        } => (Step::Done(OutboxState::Succeeded, result, reference), note),
                        Verdict::Failed { result, note, .. } => (Step::Done(OutboxState::Failed, result, None), note),
                        Verdict::Retry { why, remote, ambiguous } => (
                            Step::Again {
                                why: why.clone(),
                                remote,
                                reconcile: ambiguous,
                            },
                            why,
                        ),
                    };
                    Judged {
                        step,
                        outcome,
                        status,
                        read_back: false,
                    }
                }
                Exchange::NotSent(e) => again(format!("{NOT_SENT}{}", transport_reason(&e)), false),
                Exchange::Lost(e) => again(format!("answer lost: {}", transport_reason(&e)), true),
            }),
        }
    }

    /// Records a judged attempt: counts it, logs it, extends the lease over
    /// the coming wait, and finishes the entry when final.
    fn conclude(&mut self, judged: Judged, started: i64, timer: Instant) -> Result<Flow> {
        let Judged {
            step,
            outcome,
            status,
            read_back,
        } = judged;
        self.budget.record();
        if status != 0 {
            self.last_status = status;
        }
        self.after_connection_failure = outcome.starts_with(NOT_SENT);
        let delay = match &step {
            Step::Again { .. } => self.budget.next_delay(),
            Step::Done(..) => None,
        };
        let last_error = matches!(step, Step::Again { .. }).then_some(outcome.as_str());
        self.observe_attempt(&step, &outcome, read_back, status, timer, delay);
        self.record(started, &outcome, status, last_error, delay)?;
        match step {
            Step::Done(state, result, reference) => Ok(Flow::Done(self.finish(state, result, reference)?)),
            Step::Again {
                why,
                remote,
                reconcile: next,
            } => {
                self.reconcile = next;
                Ok(Flow::Again { delay, why, remote })
            }
        }
    }

    /// Counts and logs one attempt (and the retry it schedules, if any).
    fn observe_attempt(
        &self,
        step: &Step,
        outcome: &str,
        read_back: bool,
        status: u16,
        timer: Instant,
        delay: Option<Duration>,
    ) {
        let label = match step {
            Step::Done(OutboxState::Succeeded, ..) if read_back => "read_back_applied",
            Step::Done(OutboxState::Succeeded, ..) => "succeeded",
            Step::Done(..) => "failed",
            Step::Again { .. } if read_back => "read_back_failed",
            Step::Again { .. } if outcome.starts_with(NOT_SENT) => "not_sent",
            Step::Again { reconcile: true, .. } => "ambiguous",
            Step::Again { .. } => "retryable",
        };
        let metrics = &self.engine.metrics;
        metrics.attempt(&self.entry.kind, label);
        let level = if matches!(step, Step::Done(..)) {
            Level::Info
        } else {
            Level::Warn
        };
        let attempt = i64::from(self.entry.attempts) + 1;
        obs::event(level, TARGET, "outbound attempt", || {
            vec![
                ("kind", Value::Id(Id::new(&self.entry.kind))),
                ("out_id", Value::Id(Id::new(&self.entry.id))),
                ("attempt", Value::Int(attempt)),
                ("outcome", Value::Label(label)),
                ("http_status", Value::Int(i64::from(status))),
                ("latency_ms", Value::Int(obs::elapsed_ms(timer))),
            ]
        });
        if let Some(d) = delay {
            metrics.retry();
            obs::event(Level::Warn, TARGET, "retry scheduled", || {
                vec![
                    ("kind", Value::Id(Id::new(&self.entry.kind))),
                    ("out_id", Value::Id(Id::new(&self.entry.id))),
                    ("attempt", Value::Int(attempt)),
                    ("delay_ms", Value::Int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
                    (
                        "read_back_next",
                        Value::Bool(matches!(step, Step::Again { reconcile: true, .. })),
                    ),
                ]
            });
        }
    }

    /// Records the attempt and extends the lease over the coming wait.
    fn record(
        &mut self,
        started: i64,
        outcome: &str,
        status: u16,
        last_error: Option<&str>,
        delay: Option<Duration>,
    ) -> Result<()> {
        let (now, lease_ms) = self.engine.lease_request(delay.unwrap_or_default());
        let attempt = Attempt {
            number: self.entry.attempts + 1,
            started_ms: started,
            outcome: outcome.to_string(),
            status,
        };
        let kept = !self.stored
            || self
                .engine
                .store
                .outbox_record_attempt(
                    &self.entry.id,
                    self.entry.lease_token,
                    &attempt,
                    last_error,
                    now.saturating_add(lease_ms),
                )
                .map_err(|e| self.store_failed("outbox_record_attempt", &e))?;
        if !kept {
            return Err(self.lease_lost());
        }
        self.entry.attempts += 1;
        self.entry.last_error = last_error.map(str::to_string);
        self.entry.last_status = status;
        Ok(())
    }

    fn finish(&mut self, state: OutboxState, result: Vec<u8>, reference: Option<String>) -> Result<Outcome> {
        let now = self.engine.clock.now_ms();
        if self.stored
            && !self
                .engine
                .store
                .outbox_finish(&self.entry.id, self.entry.lease_token, state, &result, now)
                .map_err(|e| self.store_failed("outbox_finish", &e))?
        {
            return Err(self.lease_lost());
        }
        self.entry.state = state;
        self.entry.result = Some(result);
        self.entry.updated_ms = now;
        self.entry.lease_owner.clear();
        self.entry.lease_until_ms = 0;
        Ok(Outcome {
            entry: self.entry.clone(),
            reference,
        })
    }

    /// The store failed after a request may have left (its database went
    /// away): the entry stays pending in the store, so the outcome is unknown.
    fn store_failed(&self, operation: &'static str, e: &Error) -> Error {
        obs::store_error(&self.engine.metrics, operation, e);
        self.engine.metrics.outcome_unknown();
        unknown(
            &self.entry,
            true,
            &format!(
                "the store could not record this attempt ({}); the request stays pending: \
                 call again later with the same key to get its outcome",
                e.message()
            ),
            None,
        )
    }

    fn lease_lost(&self) -> Error {
        self.engine.metrics.outcome_unknown();
        obs::event(Level::Warn, TARGET, "delivery lease lost to another caller", || {
            vec![
                ("kind", Value::Id(Id::new(&self.entry.kind))),
                ("out_id", Value::Id(Id::new(&self.entry.id))),
            ]
        });
        unknown(
            &self.entry,
            true,
            "another caller took over this request's delivery (this call's lease expired); \
             call again later with the same key to get its outcome",
            None,
        )
    }

    fn gave_up(&self, delivery: &dyn Delivery, why: &str, remote: Option<RemoteDetail>, cancelled: bool) -> Error {
        let what = if cancelled { "cancelled" } else { "outcome unknown" };
        let text = format!(
            "{what} after {} attempt(s) in this call (last: {why}); the request stays pending: \
             retry later with the same {}",
            self.budget.made(),
            delivery.key_name()
        );
        let mut entry = self.entry.clone();
        entry.last_status = self.last_status;
        self.engine.metrics.outcome_unknown();
        obs::event(Level::Warn, TARGET, "outcome unknown: left pending", || {
            vec![
                ("kind", Value::Id(Id::new(&entry.kind))),
                ("out_id", Value::Id(Id::new(&entry.id))),
                ("attempts", Value::Int(i64::from(entry.attempts))),
                ("http_status", Value::Int(i64::from(entry.last_status))),
                ("cancelled", Value::Bool(cancelled)),
            ]
        });
        unknown(&entry, self.stored, &text, remote)
    }
}

/// A `RemoteUnknown` for `entry` with where it stands (when it is `stored`).
fn unknown(entry: &OutboxEntry, stored: bool, text: &str, remote: Option<RemoteDetail>) -> Error {
    let mut e = Error::new(ErrorKind::RemoteUnknown, format!("{}: {text}", entry.kind));
    if stored {
        e = e.with_pending(PendingDetail {
            outbox_id: entry.id.clone(),
            attempts: entry.attempts,
            last_status: entry.last_status,
            request_id: String::new(),
        });
    }
    let remote = remote.or_else(|| {
        (entry.last_status != 0).then(|| RemoteDetail {
            http_status: entry.last_status,
            ..Default::default()
        })
    });
    if let Some(mut r) = remote {
        if r.http_status == 0 {
            r.http_status = entry.last_status;
        }
        e = e.with_remote(r);
    }
    e
}

/// A judged attempt that failed before any answer: try again.
fn again(why: String, reconcile: bool) -> Judged {
    Judged {
        step: Step::Again {
            why: why.clone(),
            remote: None,
            reconcile,
        },
        outcome: why,
        status: 0,
        read_back: false,
    }
}

/// A reconcile's finding as a judged attempt; `None` when it says to send
/// now (the send is the attempt).
fn reconciled(r: Reconciled) -> Option<Judged> {
    match r {
        Reconciled::Applied { result, outcome } => Some(Judged {
            step: Step::Done(OutboxState::Succeeded, result, None),
            outcome: format!("read-back: {outcome}"),
            status: 0,
            read_back: true,
        }),
        Reconciled::Send => None,
        Reconciled::Unknown { why, status } => {
            let why = format!("read-back failed: {why}");
            Some(Judged {
                step: Step::Again {
                    why: why.clone(),
                    remote: None,
                    reconcile: true,
                },
                outcome: why,
                status,
                read_back: true,
            })
        }
    }
}

/// Timeout or transport, without the peer's address or any payload.
fn transport_reason(e: &Error) -> &'static str {
    if e.kind() == ErrorKind::Timeout {
        "timeout"
    } else {
        "connection error"
    }
}

/// Sleeps `d`, waking early when the call is cancelled.
fn sleep_unless_cancelled(d: Duration, options: &CallOptions) {
    let Some(flag) = &options.cancel else {
        std::thread::sleep(d);
        return;
    };
    let end = Instant::now() + d;
    while !flag.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The read-only outbox view shared by the C ABI and the tool: entries as
/// JSON without bodies or answers (they may hold personal data).
pub mod view {
    use super::{Attempt, OutboxEntry, OutboxQuery, OutboxState};
    use crate::error::{Error, ErrorKind, Result};
    use serde_json::{Value, json};

    /// `pending`, `succeeded` or `failed`.
    pub fn state_name(s: OutboxState) -> &'static str {
        match s {
            OutboxState::Pending => "pending",
            OutboxState::Succeeded => "succeeded",
            OutboxState::Failed => "failed",
        }
    }

    /// One entry as JSON: ids, kind, state, counts, times (Unix ms), lease;
    /// never the body or the stored answer. With `attempts`, each attempt's
    /// number, start, outcome and HTTP status.
    pub fn entry_json(e: &OutboxEntry, attempts: Option<&[Attempt]>) -> Value {
        let mut v = json!({
            "id": e.id, "kind": e.kind, "method": e.method, "target": e.target,
            "state": state_name(e.state), "attempts": e.attempts, "last_status": e.last_status,
            "last_error": e.last_error, "created_ms": e.created_ms, "updated_ms": e.updated_ms,
            "body_bytes": e.body.len(), "lease_owner": e.lease_owner, "lease_until_ms": e.lease_until_ms,
        });
        if let Some(list) = attempts {
            v["attempt_log"] = list
                .iter()
                .map(|a| json!({"number": a.number, "started_ms": a.started_ms, "outcome": a.outcome, "status": a.status}))
                .collect();
        }
        v
    }

    /// Parses `{"state","kind","created_before_ms","after_id","limit"}` (every
    /// member optional); errors name the member, never its value.
    pub fn query_from_json(json: &[u8]) -> Result<OutboxQuery> {
        let root = crate::validate::Path::root("query");
        let v = crate::json::parse_strict(if json.is_empty() { b"{}" } else { json }, &root)?;
        let Some(o) = v.as_object() else {
            return Err(Error::new(ErrorKind::InvalidJson, "query: must be a JSON object").with_field("query"));
        };
        let bad = |member: &str, rule: &str| {
            Error::new(ErrorKind::InvalidParameter, format!("query.{member}: {rule}"))
                .with_field(format!("query.{member}"))
        };
        let mut q = OutboxQuery::default();
        for (k, val) in o {
            match k.as_str() {
                "state" => {
                    q.state = Some(match val.as_str() {
                        Some("pending") => OutboxState::Pending,
                        Some("succeeded") => OutboxState::Succeeded,
                        Some("failed") => OutboxState::Failed,
                        _ => return Err(bad("state", "must be \"pending\", \"succeeded\" or \"failed\"")),
                    })
                }
                "kind" => q.kind = Some(val.as_str().ok_or_else(|| bad("kind", "must be a string"))?.to_string()),
                "after_id" => {
                    q.after_id = Some(
                        val.as_str()
                            .ok_or_else(|| bad("after_id", "must be a string"))?
                            .to_string(),
                    )
                }
                "created_before_ms" => {
                    q.created_before_ms = Some(
                        val.as_i64()
                            .ok_or_else(|| bad("created_before_ms", "must be an integer"))?,
                    )
                }
                "limit" => {
                    let n = val.as_u64().filter(|n| (1..=1000).contains(n));
                    q.limit = n.ok_or_else(|| bad("limit", "must be an integer from 1 to 1000"))? as usize;
                }
                other => {
                    let name = crate::json::member_name(other);
                    return Err(bad(
                        &name,
                        "is not a known member (state, kind, created_before_ms, after_id, limit)",
                    ));
                }
            }
        }
        Ok(q)
    }
}
