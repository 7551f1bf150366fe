//! A sealed span: an immutable Arrow `RecordBatch`, one row per metric.
//! The batch is exactly what the persistence layer writes as Arrow IPC.
//!
//! Layouts ([`Layout`]):
//! - tier 0, encoded (what sealing writes since data format 3): `metric_id`
//!   and `encoded`, one [`codec`] row per metric (values,
//!   gaps and anomaly bits, lossless, about 11 bits a sample on typical
//!   gauges), read in place from the mapped file; the points per row are
//!   in the schema metadata (`strata.points`);
//! - tier 0, plain (format 2 files, still read): fixed-size-list
//!   `value`/`anomaly` columns with a null bitmap for gaps;
//! - tiers 1-2, encoded (format 3): `metric_id` and one codec row per
//!   field (`sum`, `min`, `max`, `count`, `anomaly_count`; the first three
//!   valid where the count is not 0), points in the metadata as above;
//! - tiers 1-2, plain (format 2): fixed-size-list columns of those fields.
//!
//! An encoded tier-0 row also has, in memory only, the running sums its
//! first scan of sums builds ([`SumIndex`]), shared by every later query.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, LargeBinaryArray, RecordBatch, UInt32Array};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema};

use super::bits::{get_bit, BitSlice};
use super::codec::{self, EncodedRow, SumIndex};
use super::open_span::{Dense, OpenSpan};
use super::prefetch;
use super::row::{AggRows, RowData, Run};
use crate::error::{EngineError, Result};
use crate::id_map::IdMap;
use crate::model::MetricId;

#[derive(Debug)]
pub struct Segment {
    pub tier: u8,
    pub start: i64,
    pub res: i64,
    pub points: usize,
    pub batch: RecordBatch,
    rows: IdMap<u32>,
    /// Set when row `r` holds metric `first + r` for every row (metrics
    /// written in id order, the usual case): a row is then found by a
    /// subtraction. A hash lookup costs two cache misses per metric and
    /// segment once the scan has streamed the tables out of cache (perf:
    /// about 6 % of a 24 h automatic-tier query over 1,000 metrics).
    dense_from: Option<MetricId>,
    cols: Columns,
}

#[derive(Debug)]
struct AggColumns {
    sum: Float64Array,
    min: Float64Array,
    max: Float64Array,
    count: UInt32Array,
    anomaly_count: UInt32Array,
}

/// Typed handles to the batch's child arrays (cheap Arc clones), so a row
/// lookup is a slice, not a downcast.
#[derive(Debug)]
enum Columns {
    Raw {
        values: Float64Array,
        anomaly: BooleanArray,
    },
    /// Codec rows, and each row's [`SumIndex`] once a scan of sums built it.
    Encoded(LargeBinaryArray, Box<[OnceLock<SumIndex>]>),
    Agg(Box<AggColumns>),
    AggEncoded(Box<[LargeBinaryArray; 5]>),
}

/// The fields of a rollup point, in column order.
const AGG_FIELDS: [&str; 5] = ["sum", "min", "max", "count", "anomaly_count"];

/// How a segment's columns hold its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Tier 0 as fixed-size lists of `f64` (format 2).
    Raw,
    /// Tier 0 as one codec row per metric (format 3).
    Encoded,
    /// Tiers 1-2 as fixed-size lists (format 2).
    Agg,
    /// Tiers 1-2 as one codec row per field and metric (format 3).
    AggEncoded,
}

/// Schema metadata key of an encoded segment's points per row.
pub const POINTS_KEY: &str = "strata.points";

fn list_field(name: &str, child: DataType, n: usize) -> Field {
    Field::new(name, DataType::FixedSizeList(Arc::new(Field::new("item", child, true)), n as i32), false)
}

#[cfg(test)]
fn list_of(child: ArrayRef, n: usize) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    use arrow_array::FixedSizeListArray;
    let field = Arc::new(Field::new("item", child.data_type().clone(), true));
    Ok(Arc::new(FixedSizeListArray::try_new(field, n as i32, child, None)?))
}

#[cfg(test)]
fn bitmap(bytes: Vec<u8>, len: usize) -> NullBuffer {
    use arrow_buffer::BooleanBuffer;
    NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bytes), 0, len))
}

/// The Arrow schema of a sealed span in `layout` with `n` points per row.
pub fn schema_for(layout: Layout, n: usize) -> Schema {
    let mut fields = vec![Field::new("metric_id", DataType::UInt32, false)];
    match layout {
        Layout::Raw => {
            fields.push(list_field("value", DataType::Float64, n));
            fields.push(list_field("anomaly", DataType::Boolean, n));
        }
        Layout::Encoded => {
            fields.push(Field::new("encoded", DataType::LargeBinary, false));
            let meta = HashMap::from([(POINTS_KEY.to_owned(), n.to_string())]);
            return Schema::new_with_metadata(fields, meta);
        }
        Layout::AggEncoded => {
            fields.extend(AGG_FIELDS.map(|name| Field::new(name, DataType::LargeBinary, false)));
            let meta = HashMap::from([(POINTS_KEY.to_owned(), n.to_string())]);
            return Schema::new_with_metadata(fields, meta);
        }
        Layout::Agg => {
            for name in ["sum", "min", "max"] {
                fields.push(list_field(name, DataType::Float64, n));
            }
            fields.push(list_field("count", DataType::UInt32, n));
            fields.push(list_field("anomaly_count", DataType::UInt32, n));
        }
    }
    Schema::new(fields)
}

/// Values a span is laid out in at a time when sealed (a few rows): the
/// buffers stay in the allocator's heaps and in cache.
const SEAL_CHUNK_VALUES: usize = 1 << 16;

/// A column of codec rows, one per metric, appended a few rows at a time.
struct RowEncoder {
    data: Vec<u8>,
    offsets: Vec<i64>,
}

impl RowEncoder {
    fn new(rows: usize, n: usize) -> RowEncoder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i64);
        RowEncoder { data: Vec::with_capacity(rows * n * 3 / 2 + 64 * rows), offsets }
    }

    /// Appends the rows of a dense chunk (`n` points a row; point `k` of
    /// the chunk is valid and anomalous as `valid(k)`/`anomalous(k)` say).
    fn push(&mut self, values: &[f64], n: usize, valid: impl Fn(usize) -> bool, anomalous: impl Fn(usize) -> bool) {
        for at in (0..values.len()).step_by(n.max(1)) {
            codec::encode_into(&values[at..at + n], |i| valid(at + i), |i| anomalous(at + i), &mut self.data);
            self.offsets.push(self.data.len() as i64);
        }
    }

    fn finish(self) -> ArrayRef {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        Arc::new(LargeBinaryArray::new(offsets, Buffer::from_vec(self.data), None))
    }
}

/// `Some(first)` when `ids` are `first, first + 1, ...` in row order.
fn dense_from(ids: &[MetricId]) -> Option<MetricId> {
    let first = *ids.first()?;
    let consecutive = ids.iter().enumerate().all(|(r, &m)| u64::from(m) == u64::from(first) + r as u64);
    consecutive.then_some(first)
}

/// The rows of `col` if every one is a codec row of `points` points.
fn parse_rows(col: &ArrayRef, points: usize) -> Option<LargeBinaryArray> {
    let rows = col.as_binary_opt::<i64>()?;
    let ok = rows.null_count() == 0
        && (0..rows.len()).all(|r| EncodedRow::parse(rows.value(r)).is_some_and(|e| e.len() == points));
    ok.then(|| rows.clone())
}

impl Segment {
    /// Seals an open span: its blocks laid out densely, as Arrow columns.
    pub fn seal(tier: u8, span: &OpenSpan) -> Result<Segment> {
        Segment::seal_range(tier, span, 0..span.points)
    }

    /// A segment of the span's slots in `range` only (for snapshots: see
    /// [`OpenSpan::held_slots`]); it starts at slot `range.start`, and
    /// [`Segment::to_open_in`] puts it back in its span.
    pub fn seal_range(tier: u8, span: &OpenSpan, range: Range<usize>) -> Result<Segment> {
        let n = range.len();
        let start = span.start + range.start as i64 * span.res;
        let ids = UInt32Array::from(span.ids().to_vec());
        let arrow = |source| EngineError::Arrow { tier, source };
        let layout = if span.is_raw() { Layout::Encoded } else { Layout::AggEncoded };
        let mut columns: Vec<ArrayRef> = vec![Arc::new(ids)];
        let rows = span.rows();
        // One encoder per column: the raw layout has one, the rollups five.
        let mut enc: Vec<RowEncoder> =
            (0..if span.is_raw() { 1 } else { 5 }).map(|_| RowEncoder::new(rows, n)).collect();
        let chunk = (SEAL_CHUNK_VALUES / n.max(1)).max(1);
        // Written over chunk after chunk (see `OpenSpan::dense_rows`).
        let mut dense = Dense::empty(span.is_raw());
        let mut counts: Vec<f64> = Vec::new();
        for first in (0..rows).step_by(chunk) {
            span.dense_rows(first..(first + chunk).min(rows), range.clone(), &mut dense);
            match (&dense, enc.as_mut_slice()) {
                (Dense::Raw { values, valid, anomaly }, [e]) => {
                    e.push(values, n, |k| get_bit(valid, k), |k| get_bit(anomaly, k));
                }
                (Dense::Agg { sum, min, max, count, anomaly_count }, [s, lo, hi, c, a]) => {
                    let filled = |k: usize| count[k] > 0;
                    for (e, v) in [(s, sum), (lo, min), (hi, max)] {
                        e.push(v, n, filled, |_| false);
                    }
                    for (e, v) in [(c, count), (a, anomaly_count)] {
                        counts.clear();
                        counts.extend(v.iter().map(|&c| f64::from(c)));
                        e.push(&counts, n, |_| true, |_| false);
                    }
                }
                _ => {
                    return Err(arrow(arrow_schema::ArrowError::SchemaError("a span laid out unlike its kind".into())))
                }
            }
        }
        columns.extend(enc.into_iter().map(RowEncoder::finish));
        let batch = RecordBatch::try_new(Arc::new(schema_for(layout, n)), columns).map_err(arrow)?;
        Segment::from_batch(tier, start, span.res, batch)
    }

    /// Seals a rollup span in the plain layout of format 2 (for tests of
    /// reading such files).
    #[cfg(test)]
    pub fn seal_plain_agg(tier: u8, span: &OpenSpan) -> Result<Segment> {
        let n = span.points;
        let len = span.ids().len() * n;
        let arrow = |source| EngineError::Arrow { tier, source };
        let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(span.ids().to_vec()))];
        let Dense::Agg { sum, min, max, count, anomaly_count } = span.dense() else {
            return Err(arrow(arrow_schema::ArrowError::SchemaError("a tier-0 span".into())));
        };
        let mut valid = vec![0u8; len.div_ceil(8)];
        for (i, &c) in count.iter().enumerate() {
            super::bits::set_bit(&mut valid, i, c > 0);
        }
        for v in [sum, min, max] {
            let a = Float64Array::new(ScalarBuffer::from(v), Some(bitmap(valid.clone(), len)));
            columns.push(list_of(Arc::new(a), n).map_err(arrow)?);
        }
        for v in [count, anomaly_count] {
            columns.push(list_of(Arc::new(UInt32Array::from(v)), n).map_err(arrow)?);
        }
        let batch = RecordBatch::try_new(Arc::new(schema_for(Layout::Agg, n)), columns).map_err(arrow)?;
        Segment::from_batch(tier, span.start, span.res, batch)
    }

    /// Seals a tier-0 span in the plain layout of format 2 (for tests of
    /// reading such files).
    #[cfg(test)]
    pub fn seal_plain(span: &OpenSpan) -> Result<Segment> {
        let n = span.points;
        let len = span.ids().len() * n;
        let arrow = |source| EngineError::Arrow { tier: 0, source };
        let Dense::Raw { values, valid, anomaly } = span.dense() else {
            return Err(arrow(arrow_schema::ArrowError::SchemaError("not a tier-0 span".into())));
        };
        let values = Float64Array::new(ScalarBuffer::from(values), Some(bitmap(valid, len)));
        let anomaly = BooleanArray::new(arrow_buffer::BooleanBuffer::new(Buffer::from_vec(anomaly), 0, len), None);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(span.ids().to_vec())),
            list_of(Arc::new(values), n).map_err(arrow)?,
            list_of(Arc::new(anomaly), n).map_err(arrow)?,
        ];
        let batch = RecordBatch::try_new(Arc::new(schema_for(Layout::Raw, n)), columns).map_err(arrow)?;
        Segment::from_batch(0, span.start, span.res, batch)
    }

    /// The layout of this segment's columns.
    pub fn layout(&self) -> Layout {
        match self.cols {
            Columns::Raw { .. } => Layout::Raw,
            Columns::Encoded(..) => Layout::Encoded,
            Columns::Agg(_) => Layout::Agg,
            Columns::AggEncoded(_) => Layout::AggEncoded,
        }
    }

    /// Wraps a batch with this module's schema (from `seal`, or read back from disk).
    pub fn from_batch(tier: u8, start: i64, res: i64, batch: RecordBatch) -> Result<Segment> {
        let bad = |what: &str| EngineError::Arrow {
            tier,
            source: arrow_schema::ArrowError::SchemaError(format!("sealed segment: {what}")),
        };
        let ids = batch
            .column_by_name("metric_id")
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| bad("missing metric_id"))?;
        let rows = ids.values().iter().enumerate().map(|(r, &m)| (m, r as u32)).collect();
        let dense_from = dense_from(ids.values());
        let list =
            |name: &str| batch.column_by_name(name).and_then(|c| c.as_fixed_size_list_opt()).ok_or_else(|| bad(name));
        let f64s = |name: &str| -> Result<Float64Array> {
            list(name)?.values().as_primitive_opt::<Float64Type>().cloned().ok_or_else(|| bad(name))
        };
        let u32s = |name: &str| -> Result<UInt32Array> {
            list(name)?.values().as_primitive_opt::<UInt32Type>().cloned().ok_or_else(|| bad(name))
        };
        let encoded = batch.column_by_name(if tier == 0 { "encoded" } else { "sum" });
        if encoded.is_some_and(|c| *c.data_type() == DataType::LargeBinary) {
            let points = batch
                .schema_ref()
                .metadata()
                .get(POINTS_KEY)
                .and_then(|p| p.parse::<usize>().ok())
                .ok_or_else(|| bad("encoded rows without a point count"))?;
            // Each row must be a codec row of exactly that many points; what
            // its frames hold is checked as they are read.
            let column =
                |name: &str| batch.column_by_name(name).and_then(|c| parse_rows(c, points)).ok_or_else(|| bad(name));
            let cols = if tier == 0 {
                let rows = column("encoded")?;
                let index = (0..rows.len()).map(|_| OnceLock::new()).collect();
                Columns::Encoded(rows, index)
            } else {
                let [s, mn, mx, c, a] = AGG_FIELDS;
                Columns::AggEncoded(Box::new([column(s)?, column(mn)?, column(mx)?, column(c)?, column(a)?]))
            };
            return Ok(Segment { tier, start, res, points, batch, rows, dense_from, cols });
        }
        let points = list(if tier == 0 { "value" } else { "sum" })?.value_length() as usize;
        let cols = if tier == 0 {
            let anomaly = list("anomaly")?.values().as_boolean_opt().cloned().ok_or_else(|| bad("anomaly"))?;
            Columns::Raw { values: f64s("value")?, anomaly }
        } else {
            Columns::Agg(Box::new(AggColumns {
                sum: f64s("sum")?,
                min: f64s("min")?,
                max: f64s("max")?,
                count: u32s("count")?,
                anomaly_count: u32s("anomaly_count")?,
            }))
        };
        Ok(Segment { tier, start, res, points, batch, rows, dense_from, cols })
    }

    pub fn span_secs(&self) -> i64 {
        self.res * self.points as i64
    }

    /// The metrics with a row in this segment.
    pub fn metric_ids(&self) -> Vec<MetricId> {
        self.rows.keys().copied().collect()
    }

    /// An open span holding a copy of this segment's data (used to restore
    /// a snapshotted head on recovery).
    pub fn to_open(&self) -> OpenSpan {
        self.to_open_in(self.start, self.points)
    }

    /// Its points written into an open span of `points` points from
    /// `start` (the span a [range](Segment::seal_range) came from).
    pub fn to_open_in(&self, start: i64, points: usize) -> OpenSpan {
        let mut span = OpenSpan::new(start, self.res, points, self.tier == 0);
        let mut ids = self.metric_ids();
        ids.sort_unstable();
        for m in ids {
            let Some(run) = self.run(m) else { continue };
            for i in (0..run.len).filter(|&i| run.is_valid(i)) {
                let p = run.agg(i);
                if self.tier == 0 {
                    span.write_raw(m, run.end_of(i), Some(p.sum), p.anomaly_count > 0);
                } else {
                    span.set_agg(m, run.end_of(i), Some(p));
                }
            }
        }
        span
    }

    pub fn end(&self) -> i64 {
        self.start + self.span_secs()
    }

    /// The row of metric `m` in [`Segment::batch`] (its points are `row * points ..`).
    pub fn row_index(&self, m: MetricId) -> Option<usize> {
        match self.dense_from {
            Some(first) => Some(m.checked_sub(first)? as usize).filter(|&r| r < self.rows.len()),
            None => self.rows.get(&m).map(|&r| r as usize),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Bytes of memory the rows' sum indexes hold (built by scans of sums).
    pub fn sums_index_bytes(&self) -> usize {
        match &self.cols {
            Columns::Encoded(_, index) => index.iter().filter_map(OnceLock::get).map(SumIndex::bytes).sum(),
            _ => 0,
        }
    }

    /// A hint, a step before [`Segment::prefetch_row`]: asks for metric
    /// `m`'s row offsets and index cell, which that step reads. They lie
    /// beside the previous metric's, but a scan's data has pushed those
    /// out of cache by then (perf: most of `prefetch_row`'s time waited
    /// on them).
    pub fn prefetch_slot(&self, m: MetricId) {
        let Columns::Encoded(rows, index) = &self.cols else { return };
        let Some(r) = self.row_index(m) else { return };
        prefetch::slice(rows.value_offsets().get(r..r + 2).unwrap_or_default());
        prefetch::slice(index.get(r..r + 1).unwrap_or_default());
    }

    /// A hint: asks for what a scan reads first in metric `m`'s codec row
    /// (its header and, `with_index` and once built, its sums index), so
    /// that it is in cache when the scan reaches the metric; best a metric
    /// after [`Segment::prefetch_slot`].
    pub fn prefetch_row(&self, m: MetricId, with_index: bool) {
        let Columns::Encoded(rows, index) = &self.cols else { return };
        let Some(r) = self.row_index(m).filter(|&r| r < rows.len()) else { return };
        let blob = rows.value(r);
        prefetch::slice(&blob[..blob.len().min(64)]);
        if let Some(index) = index.get(r).and_then(OnceLock::get).filter(|_| with_index) {
            index.prefetch();
        }
    }

    /// Metric `m`'s row, borrowed from the Arrow buffers.
    pub fn run(&self, m: MetricId) -> Option<Run<'_>> {
        let r = self.row_index(m)?;
        let (a, b) = (r * self.points, (r + 1) * self.points);
        // A column without nulls needs no validity checks at all.
        fn bits(n: Option<&NullBuffer>, a: usize) -> Option<BitSlice<'_>> {
            n.filter(|n| n.null_count() > 0).map(|n| BitSlice::new(n.inner().values(), n.inner().offset() + a))
        }
        let data = match &self.cols {
            Columns::Encoded(rows, index) => {
                RowData::Encoded(EncodedRow::parse(rows.value(r))?.with_sums_index(index.get(r)?))
            }
            Columns::AggEncoded(c) => {
                let [sum, min, max, count, anomaly_count] = [0, 1, 2, 3, 4].map(|k| EncodedRow::parse(c[k].value(r)));
                RowData::AggEncoded(AggRows {
                    sum: sum?,
                    min: min?,
                    max: max?,
                    count: count?,
                    anomaly_count: anomaly_count?,
                })
            }
            Columns::Raw { values, anomaly } => RowData::Raw {
                values: &values.values()[a..b],
                valid: bits(values.nulls(), a),
                anomaly: Some(BitSlice::new(anomaly.values().values(), anomaly.values().offset() + a)),
            },
            Columns::Agg(c) => RowData::Agg {
                sum: &c.sum.values()[a..b],
                min: &c.min.values()[a..b],
                max: &c.max.values()[a..b],
                count: &c.count.values()[a..b],
                anomaly_count: &c.anomaly_count.values()[a..b],
            },
        };
        Some(Run { first_end: self.start, res: self.res, len: self.points, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::AggPoint;

    #[test]
    fn sealing_keeps_values_gaps_and_anomalies() {
        let mut s = OpenSpan::new(7200, 1, 3600, true);
        s.write_raw(3, 7200, Some(1.0), false);
        s.write_raw(3, 7202, Some(3.0), true);
        s.write_raw(9, 7201, Some(-2.0), false);
        for seg in [Segment::seal(0, &s).expect("seal"), Segment::seal_plain(&s).expect("seal plain")] {
            assert_eq!(seg.batch.num_rows(), 2);
            let r = seg.run(3).expect("row 3");
            assert!(r.is_valid(0) && !r.is_valid(1) && r.is_valid(2));
            assert_eq!(r.counts(2), (1, 1));
            assert_eq!(r.agg(2).sum, 3.0);
            assert_eq!(seg.run(9).expect("row 9").agg(1).sum, -2.0);
            assert!(seg.run(4).is_none());
            assert_eq!(seg.points, 3600);
        }
        let seg = Segment::seal(0, &s).expect("seal");
        assert_eq!((seg.layout(), seg.batch.schema().field(1).name().as_str()), (Layout::Encoded, "encoded"));
    }

    /// A sealed row's sums come through its index once a scan of sums
    /// asked for them (the same answer as the plain layout's), and only
    /// that row's index is built.
    #[test]
    fn sums_of_sealed_rows_build_their_own_index() {
        let mut s = OpenSpan::new(7200, 1, 3600, true);
        for t in 7201..=10_800 {
            s.write_raw(3, t, Some((t % 977) as f64 / 100.0), false);
            s.write_raw(4, t, Some(1.5), false);
        }
        let (seg, plain) = (Segment::seal(0, &s).expect("seal"), Segment::seal_plain(&s).expect("seal plain"));
        assert_eq!(seg.sums_index_bytes(), 0);
        let Some(RowData::Encoded(row)) = seg.run(3).map(|r| r.data) else { panic!("an encoded row") };
        let Some(RowData::Raw { values, .. }) = plain.run(3).map(|r| r.data) else { panic!("a plain row") };
        let got = row.slice(100, 3000).summarize_sums();
        let want: f64 = values[100..3000].iter().sum();
        assert_eq!(got.count, 2900);
        assert!((got.sum - want).abs() <= 1e-9 * want.abs(), "{} vs {want}", got.sum);
        // The span's first slot is a gap: the row keeps validity bits.
        assert_eq!(
            seg.sums_index_bytes(),
            4 * 32 * 8 + 4 * 24 + 58 * 4,
            "4 frames of 32 checkpoints and a header, 57 words' counts, row 3 alone"
        );
        // A prefetch is a hint: it builds no index, and a metric without a
        // row (or a plain segment) is no error.
        let built = seg.sums_index_bytes();
        for m in [3, 4, 99] {
            seg.prefetch_slot(m);
            seg.prefetch_row(m, true);
        }
        plain.prefetch_slot(3);
        plain.prefetch_row(3, true);
        assert_eq!(seg.sums_index_bytes(), built, "row 4's index is not built by a hint");
    }

    /// Rows are found whatever order the metrics were written in: by
    /// subtraction when row r holds metric first + r, by the map otherwise.
    #[test]
    fn rows_are_found_in_any_write_order() {
        for (order, dense) in
            [(vec![5u32, 6, 7, 8], Some(5)), (vec![8, 5, 7], None), (vec![5, 6, 8], None), (vec![0], Some(0))]
        {
            let mut s = OpenSpan::new(7200, 1, 3600, true);
            for &m in &order {
                s.write_raw(m, 7201, Some(f64::from(m) * 10.0), false);
            }
            let seg = Segment::seal(0, &s).expect("seal");
            assert_eq!(seg.dense_from, dense, "{order:?}");
            for &m in &order {
                assert_eq!(seg.run(m).expect("a written metric").agg(1).sum, f64::from(m) * 10.0, "{order:?}");
                let row = seg.row_index(m).expect("its row");
                assert_eq!(seg.batch.column(0).as_primitive::<UInt32Type>().value(row), m);
            }
            for absent in (0..12).filter(|m| !order.contains(m)) {
                assert!(seg.run(absent).is_none() && seg.row_index(absent).is_none(), "{absent} in {order:?}");
            }
        }
    }

    #[test]
    fn sealing_aggregates_marks_empty_points_null() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        s.merge_agg(1, 120, 5.0, true);
        let plain = Segment::seal_plain_agg(1, &s).expect("seal plain");
        let sum = plain.batch.column_by_name("sum").expect("sum").as_fixed_size_list();
        assert_eq!(sum.values().null_count(), 1439);
        let seg = Segment::seal(1, &s).expect("seal");
        assert_eq!(seg.layout(), Layout::AggEncoded);
        for seg in [seg, plain] {
            let r = seg.run(1).expect("row");
            assert!(!r.is_valid(0) && r.is_valid(2));
            assert_eq!(r.counts(2), (1, 1));
            assert_eq!(r.agg(2), AggPoint { sum: 5.0, min: 5.0, max: 5.0, count: 1, anomaly_count: 1 });
            assert_eq!((0..1440).filter(|&i| r.is_valid(i)).count(), 1);
        }
    }

    /// A day of per-minute rollups of a gauge in hundredths: minima, maxima
    /// and counts pack tightly; sums fall back to raw frames where the
    /// float sum is not a short decimal.
    #[test]
    fn encoded_rollups_are_smaller_than_plain() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        for m in 0..50u32 {
            for t in 1..=86_400i64 / 4 {
                let v = ((40.0 + 10.0 * ((t * 4 + i64::from(m)) as f64 / 900.0).sin()) * 100.0).round() / 100.0;
                s.merge_agg(m, t * 4, v, false);
            }
        }
        let (enc, plain) = (Segment::seal(1, &s).expect("seal"), Segment::seal_plain_agg(1, &s).expect("plain"));
        let encoded: usize = AGG_FIELDS
            .iter()
            .map(|f| enc.batch.column_by_name(f).expect("field").as_binary::<i64>().values().len())
            .sum();
        let plain_bytes = 50 * 1440 * (3 * 8 + 2 * 4);
        // Sums stay 8 bytes; minima, maxima and counts shrink to a few bits.
        assert!(encoded * 2 < plain_bytes, "{encoded} vs {plain_bytes}");
        eprintln!("rollups: {:.1} bytes a point encoded, 32 plain", encoded as f64 / (50.0 * 1440.0));
        for m in [0, 49] {
            let (a, b) = (enc.run(m).expect("row"), plain.run(m).expect("row"));
            for i in (0..1440).step_by(37) {
                let (p, q) = (a.agg(i), b.agg(i));
                assert_eq!((p.sum.to_bits(), p.min, p.max, p.count), (q.sum.to_bits(), q.min, q.max, q.count));
            }
        }
    }
}
