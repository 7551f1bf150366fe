//! `data.query` and `data.summary`: the arguments become a v3 POST body,
//! parsed by the engine's own body parser and run by
//! `Engine::query_cancellable` (so the answers equal `/api/v3/data`'s),
//! then the result is reshaped into a small table or per-series stats.

use serde_json::{json, Map, Value};
use strata_engine::index::SimplePattern;
use strata_engine::query::body::parse_body;
use strata_engine::query::request::{ApiVersion, GroupByKey};
use strata_engine::query::result::{QueryResult, Series, PA_EMPTY};

use super::args::{
    as_requested, int, patterns_schema, rfc3339, round, strings, text, window, window_schema, MAX_WINDOW_S,
};
use super::{Ctx, Tool, ToolError, MAX_CELLS};
use crate::admission::Class;
use crate::auth::Resource;

const TIME_GROUPS: [&str; 10] =
    ["average", "min", "max", "sum", "median", "stddev", "percentile", "trimmed-mean", "incremental-sum", "extremes"];

/// The input properties `data.query` and `data.summary` share.
fn common_input(max_series: (i64, i64)) -> Map<String, Value> {
    let p = json!({
        "contexts": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"type": "string", "maxLength": 200},
            "description": "Context ids or patterns, e.g. ['system.cpu']."},
        "nodes": patterns_schema(20, "Scope nodes (id or hostname patterns). Default: all."),
        "selectors": {"type": "object", "additionalProperties": false, "properties": {
            "instances": patterns_schema(20, "Instance id or name patterns."),
            "dimensions": patterns_schema(20, "Dimension patterns."),
            "labels": patterns_schema(20, "'key:value-pattern'; same key OR-ed, different keys AND-ed.")}},
        "window": window_schema("Default: the last 15 minutes. At most 90 days."),
        "group_by": {"type": "array", "maxItems": 3, "uniqueItems": true,
            "items": {"enum": ["dimension", "instance", "node", "label", "context", "units", "selected"]},
            "default": ["dimension"]},
        "group_by_label": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 100},
            "description": "Label keys, required when group_by contains 'label'."},
        "aggregation": {"enum": ["sum", "min", "max", "average", "percentage"], "default": "average",
            "description": "How series that fall in the same group are combined."},
        "max_series": {"type": "integer", "minimum": 1, "maximum": max_series.1, "default": max_series.0,
            "description": "Series beyond this are dropped, smallest average magnitude first."},
        "precision": {"type": "integer", "minimum": 2, "maximum": 10, "default": 4,
            "description": "Significant digits of every value."}
    });
    p.as_object().cloned().unwrap_or_default()
}

/// A v3 body for the arguments, the absolute window, and `points`.
fn body(cx: &Ctx, args: &Map<String, Value>, points: i64, time_group: &str) -> Result<Value, ToolError> {
    let (after, before) = window(args.get("window"), cx.now, 900, MAX_WINDOW_S, "window")?;
    let sel = args.get("selectors").and_then(Value::as_object).cloned().unwrap_or_default();
    let group_by: Vec<String> = match strings(args, "group_by") {
        g if g.is_empty() => vec!["dimension".into()],
        g => g,
    };
    if group_by.iter().any(|g| g == "label") && strings(args, "group_by_label").is_empty() {
        return Err(ToolError::tool("group_by 'label' needs 'group_by_label' (the label keys to group by)"));
    }
    let mut time = json!({"time_group": time_group});
    if let Some(o) = args.get("time_group_options").and_then(Value::as_f64) {
        time["time_group_options"] = json!(o);
    }
    let mut scope = json!({"contexts": strings(args, "contexts")});
    if args.contains_key("nodes") {
        scope["nodes"] = json!(strings(args, "nodes"));
    }
    let (after, before) = as_requested((after, before), cx.now);
    Ok(json!({
        "scope": scope,
        "selectors": sel,
        "window": {"after": after, "before": before, "points": points},
        "aggregations": {
            "metrics": [{"group_by": group_by, "group_by_label": strings(args, "group_by_label"),
                         "aggregation": text(args, "aggregation", "average")}],
            "time": time,
        },
        "timeout": cx.timeout_ms,
    }))
}

/// Contexts one data.summary call may cover (one query each).
const MAX_SUMMARY_CONTEXTS: usize = 20;

/// Runs the body through the engine's parser and query path.
fn run_any(cx: &Ctx, body: &Value) -> Result<QueryResult, ToolError> {
    let mut req = parse_body(ApiVersion::V3, body)?;
    req.allowed_nodes = cx.me.allow.clone();
    Ok(cx.st.engine.query_cancellable(&req, &cx.cancel)?)
}

/// [`run_any`], an answer without series being a tool error that says so.
fn run_query(cx: &Ctx, body: &Value) -> Result<QueryResult, ToolError> {
    let result = run_any(cx, body)?;
    if result.series.is_empty() {
        return Err(no_data(body));
    }
    Ok(result)
}

/// The error of a query body whose answer has no series.
fn no_data(body: &Value) -> ToolError {
    let ctx = strings(&body["scope"].as_object().cloned().unwrap_or_default(), "contexts").join(", ");
    ToolError::tool(format!("no data matches contexts [{ctx}] in this window; try contexts.search or a longer window"))
}

fn avg_abs(s: &Series) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (v, f) in s.values.iter().zip(&s.flags) {
        if f & PA_EMPTY == 0 {
            sum += v.abs();
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The indexes of the series to keep (at most `max`, largest average
/// magnitude first kept, original order preserved) and how many were dropped.
fn keep(series: &[Series], max: usize) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by(|&a, &b| avg_abs(&series[b]).total_cmp(&avg_abs(&series[a])));
    order.truncate(max);
    order.sort_unstable();
    (order.clone(), series.len() - order.len())
}

/// min, max, avg over the non-empty points.
fn stats(s: &Series) -> (f64, f64, Option<f64>) {
    let vals: Vec<f64> = s.values.iter().zip(&s.flags).filter(|(_, f)| *f & PA_EMPTY == 0).map(|(v, _)| *v).collect();
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64);
    (min, max, avg)
}

fn anomaly_pct(s: &Series, digits: i64) -> Value {
    if s.db_stats.count == 0 {
        Value::Null
    } else {
        round(s.db_stats.anomaly_rate(), digits)
    }
}

fn series_out() -> Value {
    json!({"type": "object", "required": ["key", "label", "units", "min", "max", "avg"], "properties": {
        "key": {"type": "string", "description": "column name used in rows"},
        "label": {"type": "string", "description": "human name, e.g. 'user' or 'web1 / eth0 / received'"},
        "units": {"type": "string"},
        "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]}, "avg": {"type": ["number", "null"]},
        "anomaly_rate_pct": {"type": ["number", "null"]},
        "sources": {"type": "integer", "description": "number of raw metrics merged into it"}}})
}

pub static QUERY: Tool = Tool {
    name: "data.query",
    title: "Query time series",
    description: "A time-series table of one or more contexts (a Netdata v3 data query): rows oldest first, row[0] the end of each interval (RFC 3339), one column per series, null = no data. Values are time-grouped per interval (time_group) and combined across metrics by group_by + aggregation. Keep points small (default 20, max 500); at most max_series (<= 50) series and 10 000 cells. Example: {\"contexts\": [\"system.cpu\"], \"window\": {\"last\": \"1h\"}, \"points\": 12}.",
    needs: Some(Resource::Data),
    class: Class::Light,
    input: || {
        let mut p = common_input((20, 50));
        p.insert("points".into(), json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 20}));
        p.insert("time_group".into(), json!({"enum": TIME_GROUPS, "default": "average"}));
        p.insert(
            "time_group_options".into(),
            json!({"type": "number", "minimum": 0, "maximum": 100,
                   "description": "Percentile or trim percentage when time_group needs one (default 95 / 5)."}),
        );
        json!({"type": "object", "additionalProperties": false, "required": ["contexts"], "properties": p})
    },
    output: || {
        json!({"type": "object", "required": ["window", "series", "columns", "rows"], "properties": {
            "window": {"type": "object", "required": ["after", "before", "points", "granularity_s"], "properties": {
                "after": {"type": "string", "format": "date-time"}, "before": {"type": "string", "format": "date-time"},
                "points": {"type": "integer"}, "granularity_s": {"type": "integer", "description": "seconds per row"},
                "tier": {"type": "integer"}}},
            "query": {"type": "object", "description": "The effective query after defaults", "properties": {
                "contexts": {"type": "array", "items": {"type": "string"}}, "time_group": {"type": "string"},
                "group_by": {"type": "array", "items": {"type": "string"}}, "aggregation": {"type": "string"}}},
            "series": {"type": "array", "items": series_out()},
            "columns": {"type": "array", "items": {"type": "string"}, "description": "'time' followed by series keys, in order."},
            "rows": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "string", "format": "date-time"}],
                "items": {"type": ["number", "null"]}}, "description": "Oldest first; row[0] is the end of each interval; null = no data."},
            "truncated": {"type": "object", "required": ["series_dropped"], "properties": {
                "series_dropped": {"type": "integer"}, "hint": {"type": "string"}}}}})
    },
    run: |cx, args| {
        let points = int(args, "points", 20);
        let max_series = int(args, "max_series", 20);
        if points * max_series > MAX_CELLS {
            return Err(ToolError::tool(format!(
                "points x max_series = {} cells; at most {MAX_CELLS}: lower points or max_series",
                points * max_series
            )));
        }
        let digits = int(args, "precision", 4);
        let tg = text(args, "time_group", "average");
        let b = body(cx, args, points, tg)?;
        let r = run_query(cx, &b)?;
        let (kept, dropped) = keep(&r.series, max_series as usize);
        let w = &r.window;
        let series: Vec<Value> = kept
            .iter()
            .map(|&i| {
                let s = &r.series[i];
                let (min, max, avg) = stats(s);
                json!({"key": s.key.id, "label": s.key.name, "units": s.key.units, "min": round(min, digits),
                       "max": round(max, digits), "avg": avg.map_or(Value::Null, |a| round(a, digits)),
                       "anomaly_rate_pct": anomaly_pct(s, digits), "sources": s.aggregated})
            })
            .collect();
        let mut columns = vec!["time".to_string()];
        columns.extend(kept.iter().map(|&i| r.series[i].key.id.clone()));
        let rows: Vec<Value> = (0..w.points)
            .map(|p| {
                let end = w.after - 1 + (p as i64 + 1) * w.view_every;
                let mut row = vec![json!(rfc3339(end))];
                for &i in &kept {
                    let s = &r.series[i];
                    row.push(if s.flags[p] & PA_EMPTY != 0 { Value::Null } else { round(s.values[p], digits) });
                }
                Value::Array(row)
            })
            .collect();
        let mut out = json!({
            "window": {"after": rfc3339(w.after), "before": rfc3339(w.before), "points": w.points,
                       "granularity_s": w.view_every, "tier": r.chosen_tier},
            "query": {"contexts": strings(args, "contexts"), "time_group": tg,
                      "group_by": r.grouped_by.iter().map(|k| k.name()).collect::<Vec<_>>(),
                      "aggregation": text(args, "aggregation", "average")},
            "series": series, "columns": columns, "rows": rows,
        });
        if dropped > 0 {
            out["truncated"] = json!({"series_dropped": dropped,
                "hint": "add a selector, narrow nodes or contexts, or group_by node/context to get fewer series"});
        }
        Ok(out)
    },
};

pub static SUMMARY: Tool = Tool {
    name: "data.summary",
    title: "Summarize time series",
    description: "Per-series min, max, average, last value and anomaly rate over a whole window (default: last 15 minutes), computed from 60 time-grouped intervals at the best tier. Sort by anomaly_rate, max, avg or name; at most max_series (<= 100) series. Cheaper than data.query when only the shape of the data matters.",
    needs: Some(Resource::Data),
    class: Class::Light,
    input: || {
        let mut p = common_input((30, 100));
        p.insert("sort".into(), json!({"enum": ["anomaly_rate", "max", "avg", "name"], "default": "anomaly_rate"}));
        json!({"type": "object", "additionalProperties": false, "required": ["contexts"], "properties": p})
    },
    output: || {
        let num = json!({"type": ["number", "null"]});
        let opt = json!({"type": ["string", "null"]});
        json!({"type": "object", "required": ["window", "series", "total_series", "truncated"], "properties": {
            "window": {"type": "object", "required": ["after", "before", "granularity_s"], "properties": {
                "after": {"type": "string", "format": "date-time"}, "before": {"type": "string", "format": "date-time"},
                "granularity_s": {"type": "integer"}}},
            "series": {"type": "array", "items": {"type": "object",
                "required": ["label", "context", "units", "min", "max", "avg", "last", "anomaly_rate_pct", "coverage_pct"],
                "properties": {
                    "label": {"type": "string"}, "context": {"type": "string"}, "node": opt, "instance": opt, "dimension": opt,
                    "units": {"type": "string"}, "min": num, "max": num, "avg": num, "last": num,
                    "last_at": {"type": ["string", "null"], "format": "date-time"}, "anomaly_rate_pct": num,
                    "coverage_pct": {"type": "number", "description": "share of the window with data"}}}},
            "total_series": {"type": "integer"}, "truncated": {"type": "boolean"}}})
    },
    run: |cx, args| {
        let digits = int(args, "precision", 4);
        let (after, before) = window(args.get("window"), cx.now, 900, MAX_WINDOW_S, "window")?;
        let points = (before - after + 1).clamp(1, 60);
        let b = body(cx, args, points, "average")?;
        let r = run_query(cx, &b)?;
        // Each series names its own context: over several, one query each.
        let ids: Vec<String> = r.summary.contexts.iter().map(|c| c.id.clone()).collect();
        let parts = match &ids[..] {
            [] | [_] => vec![(ids.first().cloned().unwrap_or_default(), r)],
            many if many.len() > MAX_SUMMARY_CONTEXTS => {
                return Err(ToolError::tool(format!(
                    "{} contexts match; data.summary takes at most {MAX_SUMMARY_CONTEXTS}: narrow 'contexts'",
                    many.len()
                )))
            }
            many => {
                // Every context on the combined query's grid: its resolved
                // window, absolute (contexts collected at other intervals
                // would otherwise get windows of their own).
                let mut parts = Vec::with_capacity(many.len());
                let rw = r.window;
                for id in many {
                    let mut one = b.clone();
                    // The id itself, escaped: not a pattern.
                    one["scope"]["contexts"] = json!([SimplePattern::exact(id).to_string()]);
                    one["window"] = json!({"after": rw.after, "before": rw.before, "points": rw.points});
                    // A context whose data all lies past the resolved end
                    // (it began reporting within the last interval) has
                    // nothing in this window: the others still answer.
                    let part = run_any(cx, &one)?;
                    if !part.series.is_empty() {
                        parts.push((id.clone(), part));
                    }
                }
                if parts.is_empty() {
                    return Err(no_data(&b));
                }
                parts
            }
        };
        let w = parts[0].1.window;
        let mut rows: Vec<(f64, f64, f64, String, Value)> = parts
            .iter()
            .flat_map(|(context, r)| r.series.iter().map(move |s| (context, r, s)))
            .map(|(context, r, s)| {
                let w = &r.window;
                let single = |k: GroupByKey| r.grouped_by == [k];
                let (min, max, avg) = stats(s);
                let last = (0..w.points).rev().find(|&p| s.flags[p] & PA_EMPTY == 0);
                let filled = s.flags.iter().filter(|f| **f & PA_EMPTY == 0).count();
                let name = |k| single(k).then(|| s.key.name.clone());
                let anomaly = (s.db_stats.count > 0).then(|| s.db_stats.anomaly_rate());
                let v = json!({
                    "label": s.key.name, "context": context, "node": name(GroupByKey::Node),
                    "instance": name(GroupByKey::Instance), "dimension": name(GroupByKey::Dimension),
                    "units": s.key.units, "min": round(min, digits), "max": round(max, digits),
                    "avg": avg.map_or(Value::Null, |a| round(a, digits)),
                    "last": last.map_or(Value::Null, |p| round(s.values[p], digits)),
                    "last_at": last.map(|p| rfc3339(w.after - 1 + (p as i64 + 1) * w.view_every)),
                    "anomaly_rate_pct": anomaly.map_or(Value::Null, |a| round(a, digits)),
                    "coverage_pct": round(filled as f64 * 100.0 / w.points.max(1) as f64, digits),
                });
                (anomaly.unwrap_or(-1.0), max, avg.unwrap_or(f64::NEG_INFINITY), s.key.name.clone(), v)
            })
            .collect();
        match text(args, "sort", "anomaly_rate") {
            "max" => rows.sort_by(|a, b| b.1.total_cmp(&a.1)),
            "avg" => rows.sort_by(|a, b| b.2.total_cmp(&a.2)),
            "name" => rows.sort_by(|a, b| a.3.cmp(&b.3)),
            _ => rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.cmp(&b.3))),
        }
        let total = rows.len();
        let max = int(args, "max_series", 30) as usize;
        let series: Vec<Value> = rows.into_iter().take(max).map(|r| r.4).collect();
        Ok(json!({
            "window": {"after": rfc3339(w.after), "before": rfc3339(w.before), "granularity_s": w.view_every},
            "series": series, "total_series": total, "truncated": total > max,
        }))
    },
};
