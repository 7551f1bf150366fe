//! `stddev` (sample standard deviation, Welford) and `cv` (`rsd`,
//! `coefficient-of-variation`: 100 x stddev / |mean|, a percentage).
//! One value gives 0; none gives EMPTY; cv of a zero mean is EMPTY.

use super::Kernel;

#[derive(Debug, Clone, Default)]
pub struct Stddev {
    n: u64,
    mean: f64,
    m2: f64,
    /// The plain sum: cv divides by `sum / n`, which is exactly 0 where the
    /// values cancel (Welford's running mean keeps a residue there).
    sum: f64,
    /// Report the coefficient of variation instead.
    cv: bool,
}

impl Stddev {
    pub fn new(cv: bool) -> Self {
        Stddev { cv, ..Default::default() }
    }
}

impl Kernel for Stddev {
    fn reset(&mut self) {
        *self = Stddev::new(self.cv);
    }

    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    fn flush(&mut self) -> Option<f64> {
        let sd = match self.n {
            0 => None,
            1 => Some(0.0),
            n => Some((self.m2 / (n - 1) as f64).sqrt()),
        };
        let out = match (sd, self.cv) {
            (Some(sd), true) if self.n > 1 => {
                let cv = 100.0 * sd / (self.sum / self.n as f64).abs();
                cv.is_finite().then_some(cv)
            }
            (sd, _) => sd,
        };
        self.reset();
        out.filter(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn sample_stddev_and_cv() {
        let mut k = Stddev::new(false);
        let out = run(&mut k, &[&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[3.0], &[]]);
        assert!((out[0].expect("sd") - 2.138_089_935).abs() < 1e-9);
        assert_eq!(out[1..], [Some(0.0), None]);
        let mut k = Stddev::new(true);
        let out = run(&mut k, &[&[1.0, 3.0], &[-1.0, 1.0], &[5.0]]);
        assert!((out[0].expect("cv") - 100.0 * 2f64.sqrt() / 2.0).abs() < 1e-9);
        assert_eq!(out[1..], [None, Some(0.0)]);
        // Values that cancel exactly (Welford's mean keeps a residue of
        // about 1e-15 here, which made a cv of about 1e18): empty.
        let values = [-67.714, 30.1, 37.614, -0.5, 0.5];
        assert_eq!(values.iter().sum::<f64>(), 0.0);
        assert_eq!(run(&mut k, &[&values]), [None]);
    }
}
