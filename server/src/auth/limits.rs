//! Per-token rate limits (token buckets) and the registry of a token's
//! in-flight long work, so revocation can end it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::store::RateLimit;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by token id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one request from `id`'s bucket; `Err(seconds)` says when to retry.
    pub fn check(&self, id: &str, limit: RateLimit) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        let now = Instant::now();
        let b = buckets.entry(id.to_string()).or_insert(Bucket { tokens: f64::from(limit.burst), last: now });
        let refill = now.duration_since(b.last).as_secs_f64() * limit.per_second;
        b.tokens = (b.tokens + refill).min(f64::from(limit.burst));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / limit.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// New series each token created in the current clock hour, against its
/// allowance. Checked per batch: two batches of one token racing each
/// other can together pass the allowance by one batch.
#[derive(Debug, Default)]
pub struct SeriesBudget {
    used: Mutex<HashMap<String, (i64, u64)>>,
}

impl SeriesBudget {
    /// How many more series `id` may create this hour under `limit`.
    pub fn remaining(&self, id: &str, limit: u64, now: i64) -> u64 {
        let hour = now.div_euclid(3600);
        let Ok(used) = self.used.lock() else { return limit };
        match used.get(id) {
            Some(&(h, n)) if h == hour => limit.saturating_sub(n),
            _ => limit,
        }
    }

    /// Records `n` series created by `id`.
    pub fn spend(&self, id: &str, n: u64, now: i64) {
        let hour = now.div_euclid(3600);
        if let Ok(mut used) = self.used.lock() {
            let e = used.entry(id.to_string()).or_insert((hour, 0));
            if e.0 != hour {
                *e = (hour, 0);
            }
            e.1 += n;
        }
    }

    /// Seconds until the hour's allowance refills.
    pub fn refill_in(now: i64) -> u64 {
        (3600 - now.rem_euclid(3600)) as u64
    }
}

/// Cancellation flags of each token's running queries and streams.
#[derive(Debug, Default)]
pub struct Inflight {
    flags: Mutex<HashMap<String, Vec<Weak<AtomicBool>>>>,
}

impl Inflight {
    /// A flag that turns true when `token_id` is revoked.
    pub fn register(&self, token_id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut f) = self.flags.lock() {
            let list = f.entry(token_id.to_string()).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&flag));
        }
        flag
    }

    /// Ends everything `token_id` has running.
    pub fn cancel(&self, token_id: &str) -> usize {
        let Ok(mut f) = self.flags.lock() else { return 0 };
        let list = f.remove(token_id).unwrap_or_default();
        list.iter().filter_map(Weak::upgrade).map(|flag| flag.store(true, Ordering::Relaxed)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_budget_refills_each_hour() {
        let b = SeriesBudget::default();
        let t = 7200 + 100;
        assert_eq!(b.remaining("a", 10, t), 10);
        b.spend("a", 7, t);
        assert_eq!(b.remaining("a", 10, t + 60), 3);
        assert_eq!(b.remaining("b", 10, t), 10);
        assert_eq!(b.remaining("a", 10, t + 3600), 10, "a new hour");
        assert_eq!(SeriesBudget::refill_in(t), 3500);
    }

    #[test]
    fn bucket_allows_burst_then_limits() {
        let r = RateLimiter::default();
        let lim = RateLimit { per_second: 1.0, burst: 3 };
        assert!((0..3).all(|_| r.check("a", lim).is_ok()));
        assert_eq!(r.check("a", lim), Err(1));
        assert!(r.check("b", lim).is_ok(), "other tokens are unaffected");
    }

    #[test]
    fn cancel_sets_live_flags() {
        let i = Inflight::default();
        let f = i.register("t");
        let g = i.register("u");
        assert_eq!(i.cancel("t"), 1);
        assert!(f.load(Ordering::Relaxed) && !g.load(Ordering::Relaxed));
    }
}
