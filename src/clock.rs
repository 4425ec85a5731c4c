//! Where the library reads the time: every outbound timestamp (Alipay+
//! `Request-Time`, WeChat Pay `timestamp`), lease and attempt times. The
//! system clock by default; tests and the C ABI can pin or shift it.
//! Inbound verification takes `now` as an argument instead.

use std::sync::Arc;

/// A source of the current time in Unix milliseconds. Cheap to clone.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> i64 + Send + Sync>>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// A clock that asks `f` (Unix milliseconds).
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Some(Arc::new(f)))
    }

    /// The system clock shifted by `offset_ms` (e.g. to reproduce a skewed host).
    pub fn offset(offset_ms: i64) -> Self {
        Self::from_fn(move || chrono::Utc::now().timestamp_millis().saturating_add(offset_ms))
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(f) => f(),
            None => chrono::Utc::now().timestamp_millis(),
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
}
