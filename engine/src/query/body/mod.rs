//! POST JSON bodies (Netdata Cloud shape, also what the Grafana plugin
//! sends) into a [`QueryRequest`]. Unknown fields are ignored (Cloud adds
//! fields over time); a known field with a wrong type is a 400 naming its
//! JSON path.
//!
//! Two readers produce one [`raw::RawBody`], and one [`build`] validates it:
//! - [`parse_body_json`], the strict read straight from the bytes (serde,
//!   strings borrowed unless escaped, no `serde_json::Value` tree). It
//!   reads the common shape only and gives up on anything else: a wrong or
//!   merely lenient type, a duplicate key.
//! - [`parse_body`], the lenient read of a parsed `Value` ([`lenient`]): it
//!   also takes the forms clients send beside the common one and words the
//!   type errors.
//!
//! Invariant (property-tested in `props`): whenever the strict read
//! succeeds on a body that parses as JSON, the request, or the validation
//! error, equals the lenient one. The strict read skips unknown fields
//! without checking what they hold, so it also answers a body whose only
//! flaw is there (a lone surrogate escape, a number past f64, raw bytes
//! that are not UTF-8, nesting past serde_json's depth limit), which the
//! `Value` parse refuses: strata reads nothing of those fields.

mod lenient;
mod map_only;
#[cfg(test)]
mod props;
mod raw;

use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::index::{LabelFilter, SimplePattern};
use crate::query::params::{aggregation, capped_points, check_tier, format, group_by_keys, MAX_PASSES};
use crate::query::request::{ApiVersion, GroupByPass, QueryRequest, Selectors};
use crate::query::time_group::TimeGroup;
pub(crate) use lenient::strings;
use raw::{RawBody, RawSelectors, Words};

/// Parses a POST body already read as JSON (lenient; see the module doc).
pub fn parse_body(api: ApiVersion, body: &Value) -> Result<QueryRequest> {
    build(api, lenient::read(body)?)
}

/// Parses a POST body straight from its bytes when it has the common shape
/// (see the module doc); `None` when it does not, and the caller parses it
/// as a `Value` for [`parse_body`], which answers it or words its error.
pub fn parse_body_json(api: ApiVersion, bytes: &[u8]) -> Option<Result<QueryRequest>> {
    let raw: map_only::MapOnly<RawBody<'_>> = serde_json::from_slice(bytes).ok()?;
    Some(build(api, raw.0))
}

/// A count: negative is refused with its path.
fn count(v: Option<i64>, path: &str) -> Result<Option<u64>> {
    match v {
        Some(n) if n < 0 => Err(EngineError::param(path, format!("'{path}' must not be negative, got {n}"))),
        n => Ok(n.map(|n| n as u64)),
    }
}

/// A non-empty string, as the lenient reader always treated `""`: absent.
fn text<'a>(s: &'a Option<raw::Text<'_>>) -> Option<&'a str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A selector's words as a pattern; `path` (`scope.nodes`, say) is
/// formatted only for an error.
fn pattern(words: Option<&Words<'_>>, path: (&str, &str)) -> Result<Option<SimplePattern>> {
    let items: Vec<&str> = words.into_iter().flatten().map(|w| &*w.0).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Ok(None);
    }
    let p = SimplePattern::parse_list(&items)
        .map_err(|source| EngineError::InvalidPattern { param: format!("{}.{}", path.0, path.1), source })?;
    Ok((!p.is_match_all()).then_some(p))
}

fn label_filter(words: Option<&Words<'_>>, path: (&str, &str)) -> Result<Option<LabelFilter>> {
    let items: Vec<&str> = words.into_iter().flatten().map(|w| &*w.0).filter(|s| !s.is_empty() && *s != "*").collect();
    if items.is_empty() {
        return Ok(None);
    }
    let f = LabelFilter::parse_list(&items)
        .map_err(|source| EngineError::InvalidPattern { param: format!("{}.{}", path.0, path.1), source })?;
    Ok((!f.is_empty()).then_some(f))
}

/// `scope` or `selectors` (named `at` in errors).
fn selectors(raw: Option<&RawSelectors<'_>>, at: &str) -> Result<Selectors> {
    let Some(s) = raw else { return Ok(Selectors::default()) };
    Ok(Selectors {
        nodes: pattern(s.nodes.as_ref(), (at, "nodes"))?,
        contexts: pattern(s.contexts.as_ref(), (at, "contexts"))?,
        instances: pattern(s.instances.as_ref(), (at, "instances"))?,
        dimensions: pattern(s.dimensions.as_ref(), (at, "dimensions"))?,
        labels: label_filter(s.labels.as_ref(), (at, "labels"))?,
        alerts: pattern(s.alerts.as_ref(), (at, "alerts"))?,
    })
}

/// Validates what either reader read into a request.
fn build(api: ApiVersion, raw: RawBody<'_>) -> Result<QueryRequest> {
    let mut q = QueryRequest::new(api);
    q.scope = selectors(raw.scope.as_ref().map(|s| &s.0), "scope")?;
    q.selectors = selectors(raw.selectors.as_ref().map(|s| &s.0), "selectors")?;
    if let Some(w) = raw.window.map(|w| w.0) {
        let duration = count(w.duration, "window.duration")?.unwrap_or(0);
        match (w.after, w.before) {
            (None, None) if duration > 0 => q.after = -(duration as i64),
            (after, before) => {
                q.after = after.unwrap_or(q.after);
                q.before = before.unwrap_or(q.before);
            }
        }
        if let Some(p) = count(w.points, "window.points")? {
            q.points = capped_points(p);
        }
        if let Some(t) = w.tier {
            q.tier = Some(check_tier("window.tier", t)?);
            q.options.selected_tier = true;
        }
    }
    if let Some(a) = raw.aggregations.map(|a| a.0) {
        if let Some(t) = a.time.map(|t| t.0) {
            if let Some(name) = text(&t.time_group) {
                q.time_group = TimeGroup::parse(name, "aggregations.time.time_group")?;
            }
            q.time_group.options = text(&t.time_group_options).map(str::to_string);
            q.time_resampling = count(t.time_resampling, "aggregations.time.time_resampling")?.unwrap_or(0) as i64;
        }
        if let Some(items) = a.metrics {
            if items.len() > MAX_PASSES {
                return Err(EngineError::param(
                    "aggregations.metrics",
                    format!("at most {MAX_PASSES} group-by passes are supported, got {}", items.len()),
                ));
            }
            let mut passes = Vec::with_capacity(items.len());
            for (i, m) in items.into_iter().map(|m| m.0).enumerate() {
                let (gb_key, gb) = match &m.group_by {
                    Some(words) => ("group_by", Some(words)),
                    None => ("groupBy", m.group_by_camel.as_ref()),
                };
                let gb_path = format!("aggregations.metrics[{i}].{gb_key}");
                let words: Vec<&str> = gb.into_iter().flatten().flat_map(|w| w.split([',', '|', ' '])).collect();
                let keys = group_by_keys(&gb_path, &words)?;
                let labels = m.group_by_label.unwrap_or_default().into_iter().map(|w| w.0.into_owned()).collect();
                let agg = match text(&m.aggregation) {
                    Some(s) => aggregation(&format!("aggregations.metrics[{i}].aggregation"), s)?,
                    None => crate::query::request::Aggregation::Average,
                };
                passes.push(GroupByPass { keys, labels, aggregation: agg });
            }
            if !passes.is_empty() {
                q.passes = passes;
            }
        }
    }
    if let Some(f) = text(&raw.format) {
        q.format = format("format", f)?;
    }
    for o in raw.options.iter().flatten() {
        if !q.options.set(o.trim()) {
            return Err(EngineError::param("options", format!("unknown option '{}'", &*o.0)));
        }
    }
    if let Some(t) = count(raw.timeout, "timeout")? {
        q.timeout_ms = t;
    }
    let card = count(raw.cardinality_limit, "cardinality_limit")?;
    let limit = count(raw.limit, "limit")?;
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
            (json!({"selectors": {"nodes": ["!"]}}), "selectors.nodes"),
            (json!({"scope": {"labels": [":v"]}}), "scope.labels"),
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
