//! Admission control for queries: at most `running` at once, at most
//! `queued` more waiting up to `wait` for a slot; anyone past that gets a
//! 503 with `Retry-After` at once, so overload is a clear answer instead of
//! an ever longer queue (and the memory that queue would hold). Health
//! checks and ingest do not pass through here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Limits of [`Admission`].
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    pub running: usize,
    pub queued: usize,
    pub wait: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // A waiting query is a parked future (its parsed request, no
        // buffers), and the wait bounds how long: a queue of a few dozen per
        // core lets a dashboard's burst of panels wait its turn instead of
        // getting 503s (bench-peer's 16 clients did, with 4 per core).
        AdmissionLimits { running: cores * 2, queued: cores * 32, wait: Duration::from_secs(2) }
    }
}

#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    slots: std::sync::Arc<Semaphore>,
    waiting: AtomicUsize,
    refused: AtomicU64,
}

/// A query slot; freed when dropped.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits,
            slots: std::sync::Arc::new(Semaphore::new(limits.running.max(1))),
            waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// A slot, or 503 when all are busy and the queue is full (or stays
    /// busy for the whole wait).
    pub async fn enter(&self) -> Result<Slot, ApiError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(p));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse());
        }
        let got = tokio::time::timeout(self.limits.wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(p)) => Ok(Slot(p)),
            _ => Err(self.refuse()),
        }
    }

    fn refuse(&self) -> ApiError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        ApiError::Overloaded { retry_after: 1 }
    }

    /// (queries holding a slot, waiting for one, refused since start).
    pub fn stats(&self) -> (usize, usize, u64) {
        let busy = self.limits.running.max(1) - self.slots.available_permits();
        (busy, self.waiting.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }

    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }
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
        }));
        let held = a.enter().await.expect("first slot");
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.enter().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = std::time::Instant::now();
        let third = a.enter().await;
        assert!(matches!(third, Err(ApiError::Overloaded { .. })), "queue full");
        assert!(t.elapsed() < Duration::from_millis(100), "refused without waiting");
        assert!(matches!(waiter.await, Ok(Err(ApiError::Overloaded { .. }))), "the waiter timed out");
        drop(held);
        assert!(a.enter().await.is_ok(), "a freed slot is taken again");
        assert_eq!(a.stats().2, 2);
    }
}
