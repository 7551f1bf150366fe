//! Stage 3 of the query path: the parallel scan of a [`QueryPlan`].
//! Metrics are split across worker threads; each thread time-groups its
//! metrics ([`metric`]) and folds them into its own group accumulators,
//! which are merged at the end, so results do not depend on the thread
//! count. Hidden metrics (in scope, not selected) feed only the
//! denominators of percentages.

pub mod metric;
pub mod rollup_sums;
pub mod stats;
pub mod summarize;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{EngineError, Result};
use crate::id_map::{self, IdMap};
use crate::query::group::Accumulator;
use crate::query::kernels;
use crate::query::plan::{Job, QueryPlan};
use crate::query::request::Aggregation;
use crate::query::result::{PointStats, TierUse};
use crate::query::time_group::{Method, TimeGroup};
use crate::storage::open_span::Prefetch;
use crate::storage::view::SealedStep;
use crate::storage::{StoreView, TIERS};
pub use metric::Buckets;
use metric::{MetricOut, MetricScan, Values};

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

/// Which buckets and tiers served approximate data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApproxUse {
    pub buckets: Vec<bool>,
    pub tiers: [bool; TIERS],
}

impl ApproxUse {
    fn new(points: usize) -> Self {
        ApproxUse { buckets: vec![false; points], tiers: [false; TIERS] }
    }

    fn merge(&mut self, o: &ApproxUse) {
        self.buckets.iter_mut().zip(&o.buckets).for_each(|(a, b)| *a |= b);
        self.tiers.iter_mut().zip(&o.tiers).for_each(|(a, b)| *a |= b);
    }

    pub fn any(&self) -> bool {
        self.buckets.iter().any(|&b| b)
    }
}

pub struct ScanOutput {
    pub selected: Accumulator,
    /// Hidden sums per group, plus one last group with the hidden row totals.
    pub hidden: Accumulator,
    pub tier_use: TierUse,
    /// Statistics of the selected metrics (hidden ones are not reported).
    pub stats: IdMap<PointStats>,
    pub approx: ApproxUse,
}

/// Scans every job of `plan`.
pub struct Scan<'a> {
    pub store: &'a StoreView,
    pub plan: &'a QueryPlan,
    pub time_group: &'a TimeGroup,
    pub aggregation: Aggregation,
    pub threads: usize,
    pub deadline: &'a Deadline<'a>,
}

impl Scan<'_> {
    /// An output for `metrics` metrics (their statistics sized once: a
    /// map regrown metric by metric moved every entry again each time).
    fn empty(&self, metrics: usize) -> ScanOutput {
        let (groups, points) = (self.plan.groups.len(), self.plan.window.points);
        ScanOutput {
            selected: Accumulator::new(groups, points, self.aggregation),
            hidden: Accumulator::new(groups + 1, points, Aggregation::Sum),
            tier_use: TierUse::default(),
            stats: id_map::with_capacity(metrics),
            approx: ApproxUse::new(points),
        }
    }

    fn scan_chunk(&self, jobs: &[Job]) -> Result<ScanOutput> {
        let plan = self.plan;
        let kernel = kernels::build(self.time_group, &plan.kernel)?;
        let values = Values::of(plan, self.time_group.method);
        let mut ex = MetricScan::new(self.store, plan.window, values, kernel);
        let mut out = self.empty(jobs.len());
        let mut buckets = Buckets::default();
        let mut approx = ApproxUse::new(plan.window.points);
        for (k, job) in jobs.iter().enumerate() {
            self.prefetch_ahead(&jobs[k + 1..]);
            // Cheap (an atomic load and a clock read) next to a metric's scan.
            self.deadline.check()?;
            let reads = plan.reads_for(self.store, job);
            let mut stats = PointStats::default();
            let mut tier_use = TierUse::default();
            ex.run(
                job,
                &reads,
                &mut MetricOut {
                    buckets: &mut buckets,
                    stats: &mut stats,
                    tiers: &mut tier_use,
                    approximate: &mut approx.buckets,
                    approximate_tiers: &mut approx.tiers,
                },
                || self.deadline.check().is_err(),
            );
            if job.hidden {
                if plan.absolute_hidden {
                    buckets.values.iter_mut().for_each(|v| *v = v.abs());
                }
                if let Some(g) = job.group {
                    out.hidden.add(g, &buckets);
                }
                out.hidden.add(plan.groups.len(), &buckets);
            } else {
                if let Some(g) = job.group {
                    out.selected.add(g, &buckets);
                }
                out.tier_use.merge(&tier_use);
                out.stats.insert(job.metric, stats);
            }
        }
        carry_approximation(self.time_group.method, &mut approx.buckets);
        out.approx = approx;
        Ok(out)
    }

    /// Asks for the open-span blocks of the next metrics, one pointer
    /// level per metric ahead ([`Prefetch`]): the next metric's block
    /// headers, from the list asked for one metric ago, and so on. Without
    /// it, reading a 1 h window of 1,000 metrics spent a fifth of its scan
    /// waiting on those pointers, one cache miss after another.
    fn prefetch_ahead(&self, next: &[Job]) {
        let w = self.plan.window;
        let range = |_, res: i64| metric::read_range(&w, res);
        for (job, step) in next.iter().zip([Prefetch::Blocks, Prefetch::List, Prefetch::Row]) {
            self.store.prefetch_open(job.metric, job.update_every, range, step);
        }
        // Sealed rows only where the layout reads tier 0 alone: a layout of
        // rollups reads tier 0 at its edges at most, and would pay for
        // hints on every hour of the window.
        for (job, near) in next.iter().zip([true, false]) {
            let g = &self.plan.layouts[job.layout];
            let tiers = g.layout.tiers_read();
            if !tiers[0] || tiers[1..].contains(&true) {
                continue;
            }
            // Sums indexes only for scans of sums (statistics read apart):
            // others read the rows whole, and their index lines would
            // only take bandwidth (a median scan after a sums query built
            // the indexes was 10 % slower).
            let step = match (near, g.stats.is_some()) {
                (false, _) => SealedStep::Slot,
                (true, true) => SealedStep::RowAndIndex,
                (true, false) => SealedStep::Row,
            };
            let res = self.store.config().resolution(0, job.update_every);
            self.store.prefetch_sealed(job.metric, job.update_every, metric::read_range(&w, res), step);
        }
    }

    /// Scans every job; results are independent of the thread count.
    pub fn run(&self) -> Result<ScanOutput> {
        let threads = crate::query::plan::budget::threads(self.plan, self.threads);
        let parts = run_chunks(
            &self.plan.jobs,
            threads,
            |c| self.scan_chunk(c),
            || EngineError::Poisoned("query worker panicked"),
        );
        let mut out = self.empty(self.plan.jobs.len());
        for p in parts {
            let p = p?;
            out.selected.merge(&p.selected);
            out.hidden.merge(&p.hidden);
            out.tier_use.merge(&p.tier_use);
            out.stats.extend(p.stats);
            out.approx.merge(&p.approx);
        }
        self.deadline.check()?;
        Ok(out)
    }
}

/// Runs `f` over `jobs` split in up to `threads` chunks, one scoped thread
/// each, and returns the results in chunk order. A single chunk (up to 64
/// metrics, see [`crate::query::plan::budget::threads`]) runs on the
/// calling thread: starting a thread costs more than a small query's
/// scan. A chunk that panics yields `panicked()`.
pub fn run_chunks<T: Send, E: Send>(
    jobs: &[Job],
    threads: usize,
    f: impl Fn(&[Job]) -> std::result::Result<T, E> + Sync,
    panicked: impl Fn() -> E,
) -> Vec<std::result::Result<T, E>> {
    let chunk = jobs.len().div_ceil(threads.max(1)).max(1);
    if jobs.len() <= chunk {
        return vec![f(jobs)];
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = jobs.chunks(chunk).map(|c| scope.spawn(move || f(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(panicked()))).collect()
    })
}

/// Time groups that carry state from bucket to bucket carry approximation
/// with it: `ses` and `des` smooth every later bucket with an approximate
/// one, and `incremental-sum` takes the previous bucket's last value. (The
/// flags are per bucket over all metrics, so carrying them over all
/// metrics at once is what carrying each metric's would give.)
fn carry_approximation(method: Method, buckets: &mut [bool]) {
    match method {
        Method::Ses | Method::Des => {
            if let Some(first) = buckets.iter().position(|&a| a) {
                buckets[first..].iter_mut().for_each(|a| *a = true);
            }
        }
        Method::IncrementalSum => {
            for i in (1..buckets.len()).rev() {
                buckets[i] |= buckets[i - 1];
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
