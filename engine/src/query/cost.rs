//! What a query will cost, known before it runs: for admission control,
//! which keeps a few cheap queries from waiting behind many expensive ones.
//!
//! The estimate reads only the selection (the catalog), never the store,
//! so it takes microseconds. It is an upper bound on the work: it counts
//! one sample per second of the window for every metric in play (the
//! finest resolution, no rollups) and one output cell per metric and
//! point (no grouping), so a heavy query is never taken for a light one.
//!
//! The selection it resolves goes on to the run ([`Estimate`]): a small
//! query resolved its metrics twice, once here and once to run (4.5 % of
//! a one-series query's server CPU). The estimate owns its request, so
//! the run cannot be handed another request's selection (another token's
//! allowlist, say), and takes the selection only while the registry's
//! generation is the one it was resolved at: every change that selection
//! reads (nodes, their names and labels, instances, metrics) moves it, so
//! the reused selection is exactly what the run would resolve.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::query::request::QueryRequest;
use crate::query::select::Selection;
use crate::query::{select, window};

/// The size of a query, from its selection and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryCost {
    /// Metrics the scan reads (the scope when percentages need hidden ones).
    pub metrics: u64,
    /// Seconds of data per metric.
    pub window_secs: u64,
    /// Output points per metric (the window's seconds when not given).
    pub points: u64,
}

impl QueryCost {
    /// Samples read, at most.
    pub fn samples(&self) -> u64 {
        self.metrics.saturating_mul(self.window_secs)
    }

    /// Time-grouped values produced, at most (before grouping).
    pub fn cells(&self) -> u64 {
        self.metrics.saturating_mul(self.points)
    }
}

/// The cost of `req` at `now`; fails as the query itself would on
/// out-of-range times or a bad selection (e.g. a node outside the token's
/// allowlist).
pub fn estimate(cat: &Catalog, req: QueryRequest, now: i64) -> Result<Estimate> {
    window::check_request_times(req.after, req.before, req.time_resampling)?;
    let sel = select::resolve(cat, &req)?;
    let metrics = if req.reads_scope() { sel.scope.len() } else { sel.selected.len() };
    let (a, b) = window::target_window(req.after, req.before, now);
    let window_secs = b.saturating_sub(a).saturating_add(1).max(1) as u64;
    let points = if req.points == 0 { window_secs } else { req.points.min(window_secs) };
    let resolved = Resolved { catalog: catalog_id(cat), generation: cat.registry().generation(), sel };
    Ok(Estimate { cost: QueryCost { metrics, window_secs, points }, req: Arc::new(req), resolved })
}

/// A query's request, its cost, and the selection it was estimated from,
/// for its run ([`crate::Engine::query_estimated`]). Held while the query
/// waits for an admission slot: the selection's bitmaps are one bit or
/// so a metric.
#[derive(Debug)]
pub struct Estimate {
    pub cost: QueryCost,
    req: Arc<QueryRequest>,
    pub(crate) resolved: Resolved,
}

impl Estimate {
    /// The request estimated (and to be run), as it was given.
    pub fn request(&self) -> &QueryRequest {
        &self.req
    }

    /// The request, for the result to share.
    pub(crate) fn shared_request(&self) -> &Arc<QueryRequest> {
        &self.req
    }
}

/// A selection, and the catalog and registry generation it was resolved at.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Which catalog (its address): another engine's may have reached the
    /// same generation.
    catalog: usize,
    generation: u64,
    pub(crate) sel: Selection,
}

impl Resolved {
    /// The selection, if `cat` has not changed since it was resolved.
    pub(crate) fn still_valid(&self, cat: &Catalog) -> Option<&Selection> {
        (self.catalog == catalog_id(cat) && self.generation == cat.registry().generation()).then_some(&self.sel)
    }
}

/// A catalog's identity while it lives: its address (never dereferenced).
fn catalog_id(cat: &Catalog) -> usize {
    std::ptr::from_ref(cat) as usize
}
