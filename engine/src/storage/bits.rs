//! A read-only view of a bit-packed validity or anomaly bitmap (LSB first,
//! the Arrow layout), shared by head buffers and sealed Arrow columns so
//! the query path has one code path for both.

#[derive(Debug, Clone, Copy)]
pub struct BitSlice<'a> {
    bytes: &'a [u8],
    /// Bit offset of element 0 inside `bytes`.
    offset: usize,
}

impl<'a> BitSlice<'a> {
    pub fn new(bytes: &'a [u8], offset: usize) -> Self {
        BitSlice { bytes, offset }
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        let b = self.offset + i;
        (self.bytes[b >> 3] >> (b & 7)) & 1 == 1
    }

    /// The same bitmap starting `start` elements later.
    #[inline]
    pub fn advance(&self, start: usize) -> Self {
        BitSlice { bytes: self.bytes, offset: self.offset + start }
    }

    /// Up to 64 bits from element `start` on (bit k of the result is
    /// element `start + k`); bits past `n` are zero.
    #[inline]
    fn word(&self, start: usize, n: usize) -> u64 {
        debug_assert!(n <= 64);
        let b = self.offset + start;
        let (byte, shift) = (b >> 3, (b & 7) as u32);
        let w = match self.bytes.get(byte..byte + 9) {
            // The common case: nine whole bytes, two loads and shifts.
            Some(nine) => {
                let lo = u64::from_le_bytes([nine[0], nine[1], nine[2], nine[3], nine[4], nine[5], nine[6], nine[7]]);
                // `<< 1 << (63 - shift)` is `<< (64 - shift)`, and 0 when shift is 0.
                (lo >> shift) | (u64::from(nine[8]) << 1 << (63 - shift))
            }
            None => {
                // Near the end: read only what exists.
                let mut buf = [0u8; 16];
                let avail = self.bytes.len().saturating_sub(byte).min(9);
                if avail > 0 {
                    buf[..avail].copy_from_slice(&self.bytes[byte..byte + avail]);
                }
                (u128::from_le_bytes(buf) >> shift) as u64
            }
        };
        if n == 64 {
            w
        } else {
            w & ((1u64 << n) - 1)
        }
    }

    /// Elements `0..len` that are set.
    pub fn count_ones(&self, len: usize) -> u64 {
        let mut c = 0u64;
        let mut i = 0;
        while i < len {
            let n = (len - i).min(64);
            // Set bits are rare (anomalies): skip the count, a dozen
            // instructions without POPCNT in the baseline x86-64, on zero.
            let w = self.word(i, n);
            if w != 0 {
                c += u64::from(w.count_ones());
            }
            i += n;
        }
        c
    }

    /// Elements `0..len` set in both bitmaps.
    pub fn count_and(&self, other: &BitSlice<'_>, len: usize) -> u64 {
        let mut c = 0u64;
        let mut i = 0;
        while i < len {
            let n = (len - i).min(64);
            let w = self.word(i, n);
            if w != 0 {
                c += u64::from((w & other.word(i, n)).count_ones());
            }
            i += n;
        }
        c
    }

    /// Are elements `0..len` all set?
    pub fn all_set(&self, len: usize) -> bool {
        let mut i = 0;
        while i < len {
            let n = (len - i).min(64);
            let full = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            if self.word(i, n) != full {
                return false;
            }
            i += n;
        }
        true
    }
}

#[inline]
pub fn set_bit(bytes: &mut [u8], i: usize, v: bool) {
    if v {
        bytes[i >> 3] |= 1 << (i & 7);
    } else {
        bytes[i >> 3] &= !(1 << (i & 7));
    }
}

#[inline]
pub fn get_bit(bytes: &[u8], i: usize) -> bool {
    (bytes[i >> 3] >> (i & 7)) & 1 == 1
}

/// Copies bits `from..from + len` of `src` to bits `at..at + len` of
/// `dst`, leaving `dst`'s other bits as they were: whole bytes when both
/// start on a byte (sealing copies blocks that mostly do), bit by bit else.
pub fn copy_bits(dst: &mut [u8], at: usize, src: &[u8], from: usize, len: usize) {
    if !at.is_multiple_of(8) || !from.is_multiple_of(8) {
        (0..len).for_each(|k| set_bit(dst, at + k, get_bit(src, from + k)));
        return;
    }
    let src = &src[from / 8..];
    let (whole, rest) = (len / 8, len % 8);
    dst[at / 8..at / 8 + whole].copy_from_slice(&src[..whole]);
    if rest > 0 {
        let mask = (1u8 << rest) - 1;
        let d = &mut dst[at / 8 + whole];
        *d = (*d & !mask) | (src[whole] & mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_offsets() {
        let mut b = vec![0u8; 3];
        for i in [0, 3, 9, 17, 23] {
            set_bit(&mut b, i, true);
        }
        set_bit(&mut b, 3, false);
        let s = BitSlice::new(&b, 0);
        assert!(s.get(0) && !s.get(3) && s.get(9) && s.get(17) && s.get(23));
        let t = s.advance(9);
        assert!(t.get(0) && t.get(8) && !t.get(1));
        assert!(get_bit(&b, 17));
    }

    proptest::proptest! {
        /// The byte-wise copy leaves exactly what a bit-by-bit copy leaves,
        /// outside the copied bits included.
        #[test]
        fn copy_bits_is_a_bit_by_bit_copy(src in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
                                          dst in proptest::collection::vec(proptest::prelude::any::<u8>(), 24),
                                          at in 0usize..64, from in 0usize..40, len in 0usize..160) {
            let from = from.min(src.len() * 8);
            let len = len.min(src.len() * 8 - from);
            let at = at.min(dst.len() * 8 - len);
            let (mut fast, mut slow) = (dst.clone(), dst);
            copy_bits(&mut fast, at, &src, from, len);
            (0..len).for_each(|k| set_bit(&mut slow, at + k, get_bit(&src, from + k)));
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    proptest::proptest! {
        /// Word-wise counts equal bit-by-bit counts at any offset and length.
        #[test]
        fn counts_match_bit_by_bit(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                                   other in proptest::collection::vec(proptest::prelude::any::<u8>(), 40),
                                   offset in 0usize..64, len in 0usize..200) {
            let total = bytes.len() * 8;
            let offset = offset.min(total);
            let len = len.min(total - offset);
            let s = BitSlice::new(&bytes, offset);
            let o = BitSlice::new(&other, 3);
            let ones = (0..len).filter(|&i| s.get(i)).count() as u64;
            let both = (0..len).filter(|&i| s.get(i) && o.get(i)).count() as u64;
            proptest::prop_assert_eq!(s.count_ones(len), ones);
            proptest::prop_assert_eq!(s.count_and(&o, len), both);
            proptest::prop_assert_eq!(s.all_set(len), ones == len as u64);
        }
    }
}
