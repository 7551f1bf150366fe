//! The v1 response body: the `json` table and the `jsonwrap` envelope
//! (around any v1 format), written straight into the response bytes by
//! [`Json`], no `serde_json::Value` tree. Tables of row objects
//! (`objectrows`, whose keys are series names and may repeat) and the
//! other formats' payloads come from [`v1::payload`] and are written as
//! they are.

use serde_json::Value;
use strata_engine::query::request::Format;
use strata_engine::query::result::{QueryResult, PA_EMPTY};

use super::numbers::push_round7;
use super::v1::{self, format_name, names, table_of};
use super::writer::Json;
use super::{push_time, round7, row_order};

/// The body of a v1 answer and its content type.
pub fn write(r: &QueryResult, chart_id: &str) -> (Vec<u8>, &'static str) {
    let opts = &r.request.options;
    let rows_here = matches!(r.request.format, Format::Json | Format::Json2) && !opts.objectrows;
    let (payload, ctype, text) = if rows_here { (Value::Null, "application/json", None) } else { v1::payload(r) };
    if !opts.jsonwrap {
        if let Some(t) = text {
            return (t.into_bytes(), ctype);
        }
    }
    // Rows dominate the size: about 16 bytes a row for the time and 12 a cell.
    let mut w = Json::new(false, 4096 + r.window.points * (16 + r.series.len() * 12));
    let result = |w: &mut Json| {
        if rows_here {
            table(w, r, Cells::Values);
        } else if let Some(t) = &text {
            w.str(t);
        } else {
            w.value(&payload);
        }
    };
    if opts.jsonwrap {
        envelope(&mut w, r, chart_id, result);
        return (w.finish(), "application/json");
    }
    result(&mut w);
    (w.finish(), ctype)
}

/// What a table's cells hold.
#[derive(Clone, Copy)]
enum Cells {
    /// The points' values (`null`, or 0 with `null2zero`, where empty).
    Values,
    /// The points' anomaly rates.
    AnomalyRates,
}

/// `{labels, data}`: one array row per point, `[time, cell per series]`.
fn table(w: &mut Json, r: &QueryResult, cells: Cells) {
    let opts = &r.request.options;
    w.obj();
    w.key("labels").strs(std::iter::once("time").chain(names(r)));
    w.key("data").arr();
    for i in row_order(r.window.points, opts) {
        w.raw(|b| {
            b.push(b'[');
            push_time(b, r.window.bucket_end(i), opts);
            for s in &r.series {
                b.push(b',');
                match cells {
                    Cells::Values if s.flags[i] & PA_EMPTY != 0 => {
                        b.extend_from_slice(if opts.null2zero { b"0.0" } else { b"null" })
                    }
                    Cells::Values => push_round7(b, s.values[i]),
                    Cells::AnomalyRates => push_round7(b, s.arp[i]),
                }
            }
            b.push(b']');
        });
    }
    w.end().end();
}

/// The v1 `jsonwrap` envelope around `result`.
fn envelope(w: &mut Json, r: &QueryResult, chart_id: &str, result: impl FnOnce(&mut Json)) {
    let opts = &r.request.options;
    // Each series' newest row as printed (Netdata 1.37's
    // `view_latest_values`): empty is `null`, or 0 with `null2zero`.
    // `latest_values` is the chart's last stored slot where the engine read
    // it (`db_latest`), else this too.
    let latest = |w: &mut Json| {
        w.arr();
        for s in &r.series {
            match s.values.len().checked_sub(1) {
                Some(i) if s.flags[i] & PA_EMPTY == 0 => w.r7(s.values[i]),
                Some(_) if opts.null2zero => w.r7(0.0),
                _ => w.null(),
            };
        }
        w.end();
    };
    w.obj();
    w.key("api").u64(1).key("id").str(chart_id).key("name").str(chart_id);
    w.key("view_update_every").i64(r.window.view_every).key("update_every").i64(r.update_every);
    w.key("first_entry").opt_i64(r.first_entry).key("last_entry").opt_i64(r.last_entry);
    w.key("before").i64(r.window.before).key("after").i64(r.window.after);
    w.key("group").str(&r.request.time_group.canonical_name());
    let mut options = vec!["jsonwrap"];
    if opts.unaligned {
        options.push("unaligned");
    }
    if opts.flip {
        options.push("flip");
    }
    w.key("options").str(&options.join(","));
    w.key("dimension_names").strs(names(r));
    w.key("dimension_ids").strs(r.series.iter().map(|s| s.key.id.as_str()));
    w.key("functions").arr().end();
    w.key("latest_values");
    match &r.db_latest {
        Some(db) => {
            w.arr();
            for s in &r.series {
                match db.get(&s.key.id).copied().flatten() {
                    Some(v) => w.r7(v),
                    None => w.null(),
                };
            }
            w.end();
        }
        None => latest(w),
    }
    w.key("view_latest_values");
    latest(w);
    w.key("dimensions").u64(r.series.len() as u64).key("points").u64(r.window.points as u64);
    w.key("format").str(format_name(r.request.format));
    w.key("db_points_per_tier").arr();
    for p in r.tier_use.points {
        w.u64(p);
    }
    w.end();
    if let Some(a) = &r.approximation {
        w.key("approximate").value(&super::approximate_json(a));
    }
    w.key("result");
    result(w);
    if opts.jw_anomaly_rates {
        w.key("anomaly_rates");
        if opts.objectrows {
            w.value(&table_of(r, |s, i| Value::from(round7(r.series[s].arp[i]))));
        } else {
            table(w, r, Cells::AnomalyRates);
        }
    }
    let (min, max) = super::v1::single_value_min_max(r).unwrap_or_else(|| r.view_min_max());
    w.key("min").r7(min).key("max").r7(max);
    w.end();
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strata_engine::query::params::parse_params;
    use strata_engine::query::ApiVersion;

    use super::*;
    use crate::format::test_data::{engine, NOW};

    /// A `GET /api/v1/data?chart=c.x` answer.
    fn answer(e: &strata_engine::Engine, format: &str, options: &str, points: usize) -> (QueryResult, Value, Vec<u8>) {
        answer_of(e, format, options, points, None)
    }

    /// The same, of the dimensions `dims` selects, when given.
    fn answer_of(
        e: &strata_engine::Engine,
        format: &str,
        options: &str,
        points: usize,
        dims: Option<&str>,
    ) -> (QueryResult, Value, Vec<u8>) {
        let mut pairs: Vec<(String, String)> = [
            ("chart", "c.x".to_string()),
            ("after", (NOW - 1199).to_string()),
            ("before", NOW.to_string()),
            ("points", points.to_string()),
            ("format", format.to_string()),
            ("options", options.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        pairs.extend(dims.map(|d| ("dimensions".to_string(), d.to_string())));
        let r = e.query(&parse_params(ApiVersion::V1, &pairs).expect("request")).expect("query");
        let (bytes, _) = write(&r, "c.x");
        let doc = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (r, doc, bytes)
    }

    /// The rows a v1 `json` table holds for `r`: newest first unless flipped.
    fn want_rows(r: &QueryResult, empty: Value) -> Vec<Value> {
        let mut rows: Vec<Value> = (0..r.window.points)
            .map(|i| {
                let mut row = vec![json!(r.window.bucket_end(i))];
                row.extend(r.series.iter().map(|s| {
                    if s.flags[i] & PA_EMPTY != 0 {
                        empty.clone()
                    } else {
                        json!(round7(s.values[i]))
                    }
                }));
                Value::Array(row)
            })
            .collect();
        if !r.request.options.flip {
            rows.reverse();
        }
        rows
    }

    #[test]
    fn json_tables_hold_every_point() {
        let e = engine();
        for (options, empty) in [("", Value::Null), ("flip|null2zero", json!(0.0))] {
            for points in [1, 7, 20] {
                let (r, doc, _) = answer(&e, "json", options, points);
                assert_eq!(doc["labels"], json!(["time", "d0", "d1", "d2", "d3", "d4"]), "{options}");
                assert_eq!(doc["data"], Value::Array(want_rows(&r, empty.clone())), "{options}, {points} points");
            }
        }
    }

    #[test]
    fn the_envelope_holds_its_fields_in_order_around_any_format() {
        let e = engine();
        let (r, doc, bytes) = answer(&e, "json", "jsonwrap|jw-anomaly-rates|flip", 20);
        let keys: Vec<&str> = doc.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "api",
                "id",
                "name",
                "view_update_every",
                "update_every",
                "first_entry",
                "last_entry",
                "before",
                "after",
                "group",
                "options",
                "dimension_names",
                "dimension_ids",
                "functions",
                "latest_values",
                "view_latest_values",
                "dimensions",
                "points",
                "format",
                "db_points_per_tier",
                "result",
                "anomaly_rates",
                "min",
                "max"
            ]
        );
        assert_eq!(doc["options"], json!("jsonwrap,flip"));
        assert_eq!(doc["points"], json!(20));
        assert_eq!(doc["result"]["data"], Value::Array(want_rows(&r, Value::Null)));
        // d3's newest buckets have data: each view_latest_value is the newest row's.
        let newest: Vec<Value> = r.series.iter().map(|s| json!(round7(s.values[19]))).collect();
        assert_eq!(doc["view_latest_values"], Value::Array(newest));
        // latest_values: each dimension's sample at the chart's last entry
        // (NOW), not the newest bucket's average.
        let at_now = |k: u32| round7((NOW % 97) as f64 * 1.234_567_89 - 40.0 + f64::from(k) / 3.0);
        assert_eq!(doc["latest_values"], json!((0..5).map(at_now).collect::<Vec<_>>()));
        assert_eq!(doc["anomaly_rates"]["data"][0][1], json!(round7(r.series[0].arp[0])));
        assert!(!bytes.contains(&b'\n'), "compact JSON");

        let (r, doc, _) = answer(&e, "csv", "jsonwrap", 20);
        let (_, _, csv) = v1::payload(&r);
        assert_eq!(doc["result"], json!(csv.expect("csv text")), "a text format is the result string");
        assert_eq!(doc["format"], json!("csv"));
    }

    /// `array` and `ssv` print one value a row as Netdata 1.37 does: the
    /// sum of the row's values, `null` for a row of empty cells (0 with
    /// `null2zero`), with `min2max` the span of the values and 0; and
    /// `jsonwrap`'s min and max are over those row values, an empty row
    /// as 0 (an outside probe against Netdata 1.37 found sums of 0, the
    /// span ignored, and min and max over the cells).
    #[test]
    fn single_value_rows_follow_netdata() {
        let e = engine();
        let ask = |format: &str, options: &str, dims: &str| {
            let (r, _, bytes) = answer_of(&e, format, options, 20, Some(dims));
            (r, bytes)
        };
        let cells = |r: &QueryResult, i: usize| -> Vec<Option<f64>> {
            r.series.iter().map(|s| (s.flags[i] & PA_EMPTY == 0).then(|| round7(s.values[i]))).collect()
        };
        for dims in ["d3", "d1|d3"] {
            for options in ["", "null2zero", "min2max", "min2max|null2zero"] {
                let (r, bytes) = ask("array", &format!("{options}|flip"), dims);
                let got: Vec<Value> = serde_json::from_slice(&bytes).expect("array");
                let want: Vec<Option<f64>> = (0..r.window.points)
                    .map(|i| {
                        let c = cells(&r, i);
                        if c.iter().all(Option::is_none) {
                            return options.contains("null2zero").then_some(0.0);
                        }
                        let v = c.iter().map(|v| v.unwrap_or(0.0));
                        Some(round7(if options.contains("min2max") {
                            v.clone().fold(0.0, f64::max) - v.fold(0.0, f64::min)
                        } else {
                            v.sum()
                        }))
                    })
                    .collect();
                assert_eq!(got, want.iter().map(|v| json!(v)).collect::<Vec<_>>(), "{dims} {options}");
                if dims == "d3" {
                    assert!(want.iter().any(Option::is_none) != options.contains("null2zero"), "the gap's rows");
                }
                let (_, ssv) = ask("ssv", &format!("{options}|flip"), dims);
                let printed: Vec<String> = want.iter().map(|v| v.map_or("null".into(), |v| v.to_string())).collect();
                assert_eq!(String::from_utf8(ssv).expect("utf8"), printed.join(" "), "{dims} {options}");
                let (_, wrapped) = ask("array", &format!("{options}|jsonwrap"), dims);
                let doc: Value = serde_json::from_slice(&wrapped).expect("json");
                let rows = want.iter().map(|v| v.unwrap_or(0.0));
                let (lo, hi) = (rows.clone().fold(f64::INFINITY, f64::min), rows.fold(f64::NEG_INFINITY, f64::max));
                assert_eq!((doc["min"].as_f64(), doc["max"].as_f64()), (Some(lo), Some(hi)), "{dims} {options}");
            }
        }
    }

    /// `markdown` is a table with its separator row, `|` between cells and
    /// CRLF line ends; `html` a centred page (Netdata 1.37's shapes).
    #[test]
    fn markdown_and_html_are_netdatas_tables() {
        let e = engine();
        let (r, _, bytes) = answer(&e, "markdown", "seconds", 2);
        let md = String::from_utf8(bytes).expect("utf8");
        let lines: Vec<&str> = md.split("\r\n").collect();
        assert_eq!(lines[0], "time|d0|d1|d2|d3|d4");
        assert_eq!(lines[1], ":---:|:---:|:---:|:---:|:---:|:---:");
        let t = r.window.bucket_end(1);
        assert!(lines[2].starts_with(&format!("{t}|{}|", round7(r.series[0].values[1]))), "{md}");
        assert_eq!(lines.len(), 5, "header, separator, two rows, and the last CRLF: {md:?}");
        let (_, _, bytes) = answer(&e, "html", "seconds", 2);
        let html = String::from_utf8(bytes).expect("utf8");
        assert!(html.starts_with("<html>\n<center>\n<table border=\"0\" cellpadding=\"5\" cellspacing=\"5\">\n<tr><td>time</td><td>d0</td>"), "{html}");
        assert!(html.ends_with("</td></tr>\n</table>\n</center>\n</html>\n"), "{html}");
        let (_, doc, _) = answer(&e, "html", "seconds|jsonwrap", 2);
        assert_eq!(doc["result"], json!(html), "the same page inside jsonwrap");
        // Inside jsonwrap, text tables end their lines with LF alone.
        for format in ["csv", "tsv", "markdown"] {
            let (_, _, plain) = answer(&e, format, "seconds", 2);
            let (_, doc, _) = answer(&e, format, "seconds|jsonwrap", 2);
            let plain = String::from_utf8(plain).expect("utf8");
            assert!(plain.contains("\r\n"), "{format}: CRLF alone");
            assert_eq!(doc["result"], json!(plain.replace("\r\n", "\n")), "{format}");
        }
    }

    #[test]
    fn row_objects_and_other_formats_are_the_payload() {
        let e = engine();
        for (format, options) in [("json", "objectrows"), ("array", ""), ("csvjsonarray", "")] {
            let (r, _, bytes) = answer(&e, format, options, 7);
            let (payload, _, _) = v1::payload(&r);
            assert_eq!(bytes, serde_json::to_vec(&payload).expect("json"), "{format}");
        }
        let (r, _, bytes) = answer(&e, "csv", "", 7);
        assert_eq!(Some(String::from_utf8(bytes).expect("utf8")), v1::payload(&r).2);
    }
}
