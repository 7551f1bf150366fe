//! `max`: Netdata compares ABSOLUTE values and returns the value farthest
//! from zero, sign kept, first wins ties. For non-negative data it is the
//! ordinary maximum.

use super::Kernel;
use crate::storage::AggPoint;

#[derive(Debug, Clone, Default)]
pub struct Max {
    best: Option<f64>,
}

impl Kernel for Max {
    fn reset(&mut self) {
        self.best = None;
    }

    #[inline]
    fn add(&mut self, v: f64) {
        match self.best {
            Some(b) if v.abs() <= b.abs() => {}
            _ => self.best = Some(v),
        }
    }

    /// The value farthest from zero is the min or the max, whichever has
    /// the larger magnitude; only a tie of opposite signs needs the order.
    fn add_agg(&mut self, p: &AggPoint) -> bool {
        if p.max.abs() > p.min.abs() || p.min == p.max {
            self.add(p.max);
        } else if p.min.abs() > p.max.abs() {
            self.add(p.min);
        } else {
            return false;
        }
        true
    }

    fn flush(&mut self) -> Option<f64> {
        self.best.take()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn absolute_value_quirk() {
        let mut k = Max::default();
        assert_eq!(
            run(&mut k, &[&[3.0, 1.0, 2.0], &[-5.0, 2.0, 4.0], &[-2.0, 2.0], &[]]),
            vec![Some(3.0), Some(-5.0), Some(-2.0), None]
        );
    }
}
