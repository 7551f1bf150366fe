//! The JSON ingest batch, exactly as `POST /api/v1/ingest` receives it
//! (see `shared/spec/cli-and-ingest.md`). Deserialisation only checks shapes;
//! `validate` checks meaning, so a bad batch is refused before anything is applied.

use std::collections::BTreeMap;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{whole_i64, NotWhole};

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
    #[serde(deserialize_with = "points_sized_like_the_last")]
    pub points: Vec<Point>,
}

/// Most batches carry series of one length (the same hours of each
/// metric), and JSON gives no length up front: a plain `Vec` grows by
/// doubling, copying every series about twice (measured: a tenth of the
/// server's CPU on a bulk load). So a series starts with the capacity the
/// previous one on this thread ended with, capped; one that turns out much
/// shorter gives the rest back.
fn points_sized_like_the_last<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Point>, D::Error> {
    thread_local! {
        static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    struct PointsVisitor;
    impl<'de> Visitor<'de> for PointsVisitor {
        type Value = Vec<Point>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of points")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Point>, A::Error> {
            let hint = seq.size_hint().unwrap_or_else(|| LAST_LEN.get()).min(MAX_POINTS_HINT);
            let mut points = Vec::with_capacity(hint);
            while let Some(p) = seq.next_element()? {
                points.push(p);
            }
            LAST_LEN.set(points.len());
            give_back_spare(&mut points);
            Ok(points)
        }
    }
    d.deserialize_seq(PointsVisitor)
}

/// Points reserved at most up front for one series, from the previous
/// series' length (a series of 1 s samples over 18 h).
pub(super) const MAX_POINTS_HINT: usize = 1 << 16;

/// Gives back the spare capacity of a series that turned out much shorter
/// than the one before it.
pub(super) fn give_back_spare(points: &mut Vec<Point>) {
    if points.capacity() > 2 * points.len() + 64 {
        points.shrink_to_fit();
    }
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
                let t = whole_i64(t).map_err(|e| match e {
                    NotWhole::Fraction => de::Error::custom("timestamp must be whole epoch seconds"),
                    NotWhole::OutOfRange => de::Error::custom(format!("timestamp {t} is outside 1970..2200")),
                })?;
                let value: Option<f64> = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let anomalous: bool = seq.next_element()?.unwrap_or(false);
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Point { t, value, anomalous })
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

    /// Series of any lengths, in any order, read back whole: the capacity
    /// carried from one series to the next never shows in the points.
    #[test]
    fn points_read_whole_whatever_the_previous_series_length() {
        for lens in [[3usize, 5000, 0, 7], [5000, 3, 5000, 1]] {
            let series: Vec<serde_json::Value> = lens
                .iter()
                .map(|&n| {
                    let points: Vec<_> =
                        (0..n).map(|i| serde_json::json!([1_796_122_381 + i as i64, i as f64])).collect();
                    serde_json::json!({"context": "c", "dimension": "d", "points": points})
                })
                .collect();
            let batch: IngestBatch = serde_json::from_value(serde_json::json!({ "series": series })).expect("a batch");
            let text = serde_json::to_string(
                &serde_json::json!({ "series": serde_json::to_value(&batch.series).expect("json") }),
            )
            .expect("text");
            let again: IngestBatch = serde_json::from_str(&text).expect("from text");
            for (s, &n) in again.series.iter().zip(&lens) {
                assert_eq!(s.points.len(), n);
                assert!(s
                    .points
                    .iter()
                    .enumerate()
                    .all(|(i, p)| p.t == 1_796_122_381 + i as i64 && p.value == Some(i as f64)));
                assert!(s.points.capacity() <= 2 * n + 64, "a short series after a long one gives the rest back");
            }
        }
    }
}
