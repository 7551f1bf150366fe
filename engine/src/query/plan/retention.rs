//! What a metric holds, in sample times: the query target (which metrics a
//! window touches), `after=0`/`before=0`, and `db.first_entry`,
//! `db.last_entry`, `db.per_tier`.
//!
//! Each tier's own first and last sample times are the store's
//! ([`Store::sample_ranges_of`], `storage/samples.rs`: true times while tier 0
//! holds them, counted through a rollup point's samples after); a metric's
//! are the earliest and latest over the tiers ([`metric_range`]).

use crate::model::MetricId;
use crate::storage::{Store, StoreView, TIERS};

/// What these rules read of a metric's storage: the live store (metadata
/// routes, under its lock) or a query's view of it (which took each tier's
/// sample times when it was made).
pub trait Holdings {
    /// Per tier, bounds on the first and last sample `m` holds there.
    fn sample_ranges(&self, m: MetricId) -> [Option<(i64, i64)>; TIERS];
}

macro_rules! holdings {
    ($t:ty) => {
        impl Holdings for $t {
            fn sample_ranges(&self, m: MetricId) -> [Option<(i64, i64)>; TIERS] {
                <$t>::sample_ranges_of(self, m)
            }
        }
    };
}
holdings!(Store);
holdings!(StoreView);

/// First and last sample time metric `m` holds in each of tiers
/// `0..tiers`: each tier's own bounds, within the metric's
/// ([`metric_range`]) — a tier whose only point holds part of one interval
/// knows only that interval.
pub fn tier_ranges(store: &impl Holdings, m: MetricId, tiers: usize) -> [Option<(i64, i64)>; TIERS] {
    let own = store.sample_ranges(m);
    let Some((first, last)) = span(&own, tiers) else { return [None; TIERS] };
    std::array::from_fn(|t| own[t].filter(|_| t < tiers).map(|(f, l)| (f.min(l).max(first), f.max(l).min(last))))
}

/// First and last sample time of `m` over tiers `0..tiers`: the earliest
/// first and the latest last. Where a rollup's count places a sample
/// ([`Store::sample_ranges_of`]), its first is never before the true first
/// (a gap in that interval only moves it later) and its last never after
/// the true last, so these are the closest the tiers know: a finer tier
/// whose edge interval has no gap gives them exactly.
pub fn metric_range(store: &impl Holdings, m: MetricId, tiers: usize) -> Option<(i64, i64)> {
    span(&store.sample_ranges(m), tiers)
}

fn span(own: &[Option<(i64, i64)>; TIERS], tiers: usize) -> Option<(i64, i64)> {
    let (f, l) = own.iter().take(tiers).flatten().copied().reduce(|(f, l), (a, b)| (f.min(a), l.max(b)))?;
    Some((f.min(l), f.max(l)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{AggPoint, StorageConfig, Store};

    fn tier_range(s: &Store, m: MetricId, tier: usize) -> Option<(i64, i64)> {
        super::tier_ranges(&StoreView::of(s, [m]), m, 3)[tier]
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
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
        /// Contiguous samples from any second on, of any update_every,
        /// then (sometimes) another metric of the group carries on long
        /// enough that tier 0 ages out of the first metric entirely: the
        /// first and last sample times reported are the true ones, and no
        /// tier reports one outside them. Only a metric whose whole life
        /// fits in one minute once tier 0 has dropped it is not placed
        /// exactly (its count does not say where in the minute it ran).
        #[test]
        fn contiguous_samples_report_their_true_first_and_last(
            ue in proptest::sample::select(vec![1i64, 2, 3, 5, 7, 10]),
            start in 0i64..20_000,
            len in 1i64..1_500,
            after in proptest::sample::select(vec![0i64, 200, 3_000]),
        ) {
            let first = (100_000 + start) / ue * ue;
            let last = first + (len - 1) * ue;
            let mut s = aged_store(aged_config(60), ue, (0..len).map(|i| first + i * ue));
            for k in 1..=after {
                s.write(1, ue, last + k * ue, Some(1.0), false).expect("write");
                s.seal_pending().expect("seal");
            }
            let res1 = 60 * ue;
            let one_minute = (first - 1).div_euclid(res1) == (last - 1).div_euclid(res1);
            let (f, l) = metric_range(&s, 0, 3).expect("held");
            if one_minute && s.extent(0, 0).is_none() {
                proptest::prop_assert!(f <= l && first - res1 < f && l <= last - last % res1 + res1, "({f}, {l}) for ({first}, {last})");
            } else {
                proptest::prop_assert_eq!((f, l), (first, last));
                for tier in 0..3 {
                    if let Some((tf, tl)) = tier_range(&s, 0, tier) {
                        proptest::prop_assert!(tf >= first && tl <= last, "tier {tier}: ({tf}, {tl}) outside ({first}, {last})");
                    }
                }
            }
        }
    }

    /// A metric that stopped, and whose tier-0 samples another metric's
    /// newer ones aged out: the hour that holds all of it (one point, 83
    /// samples) counts neither end from the other; the minutes place both.
    #[test]
    fn a_stopped_metric_keeps_its_true_range() {
        let mut s = aged_store(aged_config(60), 1, 3_717..3_800);
        for t in 3_800..3_900 {
            s.write(1, 1, t, Some(1.0), false).expect("write");
            s.seal_pending().expect("seal");
        }
        assert!(s.extent(0, 0).is_none(), "tier 0 holds nothing of metric 0: {:?}", s.extent(0, 0));
        assert_eq!(metric_range(&s, 0, 3), Some((3_717, 3_799)));
        assert_eq!(tier_range(&s, 0, 2), Some((3_717, 3_799)), "within the metric's range");
    }

    /// Tier 1 keeps 15 minutes: as retention moves its first point on, the
    /// count remembered for the old first point is not used for the new
    /// one. Minute `m` misses its first `m % 7` seconds, so its count (and
    /// the first sample it places) differs from its neighbours'.
    #[test]
    fn remembered_first_counts_follow_retention() {
        let mut cfg = aged_config(5);
        cfg.tiers[1].retention_secs = 900;
        let mut s = Store::new(cfg);
        let skipped = |t: i64| (t - 1) % 60 < ((t - 1) / 60) % 7;
        let mut seen = Vec::new();
        for t in (3_717..12_000).filter(|&t| !skipped(t)) {
            s.write(0, 1, t, Some(1.0), false).expect("write");
            s.seal_pending().expect("seal");
            if t % 1_000 == 0 {
                // Gaps in the hour move its counted first inward, never before 3_717.
                assert!(metric_range(&s, 0, 3).is_some_and(|(f, l)| f >= 3_717 && l == t), "at {t}");
                let e1 = s.extent(0, 1).expect("tier 1 holds some");
                let first = (e1.first - 59..=e1.first).find(|&u| !skipped(u)).expect("a sample");
                assert_eq!(tier_range(&s, 0, 1).map(|r| r.0), Some(first.max(3_717)), "at {t}");
                seen.push(e1.first);
            }
        }
        assert!(seen.windows(2).any(|w| w[0] < w[1]), "retention moved tier 1's first point: {seen:?}");
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
