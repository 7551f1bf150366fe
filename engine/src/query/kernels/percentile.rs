//! `percentile` / `percentileNN`: Netdata's definition, kept for
//! compatibility: the MEAN of the lowest p fraction of values (of the
//! highest, walking down, when any value is negative), with its fractional
//! extra slot. Values 1..100 at p = 0.95 give 48, not 95.

use super::ordered::mean_of_ranks;
use super::Kernel;
use crate::storage::bits::BitSlice;

#[derive(Debug, Clone)]
pub struct Percentile {
    p: f64,
    values: Vec<f64>,
}

impl Percentile {
    pub fn new(percent: f64) -> Self {
        Percentile { p: percent / 100.0, values: Vec::new() }
    }
}

/// Shared by percentile and trimmed mean: mean of `k` ranks from `start`,
/// mirrored (walking down from the top) when any value is negative.
pub(crate) fn netdata_ranks(v: &mut [f64], start: usize, k: usize, w: f64) -> f64 {
    if v.iter().any(|&x| x < 0.0) {
        v.iter_mut().for_each(|x| *x = -*x);
        -mean_of_ranks(v, start, k, w)
    } else {
        mean_of_ranks(v, start, k, w)
    }
}

/// Netdata's "mean of a fraction" shared by percentile (the lowest
/// `fraction`) and trimmed mean (the middle `fraction`, `centered`): one value
/// is itself, equal values are that value, else the mean of `floor(n x
/// fraction)` ranks plus the fractional extra slot.
pub(crate) fn fraction_mean(v: &mut [f64], fraction: f64, centered: bool) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        1 => Some(v[0]),
        _ => {
            let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            if min == max {
                return Some(min);
            }
            let (k, w) = ranks_and_weight(n, fraction);
            let start = if centered { (n - k) / 2 } else { 0 };
            Some(netdata_ranks(v, start, k, w))
        }
    }
}

/// Netdata's whole ranks `k = floor(n x fraction)` (at least 1) and the
/// weight of the extra slot: the part of the fraction past `k / n`, in
/// slots. Taken as `fraction - k / n`, not `n x fraction - k`: where `n x
/// fraction` is a whole number its product may round above it (25 x 0.28
/// is 7.000000000000001), and any weight above 0 adds a whole element to
/// the mean's divisor; `k / n` rounds to the very `fraction` instead.
fn ranks_and_weight(n: usize, fraction: f64) -> (usize, f64) {
    let k = ((n as f64 * fraction) as usize).clamp(1, n);
    let taken = k as f64 / n as f64;
    let past = fraction - taken;
    let w = if past > 0.0 { past / ((k + 1) as f64 / n as f64 - taken) } else { 0.0 };
    (k, w)
}

impl Kernel for Percentile {
    fn reset(&mut self) {
        self.values.clear();
    }

    fn add(&mut self, v: f64) {
        self.values.push(v);
    }

    fn add_slice(&mut self, values: &[f64], valid: Option<BitSlice<'_>>) {
        super::extend_valid(&mut self.values, values, valid);
    }

    fn flush(&mut self) -> Option<f64> {
        let out = fraction_mean(&mut self.values, self.p, false);
        self.values.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn mean_of_lowest_fraction() {
        let vals: Vec<f64> = (1..=100).map(f64::from).collect();
        let mut k = Percentile::new(95.0);
        assert_eq!(run(&mut k, &[&vals]), vec![Some(48.0)]);
        let mut k = Percentile::new(50.0);
        assert_eq!(run(&mut k, &[&[3.0, 3.0], &[9.0]]), vec![Some(3.0), Some(9.0)]);
    }

    /// Where `n x p` is a whole number there is no extra slot, however the
    /// product rounds: 25 values at p = 0.28 take the 7 lowest.
    #[test]
    fn whole_rank_counts_take_no_extra_slot() {
        let mean = |lo: u32, hi: u32| f64::from(lo + hi) / 2.0;
        for (n, percent, k) in [(25u32, 28.0, 7u32), (100, 55.0, 55), (50, 14.0, 7), (100, 7.0, 7), (25, 36.0, 9)] {
            let vals: Vec<f64> = (1..=n).map(f64::from).collect();
            assert_eq!(run(&mut Percentile::new(percent), &[&vals]), vec![Some(mean(1, k))], "{n} values, p {percent}");
        }
        // Every count of values to 200 at every percent step, against the
        // definition in exact integers: k = floor(n x p) (at least 1) and
        // the extra slot's weight n x p - k.
        for n in 1..=200u32 {
            let vals: Vec<f64> = (1..=n).map(f64::from).collect();
            for step in 1..=100u32 {
                let k = ((n * step) / 100).max(1);
                let w = if n * step > 100 * k { f64::from(n * step - 100 * k) / 100.0 } else { 0.0 };
                let mut want = mean(1, k);
                if w > 0.0 && k < n {
                    want = (want * f64::from(k) + f64::from(k + 1) * w + f64::from(k) * (1.0 - w)) / f64::from(k + 1);
                }
                let got = run(&mut Percentile::new(f64::from(step)), &[&vals])[0].expect("a value");
                assert!((got - want).abs() <= 1e-12 * want, "1..{n} at {step} %: {got}, not {want}");
            }
        }
    }

    #[test]
    fn negative_values_walk_from_the_top() {
        // k = 2 largest of {-1, -2, -3, 5}: (5 + -1) / 2.
        let mut k = Percentile::new(50.0);
        assert_eq!(run(&mut k, &[&[-1.0, -2.0, -3.0, 5.0]]), vec![Some(2.0)]);
    }
}
