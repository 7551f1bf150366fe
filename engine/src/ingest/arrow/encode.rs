//! [`IngestBatch`] -> Arrow IPC stream in the long schema of the module
//! docs, for clients (`strata ingest`, bench-peer) and tests. Strings are
//! dictionary-encoded, so a metric's names cost a few bytes per row.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};

use crate::error::{EngineError, Result};
use crate::ingest::IngestBatch;

fn arrow_err(source: arrow_schema::ArrowError) -> EngineError {
    EngineError::Arrow { tier: 0, source }
}

/// Encodes `batch` as one Arrow IPC stream (one record batch). Node
/// metadata and labels are not carried (see the module docs).
pub fn encode_stream(batch: &IngestBatch) -> Result<Vec<u8>> {
    let rows: usize = batch.series.iter().map(|s| s.points.len()).sum();
    let dict = StringDictionaryBuilder::<Int32Type>::new;
    let (mut node, mut context, mut instance, mut dimension) = (dict(), dict(), dict(), dict());
    let (mut ts, mut value, mut anomalous) =
        (Int64Builder::with_capacity(rows), Float64Builder::with_capacity(rows), BooleanBuilder::with_capacity(rows));
    let with_ue = batch.series.iter().any(|s| s.update_every.is_some());
    let mut ue = Int64Builder::with_capacity(if with_ue { rows } else { 0 });
    for s in &batch.series {
        let n = s.points.len();
        match s.node.as_deref() {
            Some(v) => node.append_values(v, n),
            None => node.append_nulls(n),
        }
        context.append_values(&s.context, n);
        instance.append_values(s.instance.as_deref().unwrap_or(&s.context), n);
        dimension.append_values(&s.dimension, n);
        for p in &s.points {
            ts.append_value(p.t);
            value.append_option(p.value);
            anomalous.append_value(p.anomalous);
        }
        match s.update_every {
            Some(v) if with_ue => ue.append_value_n(v, n),
            None if with_ue => ue.append_nulls(n),
            _ => {}
        }
    }
    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let mut fields = vec![
        Field::new("node", dict_type.clone(), true),
        Field::new("context", dict_type.clone(), false),
        Field::new("instance", dict_type.clone(), false),
        Field::new("dimension", dict_type, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("anomalous", DataType::Boolean, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(node.finish()),
        Arc::new(context.finish()),
        Arc::new(instance.finish()),
        Arc::new(dimension.finish()),
        Arc::new(ts.finish()),
        Arc::new(value.finish()),
        Arc::new(anomalous.finish()),
    ];
    if with_ue {
        fields.push(Field::new("update_every", DataType::Int64, true));
        cols.push(Arc::new(ue.finish()));
    }
    let schema = Arc::new(Schema::new(fields));
    let rb = RecordBatch::try_new(schema.clone(), cols).map_err(arrow_err)?;
    let mut out = Vec::with_capacity(rows * 18 + 1024);
    let mut w = StreamWriter::try_new(&mut out, &schema).map_err(arrow_err)?;
    w.write(&rb).map_err(arrow_err)?;
    w.finish().map_err(arrow_err)?;
    drop(w);
    Ok(out)
}
