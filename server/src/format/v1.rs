//! v1 output formats: `json` (optionally wrapped by `jsonwrap`), `csv`,
//! `tsv`, `ssv`/`ssvcomma`, `array`, `csvjsonarray`, `markdown`, `html`.
//! Column labels are series names, as v1 clients show them.

use serde_json::{json, Map, Value};
use strata_engine::query::request::Format;
use strata_engine::query::result::QueryResult;
use strata_engine::query::result::PA_EMPTY;

use super::{datetime, round7, row_order, time_value};

fn cell(r: &QueryResult, s: usize, i: usize) -> Option<f64> {
    let sr = &r.series[s];
    if sr.flags[i] & PA_EMPTY != 0 {
        r.request.options.null2zero.then_some(0.0)
    } else {
        Some(round7(sr.values[i]))
    }
}

pub(super) fn names(r: &QueryResult) -> Vec<&str> {
    r.series.iter().map(|s| s.key.name.as_str()).collect()
}

/// A row as one value, for the single-value formats (`array`, `ssv`), as
/// Netdata 1.37 takes it: the sum of the row's values, or with `min2max`
/// the span of its values and 0 (an empty cell counting as 0); `None`
/// when every cell is empty (printed `null`, or 0 with `null2zero`).
fn row_value(r: &QueryResult, i: usize) -> Option<f64> {
    let (mut sum, mut lo, mut hi, mut any) = (0.0, 0.0f64, 0.0f64, false);
    for s in &r.series {
        let v = if s.flags[i] & PA_EMPTY != 0 {
            0.0
        } else {
            any = true;
            round7(s.values[i])
        };
        sum += v;
        (lo, hi) = (lo.min(v), hi.max(v));
    }
    any.then_some(if r.request.options.min2max { hi - lo } else { sum })
}

/// Each row's [`row_value`], as printed: `None` is `null`.
fn row_values(r: &QueryResult) -> impl Iterator<Item = Option<f64>> + '_ {
    let null2zero = r.request.options.null2zero;
    row_order(r.window.points, &r.request.options).map(move |i| match row_value(r, i) {
        None if null2zero => Some(0.0),
        v => v.map(round7),
    })
}

/// `jsonwrap`'s `min` and `max` for the single-value formats: over the
/// row values, an empty row counting as 0 (Netdata 1.37's rule).
pub(super) fn single_value_min_max(r: &QueryResult) -> Option<(f64, f64)> {
    if !matches!(r.request.format, Format::Array | Format::Ssv | Format::SsvComma) {
        return None;
    }
    let mut rows = (0..r.window.points).map(|i| round7(row_value(r, i).unwrap_or(0.0)));
    let first = rows.next()?;
    Some(rows.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
}

fn json_table(r: &QueryResult) -> Value {
    table_of(r, |s, i| json!(cell(r, s, i)))
}

/// `{labels, data}` with one row per point and `value(series, point)` cells
/// (rows as objects with `objectrows`).
pub(super) fn table_of(r: &QueryResult, value: impl Fn(usize, usize) -> Value) -> Value {
    let opts = &r.request.options;
    let mut labels = vec!["time"];
    labels.extend(names(r));
    let rows: Vec<Value> = row_order(r.window.points, opts)
        .map(|i| {
            let t = time_value(r.window.bucket_end(i), opts);
            if opts.objectrows {
                let mut m = Map::new();
                m.insert("time".into(), json!(t));
                for (s, n) in names(r).into_iter().enumerate() {
                    m.insert(n.into(), value(s, i));
                }
                Value::Object(m)
            } else {
                let mut row = vec![json!(t)];
                row.extend((0..r.series.len()).map(|s| value(s, i)));
                Value::Array(row)
            }
        })
        .collect();
    json!({"labels": labels, "data": rows})
}

fn text_table(r: &QueryResult, sep: &str, eol: &str) -> String {
    let opts = &r.request.options;
    let mut out = String::new();
    let q = if opts.label_quotes { "\"" } else { "" };
    out.push_str(&format!("{q}time{q}"));
    for n in names(r) {
        out.push_str(sep);
        out.push_str(&format!("{q}{n}{q}"));
    }
    out.push_str(eol);
    if r.request.format == Format::Markdown {
        // Netdata's markdown: a table, its columns centred (the marks
        // quoted like the labels).
        out.push_str(&format!("{q}:---:{q}"));
        for _ in names(r) {
            out.push_str(sep);
            out.push_str(&format!("{q}:---:{q}"));
        }
        out.push_str(eol);
    }
    for i in row_order(r.window.points, opts) {
        let t = r.window.bucket_end(i);
        if opts.seconds || opts.ms || opts.rfc3339 {
            out.push_str(&time_value(t, opts).to_string());
        } else {
            out.push_str(&datetime(t));
        }
        for s in 0..r.series.len() {
            out.push_str(sep);
            if let Some(v) = cell(r, s, i) {
                out.push_str(&v.to_string());
            } else {
                out.push_str("null");
            }
        }
        out.push_str(eol);
    }
    out
}

/// The payload in the requested format, plus its content type.
pub fn payload(r: &QueryResult) -> (Value, &'static str, Option<String>) {
    let opts = &r.request.options;
    // Text tables end their lines with CRLF, or LF inside `jsonwrap`'s
    // result string (Netdata 1.37 writes them so).
    let eol = if opts.jsonwrap { "\n" } else { "\r\n" };
    match r.request.format {
        Format::Json | Format::Json2 => (json_table(r), "application/json", None),
        Format::Array => (Value::Array(row_values(r).map(|v| json!(v)).collect()), "application/json", None),
        Format::CsvJsonArray => {
            let mut rows = vec![Value::Array(
                std::iter::once(json!("time")).chain(names(r).into_iter().map(|n| json!(n))).collect(),
            )];
            for i in row_order(r.window.points, opts) {
                let mut row = vec![json!(time_value(r.window.bucket_end(i), opts))];
                row.extend((0..r.series.len()).map(|s| json!(cell(r, s, i))));
                rows.push(Value::Array(row));
            }
            (Value::Array(rows), "application/json", None)
        }
        Format::Csv => (Value::Null, "text/csv; charset=utf-8", Some(text_table(r, ",", eol))),
        Format::Tsv => (Value::Null, "text/tab-separated-values; charset=utf-8", Some(text_table(r, "\t", eol))),
        Format::Markdown => (Value::Null, "text/markdown; charset=utf-8", Some(text_table(r, "|", eol))),
        Format::Html => {
            // Netdata 1.37's page, the table centred (inside `jsonwrap` too).
            let (head, tail) = (
                "<html>\n<center>\n<table border=\"0\" cellpadding=\"5\" cellspacing=\"5\">\n",
                "</table>\n</center>\n</html>\n",
            );
            let mut s = String::from(head);
            for line in text_table(r, "</td><td>", "\n").lines() {
                s.push_str(&format!("<tr><td>{line}</td></tr>\n"));
            }
            s.push_str(tail);
            (Value::Null, "text/html; charset=utf-8", Some(s))
        }
        Format::Ssv | Format::SsvComma => {
            let sep = if r.request.format == Format::Ssv { " " } else { "," };
            let v: Vec<String> =
                row_values(r).map(|v| v.map_or_else(|| "null".to_string(), |v| v.to_string())).collect();
            (Value::Null, "text/plain; charset=utf-8", Some(v.join(sep)))
        }
    }
}

pub(super) fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json2 => "json2",
        Format::Json => "json",
        Format::Csv => "csv",
        Format::Tsv => "tsv",
        Format::Ssv => "ssv",
        Format::SsvComma => "ssvcomma",
        Format::Array => "array",
        Format::Markdown => "markdown",
        Format::Html => "html",
        Format::CsvJsonArray => "csvjsonarray",
    }
}

#[cfg(test)]
mod tests {
    use super::datetime;

    #[test]
    fn datetimes_are_utc_civil_times() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_795_442_520), "2026-11-23 14:02:00");
        assert_eq!(datetime(951_782_400), "2000-02-29 00:00:00");
    }
}
