//! Shared order-statistics helpers for median, percentile and trimmed
//! mean. They work on a reused scratch buffer by selection
//! (`select_nth_unstable`, O(n)), never by sorting a whole bucket.

/// Mean of `k` consecutive order statistics starting at rank `start`
/// (ascending), plus Netdata's fractional extra slot: with weight `w > 0`
/// and a next value present, `next * w + last_taken * (1 - w)` is added as
/// one more element. `v` is reordered.
pub(crate) fn mean_of_ranks(v: &mut [f64], start: usize, k: usize, w: f64) -> f64 {
    let n = v.len();
    let start = start.min(n - 1);
    let k = k.clamp(1, n - start);
    if start > 0 {
        v.select_nth_unstable_by(start, f64::total_cmp);
    }
    let rest = &mut v[start..];
    if k < rest.len() {
        rest.select_nth_unstable_by(k - 1, f64::total_cmp);
    }
    let taken = &rest[..k];
    let mut total: f64 = taken.iter().sum();
    let mut count = k as f64;
    let last_taken = taken.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if w > 0.0 && k < rest.len() {
        let next = rest[k..].iter().copied().fold(f64::INFINITY, f64::min);
        total += next * w + last_taken * (1.0 - w);
        count += 1.0;
    }
    total / count
}

/// The q-quantile with linear interpolation between neighbours (index
/// q * (n - 1)), by selection. `v` is reordered.
pub(crate) fn interpolated(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    let idx = q * (n - 1) as f64;
    let lo = idx.floor() as usize;
    let (_, &mut a, right) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if idx.fract() == 0.0 || right.is_empty() {
        return a;
    }
    let b = right.iter().copied().fold(f64::INFINITY, f64::min);
    a + (b - a) * idx.fract()
}

/// Parses a numeric option as Netdata does: a non-number is 0; clamped.
pub(crate) fn percent_option(opt: Option<&str>, default: f64, lo: f64, hi: f64) -> f64 {
    match opt.map(str::trim).filter(|s| !s.is_empty()) {
        None => default,
        Some(s) => s.parse::<f64>().ok().filter(|v| v.is_finite()).unwrap_or(0.0).clamp(lo, hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_fractional_slot() {
        let mut v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(mean_of_ranks(&mut v, 0, 3, 0.0), 2.0);
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        // 1,2,3 plus 4*0.5 + 3*0.5 as a fourth element.
        assert_eq!(mean_of_ranks(&mut v, 0, 3, 0.5), (6.0 + 3.5) / 4.0);
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(mean_of_ranks(&mut v, 2, 2, 0.0), 3.5);
    }

    #[test]
    fn interpolated_quantiles() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(interpolated(&mut v, 0.5), 2.5);
        let mut v = vec![5.0, 1.0, 3.0];
        assert_eq!(interpolated(&mut v, 0.5), 3.0);
        assert_eq!(percent_option(Some("abc"), 5.0, 0.0, 50.0), 0.0);
        assert_eq!(percent_option(Some("70"), 5.0, 0.0, 50.0), 50.0);
        assert_eq!(percent_option(None, 5.0, 0.0, 50.0), 5.0);
    }
}
