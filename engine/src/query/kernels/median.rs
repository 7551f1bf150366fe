//! `median` and `trimmed-median[N]` (one algorithm): values outside
//! `[min + (max-min)p, max - (max-min)p]` are dropped (trimming by value
//! range, as Netdata does), then the textbook median of the rest (mean of
//! the two middle values for an even count, as current Netdata).

use super::narrow_select;
use super::ordered::interpolated;
use super::Kernel;
use crate::storage::bits::BitSlice;
use crate::storage::codec::{alp, V3};

#[derive(Debug, Clone)]
pub struct Median {
    /// Trim fraction 0..=0.5.
    trim: f64,
    values: Vec<f64>,
    kept: Vec<f64>,
    /// Values taken as decimal integers (value = k / 10^exp): selected
    /// on the integers, only the middle ones decoded.
    ints: Vec<i64>,
    exp: Option<u32>,
    /// [`narrow_select`]'s buffers.
    scratch: narrow_select::Scratch,
    v3: Option<V3>,
}

impl Median {
    pub fn new(trim_percent: f64) -> Self {
        Median {
            trim: trim_percent / 100.0,
            values: Vec::new(),
            kept: Vec::new(),
            ints: Vec::new(),
            exp: None,
            scratch: narrow_select::Scratch::default(),
            v3: V3::detect(),
        }
    }

    /// [`interpolated`]`(values, 0.5)` of the bucket's integers alone:
    /// decoding keeps their order, so the middle integers are selected
    /// and only they are decoded. Written apart from `interpolated` on
    /// purpose: a shared version selecting by a comparison function made
    /// the 24 h median query slower (402-436 against 378-410 ms CPU over
    /// five alternating pairs) than the integers' own `select_nth_unstable`.
    ///
    /// The integers are ranked by [`narrow_select`] (in AVX2 registers
    /// where the CPU has them), and selected only past its limits.
    fn integer_median(&mut self, exp: u32) -> f64 {
        let n = self.ints.len();
        let idx = 0.5 * (n - 1) as f64;
        let k = idx.floor() as usize;
        let ranked = narrow_select::kth_pair(&self.ints, k, &mut self.scratch, self.v3);
        let (a, b) = ranked.unwrap_or_else(|| {
            let (_, &mut a, right) = self.ints.select_nth_unstable(k);
            (a, right.iter().min().copied())
        });
        let a = alp::decode(a, exp);
        match b {
            Some(b) if idx.fract() != 0.0 => a + (alp::decode(b, exp) - a) * idx.fract(),
            _ => a,
        }
    }
}

impl Kernel for Median {
    fn reset(&mut self) {
        self.values.clear();
        self.ints.clear();
        self.exp = None;
    }

    fn add(&mut self, v: f64) {
        self.values.push(v);
    }

    fn add_slice(&mut self, values: &[f64], valid: Option<BitSlice<'_>>) {
        super::extend_valid(&mut self.values, values, valid);
    }

    fn takes_decimals(&self) -> bool {
        // Trimming computes a value range: it takes decoded values.
        self.trim == 0.0
    }

    fn decimal_sink(&mut self, exp: u32) -> Option<&mut Vec<i64>> {
        if !self.takes_decimals() || self.exp.is_some_and(|e| e != exp) {
            return None;
        }
        self.exp = Some(exp);
        Some(&mut self.ints)
    }

    fn flush(&mut self) -> Option<f64> {
        if let Some(exp) = self.exp.take() {
            if self.values.is_empty() && !self.ints.is_empty() {
                let out = self.integer_median(exp);
                self.ints.clear();
                return Some(out);
            }
            // Mixed with decoded values: decode the integers too.
            self.values.extend(self.ints.drain(..).map(|k| alp::decode(k, exp)));
        }
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

    proptest::proptest! {
        /// Values taken as decimal integers answer what their decoded
        /// values answer, alone, mixed with decoded values in one bucket,
        /// or refused for a second exponent; the sink is empty after a
        /// flush.
        #[test]
        fn decimal_integers_answer_as_their_values(
            ks in proptest::collection::vec(-2_000_000i64..2_000_000, 1..400),
            exp in 0u32..5,
            split in 0usize..400,
            plain_tail in proptest::bool::ANY,
        ) {
            let decoded: Vec<f64> = ks.iter().map(|&k| alp::decode(k, exp)).collect();
            let mut want = Median::new(0.0);
            want.add_slice(&decoded, None);
            let want = want.flush();
            let split = split.min(ks.len());
            let mut got = Median::new(0.0);
            got.decimal_sink(exp).expect("a plain median takes integers").extend_from_slice(&ks[..split]);
            if plain_tail {
                got.add_slice(&decoded[split..], None);
            } else {
                proptest::prop_assert!(got.decimal_sink(exp + 1).is_none(), "a second exponent is refused");
                got.decimal_sink(exp).expect("the same exponent again").extend_from_slice(&ks[split..]);
            }
            let got_v = got.flush();
            proptest::prop_assert_eq!(got_v.map(f64::to_bits), want.map(f64::to_bits));
            proptest::prop_assert_eq!(got.flush(), None);
            proptest::prop_assert!(got.takes_decimals() && !Median::new(5.0).takes_decimals());
            proptest::prop_assert!(Median::new(5.0).decimal_sink(exp).is_none(), "trimming takes decoded values");
        }
    }
}
