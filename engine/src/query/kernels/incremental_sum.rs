//! `incremental-sum` (`incremental_sum`): current Netdata's chained rule.
//! The first bucket of a metric needs two values (last - first); later
//! buckets report their last value minus the previous bucket's last value
//! (a one-value first bucket still starts the chain). An empty bucket is
//! EMPTY but keeps the baseline. The spec's text says an empty bucket
//! breaks the chain; the golden answers under current Netdata's rules
//! (the oracle's `strata-expected` set, e.g. cases 0209 and 0503, whose
//! `gappy` series reads 10, 10, null, 20, 10) keep it, and the golden
//! answers are what strata is held to.

use super::Kernel;

#[derive(Debug, Clone)]
pub struct IncrementalSum {
    first: f64,
    last: f64,
    count: u64,
}

impl Default for IncrementalSum {
    fn default() -> Self {
        IncrementalSum { first: f64::NAN, last: f64::NAN, count: 0 }
    }
}

impl Kernel for IncrementalSum {
    fn reset(&mut self) {
        *self = IncrementalSum::default();
    }

    fn add(&mut self, v: f64) {
        if self.count == 0 && self.first.is_nan() {
            self.first = v;
        } else {
            self.last = v;
        }
        self.count += 1;
    }

    fn flush(&mut self) -> Option<f64> {
        let out = (self.count > 0 && !self.first.is_nan() && !self.last.is_nan()).then_some(self.last - self.first);
        // The baseline of the next bucket is this bucket's last value (its only
        // value, when it started the chain); an empty bucket keeps it.
        if !self.last.is_nan() {
            self.first = self.last;
        }
        self.last = f64::NAN;
        self.count = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn chained_differences() {
        let mut k = IncrementalSum::default();
        assert_eq!(
            run(&mut k, &[&[1.0, 4.0], &[6.0, 10.0], &[11.0], &[], &[20.0, 21.0]]),
            vec![Some(3.0), Some(6.0), Some(1.0), None, Some(10.0)]
        );
        let mut k = IncrementalSum::default();
        assert_eq!(
            run(&mut k, &[&[5.0], &[7.0], &[], &[9.0], &[12.0]]),
            vec![None, Some(2.0), None, Some(2.0), Some(3.0)]
        );
    }
}
