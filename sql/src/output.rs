//! Answer encodings: `json` (`{"columns": [{"name", "type"}], "rows":
//! [{column: value}]}`), `csv` (header line, RFC 4180) and `arrow` (an
//! Arrow IPC stream), each checked against the byte limit.

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder as JsonWriterBuilder};
use serde_json::{json, Value};

use crate::error::SqlError;
use crate::session::SqlAnswer;

/// The formats of `POST /api/v1/sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "json" => Format::Json,
            "csv" => Format::Csv,
            "arrow" => Format::Arrow,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> SqlError {
    SqlError::Internal(format!("encoding the answer: {e}"))
}

/// The answer as `format`, at most `max_bytes` long.
pub fn encode(a: &SqlAnswer, format: Format, max_bytes: usize) -> Result<Vec<u8>, SqlError> {
    let out = match format {
        Format::Json => {
            // Explicit nulls: a SQL NULL is `null` under its key, as
            // infinities and NaN are, not a missing key.
            let mut w = JsonWriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(Vec::new());
            for b in &a.batches {
                w.write(b).map_err(internal)?;
            }
            w.finish().map_err(internal)?;
            let rows_text = w.into_inner();
            let rows: Value =
                if rows_text.is_empty() { json!([]) } else { serde_json::from_slice(&rows_text).map_err(internal)? };
            let columns: Vec<Value> = a
                .schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            serde_json::to_vec(&json!({"columns": columns, "rows": rows})).map_err(internal)?
        }
        Format::Csv => {
            let nested = a.schema.fields().iter().find(|f| {
                matches!(
                    f.data_type(),
                    DataType::List(_)
                        | DataType::LargeList(_)
                        | DataType::FixedSizeList(..)
                        | DataType::ListView(_)
                        | DataType::LargeListView(_)
                        | DataType::Struct(_)
                        | DataType::Map(..)
                        | DataType::Union(..)
                )
            });
            if let Some(f) = nested {
                return Err(SqlError::Invalid(format!(
                    "column '{}' is of type {}, which CSV cannot hold: ask for format json or arrow, or make it \
                     text (e.g. array_to_string({}, ','))",
                    f.name(),
                    f.data_type(),
                    f.name()
                )));
            }
            let mut w = WriterBuilder::new().with_header(true).build(Vec::new());
            if a.batches.is_empty() {
                let names: Vec<&str> = a.schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Ok(format!("{}\n", names.join(",")).into_bytes());
            }
            for b in &a.batches {
                w.write(b).map_err(internal)?;
            }
            w.into_inner()
        }
        Format::Arrow => {
            let mut w = StreamWriter::try_new(Vec::new(), &a.schema).map_err(internal)?;
            for b in &a.batches {
                w.write(b).map_err(internal)?;
            }
            w.finish().map_err(internal)?;
            w.into_inner().map_err(internal)?
        }
    };
    if out.len() > max_bytes {
        return Err(SqlError::TooManyBytes { size: out.len(), limit: max_bytes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;

    fn answer(col: ArrayRef) -> SqlAnswer {
        let schema = Arc::new(Schema::new(vec![Field::new("x", col.data_type().clone(), true)]));
        let b = RecordBatch::try_new(schema.clone(), vec![col]).expect("batch");
        SqlAnswer { schema, batches: vec![b], rows: 2 }
    }

    #[test]
    fn csv_refuses_nested_columns_by_name_and_json_keeps_them() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1), Some(2)]), None]);
        let a = answer(Arc::new(list));
        match encode(&a, Format::Csv, 1 << 20) {
            Err(SqlError::Invalid(m)) => assert!(m.contains("column 'x'") && m.contains("json or arrow"), "{m}"),
            other => panic!("expected a 400, got {other:?}"),
        }
        let json = String::from_utf8(encode(&a, Format::Json, 1 << 20).expect("json")).expect("utf8");
        assert!(json.contains(r#""rows":[{"x":[1,2]},{"x":null}]"#), "{json}");
    }

    #[test]
    fn json_rows_keep_null_keys() {
        let a = answer(Arc::new(Float64Array::from(vec![Some(1.5), None])));
        let json = String::from_utf8(encode(&a, Format::Json, 1 << 20).expect("json")).expect("utf8");
        assert!(json.contains(r#""rows":[{"x":1.5},{"x":null}]"#), "{json}");
        let a = answer(Arc::new(Int64Array::from(vec![Some(1), None])));
        let csv = String::from_utf8(encode(&a, Format::Csv, 1 << 20).expect("csv")).expect("utf8");
        assert_eq!(csv, "x\n1\n\"\"\n", "a NULL is an empty quoted field");
    }
}
