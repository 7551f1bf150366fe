//! The parallel scan: metrics are split across worker threads; each thread
//! time-groups its metrics and folds them into its own group accumulators,
//! which are merged at the end. Hidden metrics (in scope, not selected)
//! feed only the denominators of percentages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{EngineError, Result};
use crate::model::MetricId;
use crate::query::execute::{Buckets, Executor, PointStats, TierUse};
use crate::query::group_by::Accumulator;
use crate::query::kernels::{self, KernelParams};
use crate::query::request::Aggregation;
use crate::query::tiering;
use crate::query::time_group::TimeGroup;
use crate::query::window::Window;
use crate::storage::Store;

/// Cancels work past the request's `timeout`, or when the caller's
/// `cancel` flag turns true (its token was revoked, the client left).
pub struct Deadline<'c> {
    pub start: Instant,
    pub timeout_ms: u64,
    pub cancel: Option<&'c AtomicBool>,
}

impl Deadline<'_> {
    pub fn check(&self) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(EngineError::Cancelled);
        }
        let elapsed = self.start.elapsed().as_millis() as u64;
        if self.timeout_ms > 0 && elapsed > self.timeout_ms {
            return Err(EngineError::Timeout { timeout_ms: self.timeout_ms, elapsed_ms: elapsed });
        }
        Ok(())
    }
}

/// One metric to scan and where its buckets go.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub metric: MetricId,
    /// Output group, if any (a hidden metric may belong to none).
    pub group: Option<usize>,
    pub hidden: bool,
}

/// How to scan.
pub struct ScanPlan<'a> {
    pub store: &'a Store,
    pub window: Window,
    pub time_group: &'a TimeGroup,
    pub tier: usize,
    pub pinned: bool,
    pub tiers: usize,
    pub absolute: bool,
    pub groups: usize,
    pub aggregation: Aggregation,
    pub threads: usize,
    pub deadline: &'a Deadline<'a>,
    /// Aggregate anomaly rates instead of values.
    pub anomaly_bit: bool,
}

pub struct ScanOutput {
    pub selected: Accumulator,
    /// Hidden sums per group, plus one last group with the hidden row totals.
    pub hidden: Accumulator,
    pub tier_use: TierUse,
    /// Statistics of the selected metrics (hidden ones are not reported).
    pub stats: HashMap<MetricId, PointStats>,
}

impl ScanPlan<'_> {
    fn empty(&self) -> ScanOutput {
        ScanOutput {
            selected: Accumulator::new(self.groups, self.window.points, self.aggregation),
            hidden: Accumulator::new(self.groups + 1, self.window.points, Aggregation::Sum),
            tier_use: TierUse::default(),
            stats: HashMap::new(),
        }
    }

    fn scan_chunk(&self, jobs: &[Job]) -> Result<ScanOutput> {
        let w = self.window;
        let kp = KernelParams { points: w.points, group: w.group, resampling_divisor: w.resampling_divisor };
        let kernel = kernels::build(self.time_group, &kp)?;
        let field = if self.anomaly_bit {
            crate::query::time_group::Field::AnomalyRate
        } else {
            self.time_group.method.field()
        };
        let mut ex = Executor::new(self.store, w, field, self.absolute, kernel);
        let mut out = self.empty();
        let mut buckets = Buckets::default();
        // Margins: the previous point (interpolation) and the closing point of
        // the last bucket may lie one coarse point outside the window.
        let (lo, hi) = (w.after - w.granularity, w.before);
        for job in jobs {
            // Cheap (an atomic load and a clock read) next to a metric's scan.
            self.deadline.check()?;
            let Some(ue) = self.store.update_every(job.metric) else { continue };
            let margin = self.store.config().resolution(crate::storage::TIERS - 1, ue);
            let parts = tiering::metric_parts(
                self.store,
                job.metric,
                self.tier,
                self.pinned,
                self.tiers,
                lo - margin,
                hi + margin,
            );
            let mut st = PointStats::default();
            let mut tier_use = TierUse::default();
            ex.run_metric(job.metric, ue, &parts, &mut buckets, &mut st, &mut tier_use);
            if job.hidden {
                if let Some(g) = job.group {
                    out.hidden.add(g, &buckets);
                }
                out.hidden.add(self.groups, &buckets);
            } else {
                if let Some(g) = job.group {
                    out.selected.add(g, &buckets);
                }
                out.tier_use.merge(&tier_use);
                out.stats.insert(job.metric, st);
            }
        }
        Ok(out)
    }

    /// Scans every job; results are independent of the thread count.
    pub fn run(&self, jobs: &[Job]) -> Result<ScanOutput> {
        let threads = self.threads.clamp(1, 64).min(jobs.len().div_ceil(64).max(1));
        let chunk = jobs.len().div_ceil(threads).max(1);
        let parts: Vec<Result<ScanOutput>> = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs.chunks(chunk).map(|c| scope.spawn(move || self.scan_chunk(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Poisoned("query worker panicked"))))
                .collect()
        });
        let mut out = self.empty();
        for p in parts {
            let p = p?;
            out.selected.merge(&p.selected);
            out.hidden.merge(&p.hidden);
            out.tier_use.merge(&p.tier_use);
            out.stats.extend(p.stats);
        }
        self.deadline.check()?;
        Ok(out)
    }
}
