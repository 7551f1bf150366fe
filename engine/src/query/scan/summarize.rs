//! One pass over a slice of tier-0 values: the aggregate (sum, min, max,
//! count, anomalous count) that both the per-metric statistics and the
//! time groups that merge aggregates need, so those read each value once.
//! Slices whose validity bits are all set take a branch-free loop over
//! independent lanes, which the compiler vectorises.

use crate::storage::bits::BitSlice;
use crate::storage::AggPoint;

const LANES: usize = 8;

/// The aggregate of the valid values of a slice (`valid == None`: all are).
#[inline]
pub fn summarize(values: &[f64], valid: Option<BitSlice<'_>>, anomaly: Option<BitSlice<'_>>) -> AggPoint {
    let n = values.len();
    let dense = valid.is_none_or(|v| v.all_set(n));
    let (sum, min, max, count) = if dense { dense_sum_min_max(values) } else { sparse_sum_min_max(values, valid) };
    let anomaly_count = match (anomaly, valid) {
        (None, _) => 0,
        (Some(a), Some(v)) if !dense => a.count_and(&v, n),
        (Some(a), _) => a.count_ones(n),
    };
    AggPoint { sum, min, max, count: count as u32, anomaly_count: anomaly_count as u32 }
}

#[inline]
fn dense_sum_min_max(values: &[f64]) -> (f64, f64, f64, u64) {
    let mut s = [0.0f64; LANES];
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let v = c[k];
            s[k] += v;
            lo[k] = if v < lo[k] { v } else { lo[k] };
            hi[k] = if v > hi[k] { v } else { hi[k] };
        }
    }
    let mut sum = s.iter().sum::<f64>();
    let mut min = lo.iter().copied().fold(f64::INFINITY, f64::min);
    let mut max = hi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for &v in rest {
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    (sum, min, max, values.len() as u64)
}

fn sparse_sum_min_max(values: &[f64], valid: Option<BitSlice<'_>>) -> (f64, f64, f64, u64) {
    let (mut sum, mut min, mut max, mut count) = (0.0, f64::INFINITY, f64::NEG_INFINITY, 0u64);
    for (i, &v) in values.iter().enumerate() {
        if valid.is_none_or(|b| b.get(i)) {
            sum += v;
            min = min.min(v);
            max = max.max(v);
            count += 1;
        }
    }
    (sum, min, max, count)
}

/// The aggregate of |x| over the same values, from the plain aggregate
/// when the signs allow (one sign: identity or mirror), else by a pass.
pub fn absolute(p: &AggPoint, values: &[f64], valid: Option<BitSlice<'_>>) -> AggPoint {
    if p.min >= 0.0 {
        *p
    } else if p.max <= 0.0 {
        AggPoint { sum: -p.sum, min: -p.max, max: -p.min, ..*p }
    } else {
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for (i, &v) in values.iter().enumerate() {
            if valid.is_none_or(|b| b.get(i)) {
                let a = v.abs();
                sum += a;
                min = min.min(a);
                max = max.max(a);
            }
        }
        AggPoint { sum, min, max, ..*p }
    }
}

/// The aggregate of |x| for a rollup point, when its signs allow; `None`
/// when it holds both signs (the absolute sum is not in it).
pub fn absolute_point(p: &AggPoint) -> Option<AggPoint> {
    if p.min >= 0.0 {
        Some(*p)
    } else if p.max <= 0.0 {
        Some(AggPoint { sum: -p.sum, min: -p.max, max: -p.min, ..*p })
    } else {
        None
    }
}

/// With `anomaly-bit` every sample stands for 100 (anomalous) or 0: the
/// aggregate of those values follows from the counts alone.
pub fn anomaly_rates(p: &AggPoint) -> AggPoint {
    let (c, a) = (p.count, p.anomaly_count);
    AggPoint {
        sum: 100.0 * f64::from(a),
        min: if a == c { 100.0 } else { 0.0 },
        max: if a > 0 { 100.0 } else { 0.0 },
        count: c,
        anomaly_count: a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The lane loop and the validity-aware loop agree with a plain fold.
        #[test]
        fn matches_a_plain_fold(
            values in prop::collection::vec(-1e3f64..1e3, 0..100),
            valid in prop::collection::vec(any::<u8>(), 16),
            anomaly in prop::collection::vec(any::<u8>(), 16),
            offset in 0usize..20,
            dense in any::<bool>(),
        ) {
            let vb = BitSlice::new(&valid, offset);
            let ab = BitSlice::new(&anomaly, offset);
            let n = values.len();
            let ok = |i: usize| dense || vb.get(i);
            let p = summarize(&values, (!dense).then_some(vb), Some(ab));
            let kept: Vec<f64> = (0..n).filter(|&i| ok(i)).map(|i| values[i]).collect();
            prop_assert_eq!(p.count as usize, kept.len());
            prop_assert_eq!(p.anomaly_count as usize, (0..n).filter(|&i| ok(i) && ab.get(i)).count());
            prop_assert!((p.sum - kept.iter().sum::<f64>()).abs() < 1e-9);
            if !kept.is_empty() {
                prop_assert_eq!(p.min, kept.iter().copied().fold(f64::INFINITY, f64::min));
                prop_assert_eq!(p.max, kept.iter().copied().fold(f64::NEG_INFINITY, f64::max));
                let abs = absolute(&p, &values, (!dense).then_some(vb));
                prop_assert!((abs.sum - kept.iter().map(|v| v.abs()).sum::<f64>()).abs() < 1e-9);
                prop_assert_eq!(abs.max, kept.iter().map(|v| v.abs()).fold(0.0, f64::max));
                prop_assert_eq!(abs.min, kept.iter().map(|v| v.abs()).fold(f64::INFINITY, f64::min));
            }
        }
    }
}
