//! Answer encodings: `json` (`{"columns": [{"name", "type"}], "rows":
//! [{column: value}]}`), `csv` (header line, RFC 4180) and `arrow` (an
//! Arrow IPC stream), each checked against the byte limit.

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::ArrayWriter;
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
            let mut w = ArrayWriter::new(Vec::new());
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
