//! Every `nd_*` function equals the JSON API's time group on the same
//! buckets: exactly through the pushdown, within float rounding through
//! plain DataFusion (sums in another order), and `nd_query` exactly.

use std::collections::BTreeMap;

use serde_json::json;
use strata_engine::query::body::parse_body;
use strata_engine::query::request::ApiVersion;
use strata_engine::query::result::PA_EMPTY;
use strata_engine::Engine;

use super::*;
use crate::functions::NdFunction;

type Answer = BTreeMap<(String, String, i64), Option<f64>>;

/// The JSON API's per-metric answer over buckets of `step` ending in
/// `(after_excl, before]`: the non-empty buckets.
fn json_api(e: &Engine, tg: &str, opt: Option<&str>, after_excl: i64, before: i64, step: i64) -> Answer {
    let mut out = BTreeMap::new();
    for n in NODES {
        for d in DIMS {
            let mut time = json!({"time_group": tg});
            if let Some(o) = opt {
                time["time_group_options"] = json!(o);
            }
            let body = json!({
                "scope": {"contexts": ["t.c"], "nodes": [n]},
                "selectors": {"dimensions": [d]},
                "window": {"after": after_excl + 1, "before": before, "points": (before - after_excl) / step},
                "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}], "time": time},
            });
            let req = parse_body(ApiVersion::V3, &body).expect("body");
            let r = e.query(&req).expect("query");
            assert_eq!(r.window.view_every, step, "{tg}: window {:?}", r.window);
            assert_eq!(r.series.len(), 1, "{tg} {n} {d}");
            let s = &r.series[0];
            for i in 0..s.values.len() {
                if s.flags[i] & PA_EMPTY == 0 {
                    out.insert((n.to_string(), d.to_string(), r.window.bucket_end(i)), Some(s.values[i]));
                }
            }
        }
    }
    out
}

fn sql_answer(
    sql: &SqlEngine,
    f: &str,
    param: Option<&str>,
    after_excl: i64,
    before: i64,
    step: i64,
    extra: &str,
) -> (Answer, String) {
    let arg = match param {
        Some(p) if p.parse::<f64>().is_ok() => format!(", {p}"),
        Some(p) => format!(", '{p}'"),
        None => String::new(),
    };
    let q = format!(
        "SELECT node, context, instance, dimension, nd_bucket({step}, ts) AS b, {f}(value{arg}) AS v FROM samples \
         WHERE context = 't.c' AND ts > {} AND ts <= {}{extra} GROUP BY node, context, instance, dimension, b",
        ts(after_excl),
        ts(before)
    );
    let a = sql.run_blocking(&q, None).unwrap_or_else(|e| panic!("{q}: {e}"));
    let explain = sql.run_blocking(&format!("EXPLAIN {q}"), None).expect("explain");
    let plan = rows(&explain.batches).into_iter().flatten().collect::<Vec<_>>().join("\n");
    (keyed(&a.batches).into_iter().filter(|(_, v)| v.is_some()).collect(), plan)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Every function, its parameter, the JSON API's name and option.
fn cases() -> Vec<(NdFunction, Option<&'static str>)> {
    vec![
        (NdFunction::Average, None),
        (NdFunction::Sum, None),
        (NdFunction::Min, None),
        (NdFunction::Max, None),
        (NdFunction::Extremes, None),
        (NdFunction::Median, None),
        (NdFunction::Median, Some("10")),
        (NdFunction::TrimmedMedian, None),
        (NdFunction::Percentile, None),
        (NdFunction::Percentile, Some("75")),
        (NdFunction::TrimmedMean, Some("10")),
        (NdFunction::Stddev, None),
        (NdFunction::Cv, None),
        (NdFunction::CountIf, Some(">0")),
        (NdFunction::CountIf, Some("3")),
    ]
}

#[test]
fn every_function_equals_the_json_api() {
    let e = engine();
    let sql = sql_engine(&e);
    // Sealed hours and the open head; two bucket widths.
    for (after_excl, before, step) in [(T0, END - END % 60, 60), (T0 + 1800, T0 + 3 * 3600 - 900, 300)] {
        for (f, p) in cases() {
            let want = json_api(&e, f.time_group_name(), p, after_excl, before, step);
            assert!(want.len() > 10, "{f:?}: too little data");
            let (pushed, plan) = sql_answer(&sql, f.name(), p, after_excl, before, step, "");
            assert!(plan.contains("StrataBucketsExec"), "{f:?} was not pushed down:\n{plan}");
            assert_eq!(pushed, want, "{} {p:?} pushed down, step {step}", f.name());
            // `value IS NOT NULL` changes no answer but keeps DataFusion's own aggregation.
            let (plain, plan) = sql_answer(&sql, f.name(), p, after_excl, before, step, " AND value IS NOT NULL");
            assert!(!plan.contains("StrataBucketsExec"), "{f:?} was pushed down:\n{plan}");
            assert_eq!(plain.len(), want.len(), "{} {p:?}: buckets", f.name());
            for (k, v) in &want {
                let got = plain.get(k).copied().flatten();
                let (Some(a), Some(b)) = (got, *v) else { panic!("{} {p:?} {k:?}: {got:?} vs {v:?}", f.name()) };
                assert!(close(a, b), "{} {p:?} {k:?}: SQL {a} vs JSON {b}", f.name());
            }
        }
    }
}

#[test]
fn avg_and_sum_push_down_as_netdata_average_and_sum() {
    let e = engine();
    let sql = sql_engine(&e);
    let (b, s) = (T0 + 3600, T0 + 7200);
    let want = json_api(&e, "average", None, b - 3600, s, 60);
    let (got, plan) = sql_answer(&sql, "avg", None, b - 3600, s, 60, "");
    assert!(plan.contains("StrataBucketsExec"), "{plan}");
    assert_eq!(got, want);
    let (got, _) = sql_answer(&sql, "sum", None, b - 3600, s, 60, "");
    assert_eq!(got, json_api(&e, "sum", None, b - 3600, s, 60));
}

#[test]
fn unaligned_ranges_are_not_pushed_down_and_still_right() {
    let e = engine();
    let sql = sql_engine(&e);
    let (got, plan) = sql_answer(&sql, "nd_median", None, T0 + 30, T0 + 3600, 60, "");
    assert!(!plan.contains("StrataBucketsExec"), "{plan}");
    // The first bucket holds only the samples after T0 + 30.
    let (_, first) = got.iter().next().expect("rows");
    assert!(first.is_some());
    assert_eq!(got.len(), NODES.len() * DIMS.len() * 60);
}

#[test]
fn nd_query_equals_the_json_api_for_stateful_time_groups() {
    let e = engine();
    let sql = sql_engine(&e);
    for tg in ["ses", "des", "incremental-sum", "latest", "average"] {
        let body = json!({
            "scope": {"contexts": ["t.c"]},
            "window": {"after": T0 + 1, "before": T0 + 7200, "points": 120},
            "aggregations": {"metrics": [{"group_by": ["node", "dimension"]}], "time": {"time_group": tg}},
        });
        let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
        let q = format!("SELECT series, ts, value FROM nd_query('{body}') ORDER BY series, ts");
        let a = sql.run_blocking(&q, None).unwrap_or_else(|err| panic!("{q}: {err}"));
        let got = rows(&a.batches);
        let mut want = Vec::new();
        let mut series: Vec<_> = r.series.iter().collect();
        series.sort_by(|a, b| a.key.id.cmp(&b.key.id));
        for s in series {
            for i in 0..s.values.len() {
                want.push((s.key.id.clone(), (s.flags[i] & PA_EMPTY == 0).then_some(s.values[i])));
            }
        }
        let got: Vec<(String, Option<f64>)> = got.into_iter().map(|r| (r[0].clone(), r[2].parse().ok())).collect();
        assert_eq!(got, want, "{tg}");
    }
    // null2zero: an empty bucket (a second with no sample) is 0, as the JSON API prints it.
    let body = json!({"scope": {"contexts": ["t.c"]}, "window": {"after": T0 + 1, "before": T0 + 600, "points": 600},
                      "aggregations": {"metrics": [{"group_by": ["node", "dimension"]}], "time": {"time_group": "average"}},
                      "options": ["null2zero"]});
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    let empty = r.series.iter().flat_map(|s| &s.flags).filter(|&&f| f & PA_EMPTY != 0).count();
    assert!(empty > 0, "the window has empty buckets");
    let q = |cond: &str| {
        let a = sql
            .run_blocking(&format!("SELECT count(*) FROM nd_query('{body}') WHERE {cond}"), None)
            .expect("null2zero");
        rows(&a.batches)[0][0].parse::<usize>().expect("a count")
    };
    assert_eq!(q("value IS NULL"), 0);
    assert!(q("value = 0") >= empty);
    // The positional form.
    let a = sql
        .run_blocking(&format!("SELECT count(*) FROM nd_query('t.c', 'ses', {}, {}, 60)", T0 + 1, T0 + 3600), None)
        .expect("positional");
    assert_eq!(rows(&a.batches), vec![vec!["120".to_string()]]);
}

#[test]
fn bad_arguments_are_planning_errors() {
    let e = engine();
    let sql = sql_engine(&e);
    for (q, needle) in [
        ("SELECT nd_countif(value, '>x') FROM samples", "countif"),
        ("SELECT nd_percentile(value, node) FROM samples", "percent"),
        ("SELECT nd_percentile(value, value) FROM samples", "constant"),
        ("SELECT nd_median(node) FROM samples", "numeric"),
        ("SELECT nd_bucket(ts, ts) FROM samples", "nd_bucket"),
        ("SELECT nd_sum(DISTINCT value), count(*) FROM samples", "DISTINCT"),
        ("SELECT * FROM nd_query('{not json')", "JSON"),
        ("SELECT * FROM nd_query('{\"aggregations\": {\"time\": {\"time_group\": \"nope\"}}}')", "nope"),
    ] {
        match sql.run_blocking(q, None) {
            Err(crate::SqlError::Invalid(m)) | Err(crate::SqlError::Engine { message: m, .. }) => {
                assert!(m.contains(needle), "{q}: {m}")
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}

/// `f(abs(value))` is pushed down too (the JSON API's v2/v3 input when it
/// groups across dimensions) and equals DataFusion's own evaluation; the
/// data has both signs, so it differs from `f(value)`.
#[test]
fn absolute_values_push_down_and_agree() {
    let e = engine();
    let sql = sql_engine(&e);
    let (after_excl, before, step) = (T0, END - END % 60, 60);
    for f in ["nd_average", "nd_median", "nd_max", "nd_percentile"] {
        let q = |input: &str, extra: &str| {
            format!(
                "SELECT node, context, instance, dimension, nd_bucket({step}, ts) AS b, {f}({input}) AS v FROM samples \
                 WHERE context = 't.c' AND ts > {} AND ts <= {}{extra} GROUP BY node, context, instance, dimension, b",
                ts(after_excl),
                ts(before)
            )
        };
        let answer = |q: &str| {
            let a = sql.run_blocking(q, None).unwrap_or_else(|e| panic!("{q}: {e}"));
            let explain = sql.run_blocking(&format!("EXPLAIN {q}"), None).expect("explain");
            let plan = rows(&explain.batches).into_iter().flatten().collect::<Vec<_>>().join("\n");
            (keyed(&a.batches), plan.contains("StrataBucketsExec"))
        };
        let (pushed, was_pushed) = answer(&q("abs(value)", ""));
        assert!(was_pushed, "{f}(abs(value)) was not pushed down");
        let (plain, was_pushed) = answer(&q("abs(value)", " AND value IS NOT NULL"));
        assert!(!was_pushed, "{f}: the IS NOT NULL filter keeps DataFusion's aggregation");
        let (signed, _) = answer(&q("value", ""));
        assert!(pushed.len() > 10 && pushed.len() == plain.len(), "{f}: {} vs {} buckets", pushed.len(), plain.len());
        for (k, v) in &pushed {
            let (Some(a), Some(b)) = (*v, plain.get(k).copied().flatten()) else { panic!("{f} {k:?}: {v:?}") };
            assert!(close(a, b), "{f} {k:?}: pushed {a} vs plain {b}");
        }
        assert!(pushed != signed, "{f}: absolute answers differ from signed ones on this data");
    }
}
