//! The WAL's encoding of an ingest batch: compact binary, several times
//! cheaper to write and to replay than the JSON it replaced. Records written
//! by earlier builds are JSON (`{"default_node": ..., "batch": ...}`) and
//! still decode: a binary record starts with [`MAGIC`], which is never `{`.
//!
//! Layout (integers are LEB128 varints, `i64`s zigzag-encoded first):
//! `MAGIC`, opt i64 clock (see [`Record::clock`]), str default_node, nodes: n × (str id, opt str hostname,
//! opt str machine_guid, labels),
//! series: n × (opt str node, str context, opt str instance, str dimension,
//! opt str units, opt str title, opt str chart_type, opt i64 update_every,
//! labels, points). `str` is a length and UTF-8 bytes; `opt` is a 0/1 byte
//! then the value; labels are n × (str, str).
//!
//! Points are n, then (when n > 0) a shape byte and three columns:
//! - times: with `REGULAR`, the first time and the step (every later
//!   time is the previous one plus the step, wrapping); else per point the
//!   time as a delta from the previous one (from 0);
//! - tags: with `PLAIN`, none (every point has a value and is not
//!   anomalous); else a byte per point (bit 0: has a value, bit 1:
//!   anomalous);
//! - values, for the points that have one: with `DECIMAL`, an exponent
//!   byte `e`, then each value as the delta of `k` from the previous
//!   value's (from 0), where the value is exactly `k / 10^e`
//!   (`storage::codec::alp`, checked bit for bit); else the
//!   values' 8 little-endian bytes.
//!
//! A per-second series of two-decimal values takes about 2 bytes a point
//! instead of 10, so the log's `write(2)`, its disk and its replay shrink
//! alike. Records of the earlier layouts still decode (with no clock):
//! [`MAGIC_V3`] is this layout without the clock; [`MAGIC_V2`] and
//! [`MAGIC_V1`] hold per point a time delta, a tag byte and 8 value bytes;
//! V1 has no machine_guid.

use std::collections::BTreeMap;

use super::batch::{IngestBatch, NodeSpec, Point, SeriesSpec};
use crate::storage::codec::alp;

/// First bytes of a binary record.
pub const MAGIC: &[u8; 4] = b"SWB4";
/// The third binary layout: the current one without the clock.
pub const MAGIC_V3: &[u8; 4] = b"SWB3";
/// The second binary layout: points one by one (time delta, tag, 8 bytes).
pub const MAGIC_V2: &[u8; 4] = b"SWB2";
/// The first binary layout: as [`MAGIC_V2`], and nodes without machine_guid.
pub const MAGIC_V1: &[u8; 4] = b"SWB1";

/// Shape bit: the times step evenly.
const REGULAR: u8 = 1;
/// Shape bit: every point has a value and none is anomalous.
const PLAIN: u8 = 2;
/// Shape bit: the values are short decimals of one exponent.
const DECIMAL: u8 = 4;
/// Tag of a point that has a value and is not anomalous.
const PLAIN_TAG: u8 = 1;

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

/// One decoded record: what [`encode`] was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub default_node: String,
    /// The clock the batch was applied against, when the engine had one
    /// (it caps how far the batch may move the head: see
    /// [`crate::storage::Store::write_batch`]); replay applies the record
    /// against the same value. `None` in records of earlier layouts.
    pub clock: Option<i64>,
    pub batch: IngestBatch,
}

/// Appends the record for `batch` (applied against `clock`) to `out`.
pub fn encode(default_node: &str, clock: Option<i64>, batch: &IngestBatch, out: &mut Vec<u8>) {
    let points: usize = batch.series.iter().map(|s| s.points.len()).sum();
    out.reserve(16 + points * 3 + batch.series.len() * 64);
    let mut values = Vec::new();
    encode_layout(default_node, Some(clock), batch, out, MAGIC, |out, points| put_points(out, points, &mut values));
}

/// A record of the third binary layout ([`MAGIC_V3`], no clock), as builds
/// of formats 5 and 6 wrote it: for the tests that replay one.
#[cfg(test)]
pub(crate) fn encode_v3(default_node: &str, batch: &IngestBatch, out: &mut Vec<u8>) {
    let mut values = Vec::new();
    encode_layout(default_node, None, batch, out, MAGIC_V3, |out, points| put_points(out, points, &mut values));
}

/// A record of the second binary layout ([`MAGIC_V2`]), as builds of
/// format 4 wrote it: for the tests that replay one.
#[cfg(test)]
pub(crate) fn encode_v2(default_node: &str, batch: &IngestBatch, out: &mut Vec<u8>) {
    encode_layout(default_node, None, batch, out, MAGIC_V2, |out, points| {
        put_len(out, points.len());
        let mut prev = 0i64;
        for p in points {
            put_i64(out, p.t.wrapping_sub(prev));
            prev = p.t;
            out.push(tag(p));
            if let Some(v) = p.value {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    });
}

/// The record's header, nodes and series in the layout of `magic`, each
/// series' points written by `put_points`; `clock` is `Some` in layouts
/// that hold one.
fn encode_layout(
    default_node: &str,
    clock: Option<Option<i64>>,
    batch: &IngestBatch,
    out: &mut Vec<u8>,
    magic: &[u8; 4],
    mut put_points: impl FnMut(&mut Vec<u8>, &[Point]),
) {
    out.extend_from_slice(magic);
    if let Some(clock) = clock {
        match clock {
            Some(c) => {
                out.push(1);
                put_i64(out, c);
            }
            None => out.push(0),
        }
    }
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
        put_points(out, &s.points);
    }
}

fn tag(p: &Point) -> u8 {
    u8::from(p.value.is_some()) | (u8::from(p.anomalous) << 1)
}

/// The points of one series, in the layout of the module doc.
/// (`values` is a buffer reused across a record's series.)
fn put_points(out: &mut Vec<u8>, points: &[Point], values: &mut Vec<f64>) {
    put_len(out, points.len());
    let Some(first) = points.first() else { return };
    let step = points.get(1).map_or(0, |p| p.t.wrapping_sub(first.t));
    // One pass for the shape and the values (each point is 32 bytes; the
    // values go on as a dense column).
    let (mut regular, mut plain, mut prev) = (true, true, first.t.wrapping_sub(step));
    values.clear();
    values.reserve(points.len());
    for p in points {
        regular &= p.t.wrapping_sub(prev) == step;
        plain &= tag(p) == PLAIN_TAG;
        prev = p.t;
        if let Some(v) = p.value {
            values.push(v);
        }
    }
    let shape = (if regular { REGULAR } else { 0 }) | (if plain { PLAIN } else { 0 });
    let at = out.len();
    out.push(shape);
    if regular {
        put_i64(out, first.t);
        put_i64(out, step);
    } else {
        let mut prev = 0i64;
        for p in points {
            put_i64(out, p.t.wrapping_sub(prev));
            prev = p.t;
        }
    }
    if !plain {
        out.extend(points.iter().map(tag));
    }
    if put_decimals(out, values) {
        out[at] |= DECIMAL;
    } else {
        for v in values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Appends `values` as an exponent byte `e` and the deltas of their
/// integers `k` (each value is exactly `k / 10^e`, bit for bit, as
/// `alp::decode` reads it back), and returns true; or appends nothing and
/// returns false when no exponent fits them all. The exponents tried start
/// at the smallest that fits the first values; a wrong one is given up at
/// the first value it does not fit, so the search costs little more than
/// the one pass that succeeds.
fn put_decimals(out: &mut Vec<u8>, values: &[f64]) -> bool {
    let mut from = 0;
    for &v in values.iter().take(4) {
        match alp::smallest_exponent(v) {
            Some(e) => from = from.max(e),
            None => return false,
        }
    }
    let at = out.len();
    'exp: for e in from..=alp::MAX_EXP {
        out.truncate(at);
        out.push(e as u8);
        let mut prev = 0i64;
        // Written through a slice sized for the longest varints, then cut
        // to what was written (a `push` per byte would store the vector's
        // length back to memory each time); a chunk at a time, so a long
        // series does not reserve ten bytes a value at once.
        for chunk in values.chunks(VARINT_CHUNK) {
            let from = out.len();
            out.resize(from + chunk.len() * MAX_VARINT, 0);
            let buf = &mut out[from..];
            let mut n = 0;
            for &v in chunk {
                let Some(k) = alp::encode(v, e) else { continue 'exp };
                n += write_varint(&mut buf[n..], zigzag(k.wrapping_sub(prev)));
                prev = k;
            }
            out.truncate(from + n);
        }
        return true;
    }
    out.truncate(at);
    false
}

/// Values written per slice by [`put_decimals`].
const VARINT_CHUNK: usize = 4096;

/// Bytes of the longest varint (a `u64`).
const MAX_VARINT: usize = 10;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes `v` as a varint at the start of `buf` (at least [`MAX_VARINT`]
/// bytes long); returns the bytes written.
#[inline]
fn write_varint(buf: &mut [u8], mut v: u64) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    n + 1
}

/// Decodes a record written by [`encode`], or by an earlier build (in an
/// earlier binary layout, or as JSON).
pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
    if bytes.first() == Some(&b'{') {
        #[derive(serde::Deserialize)]
        struct Legacy {
            default_node: String,
            batch: IngestBatch,
        }
        let r: Legacy = serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))?;
        return Ok(Record { default_node: r.default_node, clock: None, batch: r.batch });
    }
    let mut r = Reader { bytes, at: 0 };
    let version = match r.take(MAGIC.len())? {
        m if m == MAGIC => 4,
        m if m == MAGIC_V3 => 3,
        m if m == MAGIC_V2 => 2,
        m if m == MAGIC_V1 => 1,
        _ => return Err(CodecError::BadFlag { at: 0, byte: bytes.first().copied().unwrap_or(0) }),
    };
    let clock = if version >= 4 && r.flag()? { Some(r.i64()?) } else { None };
    let default_node = r.str()?;
    let n = r.len(3)?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let (id, hostname) = (r.str()?, r.opt_str()?);
        let machine_guid = if version == 1 { None } else { r.opt_str()? };
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
        let points = if version >= 3 { r.points()? } else { r.points_v2()? };
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
    Ok(Record { default_node, clock, batch: IngestBatch { nodes, series } })
}

/// A varint appended to `out`. It repeats [`write_varint`]'s loop on
/// purpose: going through `write_varint` and a stack buffer made the
/// demo batch's record encode 15-35 % slower (criterion
/// `wal_record/encode`, alternating builds).
#[inline]
fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    // Most varints here (lengths, time steps) take one or two bytes.
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    if v < 0x4000 {
        out.extend_from_slice(&[(v as u8) | 0x80, (v >> 7) as u8]);
        return;
    }
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u64(out, n as u64);
}

#[inline]
fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
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

    /// Points of the current layout (see the module doc).
    fn points(&mut self) -> Result<Vec<Point>, CodecError> {
        let np = self.len(1)?;
        if np == 0 {
            return Ok(Vec::new());
        }
        let at = self.at;
        let shape = self.take(1)?[0];
        if shape > REGULAR | PLAIN | DECIMAL {
            return Err(CodecError::BadFlag { at, byte: shape });
        }
        let mut points = Vec::with_capacity(np);
        if shape & REGULAR != 0 {
            let (mut t, step) = (self.i64()?, self.i64()?);
            for _ in 0..np {
                points.push(Point { t, value: None, anomalous: false });
                t = t.wrapping_add(step);
            }
        } else {
            let mut t = 0i64;
            for _ in 0..np {
                t = t.wrapping_add(self.i64()?);
                points.push(Point { t, value: None, anomalous: false });
            }
        }
        let mut valued = np;
        if shape & PLAIN == 0 {
            let at = self.at;
            let tags = self.take(np)?;
            if let Some(i) = tags.iter().position(|&t| t > 3) {
                return Err(CodecError::BadFlag { at: at + i, byte: tags[i] });
            }
            valued = tags.iter().filter(|&&t| t & 1 == 1).count();
            for (p, &t) in points.iter_mut().zip(tags) {
                p.anomalous = t & 2 == 2;
                // Marks the points that take a value below.
                p.value = (t & 1 == 1).then_some(0.0);
            }
        } else {
            points.iter_mut().for_each(|p| p.value = Some(0.0));
        }
        let slots = points.iter_mut().filter_map(|p| p.value.as_mut());
        if shape & DECIMAL != 0 {
            let at = self.at;
            let e = u32::from(self.take(1)?[0]);
            if e > alp::MAX_EXP {
                return Err(CodecError::BadFlag { at, byte: e as u8 });
            }
            let mut k = 0i64;
            for v in slots {
                k = k.wrapping_add(self.i64()?);
                *v = alp::decode(k, e);
            }
        } else {
            let raw =
                self.take(valued.checked_mul(8).ok_or(CodecError::Truncated { at: self.at, needed: usize::MAX })?)?;
            for (v, b) in slots.zip(raw.chunks_exact(8)) {
                *v = f64::from_le_bytes(b.try_into().map_err(|_| CodecError::Truncated { at: self.at, needed: 8 })?);
            }
        }
        Ok(points)
    }

    /// Points of the layouts before [`MAGIC`]: per point a time delta, a
    /// tag byte and the value's 8 bytes when it has one.
    fn points_v2(&mut self) -> Result<Vec<Point>, CodecError> {
        let np = self.len(2)?;
        let mut points = Vec::with_capacity(np);
        let mut t = 0i64;
        for _ in 0..np {
            t = t.wrapping_add(self.i64()?);
            let at = self.at;
            let tag = self.take(1)?[0];
            if tag > 3 {
                return Err(CodecError::BadFlag { at, byte: tag });
            }
            let value = if tag & 1 == 1 {
                let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| CodecError::Truncated { at, needed: 8 })?;
                Some(f64::from_le_bytes(b))
            } else {
                None
            };
            points.push(Point { t, value, anomalous: tag & 2 == 2 });
        }
        Ok(points)
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
        let value = prop::option::of(prop_oneof![odd_value(), Just(1.5)]);
        (any::<i64>(), value, any::<bool>()).prop_map(|(t, value, anomalous)| Point { t, value, anomalous })
    }

    /// Values that are not short decimals, or are but not for every
    /// exponent: NaN, ±0, ±inf, subnormals, extremes, a sum with a
    /// binary tail.
    fn odd_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(-0.0),
            Just(0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MIN_POSITIVE / 4.0),
            Just(f64::MAX),
            Just(0.1 + 0.2),
            Just(1e-300),
            Just(4.5e15),
            any::<f64>(),
        ]
    }

    /// Points as collectors send them: evenly stepped (with a wrapping
    /// step now and then), short decimals of one or several exponents,
    /// sometimes gaps, anomalies or an odd value among them.
    fn regular_points() -> impl Strategy<Value = Vec<Point>> {
        let shape =
            (any::<i64>(), prop_oneof![Just(1i64), 1i64..3600, any::<i64>()], 1usize..40, 0u32..5, any::<bool>());
        shape.prop_flat_map(|(t0, step, n, e, plain)| {
            let decimal = (-100_000i64..100_000, 0..=e).prop_map(|(k, e)| alp::decode(k, e));
            let value = prop_oneof![8 => decimal, 1 => odd_value()];
            let tag =
                if plain { Just((true, false)).boxed() } else { (prop::bool::weighted(0.8), any::<bool>()).boxed() };
            prop::collection::vec((value, tag), n).prop_map(move |vs| {
                let t = |i: usize| t0.wrapping_add(step.wrapping_mul(i as i64));
                vs.into_iter()
                    .enumerate()
                    .map(|(i, (v, (has, anomalous)))| Point { t: t(i), value: has.then_some(v), anomalous })
                    .collect()
            })
        })
    }

    fn series() -> impl Strategy<Value = SeriesSpec> {
        let head = (prop::option::of(text()), text(), prop::option::of(text()), text());
        let meta = (prop::option::of(text()), prop::option::of(text()), prop::option::of(text()));
        let points = prop_oneof![prop::collection::vec(point(), 0..20), regular_points()];
        let tail = (prop::option::of(any::<i64>()), labels(), points);
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
        fn round_trips(node in text(), clock in prop::option::of(any::<i64>()), b in batch()) {
            let mut out = Vec::new();
            encode(&node, clock, &b, &mut out);
            let r = decode(&out).expect("decodes");
            prop_assert_eq!((&r.default_node, r.clock), (&node, clock));
            prop_assert!(same(&b, &r.batch), "{:?} != {:?}", b, r.batch);
            // Records of the earlier layouts, as builds of formats 4-6 wrote them.
            for (layout, encode_old) in [("v3", encode_v3 as fn(&str, &IngestBatch, &mut Vec<u8>)), ("v2", encode_v2)] {
                let mut old = Vec::new();
                encode_old(&node, &b, &mut old);
                let r = decode(&old).expect("an earlier record decodes");
                prop_assert_eq!((&r.default_node, r.clock), (&node, None), "{}", layout);
                prop_assert!(same(&b, &r.batch), "{}: {:?} != {:?}", layout, b, r.batch);
            }
        }

        #[test]
        fn damaged_records_are_errors_not_panics(b in batch(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), mask in 1u8..) {
            let mut out = Vec::new();
            encode("h", Some(1_800_000_000), &b, &mut out);
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
        let Record { default_node: node, clock, batch: b } = decode(json).expect("legacy record");
        assert_eq!((node.as_str(), clock), ("host-1", None));
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
        let Record { default_node: node, batch: b, .. } = decode(&v1).expect("v1 record");
        assert_eq!(node, "host-1");
        let n = &b.nodes[0];
        assert_eq!((n.id.as_str(), n.hostname.as_deref(), n.machine_guid.as_deref()), ("n1", Some("web-1"), None));
        assert_eq!(n.labels["env"], "prod");
        // The same batch re-encoded is the current layout, one flag byte
        // longer for the machine_guid and one for the clock.
        let mut v2 = Vec::new();
        encode("host-1", None, &b, &mut v2);
        assert_eq!((&v2[..4], v2.len()), (&MAGIC[..], v1.len() + 2));
    }

    /// A record as the second binary layout wrote it (points one by one:
    /// time delta, tag, 8 value bytes) still decodes.
    #[test]
    fn second_binary_layout_still_decodes() {
        let mut v2 = MAGIC_V2.to_vec();
        put_str(&mut v2, "host-1");
        put_len(&mut v2, 0);
        put_len(&mut v2, 1);
        for s in [None, Some("c"), None, Some("d"), None, None, None] {
            match s {
                Some(s) if s == "c" || s == "d" => put_str(&mut v2, s),
                _ => v2.push(0),
            }
        }
        v2.push(1);
        put_i64(&mut v2, 2);
        put_labels(&mut v2, &BTreeMap::new());
        put_len(&mut v2, 3);
        for (dt, tag, v) in [(100i64, 1u8, Some(0.1 + 0.2)), (2, 2, None), (2, 3, Some(-7.25))] {
            put_i64(&mut v2, dt);
            v2.push(tag);
            if let Some(v) = v {
                v2.extend_from_slice(&f64::to_le_bytes(v));
            }
        }
        let Record { default_node: node, batch: b, .. } = decode(&v2).expect("v2 record");
        assert_eq!(node, "host-1");
        let s = &b.series[0];
        assert_eq!((s.context.as_str(), s.dimension.as_str(), s.update_every), ("c", "d", Some(2)));
        let want = vec![
            Point { t: 100, value: Some(0.1 + 0.2), anomalous: false },
            Point { t: 102, value: None, anomalous: true },
            Point { t: 104, value: Some(-7.25), anomalous: true },
        ];
        assert_eq!(s.points, want);
    }

    fn one_series(points: Vec<Point>) -> IngestBatch {
        IngestBatch {
            nodes: vec![],
            series: vec![SeriesSpec {
                context: "system.cpu".into(),
                dimension: "user".into(),
                points,
                ..Default::default()
            }],
        }
    }

    fn encoded_len(b: &IngestBatch) -> usize {
        let mut out = Vec::new();
        encode("h", None, b, &mut out);
        out.len()
    }

    /// A series longer than the varint chunks round-trips, decimal or not,
    /// whichever chunk the value that is not a short decimal sits in.
    #[test]
    fn long_series_round_trip_across_chunks() {
        let n = 2 * VARINT_CHUNK + 100;
        let decimal: Vec<Point> =
            (0..n as i64).map(|k| Point::new(1_000 + k, Some(alp::decode(k * 7 - 9_000, 3)))).collect();
        for odd_at in [None, Some(0), Some(VARINT_CHUNK - 1), Some(VARINT_CHUNK), Some(n - 1)] {
            let mut points = decimal.clone();
            if let Some(i) = odd_at {
                points[i].value = Some(1.0 / 3.0);
            }
            let b = one_series(points);
            let mut out = Vec::new();
            encode("h", None, &b, &mut out);
            let back = decode(&out).expect("decodes").batch;
            assert!(same(&b, &back), "odd value at {odd_at:?}");
            let raw = out.len() > 8 * n;
            assert_eq!(raw, odd_at.is_some(), "{} bytes, odd value at {odd_at:?}", out.len());
        }
    }

    /// Per-second two-decimal gauges (what collectors send) take under two
    /// bytes a point: one time and step for the series, no tags, and
    /// small integer deltas for the values. Values that are no short
    /// decimal, irregular times and tags cost what they did before.
    #[test]
    fn collector_series_take_under_two_bytes_a_point() {
        let wave = |k: i64| (4_000 + (k * 37) % 2_000) as f64 / 100.0;
        let regular: Vec<Point> = (0..1000).map(|k| Point::new(1_763_900_000 + k, Some(wave(k)))).collect();
        let n0 = encoded_len(&one_series(regular.clone()));
        assert!(n0 < 2 * 1000 + 64, "{n0} bytes");

        let mut odd = regular.clone();
        odd[500].value = Some(0.1 + 0.2);
        let n = encoded_len(&one_series(odd));
        assert!(n > 8 * 1000, "a value with a binary tail keeps every value raw: {n} bytes");

        let mut gappy = regular.clone();
        gappy[10].value = None;
        gappy[11].anomalous = true;
        let n = encoded_len(&one_series(gappy));
        assert!((n0 + 1000..n0 + 1010).contains(&n), "a tag byte per point on top: {n} vs {n0} bytes");

        let mut irregular = regular;
        irregular[300].t += 1;
        irregular.swap(600, 601);
        let n = encoded_len(&one_series(irregular));
        assert!(n > n0 + 900, "a time delta per point on top: {n} vs {n0} bytes");
        let json =
            serde_json::to_vec(&one_series((0..1000).map(|k| Point::new(k, Some(wave(k)))).collect())).expect("json");
        assert!(n < json.len());
    }
}
