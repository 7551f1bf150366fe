//! [`IngestBatch`] -> Arrow IPC stream in the long schema of the module
//! docs, for clients (bench-peer) and tests. The name
//! columns and `update_every` are run-end-encoded (the names' runs over a
//! dictionary) where a series has several points: its rows are adjacent,
//! so its names and update_every cost a few bytes per series, not per row,
//! and the body is about its times and values (16 bytes a sample; names as
//! a dictionary per row took 16 more, with update_every 24). Where a
//! column's runs average under four rows (a point or a few per series) it
//! is a dictionary per row instead.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder};
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, RunArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Field, Schema};

use crate::error::{EngineError, Result};
use crate::ingest::IngestBatch;

fn arrow_err(source: arrow_schema::ArrowError) -> EngineError {
    EngineError::Arrow { tier: 0, source }
}

/// Runs of equal adjacent values, built a series (`n` rows) at a time.
struct RunsOf<T> {
    ends: Vec<i32>,
    values: Vec<T>,
    rows: usize,
}

impl<T: PartialEq> RunsOf<T> {
    fn new() -> Self {
        RunsOf { ends: Vec::new(), values: Vec::new(), rows: 0 }
    }

    fn push(&mut self, v: T, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.rows += n;
        let end = i32::try_from(self.rows).map_err(|_| EngineError::batch("stream", "more than 2^31 rows"))?;
        match (self.values.last(), self.ends.last_mut()) {
            (Some(last), Some(e)) if *last == v => *e = end,
            _ => {
                self.values.push(v);
                self.ends.push(end);
            }
        }
        Ok(())
    }

    /// The column: run-end-encoded where runs average four rows or more;
    /// else (rows in time order: runs of a row or a few) `values` of every
    /// row, which is about as small and decodes faster (no run lookups).
    fn finish(self, values: impl FnOnce(Vec<T>) -> ArrayRef) -> Result<ArrayRef>
    where
        T: Clone,
    {
        if self.ends.len() * 4 > self.rows {
            let mut from = 0;
            let mut each = Vec::with_capacity(self.rows);
            for (end, v) in self.ends.iter().zip(self.values) {
                let end = *end as usize;
                each.extend(std::iter::repeat_n(v, end - from));
                from = end;
            }
            return Ok(values(each));
        }
        let ends = Int32Array::from(self.ends);
        Ok(Arc::new(RunArray::<Int32Type>::try_new(&ends, values(self.values).as_ref()).map_err(arrow_err)?))
    }
}

/// Encodes `batch` as one Arrow IPC stream (one record batch). Node
/// metadata, labels, units, titles and chart types are not carried (see
/// the module docs).
pub fn encode_stream(batch: &IngestBatch) -> Result<Vec<u8>> {
    let rows: usize = batch.series.iter().map(|s| s.points.len()).sum();
    let (mut node, mut context, mut instance, mut dimension) =
        (RunsOf::new(), RunsOf::new(), RunsOf::new(), RunsOf::new());
    let (mut ts, mut value, mut anomalous) =
        (Int64Builder::with_capacity(rows), Float64Builder::with_capacity(rows), BooleanBuilder::with_capacity(rows));
    let with_ue = batch.series.iter().any(|s| s.update_every.is_some());
    let mut ue = RunsOf::new();
    for s in &batch.series {
        let n = s.points.len();
        node.push(s.node.as_deref(), n)?;
        context.push(Some(s.context.as_str()), n)?;
        instance.push(Some(s.instance.as_deref().unwrap_or(&s.context)), n)?;
        dimension.push(Some(s.dimension.as_str()), n)?;
        if with_ue {
            ue.push(s.update_every, n)?;
        }
        for p in &s.points {
            ts.append_value(p.t);
            value.append_option(p.value);
            anomalous.append_value(p.anomalous);
        }
    }
    // Each run's string as a dictionary key: a metric's names keep one key
    // across runs (rows in time order are runs of one row each), so the
    // decoder finds its series by keys, not by hashing the strings.
    let strings =
        |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(v.into_iter().collect::<DictionaryArray<Int32Type>>()) };
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        ("node", node.finish(strings)?),
        ("context", context.finish(strings)?),
        ("instance", instance.finish(strings)?),
        ("dimension", dimension.finish(strings)?),
        ("ts", Arc::new(ts.finish())),
        ("value", Arc::new(value.finish())),
        ("anomalous", Arc::new(anomalous.finish())),
    ];
    if with_ue {
        cols.push(("update_every", ue.finish(|v| Arc::new(Int64Array::from(v)))?));
    }
    let required = ["context", "dimension", "ts", "anomalous"];
    let fields: Vec<Field> =
        cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), !required.contains(n))).collect();
    let schema = Arc::new(Schema::new(fields));
    let rb = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).map_err(arrow_err)?;
    let mut out = Vec::with_capacity(rows * 18 + 1024);
    let mut w = StreamWriter::try_new(&mut out, &schema).map_err(arrow_err)?;
    w.write(&rb).map_err(arrow_err)?;
    w.finish().map_err(arrow_err)?;
    drop(w);
    Ok(out)
}
