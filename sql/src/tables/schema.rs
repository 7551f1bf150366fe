//! The columns of strata's tables. One timestamp type everywhere:
//! `Timestamp(Nanosecond, "UTC")` (seconds in storage; the unit costs
//! nothing because `ts` is computed, never stored). Metadata columns are
//! dictionaries: per metric one value and a keys buffer of zeros.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Which table of samples: tier 0 (`samples`), tier 1 (`samples_1m`), tier 2 (`samples_1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Raw,
    Minute,
    Hour,
}

impl Tier {
    pub fn index(self) -> usize {
        match self {
            Tier::Raw => 0,
            Tier::Minute => 1,
            Tier::Hour => 2,
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Tier::Raw => "samples",
            Tier::Minute => "samples_1m",
            Tier::Hour => "samples_1h",
        }
    }
}

/// Columns resolved per metric (at plan time), never per row.
pub const META_COLUMNS: [&str; 6] = ["metric_id", "node", "context", "instance", "dimension", "labels"];

pub fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The metadata part of every samples table.
pub fn meta_fields() -> Vec<Field> {
    let mut f = vec![Field::new("metric_id", DataType::UInt32, false)];
    for name in &META_COLUMNS[1..] {
        f.push(Field::new(*name, dict(), false));
    }
    f
}

pub fn samples_schema(tier: Tier) -> SchemaRef {
    let mut f = meta_fields();
    f.push(Field::new("ts", ts_type(), false));
    match tier {
        Tier::Raw => {
            f.push(Field::new("value", DataType::Float64, true));
            f.push(Field::new("anomalous", DataType::Boolean, true));
        }
        Tier::Minute | Tier::Hour => {
            for name in ["sum", "min", "max"] {
                f.push(Field::new(name, DataType::Float64, true));
            }
            f.push(Field::new("count", DataType::UInt32, false));
            f.push(Field::new("anomaly_count", DataType::UInt32, false));
        }
    }
    Arc::new(Schema::new(f))
}

pub fn metrics_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("metric_id", DataType::UInt32, false),
        s("node"),
        s("hostname"),
        s("context"),
        s("instance"),
        s("instance_name"),
        s("dimension"),
        s("labels"),
        s("units"),
        s("title"),
        s("chart_type"),
        s("family"),
        Field::new("update_every", DataType::Int64, false),
        Field::new("first_ts", ts_type(), true),
        Field::new("last_ts", ts_type(), true),
    ]))
}
