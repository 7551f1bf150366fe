//! Output formats for query results: `json2` (v2/v3), and the v1 family
//! (`json` with optional `jsonwrap`, `csv`, `tsv`, `ssv`, `array`, ...).

pub mod allmetrics;
mod chart_key;
pub mod json2;
mod json2_rows;
pub mod json2_summary;
pub mod long_keys;
pub mod meta;
pub mod meta_options;
pub mod numbers;
#[cfg(test)]
mod test_data;
pub mod v1;
pub mod v1_json;
pub mod weights_v1;
pub mod writer;

use strata_engine::query::request::Options;
use strata_engine::query::result::Approximation;

/// The `approximate` object (json2 `view.approximate`, v1 jsonwrap
/// `approximate`): present only when some buckets came from rollup points
/// that stand in for raw samples tier 0 no longer holds (or a pinned
/// rollup tier the buckets cut).
pub fn approximate_json(a: &Approximation) -> serde_json::Value {
    serde_json::json!({"tiers": a.tiers, "buckets": a.buckets, "first": a.first, "last": a.last, "reason": a.reason})
}

/// A row timestamp as the options ask for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stamp {
    /// Epoch seconds, or milliseconds with `ms`.
    Epoch(i64),
    /// `rfc3339`: `2026-11-23T16:40:00Z` (`.000` added with `ms`).
    Text(String),
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Stamp::Epoch(t) => s.serialize_i64(*t),
            Stamp::Text(t) => s.serialize_str(t),
        }
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stamp::Epoch(t) => write!(f, "{t}"),
            Stamp::Text(t) => f.write_str(t),
        }
    }
}

/// Appends a row's timestamp as JSON: [`time_value`]'s number, or its
/// `rfc3339` text quoted (nothing in it needs escaping).
pub(crate) fn push_time(b: &mut Vec<u8>, t: i64, opts: &Options) {
    match time_value(t, opts) {
        Stamp::Epoch(t) => numbers::push_i64(b, t),
        Stamp::Text(t) => {
            b.push(b'"');
            b.extend_from_slice(t.as_bytes());
            b.push(b'"');
        }
    }
}

/// A row timestamp as the options ask for it: `rfc3339` text, else epoch
/// milliseconds with `ms`, else epoch seconds.
pub fn time_value(t: i64, opts: &Options) -> Stamp {
    if opts.rfc3339 {
        let ((y, mo, d), (h, mi, s)) = civil(t);
        let frac = if opts.ms { ".000" } else { "" };
        Stamp::Text(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z"))
    } else if opts.ms {
        Stamp::Epoch(t * 1000)
    } else {
        Stamp::Epoch(t)
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), the default time column of text formats.
pub fn datetime(t: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(t: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// UTC calendar date and time of epoch seconds `t`.
fn civil(t: i64) -> ((i64, i64, i64), (i64, i64, i64)) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    ((y, m, d), (secs / 3600, secs % 3600 / 60, secs % 60))
}

/// Row indexes in output order: newest first unless `flip`.
pub fn row_order(points: usize, opts: &Options) -> Box<dyn Iterator<Item = usize>> {
    if opts.flip {
        Box::new(0..points)
    } else {
        Box::new((0..points).rev())
    }
}

/// Rounds to at most 7 decimals, as Netdata prints values, so clients that
/// compare text see the same numbers.
pub fn round7(v: f64) -> f64 {
    if !v.is_finite() || v.abs() >= 1e15 {
        return v;
    }
    let r = (v * 1e7).round() / 1e7;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_style() {
        let t = 1_795_451_460; // 2026-11-23 16:31:00 UTC
        let mut o = Options::default();
        assert_eq!(time_value(t, &o), Stamp::Epoch(t));
        o.ms = true;
        assert_eq!(time_value(t, &o), Stamp::Epoch(t * 1000));
        o.rfc3339 = true;
        assert_eq!(time_value(t, &o).to_string(), "2026-11-23T16:31:00.000Z");
        o.ms = false;
        assert_eq!(serde_json::to_string(&time_value(t, &o)).expect("json"), "\"2026-11-23T16:31:00Z\"");
        assert_eq!(datetime(t), "2026-11-23 16:31:00");
        assert_eq!(datetime(-1), "1969-12-31 23:59:59");
    }
}
