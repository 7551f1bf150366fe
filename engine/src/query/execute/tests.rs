use super::*;
use crate::query::kernels::{Average, Max, Sum};
use crate::query::window::Window;
use crate::storage::{StorageConfig, Store};

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

fn run(store: &Store, w: Window, field: Field, k: Box<dyn Kernel>, parts: &[Part]) -> (Buckets, PointStats, TierUse) {
    let mut ex = Executor::new(store, w, field, false, k);
    let (mut b, mut st, mut tu) = (Buckets::default(), PointStats::default(), TierUse::default());
    ex.run_metric(0, 1, parts, &mut b, &mut st, &mut tu);
    (b, st, tu)
}

#[test]
fn tier0_buckets_hold_points_ending_inside() {
    // Values t for t in 1..=20, gap at 7.
    let data: Vec<_> = (1..=20).map(|t| (t, if t == 7 { None } else { Some(t as f64) })).collect();
    let s = store_with(&data);
    let w = window(1, 4, 5); // buckets end 5, 10, 15, 20
    let parts = [Part { tier: 0, from: -100, to: 100 }];
    let (b, st, tu) = run(&s, w, Field::Average, Box::new(Average::new(None)), &parts);
    assert_eq!(b.values, vec![3.0, (6.0 + 8.0 + 9.0 + 10.0) / 4.0, 13.0, 18.0]);
    assert_eq!(b.flags, vec![0; 4]);
    // Anomalous samples are those at multiples of 10: one in bucket 2 of 4 samples.
    assert_eq!(b.arp[1], 25.0);
    assert_eq!(st.count, 19);
    assert_eq!((st.min, st.max), (1.0, 20.0));
    assert_eq!(tu.points[0], 19);
    assert_eq!(tu.queries[0], 1);
}

#[test]
fn empty_buckets_are_flagged() {
    let s = store_with(&[(3, Some(1.0)), (12, Some(2.0))]);
    let (b, _, _) =
        run(&s, window(1, 3, 5), Field::Sum, Box::new(Sum::default()), &[Part { tier: 0, from: -10, to: 100 }]);
    assert_eq!(b.flags, vec![0, PA_EMPTY, 0]);
    assert_eq!((b.values[0], b.values[2]), (1.0, 2.0));
}

#[test]
fn tier1_average_equals_tier0_on_minute_aligned_buckets() {
    let data: Vec<_> =
        (1..=600).map(|t| (t, if t % 13 == 0 { None } else { Some(((t * 7919) % 101) as f64) })).collect();
    let s = store_with(&data);
    let w = window(1, 5, 120);
    let (b0, st0, _) =
        run(&s, w, Field::Average, Box::new(Average::new(None)), &[Part { tier: 0, from: -10, to: 700 }]);
    let (b1, st1, tu1) =
        run(&s, w, Field::Average, Box::new(Average::new(None)), &[Part { tier: 1, from: -10, to: 700 }]);
    // Tier-1 averages are means of per-minute means: compare with that.
    for i in 0..5 {
        let lo = 1 + i as i64 * 120;
        let minute_mean = |a: i64| {
            let v: Vec<f64> = (a..a + 60).filter(|t| t % 13 != 0).map(|t| ((t * 7919) % 101) as f64).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let want = (minute_mean(lo) + minute_mean(lo + 60)) / 2.0;
        assert!((b1.values[i] - want).abs() < 1e-9, "bucket {i}: {} vs {want}", b1.values[i]);
        assert!(b0.values[i].is_finite());
    }
    assert_eq!(st0.count, st1.count);
    assert!((st0.sum - st1.sum).abs() < 1e-6);
    assert_eq!(tu1.points[1], 10, "ten per-minute points served");
}

#[test]
fn wide_points_are_interpolated_at_bucket_ends() {
    // Two complete minutes: averages 10 and 20; ask for 30 s buckets on tier 1.
    let mut data = Vec::new();
    for t in 1..=60 {
        data.push((t, Some(10.0)));
    }
    for t in 61..=120 {
        data.push((t, Some(20.0)));
    }
    let s = store_with(&data);
    let w = window(61, 2, 30); // buckets end 90 and 120
    let (b, _, _) = run(&s, w, Field::Max, Box::new(Max::default()), &[Part { tier: 1, from: -10, to: 200 }]);
    // At 90 the minute (60, 120] is half done: 10 + (20 - 10) * 0.5 = 15.
    assert_eq!(b.values, vec![15.0, 20.0]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// On gap-free data, minute-aligned buckets give the same average and sum
    /// from tier 1 as from tier 0.
    #[test]
    fn tier1_equals_tier0_on_minute_aligned_buckets(
        vals in proptest::collection::vec(-1e4f64..1e4, 600),
        minutes_per_bucket in 1i64..5,
    ) {
        let data: Vec<_> = vals.iter().enumerate().map(|(i, v)| (i as i64 + 1, Some(*v))).collect();
        let s = store_with(&data);
        let v = 60 * minutes_per_bucket;
        let w = window(1, (600 / v) as usize, v);
        let parts0 = [Part { tier: 0, from: -10, to: 700 }];
        let parts1 = [Part { tier: 1, from: -10, to: 700 }];
        for (field, mk) in [(Field::Average, 0), (Field::Sum, 1)] {
            let k = || -> Box<dyn Kernel> { if mk == 0 { Box::new(Average::new(None)) } else { Box::new(Sum::default()) } };
            let (b0, _, _) = run(&s, w, field, k(), &parts0);
            let (b1, _, _) = run(&s, w, field, k(), &parts1);
            for (a, b) in b0.values.iter().zip(&b1.values) {
                proptest::prop_assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{field:?}: {a} vs {b}");
            }
        }
    }
}
