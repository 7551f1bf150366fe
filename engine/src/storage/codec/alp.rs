//! Decimal scaling (after ALP, "adaptive lossless floating point"): a
//! value that is exactly `k / 10^e` for an integer `k` is stored as `k`.
//! Exactness is checked bit for bit with the very operation the decoder
//! uses, so a value comes back as the same `f64` or is not encoded this
//! way at all (NaN, infinities, -0.0, and numbers that are not short
//! decimals stay raw).

/// Largest decimal exponent tried.
pub const MAX_EXP: u32 = 12;

const POW10: [f64; MAX_EXP as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];

/// Integers beyond this lose exactness as `f64`.
const LIMIT: f64 = (1u64 << 52) as f64;

/// `10^e`, exactly (every power up to `10^22` is an `f64`).
#[inline]
pub fn pow10(e: u32) -> f64 {
    POW10[e as usize]
}

/// `k / 10^e`: how an encoded value is read back.
#[inline]
pub fn decode(k: i64, e: u32) -> f64 {
    k as f64 / POW10[e as usize]
}

/// `k` with `decode(k, e)` bit-identical to `v`, if there is one.
#[inline]
pub fn encode(v: f64, e: u32) -> Option<i64> {
    let x = v * POW10[e as usize];
    if x.abs() < (1u64 << 51) as f64 {
        // Rounded without a call into libm (`round` is one on baseline
        // x86-64); it differs from `round` only halfway between integers,
        // where neither integer reads back as `v`.
        let r = (x + ROUNDER) - ROUNDER;
        return ((r / POW10[e as usize]).to_bits() == v.to_bits()).then_some(r as i64);
    }
    if !x.is_finite() || x.abs() >= LIMIT {
        return None;
    }
    let k = x.round() as i64;
    (decode(k, e).to_bits() == v.to_bits()).then_some(k)
}

/// The smallest exponent that encodes `v`, if one does.
pub fn smallest_exponent(v: f64) -> Option<u32> {
    (0..=MAX_EXP).find(|&e| encode(v, e).is_some())
}

/// The smallest exponent that encodes every value, if one does.
#[cfg(test)]
pub fn exponent(values: &[f64]) -> Option<u32> {
    (0..=MAX_EXP).find(|&e| values.iter().all(|&v| encode(v, e).is_some()))
}

/// Adding and subtracting this rounds an `f64` below 2^51 in magnitude to
/// an integer (ties to even) without a call into libm.
const ROUNDER: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52

/// [`encode`] for every valid value of `values` with exponent `e`, into
/// `ks` (cleared first; a gap's slot holds the smallest integer, so it packs
/// as offset 0). Returns the integers' minimum and maximum (0, 0 when
/// nothing is valid), or None once a chunk holds a value that does not
/// encode.
///
/// The same answer as calling [`encode`] per value: the rounding here may
/// pick another integer only for `x` halfway between two, and such an `x`
/// never passes the bit-exact check with either.
pub fn encode_all(values: &[f64], valid: impl Fn(usize) -> bool, e: u32, ks: &mut Vec<i64>) -> Option<(i64, i64)> {
    /// Values checked between early exits: a chunk's checks carry no branch,
    /// so they vectorise.
    const CHUNK: usize = 16;
    let (scale, limit) = (POW10[e as usize], (1u64 << 51) as f64);
    ks.clear();
    ks.resize(values.len(), 0);
    let mut gaps = false;
    for (c, (vs, out)) in values.chunks(CHUNK).zip(ks.chunks_mut(CHUNK)).enumerate() {
        // Checked in f64 alone (no integer conversion, which has no vector
        // form here): `r` is the integer as an f64, and `r / 10^e` is what
        // `decode` computes for it. Equal as floats and in sign is equal in
        // bits, NaN being unequal to everything.
        let mut rounded = [0.0f64; CHUNK];
        let mut bad = false;
        for (j, (&v, r)) in vs.iter().zip(rounded.iter_mut()).enumerate() {
            let x = v * scale;
            *r = (x + ROUNDER) - ROUNDER;
            let back = *r / scale;
            let exact = (x.abs() < limit) & (back == v) & (back.is_sign_negative() == v.is_sign_negative());
            let ok = valid(c * CHUNK + j);
            gaps |= !ok;
            bad |= ok & !exact;
        }
        for (k, &r) in out.iter_mut().zip(&rounded) {
            // Saturates for NaN and huge values; those are handled below.
            *k = r as i64;
        }
        if bad {
            // Large and infinite values take the plain path; any other
            // value that does not read back (NaN among them) is refused.
            let chunk = vs.iter().zip(out.iter_mut()).enumerate();
            for (_, (&v, k)) in chunk.filter(|(j, _)| valid(c * CHUNK + j)) {
                if (v * scale).abs() >= limit {
                    *k = encode(v, e)?;
                } else if decode(*k, e).to_bits() != v.to_bits() {
                    return None;
                }
            }
        }
    }
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    if gaps {
        for (i, &k) in ks.iter().enumerate() {
            if valid(i) {
                (min, max) = (min.min(k), max.max(k));
            }
        }
    } else {
        (min, max) = ks.iter().fold((min, max), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    }
    if min > max {
        ks.fill(0);
        return Some((0, 0));
    }
    if gaps {
        for (i, k) in ks.iter_mut().enumerate() {
            if !valid(i) {
                *k = min;
            }
        }
    }
    Some((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_decimals_and_refusals() {
        assert_eq!(exponent(&[12.34, 0.5, 100.0]), Some(2));
        assert_eq!(exponent(&[1.0, -7.0]), Some(0));
        assert_eq!(exponent(&[]), Some(0));
        for odd in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE / 4.0, 1.0 / 3.0] {
            assert_eq!(exponent(&[odd]), None, "{odd:?}");
        }
    }

    proptest! {
        /// Whatever it accepts reads back bit for bit.
        #[test]
        fn accepted_values_round_trip(bits in any::<u64>(), k in -10_000_000i64..10_000_000, e in 0u32..=MAX_EXP) {
            for v in [f64::from_bits(bits), decode(k, e)] {
                for e in 0..=MAX_EXP {
                    if let Some(k) = encode(v, e) {
                        prop_assert_eq!(decode(k, e).to_bits(), v.to_bits());
                    }
                }
            }
            // Short decimals are found.
            prop_assert!(exponent(&[decode(k, e)]).is_some_and(|x| x <= e));
            // The libm-free rounding decides as `round` does.
            for v in [f64::from_bits(bits), decode(k, e), -0.0, f64::NAN, 2f64.powi(52) + 2.0, 0.5, -2.5, 1e-7] {
                for e in 0..=MAX_EXP {
                    let x = v * pow10(e);
                    let by_round = (x.is_finite() && x.abs() < LIMIT)
                        .then(|| x.round() as i64)
                        .filter(|&k| decode(k, e).to_bits() == v.to_bits());
                    prop_assert_eq!(encode(v, e), by_round, "{:?} e={}", v, e);
                }
            }
        }
    }
}
