//! Statistics objects (`sts`) and counters (`sl`/`ex`/`qr`/`fl`) with
//! Netdata's short keys; zero counters are omitted.

use serde_json::{json, Map, Value};
use strata_engine::query::result::Counts;
use strata_engine::query::result::PointStats;

use super::round7;

pub fn counts(c: &Counts) -> Option<Value> {
    let mut m = Map::new();
    for (k, v) in [("sl", c.selected), ("ex", c.excluded), ("qr", c.queried), ("fl", c.failed)] {
        if v > 0 {
            m.insert(k.into(), json!(v));
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// `sts` over raw db points; `abs_total` is Σ|sum| of the whole query.
pub fn sts(s: &PointStats, abs_total: f64) -> Option<Value> {
    let avg = s.avg()?;
    let con = if abs_total > 0.0 { s.sum.abs() * 100.0 / abs_total } else { 0.0 };
    Some(json!({
        "min": round7(s.min),
        "max": round7(s.max),
        "avg": round7(avg),
        "arp": round7(s.anomaly_rate()),
        "con": round7(con),
    }))
}

/// Inserts `key: value` when the value exists.
pub fn put(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.into(), v);
    }
}
