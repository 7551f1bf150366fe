//! The sealed tier-0 codec: one metric's row of a span (its values,
//! validity and anomaly bits) as one byte string, lossless, read in place
//! from the memory-mapped segment and at random (any range of points
//! decodes without the rest of the row).
//!
//! Layout (little-endian):
//! ```text
//! version u8 (1; 2 when a frame is of kind 2)
//! flags u8 (1: validity bits follow, else all valid;
//!           2: anomaly bits follow, else none)
//! points u32 | frames u16
//! [validity: ceil(points/8) bytes] [anomaly: ceil(points/8) bytes]
//! frame offsets: u32 per frame, from the start of the frames
//! frames, FRAME points each (the last may be shorter):
//!   kind 0 (decimal): exponent u8, width u8, base (zigzag LEB128 i64),
//!     then the points as `k - base` packed in `width` bits (bitpack);
//!     value = k / 10^e
//!   kind 1 (raw): the points as f64
//!   kind 2 (negated decimal): as kind 0, with value = -(k / 10^e)
//! ```
//! A frame is decimal when every valid value in it is exactly a short
//! decimal (alp); gaps hold `base`. Sums, minima and maxima over a range of
//! a decimal frame are taken on the integers and scaled once; a sum alone
//! unpacks eight integers at a time where the CPU has AVX2 (`simd`).
//!
//! A frame of short decimals that holds a `-0.0` (a negated dimension at
//! rest: `0 * -1`) and no `+0.0` is stored negated: `-0.0` is `k = 0` of a
//! negated frame, and no integer of a plain one. Negation is exact, so its
//! sums, minima and maxima are the plain ones' negated (and swapped).

pub(crate) mod alp;
mod bitpack;
mod prefix;
mod simd;

pub use prefix::SumIndex;
pub(crate) use simd::V3;

use bitpack::{pack, packed_len, Packed, MAX_WIDTH};

use std::sync::OnceLock;

use super::bits::{get_bit, set_bit, BitSlice};
use super::row::AggPoint;

/// Points per frame: large enough that a frame's header and offset cost
/// under 0.1 bits a point, small enough that a random read decodes at most
/// a few KiB.
pub const FRAME: usize = 1024;

const VERSION: u8 = 1;
/// A row with a negated decimal frame: older readers refuse it whole
/// rather than skip the frame.
const VERSION_NEGATED: u8 = 2;
const HAS_VALID: u8 = 1;
const HAS_ANOMALY: u8 = 2;
const DECIMAL: u8 = 0;
const RAW: u8 = 1;
const NEGATED: u8 = 2;
/// Widest decimal offset: `k` stays within ±2^52, and a frame's sum of
/// offsets fits a `u64` (`FRAME * 2^53 <= 2^63`).
const MAX_DECIMAL_WIDTH: u32 = 53;

/// Encodes one row of `values.len()` points; `valid(i)` / `anomalous(i)`
/// give point `i`'s bits.
pub fn encode(values: &[f64], valid: impl Fn(usize) -> bool, anomalous: impl Fn(usize) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2 + 64);
    encode_into(values, valid, anomalous, &mut out);
    out
}

/// [`encode`], appending the row to `out` (a segment's rows go one after
/// another in one buffer).
pub fn encode_into(
    values: &[f64],
    valid: impl Fn(usize) -> bool,
    anomalous: impl Fn(usize) -> bool,
    out: &mut Vec<u8>,
) {
    let n = values.len();
    let row = out.len();
    let all_valid = (0..n).all(&valid);
    let any_anomaly = (0..n).any(|i| valid(i) && anomalous(i));
    let nbytes = n.div_ceil(8);
    let frames = n.div_ceil(FRAME);
    out.push(VERSION);
    out.push(if all_valid { 0 } else { HAS_VALID } | if any_anomaly { HAS_ANOMALY } else { 0 });
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(frames as u16).to_le_bytes());
    let bitmap = |bit: &dyn Fn(usize) -> bool| {
        let mut bits = vec![0u8; nbytes];
        (0..n).filter(|&i| valid(i) && bit(i)).for_each(|i| set_bit(&mut bits, i, true));
        bits
    };
    let valid_bits = (!all_valid).then(|| bitmap(&valid));
    if let Some(bits) = &valid_bits {
        out.extend_from_slice(bits);
    }
    if any_anomaly {
        out.extend_from_slice(&bitmap(&anomalous));
    }
    let dir = out.len();
    out.resize(dir + 4 * frames, 0);
    let body = out.len();
    let mut ks = Vec::with_capacity(FRAME);
    let mut negated = false;
    for f in 0..frames {
        let off = (out.len() - body) as u32;
        out[dir + 4 * f..dir + 4 * f + 4].copy_from_slice(&off.to_le_bytes());
        let (lo, hi) = (f * FRAME, ((f + 1) * FRAME).min(n));
        // A frame of gaps only (most of a snapshot's rows of series that
        // report rarely, or began late in their span) is written without
        // looking at its values: FRAME is a multiple of 8, so its bits are
        // whole bytes.
        let gaps_only = valid_bits.as_deref().is_some_and(|b| b[lo / 8..hi.div_ceil(8)].iter().all(|&x| x == 0));
        if gaps_only {
            constant_frame(0, 0, hi - lo, out);
        } else {
            negated |= encode_frame(&values[lo..hi], |i| valid(lo + i), &mut ks, out) == NEGATED;
        }
    }
    if negated {
        out[row] = VERSION_NEGATED;
    }
}

/// Appends one frame and returns its kind: decimal when one exponent
/// encodes every valid value (the smallest such) and the offsets fit
/// [`MAX_DECIMAL_WIDTH`]; negated decimal when the values' negations are
/// (tried only for a frame with a `-0.0` and no `+0.0`, the one thing
/// negation changes); else raw. `ks` is scratch: each point's integer,
/// found once and reused for the range and the packing.
fn encode_frame(values: &[f64], valid: impl Fn(usize) -> bool, ks: &mut Vec<i64>, out: &mut Vec<u8>) -> u8 {
    // One value throughout (the count columns of a rollup span where
    // nothing was written are zeros): the frame [`encode_frame_general`]
    // writes for it, found with one comparison a point instead of a
    // decimal check.
    if let Some((e, k)) = one_value(values, &valid) {
        constant_frame(e, k, values.len(), out);
        return DECIMAL;
    }
    encode_frame_general(values, valid, ks, out)
}

/// The exponent and integer of the one value every valid point of
/// `values` holds (bit for bit), when there is one and it is a short
/// decimal (`(0, 0)` when no point is valid, as the general path writes
/// gaps); `None` otherwise.
fn one_value(values: &[f64], valid: impl Fn(usize) -> bool) -> Option<(u32, i64)> {
    let Some(first) = (0..values.len()).find(|&i| valid(i)) else { return Some((0, 0)) };
    let bits = values[first].to_bits();
    if !values[first..].iter().enumerate().all(|(j, v)| v.to_bits() == bits || !valid(first + j)) {
        return None;
    }
    let e = alp::smallest_exponent(values[first])?;
    Some((e, alp::encode(values[first], e)?))
}

/// [`encode_frame`] for any frame.
fn encode_frame_general(values: &[f64], valid: impl Fn(usize) -> bool, ks: &mut Vec<i64>, out: &mut Vec<u8>) -> u8 {
    let decimal = |values: &[f64], ks: &mut Vec<i64>| {
        (0..=alp::MAX_EXP).find_map(|e| alp::encode_all(values, &valid, e, ks).map(|r| (e, r))).and_then(
            |(e, (min, max))| {
                let width = 64 - (max.abs_diff(min)).leading_zeros();
                (width <= MAX_DECIMAL_WIDTH.min(MAX_WIDTH)).then_some((e, min, width))
            },
        )
    };
    let zero = |negative: bool| {
        values.iter().enumerate().any(|(i, v)| *v == 0.0 && v.is_sign_negative() == negative && valid(i))
    };
    let mut kind = DECIMAL;
    let mut found = decimal(values, ks);
    if found.is_none() && zero(true) && !zero(false) {
        let negations: Vec<f64> = values.iter().map(|v| -v).collect();
        found = decimal(&negations, ks);
        kind = NEGATED;
    }
    match found {
        Some((e, base, width)) => {
            out.push(kind);
            out.push(e as u8);
            out.push(width as u8);
            put_varint(out, base);
            // Gaps hold `base` (offset 0); alp::encode_all stored them as base too.
            pack(ks.iter().map(|&k| k.abs_diff(base)), values.len(), width, out);
            kind
        }
        None => {
            out.push(RAW);
            for (i, &v) in values.iter().enumerate() {
                out.extend_from_slice(&(if valid(i) { v } else { 0.0 }).to_le_bytes());
            }
            RAW
        }
    }
}

/// Appends a decimal frame of `len` points that all read `k / 10^e`
/// (width 0: no bytes a point). Gaps hold the base, so a frame of gaps
/// only is `constant_frame(0, 0, ..)`.
fn constant_frame(e: u32, k: i64, len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&[DECIMAL, e as u8, 0]);
    put_varint(out, k);
    pack(std::iter::empty(), len, 0, out);
}

/// The last frame an [`EncodedRow`] looked up, by number (`None` inside:
/// it did not parse).
type FrameCache<'a> = Option<(usize, Option<Frame<'a>>)>;

/// One frame, ready to read.
#[derive(Debug, Clone, Copy)]
enum Frame<'a> {
    /// Values `k / 10^exp`, or `-(k / 10^exp)` when `neg`, with `k` =
    /// `base` + the packed offset.
    Decimal {
        exp: u32,
        base: i64,
        packed: Packed<'a>,
        neg: bool,
    },
    Raw(&'a [u8]),
}

impl Frame<'_> {
    #[inline]
    fn value(&self, i: usize) -> f64 {
        match self {
            Frame::Decimal { exp, base, packed, neg } => {
                signed(alp::decode(base.wrapping_add(packed.get(i) as i64), *exp), *neg)
            }
            Frame::Raw(b) => raw_at(b, i),
        }
    }
}

/// Sum, minimum and maximum of the packed values `a..b` (all valid):
/// whole groups eight at a time ([`simd`]) where the CPU can.
#[inline]
fn sum_min_max(packed: &Packed<'_>, a: usize, b: usize) -> (u64, u64, u64) {
    let (first, last) = (a.div_ceil(bitpack::GROUP), b / bitpack::GROUP);
    match simd::group_totals::<true>(packed.bytes, packed.width, first, last) {
        Some((t, end)) => {
            let (mut s, mut l, mut h) = lanes_sum_min_max(packed, end * bitpack::GROUP, b);
            for u in (a..first * bitpack::GROUP).map(|i| packed.get(i)) {
                (s, l, h) = (s.wrapping_add(u), l.min(u), h.max(u));
            }
            // Totals of no group are (0, u64::MAX, 0): neutral here.
            (s.wrapping_add(t.sum), l.min(t.min), h.max(t.max))
        }
        None => lanes_sum_min_max(packed, a, b),
    }
}

/// [`sum_min_max`] without AVX2, and for the values it leaves. Each
/// group of eight reduces as a tree (independent operations) before it
/// joins the running totals, so the loop is bound by unpacking, not by one
/// long chain of dependent adds and compares.
#[inline]
fn lanes_sum_min_max(packed: &Packed<'_>, a: usize, b: usize) -> (u64, u64, u64) {
    let mut acc = (0u64, u64::MAX, 0u64);
    packed.for_each_group(
        a,
        b,
        &mut acc,
        |(s, l, h), _, u| {
            *s = s.wrapping_add(u);
            *l = (*l).min(u);
            *h = (*h).max(u);
        },
        |(s, l, h), _, g| {
            let pair = |k: usize| (g[k].wrapping_add(g[k + 1]), g[k].min(g[k + 1]), g[k].max(g[k + 1]));
            let (p0, p1, p2, p3) = (pair(0), pair(2), pair(4), pair(6));
            let sum = p0.0.wrapping_add(p1.0).wrapping_add(p2.0.wrapping_add(p3.0));
            *s = s.wrapping_add(sum);
            *l = (*l).min(p0.1.min(p1.1).min(p2.1.min(p3.1)));
            *h = (*h).max(p0.2.max(p1.2).max(p2.2.max(p3.2)));
        },
    );
    acc
}

/// The sum of the packed values `a..b`: whole groups eight at a time
/// ([`simd`]) where the CPU can, the rest in independent lanes.
#[inline]
fn packed_sum(packed: &Packed<'_>, a: usize, b: usize) -> u64 {
    let (first, last) = (a.div_ceil(bitpack::GROUP), b / bitpack::GROUP);
    match simd::group_totals::<false>(packed.bytes, packed.width, first, last) {
        Some((t, end)) => {
            let head = (a..first * bitpack::GROUP).fold(0u64, |s, i| s.wrapping_add(packed.get(i)));
            t.sum.wrapping_add(head).wrapping_add(lanes_sum(packed, end * bitpack::GROUP, b))
        }
        None => lanes_sum(packed, a, b),
    }
}

/// The sum of the packed values `a..b`, in independent lanes.
#[inline]
fn lanes_sum(packed: &Packed<'_>, a: usize, b: usize) -> u64 {
    let mut lanes = [0u64; bitpack::GROUP];
    packed.for_each_group(
        a,
        b,
        &mut lanes,
        |l, _, u| l[0] = l[0].wrapping_add(u),
        |l, _, g| l.iter_mut().zip(g).for_each(|(x, &u)| *x = x.wrapping_add(u)),
    );
    lanes.iter().fold(0u64, |s, &x| s.wrapping_add(x))
}

/// `x`, negated for a negated frame (exact, `-0.0` included).
#[inline]
fn signed(x: f64, neg: bool) -> f64 {
    if neg {
        -x
    } else {
        x
    }
}

/// `(base * n + sum) / 10^exp`: the sum of `n` decimal values stored as
/// `base + u` with `sum` the total of the `u`s. In `i64` where it fits
/// (always, for real data), else in `i128`; both round the exact total once.
#[inline]
fn scaled_total(base: i64, n: u32, sum: u64, exp: u32) -> f64 {
    let exact = base.checked_mul(i64::from(n)).and_then(|b| i64::try_from(sum).ok().and_then(|s| b.checked_add(s)));
    let total = match exact {
        Some(t) => t as f64,
        None => (i128::from(base) * i128::from(n) + i128::from(sum)) as f64,
    };
    total / alp::pow10(exp)
}

/// The valid points `a..b` of frame `fr` as a [`Part`] (`bits`: their
/// validity from `a` on; `None`: all valid). Without `MIN_MAX` a decimal
/// frame's integers are only added, and the part's min and max are left
/// infinite.
#[inline]
fn frame_part<const MIN_MAX: bool>(fr: Frame<'_>, a: usize, b: usize, bits: Option<BitSlice<'_>>) -> Part {
    let dense = bits.is_none_or(|v| v.all_set(b - a));
    let ok = |i: usize| dense || bits.is_some_and(|v| v.get(i - a));
    match fr {
        Frame::Decimal { exp, base, packed, neg } => {
            let (mut sum, mut lo, mut hi, mut n) = (0u64, u64::MAX, 0u64, 0u32);
            if dense {
                // Independent lanes over whole groups vectorise.
                if MIN_MAX {
                    (sum, lo, hi) = sum_min_max(&packed, a, b);
                } else {
                    sum = packed_sum(&packed, a, b);
                }
                n = (b - a) as u32;
            } else {
                packed.for_each(a, b, |i, u| {
                    if ok(i) {
                        sum = sum.wrapping_add(u);
                        lo = lo.min(u);
                        hi = hi.max(u);
                        n += 1;
                    }
                });
            }
            if n == 0 {
                return Part::EMPTY;
            }
            let sum = signed(scaled_total(base, n, sum, exp), neg);
            if !MIN_MAX {
                // No decode (a division each) for extremes nobody reads.
                return Part { sum, count: n, ..Part::EMPTY };
            }
            let (lo, hi) =
                (alp::decode(base.wrapping_add(lo as i64), exp), alp::decode(base.wrapping_add(hi as i64), exp));
            let (min, max) = if neg { (-hi, -lo) } else { (lo, hi) };
            Part { sum, min, max, count: n }
        }
        Frame::Raw(bytes) => {
            if dense {
                raw_aggregate(&bytes[8 * a..8 * b])
            } else {
                let mut part = Part::EMPTY;
                (a..b).filter(|&i| ok(i)).for_each(|i| part.add(raw_at(bytes, i)));
                part
            }
        }
    }
}

/// One frame's share of an aggregate.
#[derive(Debug, Clone, Copy)]
struct Part {
    sum: f64,
    min: f64,
    max: f64,
    count: u32,
}

impl Part {
    const EMPTY: Part = Part { sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, count: 0 };

    #[inline]
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.count += 1;
    }

    #[inline]
    fn merge(&mut self, other: &Part) {
        if other.count > 0 {
            self.sum += other.sum;
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
            self.count += other.count;
        }
    }

    #[inline]
    fn merge_into(&self, acc: &mut AggPoint) {
        if self.count > 0 {
            acc.sum += self.sum;
            acc.min = acc.min.min(self.min);
            acc.max = acc.max.max(self.max);
            acc.count += self.count;
        }
    }
}

/// The aggregate of raw little-endian `f64`s, all valid, in four
/// independent lanes (one lane is a chain of dependent adds).
#[inline]
fn raw_aggregate(bytes: &[u8]) -> Part {
    let value = |c: &[u8]| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let mut lanes = [Part::EMPTY; 4];
    let mut quads = bytes.chunks_exact(32);
    for q in &mut quads {
        for (lane, c) in lanes.iter_mut().zip(q.chunks_exact(8)) {
            lane.add(value(c));
        }
    }
    let mut part = Part::EMPTY;
    quads.remainder().chunks_exact(8).for_each(|c| part.add(value(c)));
    lanes.iter().for_each(|lane| part.merge(lane));
    part
}

/// Appends `v` zigzag-encoded as LEB128 (small magnitudes, few bytes).
fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads what [`put_varint`] wrote: the value and the bytes it took.
fn get_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut z = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        z |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(((z >> 1) as i64 ^ -((z & 1) as i64), i + 1));
        }
    }
    None
}

#[inline]
fn raw_at(bytes: &[u8], i: usize) -> f64 {
    match bytes.get(i * 8..i * 8 + 8) {
        Some(b) => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        None => 0.0,
    }
}

/// An encoded row, or a range of its points (`start..start + len`), read
/// in place. A malformed row reads as empty.
#[derive(Debug, Clone, Copy)]
pub struct EncodedRow<'a> {
    valid: Option<&'a [u8]>,
    anomaly: Option<&'a [u8]>,
    offsets: &'a [u8],
    frames: &'a [u8],
    points: usize,
    start: usize,
    len: usize,
    /// Frame bytes per point, in 1/65536 (where a point lies, for prefetches).
    bytes_per_point_q16: u32,
    /// Where the row's [`SumIndex`] is kept (built at its first scan of
    /// sums); `None`: sums are read point by point.
    index: Option<&'a OnceLock<SumIndex>>,
}

impl<'a> EncodedRow<'a> {
    /// Parses a row's header; `None` if it is not one.
    pub fn parse(blob: &'a [u8]) -> Option<EncodedRow<'a>> {
        let (&version, &flags) = (blob.first()?, blob.get(1)?);
        if version != VERSION && version != VERSION_NEGATED {
            return None;
        }
        let points = u32::from_le_bytes(blob.get(2..6)?.try_into().ok()?) as usize;
        let frames = usize::from(u16::from_le_bytes(blob.get(6..8)?.try_into().ok()?));
        if frames != points.div_ceil(FRAME) {
            return None;
        }
        let nbytes = points.div_ceil(8);
        let mut at = 8;
        let mut take = |present: bool, len: usize| -> Option<Option<&'a [u8]>> {
            if !present {
                return Some(None);
            }
            let s = blob.get(at..at + len)?;
            at += len;
            Some(Some(s))
        };
        let valid = take(flags & HAS_VALID != 0, nbytes)?;
        let anomaly = take(flags & HAS_ANOMALY != 0, nbytes)?;
        let offsets = take(true, 4 * frames)??;
        let frames_bytes = blob.get(at..)?;
        let bytes_per_point_q16 = ((frames_bytes.len() as u64) << 16) / points.max(1) as u64;
        Some(EncodedRow {
            valid,
            anomaly,
            offsets,
            frames: frames_bytes,
            points,
            start: 0,
            len: points,
            bytes_per_point_q16: bytes_per_point_q16.min(u64::from(u32::MAX)) as u32,
            index: None,
        })
    }

    /// This row with its [`SumIndex`] kept in `cell` (which must be this
    /// row's alone: the index is built from the first row it serves).
    pub fn with_sums_index(self, cell: &'a OnceLock<SumIndex>) -> EncodedRow<'a> {
        EncodedRow { index: Some(cell), ..self }
    }

    /// The row's index, built now if this is its first use.
    fn sums_index(&self) -> Option<&'a SumIndex> {
        let whole = EncodedRow { start: 0, len: self.points, ..*self };
        self.index.map(|cell| cell.get_or_init(|| SumIndex::build(&whole)))
    }

    /// Points in this range.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Points `from..to` of this range.
    pub fn slice(&self, from: usize, to: usize) -> EncodedRow<'a> {
        let to = to.min(self.len);
        EncodedRow { start: self.start + from.min(to), len: to - from.min(to), ..*self }
    }

    /// Validity bits of this range (`None`: all valid).
    pub fn valid_bits(&self) -> Option<BitSlice<'a>> {
        self.valid.map(|v| BitSlice::new(v, self.start))
    }

    /// Anomaly bits of this range (`None`: none anomalous).
    pub fn anomaly_bits(&self) -> Option<BitSlice<'a>> {
        self.anomaly.map(|a| BitSlice::new(a, self.start))
    }

    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.valid.is_none_or(|v| get_bit(v, self.start + i))
    }

    #[inline]
    pub fn is_anomalous(&self, i: usize) -> bool {
        self.anomaly.is_some_and(|a| get_bit(a, self.start + i))
    }

    /// Where frame `f` starts in the frame bytes, as its directory says.
    #[inline]
    fn frame_offset(&self, f: usize) -> Option<usize> {
        Some(u32::from_le_bytes(self.offsets.get(4 * f..4 * f + 4)?.try_into().ok()?) as usize)
    }

    fn frame(&self, f: usize) -> Option<Frame<'a>> {
        let off = self.frame_offset(f)?;
        let bytes = self.frames.get(off..)?;
        let n = FRAME.min(self.points - f * FRAME);
        match *bytes.first()? {
            kind @ (DECIMAL | NEGATED) => {
                let (exp, width) = (u32::from(*bytes.get(1)?), u32::from(*bytes.get(2)?));
                if exp > alp::MAX_EXP || width > MAX_DECIMAL_WIDTH {
                    return None;
                }
                let (base, used) = get_varint(bytes.get(3..)?)?;
                let at = 3 + used;
                let packed = bytes.get(at..at + packed_len(n, width))?;
                Some(Frame::Decimal { exp, base, packed: Packed { bytes: packed, width }, neg: kind == NEGATED })
            }
            RAW => Some(Frame::Raw(bytes.get(1..1 + 8 * n)?)),
            _ => None,
        }
    }

    /// The value of point `i` of this range (0 for a gap).
    pub fn value(&self, i: usize) -> f64 {
        let p = self.start + i;
        self.frame(p / FRAME).map_or(0.0, |fr| fr.value(p % FRAME))
    }

    /// Calls `f` with each frame-local piece of this range:
    /// `(frame, first point in frame, end in frame, index in this range of the first)`.
    fn pieces(&self, f: impl FnMut(Frame<'a>, usize, usize, usize)) {
        self.pieces_cached(&mut None, f);
    }

    /// [`EncodedRow::pieces`], with the last frame looked up (its
    /// directory entry and header read) kept in `cache` for the next call
    /// on a later range of the same row.
    fn pieces_cached(&self, cache: &mut FrameCache<'a>, mut f: impl FnMut(Frame<'a>, usize, usize, usize)) {
        let (mut p, end) = (self.start, self.start + self.len);
        while p < end {
            let fi = p / FRAME;
            let (a, b) = (p - fi * FRAME, (end - fi * FRAME).min(FRAME));
            let fr = match *cache {
                Some((f, fr)) if f == fi => fr,
                _ => {
                    let fr = self.frame(fi);
                    *cache = Some((fi, fr));
                    fr
                }
            };
            if let Some(fr) = fr {
                f(fr, a, b, p - self.start);
            }
            p = fi * FRAME + b;
        }
    }

    /// The aggregate of the valid points of this range.
    pub fn summarize(&self) -> AggPoint {
        self.aggregate::<true>()
    }

    /// The sum, count and anomalous count of the valid points of this
    /// range; `min` and `max` are NaN. For time groups of sums and counts
    /// whose statistics come from elsewhere: a decimal frame's integers are
    /// only added (no 64-bit minimum or maximum, which AVX2 lacks), about a
    /// third less work per point.
    pub fn summarize_sums(&self) -> AggPoint {
        // A short range unpacks fewer points directly than two prefixes do.
        if let Some(index) = self.sums_index().filter(|_| self.len >= 2 * prefix::STRIDE) {
            let mut sums = None;
            self.sums_through(index, &[(0, self.len)], |p| sums = Some(p));
            if let Some(p) = sums {
                return p;
            }
        }
        AggPoint { min: f64::NAN, max: f64::NAN, ..self.aggregate::<false>() }
    }

    fn aggregate<const MIN_MAX: bool>(&self) -> AggPoint {
        self.aggregate_cached::<MIN_MAX>(&mut None)
    }

    fn aggregate_cached<const MIN_MAX: bool>(&self, cache: &mut FrameCache<'a>) -> AggPoint {
        let mut acc = AggPoint { sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, count: 0, anomaly_count: 0 };
        let valid = self.valid.map(|v| BitSlice::new(v, self.start));
        self.pieces_cached(cache, |fr, a, b, at| {
            frame_part::<MIN_MAX>(fr, a, b, valid.map(|v| v.advance(at))).merge_into(&mut acc)
        });
        acc.anomaly_count = self.anomalous();
        acc
    }

    /// [`EncodedRow::summarize_sums`] of each of `ranges` (points of this
    /// range, sorted, disjoint) into `out`, in one pass: each frame's
    /// directory entry and header are read once for all the ranges in it,
    /// not once per range (a bucket of a few hundred points is a
    /// fraction of a frame).
    pub fn summarize_sums_of(&self, ranges: &[(usize, usize)], out: &mut Vec<AggPoint>) {
        if ranges.is_empty() {
            return;
        }
        if let Some(index) = self.sums_index() {
            return self.sums_through(index, ranges, |p| out.push(p));
        }
        let mut cache = None;
        for &(lo, hi) in ranges {
            let p = self.slice(lo, hi).aggregate_cached::<false>(&mut cache);
            out.push(AggPoint { min: f64::NAN, max: f64::NAN, ..p });
        }
    }

    /// The aggregate of the absolute values `|x|` of the valid points of
    /// this range (for the v2/v3 rule that groups absolute values), taken
    /// on the packed integers `|k|` where a frame is decimal: no value is
    /// decoded (a division each).
    pub fn summarize_abs(&self) -> AggPoint {
        let mut acc = AggPoint { sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, count: 0, anomaly_count: 0 };
        let valid = self.valid.map(|v| BitSlice::new(v, self.start));
        self.pieces(|fr, a, b, at| {
            let bits = valid.map(|v| v.advance(at));
            let ok = |i: usize| bits.is_none_or(|v| v.get(i - a));
            let part = match fr {
                // |v| = |k| / 10^e, negated frame or not.
                Frame::Decimal { exp, base, packed, .. } => {
                    // |k| < 2^53, so a frame's sum fits a u64.
                    let (mut sum, mut lo, mut hi, mut n) = (0u64, u64::MAX, 0u64, 0u32);
                    packed.for_each(a, b, |i, u| {
                        if ok(i) {
                            let k = base.wrapping_add(u as i64).unsigned_abs();
                            sum = sum.wrapping_add(k);
                            lo = lo.min(k);
                            hi = hi.max(k);
                            n += 1;
                        }
                    });
                    let min = alp::decode(lo as i64, exp);
                    Part { sum: sum as f64 / alp::pow10(exp), min, max: alp::decode(hi as i64, exp), count: n }
                }
                Frame::Raw(bytes) => {
                    let mut part = Part::EMPTY;
                    (a..b).filter(|&i| ok(i)).for_each(|i| part.add(raw_at(bytes, i).abs()));
                    part
                }
            };
            part.merge_into(&mut acc);
        });
        acc.anomaly_count = self.anomalous();
        acc
    }

    /// Valid anomalous points in this range.
    fn anomalous(&self) -> u32 {
        match (self.anomaly_bits(), self.valid_bits()) {
            (None, _) => 0,
            (Some(an), Some(v)) => an.count_and(&v, self.len) as u32,
            (Some(an), None) => an.count_ones(self.len) as u32,
        }
    }

    /// Appends this range's values to `out` (0 for gaps).
    pub fn decode_into(&self, out: &mut Vec<f64>) {
        out.reserve(self.len);
        self.pieces(|fr, a, b, _| match fr {
            Frame::Decimal { exp, base, packed, neg } => packed.for_each_group(
                a,
                b,
                out,
                |out, _, u| out.push(signed(alp::decode(base.wrapping_add(u as i64), exp), neg)),
                |out, _, g| out.extend(g.iter().map(|&u| signed(alp::decode(base.wrapping_add(u as i64), exp), neg))),
            ),
            Frame::Raw(bytes) => out.extend((a..b).map(|i| raw_at(bytes, i))),
        });
    }

    /// The exponent `e` of this range's values when it has no gaps and
    /// every frame it touches is decimal (not negated) with that one
    /// exponent: then its values are `k / 10^e`, and their order is their
    /// integers' order (each `k` decodes to exactly the value it encodes;
    /// a negated frame's `-0.0` is no integer's value).
    pub fn decimal_exp(&self) -> Option<u32> {
        if self.len == 0 || self.valid_bits().is_some_and(|v| !v.all_set(self.len)) {
            return None;
        }
        let mut exp = None;
        for f in self.start / FRAME..=(self.start + self.len - 1) / FRAME {
            match self.frame(f)? {
                Frame::Decimal { exp: e, neg: false, .. } if exp.is_none_or(|x| x == e) => exp = Some(e),
                _ => return None,
            }
        }
        exp
    }

    /// Appends the integers `k` of this range's values to `out`, for a
    /// range [`EncodedRow::decimal_exp`] accepts (raw frames add nothing).
    pub fn decode_decimal_into(&self, out: &mut Vec<i64>) {
        out.reserve(self.len);
        self.pieces(|fr, a, b, _| {
            if let Frame::Decimal { base, packed, .. } = fr {
                packed.for_each_group(
                    a,
                    b,
                    out,
                    |out, _, u| out.push(base.wrapping_add(u as i64)),
                    |out, _, g| out.extend(g.iter().map(|&u| base.wrapping_add(u as i64))),
                );
            }
        });
    }

    /// Calls `f` with the bytes this range most likely starts reading,
    /// for a prefetch: its first frame's header, and the stretch at the
    /// range's estimated place in the frames (frames pack their points at
    /// about the row's average bytes per point). No division and no frame
    /// parsing: it runs for every bucket edge.
    #[inline]
    pub fn read_hint(&self, mut f: impl FnMut(&'a [u8])) {
        let n = self.frames.len();
        let header = self.frame_offset(self.start / FRAME).map_or(n, |o| o.min(n));
        f(&self.frames[header..(header + HEADER_HINT).min(n)]);
        let scaled = |points: usize| ((points as u64 * u64::from(self.bytes_per_point_q16)) >> 16) as usize;
        let at = (header + HEADER_HINT).max(scaled(self.start)).min(n);
        f(&self.frames[at..(at + scaled(self.len) + HEADER_HINT).min(n)]);
    }
}

/// Bytes of a frame's header (kind, exponent, width, base), and the slack
/// a point estimate gets past the header.
const HEADER_HINT: usize = 16;

#[cfg(test)]
mod tests;
