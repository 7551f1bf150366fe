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
            let exact = n as f64 * fraction;
            let k = (exact.floor() as usize).clamp(1, n);
            let w = (exact - k as f64).max(0.0);
            let start = if centered { (n - k) / 2 } else { 0 };
            Some(netdata_ranks(v, start, k, w))
        }
    }
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

    #[test]
    fn negative_values_walk_from_the_top() {
        // k = 2 largest of {-1, -2, -3, 5}: (5 + -1) / 2.
        let mut k = Percentile::new(50.0);
        assert_eq!(run(&mut k, &[&[-1.0, -2.0, -3.0, 5.0]]), vec![Some(2.0)]);
    }
}
