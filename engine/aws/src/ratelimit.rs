//! Client-side rate limiting: token buckets that slow down when the service throttles.
//!
//! Guarantees: over any window, a [`TokenBucket`] lets through at most `burst + rate × window`
//! requests, where `rate` is its current rate; each throttling response multiplies the
//! current rate by 0.7 (never below `min_rate`), and each success adds back 2 % of the
//! configured rate (never above it), so a throttled caller slows down and recovers gradually.
//! [`RateLimiters`] keeps one bucket per (account, region, service) and one shared bucket for
//! `sts:AssumeRole` across the whole run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Configuration of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Steady rate, requests per second.
    pub rate: f64,
    /// How many requests may go at once after idling.
    pub burst: f64,
    /// The floor the rate never drops under when throttled.
    pub min_rate: f64,
}

impl RateConfig {
    /// A bucket of `rate` per second with a burst of `burst`.
    pub fn new(rate: f64, burst: f64) -> RateConfig {
        RateConfig {
            rate,
            burst: burst.max(1.0),
            min_rate: (rate / 20.0).max(0.1),
        }
    }
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    rate: f64,
    last: Instant,
}

/// A token bucket; `acquire` waits until a token is available.
#[derive(Debug)]
pub struct TokenBucket {
    config: RateConfig,
    state: Mutex<BucketState>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(config: RateConfig) -> TokenBucket {
        TokenBucket {
            config,
            state: Mutex::new(BucketState {
                tokens: config.burst,
                rate: config.rate,
                last: Instant::now(),
            }),
        }
    }

    /// The current rate (requests per second).
    pub fn current_rate(&self) -> f64 {
        self.lock().rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BucketState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one token, waiting for it if necessary. Tokens are reserved in order, so
    /// concurrent callers are spaced out rather than woken together.
    pub async fn acquire(&self) {
        let wait = {
            let mut s = self.lock();
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
            s.tokens = (s.tokens + elapsed * s.rate).min(self.config.burst);
            s.last = now;
            s.tokens -= 1.0;
            if s.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-s.tokens / s.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The service throttled us: slow down.
    pub fn on_throttle(&self) {
        let mut s = self.lock();
        s.rate = (s.rate * 0.7).max(self.config.min_rate);
    }

    /// A request succeeded: recover a little of the configured rate.
    pub fn on_success(&self) {
        let mut s = self.lock();
        s.rate = (s.rate + self.config.rate * 0.02).min(self.config.rate);
    }
}

/// The key of a per-target bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketKey {
    /// Account id (empty for the caller's own credentials when unknown).
    pub account: String,
    /// Region.
    pub region: String,
    /// botocore service name.
    pub service: String,
}

/// All the buckets of a client.
#[derive(Debug)]
pub struct RateLimiters {
    per_target: RateConfig,
    buckets: Mutex<HashMap<BucketKey, Arc<TokenBucket>>>,
    quotas: Mutex<HashMap<BucketKey, Arc<crate::retry::RetryQuota>>>,
    assume_role: Arc<TokenBucket>,
}

impl RateLimiters {
    /// Buckets of `per_target` for each (account, region, service) and one of `assume_role`
    /// for every `sts:AssumeRole` of the run.
    pub fn new(per_target: RateConfig, assume_role: RateConfig) -> RateLimiters {
        RateLimiters {
            per_target,
            buckets: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
            assume_role: Arc::new(TokenBucket::new(assume_role)),
        }
    }

    /// The bucket of one (account, region, service).
    pub fn bucket(&self, key: BucketKey) -> Arc<TokenBucket> {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.entry(key)
            .or_insert_with(|| Arc::new(TokenBucket::new(self.per_target)))
            .clone()
    }

    /// The retry quota of one (account, region, service).
    pub fn retry_quota(&self, key: BucketKey) -> Arc<crate::retry::RetryQuota> {
        let mut q = self.quotas.lock().unwrap_or_else(|e| e.into_inner());
        q.entry(key).or_default().clone()
    }

    /// The run-wide bucket for `sts:AssumeRole`.
    pub fn assume_role(&self) -> Arc<TokenBucket> {
        self.assume_role.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_held_to_the_configured_rate() {
        let bucket = TokenBucket::new(RateConfig::new(10.0, 5.0));
        let start = Instant::now();
        for _ in 0..25 {
            bucket.acquire().await;
        }
        // 5 go at once, the other 20 at 10/s: two seconds.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1990), "{took:?}");
        assert!(took <= Duration::from_millis(2100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_slows_down_and_success_recovers() {
        let bucket = TokenBucket::new(RateConfig::new(10.0, 1.0));
        bucket.on_throttle();
        bucket.on_throttle();
        assert!((bucket.current_rate() - 4.9).abs() < 1e-9);
        bucket.acquire().await;
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(1000));
        for _ in 0..100 {
            bucket.on_success();
        }
        assert_eq!(bucket.current_rate(), 10.0);
    }
}
