//! The latest stored value of each metric (for `/api/v1/allmetrics`): the
//! newest non-gap point of the finest tier that has one. A rollup point's
//! value is its average. Reads `Store::for_each_run` directly: one short
//! clipped run per metric, never a query plan.

use crate::meta::Visible;
use crate::model::MetricId;
use crate::storage::Store;

/// One metric's newest value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub metric: MetricId,
    /// End time of the point (epoch seconds).
    pub t: i64,
    pub value: f64,
}

/// How far back to look for a non-gap point, in points of the tier.
const LOOKBACK_POINTS: i64 = 60;

/// Newest values of the visible metrics, in MetricId order. Metrics whose
/// recent points are all gaps are left out.
pub fn latest(store: &Store, visible: &Visible, tiers: usize) -> Vec<Latest> {
    let mut out = Vec::new();
    for m in visible {
        let Some(ue) = store.update_every(m) else { continue };
        for tier in 0..tiers.clamp(1, crate::storage::TIERS) {
            let (Some(e), Some(res)) = (store.extent(m, tier), store.resolution(m, tier)) else { continue };
            let mut best: Option<Latest> = None;
            store.for_each_run(m, ue, tier, e.last - LOOKBACK_POINTS * res, e.last, |run| {
                for i in (0..run.len).rev() {
                    if run.is_valid(i) {
                        let p = run.agg(i);
                        let t = run.end_of(i);
                        if best.is_none_or(|b| t > b.t) && p.count > 0 {
                            best = Some(Latest { metric: m, t, value: p.sum / f64::from(p.count) });
                        }
                        break;
                    }
                }
            });
            if let Some(b) = best {
                out.push(b);
                break;
            }
        }
    }
    out
}
