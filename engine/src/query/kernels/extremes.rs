//! `extremes`: the value farthest from zero, sign kept: with both signs,
//! the larger magnitude of (max positive, min negative), ties to the
//! negative; only zeros give 0.

use super::Kernel;
use crate::storage::AggPoint;

#[derive(Debug, Clone, Default)]
pub struct Extremes {
    max_pos: Option<f64>,
    min_neg: Option<f64>,
    seen: bool,
}

impl Kernel for Extremes {
    fn reset(&mut self) {
        *self = Extremes::default();
    }

    fn add(&mut self, v: f64) {
        self.seen = true;
        if v > 0.0 {
            self.max_pos = Some(self.max_pos.map_or(v, |m| m.max(v)));
        } else if v < 0.0 {
            self.min_neg = Some(self.min_neg.map_or(v, |m| m.min(v)));
        }
    }

    /// Only the largest and smallest values matter.
    fn add_agg(&mut self, p: &AggPoint) -> bool {
        self.add(p.min);
        self.add(p.max);
        true
    }

    fn flush(&mut self) -> Option<f64> {
        let out = match (self.seen, self.max_pos, self.min_neg) {
            (false, ..) => None,
            (true, Some(p), Some(n)) => Some(if -n >= p { n } else { p }),
            (true, Some(p), None) => Some(p),
            (true, None, Some(n)) => Some(n),
            (true, None, None) => Some(0.0),
        };
        self.reset();
        out
    }
}

/// `latest`: the newest value of the bucket.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    last: Option<f64>,
}

impl Kernel for Latest {
    fn reset(&mut self) {
        self.last = None;
    }

    fn add(&mut self, v: f64) {
        self.last = Some(v);
    }

    fn flush(&mut self) -> Option<f64> {
        self.last.take()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn magnitude_wins_ties_go_negative() {
        let mut k = Extremes::default();
        assert_eq!(
            run(&mut k, &[&[1.0, -3.0, 2.0], &[3.0, -3.0], &[0.0, 0.0], &[4.0, 1.0], &[-1.0, -2.0], &[]]),
            vec![Some(-3.0), Some(-3.0), Some(0.0), Some(4.0), Some(-2.0), None]
        );
        let mut l = Latest::default();
        assert_eq!(run(&mut l, &[&[1.0, 2.0], &[]]), vec![Some(2.0), None]);
    }
}
