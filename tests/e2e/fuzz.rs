//! Bounded, seeded HTTP fuzzing of the real server. About 1500 generated
//! requests against a server holding the shared dataset:
//!
//! 1. `GET /api/v{1,2,3}/data` with random sets of real and unknown
//!    parameter names, valid values, huge / negative / non-numeric numbers,
//!    empty strings, unicode, patterns, percent-encoding garbage, repeats;
//! 2. `POST /api/v3/data` and `/api/v3/spaces/{s}/rooms/{r}/data` with JSON
//!    bodies mutated from a valid spec-1.4 body (dropped, added and retyped
//!    fields, deep nesting, long strings, byte-level damage, odd
//!    content types);
//! 3. `POST /api/v1/ingest` with mutated valid batches (wrong types, huge
//!    timestamps, missing fields, duplicates) on nodes and contexts of their
//!    own, so the dataset stays intact;
//! 4. odd paths and methods, and odd `Authorization` headers everywhere.
//!
//! Every answer must arrive (no hang, no dropped connection), must not be a
//! 5xx (a 504 only when the request itself set a `timeout`), every error
//! must be JSON in the shape of its path family, and every 2xx that is
//! JSON by format or content type must parse. Afterwards the server must
//! still answer a known query exactly as the reference model says.
//!
//! `STRATA_FUZZ_SEED` (decimal or 0x-hex) and `STRATA_FUZZ_CASES` override
//! the fixed seed and the case count; failures name the case number, so a
//! run with the same seed reproduces them. `STRATA_FUZZ_TRACE=1` prints
//! every request; `STRATA_FUZZ_CHECK_EVERY=N` re-runs the known query every
//! N cases (default 100), `1` names the case that broke stored data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::dataset::{self, compare, expected, guids, metrics, Agg, Expect, Key, TimeGroup, Window, NOW, T0};
use crate::harness::{Resp, Server};

const DEFAULT_SEED: u64 = 0x5EED_F022_5712_A7A5;
const DEFAULT_CASES: usize = 1500;
/// A request not answered within this is a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures listed in the assertion message.
const SHOWN_FAILURES: usize = 20;
/// The run stops after this many requests got no answer.
const MAX_UNANSWERED: usize = 3;
/// Bodies above this are sent with the admin token only.
const LARGE_BODY: usize = 16 * 1024;
/// The known query is re-run this often during the run.
const KNOWN_QUERY_EVERY: usize = 100;

// ---------------------------------------------------------------------------
// A small deterministic PRNG (splitmix64).

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability p / 100.
    fn percent(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse::<u64>(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")))
}

// ---------------------------------------------------------------------------
// Value pools.

/// Strings that are wrong for almost every parameter.
const GARBAGE: &[&str] = &[
    "",
    " ",
    "1e309",
    "-1e309",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "4611686018427387904",
    "1.5",
    "-0",
    "-0.0",
    "0x10",
    "1e3",
    "1e-3",
    "1e18",
    "-1e18",
    " 7 ",
    "+5",
    "--5",
    "5-",
    "ünïcødé",
    "日本語",
    "🙂🙃",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "\u{202e}",
    "\t\r\n",
    "*",
    "!",
    "!*",
    "|",
    ",",
    "|||",
    ",,,",
    "!!!",
    "*!*",
    "a|!b|*c*",
    "!*|!*",
    "**",
    "***a***",
    "a:b",
    ":",
    "a:",
    ":b",
    "a:b:c",
    "!a:!b",
    "[",
    "]",
    "{",
    "}",
    "\\",
    "'",
    "\"",
    "%",
    "%%",
    "%zz",
    "null",
    "true",
    "[]",
    "{}",
    "<script>",
    "../../etc/passwd",
    "=",
    "&",
    "?",
    "#",
];

/// Window ends and starts: absolute, relative, extremes.
fn time_value(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => (T0 + rng.range(-100, 7300)).to_string(),
        1 => (-rng.range(1, 8000)).to_string(),
        2 => rng.range(1, 8000).to_string(),
        3 => rng.pick(&["0", "-600", "-1", "1", "94608000", "-94608000", "94608001", "-94608001"]).to_string(),
        4 => NOW.to_string(),
        5 => (NOW + rng.range(1, 400_000_000)).to_string(),
        6 => rng.range(-4_000_000_000, 4_000_000_000).to_string(),
        _ => rng.pick(&["9223372036854775807", "-9223372036854775808", "253402300799", "-62135596800"]).to_string(),
    }
}

fn count_value(rng: &mut Rng, cap: i64) -> String {
    match rng.below(4) {
        0 => rng.range(0, cap).to_string(),
        1 => rng.range(0, 10).to_string(),
        2 => rng.pick(&["0", "1", "86400", "86401", "-1"]).to_string(),
        _ => rng.range(-5, 700).to_string(),
    }
}

const GROUP_BY: &[&str] = &[
    "dimension",
    "instance",
    "node",
    "label",
    "context",
    "units",
    "selected",
    "percentage-of-instance",
    "chart",
    "node,dimension",
    "instance|node",
    "label,node",
    "dimension instance",
    "nodez",
];

const AGGREGATIONS: &[&str] = &["average", "avg", "sum", "min", "max", "extremes", "percentage", "median", "nope"];

const TIME_GROUPS: &[&str] = &[
    "average",
    "avg",
    "mean",
    "min",
    "max",
    "sum",
    "incremental_sum",
    "incremental-sum",
    "median",
    "trimmed-median",
    "trimmed-median5",
    "trimmed-mean",
    "trimmed-mean25",
    "percentile",
    "percentile95",
    "percentile99",
    "stddev",
    "cv",
    "rsd",
    "coefficient-of-variation",
    "ses",
    "ema",
    "ewma",
    "des",
    "countif",
    "extremes",
    "latest",
    "avg2",
];

const TIME_GROUP_OPTIONS: &[&str] = &[
    "95", "5", "0", "100", "101", "-1", ">0", ">=10", "<5", "<=10", "=3", "==3", ":3", "!=0", "!:0", "<>1", "abc", ">",
];

const OPTIONS: &[&str] = &[
    "jsonwrap",
    "minify",
    "debug",
    "plan",
    "details",
    "nonzero",
    "null2zero",
    "absolute",
    "abs",
    "display-absolute",
    "percentage",
    "flip",
    "reversed",
    "unaligned",
    "seconds",
    "ms",
    "milliseconds",
    "rfc3339",
    "objectrows",
    "google_json",
    "min2max",
    "match-ids",
    "match-names",
    "natural-points",
    "virtual-points",
    "anomaly-bit",
    "selected-tier",
    "raw",
    "jw-anomaly-rates",
    "all-dimensions",
    "group-by-labels",
    "label-quotes",
    "minimal-stats",
    "long-json-keys",
    "cardinality-limit-all",
    "mcp-info",
    "bogus-option",
];

const FORMATS: &[&str] = &[
    "json2",
    "json",
    "csv",
    "tsv",
    "tsv-excel",
    "ssv",
    "ssvcomma",
    "array",
    "markdown",
    "html",
    "csvjsonarray",
    "xml",
];

/// Patterns over the dataset's names (real hits and misses).
const PATTERNS: &[&str] = &[
    "*",
    "disk.io",
    "system.cpu",
    "disk.*",
    "!disk.io,*",
    "!disk.io|*",
    "disk.io|system.cpu",
    "n1",
    "n2",
    "host-1",
    "host-*",
    "*sda*",
    "disk.sdb",
    "reads",
    "reads,writes",
    "!reads|*",
    "user|system",
    "!*",
    "nothing.here",
    "disk.sda@host-1",
    "*@host-2",
];

const LABEL_PATTERNS: &[&str] = &[
    "device:sda",
    "device:!sda",
    "!device:sd*",
    "device:sd*",
    "cpu:*",
    "cpu:all",
    "rack:r1",
    "env:e2e",
    "device:sda|device:sdb",
    "device:sda,cpu:all",
    "nolabel:x",
    "*",
];

/// A printable but odd string: unicode, separators, control characters.
fn odd_string(rng: &mut Rng) -> String {
    const CHARS: &[char] = &[
        'a',
        'z',
        '0',
        'é',
        '日',
        '🙂',
        '\u{0}',
        '\u{1f}',
        '\u{202e}',
        '\u{fffd}',
        '\u{10ffff}',
        ' ',
        '\t',
        '*',
        '!',
        '|',
        ',',
        ':',
        '"',
        '\\',
        '\n',
        '%',
        '&',
        '=',
        '[',
        ']',
    ];
    let n = rng.range(1, 24) as usize;
    (0..n).map(|_| rng.pick(CHARS)).collect()
}

/// Long strings: plain, all-wildcard, alternating wildcards (pattern matcher stress).
fn long_string(rng: &mut Rng, max: usize) -> String {
    let n = rng.range(1, max as i64) as usize;
    match rng.below(5) {
        0 => "a".repeat(n),
        1 => "*".repeat(n),
        2 => "*a".repeat(n / 2 + 1),
        3 => "!".repeat(n),
        _ => "é".repeat(n / 2 + 1),
    }
}

fn garbage(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => odd_string(rng),
        1 => long_string(rng, 8000),
        2 => rng.next_u64().to_string(),
        3 => format!("-{}", rng.next_u64()),
        _ => rng.pick(GARBAGE).to_string(),
    }
}

/// A list of option names joined by one of the accepted separators.
fn options_value(rng: &mut Rng) -> String {
    let n = rng.range(1, 4) as usize;
    let sep = rng.pick(&[",", "|", " ", ", "]);
    (0..n).map(|_| rng.pick(OPTIONS)).collect::<Vec<_>>().join(sep)
}

// ---------------------------------------------------------------------------
// Requests.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    DataGet,
    DataPost,
    Ingest,
    Other,
}

struct Req {
    family: Family,
    method: &'static str,
    /// Path and query, already a valid URI path.
    path: String,
    content_type: Option<Vec<u8>>,
    authorization: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
    /// A 2xx must be JSON (data routes whose format is JSON or wrapped).
    json_ok: bool,
}

impl Req {
    /// The request set a query `timeout`: the documented 504 is allowed.
    fn timeout_given(&self) -> bool {
        self.path.contains("timeout") || self.body.as_ref().is_some_and(|b| contains(b, b"timeout"))
    }

    /// Cloud-shaped errors are answered on `/spaces` paths.
    fn cloud(&self) -> bool {
        let path = self.path.split('?').next().unwrap_or("");
        path.contains("/spaces") || path.ends_with("/accounts/me")
    }

    /// The request for a failure message, the admin token left out.
    fn describe(&self, token: &str) -> String {
        let mut s = format!("{} {}", self.method, truncate(&self.path, 400));
        if let Some(ct) = &self.content_type {
            let _ = write!(s, "\n    content-type: {:?}", String::from_utf8_lossy(ct));
        }
        match &self.authorization {
            None => s.push_str("\n    authorization: (none)"),
            Some(a) => {
                let shown = String::from_utf8_lossy(a).replace(token, "<admin token>");
                let _ = write!(s, "\n    authorization: {:?}", truncate(&shown, 120));
            }
        }
        if let Some(b) = &self.body {
            let _ = write!(s, "\n    body ({} bytes): {}", b.len(), truncate(&String::from_utf8_lossy(b), 300));
        }
        s
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        let _ = write!(out, "… ({} chars)", s.chars().count());
    }
    out
}

/// Percent-encodes everything but unreserved characters (and, when asked,
/// the pattern characters `* ! , :` which are legal in a query as they are).
fn enc(s: &str, keep_pattern_chars: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_pattern_chars && matches!(b, b'*' | b'!' | b',' | b':'));
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Raw query fragments: valid URI characters, invalid encodings.
const RAW_FRAGMENTS: &[&str] = &[
    "%",
    "%zz",
    "%C3%28",
    "%FF%FE",
    "%00",
    "%ZZ=1",
    "=",
    "==",
    "&",
    "&&",
    "a",
    "=x",
    "after",
    "after=",
    "points=%",
    "tier=%2",
    "options=%E2%82",
    "+",
    "++=++",
    ";",
    "a;b=c",
    "group_by[=x",
    "group_by]=1",
    "%5B%5D=1",
    "%26=%3D",
    "format=%00json",
    "contexts=%2A%00",
    "nodes=%ED%A0%80",
];

/// Real parameter names (the spec's, v1's and aliases).
const GET_NAMES: &[&str] = &[
    "after",
    "before",
    "points",
    "max_points",
    "group_by",
    "group_by[0]",
    "group_by[1]",
    "group_by_label",
    "group_by_label[0]",
    "group_by_label[1]",
    "aggregation",
    "aggregation[0]",
    "aggregation[1]",
    "time_group",
    "group",
    "time_group_options",
    "group_options",
    "time_resampling",
    "gtime",
    "tier",
    "options",
    "format",
    "scope_nodes",
    "scope_contexts",
    "scope_instances",
    "scope_dimensions",
    "scope_labels",
    "nodes",
    "contexts",
    "context",
    "instances",
    "chart",
    "dimensions",
    "dimension",
    "dim",
    "dims",
    "labels",
    "chart_labels_filter",
    "alerts",
    "timeout",
    "cardinality_limit",
    "limit",
    "show_dimensions",
    "callback",
    "filename",
    "tqx",
];

/// Names no route knows, and near-misses of real ones.
const JUNK_NAMES: &[&str] = &[
    "",
    "foo",
    "AFTER",
    "after ",
    " after",
    "group_by[",
    "group_by[]",
    "group_by[2]",
    "group_by[-1]",
    "group_by[99999999999999999999]",
    "aggregation[x]",
    "group_by_label[7]",
    "aggregation[1][0]",
    "ünïcødé",
    "\u{0}",
    "points\u{0}",
    "a=b",
    "&",
];

fn get_value(rng: &mut Rng, name: &str) -> String {
    if rng.percent(30) {
        return garbage(rng);
    }
    let base = name.split('[').next().unwrap_or(name);
    match base {
        "after" | "before" => time_value(rng),
        "points" | "max_points" => count_value(rng, 700),
        "cardinality_limit" | "limit" => count_value(rng, 20),
        "timeout" => rng.pick(&["0", "1", "5", "10000", "-1"]).to_string(),
        "time_resampling" | "gtime" => count_value(rng, 7200),
        "tier" => rng.pick(&["0", "1", "2", "3", "4", "-1"]).to_string(),
        "group_by" => rng.pick(GROUP_BY).to_string(),
        "group_by_label" => rng.pick(&["device", "cpu", "rack", "env", "device,cpu", "nope", "a|b|c"]).to_string(),
        "aggregation" => rng.pick(AGGREGATIONS).to_string(),
        "time_group" | "group" => rng.pick(TIME_GROUPS).to_string(),
        "time_group_options" | "group_options" => rng.pick(TIME_GROUP_OPTIONS).to_string(),
        "options" => options_value(rng),
        "format" => rng.pick(FORMATS).to_string(),
        "labels" | "chart_labels_filter" | "scope_labels" => rng.pick(LABEL_PATTERNS).to_string(),
        "show_dimensions" | "callback" | "filename" | "tqx" => odd_string(rng),
        _ => rng.pick(PATTERNS).to_string(),
    }
}

/// A window inside the dataset (so most queries hit real data).
fn window_pairs(rng: &mut Rng) -> Vec<(String, String)> {
    let after = T0 + rng.range(1, 6000);
    let before = after + rng.range(30, 1800);
    vec![
        ("after".into(), after.to_string()),
        ("before".into(), before.to_string()),
        ("points".into(), rng.range(1, 120).to_string()),
    ]
}

fn gen_get(rng: &mut Rng) -> Req {
    let path = rng.pick(&["/api/v3/data", "/api/v2/data", "/api/v1/data"]);
    let v1 = path == "/api/v1/data";
    let mut pairs: Vec<(String, String)> = Vec::new();
    if rng.percent(75) {
        let key =
            if v1 { rng.pick(&["context", "chart", "contexts"]) } else { rng.pick(&["contexts", "scope_contexts"]) };
        pairs.push((key.into(), rng.pick(&["disk.io", "system.cpu", "disk.io,system.cpu", "*"]).into()));
        pairs.extend(window_pairs(rng));
    }
    let extra = rng.below(8);
    for _ in 0..extra {
        let name = if rng.percent(88) { rng.pick(GET_NAMES) } else { rng.pick(JUNK_NAMES) };
        let value = get_value(rng, name);
        pairs.push((name.to_string(), value));
    }
    // Repeat a parameter with another value now and then.
    if !pairs.is_empty() && rng.percent(15) {
        let (name, _) = pairs[rng.below(pairs.len())].clone();
        let value = get_value(rng, &name);
        pairs.push((name, value));
    }
    let keep = rng.percent(50);
    let mut parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k, keep), enc(v, keep))).collect();
    if rng.percent(12) {
        let at = rng.below(parts.len() + 1);
        parts.insert(at, rng.pick(RAW_FRAGMENTS).to_string());
    }
    let query = parts.join("&");
    // The last non-empty `format` decides a v1 answer's type.
    let format = pairs.iter().rev().find(|(k, v)| k == "format" && !v.is_empty()).map(|(_, v)| v.trim().to_string());
    let wrapped = pairs.iter().any(|(k, v)| k == "options" && v.split([',', '|', ' ']).any(|o| o.trim() == "jsonwrap"));
    let json_format = format.as_deref().is_none_or(|f| matches!(f, "json" | "json2" | "array" | "csvjsonarray"));
    Req {
        family: Family::DataGet,
        method: "GET",
        path: if query.is_empty() && rng.percent(50) { path.to_string() } else { format!("{path}?{query}") },
        content_type: None,
        authorization: None,
        body: None,
        json_ok: !v1 || wrapped || json_format,
    }
}

// ---------------------------------------------------------------------------
// JSON mutation.

/// A marker replaced, after serialising, by raw text JSON cannot hold
/// (`1e309`, `NaN`, ...).
const RAW_MARK: &str = "\u{1}RAW:";

fn raw_token(text: &str) -> Value {
    Value::String(format!("{RAW_MARK}{text}\u{1}"))
}

/// Serialises `v`, replacing raw markers by their text.
fn serialise(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string(v).expect("serialising a fuzz body");
    while let Some(start) = s.find("\"\\u0001RAW:") {
        let rest = &s[start + "\"\\u0001RAW:".len()..];
        let Some(end) = rest.find("\\u0001\"") else { break };
        let text = rest[..end].to_string();
        s.replace_range(start..start + "\"\\u0001RAW:".len() + end + "\\u0001\"".len(), &text);
    }
    s.into_bytes()
}

/// Numbers at and past the edges of every numeric type.
fn edge_number(rng: &mut Rng) -> Value {
    match rng.below(22) {
        0 => json!(i64::MAX),
        1 => json!(i64::MIN),
        2 => json!(u64::MAX),
        3 => json!(1e308),
        4 => json!(-1e308),
        5 => json!(1.5),
        6 => json!(-1),
        7 => json!(0),
        8 => json!(1_000_000_000_000_000_000_i64),
        9 => json!(4_102_444_800_i64),
        10 => json!(-62_135_596_800_i64),
        11 => json!(1e-300),
        12 => json!(9e15),
        13 => json!(-0.0),
        14 => raw_token("1e309"),
        15 => raw_token("-1e309"),
        16 => raw_token("NaN"),
        17 => raw_token("Infinity"),
        18 => raw_token("99999999999999999999999999"),
        19 => raw_token("-0"),
        20 => json!(rng.next_u64() as i64),
        _ => json!(rng.range(-100_000, 100_000)),
    }
}

fn random_scalar(rng: &mut Rng, dataset_names: bool) -> Value {
    match rng.below(8) {
        0 => Value::Null,
        1 => json!(rng.percent(50)),
        2 | 3 => edge_number(rng),
        4 if dataset_names => json!(rng.pick(PATTERNS)),
        5 => json!(odd_string(rng)),
        _ => json!(rng.pick(GARBAGE)),
    }
}

fn random_value(rng: &mut Rng, depth: u32, dataset_names: bool) -> Value {
    if depth >= 3 || rng.percent(60) {
        return random_scalar(rng, dataset_names);
    }
    let n = rng.below(4);
    if rng.percent(50) {
        Value::Array((0..n).map(|_| random_value(rng, depth + 1, dataset_names)).collect())
    } else {
        let mut m = Map::new();
        for _ in 0..n {
            let k = if rng.percent(50) { rng.pick(BODY_KEYS).to_string() } else { odd_string(rng) };
            m.insert(k, random_value(rng, depth + 1, dataset_names));
        }
        Value::Object(m)
    }
}

/// Field names of query bodies and ingest batches.
const BODY_KEYS: &[&str] = &[
    "scope",
    "selectors",
    "window",
    "aggregations",
    "metrics",
    "time",
    "group_by",
    "groupBy",
    "group_by_label",
    "aggregation",
    "time_group",
    "time_group_options",
    "time_resampling",
    "format",
    "options",
    "timeout",
    "limit",
    "cardinality_limit",
    "after",
    "before",
    "points",
    "tier",
    "duration",
    "baseline",
    "nodes",
    "contexts",
    "instances",
    "dimensions",
    "labels",
    "alerts",
    "series",
    "node",
    "context",
    "instance",
    "dimension",
    "units",
    "title",
    "chart_type",
    "update_every",
    "id",
    "hostname",
];

/// Nested arrays / objects `depth` levels deep.
fn deep(rng: &mut Rng, depth: usize) -> Value {
    let mut v = random_scalar(rng, false);
    let objects = rng.percent(50);
    for _ in 0..depth {
        v = if objects { json!({ "a": v }) } else { json!([v]) };
    }
    v
}

/// A random descendant of `v` (possibly `v` itself).
fn walk<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let mut cur = v;
    loop {
        let n = match &*cur {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            _ => 0,
        };
        if n == 0 || !rng.percent(70) {
            return cur;
        }
        let i = rng.below(n);
        cur = match cur {
            Value::Array(a) => &mut a[i],
            Value::Object(m) => m.values_mut().nth(i).expect("child index is in range"),
            other => other,
        };
    }
}

/// One structural mutation somewhere in `v`.
fn mutate(rng: &mut Rng, v: &mut Value, dataset_names: bool) {
    let target = walk(rng, v);
    match rng.below(10) {
        // Drop a field / element.
        0 | 1 => match target {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len())).cloned().expect("key index is in range");
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            other => *other = Value::Null,
        },
        // Add a field / element.
        2 => match target {
            Value::Object(m) => {
                let k = if rng.percent(70) { rng.pick(BODY_KEYS).to_string() } else { odd_string(rng) };
                m.insert(k, random_value(rng, 0, dataset_names));
            }
            Value::Array(a) => a.push(random_value(rng, 0, dataset_names)),
            other => *other = random_value(rng, 0, dataset_names),
        },
        // Retype.
        3..=5 => *target = random_value(rng, 0, dataset_names),
        6 => *target = edge_number(rng),
        7 => *target = json!(rng.pick(GARBAGE)),
        // Deep nesting, up to a few hundred levels.
        8 => {
            let depth = rng.range(1, 400) as usize;
            *target = deep(rng, depth);
        }
        // Long strings (≤ 1 MiB, rarely that long).
        _ => {
            let max = if rng.percent(5) { 1 << 20 } else { 4096 };
            *target = json!(long_string(rng, max));
        }
    }
}

/// Byte-level damage to a serialised body.
fn damage(rng: &mut Rng, bytes: &mut Vec<u8>) {
    match rng.below(12) {
        0 => {
            let at = rng.below(bytes.len().max(1));
            bytes.truncate(at);
        }
        1 => {
            let at = rng.below(bytes.len() + 1);
            let junk: Vec<u8> = (0..rng.range(1, 8)).map(|_| rng.next_u64() as u8).collect();
            bytes.splice(at..at, junk);
        }
        2 => {
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                bytes[at] = rng.pick(&[0u8, 0xff, b'"', b'{', b']', b',', b'\\', 0x80]);
            }
        }
        3 => bytes.extend_from_slice(rng.pick(&[&b" trailing"[..], b"}", b"{}", b"\x00", b"\n\n{\"a\":1}"])),
        4 => {
            let mut v = b"\xef\xbb\xbf".to_vec();
            v.extend_from_slice(bytes);
            *bytes = v;
        }
        5 => *bytes = (0..rng.range(1, 300)).map(|_| rng.next_u64() as u8).collect(),
        6 => *bytes = "[".repeat(rng.range(100, 100_000) as usize).into_bytes(),
        7 => *bytes = "{\"a\":".repeat(rng.range(100, 20_000) as usize).into_bytes(),
        _ => {
            *bytes = rng
                .pick(&[
                    &b""[..],
                    b" ",
                    b"null",
                    b"[]",
                    b"{}",
                    b"\"x\"",
                    b"0",
                    b"NaN",
                    b"{\"window\": NaN}",
                    b"{\"a\":1,}",
                    b"{'a':1}",
                    b"{\"window\":{\"points\":5},\"window\":\"x\"}",
                    b"{\"window\":{\"after\":1e99999}}",
                    b"{\"scope\":{\"contexts\":[\"disk.io\"]}} {\"x\":1}",
                    b"{\"\\ud800\":1}",
                    b"{\"a\":\"\\ud800\"}",
                    b"{\"series\":[{\"context\":\"\\u0000\"}]}",
                    b"a=b&c=d",
                ])
                .to_vec()
        }
    }
}

const CONTENT_TYPES: &[&[u8]] = &[
    b"text/plain",
    b"",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=zz",
    b"application/json; charset=latin1",
    b"application/jsonx",
    b"\xe4/\xf6",
];

fn content_type(rng: &mut Rng) -> Option<Vec<u8>> {
    if rng.percent(85) {
        Some(b"application/json".to_vec())
    } else if rng.percent(20) {
        None
    } else {
        Some(rng.pick(CONTENT_TYPES).to_vec())
    }
}

// ---------------------------------------------------------------------------
// POST query bodies.

fn valid_query_body(rng: &mut Rng) -> Value {
    let after = T0 + rng.range(1, 6000);
    let before = after + rng.range(30, 1800);
    let contexts: &[&str] = rng.pick(&[&["disk.io"][..], &["system.cpu"], &["disk.io", "system.cpu"], &["*"]]);
    let mut metrics_passes = vec![json!({
        "group_by": [rng.pick(&GROUP_BY[..8])],
        "group_by_label": if rng.percent(30) { json!(["device"]) } else { json!([]) },
        "aggregation": rng.pick(&AGGREGATIONS[..6]),
    })];
    if rng.percent(25) {
        metrics_passes.push(json!({"group_by": [rng.pick(&["node", "instance", "context"])], "aggregation": "avg"}));
    }
    json!({
        "scope": {"nodes": [], "contexts": contexts, "instances": [], "dimensions": [], "labels": []},
        "selectors": {"nodes": ["*"], "contexts": ["*"], "instances": ["*"], "dimensions": ["*"], "labels": ["*"], "alerts": ["*"]},
        "window": {"after": after, "before": before, "points": rng.range(1, 120), "tier": null, "duration": 0, "baseline": null},
        "aggregations": {
            "metrics": metrics_passes,
            "time": {"time_group": rng.pick(&TIME_GROUPS[..27]), "time_group_options": null, "time_resampling": null},
        },
        "format": "json2",
        "options": ["jsonwrap", "minify"],
        "limit": null,
    })
}

/// A path segment for `/api/v3/spaces/{s}/rooms/{r}/data`.
fn room_segment(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => enc(&odd_string(rng), false),
        1 => "x".repeat(rng.range(1, 300) as usize),
        _ => rng
            .pick(&["s", "r", "x", "y", "2a3b4c5d-0000-4000-8000-000000000000", "%20", "%2F", "%C3%A9", "..", "*", "-"])
            .to_string(),
    }
}

fn gen_post(rng: &mut Rng) -> Req {
    let path = if rng.percent(60) {
        "/api/v3/data".to_string()
    } else {
        format!("/api/v3/spaces/{}/rooms/{}/data", room_segment(rng), room_segment(rng))
    };
    let mut v = valid_query_body(rng);
    for _ in 0..rng.below(5) {
        mutate(rng, &mut v, true);
    }
    let mut bytes = serialise(&v);
    if rng.percent(15) {
        damage(rng, &mut bytes);
    }
    Req {
        family: Family::DataPost,
        method: "POST",
        path,
        content_type: content_type(rng),
        authorization: None,
        body: Some(bytes),
        json_ok: true,
    }
}

// ---------------------------------------------------------------------------
// Ingest batches: own nodes and contexts, so the dataset stays as it is.

fn valid_batch(rng: &mut Rng) -> Value {
    let mut series = Vec::new();
    for _ in 0..rng.range(1, 3) {
        let every = rng.pick(&[1i64, 1, 1, 5, 60]);
        let start = NOW - rng.range(0, 3000);
        let points: Vec<Value> = (0..rng.range(1, 20))
            .map(|i| {
                let t = start + i * every;
                match rng.below(6) {
                    0 => json!([t, null]),
                    1 => json!([t, rng.range(-1000, 1000) as f64 / 8.0, rng.percent(50)]),
                    _ => json!([t, rng.range(-1000, 1000)]),
                }
            })
            .collect();
        let mut s = json!({
            "context": rng.pick(&["fuzz.a", "fuzz.b"]),
            "dimension": rng.pick(&["x", "y", "z"]),
            "points": points,
        });
        if rng.percent(80) {
            s["node"] = json!(rng.pick(&["fz1", "fz2"]));
        }
        if rng.percent(70) {
            s["instance"] = json!(rng.pick(&["fuzz.i1", "fuzz.i2"]));
            s["units"] = json!("u");
            s["title"] = json!("fuzz");
            s["chart_type"] = json!(rng.pick(&["line", "stacked", "area"]));
            s["update_every"] = json!(every);
            s["labels"] = json!({"k": rng.pick(&["v1", "v2"])});
        }
        series.push(s);
    }
    let mut b = json!({ "series": series });
    if rng.percent(40) {
        b["nodes"] = json!([{"id": "fz1", "hostname": "fuzz-1", "labels": {"env": "fuzz"}}]);
    }
    b
}

/// Ingest-specific damage: timestamps, values, shapes, duplicates. Earlier
/// mutations may have reshaped the batch, so every step looks before it
/// writes.
fn mutate_batch(rng: &mut Rng, b: &mut Value) {
    let n_series = b.get("series").and_then(Value::as_array).map_or(0, Vec::len);
    let pick = rng.below(n_series.max(1));
    let what = rng.below(10);
    if what == 5 {
        // Duplicates: the same series twice, the same node record twice.
        if let Some(a) = b.get_mut("series").and_then(Value::as_array_mut) {
            if let Some(first) = a.first().cloned() {
                a.push(first);
            }
        }
        if let Some(obj) = b.as_object_mut() {
            obj.insert("nodes".into(), json!([{"id": "fz2", "hostname": "a"}, {"id": "fz2", "hostname": "b"}]));
        }
        return;
    }
    let Some(series) = b.get_mut("series").and_then(|s| s.get_mut(pick)).and_then(Value::as_object_mut) else {
        return;
    };
    match what {
        0..=2 => {
            let Some(points) = series.get_mut("points").and_then(Value::as_array_mut) else { return };
            if points.is_empty() {
                return;
            }
            let pi = rng.below(points.len());
            let point = &mut points[pi];
            if what == 2 {
                *point = match rng.below(5) {
                    0 => json!([]),
                    1 => json!([NOW]),
                    2 => json!([NOW, 1, true, 4]),
                    3 => json!({"t": NOW, "v": 1}),
                    _ => json!(NOW),
                };
            } else if let Some(fields) = point.as_array_mut() {
                let field = rng.below(3);
                let v = if rng.percent(70) { edge_number(rng) } else { random_value(rng, 0, false) };
                if field < fields.len() {
                    fields[field] = v;
                } else {
                    fields.push(v);
                }
            }
        }
        3 => {
            let k = rng.pick(&["context", "dimension", "points", "node", "instance", "update_every", "labels"]);
            series.remove(k);
        }
        4 => {
            let v = match rng.below(3) {
                0 => edge_number(rng),
                1 => json!(rng.pick(&[0i64, -1, 86_400, 1 << 40])),
                _ => json!("1"),
            };
            series.insert("update_every".into(), v);
        }
        6 => {
            let mut labels = Map::new();
            for i in 0..rng.range(1, 300) {
                labels.insert(format!("k{i}"), if rng.percent(80) { json!("v") } else { random_scalar(rng, false) });
            }
            if rng.percent(30) {
                labels.insert(String::new(), json!(""));
            }
            series.insert("labels".into(), Value::Object(labels));
        }
        7 => {
            // Many points over a wide range, unsorted, some timestamps repeated.
            let every = rng.pick(&[1i64, 1, 7]);
            let n = rng.range(100, 5000);
            let base = NOW - rng.range(0, 100_000);
            let pts: Vec<Value> = (0..n).map(|i| json!([base + (i * 7919 % n) * every, i % 97])).collect();
            series.insert("points".into(), json!(pts));
            series.insert("update_every".into(), json!(every));
        }
        8 => {
            // An otherwise valid point far outside any window a query can
            // ask for (beyond now + 1 year, or before now - 10 years).
            let Some(points) = series.get_mut("points").and_then(Value::as_array_mut) else { return };
            let far = rng.pick(&[NOW + 2 * 366 * 86_400, 4_102_444_800, 253_402_300_799, NOW - 11 * 366 * 86_400, 1]);
            if let Some(first) = points.first_mut() {
                *first = json!([far, 1.0]);
            }
        }
        _ => {
            let field = rng.pick(&["context", "dimension", "instance", "node", "units", "title", "chart_type"]);
            let v = match rng.below(3) {
                0 => json!(odd_string(rng)),
                1 => json!(long_string(rng, 5000)),
                _ => json!(rng.pick(GARBAGE)),
            };
            series.insert(field.into(), v);
        }
    }
}

fn gen_ingest(rng: &mut Rng) -> Req {
    let mut v = valid_batch(rng);
    for _ in 0..rng.below(3) {
        mutate_batch(rng, &mut v);
    }
    if rng.percent(30) {
        mutate(rng, &mut v, false);
    }
    let mut bytes = serialise(&v);
    if rng.percent(10) {
        damage(rng, &mut bytes);
    }
    Req {
        family: Family::Ingest,
        method: "POST",
        path: "/api/v1/ingest".into(),
        content_type: content_type(rng),
        authorization: None,
        body: Some(bytes),
        json_ok: true,
    }
}

// ---------------------------------------------------------------------------
// Odd paths and methods.

const METHODS: &[&str] = &["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FNORD"];

const ODD_PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/",
    "/api/v1",
    "/api/v3/data/",
    "/api/v3/data/extra",
    "/api/v4/data",
    "/api/v1/info",
    "/api/v3/nodes",
    "/api/v3/spaces",
    "/api/v3/spaces/x/rooms/y/data/z",
    "/api/v3/spaces/x/rooms/y/nodes",
    "/api/v2/accounts/me",
    "/health",
    "/health/x",
    "/api/v1/tokens/zzz",
    "/api/v1/tokens/",
    "/api/v1/whoami",
    "/api/v1/ingest",
    "/api/v3/data",
    "/api/v2/data",
    "//api/v3/data",
    "/api/v3/./data",
    "/api/v3/../v3/data",
    "/api/v3/%64ata",
    "/%00",
    "/api/v3/data%20",
    "/api/v3/data;x=1",
    "/API/V3/DATA",
    "/api/v3/data?",
    "/api/v1/data?chart=disk.io&format=csv",
    "/api/v3/data#frag",
    "/%C3%A9",
];

fn gen_other(rng: &mut Rng) -> Req {
    let method = rng.pick(METHODS);
    let path = match rng.below(6) {
        0 => format!("/{}", enc(&odd_string(rng), false)),
        1 => format!("/api/v1/{}", "a".repeat(rng.range(1, 3000) as usize)),
        2 => format!("/api/v1/tokens/{}", enc(&garbage(rng), false)),
        _ => rng.pick(ODD_PATHS).to_string(),
    };
    // `#frag` is not sent by a client; keep the path a valid request target.
    let path = path.split('#').next().unwrap_or("/").to_string();
    let body = match method {
        "GET" | "HEAD" | "OPTIONS" if rng.percent(80) => None,
        _ if rng.percent(40) => None,
        _ => Some(if rng.percent(50) { serialise(&random_value(rng, 0, false)) } else { b"{}".to_vec() }),
    };
    Req {
        family: Family::Other,
        method,
        path,
        content_type: body.as_ref().map(|_| b"application/json".to_vec()),
        authorization: None,
        body,
        json_ok: false,
    }
}

/// Mostly the admin token; sometimes a broken `Authorization` header.
fn authorization(rng: &mut Rng, token: &str) -> Option<Vec<u8>> {
    if rng.percent(93) {
        return Some(format!("Bearer {token}").into_bytes());
    }
    let v: Vec<u8> = match rng.below(13) {
        0 => return None,
        1 => b"Bearer".to_vec(),
        2 => b"Bearer ".to_vec(),
        3 => format!("Bearer  {token}").into_bytes(),
        4 => format!("bearer {token}").into_bytes(),
        5 => b"Basic dXNlcjpwYXNz".to_vec(),
        6 => b"Bearer strata_".to_vec(),
        7 => format!("Bearer {token}x").into_bytes(),
        8 => format!("Bearer {token} ").into_bytes(),
        9 => token.as_bytes().to_vec(),
        10 => format!("Bearer {}", "a".repeat(4000)).into_bytes(),
        11 => b"Bearer \xff\xfe\x80".to_vec(),
        _ => format!("Token {token}").into_bytes(),
    };
    Some(v)
}

fn gen_case(rng: &mut Rng, token: &str) -> Req {
    let roll = rng.below(100);
    let mut r = if roll < 40 {
        gen_get(rng)
    } else if roll < 70 {
        gen_post(rng)
    } else if roll < 88 {
        gen_ingest(rng)
    } else {
        gen_other(rng)
    };
    r.authorization = authorization(rng, token);
    // A refused request's body is not read: the server answers and closes,
    // and a client still writing a large body sees a broken pipe instead of
    // the answer (HTTP allows this). Large bodies go with the admin token.
    if r.body.as_ref().is_some_and(|b| b.len() > LARGE_BODY) {
        r.authorization = Some(format!("Bearer {token}").into_bytes());
    }
    r
}

// ---------------------------------------------------------------------------
// Sending and checking.

/// No connection reuse: the server may close a connection after refusing a
/// request whose body it did not read, and a client reusing it would see a
/// dropped connection that says nothing about the request at hand.
fn fuzz_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .allow_non_standard_methods(true)
        .max_redirects(0)
        .build()
        .into()
}

fn send(a: &ureq::Agent, base: &str, r: &Req) -> Result<Resp, String> {
    let mut b = ureq::http::Request::builder().method(r.method).uri(format!("{base}{}", r.path));
    if let Some(ct) = &r.content_type {
        b = b.header("Content-Type", ct.as_slice());
    }
    if let Some(h) = &r.authorization {
        b = b.header("Authorization", h.as_slice());
    }
    let result = match &r.body {
        Some(body) => b.body(body.clone()).map(|req| a.run(req)),
        None => b.body(()).map(|req| a.run(req)),
    };
    let resp = result
        .map_err(|e| format!("TEST BUG: the request could not be built: {e}"))?
        .map_err(|e| format!("no answer: {e}"))?;
    Resp::from_http(resp)
}

/// ureq refuses to send an `Authorization` value that is not visible
/// ASCII; such requests go out over a plain socket.
fn needs_raw(r: &Req) -> bool {
    r.authorization.as_ref().is_some_and(|a| a.iter().any(|&b| !(0x20..0x7f).contains(&b)))
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
fn send_raw(base: &str, r: &Req) -> Result<Resp, String> {
    use std::io::{Read as _, Write as _};
    let addr = base.strip_prefix("http://").ok_or_else(|| format!("TEST BUG: base {base} is not http://"))?;
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| format!("no answer: connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut out = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n", r.method, r.path).into_bytes();
    for (name, value) in [("Content-Type", &r.content_type), ("Authorization", &r.authorization)] {
        if let Some(v) = value {
            out.extend_from_slice(format!("{name}: ").as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    let body = r.body.as_deref().unwrap_or_default();
    if r.body.is_some() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    stream.write_all(&out).map_err(|e| format!("no answer: writing the request: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("no answer: reading the response: {e}"))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        format!("no answer: no complete response head in {:?}", truncate(&String::from_utf8_lossy(&raw), 200))
    })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no answer: bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        rest = dechunk(&rest).ok_or_else(|| format!("status {status}, but the chunked body is malformed"))?;
    }
    Ok(Resp {
        status,
        www_authenticate: header("www-authenticate"),
        retry_after: header("retry-after"),
        content_type: header("content-type"),
        connection: header("connection"),
        allow: header("allow"),
        text: String::from_utf8_lossy(&rest).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `Ok` when a 4xx/5xx body is JSON in the shape of its path family.
fn error_shape(r: &Req, a: &Resp) -> Result<(), String> {
    let Some(b) = a.json_opt() else {
        return Err(format!("error body is not JSON (content-type {:?})", a.content_type));
    };
    let nonempty = |k: &str| b[k].as_str().is_some_and(|s| !s.is_empty());
    if r.cloud() {
        if nonempty("errorCode") && nonempty("errorMsgKey") && nonempty("errorMessage") {
            return Ok(());
        }
        return Err("error body lacks the Cloud shape {errorCode, errorMsgKey, errorMessage}".into());
    }
    if nonempty("error") && b["status"] == json!(a.status) {
        Ok(())
    } else {
        Err(format!("error body lacks the agent shape {{\"error\", \"status\": {}}}", a.status))
    }
}

fn check(r: &Req, a: &Resp) -> Result<(), String> {
    let head = r.method == "HEAD";
    match a.status {
        500..=599 => {
            // The documented answer to an expired `timeout` (spec 6.3).
            if a.status == 504 && r.timeout_given() && error_shape(r, a).is_ok() {
                return Ok(());
            }
            Err(format!("server error {}", a.status))
        }
        400..=499 if head => Ok(()),
        400..=499 => error_shape(r, a),
        200..=299 if head => Ok(()),
        200..=299 => {
            let says_json = a.content_type.as_deref().is_some_and(|c| c.starts_with("application/json"));
            if !(r.json_ok || says_json) {
                return Ok(());
            }
            let Some(v) = a.json_opt() else {
                return Err(format!("2xx body is not JSON (content-type {:?})", a.content_type));
            };
            match r.family {
                Family::Ingest if v["accepted"].as_u64().is_none() || v["rejected_late"].as_u64().is_none() => {
                    Err("ingest 2xx lacks numeric 'accepted' / 'rejected_late'".into())
                }
                Family::DataGet | Family::DataPost if r.json_ok && !(v.is_object() || v.is_array()) => {
                    Err("data 2xx is JSON but neither an object nor an array".into())
                }
                _ => Ok(()),
            }
        }
        other => Err(format!("unexpected status {other}")),
    }
}

// ---------------------------------------------------------------------------
// The known query the server must still answer exactly.

fn known_query_errors(s: &Server) -> Vec<String> {
    let w = Window { end: 3600, v: 60, points: 30 };
    let contexts = ["disk.io", "system.cpu"];
    let ms: Vec<dataset::Metric> = metrics().into_iter().filter(|m| contexts.contains(&m.context)).collect();
    let passes = [(Key::Dimension, Agg::Sum)];
    let body = json!({
        "scope": {"contexts": contexts},
        "window": w.json(),
        "aggregations": {"metrics": [Key::Dimension.pass(Agg::Sum)], "time": {"time_group": "average"}},
    });
    let r = s.request("/api/v3/data", crate::harness::Auth::Admin, Some(&serialise(&body)));
    if r.status != 200 {
        return vec![format!("known query answered {}: {}", r.status, r.snippet())];
    }
    let Some(resp) = r.json_opt() else { return vec![format!("known query answer is not JSON: {}", r.snippet())] };
    let want = expected(&Expect { metrics: &ms, window: w, tg: TimeGroup::Average, passes: &passes }, &guids(&resp));
    compare(&resp, &w, &want, true, false)
}

// ---------------------------------------------------------------------------

struct Failure {
    case: usize,
    req: String,
    status: Option<u16>,
    answer: String,
    why: String,
}

impl Failure {
    fn new(case: usize, req: String, why: String) -> Failure {
        Failure { case, req, status: None, answer: String::new(), why }
    }

    /// Crashes, hangs and 5xx first, then wrong error bodies.
    fn severity(&self) -> u8 {
        match self.status {
            None => 0,
            Some(s) if s >= 500 => 0,
            Some(_) => 1,
        }
    }

    /// The kind of failure, for the summary (case-specific text dropped).
    fn kind(&self) -> String {
        let status = self.status.map_or("-".to_string(), |s| s.to_string());
        let why: String = self.why.split(" (").next().unwrap_or(&self.why).chars().take(90).collect();
        format!("{status} {why}")
    }
}

/// Every `thread '…' panicked at LOCATION:` line of the server's stderr with
/// the message line after it.
fn server_panics(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("thread '") && l.contains(" panicked at "))
        .map(|(i, l)| format!("{l} {}", lines.get(i + 1).copied().unwrap_or_default()))
        .collect()
}

#[test]
fn fuzz_no_request_gets_a_5xx_a_hang_or_a_non_json_error() {
    let seed = env_u64("STRATA_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("STRATA_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    eprintln!("fuzz: seed {seed:#x} ({seed}), {cases} cases (STRATA_FUZZ_SEED / STRATA_FUZZ_CASES override)");

    let s = Server::start(Some(NOW));
    dataset::load(&s);
    let before = known_query_errors(&s);
    assert!(before.is_empty(), "the known query is wrong before any fuzzing:\n{}", before.join("\n"));

    // STRATA_FUZZ_TRACE=1 prints every request and its status.
    let trace = std::env::var_os("STRATA_FUZZ_TRACE").is_some();
    // The known query is re-run every this many cases, to pin down a case
    // that breaks stored data.
    let check_every = env_u64("STRATA_FUZZ_CHECK_EVERY").map_or(KNOWN_QUERY_EVERY, |n| n as usize);
    let mut known_broken = false;
    let agent = fuzz_agent();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut failures: Vec<Failure> = Vec::new();
    let mut server_died = false;
    let mut unanswered = 0;
    // family -> status -> count
    let mut stats: BTreeMap<Family, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut slowest: Vec<(Duration, usize, String)> = Vec::new();
    for case in 0..cases {
        // Each case from its own stream: case N is the same whatever came before.
        let mut case_rng = Rng::new(rng.next_u64());
        let r = gen_case(&mut case_rng, &s.token);
        let t = Instant::now();
        let answer = if needs_raw(&r) { send_raw(&s.base, &r) } else { send(&agent, &s.base, &r) };
        let took = t.elapsed();
        if check_every > 0 && (case + 1) % check_every == 0 && !known_broken {
            let errs = known_query_errors(&s);
            if !errs.is_empty() {
                known_broken = true;
                let why = format!(
                    "after case #{case} the known query is wrong; it was right {check_every} cases earlier \
                     (STRATA_FUZZ_CHECK_EVERY=1 STRATA_FUZZ_TRACE=1 names the case): {}",
                    errs.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                );
                let req = if check_every == 1 {
                    r.describe(&s.token)
                } else {
                    format!("one of cases #{}..=#{case}", (case + 1).saturating_sub(check_every))
                };
                failures.push(Failure::new(case, req, why));
            }
        }
        if trace {
            let status = answer.as_ref().map_or_else(|e| e.clone(), |a| a.status.to_string());
            eprintln!("#{case} [{status}] {:.0} ms {}", took.as_secs_f64() * 1000.0, r.describe(&s.token));
        }
        slowest.push((took, case, format!("{} {}", r.method, truncate(&r.path, 120))));
        slowest.sort_by_key(|x| std::cmp::Reverse(x.0));
        slowest.truncate(5);
        match answer {
            Ok(a) => {
                *stats.entry(r.family).or_default().entry(a.status).or_default() += 1;
                if let Err(why) = check(&r, &a) {
                    let answer = a.snippet();
                    failures.push(Failure { case, req: r.describe(&s.token), status: Some(a.status), answer, why });
                }
            }
            Err(why) => {
                failures.push(Failure::new(case, r.describe(&s.token), why));
                unanswered += 1;
                // A dead server fails every later case the same way, and
                // hangs cost REQUEST_TIMEOUT each: stop here.
                if !server_answers(&agent, &s.base) {
                    let why = format!("the server stopped answering after case #{case}");
                    failures.push(Failure::new(case, "GET /health".into(), why));
                    server_died = true;
                    break;
                }
                if unanswered >= MAX_UNANSWERED {
                    let why = format!("stopped after {unanswered} unanswered requests (case #{case})");
                    failures.push(Failure::new(case, "(fuzz loop)".into(), why));
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!("fuzz: {cases} cases in {:.1} s; status counts per family:", elapsed.as_secs_f64());
    for (family, counts) in &stats {
        eprintln!("  {family:?}: {counts:?}");
    }
    eprintln!("fuzz: slowest requests:");
    for (took, case, what) in &slowest {
        eprintln!("  #{case} {:.0} ms {what}", took.as_secs_f64() * 1000.0);
    }

    // Afterwards: the server is alive, answers the known query exactly, and
    // never panicked.
    if server_died || !server_answers(&agent, &s.base) {
        server_died = true;
        failures.push(Failure::new(cases, "GET /health".into(), "the server is not answering after the run".into()));
    } else {
        let errs = known_query_errors(&s);
        if !errs.is_empty() {
            let why = format!(
                "after the run the known query is wrong ({} mismatches): {}",
                errs.len(),
                errs.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            );
            failures.push(Failure::new(cases, "POST /api/v3/data (known query)".into(), why));
        }
    }
    let stderr = s.stderr_text();
    let panics = server_panics(&stderr);
    if !panics.is_empty() {
        let mut f =
            Failure::new(cases, "(server stderr)".into(), format!("the server panicked {} time(s)", panics.len()));
        f.answer = panics.iter().take(10).cloned().collect::<Vec<_>>().join("\n    ");
        failures.push(f);
    }

    // The fuzz must reach real query execution and real validation, or it
    // proves nothing (checked on runs of some size).
    if cases >= 300 && !server_died {
        let count = |f: Family, ok: fn(u16) -> bool| -> usize {
            stats.get(&f).map_or(0, |m| m.iter().filter(|(st, _)| ok(**st)).map(|(_, n)| n).sum())
        };
        for f in [Family::DataGet, Family::DataPost, Family::Ingest] {
            let ok = count(f, |st| (200..300).contains(&st));
            let bad = count(f, |st| st == 400);
            let all = count(f, |_| true);
            assert!(
                ok * 10 >= all && bad * 10 >= all,
                "{f:?}: {ok} 2xx and {bad} 400 of {all}: the generator no longer exercises both outcomes"
            );
        }
    }

    if !failures.is_empty() {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for f in &failures {
            *kinds.entry(f.kind()).or_default() += 1;
        }
        let mut msg = format!(
            "{} failure(s) in {cases} fuzz cases (seed {seed:#x}; rerun with STRATA_FUZZ_SEED={seed:#x}); by kind:\n",
            failures.len()
        );
        for (kind, n) in &kinds {
            let _ = writeln!(msg, "  {n:4} × {kind}");
        }
        failures.sort_by_key(|f| (f.severity(), f.case));
        let _ = write!(msg, "\nfirst {} (crashes, hangs and 5xx first):\n", SHOWN_FAILURES.min(failures.len()));
        for f in failures.iter().take(SHOWN_FAILURES) {
            let status = f.status.map_or("none".to_string(), |s| s.to_string());
            let _ = write!(
                msg,
                "\n#{}: {}\n  request: {}\n  status: {status}\n  answer: {}\n",
                f.case, f.why, f.req, f.answer
            );
        }
        if failures.len() > SHOWN_FAILURES {
            let _ = write!(msg, "\n… and {} more", failures.len() - SHOWN_FAILURES);
        }
        panic!("{msg}");
    }
}

fn server_answers(a: &ureq::Agent, base: &str) -> bool {
    a.get(format!("{base}/health")).call().is_ok_and(|r| r.status().as_u16() == 200)
}
