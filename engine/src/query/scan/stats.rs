//! A metric's statistics (min, max, sum, count and anomalous count of its
//! samples in the window) read apart from the bucket loop, from the pieces
//! [`crate::query::plan::layout::stats_pieces`] chose: whole hours and
//! minutes from their rollup points, tier 0 only at the window's ragged
//! ends.
//!
//! Invariant: a rollup point in an exact piece aggregates exactly the
//! tier-0 samples of its interval (the same rule the exact layout rests
//! on), so these statistics equal the ones a pass over every sample would
//! give: min, max and counts exactly, the sum up to rounding. A scan of
//! sums and counts ([`super::metric`]) then reads no minimum or maximum in
//! its buckets.

use crate::model::MetricId;
use crate::query::plan::layout::Piece;
use crate::query::result::PointStats;
use crate::storage::{AggPoint, RowData, Run, StoreView};

use super::summarize::summarize;

impl From<&AggPoint> for PointStats {
    fn from(p: &AggPoint) -> Self {
        PointStats {
            min: p.min,
            max: p.max,
            sum: p.sum,
            count: u64::from(p.count),
            anomalous: u64::from(p.anomaly_count),
        }
    }
}

/// The statistics of metric `m` (update_every `ue`) over `pieces`.
pub fn window_stats(store: &StoreView, m: MetricId, ue: i64, pieces: &[Piece]) -> PointStats {
    let mut stats = PointStats::default();
    for p in pieces {
        store.for_each_run(m, ue, usize::from(p.tier), p.from, p.to, |r| stats.merge(&run_stats(&r)));
    }
    stats
}

/// The statistics of one (already clipped) run.
fn run_stats(r: &Run<'_>) -> PointStats {
    match r.data {
        RowData::Raw { values, valid, anomaly } => PointStats::from(&summarize(values, valid, anomaly)),
        RowData::Encoded(row) => PointStats::from(&row.summarize()),
        RowData::Agg { .. } | RowData::AggEncoded(_) => {
            let mut stats = PointStats::default();
            for i in (0..r.len).filter(|&i| r.is_valid(i)) {
                stats.merge(&PointStats::from(&r.agg(i)));
            }
            stats
        }
    }
}
