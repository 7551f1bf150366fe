//! The JSON ingest batch, exactly as `POST /api/v1/ingest` receives it
//! (see `shared/spec/cli-and-ingest.md`). Deserialisation only checks shapes;
//! `validate` checks meaning, so a bad batch is refused before anything is applied.

use std::collections::BTreeMap;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole ingest batch: optional node metadata plus series with points.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub series: Vec<SeriesSpec>,
}

/// Node metadata (upserted).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The node's machine GUID (`mg`), a lowercase UUID; derived from `id`
    /// when no batch ever gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_guid: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One metric (node, instance, dimension) and its points.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// Node id; the caller's default node when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub context: String,
    /// Defaults to the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub dimension: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_type: Option<String>,
    /// Seconds, integer >= 1; defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_every: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// `[epoch_seconds, value]` or `[epoch_seconds, value, anomalous]`;
/// a `null` value is an explicit gap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub value: Option<f64>,
    pub anomalous: bool,
}

impl Point {
    pub fn new(t: i64, value: Option<f64>) -> Self {
        Point { t, value, anomalous: false }
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let n = if self.anomalous { 3 } else { 2 };
        let mut seq = s.serialize_seq(Some(n))?;
        seq.serialize_element(&self.t)?;
        seq.serialize_element(&self.value)?;
        if self.anomalous {
            seq.serialize_element(&true)?;
        }
        seq.end()
    }
}

/// 2^63: the first magnitude an `f64` cannot convert to `i64` exactly.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = Point;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a point [epoch_seconds, value] or [epoch_seconds, value, anomalous]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                let t: f64 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                if t.fract() != 0.0 || !t.is_finite() {
                    return Err(de::Error::custom("timestamp must be whole epoch seconds"));
                }
                // `as i64` saturates: name the number sent, not i64::MAX.
                if t.abs() >= I64_LIMIT {
                    return Err(de::Error::custom(format!("timestamp {t} is outside 1970..2200")));
                }
                let value: Option<f64> = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let anomalous: bool = seq.next_element()?.unwrap_or(false);
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Point { t: t as i64, value, anomalous })
            }
        }
        d.deserialize_seq(PointVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_past_i64_name_the_number_sent() {
        let err = serde_json::from_str::<Point>("[18446744073709551615, 1.0]").expect_err("out of range").to_string();
        assert!(err.contains("timestamp 18446744073709552000 is outside 1970..2200"), "{err}");
        let err = serde_json::from_str::<Point>("[1.5, 1.0]").expect_err("fractional").to_string();
        assert!(err.contains("whole epoch seconds"), "{err}");
        let p: Point = serde_json::from_str("[1796122381, 2.5, true]").expect("a point");
        assert_eq!(p, Point { t: 1_796_122_381, value: Some(2.5), anomalous: true });
    }
}
