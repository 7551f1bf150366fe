//! Output formats for query results: `json2` (v2/v3), and the v1 family
//! (`json` with optional `jsonwrap`, `csv`, `tsv`, `ssv`, `array`, ...).

pub mod json2;
pub mod stats;
pub mod v1;

use strata_engine::query::request::Options;

/// A row timestamp as the options ask for it (seconds or milliseconds).
pub fn time_value(t: i64, opts: &Options) -> i64 {
    if opts.ms {
        t * 1000
    } else {
        t
    }
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
