//! A streaming JSON writer for the json2 document: bytes straight into
//! one buffer, no intermediate `serde_json::Value` tree.
//!
//! Numbers and strings are formatted by serde_json's own formatter, so the
//! text is byte for byte what `serde_json::to_vec` writes (non-finite
//! floats become `null`, as `json!` makes them). With `long_keys`, every
//! key written by [`Json::key`] goes through [`long_name`]; keys that are
//! caller data (ids, label names) are written with [`Json::raw_key`] and
//! never renamed.
//!
//! Invariant: the caller nests `obj`/`arr` with `end`, and writes a key
//! before every value inside an object. The writer checks this only in
//! debug builds; a mistake is a bug in the document code, not in input.

use serde_json::Value;

use super::long_keys::long_name;
use super::numbers::{push_f64, push_i64, push_round7, push_u64};

struct Frame {
    /// The short key the container sits under (through arrays), which
    /// decides the long names of its keys (`nm` among `nodes` is a
    /// hostname).
    key: &'static str,
    /// No element written yet: no comma before the next one.
    first: bool,
    is_object: bool,
}

pub struct Json {
    buf: Vec<u8>,
    long_keys: bool,
    stack: Vec<Frame>,
    /// The key the next container opens under.
    pending: &'static str,
}

impl Json {
    pub fn new(long_keys: bool, capacity: usize) -> Json {
        Json { buf: Vec::with_capacity(capacity), long_keys, stack: Vec::with_capacity(16), pending: "" }
    }

    pub fn finish(self) -> Vec<u8> {
        debug_assert!(self.stack.is_empty(), "unclosed JSON container");
        self.buf
    }

    /// Comma handling for a value in an array (in an object the key did it).
    fn before_value(&mut self) {
        if let Some(f) = self.stack.last_mut() {
            if !f.is_object {
                if !f.first {
                    self.buf.push(b',');
                }
                f.first = false;
                self.pending = f.key;
            }
        }
    }

    fn before_key(&mut self) -> &'static str {
        let f = self.stack.last_mut();
        debug_assert!(f.as_ref().is_some_and(|f| f.is_object), "a key outside an object");
        match f {
            Some(f) => {
                if !f.first {
                    self.buf.push(b',');
                }
                f.first = false;
                f.key
            }
            None => "",
        }
    }

    /// A key from the document's own vocabulary (renamed with long keys).
    pub fn key(&mut self, k: &'static str) -> &mut Self {
        let parent = self.before_key();
        let name = if self.long_keys { long_name(k, parent).unwrap_or(k) } else { k };
        // The vocabulary needs no escaping: written as is, not scanned.
        debug_assert!(!name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'), "key {name:?} needs escaping");
        self.buf.reserve(name.len() + 3);
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.pending = k;
        self
    }

    /// A key that is caller data (an id, a label name): written as is, and
    /// the value under it belongs to the enclosing object's key (an entry of
    /// `nodes` keyed by GUID is a node).
    pub fn raw_key(&mut self, k: &str) -> &mut Self {
        let parent = self.before_key();
        self.string(k);
        self.buf.push(b':');
        self.pending = parent;
        self
    }

    fn open(&mut self, c: u8, is_object: bool) -> &mut Self {
        self.before_value();
        self.buf.push(c);
        self.stack.push(Frame { key: self.pending, first: true, is_object });
        self
    }

    pub fn obj(&mut self) -> &mut Self {
        self.open(b'{', true)
    }

    pub fn arr(&mut self) -> &mut Self {
        self.open(b'[', false)
    }

    /// Closes the innermost object or array.
    pub fn end(&mut self) -> &mut Self {
        match self.stack.pop() {
            Some(f) => self.buf.push(if f.is_object { b'}' } else { b']' }),
            None => debug_assert!(false, "end without an open container"),
        }
        self
    }

    fn string(&mut self, s: &str) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.before_value();
        self.string(s);
        self
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.before_value();
        push_f64(&mut self.buf, v);
        self
    }

    /// `round7(v)`: a value as the documents print them (7 decimals at most).
    pub fn r7(&mut self, v: f64) -> &mut Self {
        self.before_value();
        push_round7(&mut self.buf, v);
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.before_value();
        push_u64(&mut self.buf, v);
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.before_value();
        push_i64(&mut self.buf, v);
        self
    }

    /// One whole value (an array, say) that `write` appends to the buffer
    /// itself, for loops too hot for a frame per container. `write` must
    /// append exactly one complete JSON value.
    pub fn raw(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.before_value();
        write(&mut self.buf);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.before_value();
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.before_value();
        self.buf.extend_from_slice(b"null");
        self
    }

    pub fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.i64(v),
            None => self.null(),
        }
    }

    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    /// An array of strings.
    pub fn strs<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.arr();
        for s in items {
            self.str(s);
        }
        self.end()
    }

    /// One or more complete values, separated by commas, that were written
    /// elsewhere (another thread's share of an array's elements).
    pub fn raw_elements(&mut self, values: &[u8]) -> &mut Self {
        if !values.is_empty() {
            self.before_value();
            self.buf.extend_from_slice(values);
        }
        self
    }

    /// A value built elsewhere, written as it is (no key renaming).
    pub fn value(&mut self, v: &Value) -> &mut Self {
        self.before_value();
        let _ = serde_json::to_writer(&mut self.buf, v);
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let mut w = Json::new(false, 0);
        w.obj();
        w.key("a")
            .arr()
            .r7(2.000_000_04)
            .r7(f64::INFINITY)
            .f64(1.0)
            .f64(0.1)
            .f64(f64::NAN)
            .f64(-2.5e-9)
            .f64(1e300)
            .u64(7)
            .i64(-3)
            .null()
            .end();
        w.key("s").str("quote \" and \\ and \u{1}");
        w.key("b").bool(true);
        w.key("v").value(&json!({"x": [1, "y"]}));
        w.key("e").obj().end();
        w.end();
        let want = json!({"a": [2.0, null, 1.0, 0.1, null, -2.5e-9, 1e300, 7, -3, null], "s": "quote \" and \\ and \u{1}",
                          "b": true, "v": {"x": [1, "y"]}, "e": {}});
        assert_eq!(w.finish(), serde_json::to_vec(&want).expect("json"));
    }

    #[test]
    fn long_keys_follow_the_enclosing_key_and_leave_caller_keys_alone() {
        let mut w = Json::new(true, 0);
        w.obj();
        w.key("nodes").arr().obj().key("nm").str("web").key("sts").obj().key("arp").f64(0.5).end().end().end();
        w.key("labels").obj().raw_key("nm").strs(["kept"]).end();
        w.key("detail").obj().raw_key("g1").obj().key("nm").str("n").end().end();
        w.key("x").obj().key("nm").str("y").end();
        w.end();
        let want = json!({"nodes": [{"hostname": "web", "statistics": {"anomaly_rate_percent": 0.5}}],
                          "labels": {"nm": ["kept"]}, "detail": {"g1": {"name": "n"}}, "x": {"name": "y"}});
        assert_eq!(w.finish(), serde_json::to_vec(&want).expect("json"));
    }
}
