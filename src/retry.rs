//! Retry policy for outbound calls whose outcome may be unknown: exponential
//! backoff with jitter, a bounded number of attempts and a total deadline.
//!
//! The caller keeps the idempotency key and the body; this module only says
//! whether another attempt may start and how long to wait before it.

use serde::Deserialize;
use std::time::{Duration, Instant};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, including the first (≥ 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles for each further attempt.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
    /// No attempt starts later than this after the first one.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// Alipay+ defaults (`alipayplus-mpp.md` §8.2): 5 attempts, 1 s base, 60 s cap.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The un-jittered delay before attempt `next` (2 = first retry).
    pub fn nominal_delay(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(30);
        self.base_delay.saturating_mul(1u32 << doublings).min(self.max_delay)
    }

    /// The delay before attempt `next`, with "equal jitter": half fixed, half
    /// random, so concurrent clients spread out but never retry instantly.
    pub fn jittered_delay(&self, next: u32) -> Duration {
        let nominal = self.nominal_delay(next);
        let half = nominal / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(crate::crypto::random_below(spread.saturating_add(1)))
    }
}

/// The members of the `retry` object of a JSON configuration.
pub(crate) static RETRY_SHAPE: [crate::json::Member; 4] = {
    use crate::json::{Member, Shape};
    [
        Member::optional("max_attempts", Shape::U32),
        Member::optional("base_delay_ms", Shape::U64),
        Member::optional("max_delay_ms", Shape::U64),
        Member::optional("deadline_ms", Shape::U64),
    ]
};

/// The `retry` member of a JSON configuration; absent members keep the defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverrides {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    deadline_ms: Option<u64>,
}

impl RetryOverrides {
    /// Applies the members that are present.
    pub fn apply(self, policy: &mut RetryPolicy) {
        policy.max_attempts = self.max_attempts.unwrap_or(policy.max_attempts);
        policy.base_delay = self
            .base_delay_ms
            .map(Duration::from_millis)
            .unwrap_or(policy.base_delay);
        policy.max_delay = self.max_delay_ms.map(Duration::from_millis).unwrap_or(policy.max_delay);
        policy.deadline = self.deadline_ms.map(Duration::from_millis).unwrap_or(policy.deadline);
    }
}

/// Tracks one call's attempts against a [`RetryPolicy`].
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    started: Instant,
    made: u32,
}

impl Attempts {
    /// Starts counting now.
    pub fn new(policy: RetryPolicy) -> Self {
        Attempts {
            policy,
            started: Instant::now(),
            made: 0,
        }
    }

    /// Records that an attempt is being made.
    pub fn record(&mut self) {
        self.made += 1;
    }

    /// Attempts made so far in this call.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// The delay to wait before the next attempt, or `None` when the attempt
    /// budget or the deadline (including that wait) is spent.
    pub fn next_delay(&self) -> Option<Duration> {
        if self.made >= self.policy.max_attempts.max(1) {
            return None;
        }
        let delay = self.policy.jittered_delay(self.made + 1);
        if self.started.elapsed() + delay > self.policy.deadline {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (2..=9).map(|n| p.nominal_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(400),
            ..Default::default()
        };
        for _ in 0..200 {
            let d = p.jittered_delay(3); // nominal 800 ms
            assert!(
                d >= Duration::from_millis(400) && d <= Duration::from_millis(800),
                "{d:?}"
            );
        }
    }

    #[test]
    fn json_overrides_change_only_what_they_name() {
        let mut p = RetryPolicy::default();
        let o: RetryOverrides = serde_json::from_str(r#"{"max_attempts":2,"deadline_ms":500}"#).unwrap();
        o.apply(&mut p);
        assert_eq!((p.max_attempts, p.deadline), (2, Duration::from_millis(500)));
        assert_eq!(p.base_delay, RetryPolicy::default().base_delay);
        assert!(
            serde_json::from_str::<RetryOverrides>(r#"{"attempts":2}"#).is_err(),
            "unknown members are refused"
        );
    }

    #[test]
    fn attempts_are_bounded_by_count() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
            ..Default::default()
        };
        let mut a = Attempts::new(p);
        a.record();
        assert!(a.next_delay().is_some());
        a.record();
        assert!(a.next_delay().is_some());
        a.record();
        assert_eq!(a.next_delay(), None);
        assert_eq!(a.made(), 3);
    }

    #[test]
    fn attempts_are_bounded_by_deadline() {
        let p = RetryPolicy {
            max_attempts: 100,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(1),
        };
        let mut a = Attempts::new(p);
        a.record();
        assert_eq!(a.next_delay(), None, "a 5-10 s wait would pass the 1 s deadline");
    }
}
