//! A sealed span: an immutable Arrow `RecordBatch`, one row per metric,
//! fixed-size-list columns with null bitmaps for gaps. Tier 0 holds
//! `value`/`anomaly`; tiers 1-2 hold `sum`/`min`/`max`/`count`/`anomaly_count`.
//! The batch is exactly what the persistence layer writes as Arrow IPC.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, FixedSizeListArray, Float64Array, RecordBatch, UInt32Array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema};

use super::bits::BitSlice;
use super::open_span::{Dense, OpenSpan};
use super::row::{RowData, Run};
use crate::error::{EngineError, Result};
use crate::model::MetricId;

#[derive(Debug)]
pub struct Segment {
    pub tier: u8,
    pub start: i64,
    pub res: i64,
    pub points: usize,
    pub batch: RecordBatch,
    rows: HashMap<MetricId, u32>,
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
    Raw { values: Float64Array, anomaly: BooleanArray },
    Agg(Box<AggColumns>),
}

fn list_field(name: &str, child: DataType, n: usize) -> Field {
    Field::new(name, DataType::FixedSizeList(Arc::new(Field::new("item", child, true)), n as i32), false)
}

fn list_of(child: ArrayRef, n: usize) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    let field = Arc::new(Field::new("item", child.data_type().clone(), true));
    Ok(Arc::new(FixedSizeListArray::try_new(field, n as i32, child, None)?))
}

fn bitmap(bytes: Vec<u8>, len: usize) -> NullBuffer {
    NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bytes), 0, len))
}

/// The Arrow schema of a sealed span of `tier` with `n` points per row.
pub fn schema_for(raw: bool, n: usize) -> Schema {
    let mut fields = vec![Field::new("metric_id", DataType::UInt32, false)];
    if raw {
        fields.push(list_field("value", DataType::Float64, n));
        fields.push(list_field("anomaly", DataType::Boolean, n));
    } else {
        for name in ["sum", "min", "max"] {
            fields.push(list_field(name, DataType::Float64, n));
        }
        fields.push(list_field("count", DataType::UInt32, n));
        fields.push(list_field("anomaly_count", DataType::UInt32, n));
    }
    Schema::new(fields)
}

impl Segment {
    /// Seals an open span: its blocks laid out densely, as Arrow columns.
    pub fn seal(tier: u8, span: &OpenSpan) -> Result<Segment> {
        let n = span.points;
        let len = span.ids.len() * n;
        let ids = UInt32Array::from(span.ids.clone());
        let arrow = |source| EngineError::Arrow { tier, source };
        let raw = span.is_raw();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(ids)];
        match span.dense() {
            Dense::Raw { values, valid, anomaly } => {
                let values = Float64Array::new(ScalarBuffer::from(values), Some(bitmap(valid, len)));
                let anomaly = BooleanArray::new(BooleanBuffer::new(Buffer::from_vec(anomaly), 0, len), None);
                columns.push(list_of(Arc::new(values), n).map_err(arrow)?);
                columns.push(list_of(Arc::new(anomaly), n).map_err(arrow)?);
            }
            Dense::Agg { sum, min, max, count, anomaly_count } => {
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
            }
        }
        let batch = RecordBatch::try_new(Arc::new(schema_for(raw, n)), columns).map_err(arrow)?;
        Segment::from_batch(tier, span.start, span.res, batch)
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
        let list =
            |name: &str| batch.column_by_name(name).and_then(|c| c.as_fixed_size_list_opt()).ok_or_else(|| bad(name));
        let f64s = |name: &str| -> Result<Float64Array> {
            list(name)?.values().as_primitive_opt::<Float64Type>().cloned().ok_or_else(|| bad(name))
        };
        let u32s = |name: &str| -> Result<UInt32Array> {
            list(name)?.values().as_primitive_opt::<UInt32Type>().cloned().ok_or_else(|| bad(name))
        };
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
        Ok(Segment { tier, start, res, points, batch, rows, cols })
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
        let mut span = OpenSpan::new(self.start, self.res, self.points, self.tier == 0);
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
        self.rows.get(&m).map(|&r| r as usize)
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Metric `m`'s row, borrowed from the Arrow buffers.
    pub fn run(&self, m: MetricId) -> Option<Run<'_>> {
        let r = *self.rows.get(&m)? as usize;
        let (a, b) = (r * self.points, (r + 1) * self.points);
        // A column without nulls needs no validity checks at all.
        fn bits(n: Option<&NullBuffer>, a: usize) -> Option<BitSlice<'_>> {
            n.filter(|n| n.null_count() > 0).map(|n| BitSlice::new(n.inner().values(), n.inner().offset() + a))
        }
        let data = match &self.cols {
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

    #[test]
    fn sealing_keeps_values_gaps_and_anomalies() {
        let mut s = OpenSpan::new(7200, 1, 3600, true);
        s.write_raw(3, 7200, Some(1.0), false);
        s.write_raw(3, 7202, Some(3.0), true);
        s.write_raw(9, 7201, Some(-2.0), false);
        let seg = Segment::seal(0, &s).expect("seal");
        assert_eq!(seg.batch.num_rows(), 2);
        assert_eq!(seg.batch.schema().field(1).name(), "value");
        let r = seg.run(3).expect("row 3");
        assert!(r.is_valid(0) && !r.is_valid(1) && r.is_valid(2));
        assert_eq!(r.counts(2), (1, 1));
        assert_eq!(r.agg(2).sum, 3.0);
        assert_eq!(seg.run(9).expect("row 9").agg(1).sum, -2.0);
        assert!(seg.run(4).is_none());
    }

    #[test]
    fn sealing_aggregates_marks_empty_points_null() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        s.merge_agg(1, 120, 5.0, true);
        let seg = Segment::seal(1, &s).expect("seal");
        let sum = seg.batch.column_by_name("sum").expect("sum").as_fixed_size_list();
        assert_eq!(sum.values().null_count(), 1439);
        let r = seg.run(1).expect("row");
        assert!(!r.is_valid(0) && r.is_valid(2));
        assert_eq!(r.counts(2), (1, 1));
    }
}
