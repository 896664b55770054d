//! Retry policy, like the AWS SDKs' `standard` mode.
//!
//! Guarantees: an attempt is retried only when its failure is transient — a throttling error
//! code, an HTTP 5xx or 429, a known transient error code, a timeout or a connection error —
//! and only while fewer than `max_attempts` attempts were made. The delay before retry `n`
//! (1-based) is drawn uniformly from `[0, min(max_backoff, base * 2^(n-1))]` ("full jitter").
//! A [`RetryQuota`] per (account, region, service) caps retries during an outage the way the
//! SDKs' standard mode does: 500 tokens, a retry costs 5 (10 after a timeout or connection
//! error), a success returns 1; with the quota spent, failures are returned at once.

use std::time::Duration;

use rand::Rng;

use orgop_vocab::aws::{ErrorClass, class_of_answer};

/// What kind of failure an attempt ended with, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The service throttled the request.
    Throttling,
    /// A transient service-side error (5xx, transient code).
    Transient,
    /// The connection failed or timed out.
    Transport,
    /// Anything else: not retried.
    Permanent,
}

/// Classifies an error answered by a service (the codes are `orgop_vocab::aws`'s table).
pub fn classify(code: &str, status: u16) -> FailureKind {
    match class_of_answer(code, status) {
        Some(ErrorClass::Throttling) => FailureKind::Throttling,
        Some(ErrorClass::Transient) => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

/// How many times and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (the SDKs' standard mode uses 3; orgop defaults to
    /// 5, with a 500 ms base, since a fan-out over many accounts meets more throttling).
    pub max_attempts: u32,
    /// The base of the exponential backoff.
    pub base_delay: Duration,
    /// The cap on any single delay (standard mode: 20 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the delay before retry `retry` (1 = the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }

    /// A delay drawn with full jitter for retry `retry` (1 = the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let f: f64 = rand::rng().random_range(0.0..=1.0);
        ceiling.mul_f64(f)
    }

    /// Whether a failure of this kind after `attempts` attempts should be retried.
    pub fn should_retry(&self, kind: FailureKind, attempts: u32) -> bool {
        kind != FailureKind::Permanent && attempts < self.max_attempts
    }
}

/// The SDKs' retry quota: a bucket of tokens that retries spend and successes refill.
#[derive(Debug)]
pub struct RetryQuota {
    tokens: std::sync::Mutex<u32>,
    capacity: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        RetryQuota::new(500)
    }
}

impl RetryQuota {
    /// Cost of a retry after a service error.
    pub const RETRY_COST: u32 = 5;
    /// Cost of a retry after a timeout or connection error.
    pub const TIMEOUT_COST: u32 = 10;

    /// A full quota of `capacity` tokens.
    pub fn new(capacity: u32) -> RetryQuota {
        RetryQuota {
            tokens: std::sync::Mutex::new(capacity),
            capacity,
        }
    }

    /// Takes the cost of retrying after a failure of `kind`; false when the quota is spent.
    pub fn try_acquire(&self, kind: FailureKind) -> bool {
        let cost = if kind == FailureKind::Transport {
            Self::TIMEOUT_COST
        } else {
            Self::RETRY_COST
        };
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if *t >= cost {
            *t -= cost;
            true
        } else {
            false
        }
    }

    /// A request succeeded: give back one token.
    pub fn on_success(&self) {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *t = (*t + 1).min(self.capacity);
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify("ThrottlingException", 400),
            FailureKind::Throttling
        );
        assert_eq!(
            classify("RequestLimitExceeded", 503),
            FailureKind::Throttling
        );
        assert_eq!(classify("SlowDown", 503), FailureKind::Throttling);
        assert_eq!(classify("Whatever", 429), FailureKind::Throttling);
        assert_eq!(classify("503", 503), FailureKind::Transient);
        assert_eq!(classify("InternalError", 500), FailureKind::Transient);
        assert_eq!(
            classify("InvalidVolume.NotFound", 400),
            FailureKind::Permanent
        );
        assert_eq!(classify("AccessDenied", 403), FailureKind::Permanent);
    }

    #[test]
    fn the_retry_quota_runs_out_and_refills() {
        let q = RetryQuota::new(20);
        assert!(q.try_acquire(FailureKind::Transport));
        assert!(q.try_acquire(FailureKind::Throttling));
        assert!(q.try_acquire(FailureKind::Transient));
        assert!(!q.try_acquire(FailureKind::Transient), "0 tokens left");
        for _ in 0..100 {
            q.on_success();
        }
        assert_eq!(q.available(), 20);
    }

    #[test]
    fn full_jitter_stays_under_an_exponential_capped_ceiling() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(9), Duration::from_millis(1000));
        let draws: Vec<Duration> = (0..200).map(|_| p.backoff(3)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
        // Jitter: the draws are spread, not all the same.
        assert!(draws.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(200)));
        assert!(p.should_retry(FailureKind::Transport, 9));
        assert!(!p.should_retry(FailureKind::Transport, 10));
        assert!(!p.should_retry(FailureKind::Permanent, 1));
    }
}
