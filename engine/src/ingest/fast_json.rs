//! A direct reader for the common shape of a JSON ingest batch, so a bulk
//! load does not pay serde's per-element protocol for every point (it was
//! 42 % of the server's CPU on the peer benchmark's JSON load, the points
//! alone 29 %).
//!
//! The invariant: [`parse`] accepts a subset of JSON, and for every text it
//! accepts it returns exactly the batch that `serde_json::from_slice::<IngestBatch>`
//! returns (bit for bit, `-0.0` included). For anything else it returns
//! `None` and the caller parses with serde, which also names the JSON path
//! of any error. So this reader never refuses a batch and never words an
//! error; it only declines. It declines on:
//! - string escapes and control characters (serde decodes them);
//! - numbers with an exponent or more than 15 digits (the subset in which
//!   `significand / 10^k` is one correctly rounded division, as in serde's
//!   own reader and in every correct parser, so the two cannot differ);
//! - unknown, repeated or missing fields, `null` where serde would refuse
//!   it, and anything that is not well-formed JSON.
//!
//! The property tests beside it hold it to that: random batches written
//! with random spacing, number forms and damage must either be declined
//! or read exactly as serde reads them, and canonical batches must not be
//! declined.

use std::collections::BTreeMap;

use super::batch::{give_back_spare, MAX_POINTS_HINT};
use super::{IngestBatch, NodeSpec, Point, SeriesSpec};
use crate::model::whole_i64;

/// The batch in `bytes`, or `None` where serde must read it (see the module doc).
pub fn parse(bytes: &[u8]) -> Option<IngestBatch> {
    let mut r = Reader { b: bytes, i: 0, points_hint: 0 };
    let batch = r.batch()?;
    r.ws();
    (r.i == bytes.len()).then_some(batch)
}

/// At most this many digits in a number read here: any such significand
/// is below 2^53 and its power of ten is exact, so one division is exact
/// rounding.
const MAX_DIGITS: u32 = 15;

const POW10: [f64; MAX_DIGITS as usize + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// The run of ASCII digits at `b[i..]` appended to `acc` as decimal
/// digits, and the index after the run. Eight bytes at a time where the
/// body has them: a timestamp's ten digits were a ten-step chain of
/// multiply-adds, over 40 % of the reader's time. Arithmetic wraps; the
/// caller declines more than [`MAX_DIGITS`] digits, so a wrapped value is
/// never used.
fn digits(b: &[u8], mut i: usize, mut acc: u64) -> (u64, usize) {
    const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];
    while let Some(Ok(chunk)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let v = u64::from_le_bytes(chunk);
        // Each byte minus '0': a digit's value, or a byte with its top bit
        // set (below '0'). A byte above '9' sets its top bit in the sum.
        // Borrows and carries only travel to later bytes, so the first
        // flagged byte is the first non-digit.
        let values = v.wrapping_sub(0x3030_3030_3030_3030);
        let flagged = (values | v.wrapping_add(0x4646_4646_4646_4646)) & 0x8080_8080_8080_8080;
        let n = (flagged.trailing_zeros() / 8) as usize;
        if n > 0 {
            // The n digits moved to the top bytes: the low ones become leading zeros.
            acc = acc.wrapping_mul(POW10_U64[n]).wrapping_add(eight_digits(values << (8 * (8 - n))));
        }
        i += n;
        if n < 8 {
            return (acc, i);
        }
    }
    while let Some(&c @ b'0'..=b'9') = b.get(i) {
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    (acc, i)
}

/// Eight digit values (0-9), the first in the lowest byte, as one number:
/// pairs, then fours, then eight, each step one multiply-add per lane.
fn eight_digits(v: u64) -> u64 {
    let v = v.wrapping_mul(10).wrapping_add(v >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = v.wrapping_mul(100).wrapping_add(v >> 16) & 0x0000_FFFF_0000_FFFF;
    v.wrapping_mul(10_000).wrapping_add(v >> 32) & 0xFFFF_FFFF
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    /// The previous series' length: most batches' series are equally long.
    points_hint: usize,
}

/// A number as written: sign, digits as an integer, digits after the point.
#[derive(Debug, Clone, Copy)]
struct Number {
    negative: bool,
    significand: u64,
    fraction_digits: u32,
}

impl Number {
    /// The value serde gives it: `significand as f64`, divided once by the
    /// power of ten, then negated.
    fn to_f64(self) -> f64 {
        let f = self.significand as f64;
        let f = if self.fraction_digits == 0 { f } else { f / POW10[self.fraction_digits as usize] };
        if self.negative {
            -f
        } else {
            f
        }
    }

    /// The digits as a signed integer (ignoring the point): exact, as a
    /// number read here has at most 15 digits.
    fn signed(self) -> i64 {
        let n = self.significand as i64;
        if self.negative {
            -n
        } else {
            n
        }
    }

    /// As a point's time: serde reads it as an `f64` and takes it when it
    /// is whole. An integer of at most 15 digits is exact either way, so it
    /// skips the float (and the libm `trunc` call behind `fract`).
    fn to_time(self) -> Option<i64> {
        if self.fraction_digits == 0 {
            return Some(self.signed());
        }
        whole_i64(self.to_f64()).ok()
    }

    /// As an `i64` field: serde takes only integers, and reads `-0` as a float.
    fn to_i64(self) -> Option<i64> {
        let integral = self.fraction_digits == 0 && !(self.negative && self.significand == 0);
        integral.then(|| self.signed())
    }
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `true` and steps over `c` when it comes next.
    fn eat_if(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        self.b[self.i..].starts_with(word).then(|| self.i += word.len())
    }

    /// A string without escapes or control characters.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = self.b[start..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        // An escape or a control character ends the run: decline.
        if self.b[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        std::str::from_utf8(&self.b[start..start + len]).ok()
    }

    /// `null` (`None`), or what `value` reads.
    fn or_null<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        value(self).map(Some)
    }

    /// `null` (`None`) or a string.
    fn opt_string(&mut self) -> Option<Option<String>> {
        self.or_null(|r| r.str().map(str::to_owned))
    }

    fn number(&mut self) -> Option<Number> {
        self.ws();
        let b = self.b;
        let negative = b.get(self.i) == Some(&b'-');
        let int_start = self.i + usize::from(negative);
        let (mut significand, mut i) = digits(b, int_start, 0);
        let int_digits = i - int_start;
        // JSON allows no leading zero before another digit, and needs a digit.
        if int_digits == 0 || (int_digits > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut fraction_digits = 0;
        if b.get(i) == Some(&b'.') {
            let end;
            (significand, end) = digits(b, i + 1, significand);
            fraction_digits = end - (i + 1);
            if fraction_digits == 0 {
                return None;
            }
            i = end;
        }
        if int_digits + fraction_digits > MAX_DIGITS as usize || matches!(b.get(i), Some(b'e' | b'E')) {
            return None;
        }
        self.i = i;
        Some(Number { negative, significand, fraction_digits: fraction_digits as u32 })
    }

    /// `[ item (, item)* ]` or `[]`, calling `item` for each.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if !self.eat_if(b',') {
                return self.eat(b']');
            }
        }
    }

    /// `{ "key": value, ... }` or `{}`, calling `member` with each key
    /// (positioned at its value).
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            member(self, key)?;
            if !self.eat_if(b',') {
                return self.eat(b'}');
            }
        }
    }

    /// A struct's fields: calls `field` with each key's index in `keys`; an
    /// unknown key, or one seen twice, declines (serde's derive refuses both).
    fn object(&mut self, keys: &[&str], mut field: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        let mut seen = 0u32;
        self.members(|r, key| {
            let k = keys.iter().position(|&name| name == key)?;
            if seen & (1 << k) != 0 {
                return None;
            }
            seen |= 1 << k;
            field(r, k)
        })
    }

    fn labels(&mut self) -> Option<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        // A repeated label keeps its last value, as serde's map does.
        self.members(|r, k| {
            let v = r.str()?;
            labels.insert(k.to_owned(), v.to_owned());
            Some(())
        })?;
        Some(labels)
    }

    fn batch(&mut self) -> Option<IngestBatch> {
        let mut batch = IngestBatch::default();
        self.object(&["nodes", "series"], |r, k| {
            if k == 0 {
                r.array(|r| r.node().map(|n| batch.nodes.push(n)))
            } else {
                r.array(|r| r.series().map(|s| batch.series.push(s)))
            }
        })?;
        Some(batch)
    }

    fn node(&mut self) -> Option<NodeSpec> {
        let mut node = NodeSpec::default();
        let mut id = None;
        self.object(&["id", "hostname", "machine_guid", "labels"], |r, k| {
            match k {
                0 => id = Some(r.str()?.to_owned()),
                1 => node.hostname = r.opt_string()?,
                2 => node.machine_guid = r.opt_string()?,
                _ => node.labels = r.labels()?,
            }
            Some(())
        })?;
        node.id = id?;
        Some(node)
    }

    fn series(&mut self) -> Option<SeriesSpec> {
        const KEYS: [&str; 10] = [
            "node",
            "context",
            "instance",
            "dimension",
            "units",
            "title",
            "chart_type",
            "update_every",
            "labels",
            "points",
        ];
        let mut s = SeriesSpec::default();
        let (mut context, mut dimension, mut points) = (None, None, None);
        self.object(&KEYS, |r, k| {
            match k {
                0 => s.node = r.opt_string()?,
                1 => context = Some(r.str()?.to_owned()),
                2 => s.instance = r.opt_string()?,
                3 => dimension = Some(r.str()?.to_owned()),
                4 => s.units = r.opt_string()?,
                5 => s.title = r.opt_string()?,
                6 => s.chart_type = r.opt_string()?,
                7 => s.update_every = r.or_null(|r| r.number()?.to_i64())?,
                8 => s.labels = r.labels()?,
                _ => points = Some(r.points()?),
            }
            Some(())
        })?;
        (s.context, s.dimension, s.points) = (context?, dimension?, points?);
        Some(s)
    }

    /// A point as serializers write it, `[t,v]` with `t` a plain integer
    /// and no flag: read with one check per token instead of the general
    /// path's spacing and `null` checks. Any other form (a flag, `null`,
    /// spaces before a token, a signed or fractional time) is left to the
    /// general path: `None`, nothing consumed. What this accepts, the
    /// general path reads to the same point.
    fn compact_point(&mut self) -> Option<Point> {
        let (b, start) = (self.b, self.i);
        if b.get(start) != Some(&b'[') {
            return None;
        }
        let (t, comma) = digits(b, start + 1, 0);
        let t_digits = comma - (start + 1);
        let plain = (1..=MAX_DIGITS as usize).contains(&t_digits) && (t_digits == 1 || b[start + 1] != b'0');
        if !plain || b.get(comma) != Some(&b',') {
            return None;
        }
        self.i = comma + 1;
        match self.number() {
            Some(v) if b.get(self.i) == Some(&b']') => {
                self.i += 1;
                Some(Point { t: t as i64, value: Some(v.to_f64()), anomalous: false })
            }
            _ => {
                self.i = start;
                None
            }
        }
    }

    fn points(&mut self) -> Option<Vec<Point>> {
        let mut points = Vec::with_capacity(self.points_hint.min(MAX_POINTS_HINT));
        self.array(|r| {
            if let Some(p) = r.compact_point() {
                points.push(p);
                return Some(());
            }
            r.eat(b'[')?;
            let t = r.number()?.to_time()?;
            r.eat(b',')?;
            let value = r.or_null(|r| r.number().map(Number::to_f64))?;
            let anomalous = if r.eat_if(b',') {
                match r.peek()? {
                    b't' => r.literal(b"true").map(|()| true)?,
                    _ => r.literal(b"false").map(|()| false)?,
                }
            } else {
                false
            };
            r.eat(b']')?;
            points.push(Point { t, value, anomalous });
            Some(())
        })?;
        self.points_hint = points.len();
        give_back_spare(&mut points);
        Some(points)
    }
}

#[cfg(test)]
#[path = "fast_json_tests.rs"]
mod tests;
