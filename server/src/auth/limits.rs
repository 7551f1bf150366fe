//! Per-token rate limits (token buckets for the API, sliding windows for
//! `/mcp`) and the registry of a token's in-flight long work (queries, MCP
//! calls, live streams), so revocation can end it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

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

    /// Takes `n` series from `id`'s allowance of `limit` this hour, in
    /// one step (one lock), or says how many are left and takes none.
    pub fn take(&self, id: &str, n: u64, limit: u64, now: i64) -> Result<(), u64> {
        let hour = now.div_euclid(3600);
        // A poisoned lock (a panic elsewhere) refuses rather than allows.
        let Ok(mut used) = self.used.lock() else { return Err(0) };
        let e = used.entry(id.to_string()).or_insert((hour, 0));
        if e.0 != hour {
            *e = (hour, 0);
        }
        let left = limit.saturating_sub(e.1);
        if n > left {
            return Err(left);
        }
        e.1 += n;
        Ok(())
    }

    /// Seconds until the hour's allowance refills.
    pub fn refill_in(now: i64) -> u64 {
        (3600 - now.rem_euclid(3600)) as u64
    }

    /// `id`'s allowance of `limit` this hour, for [`strata_engine::Engine::ingest_with`].
    pub fn allowance<'a>(&'a self, id: &'a str, limit: u64, now: i64) -> TokenAllowance<'a> {
        TokenAllowance { budget: self, id, limit, now }
    }
}

/// One token's hourly allowance of new series, taken by the engine under
/// its ingest order lock (see [`strata_engine::SeriesAllowance`]).
pub struct TokenAllowance<'a> {
    budget: &'a SeriesBudget,
    id: &'a str,
    limit: u64,
    now: i64,
}

impl strata_engine::SeriesAllowance for TokenAllowance<'_> {
    fn take(&self, new: u64) -> Result<(), u64> {
        self.budget.take(self.id, new, self.limit, self.now)
    }
}

/// Sliding-window limits keyed by token id: at most `n` requests in any
/// window of its length, for each of its windows (MCP: 10 per second and
/// 120 per minute). Exact, unlike a refilling bucket: the 121st request
/// within a minute is refused. Memory per token is bounded by the largest
/// `n` (older entries are dropped as they leave the longest window).
#[derive(Debug)]
pub struct WindowLimiter {
    windows: Vec<(u32, Duration)>,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl WindowLimiter {
    pub fn new(windows: &[(u32, Duration)]) -> WindowLimiter {
        WindowLimiter { windows: windows.to_vec(), seen: Mutex::new(HashMap::new()) }
    }

    /// MCP's limits: 10 requests per second and 120 per minute per token.
    pub fn mcp() -> WindowLimiter {
        WindowLimiter::new(&[(10, Duration::from_secs(1)), (120, Duration::from_secs(60))])
    }

    /// The windows, for `meta.whoami`.
    pub fn windows(&self) -> &[(u32, Duration)] {
        &self.windows
    }

    /// Counts one request of `id`; `Err(seconds)` (rounded up) when it is over
    /// a limit: the request is refused and not counted.
    pub fn check(&self, id: &str) -> Result<(), u64> {
        self.check_at(id, Instant::now())
    }

    fn check_at(&self, id: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut seen) = self.seen.lock() else { return Ok(()) };
        let longest = self.windows.iter().map(|w| w.1).max().unwrap_or_default();
        let q = seen.entry(id.to_string()).or_default();
        while q.front().is_some_and(|&t| now.duration_since(t) >= longest) {
            q.pop_front();
        }
        for &(n, len) in &self.windows {
            let inside = q.iter().rev().take_while(|&&t| now.duration_since(t) < len).count();
            if inside >= n as usize {
                // The request that frees a slot is the n-th newest inside.
                let oldest = q[q.len() - n as usize];
                let wait = len.saturating_sub(now.duration_since(oldest));
                return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
            }
        }
        q.push_back(now);
        Ok(())
    }
}

/// Cancellation flags of each token's running queries and streams.
///
/// A request registers after it authenticated (and after it waited for a
/// query slot), so it may register after its token was revoked: the
/// revoked ids are kept, and such a request gets a flag already set.
/// Revocation is final, so the set grows only with revoked tokens.
#[derive(Debug, Default)]
pub struct Inflight {
    flags: Mutex<Flags>,
}

#[derive(Debug, Default)]
struct Flags {
    running: HashMap<String, Vec<Weak<AtomicBool>>>,
    revoked: std::collections::HashSet<String>,
}

impl Inflight {
    /// A flag that turns true when `token_id` is revoked (true at once if
    /// it already is).
    pub fn register(&self, token_id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut f) = self.flags.lock() {
            if f.revoked.contains(token_id) {
                flag.store(true, Ordering::Relaxed);
                return flag;
            }
            let list = f.running.entry(token_id.to_string()).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&flag));
        }
        flag
    }

    /// Ends everything `token_id` has running, and whatever registers for
    /// it later.
    pub fn cancel(&self, token_id: &str) -> usize {
        let Ok(mut f) = self.flags.lock() else { return 0 };
        f.revoked.insert(token_id.to_string());
        let list = f.running.remove(token_id).unwrap_or_default();
        list.iter().filter_map(Weak::upgrade).map(|flag| flag.store(true, Ordering::Relaxed)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_token_ends_what_runs_and_what_registers_later() {
        let f = Inflight::default();
        let (a, other) = (f.register("a"), f.register("b"));
        assert_eq!(f.cancel("a"), 1);
        assert!(a.load(Ordering::Relaxed) && !other.load(Ordering::Relaxed));
        assert!(f.register("a").load(Ordering::Relaxed), "registered after the revocation: ended at once");
        assert!(!f.register("b").load(Ordering::Relaxed));
    }

    #[test]
    fn series_budget_refills_each_hour() {
        let b = SeriesBudget::default();
        let t = 7200 + 100;
        assert_eq!(b.remaining("a", 10, t), 10);
        assert_eq!(b.take("a", 7, 10, t), Ok(()));
        assert_eq!(b.remaining("a", 10, t + 60), 3);
        assert_eq!(b.take("a", 4, 10, t + 60), Err(3), "past the limit: says what is left");
        assert_eq!(b.remaining("a", 10, t + 60), 3, "and takes none");
        assert_eq!(b.take("a", 3, 10, t + 60), Ok(()));
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
    fn windows_are_exact() {
        let w = WindowLimiter::new(&[(3, Duration::from_secs(1)), (5, Duration::from_secs(60))]);
        let t0 = Instant::now();
        assert!((0..3).all(|_| w.check_at("a", t0).is_ok()));
        assert_eq!(w.check_at("a", t0), Err(1), "4th in a second");
        assert!(w.check_at("b", t0).is_ok(), "other tokens are unaffected");
        let t1 = t0 + Duration::from_millis(1100);
        assert!((0..2).all(|_| w.check_at("a", t1).is_ok()));
        assert_eq!(w.check_at("a", t1), Err(59), "6th in a minute");
        assert!(w.check_at("a", t0 + Duration::from_secs(61)).is_ok());
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
