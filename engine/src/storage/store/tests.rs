use proptest::prelude::*;

use super::*;
use crate::storage::tier::{TierSpec, DAY};

fn small_cfg() -> StorageConfig {
    // Small spans so sealing happens often in tests.
    StorageConfig {
        tiers: [
            TierSpec { factor: 1, span_points: 16, retention_secs: 10 * DAY },
            TierSpec { factor: 60, span_points: 8, retention_secs: 10 * DAY },
            TierSpec { factor: 3600, span_points: 8, retention_secs: 10 * DAY },
        ],
        late_grace_secs: 0,
    }
}

/// A write as the engine does it: the batch, then closed spans sealed.
fn put(s: &mut Store, m: MetricId, t: i64, v: Option<f64>, anomalous: bool) -> Result<WriteOutcome> {
    let o = s.write(m, 1, t, v, anomalous)?;
    s.seal_pending()?;
    Ok(o)
}

fn collect(store: &Store, m: MetricId, tier: usize, from: i64, to: i64) -> Vec<(i64, AggPoint)> {
    let mut out = Vec::new();
    store.for_each_run(m, 1, tier, from, to, |run| {
        for i in 0..run.len {
            if run.is_valid(i) {
                out.push((run.end_of(i), run.agg(i)));
            }
        }
    });
    out
}

#[test]
fn late_samples_are_refused() {
    let mut s = Store::new(small_cfg());
    assert_eq!(s.write(0, 1, 100, Some(1.0), false).expect("w"), WriteOutcome::Written);
    assert_eq!(s.write(0, 1, 200, Some(1.0), false).expect("w"), WriteOutcome::Written);
    // Head is now the tier-0 span holding 200: [192, 208).
    assert_eq!(s.late_before(1), Some(192));
    assert_eq!(s.write(0, 1, 150, Some(1.0), false).expect("w"), WriteOutcome::Late);
    assert_eq!(s.write(0, 1, 195, Some(1.0), false).expect("w"), WriteOutcome::Written);
}

#[test]
fn the_previous_span_stays_open_for_the_grace_period() {
    let mut cfg = small_cfg();
    cfg.late_grace_secs = 4;
    let mut s = Store::new(cfg);
    // Spans of 16 s. One client is already past the boundary at 32...
    assert_eq!(put(&mut s, 0, 33, Some(1.0), false).expect("w"), WriteOutcome::Written);
    // ...another's samples just before it still land.
    assert_eq!(put(&mut s, 1, 31, Some(2.0), false).expect("w"), WriteOutcome::Written);
    assert_eq!(s.late_before(1), Some(16), "span [16, 32) stays open until the newest passes 36");
    assert_eq!(put(&mut s, 0, 36, Some(1.0), false).expect("w"), WriteOutcome::Written);
    assert_eq!(s.late_before(1), Some(32));
    assert_eq!(put(&mut s, 1, 31, Some(3.0), false).expect("w"), WriteOutcome::Late, "after the grace period");
    assert_eq!(
        collect(&s, 1, 0, 0, 40),
        vec![(31, AggPoint { sum: 2.0, min: 2.0, max: 2.0, count: 1, anomaly_count: 0 })]
    );
    assert_eq!(s.stats()[0].0, 1, "[16, 32) sealed once the grace period passed: {:?}", s.stats());
}

/// A sample ahead of the clock moves the head only as far as the clock:
/// the span the other writers are still filling stays open until the clock
/// (plus the grace) passes it, however far ahead one writer is.
#[test]
fn a_sample_ahead_of_the_clock_closes_nothing_the_clock_has_not_passed() {
    let mut cfg = small_cfg();
    cfg.late_grace_secs = 4;
    let mut s = Store::new(cfg);
    let one = |s: &mut Store, m: MetricId, t: i64, clock: i64| {
        let o = s.write_batch(&[(m, 1, &[RawPoint { t, value: Some(t as f64), anomalous: false }][..])], Some(clock));
        s.seal_pending().expect("seal");
        o.expect("write")
    };
    // Spans of 16 s; the clock reads 30. A fast writer is at 45, past
    // the boundary at 32 and its grace: uncapped, the head would be 32.
    assert_eq!(one(&mut s, 0, 30, 30).written, 1);
    assert_eq!(one(&mut s, 1, 45, 30).written, 1);
    assert_eq!(s.late_before(1), Some(16), "the head follows the clock (30 - 4), not the sample");
    for (t, clock) in [(31, 31), (29, 33), (27, 34)] {
        assert_eq!(one(&mut s, 0, t, clock), RunOutcome { written: 1, late: 0 }, "on time at {t}, clock {clock}");
    }
    assert_eq!(s.stats()[0].0, 0, "nothing sealed yet");
    // Once the clock is past 32 + 4, [16, 32) closes and is late.
    assert_eq!(one(&mut s, 0, 37, 37).written, 1);
    assert_eq!(s.late_before(1), Some(32));
    assert_eq!(one(&mut s, 0, 28, 37), RunOutcome { written: 0, late: 1 });
    assert_eq!(s.stats()[0].0, 1, "[16, 32) sealed");
    // Without a clock (bulk loads, records of earlier builds) the newest
    // sample moves the head, as before.
    let mut s = Store::new(cfg);
    s.write_batch(&[(1, 1, &[RawPoint { t: 45, value: Some(1.0), anomalous: false }][..])], None).expect("write");
    assert_eq!(s.late_before(1), Some(32));
}

/// Retention counts back from the clock-capped newest sample too: a
/// sample ahead of the clock does not drop a span the clock still keeps.
#[test]
fn a_sample_ahead_of_the_clock_drops_nothing_retention_keeps() {
    let mut cfg = small_cfg();
    cfg.tiers[0].retention_secs = 40;
    let mut s = Store::new(cfg);
    let one = |s: &mut Store, m: MetricId, t: i64, clock: i64| {
        let o = s.write_batch(&[(m, 1, &[RawPoint { t, value: Some(1.0), anomalous: false }][..])], Some(clock));
        s.seal_pending().expect("seal");
        o.expect("write")
    };
    for t in 0..64 {
        assert_eq!(one(&mut s, 0, t, t).written, 1);
    }
    // A fast writer at 75 while the clock reads 63 moves no head ...
    assert_eq!(one(&mut s, 1, 75, 63).written, 1);
    assert_eq!(s.extent(0, 0).map(|e| e.first), Some(0));
    // ... and when the clock reaches 64 the head moves to [64, 80):
    // retention keeps what ends after 64 - 40 = 24, so [16, 32) stays
    // (counted from the fast sample, 75 - 40 = 35 would drop it).
    assert_eq!(one(&mut s, 0, 64, 64).written, 1);
    assert_eq!(s.extent(0, 0).map(|e| e.first), Some(16), "[0, 16) dropped, [16, 32) kept");
}

#[test]
fn sealed_and_open_spans_read_back_in_order() {
    let mut s = Store::new(small_cfg());
    for t in 0..100 {
        let v = if t % 7 == 3 { None } else { Some(t as f64) };
        put(&mut s, 0, t, v, t % 11 == 0).expect("write");
    }
    let got = collect(&s, 0, 0, -1, 99);
    let want: Vec<i64> = (0..100).filter(|t| t % 7 != 3).collect();
    assert_eq!(got.iter().map(|(t, _)| *t).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|(t, p)| p.sum == *t as f64));
    assert_eq!(collect(&s, 0, 0, 10, 20).len(), 9); // 11..=20 minus 17
    let st = s.stats();
    assert!(st[0].0 >= 5, "tier-0 spans sealed: {st:?}");
}

#[test]
fn overwrite_rebuilds_the_rollup_point() {
    let mut s = Store::new(StorageConfig::default());
    for t in 1..=60 {
        s.write(0, 1, t, Some(t as f64), false).expect("write");
    }
    s.write(0, 1, 60, Some(-5.0), false).expect("overwrite max");
    s.write(0, 1, 1, None, false).expect("overwrite with gap");
    let p = collect(&s, 0, 1, 0, 60)[0].1;
    assert_eq!(p.count, 59);
    assert_eq!(p.max, 59.0);
    assert_eq!(p.min, -5.0);
    assert_eq!(p.sum, (2..=59).sum::<i64>() as f64 - 5.0);
}

#[test]
fn extent_of_higher_tiers_includes_the_open_point() {
    let mut s = Store::new(StorageConfig::default());
    for t in 1..=150 {
        s.write(0, 1, t, Some(1.0), false).expect("write");
    }
    assert_eq!(s.extent(0, 0), Some(Extent { first: 1, last: 150 }));
    // The minute (120, 180] is still filling; it holds samples 121..=150.
    assert_eq!(s.extent(0, 1), Some(Extent { first: 60, last: 180 }));
    assert_eq!(s.extent(0, 2), Some(Extent { first: 3600, last: 3600 }));
}

#[test]
fn a_gap_written_over_an_end_sample_moves_that_end() {
    let mut s = Store::new(StorageConfig::default());
    let w = |s: &mut Store, t: i64, v: Option<f64>| s.write(0, 1, t, v, false).expect("write");
    // Samples at 61, 70 and 200; minutes (60, 120] and (180, 240].
    for (t, v) in [(61, 7.0), (70, 1.0), (200, 3.0)] {
        w(&mut s, t, Some(v));
    }
    assert_eq!(s.extent(0, 0), Some(Extent { first: 61, last: 200 }));
    w(&mut s, 61, None);
    assert_eq!(s.extent(0, 0), Some(Extent { first: 70, last: 200 }), "the first moves to the next sample");
    assert_eq!(s.extent(0, 1), Some(Extent { first: 120, last: 240 }), "minute (60, 120] still holds 70");
    w(&mut s, 200, None);
    assert_eq!(s.extent(0, 0), Some(Extent { first: 70, last: 70 }), "the last moves back");
    assert_eq!(s.extent(0, 1), Some(Extent { first: 120, last: 120 }), "minute (180, 240] is empty now");
    // A gap inside the extent, or where nothing was, moves nothing.
    w(&mut s, 65, None);
    assert_eq!(s.extent(0, 0), Some(Extent { first: 70, last: 70 }));
    w(&mut s, 70, None);
    assert_eq!((s.extent(0, 0), s.extent(0, 1)), (None, None), "nothing held is no extent");
    w(&mut s, 90, Some(2.0));
    assert_eq!(s.extent(0, 0), Some(Extent { first: 90, last: 90 }));
}

#[test]
fn an_end_moved_by_a_gap_is_found_in_sealed_spans() {
    // 16 s spans, no late grace: samples at 5 and 20 seal the first span.
    let mut s = Store::new(small_cfg());
    put(&mut s, 0, 5, Some(1.0), false).expect("write");
    put(&mut s, 0, 40, Some(2.0), false).expect("write");
    assert_eq!(s.stats()[0].0, 1, "the span of 5 is sealed");
    assert_eq!(s.extent(0, 0), Some(Extent { first: 5, last: 40 }));
    put(&mut s, 0, 40, None, false).expect("write");
    assert_eq!(s.extent(0, 0), Some(Extent { first: 5, last: 5 }), "the last found back in the sealed span");
}

#[test]
fn retention_drops_old_sealed_spans() {
    let mut cfg = small_cfg();
    cfg.tiers[0].retention_secs = 32;
    let mut s = Store::new(cfg);
    for t in 0..200 {
        put(&mut s, 0, t, Some(1.0), false).expect("write");
    }
    let ext = s.extent(0, 0).expect("extent");
    assert!(ext.first >= 200 - 32 - 16, "first {} should be recent", ext.first);
    assert!(collect(&s, 0, 0, -1, 100).is_empty());
}

#[test]
fn rollup_import_is_readable_and_refused_after_the_head() {
    let mut s = Store::new(StorageConfig::default());
    let p = AggPoint { sum: 120.0, min: 1.0, max: 3.0, count: 60, anomaly_count: 2 };
    assert_eq!(s.write_rollup(0, 1, 1, 600, p), WriteOutcome::Written);
    s.advance(1, 3600, 3600).expect("advance");
    assert_eq!(s.write_rollup(0, 1, 1, 660, p), WriteOutcome::Late);
    assert_eq!(collect(&s, 0, 1, 0, 3600), vec![(600, p)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Tier-1 and tier-2 points equal a recomputation from tier 0, for
    /// random data with gaps and overwrites, across span seals.
    #[test]
    fn rollups_equal_recomputation_from_tier0(
        samples in prop::collection::vec((0i64..20_000, prop::option::weighted(0.8, -1e6f64..1e6), any::<bool>()), 1..400)
    ) {
        let mut sorted = samples.clone();
        sorted.sort_by_key(|s| s.0);
        let mut s = Store::new(StorageConfig::default());
        for &(t, v, a) in &sorted {
            prop_assert_eq!(s.write(0, 1, t, v, a).expect("write"), WriteOutcome::Written);
        }
        // Reference: last write per slot wins.
        let mut last = std::collections::BTreeMap::new();
        for &(t, v, a) in &sorted {
            last.insert(t, (v, a));
        }
        for tier in 1..3 {
            let res = s.config().resolution(tier, 1);
            let mut want: std::collections::BTreeMap<i64, AggPoint> = Default::default();
            for (&t, &(v, a)) in &last {
                let Some(v) = v else { continue };
                let e = window_end(t, res);
                let p = want.entry(e).or_insert(AggPoint { sum: 0.0, min: v, max: v, count: 0, anomaly_count: 0 });
                p.sum += v;
                p.min = p.min.min(v);
                p.max = p.max.max(v);
                p.count += 1;
                p.anomaly_count += u32::from(a);
            }
            let got = collect(&s, 0, tier, i64::MIN / 2, i64::MAX / 2);
            prop_assert_eq!(got.len(), want.len());
            for ((ge, gp), (we, wp)) in got.iter().zip(want.iter()) {
                prop_assert_eq!(ge, we);
                prop_assert_eq!(gp.count, wp.count);
                prop_assert_eq!(gp.anomaly_count, wp.anomaly_count);
                prop_assert_eq!(gp.min, wp.min);
                prop_assert_eq!(gp.max, wp.max);
                prop_assert!((gp.sum - wp.sum).abs() <= 1e-6 * wp.sum.abs().max(1.0));
            }
        }
    }
}

#[test]
fn without_persistence_sealed_and_dropped_segments_are_not_kept_alive() {
    let mut cfg = small_cfg();
    cfg.tiers[0].retention_secs = 32;
    let mut s = Store::new(cfg);
    for t in 0..200 {
        put(&mut s, 0, t, Some(1.0), false).expect("write");
    }
    assert!(!s.has_sealed_events(), "nobody drains events without persistence");
    let mut t = Store::new(cfg);
    t.track_events();
    for k in 0..200 {
        put(&mut t, 0, k, Some(1.0), false).expect("write");
    }
    let (sealed, dropped) = t.take_events();
    assert!(!sealed.is_empty() && !dropped.is_empty());
}

/// A batch for the equivalence test: series of (metric, samples).
type Batch = Vec<(MetricId, Vec<(i64, Option<f64>, bool)>)>;

/// Small spans and rollups, and a grace, so batches seal often.
fn batch_cfg() -> StorageConfig {
    let mut cfg = small_cfg();
    cfg.tiers[1].factor = 4;
    cfg.tiers[2].factor = 16;
    cfg.late_grace_secs = 5;
    cfg
}

/// A batch's samples in one list, and each series' range of it.
fn flatten(b: &Batch) -> (Vec<RawPoint>, Vec<(MetricId, std::ops::Range<usize>)>) {
    let mut points = Vec::new();
    let mut ranges = Vec::new();
    for (m, pts) in b {
        let from = points.len();
        points.extend(pts.iter().map(|&(t, value, anomalous)| RawPoint { t, value, anomalous }));
        ranges.push((*m, from..points.len()));
    }
    (points, ranges)
}

/// [`flatten`]'s lists as the series `write_batch` takes (update_every 1).
fn as_series<'a>(points: &'a [RawPoint], ranges: &[(MetricId, std::ops::Range<usize>)]) -> Vec<SeriesRun<'a>> {
    ranges.iter().map(|(m, r)| (*m, 1, &points[r.clone()])).collect()
}

fn batch_strategy() -> impl Strategy<Value = Vec<Batch>> {
    // Integer values keep sums exact whatever the order of additions.
    let sample = (0i64..120, prop::option::weighted(0.8, (-1000i64..1000).prop_map(|v| v as f64)), any::<bool>());
    let series = (0u32..4, prop::collection::vec(sample, 0..40));
    // Later batches reach further in time, so heads move and spans seal.
    prop::collection::vec(prop::collection::vec(series, 1..5), 1..8).prop_map(|batches| {
        batches
            .into_iter()
            .enumerate()
            .map(|(k, b)| {
                b.into_iter()
                    .map(|(m, pts)| (m, pts.into_iter().map(|(t, v, a)| (t + 40 * k as i64, v, a)).collect()))
                    .collect()
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// `write_batch` (per-span runs) leaves exactly the state, counts and
    /// extents that writing each sample in time order leaves, late samples,
    /// overwrites, gaps and seals included; so does writing its runs a few
    /// at a time (`write_runs`, as the engine does in turns of its lock).
    #[test]
    fn write_batch_equals_per_sample_writes_in_time_order(batches in batch_strategy(), turn in 1usize..4) {
        let cfg = batch_cfg();
        let (mut reference, mut runs, mut turns) = (Store::new(cfg), Store::new(cfg), Store::new(cfg));
        for b in &batches {
            let mut writes: Vec<(i64, MetricId, Option<f64>, bool)> =
                b.iter().flat_map(|(m, pts)| pts.iter().map(move |&(t, v, a)| (t, *m, v, a))).collect();
            writes.sort_by_key(|w| w.0);
            let mut want = RunOutcome::default();
            for (t, m, v, a) in writes {
                match reference.write(m, 1, t, v, a).expect("write") {
                    WriteOutcome::Written => want.written += 1,
                    WriteOutcome::Late => want.late += 1,
                }
            }
            let (points, ranges) = flatten(b);
            let series = as_series(&points, &ranges);
            prop_assert_eq!(runs.write_batch(&series, None).expect("write_batch"), want);
            let mut got = RunOutcome::default();
            for piece in Store::batch_runs(&cfg, &series).chunks(turn) {
                let o = turns.write_runs(piece, None).expect("write_runs");
                (got.written, got.late) = (got.written + o.written, got.late + o.late);
            }
            prop_assert_eq!(got, want, "in turns of {} runs", turn);
        }
        for m in 0..4 {
            for tier in 0..TIERS {
                for (store, how) in [(&runs, "write_batch"), (&turns, "write_runs")] {
                    prop_assert_eq!(store.extent(m, tier), reference.extent(m, tier), "extent m{} tier{} {}", m, tier, how);
                    let (got, want) = (collect(store, m, tier, -1, 1000), collect(&reference, m, tier, -1, 1000));
                    prop_assert_eq!(got, want, "m{} tier{} {}", m, tier, how);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// With the ingest's clock, whatever it reads batch to batch (behind
    /// the samples, ahead, going back): the head never passes the one the
    /// clock allows (the largest clock seen, less the grace), and the runs
    /// written a few at a time leave exactly what `write_batch` leaves.
    #[test]
    fn a_clock_caps_the_head_and_turns_write_alike(
        batches in batch_strategy(),
        clocks in prop::collection::vec(prop::option::of(0i64..400), 8),
        turn in 1usize..4,
    ) {
        let cfg = batch_cfg();
        let (mut whole, mut turns) = (Store::new(cfg), Store::new(cfg));
        let mut newest: Option<i64> = None;
        let mut allowed: Option<i64> = None;
        for (b, &clock) in batches.iter().zip(&clocks) {
            let (points, ranges) = flatten(b);
            let series = as_series(&points, &ranges);
            let want = whole.write_batch(&series, clock).expect("write_batch");
            let mut got = RunOutcome::default();
            for piece in Store::batch_runs(&cfg, &series).chunks(turn) {
                let o = turns.write_runs(piece, clock).expect("write_runs");
                (got.written, got.late) = (got.written + o.written, got.late + o.late);
            }
            prop_assert_eq!(got, want, "in turns of {} runs", turn);
            if let Some(t) = points.iter().map(|p| p.t).max() {
                let n = newest.map_or(t, |n: i64| n.max(t));
                newest = Some(n);
                let cap = clock.map_or(n, |c| n.min(c));
                allowed = Some(allowed.map_or(cap, |a| a.max(cap)));
            }
            if let (Some(head), Some(a)) = (whole.late_before(1), allowed) {
                prop_assert!(head <= cfg.head_for(a, 1), "head {} past what the clock allows ({})", head, a);
            }
        }
        for m in 0..4 {
            for tier in 0..TIERS {
                prop_assert_eq!(turns.extent(m, tier), whole.extent(m, tier), "extent m{} tier{}", m, tier);
                prop_assert_eq!(collect(&turns, m, tier, -1, 1000), collect(&whole, m, tier, -1, 1000), "m{} tier{}", m, tier);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// Each tier's extent is the first and last point holding a value, for
    /// writes in any order with gaps written over samples (last write wins).
    #[test]
    fn extents_are_the_first_and_last_points_held(
        writes in prop::collection::vec(
            // Clusters around hour (tier-0 span) boundaries, so gaps often
            // land on an end and the next sample is spans away.
            (prop_oneof![0i64..40, 3_590i64..3_610, 7_190i64..7_230, 40_000i64..40_020],
             prop::option::weighted(0.6, -1e3f64..1e3)),
            1..300,
        )
    ) {
        let mut s = Store::new(StorageConfig { late_grace_secs: 10 * DAY, ..Default::default() });
        let mut last = std::collections::BTreeMap::new();
        for &(t, v) in &writes {
            prop_assert_eq!(s.write(0, 1, t, v, false).expect("write"), WriteOutcome::Written);
            last.insert(t, v);
        }
        let held: Vec<i64> = last.iter().filter(|(_, v)| v.is_some()).map(|(&t, _)| t).collect();
        for tier in 0..TIERS {
            let res = s.config().resolution(tier, 1);
            let want = held.first().zip(held.last()).map(|(&a, &b)| Extent { first: window_end(a, res), last: window_end(b, res) });
            prop_assert_eq!(s.extent(0, tier), want, "tier {}", tier);
        }
    }
}

/// A size-bound drop of the oldest tier-0 span reaches the manifest at
/// once and the heads only with the next snapshot: restored from the
/// heads of before the drop (a crash in between), the store still knows
/// that the rollups alone hold that span (an outside probe: after kill -9,
/// such history answered null where it answered from the rollups before).
#[test]
fn a_restore_from_heads_older_than_a_drop_keeps_the_rollup_only_span() {
    let mut s = Store::new(small_cfg());
    // Past the first tier-1 span (8 minutes), so the restore's sealed
    // files hold rollups older than tier 0's oldest kept span.
    for t in 0..1_000 {
        put(&mut s, 0, t, Some(1.0), false).expect("write");
    }
    assert_eq!(s.rollup_only_until(1), None);
    let heads = s.heads();
    assert!(s.drop_sealed(0, 1, 0), "the oldest tier-0 span");
    assert_eq!(s.rollup_only_until(1), Some(16));
    let mut r = Store::new(small_cfg());
    for tier in 0..TIERS {
        for seg in s.sealed(1, tier).iter() {
            r.insert_sealed(tier, 1, seg.clone());
        }
    }
    for h in heads {
        r.set_head(h);
    }
    assert_eq!(r.rollup_only_until(1), Some(16));
}
