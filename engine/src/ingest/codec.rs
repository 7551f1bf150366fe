//! The WAL's encoding of an ingest batch: compact binary, several times
//! cheaper to write and to replay than the JSON it replaced. Records written
//! by earlier builds are JSON (`{"default_node": ..., "batch": ...}`) and
//! still decode: a binary record starts with [`MAGIC`], which is never `{`.
//!
//! Layout (integers are LEB128 varints, `i64`s zigzag-encoded first):
//! `MAGIC`, str default_node, nodes: n × (str id, opt str hostname,
//! opt str machine_guid, labels),
//! series: n × (opt str node, str context, opt str instance, str dimension,
//! opt str units, opt str title, opt str chart_type, opt i64 update_every,
//! labels, points). Points: n, then per point the time as a delta from the
//! previous one, a tag byte (bit 0: has a value, bit 1: anomalous) and the
//! value's 8 little-endian bytes when present. `str` is a length and UTF-8
//! bytes; `opt` is a 0/1 byte then the value; labels are n × (str, str).
//! Records of the first binary layout ([`MAGIC_V1`]) have no machine_guid
//! and still decode.

use std::collections::BTreeMap;

use super::batch::{IngestBatch, NodeSpec, Point, SeriesSpec};

/// First bytes of a binary record.
pub const MAGIC: &[u8; 4] = b"SWB2";
/// The first binary layout: nodes without machine_guid.
pub const MAGIC_V1: &[u8; 4] = b"SWB1";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("record ends early (needed {needed} more bytes at offset {at})")]
    Truncated { at: usize, needed: usize },
    #[error("bad varint at offset {0}")]
    BadVarint(usize),
    #[error("text at offset {0} is not UTF-8")]
    BadText(usize),
    #[error("bad flag byte {byte} at offset {at}")]
    BadFlag { at: usize, byte: u8 },
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("legacy JSON record: {0}")]
    Json(String),
}

/// Appends the record for `batch` to `out`.
pub fn encode(default_node: &str, batch: &IngestBatch, out: &mut Vec<u8>) {
    let points: usize = batch.series.iter().map(|s| s.points.len()).sum();
    out.reserve(16 + points * 11 + batch.series.len() * 64);
    out.extend_from_slice(MAGIC);
    put_str(out, default_node);
    put_len(out, batch.nodes.len());
    for n in &batch.nodes {
        put_str(out, &n.id);
        put_opt_str(out, n.hostname.as_deref());
        put_opt_str(out, n.machine_guid.as_deref());
        put_labels(out, &n.labels);
    }
    put_len(out, batch.series.len());
    for s in &batch.series {
        put_opt_str(out, s.node.as_deref());
        put_str(out, &s.context);
        put_opt_str(out, s.instance.as_deref());
        put_str(out, &s.dimension);
        put_opt_str(out, s.units.as_deref());
        put_opt_str(out, s.title.as_deref());
        put_opt_str(out, s.chart_type.as_deref());
        match s.update_every {
            Some(ue) => {
                out.push(1);
                put_i64(out, ue);
            }
            None => out.push(0),
        }
        put_labels(out, &s.labels);
        put_len(out, s.points.len());
        let mut prev = 0i64;
        for p in &s.points {
            put_i64(out, p.t.wrapping_sub(prev));
            prev = p.t;
            out.push(u8::from(p.value.is_some()) | (u8::from(p.anomalous) << 1));
            if let Some(v) = p.value {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Decodes a record written by [`encode`], or by an earlier build as JSON.
/// Returns the default node and the batch.
pub fn decode(bytes: &[u8]) -> Result<(String, IngestBatch), CodecError> {
    if bytes.first() == Some(&b'{') {
        #[derive(serde::Deserialize)]
        struct Legacy {
            default_node: String,
            batch: IngestBatch,
        }
        let r: Legacy = serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))?;
        return Ok((r.default_node, r.batch));
    }
    let mut r = Reader { bytes, at: 0 };
    let v1 = match r.take(MAGIC.len())? {
        m if m == MAGIC => false,
        m if m == MAGIC_V1 => true,
        _ => return Err(CodecError::BadFlag { at: 0, byte: bytes.first().copied().unwrap_or(0) }),
    };
    let default_node = r.str()?;
    let n = r.len(3)?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let (id, hostname) = (r.str()?, r.opt_str()?);
        let machine_guid = if v1 { None } else { r.opt_str()? };
        nodes.push(NodeSpec { id, hostname, machine_guid, labels: r.labels()? });
    }
    let n = r.len(10)?;
    let mut series = Vec::with_capacity(n);
    for _ in 0..n {
        let node = r.opt_str()?;
        let context = r.str()?;
        let instance = r.opt_str()?;
        let dimension = r.str()?;
        let units = r.opt_str()?;
        let title = r.opt_str()?;
        let chart_type = r.opt_str()?;
        let update_every = if r.flag()? { Some(r.i64()?) } else { None };
        let labels = r.labels()?;
        let np = r.len(2)?;
        let mut points = Vec::with_capacity(np);
        let mut t = 0i64;
        for _ in 0..np {
            t = t.wrapping_add(r.i64()?);
            let at = r.at;
            let tag = r.take(1)?[0];
            if tag > 3 {
                return Err(CodecError::BadFlag { at, byte: tag });
            }
            let value = if tag & 1 == 1 {
                let b: [u8; 8] = r.take(8)?.try_into().map_err(|_| CodecError::Truncated { at, needed: 8 })?;
                Some(f64::from_le_bytes(b))
            } else {
                None
            };
            points.push(Point { t, value, anomalous: tag & 2 == 2 });
        }
        series.push(SeriesSpec {
            node,
            context,
            instance,
            dimension,
            units,
            title,
            chart_type,
            update_every,
            labels,
            points,
        });
    }
    if r.at != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - r.at));
    }
    Ok((default_node, IngestBatch { nodes, series }))
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u64(out, n as u64);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn put_labels(out: &mut Vec<u8>, labels: &BTreeMap<String, String>) {
    put_len(out, labels.len());
    for (k, v) in labels {
        put_str(out, k);
        put_str(out, v);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(CodecError::Truncated { at: self.at, needed: n })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::BadVarint(start))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count of items of at least `min_bytes` each: never more than the
    /// rest of the record could hold, so a corrupt count cannot allocate.
    fn len(&mut self, min_bytes: usize) -> Result<usize, CodecError> {
        let at = self.at;
        let n = self.u64()?;
        let room = (self.bytes.len() - self.at) / min_bytes.max(1);
        usize::try_from(n).ok().filter(|&n| n <= room).ok_or(CodecError::Truncated { at, needed: min_bytes })
    }

    fn str(&mut self) -> Result<String, CodecError> {
        let n = self.len(1)?;
        let at = self.at;
        let b = self.take(n)?;
        std::str::from_utf8(b).map(str::to_string).map_err(|_| CodecError::BadText(at))
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        let at = self.at;
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(CodecError::BadFlag { at, byte }),
        }
    }

    fn opt_str(&mut self) -> Result<Option<String>, CodecError> {
        if self.flag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }

    fn labels(&mut self) -> Result<BTreeMap<String, String>, CodecError> {
        let n = self.len(2)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?;
            m.insert(k, self.str()?);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z._/@ -]{0,12}", "\\PC{0,6}"]
    }

    fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(text(), text(), 0..3)
    }

    fn point() -> impl Strategy<Value = Point> {
        let value = prop::option::of(prop_oneof![any::<f64>(), Just(-0.0), Just(f64::MAX), Just(1.5)]);
        (any::<i64>(), value, any::<bool>()).prop_map(|(t, value, anomalous)| Point { t, value, anomalous })
    }

    fn series() -> impl Strategy<Value = SeriesSpec> {
        let head = (prop::option::of(text()), text(), prop::option::of(text()), text());
        let meta = (prop::option::of(text()), prop::option::of(text()), prop::option::of(text()));
        let tail = (prop::option::of(any::<i64>()), labels(), prop::collection::vec(point(), 0..20));
        (head, meta, tail).prop_map(
            |((node, context, instance, dimension), (units, title, chart_type), (update_every, labels, points))| {
                SeriesSpec {
                    node,
                    context,
                    instance,
                    dimension,
                    units,
                    title,
                    chart_type,
                    update_every,
                    labels,
                    points,
                }
            },
        )
    }

    fn batch() -> impl Strategy<Value = IngestBatch> {
        let node = (text(), prop::option::of(text()), prop::option::of(text()), labels())
            .prop_map(|(id, hostname, machine_guid, labels)| NodeSpec { id, hostname, machine_guid, labels });
        (prop::collection::vec(node, 0..3), prop::collection::vec(series(), 0..4))
            .prop_map(|(nodes, series)| IngestBatch { nodes, series })
    }

    /// Equal, comparing values bit for bit (NaN included).
    fn same(a: &IngestBatch, b: &IngestBatch) -> bool {
        let bits = |s: &SeriesSpec| -> Vec<(i64, Option<u64>, bool)> {
            s.points.iter().map(|p| (p.t, p.value.map(f64::to_bits), p.anomalous)).collect()
        };
        let strip = |x: &IngestBatch| {
            let mut x = x.clone();
            x.series.iter_mut().for_each(|s| s.points.clear());
            x
        };
        strip(a) == strip(b)
            && a.series.len() == b.series.len()
            && a.series.iter().zip(&b.series).all(|(x, y)| bits(x) == bits(y))
    }

    proptest! {
        #[test]
        fn round_trips(node in text(), b in batch()) {
            let mut out = Vec::new();
            encode(&node, &b, &mut out);
            let (n, back) = decode(&out).expect("decodes");
            prop_assert_eq!(n, node);
            prop_assert!(same(&b, &back), "{:?} != {:?}", b, back);
        }

        #[test]
        fn damaged_records_are_errors_not_panics(b in batch(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), mask in 1u8..) {
            let mut out = Vec::new();
            encode("h", &b, &mut out);
            let mut cut_short = out.clone();
            cut_short.truncate(cut.index(out.len()));
            prop_assert!(decode(&cut_short).is_err());
            let mut flipped = out.clone();
            let i = flip.index(out.len());
            flipped[i] ^= mask;
            let _ = decode(&flipped);
        }
    }

    #[test]
    fn legacy_json_records_still_decode() {
        let json = br#"{"default_node":"host-1","batch":{"series":[{"context":"c","dimension":"d","points":[[10,1.5],[11,null,true]]}]}}"#;
        let (node, b) = decode(json).expect("legacy record");
        assert_eq!(node, "host-1");
        assert_eq!(b.series[0].points, vec![Point::new(10, Some(1.5)), Point { t: 11, value: None, anomalous: true }]);
    }

    /// A record of the first binary layout (as builds before machine_guid
    /// wrote it, byte for byte) decodes with no machine_guid.
    #[test]
    fn first_binary_layout_still_decodes() {
        let mut v1 = MAGIC_V1.to_vec();
        put_str(&mut v1, "host-1");
        put_len(&mut v1, 1);
        put_str(&mut v1, "n1");
        put_opt_str(&mut v1, Some("web-1"));
        put_labels(&mut v1, &BTreeMap::from([("env".to_string(), "prod".to_string())]));
        put_len(&mut v1, 0);
        let (node, b) = decode(&v1).expect("v1 record");
        assert_eq!(node, "host-1");
        let n = &b.nodes[0];
        assert_eq!((n.id.as_str(), n.hostname.as_deref(), n.machine_guid.as_deref()), ("n1", Some("web-1"), None));
        assert_eq!(n.labels["env"], "prod");
        // The same batch re-encoded is the current layout, one flag byte longer.
        let mut v2 = Vec::new();
        encode("host-1", &b, &mut v2);
        assert_eq!((&v2[..4], v2.len()), (&MAGIC[..], v1.len() + 1));
    }

    #[test]
    fn smaller_than_json() {
        let points = (0..1000).map(|k| Point::new(1_763_900_000 + k, Some(k as f64 * 0.25))).collect();
        let b = IngestBatch {
            nodes: vec![],
            series: vec![SeriesSpec {
                context: "system.cpu".into(),
                dimension: "user".into(),
                points,
                ..Default::default()
            }],
        };
        let mut out = Vec::new();
        encode("h", &b, &mut out);
        let json = serde_json::to_vec(&b).expect("json");
        // Times are 1-byte deltas; values stay 8 bytes (no float compression).
        assert!(
            out.len() < 11 * 1000 + 64 && out.len() < json.len(),
            "{} bytes binary vs {} JSON",
            out.len(),
            json.len()
        );
    }
}
