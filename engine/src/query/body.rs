//! POST JSON bodies (Netdata Cloud shape, also what the Grafana plugin
//! sends) into a [`QueryRequest`]. Unknown fields are ignored (Cloud adds
//! fields over time); a known field with a wrong type is a 400 naming its
//! JSON path.

use serde_json::{Map, Value};

use crate::error::{EngineError, Result};
use crate::index::{LabelFilter, SimplePattern};
use crate::query::params::{aggregation, check_points, check_tier, format, group_by_keys, MAX_PASSES};
use crate::query::request::{ApiVersion, GroupByPass, QueryRequest, Selectors};
use crate::query::time_group::TimeGroup;

fn type_err(path: &str, want: &str, got: &Value) -> EngineError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    EngineError::param(path, format!("'{path}' must be {want}, got {kind}"))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<Option<&'a Map<String, Value>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(type_err(path, "an object", other)),
    }
}

fn int(v: &Value, path: &str) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(|f| crate::model::whole_i64(f).ok()))
            .map(Some)
            .ok_or_else(|| EngineError::param(path, format!("'{path}' must be an integer, got {n}"))),
        // Lenient like the GET form: "600" works too.
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => crate::query::params::parse_i64(path, s).map(Some),
        other => Err(type_err(path, "an integer", other)),
    }
}

fn uint(v: &Value, path: &str) -> Result<Option<u64>> {
    match int(v, path)? {
        Some(n) if n < 0 => Err(EngineError::param(path, format!("'{path}' must not be negative, got {n}"))),
        n => Ok(n.map(|n| n as u64)),
    }
}

fn string<'a>(v: &'a Value, path: &str) -> Result<Option<&'a str>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
        other => Err(type_err(path, "a string", other)),
    }
}

/// An array of strings, or a single string (one element).
pub(crate) fn strings(v: &Value, path: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.is_null())
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(type_err(&format!("{path}[{i}]"), "a string", other)),
            })
            .collect(),
        other => Err(type_err(path, "an array of strings", other)),
    }
}

fn pattern(v: &Value, path: &str) -> Result<Option<SimplePattern>> {
    let items = strings(v, path)?;
    let items: Vec<&String> = items.iter().filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Ok(None);
    }
    let p = SimplePattern::parse_list(&items)
        .map_err(|source| EngineError::InvalidPattern { param: path.into(), source })?;
    Ok((!p.is_match_all()).then_some(p))
}

fn label_filter(v: &Value, path: &str) -> Result<Option<LabelFilter>> {
    let items = strings(v, path)?;
    let items: Vec<&String> = items.iter().filter(|s| !s.is_empty() && s.as_str() != "*").collect();
    if items.is_empty() {
        return Ok(None);
    }
    let f =
        LabelFilter::parse_list(&items).map_err(|source| EngineError::InvalidPattern { param: path.into(), source })?;
    Ok((!f.is_empty()).then_some(f))
}

fn selectors(v: Option<&Value>, path: &str) -> Result<Selectors> {
    let Some(m) = v.map(|v| object(v, path)).transpose()?.flatten() else {
        return Ok(Selectors::default());
    };
    let get = |k: &str| m.get(k).unwrap_or(&Value::Null);
    Ok(Selectors {
        nodes: pattern(get("nodes"), &format!("{path}.nodes"))?,
        contexts: pattern(get("contexts"), &format!("{path}.contexts"))?,
        instances: pattern(get("instances"), &format!("{path}.instances"))?,
        dimensions: pattern(get("dimensions"), &format!("{path}.dimensions"))?,
        labels: label_filter(get("labels"), &format!("{path}.labels"))?,
        alerts: pattern(get("alerts"), &format!("{path}.alerts"))?,
    })
}

/// Parses a POST body.
pub fn parse_body(api: ApiVersion, body: &Value) -> Result<QueryRequest> {
    let root = object(body, "body")?.ok_or_else(|| EngineError::param("body", "the body must be a JSON object"))?;
    let mut q = QueryRequest::new(api);
    q.scope = selectors(root.get("scope"), "scope")?;
    q.selectors = selectors(root.get("selectors"), "selectors")?;
    if let Some(w) = root.get("window").map(|w| object(w, "window")).transpose()?.flatten() {
        let null = Value::Null;
        let get = |k: &str| w.get(k).unwrap_or(&null);
        let after = int(get("after"), "window.after")?;
        let before = int(get("before"), "window.before")?;
        let duration = uint(get("duration"), "window.duration")?.unwrap_or(0);
        match (after, before) {
            (None, None) if duration > 0 => q.after = -(duration as i64),
            _ => {
                q.after = after.unwrap_or(q.after);
                q.before = before.unwrap_or(q.before);
            }
        }
        if let Some(p) = uint(get("points"), "window.points")? {
            q.points = check_points("window.points", p)?;
        }
        if let Some(t) = int(get("tier"), "window.tier")? {
            q.tier = Some(check_tier("window.tier", t)?);
            q.options.selected_tier = true;
        }
    }
    if let Some(a) = root.get("aggregations").map(|a| object(a, "aggregations")).transpose()?.flatten() {
        if let Some(t) = a.get("time").map(|t| object(t, "aggregations.time")).transpose()?.flatten() {
            let null = Value::Null;
            let get = |k: &str| t.get(k).unwrap_or(&null);
            if let Some(name) = string(get("time_group"), "aggregations.time.time_group")? {
                q.time_group = TimeGroup::parse(name, "aggregations.time.time_group")?;
            }
            q.time_group.options = match get("time_group_options") {
                Value::Number(n) => Some(n.to_string()),
                v => string(v, "aggregations.time.time_group_options")?.map(str::to_string),
            };
            q.time_resampling = uint(get("time_resampling"), "aggregations.time.time_resampling")?.unwrap_or(0) as i64;
        }
        match a.get("metrics") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if items.len() > MAX_PASSES {
                    return Err(EngineError::param(
                        "aggregations.metrics",
                        format!("at most {MAX_PASSES} group-by passes are supported, got {}", items.len()),
                    ));
                }
                let mut passes = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let path = format!("aggregations.metrics[{i}]");
                    let m = object(item, &path)?.ok_or_else(|| EngineError::param(&path, "must be an object"))?;
                    let null = Value::Null;
                    // The Grafana plugin sends `groupBy` for some panels.
                    let (gb_key, gb) = match m.get("group_by") {
                        Some(v) if !v.is_null() => ("group_by", v),
                        _ => ("groupBy", m.get("groupBy").unwrap_or(&null)),
                    };
                    let gb_path = format!("{path}.{gb_key}");
                    let words = strings(gb, &gb_path)?;
                    let words: Vec<&str> = words.iter().flat_map(|w| w.split([',', '|', ' '])).collect();
                    let keys = group_by_keys(&gb_path, &words)?;
                    let labels = strings(m.get("group_by_label").unwrap_or(&null), &format!("{path}.group_by_label"))?;
                    let agg_path = format!("{path}.aggregation");
                    let agg = match string(m.get("aggregation").unwrap_or(&null), &agg_path)? {
                        Some(s) => aggregation(&agg_path, s)?,
                        None => crate::query::request::Aggregation::Average,
                    };
                    passes.push(GroupByPass { keys, labels, aggregation: agg });
                }
                if !passes.is_empty() {
                    q.passes = passes;
                }
            }
            Some(other) => return Err(type_err("aggregations.metrics", "an array", other)),
        }
    }
    if let Some(f) = string(root.get("format").unwrap_or(&Value::Null), "format")? {
        q.format = format("format", f)?;
    }
    let opts = match root.get("options") {
        Some(Value::String(s)) => crate::query::params::split_list(s).into_iter().map(str::to_string).collect(),
        Some(v) => strings(v, "options")?,
        None => Vec::new(),
    };
    for o in opts {
        if !q.options.set(o.trim()) {
            return Err(EngineError::param("options", format!("unknown option '{o}'")));
        }
    }
    if let Some(t) = uint(root.get("timeout").unwrap_or(&Value::Null), "timeout")? {
        q.timeout_ms = t;
    }
    let card = uint(root.get("cardinality_limit").unwrap_or(&Value::Null), "cardinality_limit")?;
    let limit = uint(root.get("limit").unwrap_or(&Value::Null), "limit")?;
    q.cardinality_limit = card.or(limit.map(|l| l + 1)).unwrap_or(0);
    q.finish();
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::request::{Aggregation, GroupByKey};
    use serde_json::json;

    #[test]
    fn grafana_plugin_body() {
        let body = json!({
            "format": "json2",
            "options": ["jsonwrap", "flip", "ms"],
            "scope": {"contexts": ["system.cpu"], "nodes": [], "dimensions": [], "labels": []},
            "selectors": {"contexts": ["*"], "nodes": ["*"], "instances": ["*"], "dimensions": ["*"], "labels": ["*"]},
            "aggregations": {
                "metrics": [{"groupBy": ["node"], "group_by_label": [], "aggregation": "avg"}],
                "time": {"time_group": "average", "time_resampling": 0}
            },
            "window": {"after": 1764140000, "before": 1764143600, "points": 269}
        });
        let q = parse_body(ApiVersion::V3, &body).expect("ok");
        assert_eq!((q.after, q.before, q.points), (1764140000, 1764143600, 269));
        assert!(q.options.flip && q.options.ms);
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Node]);
        assert!(q.scope.contexts.as_ref().is_some_and(|c| c.matches("system.cpu")));
        assert!(q.selectors.labels.is_none() && q.selectors.nodes.is_none());
    }

    #[test]
    fn duration_and_passes() {
        let body = json!({"window": {"duration": 3600},
            "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}, {"group_by": ["node"], "aggregation": "max"}]}});
        let q = parse_body(ApiVersion::V3, &body).expect("ok");
        assert_eq!(q.after, -3600);
        assert_eq!(q.passes[1].aggregation, Aggregation::Max);
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Instance, GroupByKey::Node]);
    }

    #[test]
    fn wrong_types_name_their_path() {
        for (body, path) in [
            (json!({"window": {"after": "yesterday"}}), "window.after"),
            (json!({"window": {"points": -1}}), "window.points"),
            (json!({"window": []}), "window"),
            (json!({"scope": {"contexts": [1]}}), "scope.contexts[0]"),
            (json!({"aggregations": {"metrics": [{"group_by": ["nodez"]}]}}), "aggregations.metrics[0].group_by"),
            (json!({"aggregations": {"time": {"time_group": "avg2"}}}), "aggregations.time.time_group"),
            (json!({"options": ["nope"]}), "options"),
            (json!({"timeout": true}), "timeout"),
            (json!([1, 2]), "body"),
        ] {
            let e = parse_body(ApiVersion::V3, &body).expect_err(path);
            assert_eq!(e.path(), Some(path), "{body}: {e}");
        }
    }
}
