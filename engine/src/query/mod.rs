//! The query path, as its stages, each in its own module with a typed
//! hand-off: [`select`] (request -> [`select::Selection`]) -> [`plan`]
//! (window, queried metrics, groups, limits and the tier rule ->
//! [`plan::QueryPlan`]) -> [`scan`] (time groups over the planned pieces,
//! in parallel -> [`scan::ScanOutput`]) -> [`group`] (group-by passes ->
//! [`group::Grouped`]) -> [`finish`] (live-edge trimming ([`trim`]),
//! percentages, summary, metadata -> [`result::QueryResult`]).

pub mod body;
pub mod cardinality;
pub mod cost;
pub mod detailed;
pub mod finish;
pub mod group;
pub mod kernels;
pub mod latest_values;
pub mod params;
pub mod plan;
pub mod request;
pub mod result;
pub mod scan;
pub mod select;
pub mod summary;
pub mod time_group;
pub mod trim;
pub mod window;

use std::sync::atomic::AtomicBool;
use std::sync::RwLock;
use std::time::Instant;

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::query::request::QueryRequest;
use crate::query::result::QueryResult;
use crate::query::scan::metric::read_range;
use crate::query::scan::{Deadline, Scan};
use crate::storage::{Store, StoreView, TIERS};

pub use request::ApiVersion;

/// Engine-side limits on a query.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Most metrics one query may touch.
    pub max_metrics: u64,
    /// Worker threads for the per-metric loop.
    pub threads: usize,
    /// How many storage tiers queries may use (1..=3), like Netdata's
    /// `storage tiers` setting.
    pub tiers: usize,
    /// Every query ends with a 504 after this (a request's own `timeout`
    /// can only shorten it); 0 = no limit.
    pub timeout_ms: u64,
    /// Most memory a query may plan to use for its accumulators and
    /// buffers (estimated before the scan; see [`plan::budget`]).
    pub max_memory_bytes: u64,
    /// Automatic tiers take whole rollup intervals only into buckets of at
    /// least this many tier-0 points (see
    /// [`plan::layout::ROLLUP_MIN_BUCKET_POINTS`]); narrower buckets read
    /// tier 0 whole. Either way the answer is the same.
    pub rollup_min_bucket_points: i64,
}

/// Default [`QueryLimits::timeout_ms`]: 60 s.
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 60_000;
/// Default [`QueryLimits::max_memory_bytes`]: 1 GiB.
pub const DEFAULT_QUERY_MEMORY: u64 = 1 << 30;

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_metrics: 200_000,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            tiers: TIERS,
            timeout_ms: DEFAULT_QUERY_TIMEOUT_MS,
            max_memory_bytes: DEFAULT_QUERY_MEMORY,
            rollup_min_bucket_points: plan::layout::ROLLUP_MIN_BUCKET_POINTS,
        }
    }
}

impl QueryLimits {
    /// The deadline of `req`: its own `timeout` when shorter than the limit.
    pub fn timeout_for(&self, req: &QueryRequest) -> u64 {
        match (req.timeout_ms, self.timeout_ms) {
            (0, l) => l,
            (r, 0) => r,
            (r, l) => r.min(l),
        }
    }
}

/// What a query reads: the catalog and the store, each behind its own lock.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub catalog: &'a RwLock<Catalog>,
    pub store: &'a RwLock<Store>,
}

/// Runs a query.
///
/// Locking: selection and planning hold the catalog's read lock, and the
/// store's only while the view is taken ([`StoreView`]: planning facts,
/// sealed segment lists and the open blocks the scan needs, by `Arc`);
/// the scan, the long part, holds no lock at all; grouping and the result
/// take the catalog's read lock again for names. So ingest, which takes
/// each write lock only to apply its batch, never waits for a scan, and a
/// scan never waits for ingest.
pub(crate) fn run(
    src: Source<'_>,
    req: &std::sync::Arc<QueryRequest>,
    now: i64,
    limits: &QueryLimits,
    cancel: Option<&AtomicBool>,
    resolved: Option<&cost::Resolved>,
) -> Result<QueryResult> {
    let t0 = Instant::now();
    let deadline = Deadline { start: t0, timeout_ms: limits.timeout_for(req), cancel };
    deadline.check()?;
    window::check_request_times(req.after, req.before, req.time_resampling)?;
    let (sel, plan, view, latest) = {
        let cat = src.catalog.read().map_err(|_| EngineError::Poisoned("catalog lock"))?;
        let sel = match resolved.and_then(|r| r.still_valid(&cat)) {
            Some(sel) => std::borrow::Cow::Borrowed(sel),
            None => std::borrow::Cow::Owned(select::resolve(&cat, req)?),
        };
        let store = src.store.read().map_err(|_| EngineError::Poisoned("store lock"))?;
        // Before the view, which reads planning facts of every metric it takes.
        let metrics = if req.reads_scope() { &sel.scope } else { &sel.selected };
        if metrics.len() > limits.max_metrics {
            return Err(EngineError::TooManyMetrics { matched: metrics.len(), limit: limits.max_metrics });
        }
        let mut view = StoreView::of(&store, metrics.iter());
        let plan = plan::build(&cat, &view, req, &sel, now, limits)?;
        let w = plan.window;
        let cfg = *store.config();
        // Only the tiers the scan reads: sharing a block is an `Arc` clone
        // now and a drop after the scan, for every block of every metric.
        let read = plan.tiers_read();
        view.attach_open(&store, |t, ue| if read[t] { read_range(&w, cfg.resolution(t, ue)) } else { (0, 0) });
        let v1_jsonwrap = req.api == request::ApiVersion::V1 && req.options.jsonwrap;
        let latest = plan.db_last.filter(|_| v1_jsonwrap).map(|last| {
            let series = |g: usize| plan.groups.keys[g].id.clone();
            let how = (req.passes[0].aggregation, req.options.absolute);
            latest_values::at_last_entry(&store, &plan.jobs, last, how, series)
        });
        (sel, plan, view, latest)
    };
    let prep_ms = t0.elapsed().as_secs_f64() * 1000.0;
    deadline.check()?;

    let t1 = Instant::now();
    let scan = Scan {
        store: &view,
        plan: &plan,
        time_group: &req.time_group,
        aggregation: req.passes[0].aggregation,
        threads: limits.threads,
        deadline: &deadline,
    }
    .run()?;
    let cat = src.catalog.read().map_err(|_| EngineError::Poisoned("catalog lock"))?;
    let grouped = group::run(&cat, req, &plan, &scan);
    let query_ms = t1.elapsed().as_secs_f64() * 1000.0;
    let inputs = finish::Inputs { cat: &cat, store: &view, req, sel: &sel, plan: &plan, now };
    let mut result = finish::run(inputs, scan, grouped, finish::Timings { prep_ms, query_ms });
    result.db_latest = latest;
    Ok(result)
}

#[cfg(test)]
mod parser_props;
#[cfg(test)]
mod tests;
