//! A small store for the format modules' tests.

use std::sync::atomic::AtomicI64;

use serde_json::{json, Value};
use strata_engine::ingest::IngestBatch;
use strata_engine::query::body::parse_body;
use strata_engine::query::result::QueryResult;
use strata_engine::query::ApiVersion;
use strata_engine::{Clock, Engine, EngineConfig};

/// The newest sample's time.
pub const NOW: i64 = 1_700_010_000;

/// Five series over 20 minutes, one with a 300 s gap (empty buckets) and
/// values that round at the 7th decimal.
pub fn engine() -> Engine {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(NOW + 1)));
    let series: Vec<Value> = (0..5)
        .map(|k| {
            let points: Vec<Value> = (NOW - 1199..=NOW)
                .filter(|t| k != 3 || !(NOW - 599..=NOW - 300).contains(t))
                .map(|t| json!([t, (t % 97) as f64 * 1.234_567_89 - 40.0 + f64::from(k) / 3.0]))
                .collect();
            json!({"node": "n", "context": "c.x", "instance": "c.x", "dimension": format!("d{k}"),
                   "units": "u", "update_every": 1, "points": points})
        })
        .collect();
    let batch: IngestBatch = serde_json::from_value(json!({"series": series})).expect("batch");
    e.ingest(&batch).expect("ingest");
    e
}

/// Runs a v3 body on `e`.
pub fn query(e: &Engine, body: Value) -> QueryResult {
    e.query(&parse_body(ApiVersion::V3, &body).expect("request")).expect("query")
}
