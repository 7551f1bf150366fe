//! Fixed-width bit packing (frame of reference): `n` unsigned integers of
//! `width` bits each, LSB first, in a byte string padded so that any value
//! can be read with one unaligned 8-byte load. Values are readable at
//! random (no value depends on another), so a range is decoded without
//! touching the rest of its frame.

/// Bytes after the packed bits, so the last value's 8-byte load stays in bounds.
pub const PAD: usize = 7;
/// Widest value this packs (a 64-bit load at a bit offset of up to 7).
pub const MAX_WIDTH: u32 = 56;

/// Evaluates `$body` with `$w` a constant equal to `$width` (a width of
/// `0..=MAX_WIDTH` bits), so that shifts by multiples of it are constants;
/// `$other` for any other width.
macro_rules! with_width {
    ($width:expr, $w:ident => $body:expr, _ => $other:expr) => {
        with_width!(@arms $width, $w, $body, $other; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
            25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56)
    };
    (@arms $width:expr, $w:ident, $body:expr, $other:expr; $($n:literal)*) => {
        match $width {
            $($n => {
                const $w: usize = $n;
                $body
            })*
            _ => $other,
        }
    };
}

/// Bytes that `n` values of `width` bits take, padding included.
pub fn packed_len(n: usize, width: u32) -> usize {
    // Width 0 reads nothing, so needs no padding either.
    if width == 0 {
        0
    } else {
        (n * width as usize).div_ceil(8) + PAD
    }
}

/// Appends `values` (each below `2^width`) packed to `out`.
pub fn pack(values: impl Iterator<Item = u64>, n: usize, width: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + packed_len(n, width), 0);
    if width == 0 {
        return;
    }
    let bytes = &mut out[start..];
    // Whole 8-byte words go out as they fill; `bits` stays below 64.
    let mut acc: u128 = 0;
    let (mut bits, mut at) = (0u32, 0usize);
    for v in values.take(n) {
        acc |= u128::from(v) << bits;
        bits += width;
        if bits >= 64 {
            if let Some(word) = bytes.get_mut(at..at + 8) {
                word.copy_from_slice(&(acc as u64).to_le_bytes());
            }
            acc >>= 64;
            bits -= 64;
            at += 8;
        }
    }
    let tail = (bits as usize).div_ceil(8);
    if let Some(rest) = bytes.get_mut(at..at + tail) {
        rest.copy_from_slice(&(acc as u64).to_le_bytes()[..tail]);
    }
}

/// A packed frame, read in place.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    pub bytes: &'a [u8],
    pub width: u32,
}

impl Packed<'_> {
    /// Value `i`.
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        if self.width == 0 {
            return 0;
        }
        let bit = i * self.width as usize;
        let at = bit >> 3;
        let word = match self.bytes.get(at..at + 8) {
            Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => 0, // only a malformed frame lacks its padding
        };
        (word >> (bit & 7)) & ((1u64 << self.width) - 1)
    }

    /// Calls `f(i, value)` for each value `i` in `lo..hi`, in order.
    #[inline]
    pub fn for_each(&self, lo: usize, hi: usize, mut f: impl FnMut(usize, u64)) {
        self.for_each_group(lo, hi, &mut f, |f, i, v| f(i, v), |f, i, g| (0..GROUP).for_each(|j| f(i + j, g[j])));
    }

    /// Calls `one(state, i, value)` for the values of `lo..hi` outside whole
    /// groups of [`GROUP`] and `group(state, i, values)` for each whole
    /// group starting at `i`, in order. Groups unpack with shifts and masks known
    /// at compile time (one copy of the loop per width), which is what
    /// makes decoding run at several values a nanosecond.
    #[inline]
    pub fn for_each_group<S>(
        &self,
        lo: usize,
        hi: usize,
        state: &mut S,
        one: impl Fn(&mut S, usize, u64),
        group: impl Fn(&mut S, usize, &[u64; GROUP]),
    ) {
        let (first, last) = (lo.div_ceil(GROUP), hi / GROUP);
        if first >= last {
            (lo..hi).for_each(|i| one(state, i, self.get(i)));
            return;
        }
        (lo..first * GROUP).for_each(|i| one(state, i, self.get(i)));
        let mut group = |i: usize, v: &[u64; GROUP]| group(state, i, v);
        with_width!(self.width, W => groups::<W>(self.bytes, first..last, &mut group), _ => {
            (first..last).for_each(|g| {
                let v: [u64; GROUP] = std::array::from_fn(|j| self.get(g * GROUP + j));
                group(g * GROUP, &v)
            })
        });
        (last * GROUP..hi).for_each(|i| one(state, i, self.get(i)));
    }

    /// The sum of points `lo..hi`, for short ranges (a prefix's few
    /// points): whole groups of eight with constant shifts, the partial
    /// groups at either end masked lane by lane, where [`Packed::get`]
    /// would shift each point by a variable amount (several micro-ops on
    /// x86-64 without BMI2).
    #[inline]
    pub fn short_sum(&self, lo: usize, hi: usize) -> u64 {
        if lo >= hi {
            return 0;
        }
        let one_by_one = || (lo..hi).fold(0u64, |s, i| s.wrapping_add(self.get(i)));
        with_width!(self.width, W => masked_groups_sum::<W>(self.bytes, lo, hi).unwrap_or_else(one_by_one), _ => one_by_one())
    }
}

/// Values unpacked at a time: 8 values of `W` bits are exactly `W` bytes.
pub const GROUP: usize = 8;

/// Unpacks the groups `range` of a `W`-bit frame. Each group reads a window
/// of `W + 7` bytes (the padding guarantees it exists for every whole
/// group), checked once, so the eight loads inside need no checks.
#[inline]
fn groups<const W: usize>(bytes: &[u8], range: std::ops::Range<usize>, f: &mut impl FnMut(usize, &[u64; GROUP])) {
    if W == 0 {
        range.for_each(|g| f(g * GROUP, &[0; GROUP]));
        return;
    }
    for g in range {
        let Some(win) = bytes.get(g * W..g * W + W + PAD) else {
            return; // only a malformed frame lacks its padding
        };
        f(g * GROUP, &unpack_group::<W>(win));
    }
}

/// The eight values of a group from its window of `W + 7` bytes (`W >= 1`).
#[inline(always)]
fn unpack_group<const W: usize>(win: &[u8]) -> [u64; GROUP] {
    let mask = u64::MAX >> (64 - W);
    std::array::from_fn(|j| {
        let bit = j * W;
        let at = bit / 8;
        // at + 8 <= W + 7 for every j < 8 and W >= 1.
        let word = match win.get(at..at + 8) {
            Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => 0,
        };
        (word >> (bit % 8)) & mask
    })
}

/// [`Packed::short_sum`] for `W`-bit points; `None` when a group's window
/// lies past the bytes (the partial last group of a frame whose padding
/// does not reach that far, or a malformed frame).
#[inline]
fn masked_groups_sum<const W: usize>(bytes: &[u8], lo: usize, hi: usize) -> Option<u64> {
    if W == 0 {
        return Some(0);
    }
    let mut s = 0u64;
    for g in lo / GROUP..hi.div_ceil(GROUP) {
        let v = unpack_group::<W>(bytes.get(g * W..g * W + W + PAD)?);
        // Lanes l..h of this group lie in lo..hi.
        let (l, h) = (lo.saturating_sub(g * GROUP), (hi - g * GROUP).min(GROUP));
        for (j, &x) in v.iter().enumerate() {
            s = s.wrapping_add(if j >= l && j < h { x } else { 0 });
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every value reads back, alone and in any range.
        #[test]
        fn round_trips(width in 0u32..=MAX_WIDTH, raw in prop::collection::vec(any::<u64>(), 0..300), lo in 0usize..300, len in 0usize..300) {
            let mask = if width == 0 { 0 } else { (1u64 << width) - 1 };
            let values: Vec<u64> = raw.iter().map(|v| v & mask).collect();
            let mut out = vec![0xAA]; // packing appends
            pack(values.iter().copied(), values.len(), width, &mut out);
            prop_assert_eq!(out.len(), 1 + packed_len(values.len(), width));
            let p = Packed { bytes: &out[1..], width };
            for (i, &v) in values.iter().enumerate() {
                prop_assert_eq!(p.get(i), v);
            }
            let lo = lo.min(values.len());
            let hi = (lo + len).min(values.len());
            let mut seen = Vec::new();
            p.for_each(lo, hi, |i, v| seen.push((i, v)));
            let mut grouped = Vec::new();
            p.for_each_group(
                lo,
                hi,
                &mut grouped,
                |out, i, v| out.push((i, v)),
                |out, i, g| out.extend((0..GROUP).map(|j| (i + j, g[j]))),
            );
            prop_assert_eq!(&grouped, &seen);
            let want: Vec<(usize, u64)> = (lo..hi).map(|i| (i, values[i])).collect();
            prop_assert_eq!(seen, want);
            let sum = (lo..hi).fold(0u64, |s, i| s.wrapping_add(values[i]));
            prop_assert_eq!(p.short_sum(lo, hi), sum, "short_sum {}..{} of {} at width {}", lo, hi, values.len(), width);
        }
    }
}
