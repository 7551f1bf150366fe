//! Running sums of a sealed row's packed integers at every [`STRIDE`]
//! points, so that the sum of any range of a decimal frame costs two
//! checkpoint reads and at most `STRIDE / 2` unpacked points at each end,
//! instead of every point of the range. A 24 h query in 288 s buckets
//! otherwise unpacks all 86,400 points of each metric to add them up.
//!
//! Invariant: for a decimal frame `f` and a frame-local point `p`,
//! [`prefix_in`] is the sum, modulo 2^64, of the packed offsets
//! `u` of the valid points before `p`: the very integers the direct path
//! ([`super::frame_part`]) adds. A range's total is the difference of two
//! prefixes (wrapping; a frame's true total stays below 2^63), so it
//! equals the direct integer sum exactly, and the scaled result is the
//! direct one bit for bit: answers do not depend on whether a row has
//! its index. Raw frames have none (their sums are floats, which depend
//! on the order of addition); they are read as before.
//!
//! An index is built once per sealed row, the first time a scan of sums
//! reads that row (one unpack of the row, about the cost of one scan of
//! it), and kept in memory beside the mapped segment: 8 bytes per
//! `STRIDE` points, 0.25 bytes a sample (and each 1,024-point frame's
//! parsed header, 24 bytes), never written to disk (the
//! format stays as it is, and the on-disk bytes per sample with it).
//! A row with validity or anomaly bits also keeps their running counts,
//! 4 bytes per 64 points each, so a range's valid and anomalous points
//! are two counts apart (and a word's bits at each end) instead of a
//! count of every word between.
//! Building it needs no lock: the row is immutable once sealed and the
//! cell ([`std::sync::OnceLock`]) lets one builder in while others wait.

use super::bitpack::Packed;
use super::simd::V3;
use super::{frame_part, scaled_total, signed, EncodedRow, Frame, FRAME};
use crate::storage::bits::BitSlice;
use crate::storage::prefetch;
use crate::storage::row::AggPoint;

/// Points between checkpoints: a prefix unpacks at most half of this.
/// Measured against 64 (criterion codec `summarize_sums_of_288_indexed`,
/// in cache: 310 against 216-232 µs; query bench, 24 h automatic tier,
/// three alternating pairs: 94 / 99 / 108 against 70.5 / 80 / 91.5 ms of
/// CPU) for twice the memory; 16 read more index than it saved unpacking.
pub const STRIDE: usize = 32;
/// Checkpoints per frame.
const PER_FRAME: usize = FRAME / STRIDE;

/// One row's checkpoints: entry `f * PER_FRAME + j` is frame `f`'s prefix
/// at `min(STRIDE * (j + 1), frame length)` (0 for raw frames).
#[derive(Debug, Default)]
pub struct SumIndex {
    at: Box<[u64]>,
    /// Each frame's header, parsed: a scan then neither reads the row's
    /// frame offsets and headers (two cache misses per frame once the
    /// rows have left the cache) nor parses them again.
    heads: Box<[Head]>,
    /// The row's valid points before each 64-point word of its bits
    /// (empty when all are valid): a range's count is two of these and a
    /// word's bits each, not every word between (the build's target has
    /// no `popcnt`: each word counted costs a dozen instructions).
    valid: Counts,
    /// The same of the valid anomalous points (empty without anomalies).
    anomalous: Counts,
}

/// A frame's header as [`EncodedRow::frame`] reads it: where its points
/// lie in the row's frame bytes and how to read them.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// The points' bytes in the row's frame bytes: `from..from + len`.
    from: u32,
    len: u32,
    base: i64,
    exp: u8,
    width: u8,
    kind: HeadKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadKind {
    Decimal,
    Negated,
    Raw,
    /// The frame did not parse: read as no points, as a scan reads it.
    Missing,
}

impl Head {
    const MISSING: Head = Head { from: 0, len: 0, base: 0, exp: 0, width: 0, kind: HeadKind::Missing };

    /// The header of `frame`, whose bytes lie in `frames`.
    fn of(frames: &[u8], frame: Option<Frame<'_>>) -> Head {
        let at = |bytes: &[u8]| (bytes.as_ptr() as usize - frames.as_ptr() as usize) as u32;
        match frame {
            Some(Frame::Decimal { exp, base, packed, neg }) => Head {
                from: at(packed.bytes),
                len: packed.bytes.len() as u32,
                base,
                exp: exp as u8,
                width: packed.width as u8,
                kind: if neg { HeadKind::Negated } else { HeadKind::Decimal },
            },
            Some(Frame::Raw(bytes)) => {
                Head { from: at(bytes), len: bytes.len() as u32, kind: HeadKind::Raw, ..Head::MISSING }
            }
            None => Head::MISSING,
        }
    }

    /// The frame this header describes, in the row's frame bytes `frames`.
    #[inline(always)]
    fn frame<'a>(&self, frames: &'a [u8]) -> Option<Frame<'a>> {
        let bytes = frames.get(self.from as usize..self.from as usize + self.len as usize)?;
        match self.kind {
            HeadKind::Decimal | HeadKind::Negated => Some(Frame::Decimal {
                exp: u32::from(self.exp),
                base: self.base,
                packed: Packed { bytes, width: u32::from(self.width) },
                neg: self.kind == HeadKind::Negated,
            }),
            HeadKind::Raw => Some(Frame::Raw(bytes)),
            HeadKind::Missing => None,
        }
    }
}

/// The set bits of a row's bitmap before any point.
#[derive(Debug)]
enum Counts {
    /// Set bits before each word `w` (`w * 64` points), for `w` in
    /// `0..=words`: a count is one of these and one word of the bitmap.
    Words(Box<[u32]>),
    /// The set points themselves, in order, where there are no more of
    /// them than words: a count is a search of this short list, and the
    /// bitmap is not read. Anomalies are rare (a few an hour): their
    /// bitmap's word at every range end, and the counts by word, were
    /// about a quarter of the cache lines a 24 h scan of sums read.
    Points(Box<[u32]>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Words(Box::default())
    }
}

impl Counts {
    /// The set bits of `bits` (and of `also`, when given) before each point.
    fn build(points: usize, bits: &[u8], also: Option<&[u8]>) -> Counts {
        let words = points.div_ceil(64);
        let mut before = Vec::with_capacity(words + 1);
        let mut running = 0u32;
        before.push(0);
        for w in 0..words {
            running += word_count(bits, also, w, (points - 64 * w).min(64));
            before.push(running);
        }
        if running as usize > words {
            return Counts::Words(before.into_boxed_slice());
        }
        let set = |i: usize| BitSlice::new(bits, 0).get(i) && also.is_none_or(|a| BitSlice::new(a, 0).get(i));
        let mut at = Vec::with_capacity(running as usize);
        for w in (0..words).filter(|&w| before[w + 1] > before[w]) {
            at.extend((64 * w..(64 * w + 64).min(points)).filter(|&i| set(i)).map(|i| i as u32));
        }
        Counts::Points(at.into_boxed_slice())
    }

    /// The set bits before point `p` (`p` at most the row's points).
    #[inline(always)]
    fn at(&self, p: usize, bits: &[u8], also: Option<&[u8]>) -> u32 {
        match self {
            Counts::Points(at) => at.partition_point(|&i| (i as usize) < p) as u32,
            Counts::Words(before) => {
                let (w, r) = (p / 64, p % 64);
                let whole = before.get(w).copied().unwrap_or(0);
                if r == 0 {
                    return whole;
                }
                whole + word_count(bits, also, w, r)
            }
        }
    }

    /// The entries held.
    fn entries(&self) -> &[u32] {
        match self {
            Counts::Words(v) | Counts::Points(v) => v,
        }
    }
}

/// The set bits (in `also` too, when given) of the first `len` points of
/// word `w` of a row's bitmap.
#[inline(always)]
fn word_count(bits: &[u8], also: Option<&[u8]>, w: usize, len: usize) -> u32 {
    let word = BitSlice::new(bits, 64 * w);
    (match also {
        Some(a) => word.count_and(&BitSlice::new(a, 64 * w), len),
        None => word.count_ones(len),
    }) as u32
}

impl SumIndex {
    /// The checkpoints of `row` (a whole row, as parsed).
    pub(super) fn build(row: &EncodedRow<'_>) -> SumIndex {
        let frames = row.points.div_ceil(FRAME);
        let mut at = vec![0u64; frames * PER_FRAME];
        let mut heads = Vec::with_capacity(frames);
        for (f, entries) in at.chunks_exact_mut(PER_FRAME).enumerate() {
            let frame = row.frame(f);
            heads.push(Head::of(row.frames, frame));
            let Some(Frame::Decimal { packed, .. }) = frame else { continue };
            let n = frame_len(row.points, f);
            let bits = frame_bits(row, f);
            let mut running = 0u64;
            for (j, entry) in entries.iter_mut().enumerate() {
                let (lo, hi) = ((j * STRIDE).min(n), ((j + 1) * STRIDE).min(n));
                running = running.wrapping_add(valid_sum(&packed, lo, hi, bits, None));
                *entry = running;
            }
        }
        let valid = row.valid.map(|v| Counts::build(row.points, v, None)).unwrap_or_default();
        let anomalous = row.anomaly.map(|a| Counts::build(row.points, a, row.valid)).unwrap_or_default();
        SumIndex { at: at.into_boxed_slice(), heads: heads.into_boxed_slice(), valid, anomalous }
    }

    /// Bytes this index holds.
    pub fn bytes(&self) -> usize {
        self.at.len() * std::mem::size_of::<u64>()
            + self.heads.len() * std::mem::size_of::<Head>()
            + (self.valid.entries().len() + self.anomalous.entries().len()) * 4
    }

    /// A hint: asks for the memory a scan of sums reads first (the frame
    /// headers, the checkpoints, the counts), a metric before its scan.
    pub fn prefetch(&self) {
        prefetch::slice(&self.heads);
        prefetch::slice(&self.at);
        prefetch::slice(self.valid.entries());
        prefetch::slice(self.anomalous.entries());
    }

    /// Frame `f`'s checkpoints (empty past the row's frames).
    #[inline]
    fn frame(&self, f: usize) -> &[u64] {
        self.at.get(f * PER_FRAME..(f + 1) * PER_FRAME).unwrap_or_default()
    }
}

/// The points [`prefix_in`] unpacks for local point `p` of a frame
/// of `n`: from `p` up to the next checkpoint, or from the previous one
/// up to `p`, whichever is shorter (`None` at a checkpoint).
#[inline]
fn unpacked(p: usize, n: usize) -> Option<(usize, usize)> {
    let (j, r) = (p / STRIDE, p % STRIDE);
    let next = ((j + 1) * STRIDE).min(n);
    match r {
        0 => None,
        _ if next - p < r => Some((p, next)),
        _ => Some((j * STRIDE, p)),
    }
}

/// Frames of a row a pass over ranges keeps parsed (an hour at one
/// second is 4); ranges reaching past them parse the rest as they go.
const KEPT_FRAMES: usize = 8;

impl<'a> EncodedRow<'a> {
    /// [`EncodedRow::summarize_sums_of`] through the row's index: `each`
    /// gets every range's sum, count and anomalous count (min and max NaN),
    /// bit for bit what the direct path gives.
    ///
    /// Memory first: the index (checkpoints and frame headers), then the few packed
    /// bytes at every range end are asked for before any is read. The ends
    /// lie a bucket apart, a stride the hardware prefetcher does not
    /// follow; asked for all at once, their cache misses overlap instead of
    /// coming one after another.
    ///
    /// Compiled for x86-64-v3 where the CPU is one ([`V3`]): per range,
    /// about 5 % fewer instructions from `popcnt` and `shrx` alone, and
    /// the points at a range end summed eight lanes at a time.
    pub(super) fn sums_through(&self, index: &SumIndex, ranges: &[(usize, usize)], each: impl FnMut(AggPoint)) {
        match V3::detect() {
            Some(v3) => v3.run(|| self.sums_with(index, ranges, Some(v3), each)),
            None => self.sums_with(index, ranges, None, each),
        }
    }

    /// [`EncodedRow::sums_through`], with `v3` where the CPU has it.
    #[inline(always)]
    fn sums_with(&self, index: &SumIndex, ranges: &[(usize, usize)], v3: Option<V3>, mut each: impl FnMut(AggPoint)) {
        let (Some(&(lo, _)), Some(&(_, hi))) = (ranges.first(), ranges.last()) else { return };
        let first = (self.start + lo.min(self.len)) / FRAME;
        let last = (self.start + hi.min(self.len)).div_ceil(FRAME).max(first);
        prefetch::slice(index.heads.get(first..last).unwrap_or_default());
        prefetch::slice(index.at.get(first * PER_FRAME..last * PER_FRAME).unwrap_or_default());
        let frame_at = |f: usize| index.heads.get(f).and_then(|h| h.frame(self.frames));
        let mut kept: [Option<Frame<'a>>; KEPT_FRAMES] = [None; KEPT_FRAMES];
        for (k, slot) in kept.iter_mut().enumerate().take(last - first) {
            *slot = frame_at(first + k);
        }
        let frame = |f: usize| match f.checked_sub(first).filter(|&k| k < KEPT_FRAMES) {
            Some(k) => kept[k],
            None => frame_at(f),
        };
        let ends = std::iter::once(lo).chain(ranges.iter().map(|r| r.1));
        for p in ends.map(|p| self.start + p.min(self.len)) {
            // An end on a frame boundary is the previous frame's last checkpoint.
            let (f, q) = (p / FRAME, p % FRAME);
            let Some((a, b)) = unpacked(q, frame_len(self.points, f)) else { continue };
            if let Some(Frame::Decimal { packed, .. }) =
                f.checked_sub(first).filter(|&k| k < KEPT_FRAMES).and_then(|k| kept[k])
            {
                let w = packed.width as usize;
                prefetch::slice(packed.bytes.get(a * w / 8..(b * w).div_ceil(8) + 8).unwrap_or_default());
            }
        }
        // Valid and valid anomalous points before row point `p`.
        let valid_before = |p: usize| self.valid.map_or(p as u32, |v| index.valid.at(p, v, None));
        let anomalous_before = |p: usize| self.anomaly.map_or(0, |an| index.anomalous.at(p, an, self.valid));
        // The frame-local prefix at the end of the last piece, which is
        // where the next range usually starts: `(frame, point, prefix)`;
        // and the counts before the last range's end: `(point, valid, anomalous)`.
        let mut carry = (usize::MAX, 0, 0u64);
        let mut counted = (usize::MAX, 0u32, 0u32);
        for &(lo, hi) in ranges {
            let to = hi.min(self.len);
            let (from, end) = (self.start + lo.min(to), self.start + to);
            let mut acc = AggPoint { sum: 0.0, min: f64::NAN, max: f64::NAN, count: 0, anomaly_count: 0 };
            let (mut valid_at, anomalous_from) = match counted {
                (p, v, an) if p == from => (v, an),
                _ => (valid_before(from), anomalous_before(from)),
            };
            let mut p = from;
            while p < end {
                let f = p / FRAME;
                let (a, b) = (p - f * FRAME, (end - f * FRAME).min(FRAME));
                let bits = frame_bits(self, f);
                let valid_end = valid_before(f * FRAME + b);
                match frame(f) {
                    Some(Frame::Decimal { exp, base, packed, neg }) => {
                        let (n_f, at) = (frame_len(self.points, f), index.frame(f));
                        let at_a = if (carry.0, carry.1) == (f, a) {
                            carry.2
                        } else {
                            prefix_in(at, &packed, n_f, a, bits, v3)
                        };
                        let at_b = prefix_in(at, &packed, n_f, b, bits, v3);
                        carry = (f, b, at_b);
                        let n = valid_end.saturating_sub(valid_at);
                        if n > 0 {
                            acc.sum += signed(scaled_total(base, n, at_b.wrapping_sub(at_a), exp), neg);
                            acc.count += n;
                        }
                    }
                    Some(fr) => {
                        let part = frame_part::<false>(fr, a, b, bits.map(|v| v.advance(a)));
                        if part.count > 0 {
                            acc.sum += part.sum;
                            acc.count += part.count;
                        }
                    }
                    None => {}
                }
                (p, valid_at) = (f * FRAME + b, valid_end);
            }
            let anomalous_end = anomalous_before(end);
            acc.anomaly_count = anomalous_end.saturating_sub(anomalous_from);
            counted = (end, valid_at, anomalous_end);
            each(acc);
        }
    }
}

/// A frame's prefix at local point `q` (`0..=n`, `n` its length) from its
/// checkpoints `at`, unpacking the points between `q` and the nearer one.
#[inline(always)]
fn prefix_in(at: &[u64], packed: &Packed<'_>, n: usize, q: usize, bits: Option<BitSlice<'_>>, v3: Option<V3>) -> u64 {
    let j = q / STRIDE;
    let entry = |j: usize| at.get(j).copied().unwrap_or(0);
    let below = if j == 0 { 0 } else { entry(j - 1) };
    match unpacked(q, n) {
        None => below,
        Some((a, b)) if a == q => entry(j).wrapping_sub(valid_sum(packed, a, b, bits, v3)),
        Some((a, b)) => below.wrapping_add(valid_sum(packed, a, b, bits, v3)),
    }
}

/// Points in frame `f` of a row of `points`.
#[inline]
fn frame_len(points: usize, f: usize) -> usize {
    FRAME.min(points - f * FRAME)
}

/// Validity bits of frame `f` from its first point (`None`: all valid).
#[inline]
fn frame_bits<'a>(row: &EncodedRow<'a>, f: usize) -> Option<BitSlice<'a>> {
    row.valid.map(|v| BitSlice::new(v, f * FRAME))
}

/// The sum of the packed offsets of the valid points `a..b` of a frame
/// (`bits` from the frame's first point): at most a stride of points,
/// so a short sum ([`Packed::short_sum`], or [`V3::short_sum`] with `v3`)
/// where they are all valid.
#[inline(always)]
fn valid_sum(packed: &Packed<'_>, a: usize, b: usize, bits: Option<BitSlice<'_>>, v3: Option<V3>) -> u64 {
    match bits {
        Some(v) if !v.advance(a).all_set(b - a) => {
            let mut s = 0u64;
            packed.for_each(a, b, |i, u| {
                if v.get(i) {
                    s = s.wrapping_add(u);
                }
            });
            s
        }
        _ => v3.and_then(|v3| v3.short_sum(packed.bytes, packed.width, a, b)).unwrap_or_else(|| packed.short_sum(a, b)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode, EncodedRow};
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// Values that are short decimals (one exponent per frame, so decimal
    /// frames; with `negated`, all negative with some `-0.0`, so negated
    /// frames) or, with `raw`, some that are not.
    fn row_strategy() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
        let flags = (prop::bool::weighted(0.2), prop::bool::weighted(0.3), prop::bool::weighted(0.2));
        (1usize..3000, any::<u64>(), 0u32..4, flags).prop_map(|(n, seed, exp, (raw, gaps, negated))| {
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let scale = 10f64.powi(exp as i32);
            let values = (0..n)
                .map(|_| {
                    let k = (next() % 2_000_001) as i64 - 1_000_000;
                    if raw && next() % 50 == 0 {
                        (next() % 1000) as f64 / 3.0
                    } else if negated {
                        // A negated dimension: its frames are stored negated.
                        -((k.abs() % 1000) as f64 / scale)
                    } else {
                        k as f64 / scale
                    }
                })
                .collect();
            let valid = (0..n).map(|_| !gaps || next() % 7 != 0).collect();
            (values, valid)
        })
    }

    proptest! {
        /// Sums through the index are bit for bit the direct sums, for
        /// single ranges and for sorted runs of ranges (which carry one
        /// range's end prefix into the next).
        #[test]
        fn indexed_sums_equal_direct_sums(
            (values, valid) in row_strategy(),
            cuts in prop::collection::vec(any::<u16>(), 1..40),
            // Dense anomalies are counted by words, sparse ones by points.
            every in prop::sample::select(vec![11usize, 97, 700]),
        ) {
            let blob = encode(&values, |i| valid[i], |i| i % every == 0);
            let cell = OnceLock::new();
            let plain = EncodedRow::parse(&blob).expect("row parses");
            let indexed = plain.with_sums_index(&cell);
            let n = values.len();
            let mut ends: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (n + 1)).collect();
            ends.sort_unstable();
            let ranges: Vec<(usize, usize)> = ends.windows(2).map(|w| (w[0], w[1])).collect();
            for &(lo, hi) in &ranges {
                let (want, got) = (plain.slice(lo, hi).summarize_sums(), indexed.slice(lo, hi).summarize_sums());
                prop_assert_eq!(want.sum.to_bits(), got.sum.to_bits(), "range {}..{}", lo, hi);
                prop_assert_eq!((want.count, want.anomaly_count), (got.count, got.anomaly_count));
            }
            let (mut want, mut got) = (Vec::new(), Vec::new());
            plain.summarize_sums_of(&ranges, &mut want);
            indexed.summarize_sums_of(&ranges, &mut got);
            prop_assert_eq!(want.len(), got.len());
            for (w, g) in want.iter().zip(&got) {
                prop_assert_eq!((w.sum.to_bits(), w.count, w.anomaly_count), (g.sum.to_bits(), g.count, g.anomaly_count));
            }
            prop_assert_eq!(cell.get().is_some(), !ranges.is_empty(), "a scan of sums builds the index");
            // The kept headers give back the frames the row's own bytes give.
            if let Some(index) = cell.get() {
                for f in 0..n.div_ceil(FRAME) {
                    let kept = index.heads[f].frame(plain.frames);
                    prop_assert_eq!(format!("{kept:?}"), format!("{:?}", plain.frame(f)), "frame {}", f);
                }
            }
            // The baseline build (no x86-64-v3) sums the same, bit for bit.
            if let Some(index) = cell.get() {
                let mut baseline = Vec::new();
                indexed.sums_with(index, &ranges, None, |p| baseline.push(p));
                for (w, g) in want.iter().zip(&baseline) {
                    prop_assert_eq!((w.sum.to_bits(), w.count, w.anomaly_count), (g.sum.to_bits(), g.count, g.anomaly_count));
                }
                prop_assert_eq!(baseline.len(), want.len());
            }
        }
    }

    #[test]
    fn checkpoints_hold_running_sums_of_valid_points() {
        // 0.01 .. 20.00 with every third point a gap: offsets from the
        // minimum (base 1), so valid point i holds i + 1 - 1 = i.
        let n: usize = 2000;
        let values: Vec<f64> = (0..n).map(|i| (i + 1) as f64 / 100.0).collect();
        let valid = |i: usize| !i.is_multiple_of(3);
        let blob = encode(&values, valid, |_| false);
        let row = EncodedRow::parse(&blob).expect("row parses");
        let index = SumIndex::build(&row);
        assert_eq!(
            index.bytes(),
            2 * PER_FRAME * 8 + 2 * std::mem::size_of::<Head>() + 33 * 4,
            "two frames' checkpoints and headers, 32 words' counts"
        );
        for w in 0..=n.div_ceil(64) {
            let want = (0..(64 * w).min(n)).filter(|&i| valid(i)).count() as u32;
            let Counts::Words(before) = &index.valid else { panic!("a gap in three is counted by words") };
            assert_eq!(before[w], want, "valid points before word {w}");
        }
        assert!(index.anomalous.entries().is_empty(), "no anomaly bits, no counts");
        for f in 0..2 {
            let Some(Frame::Decimal { base, .. }) = row.frame(f) else { panic!("decimal frame") };
            let len = frame_len(n, f);
            for j in 0..PER_FRAME {
                let end = ((j + 1) * STRIDE).min(len);
                let want: u64 =
                    (0..end).map(|p| f * FRAME + p).filter(|&i| valid(i)).map(|i| (i as i64 + 1 - base) as u64).sum();
                assert_eq!(index.at[f * PER_FRAME + j], want, "frame {f} checkpoint {j}");
            }
        }
    }

    proptest! {
        /// Both forms of [`Counts`] count the set bits (of both bitmaps,
        /// with `also`) before every point, and the sparse form is taken
        /// exactly when it is no longer than the counts by word.
        #[test]
        fn counts_by_word_and_by_point_agree(
            points in 1usize..700,
            seed in any::<u64>(),
            every in 1u64..200,
            with_also in any::<bool>(),
        ) {
            let mut x = seed | 1;
            let mut bit = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % every == 0
            };
            let mut bits = vec![0u8; points.div_ceil(8) + 1];
            let mut also = vec![0u8; points.div_ceil(8) + 1];
            for i in 0..points {
                crate::storage::bits::set_bit(&mut bits, i, bit());
                crate::storage::bits::set_bit(&mut also, i, !bit());
            }
            let also = with_also.then_some(&also[..]);
            let set = |i: usize| BitSlice::new(&bits, 0).get(i) && also.is_none_or(|a| BitSlice::new(a, 0).get(i));
            let counts = Counts::build(points, &bits, also);
            let total = (0..points).filter(|&i| set(i)).count();
            prop_assert_eq!(matches!(counts, Counts::Points(_)), total <= points.div_ceil(64));
            let mut want = 0u32;
            for p in 0..=points {
                prop_assert_eq!(counts.at(p, &bits, also), want, "before point {}", p);
                want += u32::from(p < points && set(p));
            }
        }
    }

    #[test]
    fn raw_frames_are_read_directly() {
        let values: Vec<f64> = (0..1500).map(|i| f64::from(i) / 3.0).collect();
        let blob = encode(&values, |_| true, |_| false);
        let cell = OnceLock::new();
        let row = EncodedRow::parse(&blob).expect("row parses").with_sums_index(&cell);
        assert!(matches!(row.frame(0), Some(Frame::Raw(_))));
        let plain = EncodedRow::parse(&blob).expect("row parses").slice(100, 1400).summarize_sums();
        let got = row.slice(100, 1400).summarize_sums();
        assert_eq!((got.sum.to_bits(), got.count), (plain.sum.to_bits(), 1300));
        let direct: f64 = values[100..1400].iter().sum();
        assert!((got.sum - direct).abs() <= 1e-9 * direct.abs(), "{} vs {direct}", got.sum);
    }
}
