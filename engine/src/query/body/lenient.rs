//! The lenient reader: a parsed JSON value into [`RawBody`]. It takes what
//! the strict serde read refuses but clients send (`"600"` for an integer,
//! a single string for a list, nulls in lists, a number for
//! `time_group_options`), and words every type error with its JSON path.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::map_only::MapOnly;
use super::raw::{RawAggregations, RawBody, RawPass, RawSelectors, RawTime, RawWindow, Text, Words};
use crate::error::{EngineError, Result};

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

fn object<'a>(v: Option<&'a Value>, path: &str) -> Result<Option<&'a Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(type_err(path, "an object", other)),
    }
}

fn int(v: Option<&Value>, path: &str) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(|f| crate::model::whole_i64(f).ok()))
            .map(Some)
            .ok_or_else(|| EngineError::param(path, format!("'{path}' must be an integer, got {n}"))),
        // Lenient like the GET form: "600" works too.
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => crate::query::params::parse_i64(path, s).map(Some),
        Some(other) => Err(type_err(path, "an integer", other)),
    }
}

fn string<'a>(v: Option<&'a Value>, path: &str) -> Result<Option<Text<'a>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Text(Cow::Borrowed(s.as_str())))),
        Some(other) => Err(type_err(path, "a string", other)),
    }
}

/// An array of strings (nulls skipped), or a single string (one element).
pub(crate) fn words<'a>(v: Option<&'a Value>, path: &str) -> Result<Option<Words<'a>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![Text(Cow::Borrowed(s.as_str()))])),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.is_null())
            .map(|(i, x)| match x {
                Value::String(s) => Ok(Text(Cow::Borrowed(s.as_str()))),
                other => Err(type_err(&format!("{path}[{i}]"), "a string", other)),
            })
            .collect::<Result<_>>()
            .map(Some),
        Some(other) => Err(type_err(path, "an array of strings", other)),
    }
}

/// [`words`] as owned strings, none for an absent field.
pub(crate) fn strings(v: &Value, path: &str) -> Result<Vec<String>> {
    Ok(words(Some(v), path)?.unwrap_or_default().into_iter().map(|w| w.0.into_owned()).collect())
}

fn selectors<'a>(v: Option<&'a Value>, path: &str) -> Result<Option<MapOnly<RawSelectors<'a>>>> {
    let Some(m) = object(v, path)? else { return Ok(None) };
    let field = |k: &str| words(m.get(k), &format!("{path}.{k}"));
    Ok(Some(MapOnly(RawSelectors {
        nodes: field("nodes")?,
        contexts: field("contexts")?,
        instances: field("instances")?,
        dimensions: field("dimensions")?,
        labels: field("labels")?,
        alerts: field("alerts")?,
    })))
}

fn window(v: Option<&Value>) -> Result<Option<MapOnly<RawWindow>>> {
    let Some(w) = object(v, "window")? else { return Ok(None) };
    Ok(Some(MapOnly(RawWindow {
        after: int(w.get("after"), "window.after")?,
        before: int(w.get("before"), "window.before")?,
        duration: int(w.get("duration"), "window.duration")?,
        points: int(w.get("points"), "window.points")?,
        tier: int(w.get("tier"), "window.tier")?,
    })))
}

fn time(v: Option<&Value>) -> Result<Option<MapOnly<RawTime<'_>>>> {
    let Some(t) = object(v, "aggregations.time")? else { return Ok(None) };
    let options = match t.get("time_group_options") {
        Some(Value::Number(n)) => Some(Text(Cow::Owned(n.to_string()))),
        v => string(v, "aggregations.time.time_group_options")?,
    };
    Ok(Some(MapOnly(RawTime {
        time_group: string(t.get("time_group"), "aggregations.time.time_group")?,
        time_group_options: options,
        time_resampling: int(t.get("time_resampling"), "aggregations.time.time_resampling")?,
    })))
}

fn pass(item: &Value, i: usize) -> Result<MapOnly<RawPass<'_>>> {
    let path = format!("aggregations.metrics[{i}]");
    let m = object(Some(item), &path)?.ok_or_else(|| EngineError::param(&path, "must be an object"))?;
    let group_by = words(m.get("group_by"), &format!("{path}.group_by"))?;
    // `groupBy` is read only in place of `group_by`, as the build uses it.
    let group_by_camel = match group_by {
        Some(_) => None,
        None => words(m.get("groupBy"), &format!("{path}.groupBy"))?,
    };
    Ok(MapOnly(RawPass {
        group_by,
        group_by_camel,
        group_by_label: words(m.get("group_by_label"), &format!("{path}.group_by_label"))?,
        aggregation: string(m.get("aggregation"), &format!("{path}.aggregation"))?,
    }))
}

fn aggregations(v: Option<&Value>) -> Result<Option<MapOnly<RawAggregations<'_>>>> {
    let Some(a) = object(v, "aggregations")? else { return Ok(None) };
    let time = time(a.get("time"))?;
    let metrics = match a.get("metrics") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            Some(items.iter().enumerate().map(|(i, item)| pass(item, i)).collect::<Result<_>>()?)
        }
        Some(other) => return Err(type_err("aggregations.metrics", "an array", other)),
    };
    Ok(Some(MapOnly(RawAggregations { time, metrics })))
}

/// Reads `body`'s fields, refusing wrong types with their path, field by
/// field in the order the old single parser checked them. (A type error now
/// comes before any bad value, which the build checks.)
pub(crate) fn read(body: &Value) -> Result<RawBody<'_>> {
    let root =
        object(Some(body), "body")?.ok_or_else(|| EngineError::param("body", "the body must be a JSON object"))?;
    let scope = selectors(root.get("scope"), "scope")?;
    let selectors = selectors(root.get("selectors"), "selectors")?;
    let window = window(root.get("window"))?;
    let aggregations = aggregations(root.get("aggregations"))?;
    let format = string(root.get("format"), "format")?;
    let options = match root.get("options") {
        Some(Value::String(s)) => {
            Some(crate::query::params::split_list(s).into_iter().map(|w| Text(Cow::Borrowed(w))).collect())
        }
        v => words(v, "options")?,
    };
    Ok(RawBody {
        scope,
        selectors,
        window,
        aggregations,
        format,
        options,
        timeout: int(root.get("timeout"), "timeout")?,
        cardinality_limit: int(root.get("cardinality_limit"), "cardinality_limit")?,
        limit: int(root.get("limit"), "limit")?,
    })
}
