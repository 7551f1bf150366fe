//! `average` (`avg`, `mean`): sum / count; with resampling, sum / (V / R),
//! i.e. "per R seconds" (Netdata's gtime rule).

use super::{sum_count, Kernel};
use crate::storage::bits::BitSlice;
use crate::storage::AggPoint;

#[derive(Debug, Clone)]
pub struct Average {
    sum: f64,
    count: u64,
    /// V / R when resampling: the result is then "per R seconds".
    divisor: Option<f64>,
}

impl Average {
    pub fn new(resampling_divisor: Option<f64>) -> Self {
        Average { sum: 0.0, count: 0, divisor: resampling_divisor }
    }
}

impl Kernel for Average {
    fn reset(&mut self) {
        self.sum = 0.0;
        self.count = 0;
    }

    #[inline]
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
    }

    fn add_slice(&mut self, values: &[f64], valid: Option<BitSlice<'_>>) {
        let (s, c) = sum_count(values, valid);
        self.sum += s;
        self.count += c;
    }

    fn add_agg(&mut self, p: &AggPoint) -> bool {
        self.sum += p.sum;
        self.count += u64::from(p.count);
        true
    }

    fn flush(&mut self) -> Option<f64> {
        let out = match self.count {
            0 => None,
            _ if self.divisor.is_some() => self.divisor.map(|d| self.sum / d),
            n => Some(self.sum / n as f64),
        };
        self.reset();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn averages_and_empty_buckets() {
        let mut k = Average::new(None);
        assert_eq!(run(&mut k, &[&[1.0, 2.0, 6.0], &[], &[-4.0]]), vec![Some(3.0), None, Some(-4.0)]);
    }

    #[test]
    fn resampling_reports_per_period_totals() {
        // 60 per-second samples of 2.0 in a 60 s bucket, resampled per 60 s.
        let mut k = Average::new(Some(1.0)); // V / R = 60 / 60
        assert_eq!(run(&mut k, &[&[2.0; 60]]), vec![Some(120.0)]);
        let mut k = Average::new(Some(0.5)); // V = 30, R = 60: per-minute rate
        assert_eq!(run(&mut k, &[&[2.0; 30]]), vec![Some(120.0)]);
    }

    #[test]
    fn slice_path_skips_gaps() {
        let bits = [0b0000_0101u8];
        let mut k = Average::new(None);
        k.add_slice(&[1.0, 100.0, 3.0], Some(BitSlice::new(&bits, 0)));
        assert_eq!(k.flush(), Some(2.0));
    }
}
