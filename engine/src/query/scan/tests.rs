use super::metric::{Buckets, MetricOut, MetricScan, Values};
use crate::query::kernels::{Average, Kernel, Max, Min, Sum};
use crate::query::plan::layout::{stats_pieces, Coverage, Layout, Piece};
use crate::query::plan::{Job, MetricReads};
use crate::query::result::{PointStats, TierUse, PA_EMPTY};
use crate::query::time_group::Field;
use crate::query::window::Window;
use crate::storage::{StorageConfig, Store, StoreView, TIERS};

fn window(after: i64, points: usize, v: i64) -> Window {
    Window {
        after,
        before: after + points as i64 * v - 1,
        points,
        granularity: 1,
        group: v,
        view_every: v,
        resampling_divisor: None,
        relative: false,
    }
}

fn store_with(values: &[(i64, Option<f64>)]) -> Store {
    let mut s = Store::new(StorageConfig::default());
    for &(t, v) in values {
        s.write(0, 1, t, v, t % 10 == 0).expect("write");
    }
    s
}

struct Out {
    b: Buckets,
    stats: PointStats,
    tiers: TierUse,
    approximate: Vec<bool>,
    /// The pieces' sums were taken before the bucket loop.
    batched: bool,
}

/// Scans metric 0 as `layout` says; with `stats`, as a time group of sums
/// whose statistics are read from those pieces apart from the buckets.
#[allow(clippy::too_many_arguments)]
fn scan_with(
    store: &Store,
    w: Window,
    field: Field,
    k: Box<dyn Kernel>,
    layout: &Layout,
    pinned: bool,
    stats: Option<&[Piece]>,
    absolute: bool,
) -> Out {
    scan_ue(store, 1, w, (field, k), layout, pinned, stats, absolute)
}

/// [`scan_with`] for a metric of update_every `ue`.
#[allow(clippy::too_many_arguments)]
fn scan_ue(
    store: &Store,
    ue: i64,
    w: Window,
    (field, k): (Field, Box<dyn Kernel>),
    layout: &Layout,
    pinned: bool,
    stats: Option<&[Piece]>,
    absolute: bool,
) -> Out {
    let values = Values { field, absolute, anomaly_bit: false, sums_only: stats.is_some(), raw_values: false };
    let mut view = StoreView::of(store, [0]);
    view.attach_open(store, |_, _| (i64::MIN / 4, i64::MAX / 4));
    let mut ex = MetricScan::new(&view, w, values, k);
    let job = Job { metric: 0, update_every: ue, group: Some(0), hidden: false, layout: 0 };
    let reads = MetricReads { layout, aged: Vec::new(), aged_before: i64::MIN, pinned_rollup: pinned, stats };
    let mut o = Out {
        b: Buckets::default(),
        stats: PointStats::default(),
        tiers: TierUse::default(),
        approximate: vec![false; w.points],
        batched: false,
    };
    let mut approximate_tiers = [false; TIERS];
    ex.run(
        &job,
        &reads,
        &mut MetricOut {
            buckets: &mut o.b,
            stats: &mut o.stats,
            tiers: &mut o.tiers,
            approximate: &mut o.approximate,
            approximate_tiers: &mut approximate_tiers,
        },
        || false,
    );
    o.batched = ex.batched();
    o
}

fn scan(store: &Store, w: Window, field: Field, k: Box<dyn Kernel>, layout: &Layout, pinned: bool) -> Out {
    scan_with(store, w, field, k, layout, pinned, None, false)
}

fn pinned(store: &Store, w: Window, tier: usize, field: Field, k: Box<dyn Kernel>) -> Out {
    scan(store, w, field, k, &Layout::pinned(&w, tier), tier > 0)
}

const COVERAGE: Coverage = Coverage { res: [1, 60, 3600], horizon: [Some(-1); TIERS], tiers: 3, exact_after: None };

fn exact(store: &Store, w: Window, k: Box<dyn Kernel>) -> Out {
    scan(store, w, Field::Average, k, &Layout::exact(&w, &COVERAGE, true), false)
}

#[test]
fn tier0_buckets_hold_points_ending_inside() {
    // Values t for t in 1..=20, gap at 7.
    let data: Vec<_> = (1..=20).map(|t| (t, if t == 7 { None } else { Some(t as f64) })).collect();
    let s = store_with(&data);
    let o = pinned(&s, window(1, 4, 5), 0, Field::Average, Box::new(Average::new(None)));
    assert_eq!(o.b.values, vec![3.0, (6.0 + 8.0 + 9.0 + 10.0) / 4.0, 13.0, 18.0]);
    assert_eq!(o.b.flags, vec![0; 4]);
    // Anomalous samples are those at multiples of 10: one in bucket 2 of 4 samples.
    assert_eq!(o.b.arp[1], 25.0);
    assert_eq!(o.stats.count, 19);
    assert_eq!((o.stats.min, o.stats.max), (1.0, 20.0));
    assert_eq!(o.tiers.points[0], 19);
    assert_eq!(o.tiers.queries[0], 1);
    assert!(o.approximate.iter().all(|a| !a));
}

#[test]
fn max_over_a_tie_of_both_signs_takes_the_first_in_time() {
    // |v| is 5 everywhere, the sign flips every 7 s: each bucket's
    // aggregate ties (-5, 5), so the time group reads the values, and the
    // first one of the bucket wins. Sealed rows and the open head alike.
    let v = |t: i64| if (t / 7) % 2 == 0 { 5.0 } else { -5.0 };
    let data: Vec<_> = (1..=7_300).map(|t| (t, (t % 97 != 0).then(|| v(t)))).collect();
    let mut s = store_with(&data);
    s.seal_pending().expect("seal");
    assert!(!s.sealed(1, 0).is_empty(), "the first hours are sealed");
    for width in [13, 60, 287] {
        let w = window(1, (7_200 / width) as usize, width);
        let o = pinned(&s, w, 0, Field::Max, Box::new(Max::default()));
        for i in 0..w.points {
            let first = (w.bucket_end(i) - width + 1..=w.bucket_end(i)).find(|t| t % 97 != 0).expect("a sample");
            assert_eq!(o.b.values[i], v(first), "bucket {i} of {width} s");
        }
        assert_eq!((o.stats.min, o.stats.max), (-5.0, 5.0));
    }
}

#[test]
fn empty_buckets_are_flagged() {
    let s = store_with(&[(3, Some(1.0)), (12, Some(2.0))]);
    let o = pinned(&s, window(1, 3, 5), 0, Field::Sum, Box::new(Sum::default()));
    assert_eq!(o.b.flags, vec![0, PA_EMPTY, 0]);
    assert_eq!((o.b.values[0], o.b.values[2]), (1.0, 2.0));
}

#[test]
fn pinned_tier1_merges_minutes_by_count() {
    // Minute 1 has 59 samples (one gap), minute 2 all 60: the count-weighted
    // average over both minutes is tier 0's, not the mean of the two means.
    let data: Vec<_> =
        (1..=600).map(|t| (t, if t % 13 == 0 { None } else { Some(((t * 7919) % 101) as f64) })).collect();
    let s = store_with(&data);
    let w = window(1, 5, 120);
    let o0 = pinned(&s, w, 0, Field::Average, Box::new(Average::new(None)));
    let o1 = pinned(&s, w, 1, Field::Average, Box::new(Average::new(None)));
    for i in 0..5 {
        assert!((o0.b.values[i] - o1.b.values[i]).abs() < 1e-9, "bucket {i}");
    }
    assert_eq!(o0.stats.count, o1.stats.count);
    assert!((o0.stats.sum - o1.stats.sum).abs() < 1e-6);
    assert_eq!(o1.tiers.points[1], 10, "ten per-minute points served");
    assert!(o1.approximate.iter().all(|a| !a), "minute-aligned buckets are exact");
}

#[test]
fn pinned_tier1_reads_the_open_minute() {
    // 150 samples: the third minute is still filling. Its samples count.
    let data: Vec<_> = (1..=150).map(|t| (t, Some(t as f64))).collect();
    let s = store_with(&data);
    let w = window(1, 1, 180);
    let o0 = pinned(&s, w, 0, Field::Average, Box::new(Average::new(None)));
    let o1 = pinned(&s, w, 1, Field::Average, Box::new(Average::new(None)));
    assert_eq!(o0.b.values, vec![75.5]);
    assert_eq!(o1.b.values, o0.b.values);
}

#[test]
fn wide_points_are_interpolated_at_bucket_ends() {
    // Two complete minutes: values 10 and 20; ask for 30 s buckets on tier 1.
    let mut data = Vec::new();
    for t in 1..=60 {
        data.push((t, Some(10.0)));
    }
    for t in 61..=120 {
        data.push((t, Some(20.0)));
    }
    let s = store_with(&data);
    let o = pinned(&s, window(61, 2, 30), 1, Field::Max, Box::new(Max::default()));
    // At 90 the minute (60, 120] is half done: 10 + (20 - 10) * 0.5 = 15.
    assert_eq!(o.b.values, vec![15.0, 20.0]);
    assert_eq!(o.approximate, vec![true, true], "30 s buckets cut the minutes");
}

#[test]
fn exact_min_over_both_signs_reads_the_samples() {
    // A minute holding -5 and 3 and 1: the value nearest zero (1) is not in
    // the minute's aggregate, so the exact layout reads tier 0 for it.
    let mut data: Vec<_> = (1..=180).map(|t| (t, Some(50.0 + t as f64))).collect();
    data[70] = (71, Some(-5.0));
    data[80] = (81, Some(1.0));
    let s = store_with(&data);
    let w = window(11, 1, 160); // (10, 170]: tier 0 to 60, minute (60, 120], tier 0 to 170
    let o = exact(&s, w, Box::new(Min::default()));
    assert_eq!(o.b.values, vec![1.0]);
    assert_eq!(o.tiers.points[1], 1, "the minute was read as one point");
    let o0 = pinned(&s, w, 0, Field::Min, Box::new(Min::default()));
    assert_eq!(o0.b.values, o.b.values);
}

#[test]
fn sums_of_absolute_values_with_statistics_apart() {
    // Negative samples only: |x| sums to minus the sum. Both signs: the
    // scan keeps its per-slice statistics (and the same answer).
    for sign in [-1.0, 1.0] {
        let data: Vec<_> = (1..=9_000)
            .map(|t| {
                (t, (t % 17 != 0).then(|| if sign < 0.0 { -1.0 } else { (t % 3) as f64 - 1.0 } * (t % 101) as f64))
            })
            .collect();
        let s = store_with(&data);
        let w = window(31, 30, 287);
        let layout = Layout::exact(&w, &COVERAGE, true);
        let stats = stats_pieces(&w, &COVERAGE, false, &Layout::pinned(&w, 0)).expect("rollups serve");
        assert!(stats.iter().any(|p| p.tier == 2), "an hour's point serves the statistics");
        let plain = scan_with(&s, w, Field::Sum, Box::new(Sum::default()), &layout, false, None, true);
        let apart = scan_with(&s, w, Field::Sum, Box::new(Sum::default()), &layout, false, Some(&stats), true);
        for (x, y) in plain.b.values.iter().zip(&apart.b.values) {
            assert!(*x >= 0.0 && (x - y).abs() <= 1e-9 * x.abs().max(1.0), "{x} vs {y}");
        }
        assert_eq!(
            (plain.stats.min, plain.stats.max, plain.stats.count),
            (apart.stats.min, apart.stats.max, apart.stats.count)
        );
    }
}

/// `sum` or `average`: the time groups of sums.
fn sum_or_average(sum: bool) -> Box<dyn Kernel> {
    if sum {
        Box::new(Sum::default())
    } else {
        Box::new(Average::new(None))
    }
}

/// Asserts that `o` answers what `a` answers: flags, values (within 1e-9
/// relative), anomaly rates and statistics.
fn same_answer(a: &Out, o: &Out) -> Result<(), proptest::test_runner::TestCaseError> {
    proptest::prop_assert_eq!(&a.b.flags, &o.b.flags);
    for (x, y) in a.b.values.iter().zip(&o.b.values) {
        proptest::prop_assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{} vs {}", x, y);
    }
    proptest::prop_assert_eq!(&a.b.arp, &o.b.arp);
    proptest::prop_assert_eq!(a.stats.count, o.stats.count);
    proptest::prop_assert_eq!(a.stats.anomalous, o.stats.anomalous);
    proptest::prop_assert_eq!((a.stats.min, a.stats.max), (o.stats.min, o.stats.max));
    let sum = a.stats.sum;
    proptest::prop_assert!((sum - o.stats.sum).abs() <= 1e-9 * sum.abs().max(1.0), "{} vs {}", sum, o.stats.sum);
    Ok(())
}

/// A sample of the sealed-and-open tests' data at second `t` (`None` in the hole).
fn sample(seed: &[i32], hole: &std::ops::Range<i64>, t: i64) -> Option<f64> {
    (!hole.contains(&t)).then(|| f64::from(seed[(t % 64) as usize]) / 100.0 + (t % 7) as f64)
}

/// Checks that the exact layout answers what tier 0 answers for sum and
/// average over window `w`; returns how many tier-1 points it read.
fn exact_equals_tier0(s: &Store, w: Window) -> Result<u64, proptest::test_runner::TestCaseError> {
    let mut tier1_points = 0;
    for sum in [false, true] {
        let (field, k) = (if sum { Field::Sum } else { Field::Average }, || sum_or_average(sum));
        let a = pinned(s, w, 0, field, k());
        let b = exact(s, w, k());
        // The same two as time groups of sums, statistics read apart.
        let (exact_layout, pinned_layout) = (Layout::exact(&w, &COVERAGE, true), Layout::pinned(&w, 0));
        // Whatever the points read: these windows are short.
        let stats = stats_pieces(&w, &COVERAGE, true, &Layout::pinned(&window(w.after, 1, 9_000), 0));
        let c = scan_with(s, w, field, k(), &exact_layout, false, stats.as_deref(), false);
        let d = scan_with(s, w, field, k(), &pinned_layout, false, stats.as_deref(), false);
        for o in [&b, &c, &d] {
            same_answer(&a, o)?;
            proptest::prop_assert_eq!(a.tiers.points[0], d.tiers.points[0], "pinned to tier 0, only tier 0 counts");
        }
        tier1_points = b.tiers.points[1];
    }
    Ok(tier1_points)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// The exact layout gives tier 0's answer for average and sum over
    /// buckets of any width and offset.
    #[test]
    fn exact_layout_equals_tier0(
        vals in proptest::collection::vec(proptest::option::weighted(0.9, -1e4f64..1e4), 900),
        v in 1i64..400,
        after in 1i64..200,
    ) {
        let data: Vec<_> = vals.iter().enumerate().map(|(i, v)| (i as i64 + 1, *v)).collect();
        let s = store_with(&data);
        let w = window(after, (700 / v).max(1) as usize, v);
        exact_equals_tier0(&s, w)?;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    /// Pinned to tier 1, a bucket whose end cuts a minute takes that
    /// minute's value interpolated at its end from the minute before
    /// (spec 1.7), wherever the two minutes sit in the span's blocks: the
    /// reads cross several 128-minute blocks, and buckets are rarely whole
    /// minutes.
    #[test]
    fn pinned_closing_values_interpolate_across_blocks(
        vals in proptest::collection::vec(1u32..10_000, 9_000),
        v in 7i64..500,
        after in 1i64..400,
    ) {
        let data: Vec<_> = vals.iter().enumerate().map(|(i, v)| (i as i64 + 1, Some(f64::from(*v) / 100.0))).collect();
        let s = store_with(&data);
        let minute_max = |end: i64| data[(end - 60) as usize..end as usize].iter().filter_map(|d| d.1).fold(f64::MIN, f64::max);
        let w = window(after, ((8_800 - after) / v).max(1) as usize, v);
        let o = pinned(&s, w, 1, Field::Max, Box::new(Max::default()));
        for i in 0..w.points {
            let e = w.bucket_end(i);
            let s0 = e - v;
            let mut want = f64::MIN;
            let mut end = (s0 / 60 + 1) * 60;
            while end <= e {
                want = want.max(minute_max(end));
                end += 60;
            }
            if e % 60 != 0 {
                let this = minute_max(end);
                let cut = if end > 60 {
                    let prev = minute_max(end - 60);
                    prev + (this - prev) * (1.0 - (end - e) as f64 / 60.0)
                } else {
                    this
                };
                want = want.max(cut);
            }
            proptest::prop_assert!((o.b.values[i] - want).abs() <= 1e-9 * want.abs(), "bucket {} ending {}: {} vs {}", i, e, o.b.values[i], want);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// The exact layout equals tier 0 where tier 1 is read from a sealed
    /// day and then the open day after it, through a hole longer than an
    /// open block (so the scan's rollup copy restarts its run there).
    #[test]
    fn exact_layout_equals_tier0_across_a_sealed_and_an_open_rollup_day(
        seed in proptest::collection::vec(-5_000i32..5_000, 64),
        hole_start in 600i64..9_000,
        v in 7i64..2_000,
        after in 0i64..900,
    ) {
        const DAY: i64 = 86_400;
        let (first, last) = (DAY - 3 * 3600, DAY + 3 * 3600);
        let hole = DAY - 3600 + hole_start..DAY - 3600 + hole_start + 9_000;
        let data: Vec<_> = (first..=last)
            .map(|t| (t, sample(&seed, &hole, t)))
            .collect();
        let mut s = store_with(&data);
        s.seal_pending().expect("seal");
        proptest::prop_assert!(!s.sealed(1, 1).is_empty(), "the first day's tier 1 is sealed");
        let w = window(first + after, ((last - first - after) / v).max(1) as usize, v);
        let tier1_points = exact_equals_tier0(&s, w)?;
        proptest::prop_assert!(v < 120 || tier1_points > 0, "whole minutes came from tier 1");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    /// A time group of values (median) over sealed tier 0 answers the
    /// median of each bucket's samples (of their absolute values with
    /// `absolute`), whether it selects on decimal integers (slices
    /// without gaps) or on decoded values (gaps, raw frames, the open
    /// head), and the statistics are those of all samples read.
    #[test]
    fn medians_of_sealed_tier0_are_the_samples_medians(
        vals in proptest::collection::vec(0u32..100_000, 3 * 3600),
        gaps in proptest::collection::vec(0i64..3 * 3600, 0..4),
        v in 30i64..1_500,
        after in 1i64..900,
        absolute in proptest::bool::ANY,
        third in proptest::bool::weighted(0.2),
    ) {
        let data: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let t = i as i64 + 1;
                // Each gap start empties 100 s; some hours have none.
                let gap = gaps.iter().any(|g| (*g..*g + 100).contains(&t));
                // Exact hundredths (decimal frames), of both signs; or
                // thirds in the second hour (raw frames beside decimal ones).
                let x = if third && (3600..7200).contains(&t) {
                    f64::from(*x) / 3.0
                } else {
                    f64::from(*x as i32 - 30_000) / 100.0
                };
                (t, (!gap).then_some(x))
            })
            .collect();
        let mut s = store_with(&data);
        s.seal_pending().expect("seal");
        let w = window(after, ((3 * 3600 - 60 - after) / v).max(1) as usize, v);
        let values = Values { field: Field::Average, absolute, anomaly_bit: false, sums_only: false, raw_values: true };
        let mut view = StoreView::of(&s, [0]);
        view.attach_open(&s, |_, _| (i64::MIN / 4, i64::MAX / 4));
        let mut ex = MetricScan::new(&view, w, values, Box::new(crate::query::kernels::Median::new(0.0)));
        let job = Job { metric: 0, update_every: 1, group: Some(0), hidden: false, layout: 0 };
        let layout = Layout::pinned(&w, 0);
        let reads = MetricReads { layout: &layout, aged: Vec::new(), aged_before: i64::MIN, pinned_rollup: false, stats: None };
        let (mut b, mut stats, mut tiers) = (Buckets::default(), PointStats::default(), TierUse::default());
        let (mut approximate, mut approximate_tiers) = (vec![false; w.points], [false; TIERS]);
        let mut out = MetricOut { buckets: &mut b, stats: &mut stats, tiers: &mut tiers, approximate: &mut approximate, approximate_tiers: &mut approximate_tiers };
        ex.run(&job, &reads, &mut out, || false);
        let mut all = Vec::new();
        for i in 0..w.points {
            let e = w.bucket_end(i);
            let raw: Vec<f64> = data.iter().filter(|d| d.0 > e - v && d.0 <= e).filter_map(|d| d.1).collect();
            all.extend_from_slice(&raw);
            let mut inside: Vec<f64> = raw.iter().map(|x| if absolute { x.abs() } else { *x }).collect();
            inside.sort_by(f64::total_cmp);
            let n = inside.len();
            if n == 0 {
                proptest::prop_assert_eq!(b.flags[i], PA_EMPTY);
                continue;
            }
            let want = if n % 2 == 1 { inside[n / 2] } else { inside[n / 2 - 1] + (inside[n / 2] - inside[n / 2 - 1]) * 0.5 };
            proptest::prop_assert_eq!(b.values[i], want, "bucket {}", i);
        }
        proptest::prop_assert_eq!(stats.count, all.len() as u64);
        let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        proptest::prop_assert_eq!((stats.min, stats.max), (lo, hi));
        let sum: f64 = all.iter().sum();
        proptest::prop_assert!((stats.sum - sum).abs() <= 1e-9 * sum.abs().max(1.0), "{} vs {}", stats.sum, sum);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Buckets of whole minutes (or hours) on their grid: a time group of
    /// sums takes every piece from the rollups in one pass per run
    /// (`rollup_sums`), from sealed minutes and hours and the open spans
    /// after them, across a hole, at several update_every. It answers what tier 0
    /// answers, reads as many rollup points as the per-bucket read does,
    /// and is never approximate.
    #[test]
    fn whole_rollup_buckets_equal_tier0(
        seed in proptest::collection::vec(-5_000i32..5_000, 64),
        hole_start in 600i64..9_000,
        hole_len in 0i64..9_000,
        minutes in 1i64..150,
        first_minute in 0i64..20,
        ue in proptest::sample::select(vec![1i64, 2, 5]),
    ) {
        whole_rollups_equal_tier0(&seed, (hole_start, hole_len), minutes, first_minute, ue)?;
    }
}

/// Whole-minute (or whole-hour) buckets of `minutes` of `ue`-second
/// minutes from `first_minute` after the data's start, over data with a
/// hole: the checks of `whole_rollup_buckets_equal_tier0`. Returns the
/// rollup points read per tier.
fn whole_rollups_equal_tier0(
    seed: &[i32],
    (hole_start, hole_len): (i64, i64),
    minutes: i64,
    first_minute: i64,
    ue: i64,
) -> Result<[u64; TIERS], proptest::test_runner::TestCaseError> {
    // The end of a day (a tier-1 span at update_every 1) and of 30 days
    // (a tier-2 span): both are sealed before it.
    const EDGE: i64 = 30 * 86_400;
    let (first, last) = (EDGE - 3 * 3600, EDGE + 3 * 3600 * ue);
    let hole = EDGE - 3600 + hole_start..EDGE - 3600 + hole_start + hole_len;
    let mut s = Store::new(StorageConfig::default());
    let mut data = Vec::new();
    for t in (first..=last).step_by(ue as usize) {
        let v = sample(seed, &hole, t);
        s.write(0, ue, t, v, t % 10 == 0).expect("write");
        data.push((t, v));
    }
    s.seal_pending().expect("seal");
    if ue == 1 {
        proptest::prop_assert!(!s.sealed(1, 1).is_empty() && !s.sealed(1, 2).is_empty(), "sealed minutes and hours");
    }
    let cov = Coverage { res: [ue, 60 * ue, 3600 * ue], ..COVERAGE };
    let v = 60 * ue * minutes;
    let after = first + 60 * ue * first_minute + 1;
    let w = window(after, ((last - after) / v).max(1) as usize, v);
    let exact_layout = Layout::exact(&w, &cov, true);
    proptest::prop_assert!(exact_layout.pieces().iter().all(|p| p.tier > 0), "whole minutes: rollups only");
    // As the plan takes them: apart for buckets of rollups alone.
    let stats = stats_pieces(&w, &cov, false, &exact_layout);
    proptest::prop_assert!(stats.is_some(), "statistics apart");
    let mut read = [0; TIERS];
    for sum in [false, true] {
        let (field, k) = (if sum { Field::Sum } else { Field::Average }, || sum_or_average(sum));
        let truth = scan_ue(&s, ue, w, (field, k()), &Layout::pinned(&w, 0), false, None, false);
        let per_bucket = scan_ue(&s, ue, w, (field, k()), &exact_layout, false, None, false);
        let o = scan_ue(&s, ue, w, (field, k()), &exact_layout, false, stats.as_deref(), false);
        proptest::prop_assert!(o.batched && !per_bucket.batched, "only the scan of sums takes pieces first");
        same_answer(&truth, &o)?;
        proptest::prop_assert!(o.approximate.iter().all(|a| !a), "whole points are exact");
        proptest::prop_assert_eq!(o.tiers.points[0], 0, "no tier-0 sample read");
        proptest::prop_assert!(
            o.tiers.points[1] + o.tiers.points[2] > 0 || truth.b.flags.iter().all(|f| *f & PA_EMPTY != 0)
        );
        proptest::prop_assert_eq!(o.tiers.points, per_bucket.tiers.points);
        // The truth's samples, counted apart from the scan.
        let samples = data.iter().filter(|d| d.0 >= w.after && d.0 <= w.before && d.1.is_some()).count() as u64;
        proptest::prop_assert_eq!(o.stats.count, samples);
        read = o.tiers.points;
    }
    Ok(read)
}

#[test]
fn whole_rollup_buckets_read_sealed_hours() {
    // Buckets of 2.5 h from the data's start: the first holds two whole
    // hours of the sealed 30-day span, the rest minutes and hours after it.
    let seed: Vec<i32> = (0..64).map(|i| i * 37 % 101 - 50).collect();
    let read = whole_rollups_equal_tier0(&seed, (600, 0), 150, 0, 1).expect("equal to tier 0");
    assert!(read[2] >= 2 && read[1] > 0, "hours and minutes read: {read:?}");
}
