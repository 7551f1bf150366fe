//! One metric's scan: the bucket loop over the planned pieces (spec 1.7).
//!
//! A bucket `(s, e]` takes the points whose end lies in it, piece by piece
//! as the plan laid them out. Tier-0 slices are summarised in one pass
//! ([`summarize`]); a time group that merges aggregates takes that
//! summary, the others take the values. A rollup point goes to the time
//! group as the aggregate of its samples; where the group cannot merge it
//! (e.g. `min` over both signs), an exact piece reads the point's tier-0
//! samples instead, and a rollup-only or pinned read takes Netdata's value
//! of the point (its average, min, max or sum) and marks the bucket
//! approximate. The point that reaches past the bucket end is
//! interpolated at the end when it is wider than a second (Netdata's
//! closing value).
//!
//! Speed: the exact layout reads tier 0 in short slices a bucket apart, so
//! each metric's runs are unpacked once into typed views, slices are
//! located by index arithmetic (no division at one-second resolution), and
//! the slices of a bucket a few ahead are prefetched. Sealed tier-0 rows
//! are read encoded: sums, minima and maxima come from the packed integers
//! without decoding, and values are decoded (into a reused buffer) only for
//! time groups that need them one by one; a median takes a gap-free
//! decimal slice as its integers, and decodes only its middle values. A
//! time group of sums and counts over many points (or over rollups alone)
//! takes its metric's statistics from whole hours and minutes apart from
//! the buckets ([`super::stats`]); its buckets then read sums alone (no
//! minimum or maximum, and no rollup min/max columns). Where every piece
//! is tier 0 in wide buckets, or every piece is a rollup, those sums are
//! taken piece by piece in one pass per run before the bucket loop
//! (`MetricScan::batches`, [`super::rollup_sums`]), which then only
//! merges them.

use std::rc::Rc;

use crate::query::kernels::Kernel;
use crate::query::plan::layout::{Layout, Piece};
use crate::query::plan::{with_sample_fallback, Job, MetricReads};
use crate::query::result::{PointStats, TierUse, PA_EMPTY};
use crate::query::time_group::Field;
use crate::query::window::Window;
use crate::storage::bits::BitSlice;
use crate::storage::codec::EncodedRow;
use crate::storage::{prefetch, AggColumns, AggPoint, RowData, StoreView, TIERS};

use super::rollup_sums;
use super::stats::window_stats;
use super::summarize::{absolute, absolute_point, anomaly_rates, summarize};

/// Buckets between a prefetch and the read it prepares.
const PREFETCH_AHEAD: usize = 3;

/// Buckets of fewer tier-0 points than this keep the per-slice reads
/// (with their prefetches) instead of [`MetricScan::raw_piece_sums`]'s
/// pass: its saving, one frame lookup for several buckets, is per bucket,
/// and its own costs are per range. Measured on 12-point buckets of a
/// 1,000-metric max (a variant of the pass for min and max): 39-46 ms
/// CPU against 29-37 without; on 288-point buckets of a sum, 72-81
/// against about 98.
const BATCH_MIN_BUCKET_POINTS: i64 = 64;
/// Buckets between two checks of the query's deadline and cancellation.
const STOP_CHECK_EVERY: usize = 4096;

/// One metric's time-grouped output (a reused scratch buffer).
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub values: Vec<f64>,
    pub flags: Vec<u8>,
    /// Anomaly rate 0..100 per bucket.
    pub arp: Vec<f64>,
}

impl Buckets {
    fn reset(&mut self, n: usize) {
        self.values.clear();
        self.values.resize(n, 0.0);
        self.flags.clear();
        self.flags.resize(n, PA_EMPTY);
        self.arp.clear();
        self.arp.resize(n, 0.0);
    }
}

/// Where a metric's scan reports.
pub struct MetricOut<'o> {
    pub buckets: &'o mut Buckets,
    pub stats: &'o mut PointStats,
    pub tiers: &'o mut TierUse,
    /// Per bucket: some of its data is only approximate.
    pub approximate: &'o mut [bool],
    /// Tiers that served approximate data.
    pub approximate_tiers: &'o mut [bool; TIERS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The exact layout: a point the time group cannot merge is replaced by its tier-0 samples.
    Exact,
    /// `tier: N`: Netdata's value of such a point; approximate where a bucket cuts intervals.
    Pinned,
    /// Rollup-only history: as `Pinned`, so exact where whole points
    /// merge (a point's aggregate is that of its samples, dropped or not).
    Aged,
}

/// A scan of sums and counts whose statistics were read apart
/// ([`super::stats`]): what the v2/v3 absolute rule does to its sums,
/// known from the window's minimum and maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sums {
    Keep,
    /// Every sample is at most 0: |x| sums to minus the sum.
    Negate,
}

impl Sums {
    fn apply(self, p: &AggPoint) -> AggPoint {
        match self {
            Sums::Keep => *p,
            Sums::Negate => AggPoint { sum: -p.sum, ..*p },
        }
    }
}

/// One side of a rollup point cut by a bucket end.
#[derive(Debug, Clone, Copy)]
struct SplitSide {
    /// The samples' aggregate (counts for the anomaly rate).
    raw: AggPoint,
    /// What the time group takes (absolute or anomaly values when asked).
    values: AggPoint,
}

impl SplitSide {
    fn new(raw: AggPoint, values: AggPoint) -> Self {
        SplitSide { raw, values }
    }
}

/// A rollup point cut by a bucket end: this bucket's right side and the
/// next bucket's left side, which ends at `end`.
#[derive(Debug, Clone, Copy)]
struct Split {
    right: SplitSide,
    left: SplitSide,
    end: i64,
}

#[derive(Debug, Default)]
struct Bucket {
    start: i64,
    end: i64,
    count: u64,
    anomalous: u64,
    last_tier: Option<usize>,
    approximate: bool,
}

/// The point cut by a bucket's end: its value interpolated at the end
/// ([`MetricScan::closing_value`]), and its samples for the anomaly rate.
struct Closing {
    value: f64,
    count: u32,
    anomalous: u32,
}

/// A tier-0 run, unpacked once per metric.
#[derive(Debug, Clone, Copy)]
struct RawView<'a> {
    first_end: i64,
    res: i64,
    len: usize,
    data: RawData<'a>,
}

/// Tier-0 points: plain values (the head, format-2 segments) or a codec row.
#[derive(Debug, Clone, Copy)]
enum RawData<'a> {
    Plain { values: &'a [f64], valid: Option<BitSlice<'a>>, anomaly: Option<BitSlice<'a>> },
    Encoded(EncodedRow<'a>),
}

impl<'a> RawData<'a> {
    /// Points `lo..hi`.
    #[inline]
    fn slice(&self, lo: usize, hi: usize) -> RawData<'a> {
        match *self {
            RawData::Plain { values, valid, anomaly } => RawData::Plain {
                values: &values[lo..hi],
                valid: valid.map(|v| v.advance(lo)),
                anomaly: anomaly.map(|a| a.advance(lo)),
            },
            RawData::Encoded(row) => RawData::Encoded(row.slice(lo, hi)),
        }
    }

    /// The aggregate of the valid points, in one pass.
    #[inline]
    fn summarize(&self) -> AggPoint {
        match self {
            RawData::Plain { values, valid, anomaly } => summarize(values, *valid, *anomaly),
            RawData::Encoded(row) => row.summarize(),
        }
    }

    /// Sum, count and anomalous count (min and max when they come free).
    #[inline]
    fn summarize_sums(&self) -> AggPoint {
        match self {
            RawData::Plain { values, valid, anomaly } => summarize(values, *valid, *anomaly),
            RawData::Encoded(row) => row.summarize_sums(),
        }
    }

    fn valid(&self) -> Option<BitSlice<'a>> {
        match self {
            RawData::Plain { valid, .. } => *valid,
            RawData::Encoded(row) => row.valid_bits(),
        }
    }

    fn anomaly(&self) -> Option<BitSlice<'a>> {
        match self {
            RawData::Plain { anomaly, .. } => *anomaly,
            RawData::Encoded(row) => row.anomaly_bits(),
        }
    }

    /// The values (gaps hold anything), decoded into `buf` if need be.
    fn values<'b>(&self, buf: &'b mut Vec<f64>) -> &'b [f64]
    where
        'a: 'b,
    {
        match self {
            RawData::Plain { values, .. } => values,
            RawData::Encoded(row) => {
                buf.clear();
                row.decode_into(buf);
                buf
            }
        }
    }

    /// Starts loading what reading these points touches.
    fn prefetch(&self) {
        match self {
            RawData::Plain { values, .. } => prefetch::slice(values),
            RawData::Encoded(row) => row.read_hint(prefetch::slice),
        }
    }
}

/// A rollup run of a metric, copied out of the store once per metric and
/// only over the range read. Consecutive pieces (an open span's blocks, a
/// sealed row and the open span after it) join into one run: the bucket
/// loop then reads contiguous columns the copy has just brought into
/// cache, instead of stalling on a block at a time (measured: the loads of
/// open-span blocks were the largest cost of the automatic-tier scan).
#[derive(Debug, Clone)]
struct AggRun {
    first_end: i64,
    res: i64,
    cols: Rc<AggColumns>,
}

impl AggRun {
    fn view(&self) -> AggView<'_> {
        AggView {
            first_end: self.first_end,
            res: self.res,
            sum: &self.cols.sum,
            min: &self.cols.min,
            max: &self.cols.max,
            count: &self.cols.count,
            anomaly_count: &self.cols.anomaly_count,
        }
    }

    fn last_end(&self) -> i64 {
        self.view().last_end()
    }
}

/// The columns that points starting at `first_end` (of `res` seconds)
/// append to: the last run's when they continue it, else a new run's
/// (reusing spare columns).
fn continue_run<'r>(
    runs: &'r mut Vec<AggRun>,
    spare: &mut Vec<AggColumns>,
    first_end: i64,
    res: i64,
) -> &'r mut AggColumns {
    let continues = runs.last().is_some_and(|r| r.res == res && r.last_end() + res == first_end);
    if !continues {
        let cols = Rc::new(spare.pop().unwrap_or_default());
        runs.push(AggRun { first_end, res, cols });
    }
    let last = runs.len() - 1;
    // Never shared while loading (the scan clones a run only to read it).
    Rc::make_mut(&mut runs[last].cols)
}

/// A rollup run, unpacked once per metric.
#[derive(Debug, Clone, Copy)]
struct AggView<'a> {
    first_end: i64,
    res: i64,
    sum: &'a [f64],
    min: &'a [f64],
    max: &'a [f64],
    count: &'a [u32],
    anomaly_count: &'a [u32],
}

/// A tier-0 slice's samples (their aggregate `p`, not empty) to the
/// statistics, the tier counts and the bucket, where they count (see
/// [`MetricScan::read_raw`]).
fn count_samples(p: &AggPoint, count: Option<(&mut Bucket, &mut MetricOut<'_>)>) {
    if let Some((b, out)) = count {
        out.stats.merge(&PointStats::from(p));
        tally(p, b, out);
    }
}

/// A tier-0 slice's samples to the tier counts and the bucket.
fn tally(p: &AggPoint, b: &mut Bucket, out: &mut MetricOut<'_>) {
    out.tiers.points[0] += u64::from(p.count);
    b.count += u64::from(p.count);
    b.anomalous += u64::from(p.anomaly_count);
}

/// The point ends `(lo, hi]` a scan of window `w` reads in a tier of
/// resolution `res`: one point of margin each side (the previous point of
/// an interpolation, the point closing the last bucket). The one rule for
/// what a query's view attaches (here and in SQL pushdown), what the scan
/// prefetches and what it loads, so they cannot drift apart.
pub fn read_range(w: &Window, res: i64) -> (i64, i64) {
    (w.after - w.granularity - 2 * res, w.before + res)
}

/// Points in a tier-0 slice.
fn p_len(data: &RawData<'_>) -> usize {
    match data {
        RawData::Plain { values, .. } => values.len(),
        RawData::Encoded(row) => row.len(),
    }
}

/// Points `lo..hi` of a run starting at `first_end` with `len` points of
/// `res` seconds whose end lies in `(from, to]`.
#[inline]
pub(super) fn index_range(first_end: i64, res: i64, len: usize, from: i64, to: i64) -> Option<(usize, usize)> {
    if to < first_end {
        return None;
    }
    // One-second runs are the hot case: no division there.
    let steps = |d: i64| if res == 1 { d } else { d / res };
    let lo = if from < first_end { 0 } else { (steps(from - first_end) + 1) as usize };
    let hi = ((steps(to - first_end) + 1) as usize).min(len);
    (lo < hi).then_some((lo, hi))
}

impl<'a> RawView<'a> {
    fn last_end(&self) -> i64 {
        self.first_end + (self.len as i64 - 1) * self.res
    }

    fn is_valid(&self, i: usize) -> bool {
        match &self.data {
            RawData::Plain { valid, .. } => valid.is_none_or(|v| v.get(i)),
            RawData::Encoded(row) => row.is_valid(i),
        }
    }

    fn is_anomalous(&self, i: usize) -> bool {
        match &self.data {
            RawData::Plain { anomaly, .. } => anomaly.is_some_and(|a| a.get(i)),
            RawData::Encoded(row) => row.is_anomalous(i),
        }
    }

    /// Netdata's value of point `i`.
    fn value(&self, i: usize, field: Field) -> f64 {
        match (field, &self.data) {
            (Field::AnomalyRate, _) => 100.0 * f64::from(u8::from(self.is_anomalous(i))),
            (_, RawData::Plain { values, .. }) => values[i],
            (_, RawData::Encoded(row)) => row.value(i),
        }
    }
}

impl<'a> AggView<'a> {
    fn last_end(&self) -> i64 {
        self.first_end + (self.count.len() as i64 - 1) * self.res
    }

    /// Point `i` (min and max NaN in a run loaded without them).
    fn point(&self, i: usize) -> AggPoint {
        AggPoint {
            sum: self.sum[i],
            min: self.min.get(i).copied().unwrap_or(f64::NAN),
            max: self.max.get(i).copied().unwrap_or(f64::NAN),
            count: self.count[i],
            anomaly_count: self.anomaly_count[i],
        }
    }

    /// Points `lo..hi` (the non-empty ones) as one aggregate, and how many
    /// there were; without `MIN_MAX` min and max are left infinite (and
    /// their columns unread).
    #[inline]
    fn combine<const MIN_MAX: bool>(&self, lo: usize, hi: usize) -> (AggPoint, u64) {
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        let (mut count, mut anomalous, mut points) = (0u32, 0u32, 0u64);
        for k in lo..hi {
            let c = self.count[k];
            let ok = c > 0;
            // Empty points must not count, whatever their slots hold.
            sum += if ok { self.sum[k] } else { 0.0 };
            if MIN_MAX {
                min = if ok && self.min[k] < min { self.min[k] } else { min };
                max = if ok && self.max[k] > max { self.max[k] } else { max };
            }
            count += c;
            anomalous += self.anomaly_count[k];
            points += u64::from(ok);
        }
        (AggPoint { sum, min, max, count, anomaly_count: anomalous }, points)
    }

    /// Netdata's value of point `i` for a time group reading `field`.
    fn value(&self, i: usize, field: Field) -> f64 {
        let n = f64::from(self.count[i]);
        match field {
            Field::AnomalyRate => 100.0 * f64::from(self.anomaly_count[i]) / n,
            Field::Average => self.sum[i] / n,
            Field::Min => self.min[i],
            Field::Max => self.max[i],
            Field::Sum => self.sum[i],
        }
    }
}

/// How a scan turns samples into time-group input.
#[derive(Debug, Clone, Copy)]
pub struct Values {
    /// Netdata's value of a rollup point, for time groups that cannot merge points.
    pub field: Field,
    /// Values are made absolute first (v2/v3 grouping rule).
    pub absolute: bool,
    /// Each sample stands for its anomaly bit (0 or 100).
    pub anomaly_bit: bool,
    /// The time group needs only sums and counts ([`crate::query::time_group::Method::sums_only`]).
    pub sums_only: bool,
    /// The time group takes values one by one, never aggregates
    /// (not [`crate::query::time_group::Method::merges_rollups`]).
    pub raw_values: bool,
}

impl Values {
    /// What `plan`'s scan feeds a time group of `method`.
    pub fn of(plan: &crate::query::plan::QueryPlan, method: crate::query::time_group::Method) -> Values {
        Values {
            field: plan.field,
            absolute: plan.absolute,
            anomaly_bit: plan.anomaly_bit,
            sums_only: method.sums_only(),
            raw_values: !method.merges_rollups(),
        }
    }
}

/// Reusable per-thread state.
pub struct MetricScan<'s> {
    store: &'s StoreView,
    window: Window,
    field: Field,
    absolute: bool,
    anomaly_bit: bool,
    sums_only: bool,
    raw_values: bool,
    kernel: Box<dyn Kernel>,
    /// This metric's statistics were read apart: buckets take sums only.
    sums: Option<Sums>,
    raw: Vec<RawView<'s>>,
    /// Rollup runs per tier (index 0 unused).
    agg: [Vec<AggRun>; TIERS],
    /// Columns of earlier metrics' runs, for reuse.
    spare: Vec<AggColumns>,
    /// `(first_end, last_end)` of each rollup run, beside the runs so that
    /// finding one does not touch their columns.
    agg_ends: [Vec<(i64, i64)>; TIERS],
    cursor: [usize; TIERS],
    scratch: Vec<f64>,
    /// Decoded values of an encoded slice.
    decoded: Vec<f64>,
    /// Per layout piece, its sums, when [`MetricScan::batches`] said so.
    piece_sums: Vec<AggPoint>,
    /// Per layout piece, the rollup points in its sums.
    piece_points: Vec<u64>,
    /// Whether the last [`MetricScan::run`] took its pieces' sums before its bucket loop.
    batched: bool,
    /// The last job layout and update_every [`MetricScan::batches`] looked
    /// at, and whether they allow it.
    layout_batches: Option<((usize, i64), bool)>,
    /// A sealed rollup row's sums and counts, decoded for [`rollup_sums`].
    decoded_agg: AggColumns,
    /// One run's part of the pieces, and their sums.
    ranges: Vec<(usize, usize)>,
    range_sums: Vec<AggPoint>,
    range_piece: Vec<usize>,
}

impl<'s> MetricScan<'s> {
    pub fn new(store: &'s StoreView, window: Window, values: Values, kernel: Box<dyn Kernel>) -> Self {
        MetricScan {
            store,
            window,
            field: values.field,
            absolute: values.absolute,
            anomaly_bit: values.anomaly_bit,
            sums_only: values.sums_only,
            raw_values: values.raw_values,
            kernel,
            sums: None,
            raw: Vec::new(),
            agg: Default::default(),
            spare: Vec::new(),
            agg_ends: Default::default(),
            cursor: [0; TIERS],
            scratch: Vec::new(),
            decoded: Vec::new(),
            piece_sums: Vec::new(),
            piece_points: Vec::new(),
            batched: false,
            layout_batches: None,
            decoded_agg: AggColumns::default(),
            ranges: Vec::new(),
            range_sums: Vec::new(),
            range_piece: Vec::new(),
        }
    }

    /// Whether the last [`MetricScan::run`] took its pieces' sums in one
    /// pass before its bucket loop (tests check that a case reaches it).
    #[cfg(test)]
    pub(crate) fn batched(&self) -> bool {
        self.batched
    }

    /// Unpacks the runs of the tiers `need` names.
    fn load_runs(&mut self, job: &Job, need: [bool; TIERS]) {
        let w = self.window;
        let cfg = *self.store.config();
        self.raw.clear();
        for runs in &mut self.agg {
            for run in runs.drain(..) {
                if let Ok(mut cols) = Rc::try_unwrap(run.cols) {
                    cols.clear();
                    self.spare.push(cols);
                }
            }
        }
        self.agg_ends.iter_mut().for_each(Vec::clear);
        self.cursor = [0; TIERS];
        let (raw, agg, spare) = (&mut self.raw, &mut self.agg, &mut self.spare);
        // Minima and maxima only where the buckets read them.
        let min_max = self.sums.is_none();
        for (t, _) in need.iter().enumerate().filter(|(_, n)| **n) {
            let (lo, hi) = read_range(&w, cfg.resolution(t, job.update_every));
            self.store.for_each_run(job.metric, job.update_every, t, lo, hi, |r| match r.data {
                RowData::Raw { values, valid, anomaly } => raw.push(RawView {
                    first_end: r.first_end,
                    res: r.res,
                    len: r.len,
                    data: RawData::Plain { values, valid, anomaly },
                }),
                RowData::Encoded(row) => {
                    raw.push(RawView { first_end: r.first_end, res: r.res, len: r.len, data: RawData::Encoded(row) })
                }
                RowData::Agg { sum, min, max, count, anomaly_count } => {
                    let cols = continue_run(&mut agg[t], spare, r.first_end, r.res);
                    cols.sum.extend_from_slice(sum);
                    if min_max {
                        cols.min.extend_from_slice(min);
                        cols.max.extend_from_slice(max);
                    }
                    cols.count.extend_from_slice(count);
                    cols.anomaly_count.extend_from_slice(anomaly_count);
                }
                RowData::AggEncoded(rows) => {
                    rows.decode_into(continue_run(&mut agg[t], spare, r.first_end, r.res), min_max)
                }
            });
            let ends = &mut self.agg_ends[t];
            ends.extend(agg[t].iter().map(|r| (r.view().first_end, r.last_end())));
        }
    }

    /// Time-groups `job`'s metric as `reads` lays out; gives up (leaving the
    /// rest empty) when `stop` says so, checked every few thousand buckets.
    pub fn run(&mut self, job: &Job, reads: &MetricReads<'_>, out: &mut MetricOut<'_>, stop: impl Fn() -> bool) {
        let w = self.window;
        out.buckets.reset(w.points);
        let mut need = reads.layout.tiers_read();
        for p in &reads.aged {
            need[p.tier] = true;
        }
        let mode = if reads.pinned_rollup { Mode::Pinned } else { Mode::Exact };
        self.sums = self.stats_apart(job, reads, mode, out);
        let batched = self.batches(job, reads);
        self.batched = batched;
        // Batched rollup pieces are read from the store in place, and their
        // points stand for themselves (no tier-0 fallback).
        self.load_runs(
            job,
            if batched { [need[0], false, false] } else { with_sample_fallback(need, reads.pinned_rollup) },
        );
        let points_before = out.tiers.points;
        self.kernel.reset();
        let mut aged_at = 0;
        if batched {
            self.piece_sums(job, reads);
        }
        for i in (0..w.points.min(PREFETCH_AHEAD)).filter(|_| !batched) {
            self.prefetch(reads.layout.bucket(i));
        }
        // The next bucket's left edge, already derived from a split minute.
        let mut carried: Option<Split> = None;
        let mut closing_from = [false; TIERS];
        for i in 0..w.points {
            if i % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1 && stop() {
                return;
            }
            if i + PREFETCH_AHEAD < w.points && !batched {
                self.prefetch(reads.layout.bucket(i + PREFETCH_AHEAD));
            }
            let e = w.bucket_end(i);
            let s = e - w.view_every;
            let mut b = Bucket { start: s, end: e, ..Default::default() };
            while aged_at < reads.aged.len() && reads.aged[aged_at].to <= s {
                aged_at += 1;
            }
            let aged = if s < reads.aged_before { &reads.aged[aged_at..] } else { &[] };
            for p in aged.iter().take_while(|p| p.from < e) {
                self.read(p.tier, p.from.max(s), p.to.min(e), Mode::Aged, &mut b, out);
            }
            let mut pieces = reads.layout.bucket(i);
            if batched {
                let first = reads.layout.first_piece(i);
                for (k, p) in (first..).zip(pieces) {
                    self.take_piece_sums(k, usize::from(p.tier), &mut b, out);
                }
                pieces = &[];
            }
            if let Some(c) = carried.take() {
                if pieces.first().is_some_and(|p| p.tier == 0 && p.to == c.end) {
                    self.take_split(&c.left, &mut b);
                    pieces = &pieces[1..];
                }
            }
            // Pieces are read in time order (the run cursors only move on).
            let (last, rest) = match pieces.split_last() {
                Some((last, rest)) => (Some(last), rest),
                None => (None, pieces),
            };
            for p in rest {
                self.read(usize::from(p.tier), p.from, p.to, mode, &mut b, out);
            }
            let split = match (last, mode == Mode::Exact && self.sums_only) {
                (Some(last), true) if i + 1 < w.points => self.split_minute(last, reads.layout.bucket(i + 1), out),
                _ => None,
            };
            match (&split, last) {
                (Some(sp), _) => {
                    self.take_split(&sp.right, &mut b);
                    b.last_tier = Some(0);
                }
                (None, Some(p)) => self.read(usize::from(p.tier), p.from, p.to, mode, &mut b, out),
                (None, None) => {}
            }
            // Only a split is moved: `Split` is 136 bytes, and an
            // unconditional move copied it for every bucket (4 % of a 24 h
            // scan of sums, where buckets never split).
            if split.is_some() {
                carried = split;
            }
            if let Some(t) = b.last_tier {
                if let Some(c) = self.closing_value(t, e) {
                    self.kernel.add(c.value);
                    b.count += u64::from(c.count);
                    b.anomalous += u64::from(c.anomalous);
                    if t > 0 {
                        b.approximate = true;
                        out.approximate_tiers[t] = true;
                        closing_from[t] = true;
                    }
                }
            }
            if let Some(v) = self.kernel.flush().filter(|v| v.is_finite()) {
                out.buckets.values[i] = v;
                out.buckets.flags[i] = 0;
            }
            if b.count > 0 {
                out.buckets.arp[i] = b.anomalous as f64 * 100.0 / b.count as f64;
            }
            out.approximate[i] |= b.approximate;
        }
        // A rollup tier that served only values interpolated at bucket
        // ends (a window inside one point reads no point whole) still
        // served: one point, not one per bucket end it was cut at.
        for t in 1..TIERS {
            if closing_from[t] && out.tiers.points[t] == points_before[t] {
                out.tiers.points[t] += 1;
            }
        }
        for ((q, &now), before) in out.tiers.queries.iter_mut().zip(&out.tiers.points).zip(points_before) {
            *q += u64::from(now > before);
        }
    }

    /// Whether the bucket loop takes every piece's sums from
    /// [`MetricScan::piece_sums`], taken before it in one pass per run:
    /// for a scan of sums (statistics apart, no rollup-only history) whose
    /// pieces are all tier 0 in buckets of at least
    /// [`BATCH_MIN_BUCKET_POINTS`] points, or all rollups. A bucket whose
    /// last piece is a rollup must end on that tier's grid: no rollup run
    /// is loaded for the closing value of a point cut by the bucket end.
    /// Exact layouts always pass that check (a rollup piece ends a bucket
    /// only on its grid); it keeps any other layout that took statistics
    /// apart on the per-bucket read.
    fn batches(&mut self, job: &Job, reads: &MetricReads<'_>) -> bool {
        if self.sums.is_none() || !reads.aged.is_empty() {
            return false;
        }
        // What a layout allows depends on it and the update_every alone (a
        // pinned layout serves every update_every): worked out once.
        let key = (job.layout, job.update_every);
        match self.layout_batches {
            Some((k, ok)) if k == key => ok,
            _ => {
                let ok = self.layout_batches(job, reads.layout);
                self.layout_batches = Some((key, ok));
                ok
            }
        }
    }

    /// The part of [`MetricScan::batches`] that depends on the layout alone.
    fn layout_batches(&self, job: &Job, layout: &Layout) -> bool {
        let (w, cfg, pieces) = (self.window, self.store.config(), layout.pieces());
        let res = |tier: u8| cfg.resolution(usize::from(tier), job.update_every).max(1);
        if pieces.iter().all(|p| p.tier == 0) {
            return !pieces.is_empty() && w.view_every >= BATCH_MIN_BUCKET_POINTS * res(0);
        }
        pieces.iter().all(|p| p.tier > 0)
            && (0..w.points).all(|i| layout.bucket(i).last().is_none_or(|p| w.bucket_end(i) % res(p.tier) == 0))
    }

    /// Every layout piece's sums (and, for rollup pieces, how many points
    /// they hold), for [`MetricScan::batches`]: tier 0 run by run
    /// ([`EncodedRow::summarize_sums_of`]), rollups by
    /// [`super::rollup_sums`].
    fn piece_sums(&mut self, job: &Job, reads: &MetricReads<'_>) {
        let pieces = reads.layout.pieces();
        self.piece_sums.clear();
        self.piece_sums.resize(pieces.len(), rollup_sums::EMPTY);
        self.piece_points.clear();
        self.piece_points.resize(pieces.len(), 0);
        let tiers = reads.layout.tiers_read();
        if tiers[0] {
            self.raw_piece_sums(pieces);
        }
        for t in (1..TIERS).filter(|&t| tiers[t]) {
            let sums = (&mut self.piece_sums[..], &mut self.piece_points[..]);
            rollup_sums::take(self.store, (job.metric, job.update_every), t, pieces, sums, &mut self.decoded_agg);
        }
    }

    /// The tier-0 pieces' sums, run by run.
    fn raw_piece_sums(&mut self, pieces: &[Piece]) {
        let mut first = 0;
        for r in &self.raw {
            // Pieces are oldest first: skip those ending before this run.
            while first < pieces.len() && pieces[first].to < r.first_end {
                first += 1;
            }
            self.ranges.clear();
            self.range_sums.clear();
            self.range_piece.clear();
            for (k, p) in pieces.iter().enumerate().skip(first).take_while(|(_, p)| p.from < r.last_end()) {
                if let Some(range) = index_range(r.first_end, r.res, r.len, p.from, p.to) {
                    self.ranges.push(range);
                    self.range_piece.push(k);
                }
            }
            match r.data {
                RawData::Encoded(row) => row.summarize_sums_of(&self.ranges, &mut self.range_sums),
                data => self.range_sums.extend(self.ranges.iter().map(|&(lo, hi)| data.slice(lo, hi).summarize_sums())),
            }
            for (&k, q) in self.range_piece.iter().zip(&self.range_sums) {
                let p = &mut self.piece_sums[k];
                (p.sum, p.count, p.anomaly_count) =
                    (p.sum + q.sum, p.count + q.count, p.anomaly_count + q.anomaly_count);
            }
        }
    }

    /// Layout piece `k` (of `tier`) from [`MetricScan::piece_sums`], as
    /// [`MetricScan::take_raw`] takes a slice of sums and
    /// [`MetricScan::read_points`] a run of rollup points.
    fn take_piece_sums(&mut self, k: usize, tier: usize, b: &mut Bucket, out: &mut MetricOut<'_>) {
        b.last_tier = Some(tier);
        let (Some(sums), p) = (self.sums, self.piece_sums[k]) else { return };
        if tier == 0 {
            self.add_sums(sums, &p, Some((b, out)));
        } else if self.piece_points[k] > 0 {
            out.tiers.points[tier] += self.piece_points[k];
            b.count += u64::from(p.count);
            b.anomalous += u64::from(p.anomaly_count);
            self.kernel.add_agg(&sums.apply(&p));
        }
    }

    /// Tier-0 sums `p` to the time group, and (with `count`) its samples
    /// to the bucket and the tier counts.
    fn add_sums(&mut self, sums: Sums, p: &AggPoint, count: Option<(&mut Bucket, &mut MetricOut<'_>)>) {
        if let Some((b, out)) = count.filter(|_| p.count > 0) {
            tally(p, b, out);
        }
        // A time group of sums takes every aggregate.
        self.kernel.add_agg(&sums.apply(p));
    }

    /// Reads the metric's statistics apart ([`super::stats`]) where the
    /// plan chose pieces for them (time groups of sums and counts over
    /// exact samples only) and says how the buckets then take sums alone.
    /// `None` (statistics from the buckets) without pieces, or where the
    /// absolute rule meets both signs (each slice then needs its own).
    fn stats_apart(&self, job: &Job, reads: &MetricReads<'_>, mode: Mode, out: &mut MetricOut<'_>) -> Option<Sums> {
        let pieces = reads.stats?;
        debug_assert!(self.sums_only && !self.anomaly_bit && mode == Mode::Exact && reads.aged.is_empty());
        let stats = window_stats(self.store, job.metric, job.update_every, pieces);
        let sums = if !self.absolute || stats.count == 0 || stats.min >= 0.0 {
            Sums::Keep
        } else if stats.max <= 0.0 {
            Sums::Negate
        } else {
            return None;
        };
        out.stats.merge(&stats);
        Some(sums)
    }

    /// A bucket end cuts the rollup minute (or hour) `(a, c]` into this
    /// bucket's last piece `(a, e]` and the next bucket's first `(e, c]`.
    /// For a time group of sums and counts, one side is read from tier 0
    /// and the other is the point minus it: the shorter read. The point
    /// itself goes to the statistics (its min and max cover both sides).
    fn split_minute(&mut self, last: &Piece, next: &[Piece], out: &mut MetricOut<'_>) -> Option<Split> {
        let first = next.first()?;
        if last.tier != 0 || first.tier != 0 || first.from != last.to {
            return None;
        }
        let (a, e, c) = (last.from, last.to, first.to);
        let (j, k) = self.agg_point(1, c)?;
        let p = {
            let r = self.agg[1][j].view();
            if r.first_end + k as i64 * r.res - r.res != a {
                return None;
            }
            r.point(k)
        };
        let q = self.transformed(&p)?;
        let empty = AggPoint { sum: 0.0, min: f64::NAN, max: f64::NAN, count: 0, anomaly_count: 0 };
        if p.count == 0 {
            return Some(Split { right: SplitSide::new(empty, empty), left: SplitSide::new(empty, empty), end: c });
        }
        if self.sums.is_none() {
            out.stats.merge(&PointStats::from(&p));
        }
        out.tiers.points[1] += 1;
        let read_right = e - a <= c - e;
        let (from, to) = if read_right { (a, e) } else { (e, c) };
        let raw = self.summarize_raw(from, to);
        out.tiers.points[0] += u64::from(raw.count);
        let t = self.transformed(&raw).unwrap_or(raw);
        let minus = |whole: &AggPoint, part: &AggPoint| AggPoint {
            sum: whole.sum - part.sum,
            min: f64::NAN,
            max: f64::NAN,
            count: whole.count - part.count,
            anomaly_count: whole.anomaly_count - part.anomaly_count,
        };
        let (read, derived) = (SplitSide::new(raw, t), SplitSide::new(minus(&p, &raw), minus(&q, &t)));
        let (right, left) = if read_right { (read, derived) } else { (derived, read) };
        Some(Split { right, left, end: c })
    }

    /// A side of a split minute: its samples to the bucket, its (possibly
    /// transformed) aggregate to the time group.
    fn take_split(&mut self, side: &SplitSide, b: &mut Bucket) {
        if side.raw.count == 0 {
            return;
        }
        b.count += u64::from(side.raw.count);
        b.anomalous += u64::from(side.raw.anomaly_count);
        self.kernel.add_agg(&side.values);
    }

    /// The aggregate of the tier-0 samples ending in `(from, to]`.
    fn summarize_raw(&mut self, from: i64, to: i64) -> AggPoint {
        let mut acc = AggPoint { sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, count: 0, anomaly_count: 0 };
        let mut j = self.cursor[0];
        while j < self.raw.len() && self.raw[j].last_end() <= from {
            j += 1;
        }
        self.cursor[0] = j;
        while let Some(&r) = self.raw.get(j) {
            if r.first_end > to {
                break;
            }
            if let Some((lo, hi)) = index_range(r.first_end, r.res, r.len, from, to) {
                let slice = r.data.slice(lo, hi);
                let p = if self.sums.is_some() { slice.summarize_sums() } else { slice.summarize() };
                acc = AggPoint {
                    sum: acc.sum + p.sum,
                    min: acc.min.min(p.min),
                    max: acc.max.max(p.max),
                    count: acc.count + p.count,
                    anomaly_count: acc.anomaly_count + p.anomaly_count,
                };
            }
            j += 1;
        }
        acc
    }

    /// The first rollup run of `tier` at or after the cursor whose last
    /// point ends at or after `end` (the bucket loop moves forward, so this
    /// is a step or two).
    #[inline]
    fn agg_run_at(&self, tier: usize, end: i64) -> usize {
        let ends = &self.agg_ends[tier];
        let mut j = self.cursor[tier];
        while j < ends.len() && ends[j].1 < end {
            j += 1;
        }
        j
    }

    /// The run and index of the `tier` point ending at `end`, if held.
    fn agg_point(&self, tier: usize, end: i64) -> Option<(usize, usize)> {
        let j = self.agg_run_at(tier, end);
        let &(first_end, last_end) = self.agg_ends[tier].get(j)?;
        let r = self.agg[tier][j].view();
        let d = end - first_end;
        (d >= 0 && end <= last_end && d % r.res == 0).then_some((j, (d / r.res) as usize))
    }

    /// Starts loading the tier-0 values `pieces` will read. Rollup pieces
    /// are not prefetched: a bucket reads a few consecutive points of each
    /// column, which the hardware prefetcher follows, and measured, their
    /// prefetches cost more than they saved.
    fn prefetch(&self, pieces: &[Piece]) {
        for p in pieces.iter().filter(|p| p.tier == 0) {
            for r in self.raw[self.cursor[0].min(self.raw.len())..].iter().take_while(|r| r.first_end <= p.to) {
                if let Some((lo, hi)) = index_range(r.first_end, r.res, r.len, p.from, p.to) {
                    r.data.slice(lo, hi).prefetch();
                }
            }
        }
    }

    /// Feeds the points of `tier` ending in `(from, to]` to the time group.
    fn read(&mut self, tier: usize, from: i64, to: i64, mode: Mode, b: &mut Bucket, out: &mut MetricOut<'_>) {
        b.last_tier = Some(tier);
        if from >= to {
            return;
        }
        if tier == 0 {
            self.read_raw(from, to, Some((b, out)));
        } else {
            self.read_points(tier, from, to, mode, b, out);
        }
    }

    /// Tier-0 values ending in `(from, to]`; `count` adds them to the bucket
    /// and the statistics (not when they stand in for a rollup point that
    /// was counted already).
    fn read_raw(&mut self, from: i64, to: i64, mut count: Option<(&mut Bucket, &mut MetricOut<'_>)>) {
        let mut j = self.cursor[0];
        while j < self.raw.len() && self.raw[j].last_end() <= from {
            j += 1;
        }
        self.cursor[0] = j;
        while let Some(&r) = self.raw.get(j) {
            if r.first_end > to {
                break;
            }
            if let Some((lo, hi)) = index_range(r.first_end, r.res, r.len, from, to) {
                let counted = count.as_mut().map(|(b, out)| (&mut **b, &mut **out));
                self.take_raw(r.data.slice(lo, hi), counted);
            }
            j += 1;
        }
    }

    /// One tier-0 slice.
    fn take_raw(&mut self, data: RawData<'_>, count: Option<(&mut Bucket, &mut MetricOut<'_>)>) {
        if let Some(sums) = self.sums {
            self.add_sums(sums, &data.summarize_sums(), count);
            return;
        }
        // A time group that orders values (median) takes a gap-free slice of
        // one decimal exponent as its integers: no value is decoded (a
        // division each) but the middle ones, and the statistics come from
        // the packed integers.
        if let (RawData::Encoded(row), true, false, true) =
            (data, self.raw_values, self.anomaly_bit, self.kernel.takes_decimals())
        {
            if let Some(exp) = row.decimal_exp() {
                let absolute = self.absolute;
                if let Some(ints) = self.kernel.decimal_sink(exp) {
                    let from = ints.len();
                    row.decode_decimal_into(ints);
                    if absolute {
                        ints[from..].iter_mut().for_each(|k| *k = k.wrapping_abs());
                    }
                    count_samples(&row.summarize(), count);
                    return;
                }
            }
        }
        // Other time groups of values need them all decoded anyway: decode
        // once and summarise the plain values, as an open span's are,
        // instead of a second pass over the packed ones.
        if let (RawData::Encoded(row), true, false) = (data, self.raw_values, self.anomaly_bit) {
            let mut decoded = std::mem::take(&mut self.decoded);
            decoded.clear();
            row.decode_into(&mut decoded);
            let plain = RawData::Plain { values: &decoded, valid: row.valid_bits(), anomaly: row.anomaly_bits() };
            self.take_raw(plain, count);
            self.decoded = decoded;
            return;
        }
        let p = data.summarize();
        if p.count == 0 {
            return;
        }
        let (valid, anomaly) = (data.valid(), data.anomaly());
        let mut decoded = std::mem::take(&mut self.decoded);
        count_samples(&p, count);
        let q = if self.anomaly_bit {
            anomaly_rates(&p)
        } else if self.absolute && !(p.min >= 0.0 || p.max <= 0.0) {
            // Both signs: |x| one by one (a sealed row on its integers, not decoded).
            match data {
                RawData::Encoded(row) => row.summarize_abs(),
                RawData::Plain { values, .. } => absolute(&p, values, valid),
            }
        } else if self.absolute {
            absolute(&p, &[], valid)
        } else {
            p
        };
        if !self.kernel.add_agg(&q) {
            if self.anomaly_bit {
                self.scratch.clear();
                self.scratch
                    .extend((0..p_len(&data)).map(|k| 100.0 * f64::from(u8::from(anomaly.is_some_and(|a| a.get(k))))));
                self.kernel.add_slice(&self.scratch, valid);
            } else {
                // Decoded only here, where the values themselves are needed.
                let values = data.values(&mut decoded);
                if self.absolute {
                    self.scratch.clear();
                    self.scratch.extend(values.iter().map(|v| v.abs()));
                    self.kernel.add_slice(&self.scratch, valid);
                } else {
                    self.kernel.add_slice(values, valid);
                }
            }
        }
        self.decoded = decoded;
    }

    /// Rollup points ending in `(from, to]`, each merged as the aggregate of
    /// its samples where the time group can.
    fn read_points(&mut self, tier: usize, from: i64, to: i64, mode: Mode, b: &mut Bucket, out: &mut MetricOut<'_>) {
        let mut j = self.agg_run_at(tier, from + 1);
        self.cursor[tier] = j;
        let (mut read, mut approximate, mut unit) = (false, false, 1);
        while self.agg_ends[tier].get(j).is_some_and(|e| e.0 <= to) {
            let run = self.agg[tier][j].clone();
            let r = run.view();
            let Some((lo, hi)) = index_range(r.first_end, r.res, r.count.len(), from, to) else {
                j += 1;
                continue;
            };
            // The slice's points as one aggregate: the statistics and, where
            // the time group merges it, the time group take it at once.
            let (all, points) =
                if self.sums.is_some() { r.combine::<false>(lo, hi) } else { r.combine::<true>(lo, hi) };
            if points > 0 {
                read = true;
                unit = r.res;
                if self.sums.is_none() {
                    out.stats.merge(&PointStats::from(&all));
                }
                out.tiers.points[tier] += points;
                b.count += u64::from(all.count);
                b.anomalous += u64::from(all.anomaly_count);
                if !self.transformed(&all).is_some_and(|q| self.kernel.add_agg(&q)) {
                    approximate |= self.take_points_one_by_one(&r, lo, hi, mode);
                }
            }
            j += 1;
        }
        let cuts = || b.start.rem_euclid(unit) != 0 || b.end.rem_euclid(unit) != 0;
        if read && (approximate || (mode != Mode::Exact && cuts())) {
            b.approximate = true;
            out.approximate_tiers[tier] = true;
        }
    }

    /// What the time group takes of a rollup aggregate: anomaly rates with
    /// `anomaly-bit`, absolute values with `absolute` (`None` when the
    /// aggregate holds both signs).
    fn transformed(&self, p: &AggPoint) -> Option<AggPoint> {
        if let Some(sums) = self.sums {
            Some(sums.apply(p))
        } else if self.anomaly_bit {
            Some(anomaly_rates(p))
        } else if self.absolute {
            absolute_point(p)
        } else {
            Some(*p)
        }
    }

    /// Points `lo..hi` of `r` to the time group one by one (already counted);
    /// returns whether any stood in approximately for its samples.
    fn take_points_one_by_one(&mut self, r: &AggView<'_>, lo: usize, hi: usize, mode: Mode) -> bool {
        let mut approximate = false;
        for k in (lo..hi).filter(|&k| r.count[k] > 0) {
            let p = r.point(k);
            if self.transformed(&p).is_some_and(|q| self.kernel.add_agg(&q)) {
                continue;
            }
            if mode == Mode::Exact {
                let end = r.first_end + k as i64 * r.res;
                self.read_raw(end - r.res, end, None);
            } else {
                let v = r.value(k, self.field);
                self.kernel.add(if self.absolute { v.abs() } else { v });
                approximate = true;
            }
        }
        approximate
    }

    /// The value at bucket end `t` of a `tier` point that starts before `t`
    /// and ends after it (only wider-than-1s points can), linearly
    /// interpolated from the adjacent previous point when both are numbers,
    /// with the point's samples and anomalous samples: the closing point
    /// counts once in the bucket's anomaly rate (spec 4.2). Under the
    /// absolute rule both points are made non-negative first, as every db
    /// point is before time grouping (spec 5.1): the interpolation runs
    /// between magnitudes, not signed values.
    fn closing_value(&self, tier: usize, t: i64) -> Option<Closing> {
        // Points end on multiples of their resolution: none straddles a
        // bucket end that is one (always so at one second).
        let unit =
            if tier == 0 { self.raw.first().map(|r| r.res) } else { self.agg[tier].first().map(|r| r.view().res) };
        if unit.is_none_or(|u| u <= 1 || t.rem_euclid(u) == 0) {
            return None;
        }
        // (first_end, res, len) of the run holding the point, its index, and
        // Netdata's values of it and of its predecessor when adjacent.
        let field = self.field;
        let (res, end, this, prev, count, anomalous) = if tier == 0 {
            let runs = &self.raw;
            let j = self.cursor[0]
                + runs[self.cursor[0].min(runs.len())..].iter().take_while(|r| r.last_end() <= t).count();
            let r = runs.get(j)?;
            if r.res <= 1 {
                return None;
            }
            let k = if r.first_end > t { 0 } else { ((t - r.first_end) / r.res + 1) as usize };
            let end = r.first_end + k as i64 * r.res;
            if end - r.res >= t || !r.is_valid(k) {
                return None;
            }
            let prev = if k > 0 {
                r.is_valid(k - 1).then(|| r.value(k - 1, field))
            } else {
                j.checked_sub(1).and_then(|pj| {
                    let p = &runs[pj];
                    let pk = p.len - 1;
                    (p.last_end() == end - r.res && p.is_valid(pk)).then(|| p.value(pk, field))
                })
            };
            (r.res, end, r.value(k, field), prev, 1, u32::from(r.is_anomalous(k)))
        } else {
            let runs = &self.agg[tier];
            let j = self.agg_run_at(tier, t + 1);
            let r = runs.get(j)?.view();
            if r.res <= 1 {
                return None;
            }
            let k = if r.first_end > t { 0 } else { ((t - r.first_end) / r.res + 1) as usize };
            let end = r.first_end + k as i64 * r.res;
            if end - r.res >= t || r.count[k] == 0 {
                return None;
            }
            let prev = if k > 0 {
                (r.count[k - 1] > 0).then(|| r.value(k - 1, field))
            } else {
                j.checked_sub(1).and_then(|pj| {
                    let p = runs[pj].view();
                    let pk = p.count.len() - 1;
                    (p.last_end() == end - r.res && p.count[pk] > 0).then(|| p.value(pk, field))
                })
            };
            (r.res, end, r.value(k, field), prev, r.count[k], r.anomaly_count[k])
        };
        let magnitude = |v: f64| if self.absolute { v.abs() } else { v };
        let (this, prev) = (magnitude(this), prev.map(magnitude));
        let value = match prev {
            Some(p) => p + (this - p) * (1.0 - (end - t) as f64 / res as f64),
            None => this,
        };
        Some(Closing { value, count, anomalous })
    }
}
