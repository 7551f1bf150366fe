//! Decimal text of numbers, appended straight to a response buffer.
//!
//! Invariant: each function appends exactly the bytes serde_json's
//! `CompactFormatter` writes for the same value (property-tested against
//! it below), so a document reads the same whichever path wrote a number.
//!
//! The speed comes from two facts:
//! - The documents round every value to 7 decimals ([`round7`]): `r =
//!   n / 1e7` with `n = round(v * 1e7)`. When `r`'s rounding interval is
//!   narrower than 1e-7 (|r| < 1e8: the interval is one ulp, at most 2^-26
//!   there), the decimal `n × 10^-7` is the only one with at most 7
//!   fractional digits that reads back as `r`, and no decimal with fewer
//!   significant digits does; so the shortest round-trip text, which
//!   serde_json writes, is `n`'s digits with the point put in and trailing
//!   zeros dropped (one kept: `5.0`). serde_json writes no exponent for
//!   1e-3 <= |r| < 1e8, so that is the fast range; zero is `0.0` (round7
//!   turns -0 into 0). Everything else takes serde_json's own formatter.
//! - Digits are built in a register and copied with one fixed-length
//!   copy, then the vector is cut back to the real length: no call into
//!   `memcpy` for a few bytes, which was a sixth of the json2 writer's time.

use serde_json::ser::{CompactFormatter, Formatter};

use super::round7;

/// "00" .. "99".
const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839\
4041424344454647484950515253545556575859606162636465666768697071727374757677787980818283848586878889\
90919293949596979899";

/// Up to 16 bytes of text, built from its last byte to its first in a
/// register: the first byte is the lowest, so the little-endian bytes of
/// `bytes` are the text in order. It reaches the buffer as one 16-byte
/// copy, cut back to `len` (bytes built in memory one at a time and then
/// read as one wide load would stall the load on every number).
#[derive(Clone, Copy)]
struct Text {
    bytes: u128,
    len: usize,
}

impl Text {
    const EMPTY: Text = Text { bytes: 0, len: 0 };

    fn front(self, c: u8) -> Text {
        Text { bytes: (self.bytes << 8) | u128::from(c), len: self.len + 1 }
    }

    /// Two digits `v` (< 100) in front.
    fn front_pair(self, v: u64) -> Text {
        let at = v as usize * 2;
        let pair = u16::from_le_bytes([PAIRS[at], PAIRS[at + 1]]);
        Text { bytes: (self.bytes << 16) | u128::from(pair), len: self.len + 2 }
    }

    /// `v`'s digits in front (`v` must fit the room left).
    fn front_digits(mut self, mut v: u64) -> Text {
        while v >= 100 {
            self = self.front_pair(v % 100);
            v /= 100;
        }
        if v >= 10 {
            self.front_pair(v)
        } else {
            self.front(b'0' + v as u8)
        }
    }

    fn append_to(self, buf: &mut Vec<u8>) {
        debug_assert!(self.len <= 16);
        let len = buf.len();
        buf.extend_from_slice(&self.bytes.to_le_bytes());
        buf.truncate(len + self.len);
    }
}

/// Integers below this fit a [`Text`].
const TEXT_MAX: u64 = 10_000_000_000_000_000;

pub fn push_u64(buf: &mut Vec<u8>, v: u64) {
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else if v < TEXT_MAX {
        Text::EMPTY.front_digits(v).append_to(buf);
    } else {
        // Writing to a Vec cannot fail.
        let _ = CompactFormatter.write_u64(buf, v);
    }
}

pub fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// `x` rounded half away from zero, as `f64::round`, as an integer (|x| <
/// 2^52: the truncation and the fraction are exact). The baseline x86-64
/// build has no rounding instruction, and the libm call was a tenth of the
/// writer.
fn round_half_away(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    t + i64::from(frac >= 0.5) - i64::from(frac <= -0.5)
}

/// Appends `round7(v)` as serde_json writes it (`null` when not finite).
pub fn push_round7(buf: &mut Vec<u8>, v: f64) {
    // |v| < 2e8 keeps `v * 1e7` below 2^52 for the rounding; the fast
    // range is decided on `n`.
    if v.abs() < 2e8 {
        let n = round_half_away(v * 1e7);
        let m = n.unsigned_abs();
        if m == 0 {
            buf.extend_from_slice(b"0.0");
            return;
        }
        if (10_000..1_000_000_000_000_000).contains(&m) {
            if n < 0 {
                buf.push(b'-');
            }
            fixed7(m).append_to(buf);
            return;
        }
    }
    push_f64(buf, round7(v));
}

/// `m × 10^-7` (0 < m < 1e15: at most 16 bytes) with trailing fractional
/// zeros dropped (one kept).
fn fixed7(m: u64) -> Text {
    let (int, frac) = (m / 10_000_000, m % 10_000_000);
    // The integer part: its 8 digits less the leading zeros (one kept).
    let int_digits = eight_digits(int);
    let int_zeros = (int_digits.trailing_zeros() / 8).min(7);
    let int_len = 8 - int_zeros as usize;
    let int_text = (int_digits | ASCII_ZEROS) >> (8 * int_zeros);
    // The fraction: 7 digits (the 8th, leading, is always 0) less the
    // trailing zeros (one kept).
    let frac_digits = eight_digits(frac) >> 8;
    let frac_len = if frac == 0 { 1 } else { 7 - (frac_digits.leading_zeros() as usize - 8) / 8 };
    let frac_text = (frac_digits | ASCII_ZEROS) & (u64::MAX >> (64 - 8 * frac_len));
    let bytes =
        u128::from(int_text) | (u128::from(b'.') << (8 * int_len)) | (u128::from(frac_text) << (8 * (int_len + 1)));
    Text { bytes, len: int_len + 1 + frac_len }
}

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// The 8 decimal digits of `x` (< 10^8, leading zeros kept) as byte
/// values 0-9, the first digit in the lowest byte; SWAR: the halves, then
/// the pairs, then the digits are split in parallel lanes of one u64 by
/// multiplying with a reciprocal (exact for these lane bounds).
fn eight_digits(x: u64) -> u64 {
    debug_assert!(x < 100_000_000);
    // Two 32-bit lanes: the first four digits, the last four.
    let v = (x / 10_000) | ((x % 10_000) << 32);
    // Each lane < 10^4 into 16-bit lanes: lane / 100, then lane % 100.
    let hundreds = ((v * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let v = ((v - hundreds * 100) << 16) | hundreds;
    // Each 16-bit lane < 100 into bytes: lane / 10, then lane % 10.
    let tens = ((v * 103) >> 10) & 0x000F_000F_000F_000F;
    ((v - tens * 10) << 8) | tens
}

/// Any f64 as serde_json writes it: `null` when not finite.
pub fn push_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        // Writing to a Vec cannot fail.
        let _ = CompactFormatter.write_f64(buf, v);
    } else {
        buf.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn serde_round7(v: f64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::Value::from(round7(v))).expect("json")
    }

    fn ours(v: f64) -> Vec<u8> {
        let mut b = b"prefix".to_vec();
        push_round7(&mut b, v);
        b.split_off(6)
    }

    #[test]
    fn edges_of_the_fast_range_read_as_serde_json_writes_them() {
        let mut cases = vec![0.0, -0.0, 1e-3, 9.999_999_9e-4, 1e-8, 4e-8, 5e-8, 1e8, 99_999_999.999_999_9, 1e14, 1e15];
        cases.extend([5.0, 0.1, 0.125, 1.000_000_05, 123.456, 0.001_2, 7.000_000_1, f64::MIN_POSITIVE, 1e300, 2.5e-9]);
        cases.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::EPSILON]);
        for d in -12..=16 {
            let p = 10f64.powi(d);
            cases.extend([p, p * 0.999_999_9, p * 1.000_000_1, p * 9.999_999_9, p * 1.5]);
        }
        for v in cases {
            for v in [v, -v] {
                let want = if v.is_finite() { serde_round7(v) } else { b"null".to_vec() };
                assert_eq!(String::from_utf8(ours(v)), String::from_utf8(want), "value {v:e}");
            }
        }
    }

    #[test]
    fn eight_digits_are_the_decimal_digits() {
        for x in [0u64, 1, 9, 10, 99, 100, 9_999, 10_000, 12_345_678, 99_999_999, 10_203_040, 90_000_001] {
            let want: Vec<u8> = format!("{x:08}").bytes().map(|c| c - b'0').collect();
            assert_eq!(eight_digits(x).to_le_bytes().to_vec(), want, "{x}");
        }
    }

    #[test]
    fn integers_read_as_serde_json_writes_them() {
        for v in [0, 1, 9, 10, 99, 100, 101, 999, 1000, 12_345, u64::MAX, u64::MAX / 10, 1 << 53] {
            let mut b = Vec::new();
            push_u64(&mut b, v);
            assert_eq!(b, serde_json::to_vec(&v).expect("json"));
        }
        for v in [0, -1, 9, -10, 1_796_331_744, -1_796_331_744_000, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            push_i64(&mut b, v);
            assert_eq!(b, serde_json::to_vec(&v).expect("json"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn rounded_values_read_as_serde_json_writes_them(
            mantissa in 0.0f64..10.0,
            exp in -12i32..17,
            hundredths in -1_000_000i64..1_000_000,
            bits in any::<u64>(),
            negative in any::<bool>(),
        ) {
            // Log-spread magnitudes across the fast range's edges, the
            // two-decimal gauges of the benchmarks, and any bit pattern.
            let spread = mantissa * 10f64.powi(exp);
            let gauge = hundredths as f64 / 100.0;
            for v in [spread, gauge, f64::from_bits(bits), spread * 1.000_000_05] {
                let v = if negative { -v } else { v };
                let want = if v.is_finite() { serde_round7(v) } else { b"null".to_vec() };
                prop_assert_eq!(String::from_utf8(ours(v)).expect("utf8"), String::from_utf8(want).expect("utf8"), "value {:e}", v);
            }
        }

        #[test]
        fn eight_digits_of_any_number_below_10_to_the_8(x in 0u64..100_000_000) {
            let want: Vec<u8> = format!("{x:08}").bytes().map(|c| c - b'0').collect();
            prop_assert_eq!(eight_digits(x).to_le_bytes().to_vec(), want);
        }

        #[test]
        fn integers_in_general_read_as_serde_json_writes_them(u in any::<u64>(), i in any::<i64>(), small in 0u64..100_000) {
            for u in [u, small] {
                let mut b = Vec::new();
                push_u64(&mut b, u);
                prop_assert_eq!(b, serde_json::to_vec(&u).expect("json"));
            }
            let mut b = Vec::new();
            push_i64(&mut b, i);
            prop_assert_eq!(b, serde_json::to_vec(&i).expect("json"));
        }
    }
}
