//! Property tests tying the time groups to each other.

use proptest::prelude::*;

use super::test_util::run;
use super::{build, KernelParams};
use crate::query::time_group::TimeGroup;

fn one(name: &str, opts: Option<&str>, values: &[f64]) -> Option<f64> {
    let mut tg = TimeGroup::parse(name, "time_group").expect("known name");
    tg.options = opts.map(str::to_string);
    let p = KernelParams { points: 1, group: values.len().max(1) as i64, resampling_divisor: None };
    let mut k = build(&tg, &p).expect("kernel");
    run(k.as_mut(), &[values])[0]
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn trimmed_mean0_and_percentile100_are_the_average(v in prop::collection::vec(-1e6f64..1e6, 1..200)) {
        let avg = one("average", None, &v);
        prop_assert!(close(one("trimmed-mean", Some("0"), &v), avg));
        prop_assert!(close(one("percentile", Some("100"), &v), avg));
    }

    #[test]
    fn on_positive_data_extremes_and_max_are_the_maximum(v in prop::collection::vec(0.0f64..1e6, 1..200)) {
        let m = v.iter().copied().fold(f64::MIN, f64::max);
        prop_assert_eq!(one("extremes", None, &v), Some(m));
        prop_assert_eq!(one("max", None, &v), Some(m));
        prop_assert_eq!(one("min", None, &v), Some(v.iter().copied().fold(f64::MAX, f64::min)));
    }

    #[test]
    fn median_is_the_middle_order_statistic(v in prop::collection::vec(-1e6f64..1e6, 1..200)) {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let want = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        prop_assert!(close(one("median", None, &v), Some(want)));
        // Trimming can only move the median inside the data's range.
        let t = one("trimmed-median", None, &v).expect("non-empty");
        prop_assert!(t >= s[0] && t <= s[n - 1]);
    }

    #[test]
    fn stddev_cv_and_countif_agree_with_definitions(v in prop::collection::vec(1.0f64..1e3, 2..100)) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        prop_assert!(close(one("stddev", None, &v), Some(sd)));
        prop_assert!(close(one("cv", None, &v), Some(100.0 * sd / mean)));
        let above = v.iter().filter(|&&x| x > mean).count() as f64 * 100.0 / n;
        let cond = format!(">{mean}");
        let got = one("countif", Some(&cond), &v);
        prop_assert!(close(got, Some(above)));
    }
}

/// The aggregate a rollup point or a slice summary would carry.
fn agg_of(v: &[f64]) -> crate::storage::AggPoint {
    crate::storage::AggPoint {
        sum: v.iter().sum(),
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        count: v.len() as u32,
        anomaly_count: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `add_agg` of chunks (falling back to the values where it refuses)
    /// answers what adding every value does, for the methods that merge
    /// rollups; the others always refuse, so they never see an aggregate.
    #[test]
    fn add_agg_equals_adding_the_values(
        chunks in prop::collection::vec(
            prop::collection::vec(prop_oneof![-50i32..50, Just(0), Just(7), Just(-7)].prop_map(f64::from), 1..20),
            0..8),
        name in prop::sample::select(vec![
            "average", "sum", "min", "max", "extremes", "median", "percentile", "stddev", "countif",
            "incremental-sum", "ses", "des", "latest", "trimmed-mean", "cv",
        ]),
    ) {
        let tg = TimeGroup::parse(name, "time_group").expect("known name");
        let p = KernelParams { points: 1, group: 1, resampling_divisor: None };
        let (mut by_agg, mut by_value) = (build(&tg, &p).expect("kernel"), build(&tg, &p).expect("kernel"));
        for c in &chunks {
            let merged = by_agg.add_agg(&agg_of(c));
            prop_assert!(!merged || tg.method.merges_rollups(), "{} merged an aggregate", name);
            if !merged {
                c.iter().for_each(|&v| by_agg.add(v));
            }
            c.iter().for_each(|&v| by_value.add(v));
        }
        prop_assert!(close(by_agg.flush(), by_value.flush()), "{}", name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A slice with validity bits feeds a time group exactly what adding
    /// its valid values one by one does, for every time group.
    #[test]
    fn add_slice_equals_adding_the_valid_values(
        v in prop::collection::vec(-1e6f64..1e6, 0..200),
        bits in prop::collection::vec(any::<u8>(), 26),
        offset in 0usize..8,
        masked in any::<bool>(),
    ) {
        use crate::storage::bits::BitSlice;
        let valid = masked.then(|| BitSlice::new(&bits, offset));
        let kept: Vec<f64> = (0..v.len()).filter(|&i| valid.is_none_or(|b| b.get(i))).map(|i| v[i]).collect();
        for (name, opts) in [("median", None), ("trimmed-median", Some("10")), ("percentile", Some("95")),
                             ("trimmed-mean", Some("5")), ("average", None), ("sum", None), ("stddev", None),
                             ("min", None), ("max", None), ("cv", None)] {
            let mut tg = TimeGroup::parse(name, "time_group").expect("known name");
            tg.options = opts.map(str::to_string);
            let p = KernelParams { points: 1, group: v.len().max(1) as i64, resampling_divisor: None };
            let (mut a, mut b) = (build(&tg, &p).expect("kernel"), build(&tg, &p).expect("kernel"));
            a.add_slice(&v, valid);
            kept.iter().for_each(|&x| b.add(x));
            let (x, y) = (a.flush(), b.flush());
            prop_assert!(close(x, y), "{}: {:?} vs {:?}", name, x, y);
        }
    }
}
