//! The `k`-th smallest of a bucket's decimal integers by bisection over
//! values instead of by partitioning: the integers are moved once into
//! 16-bit offsets from their minimum, and each step of the bisection
//! counts the offsets below a candidate, sixteen lanes at a time, with no
//! branch per value.
//!
//! Why: a median selects in every bucket, and `select_nth_unstable`'s
//! partitions branch on every comparison of values that vary at random
//! (half its predictions miss). A gauge of two decimals over a few minutes
//! spans a thousand or so steps: ten bits, which the bisection settles two
//! at a time, counting below three candidates in each pass, so about five
//! passes over 18 vectors for a 288-point bucket. One candidate per pass
//! took twice the passes, each a chain of dependent additions, a
//! horizontal sum and a branch that misses half the time; three counts
//! share the loads, run side by side and pick the next two bits without a
//! branch.
//!
//! Integers that span more than 2^15 steps are bisected on their offsets
//! shifted right until they fit: that finds the coarse steps of the two
//! ranks, and the integers in those steps are then selected exactly (a
//! few), or ranked again once the same way (most of the bucket, when it
//! is a cluster beside far outliers). Coarser steps for spans under 2^15
//! (at most four per integer, one pass fewer per halving) were measured
//! and not kept: see benches/RESULTS.md, stop 39.
//!
//! Invariant: [`kth_pair`] returns exactly what selection gives, the
//! `k`-th and `(k + 1)`-th smallest (0-based) of the integers, or `None`
//! (the caller selects as before) when `k` is out of range or they are
//! too many for a lane's 16-bit count.

use crate::storage::codec::V3;

/// Lanes counted together: one AVX2 register of 16-bit offsets.
const LANES: usize = 16;
/// Integers at most: a lane then counts at most `MAX_LEN / LANES` < 2^15.
const MAX_LEN: usize = 1 << 18;
/// The widest span of offsets: offsets and every candidate fit an `i16`,
/// and the padding (`i16::MAX`) lies above every candidate.
const MAX_SPAN: u64 = i16::MAX as u64 - 1;
/// Integers of the two steps above which they are ranked again rather
/// than selected.
const REFINE_MIN: usize = 64;

/// Buffers a kernel keeps between buckets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    offsets: Vec<i16>,
    /// The integers of the two coarse steps, where offsets were shifted.
    steps: Vec<i64>,
}

/// The `k`-th smallest of `ints` and, when there is one, the `(k + 1)`-th;
/// `None` for a `k` past the end or more than [`MAX_LEN`] integers. With
/// `v3`, the counts run in AVX2 registers.
#[inline]
pub(crate) fn kth_pair(ints: &[i64], k: usize, scratch: &mut Scratch, v3: Option<V3>) -> Option<(i64, Option<i64>)> {
    match v3 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the token proves AVX2, all `avx2::kth_pair` enables.
        Some(_) => unsafe { avx2::kth_pair(ints, k, scratch) },
        _ => kth_pair_with::<true, _, _, _>(ints, k, scratch, &Passes { below: count_below, below3, above: min_above }),
    }
}

/// The counting passes the selection runs over the offsets (inlined, so
/// compiled for the caller's target features).
struct Passes<B, B3, A> {
    /// Offsets below `t`.
    below: B,
    /// Offsets below each of three candidates.
    below3: B3,
    /// The least offset above `v` (padding is `i16::MAX`).
    above: A,
}

/// Offsets below each of `t` (the build without AVX2).
fn below3(offsets: &[i16], t: [i16; 3]) -> [usize; 3] {
    t.map(|t| count_below(offsets, t))
}

/// [`kth_pair`] with the counting passes `below` and `above` (inlined, so
/// compiled for the caller's target features).
#[inline(always)]
fn kth_pair_with<const REFINE: bool, B, B3, A>(
    ints: &[i64],
    k: usize,
    scratch: &mut Scratch,
    passes: &Passes<B, B3, A>,
) -> Option<(i64, Option<i64>)>
where
    B: Fn(&[i16], i16) -> usize,
    B3: Fn(&[i16], [i16; 3]) -> [usize; 3],
    A: Fn(&[i16], i16) -> i16,
{
    let n = ints.len();
    if k >= n || n > MAX_LEN {
        return None;
    }
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for &x in ints {
        min = min.min(x);
        max = max.max(x);
    }
    // Differences from the minimum fit a u64 (max >= min).
    let span = max.wrapping_sub(min) as u64;
    let shift = (0..u64::BITS).find(|&s| span >> s <= MAX_SPAN).unwrap_or(u64::BITS - 1);
    let step = |x: i64| (x.wrapping_sub(min) as u64 >> shift) as i16;
    let offsets = &mut scratch.offsets;
    offsets.clear();
    offsets.resize(n.next_multiple_of(LANES), i16::MAX);
    for (o, &x) in offsets.iter_mut().zip(ints) {
        *o = step(x);
    }
    let (v, next) = rank(offsets, n, (span >> shift) as i16, k, passes);
    if shift == 0 {
        return Some((min + i64::from(v), next.map(|o| min + i64::from(o))));
    }
    // The k-th integer lies in step `v`, the next in step `next`: select
    // among the integers of those steps, past the `below` of lower steps.
    let lower = (passes.below)(offsets, v);
    let last = next.unwrap_or(v);
    // Without a branch per integer: each is written, and kept by moving
    // on when its step is one of the two (an unsigned range check).
    let steps = &mut scratch.steps;
    steps.clear();
    steps.resize(n, 0);
    let (mut kept, width) = (0, last.wrapping_sub(v) as u16);
    for (&o, &x) in offsets.iter().zip(ints) {
        steps[kept] = x;
        kept += usize::from(o.wrapping_sub(v) as u16 <= width);
    }
    if REFINE && kept > REFINE_MIN && kept < n {
        // Most of the bucket in one step (a cluster beside an outlier):
        // rank the cluster the same way, once (it spans far less).
        let cluster = std::mem::take(&mut scratch.steps);
        let pair = kth_pair_with::<false, _, _, _>(&cluster[..kept], k - lower, scratch, passes);
        scratch.steps = cluster;
        return pair.map(|(a, b)| (a, next.and(b)));
    }
    let (_, &mut a, right) = scratch.steps[..kept].select_nth_unstable(k - lower);
    let b = next.and_then(|_| right.iter().min().copied());
    Some((a, b))
}

/// The bisection over `offsets` (the first `n` in `0..=span`, padded
/// with `i16::MAX` to a multiple of [`LANES`]; `k < n`): the `k`-th
/// smallest offset and, when `k + 1 < n`, the next.
#[inline(always)]
fn rank<B, B3, A>(offsets: &[i16], n: usize, span: i16, k: usize, passes: &Passes<B, B3, A>) -> (i16, Option<i16>)
where
    B: Fn(&[i16], i16) -> usize,
    B3: Fn(&[i16], [i16; 3]) -> [usize; 3],
    A: Fn(&[i16], i16) -> i16,
{
    // The largest `v` with at most `k` offsets below it is the k-th
    // smallest; it is found from the span's top bit down, two bits a
    // pass: of the candidates `v + q`, `v + 2q`, `v + 3q` (q the lower of
    // the two bits), those with at most `k` below are a prefix (counts
    // grow with the candidate), and their number is the two bits. Every
    // candidate has only the span's bits, so stays at most `2^15 - 1 =
    // i16::MAX`, the padding, which a count below it never includes.
    let mut v: i16 = 0;
    let mut bits = u16::BITS - (span as u16).leading_zeros();
    if bits % 2 == 1 {
        bits -= 1;
        let t = v | (1 << bits);
        if (passes.below)(offsets, t) <= k {
            v = t;
        }
    }
    while bits > 0 {
        bits -= 2;
        let q: i16 = 1 << bits;
        let counts = (passes.below3)(offsets, [v | q, v | (2 * q), v | (3 * q)]);
        v |= q * counts.iter().map(|&c| i16::from(c <= k)).sum::<i16>();
    }
    // `v + 1` stays within i16: v <= span < i16::MAX.
    let next = (k + 1 < n).then(|| if (passes.below)(offsets, v + 1) > k + 1 { v } else { (passes.above)(offsets, v) });
    (v, next)
}

/// Offsets below `t` (the build without AVX2).
fn count_below(offsets: &[i16], t: i16) -> usize {
    offsets.iter().filter(|&&o| o < t).count()
}

/// The least offset above `v` (one exists: the caller counted fewer than
/// all at or below it; padding is `i16::MAX`, above every real offset).
fn min_above(offsets: &[i16], v: i16) -> i16 {
    offsets.iter().copied().filter(|&o| o > v).min().unwrap_or(i16::MAX)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// [`super::kth_pair`] with sixteen offsets compared and counted per
    /// instruction.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn kth_pair(ints: &[i64], k: usize, scratch: &mut super::Scratch) -> Option<(i64, Option<i64>)> {
        let passes = super::Passes {
            below: |o: &[i16], t| count_below(o, t),
            below3: |o: &[i16], t| count_below3(o, t),
            above: |o: &[i16], v| min_above(o, v),
        };
        super::kth_pair_with::<true, _, _, _>(ints, k, scratch, &passes)
    }

    /// Offsets below each of three candidates, in one pass: three
    /// independent counts per load.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn count_below3(offsets: &[i16], t: [i16; 3]) -> [usize; 3] {
        let [t0, t1, t2] = t.map(|t| _mm256_set1_epi16(t));
        let (mut a0, mut a1, mut a2) = (_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256());
        for chunk in offsets.chunks_exact(LANES) {
            // SAFETY: the chunk holds 16 i16, 32 bytes; unaligned load.
            let o = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            a0 = _mm256_sub_epi16(a0, _mm256_cmpgt_epi16(t0, o));
            a1 = _mm256_sub_epi16(a1, _mm256_cmpgt_epi16(t1, o));
            a2 = _mm256_sub_epi16(a2, _mm256_cmpgt_epi16(t2, o));
        }
        // Pairs of lanes to 32 bits (counts below 2^15 read as signed),
        // then the three sums side by side: [a0, a1, a2, a2] per half.
        let ones = _mm256_set1_epi16(1);
        let (p0, p1, p2) = (_mm256_madd_epi16(a0, ones), _mm256_madd_epi16(a1, ones), _mm256_madd_epi16(a2, ones));
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p2));
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        let mut out = [0i32; 4];
        // SAFETY: 16 bytes into a 16-byte array; unaligned store.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), sums) };
        [out[0] as usize, out[1] as usize, out[2] as usize]
    }

    /// Offsets below `t`: each lane counts at most `MAX_LEN / LANES`
    /// (below 2^15), so `madd` may read its counts as signed.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn count_below(offsets: &[i16], t: i16) -> usize {
        let tv = _mm256_set1_epi16(t);
        let mut acc = _mm256_setzero_si256();
        for chunk in offsets.chunks_exact(LANES) {
            // SAFETY: the chunk holds 16 i16, 32 bytes; unaligned load.
            let o = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            acc = _mm256_sub_epi16(acc, _mm256_cmpgt_epi16(tv, o));
        }
        let pairs = _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
        let quads = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256::<1>(pairs));
        let halves = _mm_add_epi32(quads, _mm_unpackhi_epi64(quads, quads));
        let total = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b01>(halves));
        _mm_cvtsi128_si32(total) as usize
    }

    /// The least offset above `v` (padding is `i16::MAX`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn min_above(offsets: &[i16], v: i16) -> i16 {
        let vv = _mm256_set1_epi16(v);
        let top = _mm256_set1_epi16(i16::MAX);
        let mut least = top;
        for chunk in offsets.chunks_exact(LANES) {
            // SAFETY: the chunk holds 16 i16, 32 bytes; unaligned load.
            let o = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            let kept = _mm256_blendv_epi8(top, o, _mm256_cmpgt_epi16(o, vv));
            least = _mm256_min_epi16(least, kept);
        }
        let mut lanes = [0i16; LANES];
        // SAFETY: 32 bytes into a 32-byte array; unaligned store.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), least) };
        lanes.into_iter().min().unwrap_or(i16::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What selection answers.
    fn by_selection(ints: &[i64], k: usize) -> (i64, Option<i64>) {
        let mut v = ints.to_vec();
        let (_, &mut a, right) = v.select_nth_unstable(k);
        (a, right.iter().min().copied())
    }

    /// Integers over spans from none to all of i64, many repeated, and
    /// buckets of a narrow cluster with a few far outliers (most integers
    /// in one coarse step).
    fn ints_strategy() -> impl Strategy<Value = Vec<i64>> {
        let spans = prop_oneof![
            Just(0u64),
            0u64..4,
            0u64..2000,
            0..=MAX_SPAN,
            0..=2 * MAX_SPAN + 3,
            0u64..1 << 40,
            any::<u64>()
        ];
        (any::<i64>(), spans, prop::collection::vec(any::<u64>(), 1..700), prop::collection::vec(any::<i64>(), 0..3))
            .prop_map(|(base, span, raw, outliers)| {
                let mut ints: Vec<i64> = raw
                    .iter()
                    .map(|&r| base.wrapping_add(r.checked_rem(span.wrapping_add(1)).unwrap_or(r) as i64))
                    .collect();
                for (i, o) in outliers.into_iter().enumerate() {
                    let at = (o as usize).wrapping_mul(31 + i) % ints.len();
                    ints[at] = o;
                }
                ints
            })
    }

    proptest! {
        /// Every rank is the selected one, on both builds of the counts.
        #[test]
        fn ranks_equal_selection(ints in ints_strategy(), k in any::<prop::sample::Index>()) {
            let k = k.index(ints.len());
            let mut scratch = Scratch::default();
            for v3 in [None, V3::detect()] {
                let got = kth_pair(&ints, k, &mut scratch, v3).expect("k is in range");
                prop_assert_eq!(got, by_selection(&ints, k));
            }
        }
    }

    #[test]
    fn edges() {
        for v3 in [None, V3::detect()] {
            let kth_pair = |ints: &[i64], k| kth_pair(ints, k, &mut Scratch::default(), v3);
            assert_eq!(kth_pair(&[7], 0), Some((7, None)));
            assert_eq!(kth_pair(&[7], 1), None, "k past the end");
            assert_eq!(kth_pair(&[], 0), None);
            // The widest span of unshifted offsets, both ends and the top rank.
            let top = 5 + MAX_SPAN as i64;
            assert_eq!(kth_pair(&[5, top, 5, 6], 3), Some((top, None)));
            assert_eq!(kth_pair(&[5, top, 5, 6], 2), Some((6, Some(top))));
            // Shifted: the extremes of i64, and a cluster beside an outlier.
            assert_eq!(kth_pair(&[i64::MAX, i64::MIN, 0], 1), Some((0, Some(i64::MAX))));
            assert_eq!(kth_pair(&[i64::MAX, i64::MIN, i64::MIN], 0), Some((i64::MIN, Some(i64::MIN))));
            assert_eq!(kth_pair(&[10, 12, 11, 1 << 50, 13], 2), Some((12, Some(13))));
            // Many repeats of the k-th value: the next is the same.
            assert_eq!(kth_pair(&[3, 1, 3, 3, 9], 1), Some((3, Some(3))));
            assert_eq!(kth_pair(&[3, 1, 3, 3, 9], 3), Some((3, Some(9))));
            assert_eq!(kth_pair(&vec![4; MAX_LEN + 1], 0), None, "too many for the lanes' counts");
        }
    }
}
