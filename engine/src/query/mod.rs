//! The query path, as its stages, each in its own module with a typed
//! hand-off: [`select`] (request -> [`select::Selection`]) -> [`plan`]
//! (window, queried metrics, groups, limits and the tier rule ->
//! [`plan::QueryPlan`]) -> [`scan`] (time groups over the planned pieces,
//! in parallel -> [`scan::ScanOutput`]) -> [`group`] (group-by passes ->
//! [`group::Grouped`]) -> [`finish`] (percentages, summary, metadata ->
//! [`result::QueryResult`]).

pub mod body;
pub mod cardinality;
pub mod detailed;
pub mod finish;
pub mod group;
pub mod kernels;
pub mod params;
pub mod plan;
pub mod request;
pub mod result;
pub mod scan;
pub mod select;
pub mod summary;
pub mod time_group;
pub mod window;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::query::request::QueryRequest;
use crate::query::result::QueryResult;
use crate::query::scan::{Deadline, Scan};
use crate::storage::{Store, TIERS};

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
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_metrics: 200_000,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            tiers: TIERS,
        }
    }
}

/// Runs a query against a consistent view of catalog and store.
pub fn run(
    cat: &Catalog,
    store: &Store,
    req: &QueryRequest,
    now: i64,
    limits: &QueryLimits,
    cancel: Option<&AtomicBool>,
) -> Result<QueryResult> {
    let t0 = Instant::now();
    let deadline = Deadline { start: t0, timeout_ms: req.timeout_ms, cancel };
    deadline.check()?;
    window::check_request_times(req.after, req.before, req.time_resampling)?;
    let sel = select::resolve(cat, req)?;
    let plan = plan::build(cat, store, req, &sel, now, limits)?;
    let prep_ms = t0.elapsed().as_secs_f64() * 1000.0;
    deadline.check()?;

    let t1 = Instant::now();
    let scan = Scan {
        store,
        plan: &plan,
        time_group: &req.time_group,
        aggregation: req.passes[0].aggregation,
        threads: limits.threads,
        deadline: &deadline,
    }
    .run()?;
    let grouped = group::run(cat, req, &plan, &scan);
    let query_ms = t1.elapsed().as_secs_f64() * 1000.0;
    let inputs = finish::Inputs { cat, store, req, sel: &sel, plan: &plan };
    Ok(finish::run(inputs, scan, grouped, finish::Timings { prep_ms, query_ms }))
}

#[cfg(test)]
mod parser_props;
#[cfg(test)]
mod tests;
