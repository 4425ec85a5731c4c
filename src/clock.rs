//! Where the library reads the time: every outbound timestamp (Alipay+
//! `Request-Time`, WeChat Pay `timestamp`), lease and attempt times. The
//! system clock by default; tests and the C ABI can pin or shift it.
//! Inbound verification takes `now` as an argument instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

/// A source of the current time in Unix milliseconds. Cheap to clone; clones
/// share a settable clock's setting.
#[derive(Clone, Default)]
pub struct Clock {
    source: Option<Arc<dyn Fn() -> i64 + Send + Sync>>,
    setting: Option<Arc<Setting>>,
}

/// What a [`Clock::settable`] clock reads: the system clock, a fixed time, or
/// the system clock shifted.
#[derive(Default)]
struct Setting {
    mode: AtomicU8,
    value_ms: AtomicI64,
}

/// How a settable clock tells the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSetting {
    /// The system clock.
    System,
    /// Always this Unix time, milliseconds.
    Fixed(i64),
    /// The system clock shifted by this many milliseconds.
    Offset(i64),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (&self.source, &self.setting) {
            (Some(_), _) => "Clock(custom)",
            (None, Some(_)) => "Clock(settable)",
            (None, None) => "Clock(system)",
        })
    }
}

fn system_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that asks `f` (Unix milliseconds).
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock {
            source: Some(Arc::new(f)),
            setting: None,
        }
    }

    /// The system clock shifted by `offset_ms` (e.g. to reproduce a skewed host).
    pub fn offset(offset_ms: i64) -> Self {
        Self::from_fn(move || system_ms().saturating_add(offset_ms))
    }

    /// The system clock until [`Clock::set`] pins or shifts it (for every
    /// clone at once): what the C ABI's test builds give each handle.
    pub fn settable() -> Self {
        Clock {
            source: None,
            setting: Some(Arc::default()),
        }
    }

    /// Changes a [`Clock::settable`] clock; `false` (and no change) for any other.
    pub fn set(&self, setting: ClockSetting) -> bool {
        let Some(s) = &self.setting else {
            return false;
        };
        let (mode, value) = match setting {
            ClockSetting::System => (0, 0),
            ClockSetting::Fixed(ms) => (1, ms),
            ClockSetting::Offset(ms) => (2, ms),
        };
        s.value_ms.store(value, Ordering::SeqCst);
        s.mode.store(mode, Ordering::SeqCst);
        true
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        if let Some(f) = &self.source {
            return f();
        }
        match &self.setting {
            Some(s) => {
                let value = s.value_ms.load(Ordering::SeqCst);
                match s.mode.load(Ordering::SeqCst) {
                    1 => value,
                    2 => system_ms().saturating_add(value),
                    _ => system_ms(),
                }
            }
            None => system_ms(),
        }
    }

    /// Now, Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_and_offset_clocks() {
        assert_eq!(Clock::from_fn(|| 1_700_000_000_123).now_ms(), 1_700_000_000_123);
        assert_eq!(Clock::from_fn(|| 1_700_000_000_999).now_secs(), 1_700_000_000);
        let skew = Clock::offset(-3_600_000).now_ms() - Clock::system().now_ms();
        assert!((-3_600_100..=-3_599_900).contains(&skew), "{skew}");
    }

    #[test]
    fn settable_clocks_are_shared_by_their_clones() {
        let c = Clock::settable();
        let clone = c.clone();
        assert!(c.set(ClockSetting::Fixed(1_700_000_000_000)));
        assert_eq!(clone.now_ms(), 1_700_000_000_000);
        assert!(clone.set(ClockSetting::Offset(-86_400_000)));
        let skew = c.now_ms() - Clock::system().now_ms();
        assert!((-86_400_100..=-86_399_900).contains(&skew), "{skew}");
        assert!(!Clock::system().set(ClockSetting::Fixed(0)));
        assert!(!Clock::from_fn(|| 5).set(ClockSetting::Fixed(0)));
    }
}
