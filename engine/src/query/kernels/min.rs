//! `min`: Netdata compares ABSOLUTE values and returns the value closest to
//! zero, sign kept, first wins ties. Reproduced for compatibility: for
//! non-negative data it is the ordinary minimum.

use super::Kernel;
use crate::storage::AggPoint;

#[derive(Debug, Clone, Default)]
pub struct Min {
    best: Option<f64>,
}

impl Kernel for Min {
    fn reset(&mut self) {
        self.best = None;
    }

    #[inline]
    fn add(&mut self, v: f64) {
        match self.best {
            Some(b) if v.abs() >= b.abs() => {}
            _ => self.best = Some(v),
        }
    }

    /// The value nearest zero is the min of non-negative values or the
    /// max of non-positive ones; with both signs it could be any of them.
    fn add_agg(&mut self, p: &AggPoint) -> bool {
        if p.min >= 0.0 {
            self.add(p.min);
        } else if p.max <= 0.0 {
            self.add(p.max);
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
        let mut k = Min::default();
        assert_eq!(
            run(&mut k, &[&[3.0, 1.0, 2.0], &[-5.0, -2.0, 4.0], &[2.0, -2.0], &[]]),
            vec![Some(1.0), Some(-2.0), Some(2.0), None]
        );
    }
}
