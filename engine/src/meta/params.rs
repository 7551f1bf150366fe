//! Request parameters of the metadata endpoints: GET query pairs of
//! `/api/v2/{nodes,contexts,q,weights}`, `/api/v1/{charts,chart,contexts,
//! weights,allmetrics}` and the Cloud-style room POST bodies. As for data queries:
//! unknown parameter names and empty values are ignored (Netdata does the
//! same), a known parameter with a bad value is a 400 naming it.

use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::index::SimplePattern;
use crate::meta::weights::{Method, WeightsRequest};
use crate::meta::MetaScope;
use crate::query::params::{labels, parse_i64, parse_u64, pattern};
use crate::query::request::Selectors;
use crate::query::window::{check_request_times, target_window};

/// Options the metadata endpoints understand (most only shape output).
const META_OPTIONS: &[&str] = &[
    "minify",
    "debug",
    "config",
    "instances",
    "values",
    "summary",
    "dimensions",
    "labels",
    "priorities",
    "titles",
    "retention",
    "liveness",
    "family",
    "units",
    "rfc3339",
    "long-json-keys",
    "long-keys",
    "mcp",
    "deleted",
    // v1 contexts
    "full",
    "charts",
    "uuids",
    "queue",
    "flags",
    "deepscan",
];

/// A parsed metadata request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaRequest {
    pub scope: Selectors,
    pub selectors: Selectors,
    pub after: Option<i64>,
    pub before: Option<i64>,
    /// The search string of `/q`.
    pub q: Option<String>,
    /// The chart of `/api/v1/chart`.
    pub chart: Option<String>,
    pub options: Vec<String>,
    /// Most items listed (0 = all).
    pub cardinality: usize,
    pub timeout_ms: u64,
}

impl MetaRequest {
    pub fn option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == name)
    }

    /// The absolute window, when the request gave one.
    pub fn window(&self, now: i64) -> Option<(i64, i64)> {
        (self.after.is_some() || self.before.is_some())
            .then(|| target_window(self.after.unwrap_or(-600), self.before.unwrap_or(0), now))
    }

    /// The scope for [`MetaScope::visible`] (allowlist and room are the caller's to add).
    pub fn meta_scope(&self, now: i64) -> MetaScope {
        MetaScope {
            scope: self.scope.clone(),
            selectors: self.selectors.clone(),
            allowed_nodes: None,
            room: None,
            window: self.window(now),
        }
    }
}

/// Applies one selector parameter; false when `k` is not one.
fn selector(req: &mut MetaRequest, k: &str, v: &str) -> Result<bool> {
    let (sel, name) = match k.strip_prefix("scope_") {
        Some(rest) => (&mut req.scope, rest),
        None => (&mut req.selectors, k),
    };
    match name {
        "nodes" => sel.nodes = pattern(k, v)?,
        "contexts" => sel.contexts = pattern(k, v)?,
        "instances" => sel.instances = pattern(k, v)?,
        "dimensions" => sel.dimensions = pattern(k, v)?,
        "labels" => sel.labels = labels(k, v)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn options(req: &mut MetaRequest, k: &str, v: &str, extra_ok: impl Fn(&str) -> bool) -> Result<()> {
    for o in v.split([',', '|', ' ']).filter(|o| !o.is_empty()) {
        if !META_OPTIONS.contains(&o) && !extra_ok(o) {
            return Err(EngineError::param(k, format!("unknown option '{o}' (use {})", META_OPTIONS.join(", "))));
        }
        if !req.options.iter().any(|x| x == o) {
            req.options.push(o.to_string());
        }
    }
    Ok(())
}

/// Applies a parameter every metadata endpoint shares; false when `k` is none.
fn common(req: &mut MetaRequest, k: &str, v: &str) -> Result<bool> {
    match k {
        "after" => req.after = Some(parse_i64(k, v)?),
        "before" => req.before = Some(parse_i64(k, v)?),
        "q" => req.q = Some(v.to_string()),
        "chart" => req.chart = Some(v.to_string()),
        "cardinality" | "cardinality_limit" => req.cardinality = parse_u64(k, v)? as usize,
        "timeout" => req.timeout_ms = parse_u64(k, v)?,
        _ => return selector(req, k, v),
    }
    Ok(true)
}

/// Parses the GET parameters of `nodes`, `contexts`, `q`, `charts`, `chart`.
pub fn parse_meta(pairs: &[(String, String)]) -> Result<MetaRequest> {
    let mut req = MetaRequest::default();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        if k == "options" {
            options(&mut req, k, v, |_| false)?;
        } else {
            common(&mut req, k, v)?;
        }
    }
    check_request_times(req.after.unwrap_or(0), req.before.unwrap_or(0), 0)?;
    Ok(req)
}

/// Parses the GET parameters of `/api/v2/weights` (and v3).
pub fn parse_weights(pairs: &[(String, String)]) -> Result<(MetaRequest, WeightsRequest)> {
    weights_params(pairs, false)
}

/// Parses the GET parameters of `/api/v1/weights`: Netdata's v1 names
/// beside the v2 ones (`context` for `contexts`, `group` for
/// `time_group`) and its v1 default method, `anomaly-rate`.
pub fn parse_weights_v1(pairs: &[(String, String)]) -> Result<(MetaRequest, WeightsRequest)> {
    weights_params(pairs, true)
}

/// `/api/v1/metric_correlations`: the v1 weights parameters, whose method
/// defaults to `ks2` (the route Netdata kept from before `weights`).
pub fn parse_metric_correlations(pairs: &[(String, String)]) -> Result<(MetaRequest, WeightsRequest)> {
    let (req, mut w) = weights_params(pairs, true)?;
    if !pairs.iter().any(|(k, v)| k == "method" && !v.is_empty()) {
        w.method = Method::Ks2;
    }
    Ok((req, w))
}

fn weights_params(pairs: &[(String, String)], v1: bool) -> Result<(MetaRequest, WeightsRequest)> {
    let mut req = MetaRequest::default();
    let mut w = WeightsRequest {
        method: if v1 { Method::AnomalyRate } else { Method::Value },
        after: -600,
        before: 0,
        baseline_after: None,
        baseline_before: None,
        points: 0,
        cardinality_limit: 0,
        timeout_ms: 0,
    };
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        let k = k.as_str();
        match k {
            "method" => {
                w.method = Method::parse(v.trim()).ok_or_else(|| {
                    EngineError::param(k, format!("unknown method '{v}' (use ks2, volume, anomaly-rate, value)"))
                })?
            }
            "after" | "highlight_after" => w.after = parse_i64(k, v)?,
            "before" | "highlight_before" => w.before = parse_i64(k, v)?,
            "baseline_after" => w.baseline_after = Some(parse_i64(k, v)?),
            "baseline_before" => w.baseline_before = Some(parse_i64(k, v)?),
            "points" | "max_points" => {
                w.points = crate::query::params::capped_points(parse_u64(k, v)?) as usize;
            }
            "cardinality_limit" => w.cardinality_limit = parse_u64(k, v)? as usize,
            "timeout" => w.timeout_ms = parse_u64(k, v)?,
            "options" => options(&mut req, k, v, |o| crate::query::request::Options::default().set(o))?,
            "time_group" => {
                crate::query::time_group::TimeGroup::parse(v, k)?;
            }
            "group" if v1 => {
                crate::query::time_group::TimeGroup::parse(v, k)?;
            }
            "context" if v1 => req.selectors.contexts = pattern(k, v)?,
            _ => {
                selector(&mut req, k, v)?;
            }
        }
    }
    req.timeout_ms = w.timeout_ms;
    check_request_times(w.after, w.before, 0)?;
    check_request_times(w.baseline_after.unwrap_or(0), w.baseline_before.unwrap_or(0), 0)
        .map_err(|e| EngineError::param(format!("baseline_{}", e.path().unwrap_or("after")), e.to_string()))?;
    Ok((req, w))
}

/// `/api/v1/allmetrics` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllMetricsFormat {
    Shell,
    Json,
    Prometheus,
    PrometheusAllHosts,
}

/// A parsed `/api/v1/allmetrics` request.
#[derive(Debug, Clone, PartialEq)]
pub struct AllMetricsRequest {
    pub format: AllMetricsFormat,
    /// Pattern over chart (instance) ids and names.
    pub filter: Option<SimplePattern>,
    /// Node pattern (a strata extension: hostname, machine GUID or node id).
    pub nodes: Option<SimplePattern>,
    pub prefix: String,
    pub timestamps: bool,
    pub hide_units: bool,
}

fn yes_no(k: &str, v: &str) -> Result<bool> {
    match v {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(EngineError::param(k, format!("'{k}' is yes or no, got '{v}'"))),
    }
}

/// Parses the GET parameters of `allmetrics`.
pub fn parse_allmetrics(pairs: &[(String, String)]) -> Result<AllMetricsRequest> {
    let mut r = AllMetricsRequest {
        format: AllMetricsFormat::Shell,
        filter: None,
        nodes: None,
        prefix: "netdata".into(),
        timestamps: true,
        hide_units: false,
    };
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        let k = k.as_str();
        match k {
            "format" => {
                r.format = match v.as_str() {
                    "shell" | "bash" => AllMetricsFormat::Shell,
                    "json" => AllMetricsFormat::Json,
                    "prometheus" => AllMetricsFormat::Prometheus,
                    "prometheus_all_hosts" => AllMetricsFormat::PrometheusAllHosts,
                    _ => {
                        return Err(EngineError::param(
                            k,
                            format!("Which format? '{v}' is not one of shell, prometheus, prometheus_all_hosts, json"),
                        ))
                    }
                }
            }
            "filter" => r.filter = pattern(k, v)?,
            "nodes" | "scope_nodes" => r.nodes = pattern(k, v)?,
            "prefix" => {
                if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || v.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(EngineError::param(
                        k,
                        format!("'{k}' must be a Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*), got '{v}'"),
                    ));
                }
                r.prefix = v.clone();
            }
            "timestamps" => r.timestamps = yes_no(k, v)?,
            "hideunits" => r.hide_units = yes_no(k, v)?,
            "data" | "source" | "data_source" if !matches!(v.as_str(), "average" | "as-collected" | "as_collected") => {
                return Err(EngineError::param(k, format!("'{k}' is average or as-collected, got '{v}'")));
            }
            _ => {}
        }
    }
    Ok(r)
}

/// A room-scoped Cloud POST body (`.../nodes`, `.../contexts`): scope and
/// selectors as in a data query; the window only filters when present.
pub fn parse_room_body(body: &Value) -> Result<MetaRequest> {
    let q = crate::query::body::parse_body(crate::query::request::ApiVersion::V3, body)?;
    check_request_times(q.after, q.before, 0)?;
    let windowed = body.get("window").is_some_and(|w| w.get("after").is_some() || w.get("before").is_some());
    Ok(MetaRequest {
        scope: q.scope,
        selectors: q.selectors,
        after: windowed.then_some(q.after),
        before: windowed.then_some(q.before),
        ..MetaRequest::default()
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn meta_params() {
        let r = parse_meta(&p(&[
            ("scope_nodes", "web*"),
            ("contexts", "system.*"),
            ("after", "-60"),
            ("options", "titles,labels"),
        ]))
        .expect("ok");
        assert!(r.scope.nodes.is_some() && r.selectors.contexts.is_some());
        assert_eq!(r.window(1000), Some((941, 1000)));
        assert!(r.option("labels"));
        for (q, param) in [
            (p(&[("after", "x")]), "after"),
            (p(&[("options", "nope")]), "options"),
            (p(&[("nodes", "!")]), "nodes"),
            (p(&[("cardinality", "-1")]), "cardinality"),
        ] {
            assert_eq!(parse_meta(&q).expect_err(param).path(), Some(param));
        }
    }

    #[test]
    fn weights_params() {
        let (_, w) = parse_weights(&p(&[
            ("method", "ks2"),
            ("highlight_after", "-60"),
            ("baseline_after", "-600"),
            ("options", "null2zero,nonzero"),
        ]))
        .expect("ok");
        assert_eq!((w.method, w.after, w.baseline_after), (Method::Ks2, -60, Some(-600)));
        assert_eq!(parse_weights(&p(&[("method", "magic")])).expect_err("method").path(), Some("method"));
        assert_eq!(
            parse_weights(&p(&[("points", "999999")])).expect("capped").1.points,
            86_400,
            "capped as Netdata caps"
        );
    }

    #[test]
    fn v1_weights_params() {
        let (req, w) = parse_weights_v1(&p(&[("context", "disk.*"), ("group", "max")])).expect("ok");
        assert_eq!(w.method, Method::AnomalyRate, "v1's default method");
        let contexts = req.selectors.contexts.expect("context selects contexts");
        assert!(contexts.matches("disk.io") && !contexts.matches("system.cpu"));
        let (_, w) = parse_weights_v1(&p(&[("method", "volume")])).expect("ok");
        assert_eq!(w.method, Method::Volume);
        assert_eq!(parse_weights_v1(&p(&[("context", "!")])).expect_err("context").path(), Some("context"));
        assert_eq!(parse_weights_v1(&p(&[("group", "magic")])).expect_err("group").path(), Some("group"));
        // v2 keeps its own names: `context` and `group` are not among them.
        let (req, w) = parse_weights(&p(&[("context", "disk.*"), ("group", "magic")])).expect("ignored");
        assert_eq!((w.method, req.selectors.contexts), (Method::Value, None));
    }

    #[test]
    fn allmetrics_params() {
        let r =
            parse_allmetrics(&p(&[("format", "prometheus"), ("prefix", "strata"), ("timestamps", "no")])).expect("ok");
        assert_eq!((r.format, r.prefix.as_str(), r.timestamps), (AllMetricsFormat::Prometheus, "strata", false));
        for (q, param) in [
            (p(&[("format", "xml")]), "format"),
            (p(&[("prefix", "a-b")]), "prefix"),
            (p(&[("hideunits", "maybe")]), "hideunits"),
        ] {
            assert_eq!(parse_allmetrics(&q).expect_err(param).path(), Some(param));
        }
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop::sample::select(vec![
            "after",
            "before",
            "q",
            "chart",
            "options",
            "nodes",
            "scope_nodes",
            "contexts",
            "labels",
            "dimensions",
            "instances",
            "cardinality",
            "timeout",
            "method",
            "baseline_after",
            "baseline_before",
            "points",
            "format",
            "filter",
            "prefix",
            "timestamps",
            "hideunits",
            "data",
            "time_group",
            "unknown",
        ]);
        prop::collection::vec((key.prop_map(str::to_string), ".{0,16}"), 0..8)
    }

    proptest! {
        #[test]
        fn meta_parsers_never_panic(q in pairs(), now in any::<i64>()) {
            if let Ok(r) = parse_meta(&q) {
                let _ = r.window(now / 4);
            }
            let _ = parse_weights(&q);
            let _ = parse_weights_v1(&q);
            let _ = parse_allmetrics(&q);
        }

        #[test]
        fn room_body_parser_never_panics(after in any::<i64>(), before in any::<i64>(), nodes in prop::collection::vec(".{0,8}", 0..3)) {
            let body = serde_json::json!({"scope": {"contexts": ["*"], "nodes": nodes}, "window": {"after": after, "before": before}});
            let _ = parse_room_body(&body);
        }
    }
}
