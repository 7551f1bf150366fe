//! Typed, null-aware views of one record batch's columns, checked once per
//! batch so the per-row loop only indexes.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampSecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::error::{EngineError, Result};

fn col_err(name: &str, msg: impl Into<String>) -> EngineError {
    EngineError::batch(format!("columns.{name}"), msg)
}

/// A string column: plain, large, view, or dictionary-encoded.
pub enum StrCol<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Dict { keys: Vec<usize>, key_nulls: &'a dyn Array, values: Box<StrCol<'a>> },
}

impl<'a> StrCol<'a> {
    fn new(name: &str, a: &'a ArrayRef) -> Result<Self> {
        Self::from_dyn(name, a.as_ref())
    }

    fn from_dyn(name: &str, a: &'a dyn Array) -> Result<Self> {
        match a.data_type() {
            DataType::Utf8 => Ok(StrCol::Utf8(a.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(StrCol::Large(a.as_string::<i64>())),
            DataType::Utf8View => Ok(StrCol::View(a.as_string_view())),
            DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                let d = a.as_any_dictionary_opt().ok_or_else(|| col_err(name, "dictionary column is unreadable"))?;
                let values = Box::new(Self::from_dyn(name, d.values().as_ref())?);
                // normalized_keys panics on an empty dictionary; then every key must be null.
                let keys = if d.values().is_empty() { vec![0; d.len()] } else { d.normalized_keys() };
                Ok(StrCol::Dict { keys, key_nulls: d.keys(), values })
            }
            other => {
                Err(col_err(name, format!("'{name}' must be a string or dictionary-of-string column, got {other}")))
            }
        }
    }

    /// The dictionary key at `row` (`usize::MAX` for null); None when the
    /// column is not dictionary-encoded. Equal keys mean equal strings.
    pub fn key(&self, row: usize) -> Option<usize> {
        match self {
            StrCol::Dict { keys, key_nulls, .. } if key_nulls.is_null(row) => Some(usize::MAX),
            StrCol::Dict { keys, .. } => keys.get(row).copied(),
            _ => None,
        }
    }

    /// The value at `row`; None for null.
    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            StrCol::Large(a) => (!a.is_null(row)).then(|| a.value(row)),
            StrCol::View(a) => (!a.is_null(row)).then(|| a.value(row)),
            StrCol::Dict { keys, key_nulls, values } => {
                if key_nulls.is_null(row) {
                    None
                } else {
                    keys.get(row).and_then(|&k| values.get(k))
                }
            }
        }
    }
}

/// The timestamp column: int64 seconds or timestamp(second).
pub enum TsCol<'a> {
    Int(&'a PrimitiveArray<Int64Type>),
    Timestamp(&'a PrimitiveArray<TimestampSecondType>),
}

impl TsCol<'_> {
    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            TsCol::Int(a) => (!a.is_null(row)).then(|| a.value(row)),
            TsCol::Timestamp(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// The columns of one record batch, looked up by name.
pub struct Columns<'a> {
    pub node: Option<StrCol<'a>>,
    pub context: StrCol<'a>,
    pub instance: Option<StrCol<'a>>,
    pub dimension: StrCol<'a>,
    pub ts: TsCol<'a>,
    pub value: &'a Float64Array,
    pub anomalous: Option<&'a BooleanArray>,
    pub update_every: Option<&'a PrimitiveArray<Int64Type>>,
    pub units: Option<StrCol<'a>>,
    pub title: Option<StrCol<'a>>,
    pub chart_type: Option<StrCol<'a>>,
}

impl<'a> Columns<'a> {
    /// The metric's identity at `row` as dictionary keys, when every name
    /// column present is dictionary-encoded: rows with equal keys belong to
    /// the same series, without comparing strings.
    pub fn ident(&self, row: usize) -> Option<[usize; 4]> {
        let opt = |c: &Option<StrCol>| c.as_ref().map_or(Some(usize::MAX), |c| c.key(row));
        Some([opt(&self.node)?, self.context.key(row)?, opt(&self.instance)?, self.dimension.key(row)?])
    }

    pub fn of(rb: &'a RecordBatch) -> Result<Self> {
        let schema = rb.schema_ref();
        for f in schema.fields() {
            if !super::COLUMNS.contains(&f.name().as_str()) {
                return Err(col_err(
                    f.name(),
                    format!("unknown column '{}' (known: {})", f.name(), super::COLUMNS.join(", ")),
                ));
            }
        }
        let find = |name: &str| schema.index_of(name).ok().map(|i| rb.column(i));
        let need = |name: &str| find(name).ok_or_else(|| col_err(name, format!("column '{name}' is required")));
        let str_opt = |name: &str| find(name).map(|a| StrCol::new(name, a)).transpose();
        let ts = need("ts")?;
        let ts = match ts.data_type() {
            DataType::Int64 => TsCol::Int(ts.as_primitive()),
            DataType::Timestamp(TimeUnit::Second, _) => TsCol::Timestamp(ts.as_primitive()),
            other => return Err(col_err("ts", format!("'ts' must be int64 epoch seconds, got {other}"))),
        };
        let value = need("value")?;
        let value = value
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| col_err("value", format!("'value' must be float64, got {}", value.data_type())))?;
        let anomalous = find("anomalous")
            .map(|a| {
                a.as_boolean_opt()
                    .ok_or_else(|| col_err("anomalous", format!("'anomalous' must be bool, got {}", a.data_type())))
            })
            .transpose()?;
        let update_every = find("update_every")
            .map(|a| {
                a.as_primitive_opt::<Int64Type>().ok_or_else(|| {
                    col_err("update_every", format!("'update_every' must be int64, got {}", a.data_type()))
                })
            })
            .transpose()?;
        Ok(Columns {
            node: str_opt("node")?,
            context: StrCol::new("context", need("context")?)?,
            instance: str_opt("instance")?,
            dimension: StrCol::new("dimension", need("dimension")?)?,
            ts,
            value,
            anomalous,
            update_every,
            units: str_opt("units")?,
            title: str_opt("title")?,
            chart_type: str_opt("chart_type")?,
        })
    }
}
