//! `trimmed-mean` / `trimmed-meanNN`: the mean of the middle `1 - 2p`
//! fraction of values, with Netdata's fractional extra slot, mirrored when
//! any value is negative.

use super::percentile::fraction_mean;
use super::Kernel;
use crate::storage::bits::BitSlice;

#[derive(Debug, Clone)]
pub struct TrimmedMean {
    keep: f64,
    values: Vec<f64>,
}

impl TrimmedMean {
    pub fn new(trim_percent: f64) -> Self {
        TrimmedMean { keep: 1.0 - 2.0 * trim_percent / 100.0, values: Vec::new() }
    }
}

impl Kernel for TrimmedMean {
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
        let out = fraction_mean(&mut self.values, self.keep, true);
        self.values.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn trims_both_ends() {
        let vals: Vec<f64> = (1..=10).map(f64::from).collect();
        let mut k = TrimmedMean::new(10.0); // keep 8: ranks 1..=8 -> 2..9
        assert_eq!(run(&mut k, &[&vals]), vec![Some(5.5)]);
        let mut k = TrimmedMean::new(0.0);
        assert_eq!(run(&mut k, &[&vals]), vec![Some(5.5)]);
    }

    /// Keeping 28 % of 25 values is 7 whole ranks (10..=16), no extra slot,
    /// though 25 x 0.28 rounds above 7. (The kept fraction `1 - 2p` is
    /// rounded twice, as Netdata rounds it: where it lands an ulp above
    /// `k / n` (trimming 35 % of 10 values), Netdata and strata both add an
    /// extra slot of weight about 1e-16, which counts in the divisor.)
    #[test]
    fn whole_rank_counts_take_no_extra_slot() {
        let vals: Vec<f64> = (1..=25).map(f64::from).collect();
        assert_eq!(run(&mut TrimmedMean::new(36.0), &[&vals]), vec![Some(13.0)]);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(run(&mut TrimmedMean::new(35.0), &[&ten]), vec![Some((4.0 + 5.0 + 6.0 + 6.0) / 4.0)], "as Netdata");
    }
}
