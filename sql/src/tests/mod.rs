//! The SQL surface against the JSON API's engine on the same data: every
//! `nd_*` function (through the pushdown and through plain DataFusion),
//! `nd_query`, the tables, and the node allowlist by every route.

mod abandoned;
mod allowlist;
mod functions;
mod tables;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampNanosecondType};
use datafusion::arrow::util::display::array_value_to_string;
use serde_json::{json, Value};
use strata_engine::index::SimplePattern;
use strata_engine::ingest::IngestBatch;
use strata_engine::{Clock, Engine, EngineConfig};

use crate::session::{SqlEngine, SqlLimits};

/// Start of the data: a multiple of 3600, so hours seal on their edges.
pub const T0: i64 = 1_763_899_200;
/// Three hours of per-second data (two sealed hours and an open one).
pub const HOURS: i64 = 3;
pub const END: i64 = T0 + HOURS * 3600 - 600;

/// A deterministic value: both signs, repeats, some gaps (None).
fn value(m: usize, t: i64) -> Option<f64> {
    let x = (t * 7919 + m as i64 * 104_729) % 1000;
    if x % 97 == 0 {
        return None;
    }
    let v = ((x % 200) as f64 - if m.is_multiple_of(2) { 20.0 } else { 100.0 }) / 4.0;
    Some(if x % 13 == 0 { 3.0 } else { v })
}

pub const NODES: [&str; 2] = ["n1", "n2"];
pub const DIMS: [&str; 2] = ["d1", "d2"];

/// An engine holding 2 nodes x 2 dimensions of `t.c`, ingested hour by hour.
pub fn engine() -> Arc<Engine> {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(END + 60)));
    let mut t = T0 + 1;
    while t <= END {
        let to = (t + 1799).min(END);
        let mut series = Vec::new();
        for (ni, n) in NODES.iter().enumerate() {
            for (di, d) in DIMS.iter().enumerate() {
                let m = ni * 2 + di;
                let points: Vec<Value> = (t..=to).map(|s| json!([s, value(m, s)])).collect();
                series.push(json!({
                    "node": n, "context": "t.c", "instance": format!("t.c.{n}"), "dimension": d,
                    "units": "u", "labels": {"disk": format!("sd{ni}")}, "points": points,
                }));
            }
        }
        let batch: IngestBatch = serde_json::from_value(json!({"series": series})).expect("batch");
        e.ingest(&batch).expect("ingest");
        t = to + 1;
    }
    Arc::new(e)
}

pub fn sql_engine(e: &Arc<Engine>) -> SqlEngine {
    SqlEngine::new(e.clone(), SqlLimits::default()).expect("sql engine")
}

pub fn allow(nodes: &str) -> Option<SimplePattern> {
    Some(SimplePattern::parse_get(nodes).expect("pattern"))
}

/// A timestamp literal for epoch seconds.
pub fn ts(secs: i64) -> String {
    format!("to_timestamp_seconds({secs})")
}

/// Rows as strings per column, for simple checks.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns().iter().map(|c| array_value_to_string(c, r).unwrap_or_else(|e| format!("<{e}>"))).collect(),
            );
        }
    }
    out
}

/// (node, dimension, bucket end in seconds) -> value, from the answer's
/// columns `node`, `dimension`, `b` and `v`.
pub fn keyed(batches: &[RecordBatch]) -> BTreeMap<(String, String, i64), Option<f64>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let col = |n: &str| b.column_by_name(n).unwrap_or_else(|| panic!("no column {n}")).clone();
        let (node, dim, bucket, v) = (col("node"), col("dimension"), col("b"), col("v"));
        let bucket = bucket.as_primitive::<TimestampNanosecondType>();
        let v = v.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let key = (
                array_value_to_string(&node, r).expect("node"),
                array_value_to_string(&dim, r).expect("dim"),
                bucket.value(r) / 1_000_000_000,
            );
            out.insert(key, v.is_valid(r).then(|| v.value(r)));
        }
    }
    out
}
