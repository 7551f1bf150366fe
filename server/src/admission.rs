//! Admission control for queries: at most `running` at once, at most
//! `queued` more waiting up to `wait` for a slot; anyone past that gets a
//! 503 with `Retry-After` at once, so overload is a clear answer instead of
//! an ever longer queue (and the memory that queue would hold). Health
//! checks and ingest do not pass through here.
//!
//! Two classes share the slots. A heavy query (see [`Class::of`]) also
//! needs one of `heavy` permits (half the slots by default), taken before
//! its slot, so heavy queries can never hold every slot: a light query (a
//! dashboard panel, a metadata call) finds a free slot or waits only
//! behind other light ones. Heavy queries use every core for their scan,
//! so running fewer at once costs them little throughput.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata_engine::query::cost::QueryCost;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::ApiError;

/// A query reading more samples than this (at one per second, no rollups)
/// is heavy: about 15 ms of one core's scan at the speeds in
/// benches/RESULTS.md.
pub const HEAVY_SAMPLES: u64 = 10_000_000;
/// A query producing more values than this (metrics × points, before
/// grouping) is heavy: time groups and response rendering grow with it.
pub const HEAVY_CELLS: u64 = 100_000;

/// A query reading at most this many samples (at one per second, no
/// rollups) and producing at most [`INLINE_CELLS`] values runs on the
/// async worker that received it instead of a blocking thread. At the scan
/// speeds in benches/RESULTS.md it holds the worker for a fraction of a
/// millisecond, and the hand-off it saves (waking a blocking thread, then
/// the worker again) was 40 % of the server's CPU per request for a
/// one-series, 24 h panel. Worst case it waits for the store's read lock
/// behind one ingest batch (milliseconds, see `Engine`'s concurrency doc);
/// the runtime's other workers take over the waiting worker's queued tasks.
pub const INLINE_SAMPLES: u64 = 100_000;
/// See [`INLINE_SAMPLES`].
pub const INLINE_CELLS: u64 = 2_000;

/// Whether a query of `cost` runs inline on its async worker.
pub fn runs_inline(cost: &QueryCost) -> bool {
    cost.samples() <= INLINE_SAMPLES && cost.cells() <= INLINE_CELLS
}

/// Limits of [`Admission`].
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    pub running: usize,
    pub queued: usize,
    pub wait: Duration,
    /// Heavy queries running at once (`None`: half the slots); clamped to
    /// at least 1 and at most `running - 1`.
    pub heavy: Option<usize>,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // A waiting query is a parked future (its parsed request, no
        // buffers), and the wait bounds how long: a queue of a few dozen per
        // core lets a dashboard's burst of panels wait its turn instead of
        // getting 503s (bench-peer's 16 clients did, with 4 per core).
        AdmissionLimits { running: cores * 2, queued: cores * 32, wait: Duration::from_secs(2), heavy: None }
    }
}

/// How a query is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Light,
    Heavy,
}

impl Class {
    /// Heavy past [`HEAVY_SAMPLES`] samples or [`HEAVY_CELLS`] values.
    pub fn of(cost: &QueryCost) -> Class {
        if cost.samples() > HEAVY_SAMPLES || cost.cells() > HEAVY_CELLS {
            Class::Heavy
        } else {
            Class::Light
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    slots: Arc<Semaphore>,
    heavy: Arc<Semaphore>,
    waiting: AtomicUsize,
    refused: AtomicU64,
}

/// A query slot (and a heavy permit for a heavy query); freed when dropped.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit, #[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        let running = limits.running.max(1);
        // With one slot there is nothing to reserve: heavy ones take turns.
        let heavy = limits.heavy.unwrap_or(running / 2).clamp(1, running.saturating_sub(1).max(1));
        Admission {
            limits: AdmissionLimits { running, heavy: Some(heavy), ..limits },
            slots: Arc::new(Semaphore::new(running)),
            heavy: Arc::new(Semaphore::new(heavy)),
            waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// A slot, or 503 when all are busy and the queue is full (or stays
    /// busy for the whole wait). A heavy query first takes a heavy permit;
    /// both waits share the one deadline.
    pub async fn enter(&self, class: Class) -> Result<Slot, ApiError> {
        let until = Instant::now() + self.limits.wait;
        let heavy = match class {
            Class::Heavy => Some(self.take(&self.heavy, until).await?),
            Class::Light => None,
        };
        Ok(Slot(self.take(&self.slots, until).await?, heavy))
    }

    async fn take(&self, sem: &Arc<Semaphore>, until: Instant) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        // Counted out by the guard's drop, not after the await: the future
        // is dropped mid-wait when its client disconnects, and a count
        // released only on return would then leak (and shrink the queue).
        let queued = Queued::join(&self.waiting);
        if queued.ahead >= self.limits.queued {
            drop(queued);
            return Err(self.refuse());
        }
        let got = tokio::time::timeout_at(until, sem.clone().acquire_owned()).await;
        drop(queued);
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(self.refuse()),
        }
    }

    fn refuse(&self) -> ApiError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        ApiError::Overloaded { retry_after: 1 }
    }

    /// Queries holding a slot, heavy ones among them, waiting for a slot or
    /// permit, refused since start.
    pub fn stats(&self) -> AdmissionStats {
        AdmissionStats {
            busy: self.limits.running - self.slots.available_permits(),
            heavy_busy: self.heavy_slots() - self.heavy.available_permits(),
            waiting: self.waiting.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// Heavy queries that may run at once.
    pub fn heavy_slots(&self) -> usize {
        self.limits.heavy.unwrap_or(1)
    }
}

/// One place in the wait queue, counted in `waiting` while it lives.
struct Queued<'a> {
    waiting: &'a AtomicUsize,
    /// How many were waiting before this one joined.
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicUsize) -> Self {
        Queued { ahead: waiting.fetch_add(1, Ordering::AcqRel), waiting }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// See [`Admission::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionStats {
    pub busy: usize,
    pub heavy_busy: usize,
    pub waiting: usize,
    pub refused: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_slots_and_queue_answer_503_at_once() {
        let a = std::sync::Arc::new(Admission::new(AdmissionLimits {
            running: 1,
            queued: 1,
            wait: Duration::from_millis(200),
            heavy: Some(1),
        }));
        let held = a.enter(Class::Light).await.expect("first slot");
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.enter(Class::Light).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = std::time::Instant::now();
        let third = a.enter(Class::Light).await;
        assert!(matches!(third, Err(ApiError::Overloaded { .. })), "queue full");
        assert!(t.elapsed() < Duration::from_millis(100), "refused without waiting");
        assert!(matches!(waiter.await, Ok(Err(ApiError::Overloaded { .. }))), "the waiter timed out");
        drop(held);
        assert!(a.enter(Class::Light).await.is_ok(), "a freed slot is taken again");
        assert_eq!(a.stats().refused, 2);
    }

    /// `n` light queries waiting for a slot, each on its own task.
    fn spawn_waiters(a: &Arc<Admission>, n: usize) -> Vec<tokio::task::JoinHandle<Result<(), ApiError>>> {
        (0..n)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.enter(Class::Light).await.map(|_| ()) })
            })
            .collect()
    }

    #[tokio::test]
    async fn a_waiter_dropped_mid_wait_leaves_the_queue() {
        let a = Arc::new(Admission::new(AdmissionLimits {
            running: 1,
            queued: 2,
            wait: Duration::from_secs(30),
            heavy: Some(1),
        }));
        let held = a.enter(Class::Light).await.expect("first slot");
        // What a client's disconnect does: the handler's future is dropped
        // while it waits for a slot.
        let waiters = spawn_waiters(&a, 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.stats().waiting, 2);
        for w in &waiters {
            w.abort();
        }
        for w in waiters {
            assert!(w.await.is_err_and(|e| e.is_cancelled()));
        }
        assert_eq!(a.stats().waiting, 0, "the aborted waiters left the queue");
        assert_eq!(a.stats().busy, 1);
        drop(held);
        assert_eq!(a.stats().busy, 0);
        // The queue holds its full two again.
        let held = a.enter(Class::Light).await.expect("slot");
        let w = spawn_waiters(&a, 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.stats().waiting, 2);
        assert_eq!(a.stats().refused, 0);
        drop(held);
        for w in w {
            assert!(matches!(w.await, Ok(Ok(()))));
        }
    }

    #[test]
    fn only_tiny_queries_run_inline() {
        let cost = |metrics, window_secs, points| QueryCost { metrics, window_secs, points };
        // A one-series panel over a day and a 10-minute one run inline.
        assert!(runs_inline(&cost(1, 86_400, 300)));
        assert!(runs_inline(&cost(1, 600, 60)));
        // Two series over a day read twice the samples; many points are many cells.
        assert!(!runs_inline(&cost(2, 86_400, 300)));
        assert!(!runs_inline(&cost(1, 3_600, 3_600)));
    }

    #[tokio::test]
    async fn heavy_queries_leave_slots_to_light_ones() {
        let a = Arc::new(Admission::new(AdmissionLimits {
            running: 3,
            queued: 8,
            wait: Duration::from_millis(300),
            heavy: Some(2),
        }));
        let h1 = a.enter(Class::Heavy).await.expect("first heavy");
        let h2 = a.enter(Class::Heavy).await.expect("second heavy");
        assert_eq!(a.stats().heavy_busy, 2);
        // A third heavy one waits for a heavy permit, not for the free slot...
        let t = std::time::Instant::now();
        assert!(matches!(a.enter(Class::Heavy).await, Err(ApiError::Overloaded { .. })));
        assert!(t.elapsed() >= Duration::from_millis(250), "it waited its turn");
        // ...which a light one takes at once.
        let t = std::time::Instant::now();
        let light = a.enter(Class::Light).await.expect("light slot");
        assert!(t.elapsed() < Duration::from_millis(100), "no wait behind heavy queries");
        assert_eq!(a.stats().busy, 3);
        // A heavy permit freed: the next heavy one runs once a slot is free too.
        drop(h1);
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.enter(Class::Heavy).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(light);
        assert!(matches!(waiter.await, Ok(Ok(()))), "heavy permit, then the freed slot");
        drop(h2);
    }

    #[test]
    fn heavy_permits_never_take_every_slot() {
        let slots = |running, heavy| {
            Admission::new(AdmissionLimits { running, queued: 1, wait: Duration::ZERO, heavy }).heavy_slots()
        };
        assert_eq!(slots(4, Some(9)), 3);
        assert_eq!(slots(4, Some(0)), 1);
        assert_eq!(slots(8, None), 4, "half the slots by default");
        assert_eq!(slots(1, Some(1)), 1, "one slot: heavy ones take turns");
        assert_eq!(slots(1, None), 1);
    }

    #[test]
    fn class_follows_samples_and_cells() {
        let c = |metrics, window_secs, points| Class::of(&QueryCost { metrics, window_secs, points });
        assert_eq!(c(1, 86_400, 300), Class::Light, "one series, a day");
        assert_eq!(c(100, 600, 60), Class::Light, "a dashboard panel");
        assert_eq!(c(1_000, 86_400, 300), Class::Heavy, "86.4 M samples");
        assert_eq!(c(200, 1_800, 1_800), Class::Heavy, "360,000 values");
    }
}
