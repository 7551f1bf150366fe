//! What a metric holds, in sample times: the query target (which metrics a
//! window touches), `after=0`/`before=0`, and `db.first_entry`,
//! `db.last_entry`, `db.per_tier`.
//!
//! Tier 0 knows its sample times. A rollup point knows only its interval
//! `(end - res, end]`; where every rollup point equals the tier-0 samples
//! of its interval (after [`Store::rollup_only_until`]), its first and last
//! samples are tier 0's, so all tiers report the same true times. Only for
//! rollup-only history do interval bounds stand in for them (the earliest
//! second a point can hold, and its end). Once tier 0 has aged out, a
//! finer rollup narrows a coarser one's first interval where it holds that
//! whole interval ([`metric_range`]).

use crate::model::MetricId;
use crate::storage::{Extent, StorageConfig, Store, StoreView};

/// What these rules read of a metric's storage: the live store (metadata
/// routes, under its lock) or a query's view of it.
pub trait Holdings {
    fn extent(&self, m: MetricId, tier: usize) -> Option<Extent>;
    fn resolution(&self, m: MetricId, tier: usize) -> Option<i64>;
    fn update_every(&self, m: MetricId) -> Option<i64>;
    fn rollup_only_until(&self, ue: i64) -> Option<i64>;
    fn config(&self) -> &StorageConfig;
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
            fn config(&self) -> &StorageConfig {
                <$t>::config(self)
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
    // Tier 0's first sample is this tier's where it lies in this tier's
    // first interval and tier 0 holds that interval whole (its spans are
    // whole intervals, and retention drops whole spans); else tier 0 has
    // aged out of it, and only the interval's bound is known.
    let whole = store.config().span_secs(0, ue) % res == 0;
    let first = match raw {
        Some(r) if exact(e.first) && whole && e.first - res < r.first && r.first <= e.first => r.first,
        _ => e.first - res + 1,
    };
    let last = match raw {
        Some(r) if exact(e.last) => r.last.clamp(e.last - res + 1, e.last),
        _ => e.last,
    };
    Some((first, last))
}

/// First and last sample time of `m` over tiers `0..tiers`.
///
/// The first is the earliest tier's; where that is a rollup point's
/// interval bound, a finer tier whose first point lies inside that
/// interval narrows it: it holds the whole interval (retention drops whole
/// spans of the finer tier, and those spans are whole intervals of the
/// coarser), so its first point holds the first sample. Not where the
/// coarse point is rollup-only history, which no finer tier need hold.
pub fn metric_range(store: &impl Holdings, m: MetricId, tiers: usize) -> Option<(i64, i64)> {
    let ranges: Vec<Option<(i64, i64)>> = (0..tiers).map(|t| tier_range(store, m, t)).collect();
    let (first, last) = ranges.iter().flatten().copied().reduce(|(f, l), (a, b)| (f.min(a), l.max(b)))?;
    // The coarsest tier holding the earliest bound, then finer ones inside it.
    let Some(mut at) = (0..tiers).rev().find(|&t| ranges[t].is_some_and(|r| r.0 == first)) else {
        return Some((first, last));
    };
    let ue = store.update_every(m);
    let cfg = store.config();
    for finer in (0..at).rev() {
        let (Some(ue), Some(coarse), Some(fine)) = (ue, store.extent(m, at), store.extent(m, finer)) else { continue };
        let res = cfg.resolution(at, ue);
        let exact = store.rollup_only_until(ue).is_none_or(|r| coarse.first > r);
        let whole = cfg.span_secs(finer, ue) % res == 0;
        if exact && whole && (coarse.first - res < fine.first && fine.first <= coarse.first) {
            at = finer;
        }
    }
    Some((ranges[at].map_or(first, |r| r.0), last))
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

    /// Tier 0 aged out: the first sample lies in tier 2's first hour, which
    /// tier 1 (whose spans are whole hours) holds whole, so tier 1's first
    /// minute bounds it, not the hour.
    #[test]
    fn aged_out_tier0_is_bounded_by_the_finest_rollup_holding_it() {
        use crate::storage::tier::{TierSpec, DAY};
        let cfg = StorageConfig {
            tiers: [
                TierSpec { factor: 1, span_points: 16, retention_secs: 32 },
                TierSpec { factor: 60, span_points: 60, retention_secs: 10 * DAY },
                TierSpec { factor: 3600, span_points: 8, retention_secs: 10 * DAY },
            ],
            late_grace_secs: 0,
        };
        let mut s = Store::new(cfg);
        for t in 3_717..4_300 {
            s.write(0, 1, t, Some(1.0), false).expect("write");
            s.seal_pending().expect("seal");
        }
        assert!(s.extent(0, 0).is_some_and(|e| e.first > 4_000), "tier 0 aged out: {:?}", s.extent(0, 0));
        assert_eq!(tier_range(&s, 0, 2).map(|r| r.0), Some(3_601), "the hour's bound, not tier 0's first");
        assert_eq!(tier_range(&s, 0, 1).map(|r| r.0), Some(3_661), "the minute's bound");
        assert_eq!(metric_range(&s, 0, 3).map(|r| r.0), Some(3_661));
        // A tier-1 span that is not whole hours narrows nothing.
        let mut cfg = cfg;
        cfg.tiers[1].span_points = 8;
        let mut s = Store::new(cfg);
        for t in 3_717..4_300 {
            s.write(0, 1, t, Some(1.0), false).expect("write");
            s.seal_pending().expect("seal");
        }
        assert_eq!(metric_range(&s, 0, 3).map(|r| r.0), Some(3_601));
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
