//! `sum`: the plain sum of the bucket's values (on tiers 1-2 each addend is
//! a whole tier point's sum, so totals agree across tiers).

use super::{sum_count, Kernel};
use crate::storage::bits::BitSlice;
use crate::storage::AggPoint;

#[derive(Debug, Clone, Default)]
pub struct Sum {
    sum: f64,
    count: u64,
}

impl Kernel for Sum {
    fn reset(&mut self) {
        *self = Sum::default();
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
        let out = (self.count > 0).then_some(self.sum);
        self.reset();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn sums_and_empty() {
        let mut k = Sum::default();
        assert_eq!(run(&mut k, &[&[1.5, -0.5], &[]]), vec![Some(1.0), None]);
    }
}
