//! The background checkpoint writer.
//!
//! Ingest captures a checkpoint (a [`CheckpointPlan`]: the catalog and the
//! open spans' block tables as of a WAL position) in a few milliseconds
//! between two batches, and hands it here; one thread lays out and writes
//! the files, in plan order, then swaps the memory-mapped segments into
//! the store under a brief write lock. Neither ingest nor queries wait for
//! the files. A plan that fails to write gives its segments back to the
//! store, so the next checkpoint writes them; until one succeeds the WAL
//! keeps every record (nothing acknowledged is at risk).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use crate::persist::{CheckpointPlan, Persist};
use crate::storage::Store;

/// Plans submitted and written so far, for [`Checkpointer::flush`].
#[derive(Debug, Default)]
struct Progress {
    submitted: u64,
    finished: u64,
    last_error: Option<String>,
}

#[derive(Debug)]
pub struct Checkpointer {
    tx: Mutex<Option<Sender<CheckpointPlan>>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the writer thread.
    pub fn start(persist: Arc<Persist>, store: Arc<RwLock<Store>>) -> Checkpointer {
        let (tx, rx) = channel::<CheckpointPlan>();
        let progress: Arc<(Mutex<Progress>, Condvar)> = Arc::default();
        let shared = progress.clone();
        let handle = std::thread::Builder::new()
            .name("strata-checkpoint".into())
            .spawn(move || {
                for plan in rx {
                    let error = match persist.write(&plan) {
                        Ok(done) => {
                            if let Ok(mut s) = store.write() {
                                done.apply(&mut s);
                            }
                            persist.wal.sync().err().map(|e| e.to_string())
                        }
                        Err(e) => {
                            tracing::error!(lsn = plan.lsn(), error = %e, "checkpoint failed; the WAL keeps its records");
                            let (sealed, dropped) = plan.into_events();
                            if let Ok(mut s) = store.write() {
                                s.requeue_events(sealed, dropped);
                            }
                            Some(e.to_string())
                        }
                    };
                    let (lock, cv) = &*shared;
                    if let Ok(mut p) = lock.lock() {
                        p.finished += 1;
                        p.last_error = error;
                    }
                    cv.notify_all();
                }
            })
            .ok();
        Checkpointer { tx: Mutex::new(Some(tx)), progress, handle: Mutex::new(handle) }
    }

    /// Queues a plan (it must be the newest: plans are written in order).
    pub fn submit(&self, plan: CheckpointPlan) {
        // Counted before it is sent: the writer may finish it before this
        // thread runs again, and `finished` must never pass `submitted`.
        let count = |d: i64| {
            if let Ok(mut p) = self.progress.0.lock() {
                p.submitted = p.submitted.saturating_add_signed(d);
            }
        };
        count(1);
        let sent = self.tx.lock().ok().and_then(|tx| tx.as_ref().map(|tx| tx.send(plan).is_ok()));
        if sent != Some(true) {
            count(-1);
        }
    }

    /// Waits until every submitted plan is written (or failed); returns the
    /// last failure, if the last plan failed.
    pub fn flush(&self) -> Option<String> {
        let (lock, cv) = &*self.progress;
        let mut p = lock.lock().ok()?;
        while p.finished < p.submitted {
            p = cv.wait(p).ok()?;
        }
        p.last_error.clone()
    }

    /// The error of the last checkpoint written, if it failed (cleared by
    /// the next one that succeeds).
    pub fn failure(&self) -> Option<String> {
        self.progress.0.lock().ok().and_then(|p| p.last_error.clone())
    }

    /// Plans queued or being written.
    pub fn pending(&self) -> u64 {
        self.progress.0.lock().map(|p| p.submitted - p.finished).unwrap_or(0)
    }

    /// Writes what is queued and stops the thread.
    pub fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.handle.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
