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
//! [`Delivery::reconcile`]: a platform with a read-back (WeChat Pay reads the
//! card back) completes the entry when the read-back shows the request
//! applied, and allows a re-send only when it shows it was not. An entry this
//! call did not create itself (a repeated call, a resume after a restart, a
//! lease taken over from a crashed owner) starts with a reconcile too,
//! whatever its recorded attempts say: a crash between sending and recording
//! leaves no record, so the rule cannot depend on one.

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
    /// call did not create: finds out whether the request took effect.
    fn reconcile(&self, entry: &OutboxEntry) -> Reconciled;

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
        let (now, lease_ms) = self.lease_request(Duration::ZERO);
        let owner = self.call_owner();
        let request = LeaseRequest {
            owner: &owner,
            now_ms: now,
            lease_ms,
        };
        match self
            .store
            .outbox_insert(&entry, request)
            .map_err(self.store_error("outbox_insert"))?
        {
            Inserted::New(stored) => self.run(stored, true, delivery, options),
            Inserted::Existing(stored) => {
                if stored.fingerprint != entry.fingerprint || stored.kind != entry.kind {
                    return Err(Error::new(
                        ErrorKind::IdempotencyConflict,
                        format!(
                            "{key_field}: this key was already used for a different request; \
                             resend the original request or use a new key"
                        ),
                    )
                    .with_field(key_field));
                }
                self.deliver_as(&owner, &stored.id, delivery, options)
            }
        }
    }

    /// Delivers the existing entry `id`: replays a final answer, waits (up to
    /// the deadline) while another caller holds the lease, otherwise takes the
    /// lease and runs it, starting with a reconcile.
    pub fn deliver(&self, id: &str, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        self.deliver_as(&self.call_owner(), id, delivery, options)
    }

    fn deliver_as(&self, owner: &str, id: &str, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        let started = Instant::now();
        let deadline = options.deadline.unwrap_or(self.policy.deadline);
        // Until when another owner's lease ran, as last seen: acquiring the entry
        // after that moment takes an expired lease over (a release is no takeover).
        let mut foreign_lease_until = self
            .store
            .outbox_get(id)
            .map_err(self.store_error("outbox_get"))?
            .filter(|e| !e.lease_owner.is_empty() && e.lease_owner != owner)
            .map(|e| e.lease_until_ms);
        loop {
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
                    return Err(
                        Error::new(ErrorKind::InvalidParameter, "outbox: no entry with this id").with_field("id")
                    );
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
                    return Ok(Outcome { entry, reference: None });
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
                    return self.run(e, false, delivery, options);
                }
                Acquired::Busy(e) => {
                    foreign_lease_until = Some(e.lease_until_ms);
                    if started.elapsed() + BUSY_POLL > deadline || options.cancelled() {
                        return Err(unknown(
                            &e,
                            true,
                            "another caller is delivering this request right now; \
                             call again later with the same key to get its outcome",
                            None,
                        ));
                    }
                    std::thread::sleep(BUSY_POLL);
                }
            }
        }
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

    fn run_with(
        &self,
        entry: OutboxEntry,
        fresh: bool,
        stored: bool,
        delivery: &dyn Delivery,
        options: &CallOptions,
    ) -> Result<Outcome> {
        let mut policy = self.policy;
        if let Some(d) = options.deadline {
            policy.deadline = d;
        }
        let mut run = Run {
            engine: self,
            entry,
            stored,
            budget: Attempts::new(policy),
            last_status: 0,
        };
        let result = run.steps(fresh, delivery, options);
        if stored && result.is_err() {
            // Leave the entry pending and free at once for the next call or resume.
            let _ = self.store.outbox_release(&run.entry.id, run.entry.lease_token);
        }
        result
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

impl Run<'_> {
    fn steps(&mut self, fresh: bool, delivery: &dyn Delivery, options: &CallOptions) -> Result<Outcome> {
        let mut reconcile = !fresh;
        let mut after_connection_failure = false;
        loop {
            let started = self.engine.clock.now_ms();
            let timer = Instant::now();
            let reconciled = if reconcile { self.reconcile_step(delivery) } else { None };
            let read_back = reconciled.is_some();
            let (step, outcome, status) = match reconciled {
                Some(r) => r,
                None => {
                    let ctx = AttemptContext {
                        now_ms: started,
                        after_connection_failure,
                    };
                    self.send_step(delivery, &ctx)
                }
            };
            self.budget.record();
            if status != 0 {
                self.last_status = status;
            }
            after_connection_failure = outcome.starts_with(NOT_SENT);
            let delay = match &step {
                Step::Again { .. } => self.budget.next_delay(),
                Step::Done(..) => None,
            };
            let last_error = matches!(step, Step::Again { .. }).then_some(outcome.as_str());
            self.observe_attempt(&step, &outcome, read_back, status, timer, delay);
            self.record(started, &outcome, status, last_error, delay)?;
            match step {
                Step::Done(state, result, reference) => return self.finish(state, result, reference),
                Step::Again {
                    why,
                    remote,
                    reconcile: next,
                } => {
                    reconcile = next;
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

    fn send_step(&mut self, delivery: &dyn Delivery, ctx: &AttemptContext) -> (Step, String, u16) {
        let again = |why: String, reconcile: bool| {
            (
                Step::Again {
                    why: why.clone(),
                    remote: None,
                    reconcile,
                },
                why,
                0,
            )
        };
        let out = match delivery.sign(&self.entry, ctx) {
            Ok(o) => o,
            Err(e) => return again(format!("signing failed: {}", e.message()), false),
        };
        match self
            .engine
            .transport
            .exchange(&out.url, &out.method, &out.headers, &out.body)
        {
            Exchange::Answered(resp) => {
                let status = resp.status;
                match delivery.classify(&self.entry, &out, resp) {
                    Verdict::Success {
                        result,
                        reference,
                        note,
                    } => (Step::Done(OutboxState::Succeeded, result, reference), note, status),
                    Verdict::Failed { result, note, .. } => {
                        (Step::Done(OutboxState::Failed, result, None), note, status)
                    }
                    Verdict::Retry { why, remote, ambiguous } => (
                        Step::Again {
                            why: why.clone(),
                            remote,
                            reconcile: ambiguous,
                        },
                        why,
                        status,
                    ),
                }
            }
            Exchange::NotSent(e) => again(format!("{NOT_SENT}{}", transport_reason(&e)), false),
            Exchange::Lost(e) => again(format!("answer lost: {}", transport_reason(&e)), true),
        }
    }

    /// `None` when the reconcile says to send now (the send is the step).
    fn reconcile_step(&mut self, delivery: &dyn Delivery) -> Option<(Step, String, u16)> {
        match delivery.reconcile(&self.entry) {
            Reconciled::Applied { result, outcome } => Some((
                Step::Done(OutboxState::Succeeded, result, None),
                format!("read-back: {outcome}"),
                0,
            )),
            Reconciled::Send => None,
            Reconciled::Unknown { why, status } => {
                let why = format!("read-back failed: {why}");
                Some((
                    Step::Again {
                        why: why.clone(),
                        remote: None,
                        reconcile: true,
                    },
                    why,
                    status,
                ))
            }
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
