//! `ses` (`ema`, `ewma`) and `des` (Holt): exponential smoothing whose
//! state runs across buckets of one metric (reset per metric only); each
//! bucket reports the level after its last sample. alpha = 2 / (W + 1),
//! W = points when group is 1, else the group, capped at 15 (Netdata).

use super::Kernel;

const MAX_WINDOW: f64 = 15.0;

pub fn alpha(points: usize, group: i64) -> f64 {
    let w = if group <= 1 { points as f64 } else { group as f64 };
    2.0 / (w.min(MAX_WINDOW) + 1.0)
}

#[derive(Debug, Clone)]
pub struct Ses {
    alpha: f64,
    level: f64,
    count: u64,
}

impl Ses {
    pub fn new(alpha: f64) -> Self {
        Ses { alpha, level: 0.0, count: 0 }
    }
}

impl Kernel for Ses {
    fn reset(&mut self) {
        self.level = 0.0;
        self.count = 0;
    }

    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.level = v;
        }
        self.level = self.alpha * v + (1.0 - self.alpha) * self.level;
        self.count += 1;
    }

    fn flush(&mut self) -> Option<f64> {
        (self.count > 0 && self.level.is_finite()).then_some(self.level)
    }
}

#[derive(Debug, Clone)]
pub struct Des {
    alpha: f64,
    level: f64,
    trend: f64,
    count: u64,
}

impl Des {
    pub fn new(alpha: f64) -> Self {
        Des { alpha, level: 0.0, trend: 0.0, count: 0 }
    }
}

impl Kernel for Des {
    fn reset(&mut self) {
        self.level = 0.0;
        self.trend = 0.0;
        self.count = 0;
    }

    fn add(&mut self, v: f64) {
        let (a, b) = (self.alpha, self.alpha);
        match self.count {
            0 => {
                self.level = v;
                self.trend = v;
            }
            n => {
                if n == 1 {
                    self.trend = v - self.trend;
                    self.level = v;
                }
                let prev = self.level;
                self.level = a * v + (1.0 - a) * (self.level + self.trend);
                self.trend = b * (self.level - prev) + (1.0 - b) * self.trend;
            }
        }
        self.count += 1;
    }

    fn flush(&mut self) -> Option<f64> {
        (self.count > 0 && self.level.is_finite()).then_some(self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn ses_carries_state_across_buckets() {
        let mut k = Ses::new(0.5);
        // 10 -> 10; then 20 -> 15; empty bucket keeps 15; 15 -> 15.
        assert_eq!(
            run(&mut k, &[&[10.0], &[20.0], &[], &[15.0]]),
            vec![Some(10.0), Some(15.0), Some(15.0), Some(15.0)]
        );
        assert_eq!(alpha(300, 1), 2.0 / 16.0);
        assert_eq!(alpha(10, 3), 0.5);
    }

    #[test]
    fn des_follows_holt() {
        let mut k = Des::new(0.5);
        // x1 = 1: level 1. x2 = 3: trend 2, level 3, then level = .5*3 + .5*(3+2) = 4,
        // trend = .5*(4-3) + .5*2 = 1.5.
        assert_eq!(run(&mut k, &[&[1.0], &[3.0]]), vec![Some(1.0), Some(4.0)]);
    }
}
