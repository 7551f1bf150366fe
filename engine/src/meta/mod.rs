//! Metadata queries: what strata holds (nodes, contexts, instances, label
//! keys and values), full-text search over it, each metric's latest value,
//! and metric correlations (weights).
//!
//! Invariants:
//! - Every listing starts from one [`Visible`] bitmap of MetricIds, built
//!   once from the scope patterns, the caller's node allowlist and the room
//!   ([`MetaScope::visible`]). Nothing here reports a node, context,
//!   instance, dimension or label that has no visible metric, so a token
//!   restricted to some nodes cannot learn that others exist.
//! - Nothing here writes; everything reads one consistent `State` (catalog
//!   plus store) under the engine's read lock.
//! - Retention is the union of what the tiers in use still hold, the same
//!   rule the query path uses.

pub mod contexts;
pub mod instances;
pub mod inventory;
pub mod latest;
pub mod nodes;
pub mod params;
pub mod room;
pub mod search;
pub mod weights;

use roaring::RoaringBitmap;

use crate::catalog::Catalog;
use crate::index::SimplePattern;
use crate::model::MetricId;
use crate::query::request::Selectors;
use crate::query::select;
use crate::storage::Store;

pub use room::{RoomDef, RoomFilter};

/// Who may see what, and which part of it a request asks about.
#[derive(Debug, Clone, Default)]
pub struct MetaScope {
    /// The universe (`scope_nodes`, `scope_contexts`, ...).
    pub scope: Selectors,
    /// Filters inside it (`nodes`, `contexts`, `instances`, `dimensions`, `labels`).
    pub selectors: Selectors,
    /// The caller's node allowlist (node ids), from its token.
    pub allowed_nodes: Option<SimplePattern>,
    /// The room the request came through.
    pub room: Option<RoomFilter>,
    /// Only metrics with retention overlapping `[after, before]` (absolute).
    pub window: Option<(i64, i64)>,
}

/// The metrics a metadata request may report on.
pub type Visible = RoaringBitmap;

impl MetaScope {
    /// The visible metrics: every filter applied, and (with a window) only
    /// those with data overlapping it. Metrics never written are left out.
    pub fn visible(&self, cat: &Catalog, store: &Store, tiers: usize) -> Visible {
        let mut out = select::select(cat, &self.scope, &self.selectors, select::Matching::BOTH).selected;
        if let Some(p) = &self.allowed_nodes {
            out &= select::nodes_by_id(cat, p);
        }
        if let Some(r) = &self.room {
            out &= r.metrics(cat);
        }
        let window = self.window;
        let keep: Vec<MetricId> = out
            .iter()
            .filter(|&m| match (retention(store, m, tiers), window) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((f, l)), Some((a, b))) => f <= b && l >= a,
            })
            .collect();
        keep.into_iter().collect()
    }
}

/// First and last sample time metric `m` still has in the first `tiers`
/// tiers (`None`: never written, or aged out everywhere): the rule queries
/// use ([`crate::query::plan::retention`]), so a rollup point still open
/// reports its last sample, not its end in the future.
pub fn retention(store: &Store, m: MetricId, tiers: usize) -> Option<(i64, i64)> {
    crate::query::plan::retention::metric_range(store, m, tiers.clamp(1, crate::storage::TIERS))
}

/// Retention of a set of metrics, and the smallest update_every among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub update_every: Option<i64>,
}

impl Span {
    pub fn of(store: &Store, metrics: impl IntoIterator<Item = MetricId>, tiers: usize) -> Span {
        metrics.into_iter().fold(Span::default(), |s, m| {
            let (first, last) = retention(store, m, tiers).unzip();
            s.merge(Span { first, last, update_every: store.update_every(m) })
        })
    }

    /// The union of two spans.
    pub fn merge(self, other: Span) -> Span {
        let pick = |x: Option<i64>, y: Option<i64>, f: fn(i64, i64) -> i64| match (x, y) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        Span {
            first: pick(self.first, other.first, i64::min),
            last: pick(self.last, other.last, i64::max),
            update_every: pick(self.update_every, other.update_every, i64::min),
        }
    }

    /// Still being collected: the newest point is at most two collection
    /// intervals (and never less than 10 s) behind `now`.
    pub fn live(&self, now: i64) -> bool {
        let slack = (2 * self.update_every.unwrap_or(1)).max(10);
        self.last.is_some_and(|l| l >= now - slack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageConfig;

    /// Metadata reports sample times, as queries do: the minute and hour
    /// still open end in the future, but hold samples only up to the last.
    #[test]
    fn retention_is_sample_times_in_every_tier() {
        let mut s = Store::new(StorageConfig::default());
        for t in 7_230..=7_290 {
            s.write(0, 1, t, Some(1.0), false).expect("write");
        }
        for tiers in 1..=3 {
            assert_eq!(retention(&s, 0, tiers), Some((7_230, 7_290)), "{tiers} tiers");
        }
        assert_eq!(retention(&s, 1, 3), None);
    }
}
