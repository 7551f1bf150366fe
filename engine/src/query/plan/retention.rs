//! What a metric holds, in sample times: the query target (which metrics a
//! window touches), `after=0`/`before=0`, and `db.first_entry`,
//! `db.last_entry`, `db.per_tier`.
//!
//! Each tier's own first and last sample times are the store's
//! ([`Store::sample_range`], `storage/samples.rs`: true times while tier 0
//! holds them, counted through a rollup point's samples after); a metric's
//! are the earliest and latest over the tiers ([`metric_range`]).

use crate::model::MetricId;
use crate::storage::{Store, StoreView};

/// What these rules read of a metric's storage: the live store (metadata
/// routes, under its lock) or a query's view of it (which took each tier's
/// sample times when it was made).
pub trait Holdings {
    fn sample_range(&self, m: MetricId, tier: usize) -> Option<(i64, i64)>;
}

macro_rules! holdings {
    ($t:ty) => {
        impl Holdings for $t {
            fn sample_range(&self, m: MetricId, tier: usize) -> Option<(i64, i64)> {
                <$t>::sample_range(self, m, tier)
            }
        }
    };
}
holdings!(Store);
holdings!(StoreView);

/// First and last sample time metric `m` holds in `tier`.
pub fn tier_range(store: &impl Holdings, m: MetricId, tier: usize) -> Option<(i64, i64)> {
    store.sample_range(m, tier)
}

/// First and last sample time of `m` over tiers `0..tiers`: the earliest
/// first and the latest last. Where a rollup's first sample is counted
/// back ([`Store::sample_range`]) it is never before the true one (a gap
/// in that interval only moves it later), so the earliest over the tiers is
/// the closest: a finer tier whose first interval has no gap gives it
/// exactly.
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

    fn aged_config(tier1_span_points: usize) -> StorageConfig {
        use crate::storage::tier::{TierSpec, DAY};
        StorageConfig {
            tiers: [
                TierSpec { factor: 1, span_points: 16, retention_secs: 32 },
                TierSpec { factor: 60, span_points: tier1_span_points, retention_secs: 10 * DAY },
                TierSpec { factor: 3600, span_points: 8, retention_secs: 10 * DAY },
            ],
            late_grace_secs: 0,
        }
    }

    /// Writes `times` one by one (sealing as it goes, so tier 0 ages out
    /// behind them) and returns the store.
    fn aged_store(cfg: StorageConfig, ue: i64, times: impl Iterator<Item = i64>) -> Store {
        let mut s = Store::new(cfg);
        for t in times {
            s.write(0, ue, t, Some(1.0), false).expect("write");
            s.seal_pending().expect("seal");
        }
        s
    }

    /// Tier 0 aged out of the first sample (3_717): each rollup's first
    /// point counts its samples back from its interval's end (tier 1's
    /// minute (3_660, 3_720] holds 4), or from the last sample where that
    /// interval holds it (tier 2's hour (3_600, 7_200] holds all 583, up
    /// to 4_299): both give the true first sample.
    #[test]
    fn aged_out_tier0_first_sample_is_counted_back() {
        for span_points in [60, 8] {
            let s = aged_store(aged_config(span_points), 1, 3_717..4_300);
            assert!(s.extent(0, 0).is_some_and(|e| e.first > 4_000), "tier 0 aged out: {:?}", s.extent(0, 0));
            assert_eq!(tier_range(&s, 0, 2), Some((3_717, 4_299)));
            assert_eq!(tier_range(&s, 0, 1), Some((3_717, 4_299)));
            assert_eq!(metric_range(&s, 0, 3), Some((3_717, 4_299)));
        }
    }

    /// A gap inside the first interval moves the counted first sample by
    /// the gap's length, never out of the interval; update_every 5 keeps
    /// it on the grid of slots (multiples of 5).
    #[test]
    fn counted_first_sample_stays_in_its_interval_and_on_the_grid() {
        // 3_718 missing: the minute (3_660, 3_720] holds 3 of its 4 samples.
        let times = (3_717..4_300).filter(|t| !(3_718..3_719).contains(t));
        let s = aged_store(aged_config(60), 1, times);
        assert_eq!(tier_range(&s, 0, 1).map(|r| r.0), Some(3_718), "one second late for one missing");
        // update_every 5 (ingest snaps sample times to multiples of 5): the
        // first interval (18_300, 18_600] holds 4 samples.
        let s = aged_store(aged_config(60), 5, (18_585..21_500).step_by(5));
        assert!(s.extent(0, 0).is_some_and(|e| e.first > 18_600), "tier 0 aged out: {:?}", s.extent(0, 0));
        let (first, _) = metric_range(&s, 0, 3).expect("held");
        assert_eq!(first, 18_585);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Contiguous samples from any second on, of any update_every,
        /// with tier 0 aged out of their start or not: the first and last
        /// sample times reported are the true ones.
        #[test]
        fn contiguous_samples_report_their_true_first_and_last(
            ue in proptest::sample::select(vec![1i64, 2, 3, 5, 7, 10]),
            start in 0i64..20_000,
            len in 1i64..1_500,
        ) {
            let first = (100_000 + start) / ue * ue;
            let times = (0..len).map(|i| first + i * ue);
            let s = aged_store(aged_config(60), ue, times);
            let last = first + (len - 1) * ue;
            proptest::prop_assert_eq!(metric_range(&s, 0, 3), Some((first, last)));
            for tier in 0..3 {
                if let Some((f, l)) = tier_range(&s, 0, tier) {
                    proptest::prop_assert!(f >= first && l <= last, "tier {tier}: ({f}, {l}) outside ({first}, {last})");
                }
            }
        }
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
