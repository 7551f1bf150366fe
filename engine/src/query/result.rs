//! What a query answers, independent of the output format.

use crate::query::group::SeriesKey;
use crate::query::request::{GroupByKey, QueryRequest};
use crate::query::window::Window;
use crate::storage::TIERS;

/// Point annotation bits (`pa`).
pub const PA_EMPTY: u8 = 1;
pub const PA_RESET: u8 = 2;
pub const PA_PARTIAL: u8 = 4;

/// Statistics over the raw samples behind the db points read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointStats {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    pub anomalous: u64,
}

impl Default for PointStats {
    fn default() -> Self {
        PointStats { min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0, count: 0, anomalous: 0 }
    }
}

impl PointStats {
    pub fn merge(&mut self, o: &PointStats) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
        self.anomalous += o.anomalous;
    }

    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub fn anomaly_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.anomalous as f64 * 100.0 / self.count as f64
        }
    }
}

/// Which tier served how many metrics and db points.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TierUse {
    pub queries: [u64; TIERS],
    pub points: [u64; TIERS],
}

impl TierUse {
    pub fn merge(&mut self, o: &TierUse) {
        for t in 0..TIERS {
            self.queries[t] += o.queries[t];
            self.points[t] += o.points[t];
        }
    }
}

/// Set when some buckets were answered from rollup points that only
/// approximate the raw samples (history tier 0 no longer holds, or a
/// pinned rollup tier cut by the buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct Approximation {
    /// Tiers that served approximate data.
    pub tiers: Vec<usize>,
    /// How many buckets hold approximate data, and the ends of the first
    /// and last of them.
    pub buckets: usize,
    pub first: i64,
    pub last: i64,
    /// Why, in words.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub key: SeriesKey,
    /// Number of source metrics merged into this series.
    pub aggregated: u32,
    pub values: Vec<f64>,
    /// `pa` bits per point (EMPTY, RESET, PARTIAL).
    pub flags: Vec<u8>,
    pub arp: Vec<f64>,
    /// Non-empty contributors per point (the `count` of `raw` answers).
    pub counts: Vec<u32>,
    /// Over the raw db points of the member metrics.
    pub db_stats: PointStats,
}

impl Series {
    /// A finished group's buckets as a series.
    pub fn from_buckets(
        key: SeriesKey,
        aggregated: u32,
        b: &crate::query::scan::Buckets,
        counts: &[u32],
        db_stats: PointStats,
    ) -> Series {
        Series {
            key,
            aggregated,
            values: b.values.clone(),
            flags: b.flags.clone(),
            arp: b.arp.clone(),
            counts: counts.to_vec(),
            db_stats,
        }
    }
}

/// Selected / excluded / queried / failed counters (`sl`, `ex`, `qr`, `fl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub selected: u64,
    pub excluded: u64,
    pub queried: u64,
    pub failed: u64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// One item of a `summary` list.
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub id: String,
    /// Display name when it differs from the id.
    pub name: Option<String>,
    /// Index into `summary.nodes` (instances and nodes).
    pub node_index: Option<usize>,
    pub machine_guid: Option<String>,
    /// The node id (`nd`; nodes only).
    pub node_id: Option<String>,
    pub instances: Counts,
    pub dimensions: Counts,
    pub stats: PointStats,
    pub priority: u32,
    /// Label values (labels only).
    pub values: Vec<Item>,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub nodes: Vec<Item>,
    pub contexts: Vec<Item>,
    pub instances: Vec<Item>,
    pub dimensions: Vec<Item>,
    pub labels: Vec<Item>,
    /// Query-wide stats, the denominator of contribution percentages.
    pub total: PointStats,
    /// Σ|sum| over queried metrics, the denominator of `con`.
    pub abs_sum: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierInfo {
    pub tier: usize,
    pub update_every: i64,
    pub first_entry: Option<i64>,
    pub last_entry: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Shared with the estimate that ran it (no copy of its patterns).
    pub request: std::sync::Arc<QueryRequest>,
    pub window: Window,
    pub series: Vec<Series>,
    /// Keys of the final pass (for `view.dimensions.grouped_by`).
    pub grouped_by: Vec<GroupByKey>,
    pub group_by_labels: Vec<String>,
    pub summary: Summary,
    pub tier_use: TierUse,
    /// The tiers queries may use, finest first.
    pub tiers: Vec<TierInfo>,
    pub update_every: i64,
    pub first_entry: Option<i64>,
    pub last_entry: Option<i64>,
    /// Distinct context units (db.units).
    pub db_units: Vec<String>,
    pub title: String,
    pub units: String,
    pub chart_type: String,
    /// Metadata generation (for `versions`).
    pub generation: u64,
    pub prep_ms: f64,
    pub query_ms: f64,
    /// The pinned tier, or for automatic tiers the finest tier that
    /// served data (`debug` shows it).
    pub chosen_tier: usize,
    /// Set when `cardinality_limit` folded series into "remaining".
    pub folded: Option<crate::query::cardinality::Folded>,
    /// Set when some buckets are approximate; absent when every value is exact.
    pub approximation: Option<Approximation>,
    /// The `detailed` tree, with option `details`.
    pub detailed: Option<crate::query::detailed::Detailed>,
    /// v2/v3: the live-edge trimming's report (`None` for v1, which does
    /// not trim); `window.points` counts the rows kept.
    pub partial_trimming: Option<crate::query::trim::PartialTrimming>,
    /// v1 `jsonwrap`: each series' value in the chart's last stored slot
    /// (by series id; `None` inside where that slot is empty).
    pub db_latest: Option<std::collections::HashMap<String, Option<f64>>>,
}

impl QueryResult {
    /// Min and max over all returned values: the non-empty ones, and the
    /// empty ones `null2zero` returns as 0.
    pub fn view_min_max(&self) -> (f64, f64) {
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        // With `null2zero` an empty point is returned as 0, so it counts.
        let empty = self.request.options.null2zero.then_some(0.0);
        for s in &self.series {
            for (v, f) in s.values.iter().zip(&s.flags) {
                if let Some(v) = if f & PA_EMPTY == 0 { Some(*v) } else { empty } {
                    min = min.min(v);
                    max = max.max(v);
                }
            }
        }
        if min > max {
            (0.0, 0.0)
        } else {
            (min, max)
        }
    }
}
