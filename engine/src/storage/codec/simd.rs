//! The sum (and minimum and maximum) of a packed frame's values, eight at
//! a time with AVX2: the hot loop of every scan of sealed tier 0.
//!
//! A group of eight `W`-bit values is exactly `W` bytes. Two 16-byte loads
//! (at the group's start, and at the byte holding value 4) fill the two
//! halves of a register; one byte shuffle puts each value's four bytes in
//! its own 32-bit lane, a per-lane shift and a mask finish the unpacking,
//! and the lanes add up. For `W <= 25` a value and its bit offset fit a
//! lane, and its minimum and maximum are 32-bit lane operations AVX2 has
//! (it has none for 64 bits). That is about five instructions for eight
//! values where the scalar unpacking takes four per value (measured in
//! `benches/codec.rs`, `summarize_buckets` and `summarize_sums_buckets`).
//!
//! **Safety.** The crate's third module with `unsafe` (after the mmap
//! reader in `segment_file` and the prefetch hint; see STYLE rule 13 and
//! the closing note of stop 24): the AVX2 function runs only after the CPU
//! was checked for AVX2 at run time, and every load reads 16 bytes that the
//! bounds check in [`group_totals`] proved lie inside the frame's bytes.
//! Everything else here is ordinary arithmetic on registers. The property
//! test beside it checks the sum against a plain one for every width and
//! range. The same holds for [`V3`], the token that proves x86-64-v3 and
//! runs the sums index's pass compiled for it, with its masked short sum.
//! Its property test does the same check.

/// Widest value the AVX2 path unpacks (a value plus its bit offset, at most
/// 7, must fit a 32-bit lane).
pub const MAX_SIMD_WIDTH: u32 = 25;

/// Per width: which bytes go to which lane, each lane's shift, and the
/// byte the upper four values are loaded from.
#[derive(Clone, Copy)]
struct Plan {
    shuffle: [u8; 32],
    shift: [u32; 8],
    upper: usize,
}

const fn plan(w: usize) -> Plan {
    let upper = 4 * w / 8;
    let mut shuffle = [0u8; 32];
    let mut shift = [0u32; 8];
    let mut j = 0;
    while j < 8 {
        let (base, half) = if j < 4 { (0, 0) } else { (upper, 16) };
        let bit = j * w - 8 * base;
        shift[j] = (bit % 8) as u32;
        let mut b = 0;
        while b < 4 {
            shuffle[half + (j % 4) * 4 + b] = (bit / 8 + b) as u8;
            b += 1;
        }
        j += 1;
    }
    Plan { shuffle, shift, upper }
}

const PLANS: [Plan; MAX_SIMD_WIDTH as usize + 1] = {
    let mut p = [Plan { shuffle: [0; 32], shift: [0; 8], upper: 0 }; MAX_SIMD_WIDTH as usize + 1];
    let mut w = 1;
    while w <= MAX_SIMD_WIDTH as usize {
        p[w] = plan(w);
        w += 1;
    }
    p
};

/// Groups summed in 32-bit lanes before they widen: 128 values below
/// `2^25` stay below `2^32`.
const LANE_GROUPS: usize = 128;

/// Sum, minimum and maximum of some packed values (`u64::MAX` and 0 for
/// none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub sum: u64,
    pub min: u64,
    pub max: u64,
}

impl Totals {
    pub const EMPTY: Totals = Totals { sum: 0, min: u64::MAX, max: 0 };
}

/// The totals of the values of groups `first..` of a frame of
/// `width`-bit values (minimum and maximum only with `MIN_MAX`), and the
/// group it stopped before: `last`, or earlier where the frame's last
/// bytes are too few for the 16-byte loads (the caller reads those groups
/// itself). `None` without AVX2 or for other widths.
#[inline]
pub fn group_totals<const MIN_MAX: bool>(
    bytes: &[u8],
    width: u32,
    first: usize,
    last: usize,
) -> Option<(Totals, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        if (1..=MAX_SIMD_WIDTH).contains(&width) && first < last && std::is_x86_feature_detected!("avx2") {
            let w = width as usize;
            let p = &PLANS[w];
            // Group g reads bytes g*w .. g*w + upper + 16.
            let reach = p.upper + 16;
            // Every group but near the frame's end: no division.
            let end = if (last - 1) * w + reach <= bytes.len() {
                last
            } else if bytes.len() >= reach {
                ((bytes.len() - reach) / w + 1).min(last)
            } else {
                first
            };
            if end <= first {
                return Some((Totals::EMPTY, first));
            }
            // SAFETY: AVX2 is present (checked above), and for every group g
            // in first..end, g*w + upper + 16 <= bytes.len() (end's bound), so
            // both 16-byte loads lie inside `bytes`.
            return Some((unsafe { totals_avx2::<MIN_MAX>(bytes, p, w, first, end) }, end));
        }
    }
    let _ = (bytes, width, first, last);
    None
}

/// Proof that this CPU has the features of x86-64-v3 (AVX2, BMI1/2,
/// `popcnt`, `lzcnt`): made only by [`V3::detect`], after checking them.
/// The build's baseline x86-64 has none of them, and a scan of sums
/// counts bits and unpacks a few points at every range end.
///
/// **Safety.** Every `unsafe` call below relies on the token's existence
/// alone: it proves each feature the called function enables.
#[derive(Debug, Clone, Copy)]
pub struct V3(());

impl V3 {
    #[inline]
    pub fn detect() -> Option<V3> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("lzcnt")
        {
            return Some(V3(()));
        }
        None
    }

    /// Runs `f` compiled for x86-64-v3, where LLVM inlines it into
    /// [`v3`] (mark what it calls `#[inline(always)]`): `popcnt` counts a
    /// word of bits in one instruction, `shrx` shifts by a variable amount
    /// in one micro-op. The same integer operations, so the same results.
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the token proves every feature `v3` enables.
        return unsafe { v3(f) };
        #[cfg(not(target_arch = "x86_64"))]
        f()
    }

    /// The sum of packed points `lo..hi` of a frame of `width`-bit points
    /// (a short range: at most [`SHORT_MAX`] points), eight lanes at a
    /// time with the lanes outside the range masked; `None` for other
    /// widths and near the frame's end, where its 16-byte loads would pass
    /// its bytes (the caller sums those itself).
    #[inline(always)]
    pub fn short_sum(self, bytes: &[u8], width: u32, lo: usize, hi: usize) -> Option<u64> {
        #[cfg(target_arch = "x86_64")]
        if (1..=MAX_SIMD_WIDTH).contains(&width) && lo < hi && hi - lo <= SHORT_MAX {
            let (w, p) = (width as usize, &PLANS[width as usize]);
            // The last group read, at (hi - 1) / 8, loads up to its byte
            // g*w + upper + 16.
            if ((hi - 1) / 8) * w + p.upper + 16 > bytes.len() {
                return None;
            }
            // SAFETY: the token proves AVX2, and every group read (up to
            // (hi - 1) / 8) loads 16 bytes at g*w and g*w + upper, inside
            // `bytes` by the check above.
            return Some(unsafe { short_sum_avx2(bytes, p, w, lo, hi) });
        }
        let _ = (self, bytes, width, lo, hi);
        None
    }
}

/// Points [`V3::short_sum`] adds at most: a lane then holds at most
/// `SHORT_MAX / 8 + 2` points below `2^25`, and eight lanes' sum stays
/// below `2^32`.
pub const SHORT_MAX: usize = 64;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
fn v3<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn short_sum_avx2(bytes: &[u8], p: &Plan, w: usize, lo: usize, hi: usize) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: the caller proved AVX2 and that each group's loads, at g*w
    // and g*w + upper, read 16 bytes inside `bytes`; the plan's arrays are
    // 32 bytes each.
    unsafe {
        let shuffle = _mm256_loadu_si256(p.shuffle.as_ptr().cast::<__m256i>());
        let shift = _mm256_loadu_si256(p.shift.as_ptr().cast::<__m256i>());
        let mask = _mm256_set1_epi32(((1u64 << w) - 1) as i32);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut acc = _mm256_setzero_si256();
        for g in lo / 8..hi.div_ceil(8) {
            let at = bytes.as_ptr().add(g * w);
            let a = _mm_loadu_si128(at.cast::<__m128i>());
            let b = _mm_loadu_si128(at.add(p.upper).cast::<__m128i>());
            let v =
                _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_set_m128i(b, a), shuffle), shift), mask);
            // Lanes l..h of this group lie in lo..hi.
            let (l, h) = (lo.saturating_sub(g * 8) as i32, (hi - g * 8).min(8) as i32);
            let keep = _mm256_and_si256(
                _mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(l - 1)),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(h), lanes),
            );
            acc = _mm256_add_epi32(acc, _mm256_and_si256(v, keep));
        }
        let half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
        let pair = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
        let one = _mm_add_epi32(pair, _mm_shuffle_epi32::<1>(pair));
        u64::from(_mm_cvtsi128_si32(one) as u32)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn totals_avx2<const MIN_MAX: bool>(bytes: &[u8], p: &Plan, w: usize, first: usize, end: usize) -> Totals {
    use std::arch::x86_64::*;
    // SAFETY: the caller checked AVX2 and that each group's loads, at
    // g*w and g*w + upper, read 16 bytes inside `bytes`; the plan's arrays
    // are 32 bytes each, and `lanes` 32 bytes.
    unsafe {
        let shuffle = _mm256_loadu_si256(p.shuffle.as_ptr().cast::<__m256i>());
        let shift = _mm256_loadu_si256(p.shift.as_ptr().cast::<__m256i>());
        let mask = _mm256_set1_epi32(((1u64 << w) - 1) as i32);
        let mut total = _mm256_setzero_si256();
        let (mut lo, mut hi) = (_mm256_set1_epi32(-1), _mm256_setzero_si256());
        let mut g = first;
        while g < end {
            let stop = (g + LANE_GROUPS).min(end);
            let mut acc = _mm256_setzero_si256();
            while g < stop {
                let at = bytes.as_ptr().add(g * w);
                let a = _mm_loadu_si128(at.cast::<__m128i>());
                let b = _mm_loadu_si128(at.add(p.upper).cast::<__m128i>());
                let x = _mm256_set_m128i(b, a);
                let v = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(x, shuffle), shift), mask);
                acc = _mm256_add_epi32(acc, v);
                if MIN_MAX {
                    lo = _mm256_min_epu32(lo, v);
                    hi = _mm256_max_epu32(hi, v);
                }
                g += 1;
            }
            total = _mm256_add_epi64(total, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(acc)));
            total = _mm256_add_epi64(total, _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(acc)));
        }
        let mut sums = [0u64; 4];
        _mm256_storeu_si256(sums.as_mut_ptr().cast::<__m256i>(), total);
        let mut out = Totals { sum: sums.iter().fold(0u64, |s, &x| s.wrapping_add(x)), ..Totals::EMPTY };
        if MIN_MAX {
            let (mut lanes_lo, mut lanes_hi) = ([0u32; 8], [0u32; 8]);
            _mm256_storeu_si256(lanes_lo.as_mut_ptr().cast::<__m256i>(), lo);
            _mm256_storeu_si256(lanes_hi.as_mut_ptr().cast::<__m256i>(), hi);
            out.min = u64::from(lanes_lo.iter().copied().min().unwrap_or(u32::MAX));
            out.max = u64::from(lanes_hi.iter().copied().max().unwrap_or(0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::bitpack::{pack, packed_len, Packed, GROUP};
    use super::*;
    use proptest::prelude::*;

    /// Each value's bytes and shift lie inside its half of the register.
    #[test]
    fn plans_stay_inside_their_halves() {
        for (w, p) in PLANS.iter().enumerate().skip(1) {
            for j in 0..8 {
                let (half, base) = if j < 4 { (0, 0) } else { (16, p.upper) };
                let first = usize::from(p.shuffle[half + (j % 4) * 4]);
                assert!(first + 3 < 16, "width {w} value {j}");
                assert_eq!((base + first) * 8 + p.shift[j] as usize, j * w, "width {w} value {j}");
                assert!(p.shift[j] as usize + w <= 32);
            }
        }
    }

    /// `raw` cut to `width` bits, and packed alone (as a frame).
    fn packed(width: u32, raw: &[u64]) -> (Vec<u64>, Vec<u8>) {
        let mask = if width == 0 { 0 } else { (1u64 << width) - 1 };
        let values: Vec<u64> = raw.iter().map(|v| v & mask).collect();
        let mut bytes = Vec::new();
        pack(values.iter().copied(), values.len(), width, &mut bytes);
        (values, bytes)
    }

    proptest! {
        /// The AVX2 sum, minimum and maximum equal a plain loop's, for every
        /// width and range, and never read past the frame (the frame is
        /// packed alone).
        #[test]
        fn sums_what_a_plain_loop_sums(
            width in 0u32..=MAX_SIMD_WIDTH + 2,
            raw in prop::collection::vec(any::<u64>(), 0..1100),
            first in 0usize..140,
            len in 0usize..140,
        ) {
            let (values, bytes) = packed(width, &raw);
            prop_assert_eq!(bytes.len(), packed_len(values.len(), width));
            let groups = values.len() / GROUP;
            let first = first.min(groups);
            let last = (first + len).min(groups);
            let Some((sums, end)) = group_totals::<false>(&bytes, width, first, last) else {
                prop_assert!(width == 0 || width > MAX_SIMD_WIDTH || first >= last || !std::is_x86_feature_detected!("avx2"));
                return Ok(());
            };
            let (all, all_end) = group_totals::<true>(&bytes, width, first, last).expect("the same path");
            prop_assert_eq!(all_end, end);
            prop_assert_eq!(all.sum, sums.sum);
            let part = &values[first * GROUP..end * GROUP];
            prop_assert_eq!(all.min, part.iter().copied().min().unwrap_or(u64::MAX));
            prop_assert_eq!(all.max, part.iter().copied().max().unwrap_or(0));
            let sum = sums.sum;
            prop_assert!(first <= end && end <= last);
            let plain: u64 = values[first * GROUP..end * GROUP].iter().sum();
            prop_assert_eq!(sum, plain);
            let p = Packed { bytes: &bytes, width };
            // Only the last bytes of the frame are left to the caller.
            let left = (last - end) * width as usize;
            prop_assert!(left < PLANS[width as usize].upper + 9, "{} bytes left", left);
            prop_assert!((end * GROUP..last * GROUP).all(|i| p.get(i) == values[i]));
        }

        /// A short sum, where the CPU has x86-64-v3, equals a plain loop's
        /// for every width and range of up to `SHORT_MAX` points; it
        /// declines only other widths, longer ranges, and ranges whose loads
        /// would pass the frame's end.
        #[test]
        fn short_sums_what_a_plain_loop_sums(
            width in 0u32..=MAX_SIMD_WIDTH + 2,
            raw in prop::collection::vec(any::<u64>(), 1..300),
            lo in 0usize..300,
            len in 0usize..80,
        ) {
            let Some(v3) = V3::detect() else { return Ok(()) };
            let (values, bytes) = packed(width, &raw);
            let lo = lo.min(values.len());
            let hi = (lo + len).min(values.len());
            let plain: u64 = values[lo..hi].iter().sum();
            match v3.short_sum(&bytes, width, lo, hi) {
                Some(sum) => prop_assert_eq!(sum, plain, "{}..{} at width {}", lo, hi, width),
                None => {
                    let w = width as usize;
                    let past_end = hi > lo && ((hi - 1) / 8) * w + PLANS[w.min(MAX_SIMD_WIDTH as usize)].upper + 16 > bytes.len();
                    prop_assert!(width == 0 || width > MAX_SIMD_WIDTH || lo >= hi || hi - lo > SHORT_MAX || past_end);
                }
            }
        }
    }
}
