//! What a metric holds, in sample times: the query target (which metrics a
//! window touches), `after=0`/`before=0`, and `db.first_entry`,
//! `db.last_entry`, `db.per_tier`.
//!
//! Tier 0 knows its sample times. A rollup point knows only its interval
//! `(end - res, end]`; where every rollup point equals the tier-0 samples
//! of its interval (after [`Store::rollup_only_until`]), its first and last
//! samples are tier 0's, so all tiers report the same true times. Only for
//! rollup-only history do interval bounds stand in for them (the earliest
//! second a point can hold, and its end).

use crate::model::MetricId;
use crate::storage::{Extent, Store, StoreView};

/// What these rules read of a metric's storage: the live store (metadata
/// routes, under its lock) or a query's view of it.
pub trait Holdings {
    fn extent(&self, m: MetricId, tier: usize) -> Option<Extent>;
    fn resolution(&self, m: MetricId, tier: usize) -> Option<i64>;
    fn update_every(&self, m: MetricId) -> Option<i64>;
    fn rollup_only_until(&self, ue: i64) -> Option<i64>;
}

macro_rules! holdings {
    ($t:ty) => {
        impl Holdings for $t {
            fn extent(&self, m: MetricId, tier: usize) -> Option<Extent> {
                <$t>::extent(self, m, tier)
            }
            fn resolution(&self, m: MetricId, tier: usize) -> Option<i64> {
                <$t>::resolution(self, m, tier)
            }
            fn update_every(&self, m: MetricId) -> Option<i64> {
                <$t>::update_every(self, m)
            }
            fn rollup_only_until(&self, ue: i64) -> Option<i64> {
                <$t>::rollup_only_until(self, ue)
            }
        }
    };
}
holdings!(Store);
holdings!(StoreView);

/// First and last sample time metric `m` holds in `tier`.
pub fn tier_range(store: &impl Holdings, m: MetricId, tier: usize) -> Option<(i64, i64)> {
    let e = store.extent(m, tier)?;
    if tier == 0 {
        return Some((e.first, e.last));
    }
    let ue = store.update_every(m)?;
    let res = store.resolution(m, tier)?;
    let exact = |end: i64| store.rollup_only_until(ue).is_none_or(|r| end > r);
    let raw = store.extent(m, 0);
    let first = match raw {
        Some(r) if exact(e.first) => r.first.clamp(e.first - res + 1, e.first),
        _ => e.first - res + 1,
    };
    let last = match raw {
        Some(r) if exact(e.last) => r.last.clamp(e.last - res + 1, e.last),
        _ => e.last,
    };
    Some((first, last))
}

/// First and last sample time of `m` over tiers `0..tiers`.
pub fn metric_range(store: &impl Holdings, m: MetricId, tiers: usize) -> Option<(i64, i64)> {
    (0..tiers).filter_map(|t| tier_range(store, m, t)).reduce(|(f, l), (a, b)| (f.min(a), l.max(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{AggPoint, StorageConfig, Store};

    fn tier_range(s: &Store, m: MetricId, tier: usize) -> Option<(i64, i64)> {
        super::tier_range(&StoreView::of(s, [m]), m, tier)
    }

    fn metric_range(s: &Store, m: MetricId, tiers: usize) -> Option<(i64, i64)> {
        super::metric_range(&StoreView::of(s, [m]), m, tiers)
    }

    #[test]
    fn rollups_report_tier0_sample_times() {
        let mut s = Store::new(StorageConfig::default());
        for t in 7_230..=7_290 {
            s.write(0, 1, t, Some(1.0), false).expect("write");
        }
        assert_eq!(tier_range(&s, 0, 0), Some((7_230, 7_290)));
        // The minute (7_200, 7_260] and the hour (7_200, 10_800] hold these samples.
        assert_eq!(tier_range(&s, 0, 1), Some((7_230, 7_290)));
        assert_eq!(tier_range(&s, 0, 2), Some((7_230, 7_290)));
        assert_eq!(metric_range(&s, 0, 3), Some((7_230, 7_290)));
    }

    #[test]
    fn rollup_only_history_reports_interval_bounds() {
        let mut s = Store::new(StorageConfig::default());
        let p = AggPoint { sum: 60.0, min: 1.0, max: 1.0, count: 60, anomaly_count: 0 };
        assert!(s.write_rollup(0, 1, 1, 3_660, p) == crate::storage::WriteOutcome::Written);
        s.write(0, 1, 7_201, Some(1.0), false).expect("write");
        assert_eq!(tier_range(&s, 0, 1), Some((3_601, 7_201)));
        assert_eq!(metric_range(&s, 0, 3).map(|r| r.0), Some(3_601));
    }
}
