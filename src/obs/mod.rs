//! What the library tells operators: structured log events and cumulative
//! counters, both fed from the same instrumentation points (one call per
//! thing that happened: an inbound answer, an outbound attempt, a retry, a
//! lease takeover, a certificate refresh, a store error).
//!
//! # Events
//!
//! Every event goes to two places, synchronously on the thread that caused it
//! (no background thread, no queue):
//!
//! * the [`log`] facade (`log` crate, target `cardbridge::…`, the fields as
//!   structured key/values), so a Rust host sees them through whatever logger
//!   it installed (`env_logger`, `tracing-log`, …);
//! * the process-wide hook set with [`set_hook`]: what the C ABI
//!   (`cardbridge_set_log_callback`), Python (`logging`) and C# use.
//!
//! **Redaction by construction**: an event's message is a `&'static str`
//! and its fields are [`Value`]s — static labels, numbers, booleans, or
//! [`Id`]s (correlation identifiers such as a requestId or an outbox id,
//! reduced to a safe character set and length). There is no way to put a
//! body, a key, a signature, a decrypted field or an error message (which
//! may quote the platform) into an event.
//!
//! # Counters
//!
//! [`Metrics`] holds one integration's counters (an `AlipayPlus` or a
//! `WechatPay` handle); [`Metrics::snapshot`] renders them as JSON. Names are
//! listed in the README ("Metrics").

mod metrics;

pub use metrics::Metrics;

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// Severity, numbered like the `log` crate (and `CARDBRIDGE_LOG_*` in C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// Something failed that needs an operator (a store error).
    Error = 1,
    /// Not final yet or needs attention: a retry, an outcome left pending,
    /// a lease taken over, a refused inbound call.
    Warn = 2,
    /// Normal operation: an inbound answer, an outbound attempt's outcome,
    /// a certificate refresh.
    Info = 3,
    /// Detail.
    Debug = 4,
    /// Finest detail.
    Trace = 5,
}

impl Level {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
    /// From its number (1 = error … 5 = trace); `None` otherwise.
    pub fn from_u32(n: u32) -> Option<Level> {
        Some(match n {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            5 => Level::Trace,
            _ => return None,
        })
    }
    fn to_log(self) -> log::Level {
        match self {
            Level::Error => log::Level::Error,
            Level::Warn => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
            Level::Trace => log::Level::Trace,
        }
    }
}

/// A correlation identifier (requestId, outbox id, notification id, result
/// code): at most [`Id::MAX`] characters from `A–Z a–z 0–9 - _ . : / # % @`;
/// anything else is replaced by `?` and a longer value is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(String);

impl Id {
    /// Longest identifier kept, in characters.
    pub const MAX: usize = 128;

    /// `s` reduced to the identifier alphabet.
    pub fn new(s: &str) -> Id {
        Id(s.chars()
            .take(Self::MAX)
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.:/#%@".contains(c) {
                    c
                } else {
                    '?'
                }
            })
            .collect())
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A field value: never free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A fixed label chosen by the library (`"S"`, `"retryable"`, …).
    Label(&'static str),
    /// A correlation identifier.
    Id(Id),
    /// A number (attempt, HTTP status, milliseconds, count).
    Int(i64),
    /// A flag.
    Bool(bool),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Label(s) => f.write_str(s),
            Value::Id(id) => f.write_str(id.as_str()),
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One key/value field of an event.
pub type Field = (&'static str, Value);

/// One structured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// Severity.
    pub level: Level,
    /// Where it comes from: `cardbridge::inbound`, `cardbridge::outbox`,
    /// `cardbridge::callback`, `cardbridge::certificates`, `cardbridge::store`.
    pub target: &'static str,
    /// What happened, fixed text.
    pub message: &'static str,
    /// Detail: `api`, `request_id`, `out_id`, `attempt`, `outcome`,
    /// `http_status`, `latency_ms`, … (README "Logging").
    pub fields: &'a [Field],
}

impl Event<'_> {
    /// The fields as one JSON object (numbers and booleans typed).
    pub fn fields_json(&self) -> serde_json::Value {
        self.fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Label(s) => serde_json::Value::from(*s),
                    Value::Id(id) => serde_json::Value::from(id.as_str()),
                    Value::Int(n) => serde_json::Value::from(*n),
                    Value::Bool(b) => serde_json::Value::from(*b),
                };
                ((*k).to_string(), v)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// A hook receiving every event at or above its level.
pub type Hook = dyn Fn(&Event<'_>) + Send + Sync;

struct Installed {
    min_level: Level,
    hook: Box<Hook>,
}

/// The hook, if any; `HOOK_LEVEL` mirrors its level (0: none) so that
/// emitting nobody listens to costs one atomic load.
static HOOK: RwLock<Option<Arc<Installed>>> = RwLock::new(None);
static HOOK_LEVEL: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// Set while this thread runs the hook: events it causes are dropped
    /// (a hook that calls back into the library cannot recurse).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Installs `hook` for every event at `min_level` or more severe (`Info`:
/// errors, warnings and information), replacing the previous one; `None`
/// removes it. Process-wide, thread-safe, callable at any time.
///
/// When this returns, the previous hook is no longer running on any other
/// thread and will not be called again (so whatever it captured may be
/// released) — except when called from inside the previous hook itself.
/// A panic inside a hook is caught and the event dropped.
pub fn set_hook(min_level: Level, hook: Option<Box<Hook>>) {
    let new = hook.map(|hook| Arc::new(Installed { min_level, hook }));
    let level = new.as_ref().map_or(0, |h| h.min_level as u8);
    let old = {
        let mut slot = HOOK.write().unwrap_or_else(|p| p.into_inner());
        HOOK_LEVEL.store(level, Ordering::SeqCst);
        std::mem::replace(&mut *slot, new)
    };
    if let Some(old) = old {
        if !IN_HOOK.with(Cell::get) {
            // Calls in progress hold a clone; wait until they are done.
            while Arc::strong_count(&old) > 1 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// Whether anybody listens at `level` for `target`.
pub fn enabled(level: Level, target: &'static str) -> bool {
    level as u8 <= HOOK_LEVEL.load(Ordering::Relaxed)
        || log::log_enabled!(target: target, level.to_log()) && !IN_HOOK.with(Cell::get)
}

/// Sends `event` to the `log` facade and the hook.
pub fn emit(event: &Event<'_>) {
    if IN_HOOK.with(Cell::get) {
        return;
    }
    let lvl = event.level.to_log();
    if log::log_enabled!(target: event.target, lvl) {
        let kv: &dyn log::kv::Source = &Fields(event.fields);
        log::logger().log(
            &log::Record::builder()
                .level(lvl)
                .target(event.target)
                .args(format_args!("{}", event.message))
                .key_values(kv)
                .build(),
        );
    }
    if event.level as u8 > HOOK_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let installed = HOOK.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(h) = installed.filter(|h| event.level <= h.min_level) {
        IN_HOOK.with(|f| f.set(true));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (h.hook)(event)));
        IN_HOOK.with(|f| f.set(false));
    }
}

/// Emits an event built only when somebody listens.
pub(crate) fn event(level: Level, target: &'static str, message: &'static str, fields: impl FnOnce() -> Vec<Field>) {
    if enabled(level, target) {
        emit(&Event {
            level,
            target,
            message,
            fields: &fields(),
        });
    }
}

struct Fields<'a>(&'a [Field]);

impl log::kv::Source for Fields<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn log::kv::VisitSource<'kvs>) -> Result<(), log::kv::Error> {
        for (k, v) in self.0 {
            let value = match v {
                Value::Label(s) => log::kv::Value::from(*s),
                Value::Id(id) => log::kv::Value::from(id.as_str()),
                Value::Int(n) => log::kv::Value::from(*n),
                Value::Bool(b) => log::kv::Value::from(*b),
            };
            visitor.visit_pair(log::kv::Key::from_str(k), value)?;
        }
        Ok(())
    }
}

/// Milliseconds since `since`, for `latency_ms`.
pub(crate) fn elapsed_ms(since: std::time::Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// An error's kind as a field value (never its message).
pub(crate) fn error_kind(e: &crate::Error) -> Value {
    Value::Label(e.kind().name())
}

/// A store operation failed: counted and logged at `ERROR` (the kind only).
pub(crate) fn store_error(metrics: &Metrics, operation: &'static str, e: &crate::Error) {
    metrics.store_error();
    event(Level::Error, "cardbridge::store", "store operation failed", || {
        vec![("operation", Value::Label(operation)), ("error", error_kind(e))]
    });
}
