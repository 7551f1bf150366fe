//! The open head: one span of one tier still being written. Each metric's
//! points live in blocks that hold only the slots written
//! ([`super::block`]), so a series that holds a handful of samples costs a
//! few bytes per tier, and readers share blocks copy-on-write instead of
//! waiting for the writer.
//! Sealing lays the blocks out densely for Arrow, a few rows at a time.

use std::ops::Range;
use std::sync::Arc;

use super::bits::{copy_bits, BitSlice};
use super::block::{block, block_mut, AggBlock, Block, Blocks, Columns, RawBlock, RawCols, AGG_BLOCK, RAW_BLOCK};
use super::prefetch;
use super::row::{AggPoint, RowData, Run};
use super::store::RawPoint;
use crate::id_map::{self, IdMap};
use crate::model::MetricId;

/// The rows of a span: tier 0 holds raw samples, tiers 1-2 aggregates.
/// Each row's block list is shared with readers as a whole; the writer
/// copies the list, then the block it writes, only while a reader holds
/// them.
#[derive(Debug, Clone)]
pub(crate) enum SpanRows {
    Raw(Vec<Arc<Blocks<RawBlock>>>),
    Agg(Vec<Arc<Blocks<AggBlock>>>),
}

/// A span's rows and the index to them: what a reader shares of the span,
/// whole (one `Arc` clone covers every metric, see [`SpanSnapshot`]).
#[derive(Debug, Clone)]
pub(crate) struct SpanData {
    ids: Vec<MetricId>,
    index: IdMap<u32>,
    rows: SpanRows,
}

/// An open span. Writers change its rows in place while no reader holds
/// them, and copy-on-write otherwise: first the span's row list (one
/// `Arc` clone per row, at the first write while a snapshot is held),
/// then the row's block list and the block written.
#[derive(Debug, Clone)]
pub struct OpenSpan {
    pub start: i64,
    pub res: i64,
    pub points: usize,
    data: Arc<SpanData>,
}

/// A reader's view of an open span: every row as it stood when taken,
/// read without any lock while writers go on. Taking one is a single
/// `Arc` clone whatever the span holds (measured: sharing each metric's
/// row instead, one clone per metric and span under the store's lock and
/// one drop after the scan, was a fifth of a one-hour query over 1,000
/// metrics, each a cache miss).
#[derive(Debug, Clone)]
pub struct SpanSnapshot {
    pub start: i64,
    pub res: i64,
    pub points: usize,
    data: Arc<SpanData>,
}

/// A span's buffers laid out densely, row-major (row = metric), as Arrow
/// takes them.
pub(crate) enum Dense {
    Raw { values: Vec<f64>, valid: Vec<u8>, anomaly: Vec<u8> },
    Agg { sum: Vec<f64>, min: Vec<f64>, max: Vec<f64>, count: Vec<u32>, anomaly_count: Vec<u32> },
}

impl Dense {
    /// No rows yet, of a raw span's kind or a rollup's.
    pub(crate) fn empty(raw: bool) -> Dense {
        if raw {
            Dense::Raw { values: Vec::new(), valid: Vec::new(), anomaly: Vec::new() }
        } else {
            Dense::Agg {
                sum: Vec::new(),
                min: Vec::new(),
                max: Vec::new(),
                count: Vec::new(),
                anomaly_count: Vec::new(),
            }
        }
    }
}

impl OpenSpan {
    pub fn new(start: i64, res: i64, points: usize, raw: bool) -> Self {
        let rows = if raw { SpanRows::Raw(Vec::new()) } else { SpanRows::Agg(Vec::new()) };
        OpenSpan { start, res, points, data: Arc::new(SpanData { ids: Vec::new(), index: id_map::new(), rows }) }
    }

    /// The span's rows to write: copied first if a reader holds them.
    fn data_mut(&mut self) -> &mut SpanData {
        Arc::make_mut(&mut self.data)
    }

    /// Metrics with a row here, in row order.
    pub(crate) fn ids(&self) -> &[MetricId] {
        &self.data.ids
    }

    /// A reader's view of every row as it stands now.
    pub fn snapshot(&self) -> SpanSnapshot {
        SpanSnapshot { start: self.start, res: self.res, points: self.points, data: self.data.clone() }
    }

    pub fn span_secs(&self) -> i64 {
        self.res * self.points as i64
    }

    pub fn rows(&self) -> usize {
        self.data.ids.len()
    }

    pub fn is_raw(&self) -> bool {
        matches!(self.data.rows, SpanRows::Raw(_))
    }

    /// The row of `m`, added (empty, no block yet) if new. Stable while the span is open.
    pub(crate) fn row_or_insert(&mut self, m: MetricId) -> usize {
        if let Some(&r) = self.data.index.get(&m) {
            return r as usize;
        }
        let d = self.data_mut();
        let r = d.ids.len();
        d.ids.push(m);
        d.index.insert(m, r as u32);
        match &mut d.rows {
            SpanRows::Raw(rows) => rows.push(Arc::default()),
            SpanRows::Agg(rows) => rows.push(Arc::default()),
        }
        r
    }

    fn slot(&self, end: i64) -> usize {
        ((end - self.start) / self.res) as usize
    }

    /// Writes a raw sample (tier 0) ending at `end`; `None` is an explicit
    /// gap. Returns whether it replaced a value.
    pub fn write_raw(&mut self, m: MetricId, end: i64, value: Option<f64>, anomalous: bool) -> bool {
        let r = self.row_or_insert(m);
        let mut replaced = [false];
        self.write_raw_points(r, &[RawPoint { t: end, value, anomalous }], &mut replaced);
        replaced[0]
    }

    /// Writes `pts` (all in this span) into row `r`, in order (the last
    /// write to a slot wins), setting `replaced[i]` where point `i`
    /// overwrote a value: one block lookup (and copy-on-write check) per
    /// block, not per sample. The block's window is grown once to cover
    /// the group's values first, so each point is a plain indexed write.
    pub(crate) fn write_raw_points(&mut self, r: usize, pts: &[RawPoint], replaced: &mut [bool]) {
        let (start, res) = (self.start, self.res);
        let SpanRows::Raw(rows) = &mut self.data_mut().rows else { return };
        // Per-second rows (the common case) take no division per point.
        let slot = |t: i64| if res == 1 { (t - start) as usize } else { ((t - start) / res) as usize };
        let mut at = 0;
        for group in pts.chunk_by(|a, b| slot(a.t) / RAW_BLOCK == slot(b.t) / RAW_BLOCK) {
            let bi = (slot(group[0].t) / RAW_BLOCK) as u32;
            let rep = &mut replaced[at..at + group.len()];
            at += group.len();
            // Gaps where nothing was written store nothing.
            if block(&rows[r], bi).is_none() && group.iter().all(|p| p.value.is_none()) {
                continue;
            }
            let b = block_mut(Arc::make_mut(&mut rows[r]), bi);
            let mut written = group.iter().filter(|p| p.value.is_some()).map(|p| slot(p.t) % RAW_BLOCK);
            if let Some(k) = written.next() {
                let (lo, hi) = written.fold((k, k), |(lo, hi), k| (lo.min(k), hi.max(k)));
                b.cover(lo, hi);
            }
            // Every value's slot is now inside the window; a gap outside it
            // has nothing to clear.
            let first = b.first();
            let cols = &mut b.cols;
            for (p, rep) in group.iter().zip(rep) {
                let Some(i) = (slot(p.t) % RAW_BLOCK).checked_sub(first).filter(|&i| i < cols.values.len()) else {
                    debug_assert!(p.value.is_none(), "the window covers every value");
                    continue;
                };
                *rep = write_slot(cols, i, p.value, p.anomalous);
            }
        }
    }

    /// Folds one raw sample into the aggregate point ending at `end`.
    pub fn merge_agg(&mut self, m: MetricId, end: i64, v: f64, anomalous: bool) {
        let r = self.row_or_insert(m);
        self.merge_agg_values(r, end, std::iter::once((v, anomalous)));
    }

    /// Folds samples `(value, anomalous)` into the aggregate point ending at
    /// `end`, in their order (so the sums are the same whether samples come
    /// one by one or together), with one lookup for them all.
    pub(crate) fn merge_agg_values(&mut self, r: usize, end: i64, values: impl Iterator<Item = (f64, bool)>) {
        let i = self.slot(end);
        let SpanRows::Agg(rows) = &mut self.data_mut().rows else { return };
        let b = block_mut(Arc::make_mut(&mut rows[r]), (i / AGG_BLOCK) as u32);
        let k = b.index_mut(i % AGG_BLOCK);
        let b = &mut b.cols;
        let (mut count, mut anomalous) = (b.count[k], b.anomaly_count[k]);
        // An empty point starts from the identities, so the loop has no
        // branch: -0.0 + v is v bit for bit (even for v = -0.0), as the
        // first value alone would be.
        let (mut sum, mut min, mut max) = match count {
            0 => (-0.0, f64::INFINITY, f64::NEG_INFINITY),
            _ => (b.sum[k], b.min[k], b.max[k]),
        };
        // Comparisons rather than f64::min/max: values are finite, and
        // the NaN handling of those tripled the loop's dependency chain.
        for (v, a) in values {
            sum += v;
            min = if v < min { v } else { min };
            max = if v > max { v } else { max };
            count += 1;
            anomalous += u32::from(a);
        }
        if count > 0 {
            (b.sum[k], b.min[k], b.max[k], b.count[k], b.anomaly_count[k]) = (sum, min, max, count, anomalous);
        }
    }

    /// Replaces the aggregate point ending at `end` (backfill, or a rollup
    /// recomputed after a raw slot was overwritten).
    pub fn set_agg(&mut self, m: MetricId, end: i64, p: Option<AggPoint>) {
        let r = self.row_or_insert(m);
        let i = self.slot(end);
        let SpanRows::Agg(rows) = &mut self.data_mut().rows else { return };
        let (bi, k) = ((i / AGG_BLOCK) as u32, i % AGG_BLOCK);
        if p.is_none() && block(&rows[r], bi).and_then(|b| b.index(k)).is_none() {
            return;
        }
        let b = block_mut(Arc::make_mut(&mut rows[r]), bi);
        let k = b.index_mut(k);
        let b = &mut b.cols;
        let p = p.unwrap_or(AggPoint { sum: 0.0, min: 0.0, max: 0.0, count: 0, anomaly_count: 0 });
        b.sum[k] = p.sum;
        b.min[k] = p.min;
        b.max[k] = p.max;
        b.count[k] = p.count;
        b.anomaly_count[k] = p.anomaly_count;
    }

    fn geometry(&self) -> Geometry {
        Geometry { start: self.start, res: self.res, points: self.points }
    }

    /// Calls `f` with metric `m`'s runs (one per block), oldest first.
    pub fn for_each_run<'a>(&'a self, m: MetricId, f: impl FnMut(Run<'a>)) {
        self.data.for_each_run(self.geometry(), m, i64::MIN, i64::MAX, f);
    }

    /// Whether metric `m` has a row here.
    pub fn has(&self, m: MetricId) -> bool {
        self.data.index.contains_key(&m)
    }

    /// The slots its blocks hold, first to last, across every row
    /// (`None` when no row has a block). Outside them every slot is a gap,
    /// so a snapshot lays out only these: a span written in a corner of
    /// its length (a day's first hours, a few hours of a 30-day tier-2
    /// span) costs a snapshot what it holds, not its whole length.
    pub fn held_slots(&self) -> Option<Range<usize>> {
        let g = self.geometry();
        fn held<C: Columns>(g: Geometry, all: &[Arc<Blocks<Block<C>>>]) -> Option<Range<usize>> {
            let windows = all.iter().flat_map(|blocks| blocks.iter().map(move |(bi, b)| g.window(*bi, b)));
            windows.filter(|&(_, len)| len > 0).fold(None, |acc: Option<Range<usize>>, (slot, len)| {
                Some(acc.map_or(slot..slot + len, |r| r.start.min(slot)..r.end.max(slot + len)))
            })
        }
        match &self.data.rows {
            SpanRows::Raw(all) => held(g, all),
            SpanRows::Agg(all) => held(g, all),
        }
    }

    /// The span's buffers laid out densely (row = metric, in `ids` order),
    /// zeros and unset bits where no block holds a slot.
    #[cfg(test)]
    pub(crate) fn dense(&self) -> Dense {
        self.dense_range(0..self.points)
    }

    /// [`OpenSpan::dense`] for the slots of `range` only: each row holds
    /// `range.len()` points, the first of them slot `range.start`.
    #[cfg(test)]
    pub(crate) fn dense_range(&self, range: Range<usize>) -> Dense {
        let mut out = Dense::empty(self.is_raw());
        self.dense_rows(0..self.rows(), range, &mut out);
        out
    }

    /// Lays out the rows in `rows` densely in `out` (row = metric, in `ids`
    /// order), each row holding the `range.len()` slots of `range`: zeros
    /// and unset bits where no block holds a slot. Sealing lays a span out
    /// a few rows at a time into the same `out`, so its buffers stay small
    /// and are written over instead of being fresh pages for every chunk
    /// (fresh zeroed pages fault on first touch: with a new buffer per
    /// chunk, a third of sealing an hour went to page faults).
    pub(crate) fn dense_rows(&self, rows: Range<usize>, range: Range<usize>, out: &mut Dense) {
        let g = self.geometry();
        let (n, from, to) = (range.len(), range.start, range.end.min(self.points));
        let (first, rows) = (rows.start, rows.len());
        // What a block's window puts in the range: (offset in the row, offset in the block, length).
        let part = |(slot, len): (usize, usize)| {
            let (a, b) = (slot.max(from), (slot + len).min(to));
            (a < b).then(|| (a - from, a - slot, b - a))
        };
        fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
            v.clear();
            v.resize(len, T::default());
        }
        match (&self.data.rows, out) {
            (SpanRows::Raw(all), Dense::Raw { values, valid, anomaly }) => {
                zeroed(values, rows * n);
                zeroed(valid, (rows * n).div_ceil(8));
                zeroed(anomaly, (rows * n).div_ceil(8));
                for (r, blocks) in all.iter().skip(first).take(rows).enumerate() {
                    for (bi, b) in blocks.iter() {
                        let Some((at, k, len)) = part(g.window(*bi, b)) else { continue };
                        let at = r * n + at;
                        let b = &b.cols;
                        values[at..at + len].copy_from_slice(&b.values[k..k + len]);
                        copy_bits(valid, at, &b.valid, k, len);
                        copy_bits(anomaly, at, &b.anomaly, k, len);
                    }
                }
            }
            (SpanRows::Agg(all), Dense::Agg { sum, min, max, count, anomaly_count }) => {
                for v in [&mut *sum, &mut *min, &mut *max] {
                    zeroed(v, rows * n);
                }
                zeroed(count, rows * n);
                zeroed(anomaly_count, rows * n);
                for (r, blocks) in all.iter().skip(first).take(rows).enumerate() {
                    for (bi, b) in blocks.iter() {
                        let Some((at, k, len)) = part(g.window(*bi, b)) else { continue };
                        let at = r * n + at;
                        let b = &b.cols;
                        sum[at..at + len].copy_from_slice(&b.sum[k..k + len]);
                        min[at..at + len].copy_from_slice(&b.min[k..k + len]);
                        max[at..at + len].copy_from_slice(&b.max[k..k + len]);
                        count[at..at + len].copy_from_slice(&b.count[k..k + len]);
                        anomaly_count[at..at + len].copy_from_slice(&b.anomaly_count[k..k + len]);
                    }
                }
            }
            // Only if a caller reuses `out` across a raw span and a rollup.
            (_, out) => {
                *out = Dense::empty(self.is_raw());
                self.dense_rows(first..first + rows, range, out);
            }
        }
    }

    /// Bytes of point data this span holds (blocks), for memory accounting.
    pub fn block_bytes(&self) -> usize {
        fn sum<C: Columns>(rows: &[Arc<Blocks<Block<C>>>]) -> usize {
            rows.iter().flat_map(|r| r.iter()).map(|(_, b)| b.bytes()).sum()
        }
        match &self.data.rows {
            SpanRows::Raw(r) => sum(r),
            SpanRows::Agg(r) => sum(r),
        }
    }
}

/// Writes a raw sample (or a gap) into slot `k` of a block's columns;
/// returns whether the slot held a value (its rollups must be rebuilt).
#[inline]
fn write_slot(b: &mut RawCols, k: usize, value: Option<f64>, anomalous: bool) -> bool {
    let (byte, bit) = (k >> 3, 1u8 << (k & 7));
    let replaced = b.valid[byte] & bit != 0;
    b.values[k] = value.unwrap_or(0.0);
    // Branch-free: whether a slot holds a value is the data's, not predictable.
    let (valid, anomaly) = (u8::from(value.is_some()), u8::from(value.is_some() && anomalous));
    b.valid[byte] = (b.valid[byte] & !bit) | (bit * valid);
    b.anomaly[byte] = (b.anomaly[byte] & !bit) | (bit * anomaly);
    replaced
}

/// Where a span's blocks sit in time.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    start: i64,
    res: i64,
    points: usize,
}

impl Geometry {
    /// The span slot of block `bi`'s first held point and how many points
    /// it holds (a window can reach past the span's end by its padding to
    /// whole bytes; those slots are not part of the span).
    fn window<C: Columns>(&self, bi: u32, b: &Block<C>) -> (usize, usize) {
        let slot = bi as usize * C::PER + b.first();
        (slot, b.cols.slots().min(self.points.saturating_sub(slot)))
    }

    fn end_of(&self, slot: usize) -> i64 {
        self.start + slot as i64 * self.res
    }

    fn raw_run<'a>(&self, bi: u32, b: &'a RawBlock) -> Run<'a> {
        let (slot, len) = self.window(bi, b);
        let b = &b.cols;
        let data = RowData::Raw {
            values: &b.values[..len],
            valid: Some(BitSlice::new(&b.valid, 0)),
            anomaly: Some(BitSlice::new(&b.anomaly, 0)),
        };
        Run { first_end: self.end_of(slot), res: self.res, len, data }
    }

    fn agg_run<'a>(&self, bi: u32, b: &'a AggBlock) -> Run<'a> {
        let (slot, len) = self.window(bi, b);
        let b = &b.cols;
        let data = RowData::Agg {
            sum: &b.sum[..len],
            min: &b.min[..len],
            max: &b.max[..len],
            count: &b.count[..len],
            anomaly_count: &b.anomaly_count[..len],
        };
        Run { first_end: self.end_of(slot), res: self.res, len, data }
    }
}

impl SpanData {
    /// Calls `f` with metric `m`'s blocks that hold point ends in
    /// `(from_excl, to_incl]` as runs, oldest first.
    fn for_each_run<'a>(&'a self, g: Geometry, m: MetricId, from_excl: i64, to_incl: i64, mut f: impl FnMut(Run<'a>)) {
        let Some(&r) = self.index.get(&m) else { return };
        let r = r as usize;
        match &self.rows {
            SpanRows::Raw(rows) => {
                wanted(&rows[r], RAW_BLOCK, g, from_excl, to_incl).iter().for_each(|(bi, b)| f(g.raw_run(*bi, b)))
            }
            SpanRows::Agg(rows) => {
                wanted(&rows[r], AGG_BLOCK, g, from_excl, to_incl).iter().for_each(|(bi, b)| f(g.agg_run(*bi, b)))
            }
        }
    }
}

/// Blocks are sorted: the wanted ones (holding point ends in
/// `(from_excl, to_incl]`) are one run of them, found from their numbers
/// alone (no block is touched to skip it).
fn wanted<B>(row: &Blocks<B>, per: usize, g: Geometry, from_excl: i64, to_incl: i64) -> &[(u32, Arc<B>)] {
    let first = |bi: u32| g.start + i64::from(bi) * per as i64 * g.res;
    let lo = row.partition_point(|(bi, _)| first(*bi) + (per as i64 - 1) * g.res <= from_excl);
    let hi = row.partition_point(|(bi, _)| first(*bi) <= to_incl).max(lo);
    &row[lo..hi]
}

/// One step of asking for a metric's open-span blocks ahead of its scan
/// ([`SpanSnapshot::prefetch`]). A block hangs three pointers deep (the
/// row's `Arc`, its block list, the block's `Arc`), so each step only
/// reads what the step before asked for: run a metric's steps in this
/// order, each at least a metric's scan after the one before, and none of
/// them waits for memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The row's block list header.
    Row,
    /// The block list itself.
    List,
    /// The wanted blocks' headers.
    Blocks,
}

impl SpanData {
    fn prefetch(&self, g: Geometry, m: MetricId, from_excl: i64, to_incl: i64, step: Prefetch) {
        fn of<B>(row: &Arc<Blocks<B>>, per: usize, g: Geometry, from_excl: i64, to_incl: i64, step: Prefetch) {
            match step {
                // Addresses only: the `Arc`s are read, not what they point to.
                Prefetch::Row => prefetch::slice(std::slice::from_ref::<Blocks<B>>(row)),
                Prefetch::List => prefetch::slice(row.as_slice()),
                Prefetch::Blocks => wanted(row, per, g, from_excl, to_incl)
                    .iter()
                    .for_each(|(_, b)| prefetch::slice(std::slice::from_ref::<B>(b))),
            }
        }
        let Some(&r) = self.index.get(&m) else { return };
        match &self.rows {
            SpanRows::Raw(rows) => {
                rows.get(r as usize).into_iter().for_each(|row| of(row, RAW_BLOCK, g, from_excl, to_incl, step))
            }
            SpanRows::Agg(rows) => {
                rows.get(r as usize).into_iter().for_each(|row| of(row, AGG_BLOCK, g, from_excl, to_incl, step))
            }
        }
    }
}

impl SpanSnapshot {
    fn geometry(&self) -> Geometry {
        Geometry { start: self.start, res: self.res, points: self.points }
    }

    /// Metric `m`'s blocks holding point ends in `(from_excl, to_incl]`, as
    /// runs (whole blocks: clip them), oldest first.
    pub fn for_each_run<'a>(&'a self, m: MetricId, from_excl: i64, to_incl: i64, f: impl FnMut(Run<'a>)) {
        self.data.for_each_run(self.geometry(), m, from_excl, to_incl, f);
    }

    /// A hint: one [`Prefetch`] step for the blocks
    /// [`SpanSnapshot::for_each_run`] would give for the same arguments.
    pub fn prefetch(&self, m: MetricId, from_excl: i64, to_incl: i64, step: Prefetch) {
        self.data.prefetch(self.geometry(), m, from_excl, to_incl, step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bits::get_bit;

    fn first_run(s: &OpenSpan, m: MetricId) -> Option<(i64, usize, AggPoint, bool)> {
        let mut out = None;
        s.for_each_run(m, |r| {
            if out.is_none() {
                out = Some((r.first_end, r.len, r.agg(0), r.is_valid(0)));
            }
        });
        out
    }

    /// A point's first value is its sum, minimum and maximum bit for bit:
    /// -0.0 stays -0.0, as it would alone.
    #[test]
    fn a_first_value_is_its_own_aggregate() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        s.merge_agg(1, 0, -0.0, false);
        s.merge_agg(2, 0, -0.0, false);
        s.merge_agg(2, 0, 0.0, true);
        s.merge_agg(3, 0, 2.5, false);
        s.merge_agg(3, 0, -1.0, false);
        let bits = |m| first_run(&s, m).map(|r| (r.2.sum.to_bits(), r.2.min, r.2.max, r.2.count, r.2.anomaly_count));
        assert_eq!(bits(1), Some(((-0.0f64).to_bits(), -0.0, -0.0, 1, 0)));
        assert_eq!(bits(2), Some((0.0f64.to_bits(), -0.0, -0.0, 2, 1)));
        assert_eq!(bits(3), Some((1.5f64.to_bits(), -1.0, 2.5, 2, 0)));
    }

    #[test]
    fn raw_writes_report_replacements() {
        let mut s = OpenSpan::new(3600, 1, 3600, true);
        assert!(!s.write_raw(7, 3600, Some(1.5), false));
        assert!(s.write_raw(7, 3600, Some(2.5), true), "a value replaced");
        s.write_raw(7, 3602, None, false);
        let mut seen = Vec::new();
        s.for_each_run(7, |run| seen.extend((0..3).map(|i| (run.is_valid(i), run.counts(i)))));
        assert_eq!(seen, vec![(true, (1, 1)), (false, (1, 0)), (false, (1, 0))]);
        assert_eq!(first_run(&s, 7).map(|r| r.2.sum), Some(2.5));
        assert!(first_run(&s, 8).is_none());
    }

    #[test]
    fn agg_merges_in_constant_time() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        for (v, a) in [(3.0, false), (-1.0, true), (4.0, false)] {
            s.merge_agg(1, 60, v, a);
        }
        let mut p = None;
        s.for_each_run(1, |r| {
            p = Some((r.agg(1), r.is_valid(0)));
        });
        assert_eq!(p, Some((AggPoint { sum: 6.0, min: -1.0, max: 4.0, count: 3, anomaly_count: 1 }, false)));
    }

    #[test]
    fn memory_follows_the_data() {
        let mut s = OpenSpan::new(0, 1, 3600, true);
        s.write_raw(1, 3599, Some(1.0), false);
        s.write_raw(2, 0, Some(1.0), false);
        // One block per written series, holding a byte's worth of slots.
        let one = std::mem::size_of::<RawBlock>() + 8 * 8 + 2;
        assert_eq!(s.block_bytes(), 2 * one);
        let mut lens = Vec::new();
        s.for_each_run(1, |r| lens.push((r.first_end, r.len)));
        assert_eq!(lens, vec![(3592, 8)], "the run holds the written slots' byte");
        // A dense series fills its blocks exactly: no spare capacity.
        for t in 0..3600 {
            s.write_raw(3, t, Some(1.0), false);
        }
        let whole = std::mem::size_of::<RawBlock>() + RAW_BLOCK * 8 + RAW_BLOCK / 4;
        let last = std::mem::size_of::<RawBlock>() + (3600 % RAW_BLOCK) * 8 + (3600 % RAW_BLOCK) / 4;
        assert_eq!(s.block_bytes(), 2 * one + 3600 / RAW_BLOCK * whole + last);
    }

    /// The valid points of `runs` as (end, aggregate), checking that the
    /// runs come in time order.
    fn valid_points(runs: &[Run<'_>]) -> Vec<(i64, AggPoint)> {
        let mut prev_end = i64::MIN;
        let mut out = Vec::new();
        for r in runs {
            for k in 0..r.len {
                let e = r.end_of(k);
                assert!(e > prev_end, "runs in time order");
                prev_end = e;
                if r.is_valid(k) {
                    out.push((e, r.agg(k)));
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// Whatever the block size, the runs a span hands out (all of them,
        /// or the blocks shared for a range) hold exactly the points written,
        /// in order, each at its own end time; a shared range covers every
        /// written point whose end lies in it.
        #[test]
        fn runs_hold_what_was_written_across_blocks(
            writes in proptest::collection::vec((0usize..3600, proptest::option::of(-1e6f64..1e6), proptest::bool::ANY), 0..300),
            from in -10i64..3700,
            len in 0i64..3700,
            raw in proptest::bool::ANY,
        ) {
            let (start, res, points) = if raw { (7200, 1, 3600) } else { (86_400, 60, 1440) };
            let mut s = OpenSpan::new(start, res, points, raw);
            let mut model: Vec<Option<AggPoint>> = vec![None; points];
            let mut replaced = Vec::new();
            for &(i, v, an) in &writes {
                let i = i % points;
                // Point i of a span ends at start + i * res.
                let end = start + i as i64 * res;
                if raw {
                    replaced.push(s.write_raw(3, end, v, an));
                    model[i] = v.map(|v| AggPoint { sum: v, min: v, max: v, count: 1, anomaly_count: u32::from(an) });
                } else if let Some(v) = v {
                    s.merge_agg(3, end, v, an);
                    let p = model[i].get_or_insert(AggPoint { sum: 0.0, min: v, max: v, count: 0, anomaly_count: 0 });
                    *p = AggPoint { sum: p.sum + v, min: p.min.min(v), max: p.max.max(v), count: p.count + 1, anomaly_count: p.anomaly_count + u32::from(an) };
                }
            }
            let end_of = |i: usize| start + i as i64 * res;
            let mut runs = Vec::new();
            s.for_each_run(3, |r| runs.push(r));
            let all = valid_points(&runs);
            let want: Vec<(i64, AggPoint)> = model.iter().enumerate().filter_map(|(i, p)| p.map(|p| (end_of(i), p))).collect();
            proptest::prop_assert_eq!(&all, &want);
            // The batched writes leave the same points (bit for bit) and
            // report the same overwrites.
            let mut batched = OpenSpan::new(start, res, points, raw);
            let r = batched.row_or_insert(3);
            if raw {
                let pts: Vec<RawPoint> = writes.iter().map(|&(i, value, anomalous)| RawPoint { t: end_of(i % points), value, anomalous }).collect();
                let mut got = vec![false; pts.len()];
                batched.write_raw_points(r, &pts, &mut got);
                proptest::prop_assert_eq!(got, replaced);
            } else {
                for group in writes.chunk_by(|a, b| a.0 % points == b.0 % points) {
                    let values = group.iter().filter_map(|&(_, v, an)| v.map(|v| (v, an)));
                    if group.iter().any(|w| w.1.is_some()) {
                        batched.merge_agg_values(r, end_of(group[0].0 % points), values);
                    }
                }
            }
            let mut runs = Vec::new();
            batched.for_each_run(3, |r| runs.push(r));
            proptest::prop_assert_eq!(valid_points(&runs), all);
            let (lo, hi) = (start + from * res - res, start + (from + len) * res);
            let snap = s.snapshot();
            let mut runs = Vec::new();
            snap.for_each_run(3, lo, hi, |r| runs.push(r));
            let got = valid_points(&runs);
            let in_range: Vec<_> = want.iter().filter(|(e, _)| *e > lo && *e <= hi).collect();
            proptest::prop_assert!(in_range.iter().all(|w| got.contains(w)), "the snapshot's blocks cover the range");
            proptest::prop_assert!(got.iter().all(|g| want.contains(g)), "and hold nothing else");
            // Whole blocks, and only those reaching into the range.
            let per = if raw { RAW_BLOCK } else { AGG_BLOCK } as i64;
            let block_first = |r: &Run<'_>| start + (r.first_end - start) / (per * res) * per * res;
            proptest::prop_assert!(runs.iter().all(|r| block_first(r) <= hi && block_first(r) + (per - 1) * res > lo));
        }
    }

    /// The valid points of metric `m` in `s`, each as (end, aggregate).
    fn points_of(s: &OpenSpan, m: MetricId) -> Vec<(i64, AggPoint)> {
        let mut runs = Vec::new();
        s.for_each_run(m, |r| runs.push(r));
        valid_points(&runs)
    }

    proptest::proptest! {
        // Each case lays out and seals spans of up to 50 x 3,600 points.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The held slots cover every written point, starting and ending
        /// within a block of the first and last; a dense layout of any
        /// range is the full layout's slots of that range, row by row; a
        /// segment of the held slots, put back in its span, holds every
        /// point written, and nothing is held outside them.
        #[test]
        fn held_slots_and_ranges_lay_out_what_the_span_holds(
            writes in proptest::collection::vec((0u32..50, 0usize..3600, proptest::option::of(-1e6f64..1e6)), 0..300),
            raw in proptest::bool::ANY,
            cut in (0usize..3600, 0usize..3600),
        ) {
            let (start, res, points) = if raw { (7200, 1, 3600) } else { (86_400, 60, 1440) };
            let mut s = OpenSpan::new(start, res, points, raw);
            let mut written: Option<(usize, usize)> = None;
            for &(m, i, v) in &writes {
                let (i, end) = (i % points, start + (i % points) as i64 * res);
                if raw {
                    s.write_raw(m, end, v, false);
                } else if let Some(v) = v {
                    s.merge_agg(m, end, v, false);
                }
                if v.is_some() {
                    written = Some(written.map_or((i, i), |(a, b)| (a.min(i), b.max(i))));
                }
            }
            let per = if raw { RAW_BLOCK } else { AGG_BLOCK };
            let held = s.held_slots();
            match (written, &held) {
                (Some((a, b)), Some(h)) => proptest::prop_assert!(
                    h.start <= a && a - h.start < per && h.end > b && h.end - b <= per, "{:?} for {}..={}", h, a, b),
                (None, None) => {}
                (w, h) => proptest::prop_assert!(false, "held {:?} for written {:?}", h, w),
            }
            let (lo, hi) = (cut.0.min(cut.1) % points, (cut.0.max(cut.1) % points).max(cut.0.min(cut.1) % points));
            let ranges = std::iter::once(lo..hi + 1).chain(held.clone());
            let (n, rows) = (points, s.rows());
            for r in ranges {
                let (from, cut) = (r.start, r.len());
                match (s.dense(), s.dense_range(r.clone())) {
                    (Dense::Raw { values, valid, anomaly }, Dense::Raw { values: tv, valid: tvalid, anomaly: tanom }) => {
                        for row in 0..rows {
                            proptest::prop_assert_eq!(&values[row * n + from..row * n + from + cut], &tv[row * cut..(row + 1) * cut]);
                            let bits = |b: &[u8], at: usize| (at..at + cut).map(|k| get_bit(b, k)).collect::<Vec<_>>();
                            proptest::prop_assert_eq!(bits(&valid, row * n + from), bits(&tvalid, row * cut));
                            proptest::prop_assert_eq!(bits(&anomaly, row * n + from), bits(&tanom, row * cut));
                        }
                    }
                    (Dense::Agg { sum, count, .. }, Dense::Agg { sum: ts, count: tc, .. }) => {
                        for row in 0..rows {
                            proptest::prop_assert_eq!(&sum[row * n + from..row * n + from + cut], &ts[row * cut..(row + 1) * cut]);
                            proptest::prop_assert_eq!(&count[row * n + from..row * n + from + cut], &tc[row * cut..(row + 1) * cut]);
                        }
                    }
                    _ => proptest::prop_assert!(false, "the layout keeps the span's kind"),
                }
            }
            // Sealed whole, laid out a few rows at a time (18 rows of 3,600
            // points, 45 of 1,440; up to 50 rows here): every row comes back.
            let whole = crate::storage::segment::Segment::seal(u8::from(!raw), &s).expect("seal");
            let back = whole.to_open_in(start, points);
            for &m in s.ids() {
                proptest::prop_assert_eq!(points_of(&back, m), points_of(&s, m));
            }
            if let Some(h) = held {
                let seg = crate::storage::segment::Segment::seal_range(u8::from(!raw), &s, h.clone()).expect("seal");
                proptest::prop_assert_eq!(seg.start, start + h.start as i64 * res);
                let back = seg.to_open_in(start, points);
                for &m in s.ids() {
                    proptest::prop_assert_eq!(points_of(&back, m), points_of(&s, m));
                }
                if let Dense::Raw { valid, .. } = s.dense() {
                    for row in 0..rows {
                        let outside = (0..n).filter(|k| !h.contains(k));
                        proptest::prop_assert!(outside.clone().all(|k| !get_bit(&valid, row * n + k)), "a value outside the held slots");
                    }
                }
            }
        }
    }

    #[test]
    fn dense_layout_matches_the_blocks() {
        let mut s = OpenSpan::new(100, 1, 16, true);
        s.write_raw(5, 103, Some(7.0), true);
        s.write_raw(9, 115, Some(-1.0), false);
        let Dense::Raw { values, valid, anomaly } = s.dense() else { panic!("raw") };
        assert_eq!(values.len(), 32);
        assert_eq!((values[3], values[16 + 15]), (7.0, -1.0));
        assert!(get_bit(&valid, 3) && get_bit(&anomaly, 3) && get_bit(&valid, 31) && !get_bit(&anomaly, 31));
        assert!(!get_bit(&valid, 4));
    }

    #[test]
    fn snapshots_keep_their_version() {
        let mut s = OpenSpan::new(0, 1, 3600, true);
        s.write_raw(1, 10, Some(1.0), false);
        let snap = s.snapshot();
        s.write_raw(1, 10, Some(2.0), false);
        s.write_raw(2, 11, Some(3.0), false);
        let mut v = Vec::new();
        snap.for_each_run(1, -1, 3600, |r| v.push(r.agg((10 - r.first_end) as usize).sum));
        assert_eq!(v, vec![1.0], "the reader's block did not change");
        let mut later = 0;
        snap.for_each_run(2, -1, 3600, |_| later += 1);
        assert_eq!(later, 0, "nor did its rows");
        assert_eq!(first_run(&s, 1).map(|r| (r.0, r.2.sum)), Some((8, 0.0)), "the window starts at slot 8");
        assert_eq!(first_run(&s, 2).map(|r| r.2.sum), Some(0.0));
        let now = s.snapshot();
        let mut v = Vec::new();
        now.for_each_run(1, -1, 3600, |r| v.push(r.agg((10 - r.first_end) as usize).sum));
        assert_eq!(v, vec![2.0]);
    }
}
