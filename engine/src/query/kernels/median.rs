//! `median` and `trimmed-median[N]` (one algorithm): values outside
//! `[min + (max-min)p, max - (max-min)p]` are dropped (trimming by value
//! range, as Netdata does), then the textbook median of the rest (mean of
//! the two middle values for an even count, as current Netdata).

use super::ordered::interpolated;
use super::Kernel;
use crate::storage::bits::BitSlice;

#[derive(Debug, Clone)]
pub struct Median {
    /// Trim fraction 0..=0.5.
    trim: f64,
    values: Vec<f64>,
    kept: Vec<f64>,
}

impl Median {
    pub fn new(trim_percent: f64) -> Self {
        Median { trim: trim_percent / 100.0, values: Vec::new(), kept: Vec::new() }
    }
}

impl Kernel for Median {
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
        let out = match self.values.len() {
            0 => None,
            1 => Some(self.values[0]),
            _ if self.trim > 0.0 => {
                let (min, max) =
                    self.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                let (lo, hi) = (min + (max - min) * self.trim, max - (max - min) * self.trim);
                self.kept.clear();
                self.kept.extend(self.values.iter().copied().filter(|&v| v >= lo && v <= hi));
                if self.kept.is_empty() {
                    // Nothing inside the range: Netdata's scan stops at the first
                    // value >= lo, i.e. the smallest value above the range.
                    self.values.iter().copied().filter(|&v| v >= lo).reduce(f64::min)
                } else {
                    Some(interpolated(&mut self.kept, 0.5))
                }
            }
            _ => Some(interpolated(&mut self.values, 0.5)),
        };
        self.values.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn median_even_and_odd() {
        let mut k = Median::new(0.0);
        assert_eq!(
            run(&mut k, &[&[5.0, 1.0, 3.0], &[4.0, 1.0, 3.0, 2.0], &[7.0], &[]]),
            vec![Some(3.0), Some(2.5), Some(7.0), None]
        );
    }

    #[test]
    fn trimming_is_by_value_range() {
        // Range 0..100, trim 10% drops values below 10 and above 90.
        let mut k = Median::new(10.0);
        assert_eq!(run(&mut k, &[&[0.0, 20.0, 30.0, 40.0, 100.0]]), vec![Some(30.0)]);
        let mut k = Median::new(10.0);
        assert_eq!(run(&mut k, &[&[0.0, 20.0, 40.0, 100.0]]), vec![Some(30.0)]);
        // Bimodal: everything is trimmed; the smallest value above the range wins.
        let mut k = Median::new(5.0);
        assert_eq!(run(&mut k, &[&[0.05, 200.1, 0.06, 199.9, 200.0]]), vec![Some(199.9)]);
    }
}
