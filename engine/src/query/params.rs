//! GET query strings (`/api/v1/data`, `/api/v2/data`, `/api/v3/data`) into a
//! [`QueryRequest`]. Unknown parameter names and empty values are ignored,
//! as Netdata does; a known parameter with a bad value is a 400 naming it.

use crate::error::{EngineError, Result};
use crate::index::{LabelFilter, SimplePattern};
use crate::model::{whole_i64, NotWhole};
use crate::query::request::{Aggregation, ApiVersion, Format, GroupByKey, GroupByPass, QueryRequest};
use crate::query::time_group::TimeGroup;

/// Largest number of output points a query may ask for (Netdata's cap).
pub const MAX_POINTS: u64 = 86_400;
/// Group-by passes supported.
pub const MAX_PASSES: usize = 2;

pub(crate) fn parse_i64(param: &str, v: &str) -> Result<i64> {
    v.trim()
        .parse::<i64>()
        .or_else(|_| v.trim().parse::<f64>().map_err(|_| NotWhole::Fraction).and_then(whole_i64))
        .map_err(|e| {
            let what = if e == NotWhole::OutOfRange { "is out of range" } else { "must be an integer" };
            EngineError::param(param, format!("'{param}' {what}, got '{v}'"))
        })
}

pub(crate) fn parse_u64(param: &str, v: &str) -> Result<u64> {
    let n = parse_i64(param, v)?;
    u64::try_from(n).map_err(|_| EngineError::param(param, format!("'{param}' must not be negative, got {n}")))
}

/// More points than [`MAX_POINTS`] are capped to it, as Netdata caps
/// them (a client asking for more gets its rows, not an error).
pub(crate) fn capped_points(points: u64) -> u64 {
    points.min(MAX_POINTS)
}

pub(crate) fn check_tier(param: &str, tier: i64) -> Result<usize> {
    if !(0..crate::storage::TIERS as i64).contains(&tier) {
        return Err(EngineError::param(
            param,
            format!(
                "'{param}' must be 0..{} (strata has {} tiers), got {tier}",
                crate::storage::TIERS - 1,
                crate::storage::TIERS
            ),
        ));
    }
    Ok(tier as usize)
}

pub(crate) fn pattern(param: &str, v: &str) -> Result<Option<SimplePattern>> {
    let p =
        SimplePattern::parse_get(v).map_err(|source| EngineError::InvalidPattern { param: param.into(), source })?;
    Ok((!p.is_match_all()).then_some(p))
}

pub(crate) fn labels(param: &str, v: &str) -> Result<Option<LabelFilter>> {
    let f = LabelFilter::parse_get(v).map_err(|source| EngineError::InvalidPattern { param: param.into(), source })?;
    Ok((!f.is_empty()).then_some(f))
}

pub(crate) fn group_by_keys(param: &str, words: &[&str]) -> Result<Vec<GroupByKey>> {
    let mut keys = Vec::new();
    for w in words.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        let k = GroupByKey::parse(w).ok_or_else(|| {
            EngineError::param(
                param,
                format!("unknown group_by '{w}' (use dimension, instance, node, label, context, units, selected, percentage-of-instance)"),
            )
        })?;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    Ok(keys)
}

pub(crate) fn aggregation(param: &str, v: &str) -> Result<Aggregation> {
    Aggregation::parse(v.trim()).ok_or_else(|| {
        EngineError::param(
            param,
            format!("unknown aggregation '{v}' (use average, sum, min, max, extremes, percentage)"),
        )
    })
}

pub(crate) fn format(param: &str, v: &str) -> Result<Format> {
    Format::parse(v.trim()).ok_or_else(|| {
        EngineError::param(
            param,
            format!(
                "unknown format '{v}' (use json2, json, csv, tsv, ssv, ssvcomma, array, markdown, html, csvjsonarray)"
            ),
        )
    })
}

pub(crate) fn split_list(v: &str) -> Vec<&str> {
    v.split([',', '|', ' ']).filter(|w| !w.is_empty()).collect()
}

/// Which pass a possibly indexed parameter (`group_by[1]`) targets.
fn indexed(name: &str, base: &str, next: &mut usize) -> Result<Option<usize>> {
    if name == base {
        let i = *next;
        *next += 1;
        return Ok(Some(i));
    }
    let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('[')).and_then(|r| r.strip_suffix(']')) else {
        return Ok(None);
    };
    match rest.parse::<usize>() {
        Ok(i) if i < MAX_PASSES => Ok(Some(i)),
        _ => Err(EngineError::param(name, format!("'{name}': group-by pass index must be 0..{}", MAX_PASSES - 1))),
    }
}

fn pass<'a>(passes: &'a mut Vec<GroupByPass>, i: usize, param: &str) -> Result<&'a mut GroupByPass> {
    if i >= MAX_PASSES {
        return Err(EngineError::param(param, format!("at most {MAX_PASSES} group-by passes are supported")));
    }
    while passes.len() <= i {
        passes.push(GroupByPass { keys: Vec::new(), labels: Vec::new(), aggregation: Aggregation::Average });
    }
    Ok(&mut passes[i])
}

/// Parses decoded `(name, value)` pairs.
pub fn parse_params(api: ApiVersion, pairs: &[(String, String)]) -> Result<QueryRequest> {
    let mut q = QueryRequest::new(api);
    let mut passes: Vec<GroupByPass> = Vec::new();
    let (mut n_gb, mut n_gbl, mut n_agg) = (0usize, 0usize, 0usize);
    let mut time_group_options: Option<String> = None;
    let mut time_group: Option<TimeGroup> = None;
    let mut limit: Option<u64> = None;
    let mut dims_v1: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let (name, v) = (name.as_str(), value.as_str());
        if v.is_empty() {
            continue;
        }
        match name {
            "scope_nodes" => q.scope.nodes = pattern(name, v)?,
            "scope_contexts" => q.scope.contexts = pattern(name, v)?,
            "scope_instances" => q.scope.instances = pattern(name, v)?,
            "scope_dimensions" => q.scope.dimensions = pattern(name, v)?,
            "scope_labels" => q.scope.labels = labels(name, v)?,
            "nodes" => q.selectors.nodes = pattern(name, v)?,
            "contexts" | "context" => q.selectors.contexts = pattern(name, v)?,
            "instances" | "chart" => q.selectors.instances = pattern(name, v)?,
            "dimensions" | "dimension" | "dim" | "dims" => {
                if api == ApiVersion::V1 {
                    dims_v1.push(v);
                } else {
                    q.selectors.dimensions = pattern(name, v)?;
                }
            }
            "labels" | "chart_labels_filter" => q.selectors.labels = labels(name, v)?,
            "alerts" => q.selectors.alerts = pattern(name, v)?,
            "after" => q.after = parse_i64(name, v)?,
            "before" => q.before = parse_i64(name, v)?,
            "points" | "max_points" => q.points = capped_points(parse_u64(name, v)?),
            "time_group" | "group" => time_group = Some(TimeGroup::parse(v.trim(), name)?),
            "time_group_options" | "group_options" => time_group_options = Some(v.to_string()),
            "time_resampling" | "gtime" => {
                // Checked here too, to name the parameter as it was sent.
                let secs = parse_u64(name, v)?;
                let ten_years = crate::query::window::TEN_YEARS;
                if secs > ten_years as u64 {
                    return Err(EngineError::param(name, format!("{secs} is out of range: 0 to {ten_years} seconds")));
                }
                q.time_resampling = secs as i64;
            }
            "tier" => {
                q.tier = Some(check_tier(name, parse_i64(name, v)?)?);
                q.options.selected_tier = true;
            }
            "format" => q.format = format(name, v)?,
            "options" => {
                for o in split_list(v) {
                    if !q.options.set(o.trim()) {
                        return Err(EngineError::param(name, format!("unknown option '{o}'")));
                    }
                }
            }
            "timeout" => q.timeout_ms = parse_u64(name, v)?,
            "cardinality_limit" => q.cardinality_limit = parse_u64(name, v)?,
            "limit" => limit = Some(parse_u64(name, v)?),
            "show_dimensions" => q.options.all_dimensions = true,
            _ => {
                if let Some(i) = indexed(name, "group_by_label", &mut n_gbl)? {
                    let p = pass(&mut passes, i, name)?;
                    p.labels = split_list(v).into_iter().map(str::to_string).collect();
                } else if let Some(i) = indexed(name, "group_by", &mut n_gb)? {
                    let keys = group_by_keys(name, &split_list(v))?;
                    pass(&mut passes, i, name)?.keys = keys;
                } else if let Some(i) = indexed(name, "aggregation", &mut n_agg)? {
                    let a = aggregation(name, v)?;
                    pass(&mut passes, i, name)?.aggregation = a;
                }
                // Anything else is ignored, as Netdata does (callback, tqx, ...).
            }
        }
    }
    if !dims_v1.is_empty() {
        q.selectors.dimensions = pattern("dimension", &dims_v1.join("|"))?;
        // Netdata 1.37 marks every dimension a `dimensions=` list selects
        // as shown before the query runs, so `nonzero` hides none of them;
        // `*` too (the agent prefixes each value with `|`, so its "all
        // dimensions" shortcut never sees a bare `*`). Checked against a
        // 1.37 agent.
        q.options.nonzero = false;
    }
    if let Some(mut tg) = time_group {
        tg.options = time_group_options;
        q.time_group = tg;
    } else {
        q.time_group.options = time_group_options;
    }
    if q.cardinality_limit == 0 {
        if let Some(l) = limit {
            q.cardinality_limit = l + 1;
        }
    }
    // `nodes`/`contexts` fill the scope when it is not given (Netdata).
    if q.scope.nodes.is_none() {
        q.scope.nodes = q.selectors.nodes.clone();
    }
    if q.scope.contexts.is_none() {
        q.scope.contexts = q.selectors.contexts.clone();
    }
    // A v1 query is about one chart: it is the whole universe (percentage
    // totals, hidden dimensions, the summary), not a filter over the database.
    if api == ApiVersion::V1 && q.scope.instances.is_none() {
        q.scope.instances = q.selectors.instances.clone();
    }
    if !passes.is_empty() {
        q.passes = passes;
    }
    q.finish();
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::time_group::Method;

    #[test]
    fn v1_chart_is_the_scope() {
        let q = parse_params(ApiVersion::V1, &[("chart".to_string(), "disk_space./".to_string())]).expect("v1");
        assert_eq!(q.scope.instances, q.selectors.instances);
        assert!(q.scope.instances.is_some());
        let q = parse_params(ApiVersion::V2, &[("instances".to_string(), "x".to_string())]).expect("v2");
        assert!(q.scope.instances.is_none(), "v2 instances filter inside the scope");
    }

    fn p(s: &[(&str, &str)]) -> Result<QueryRequest> {
        let pairs: Vec<(String, String)> = s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        parse_params(ApiVersion::V3, &pairs)
    }

    /// A number past i64 names what was sent, not the saturated i64::MAX.
    #[test]
    fn integers_past_i64_are_out_of_range() {
        let err = p(&[("points", "99999999999999999999999")]).expect_err("out of range").to_string();
        assert!(err.contains("'points' is out of range, got '99999999999999999999999'"), "{err}");
        assert!(!err.contains("9223372036854775807"), "{err}");
        let err = p(&[("after", "-1e19")]).expect_err("out of range").to_string();
        assert!(err.contains("out of range"), "{err}");
        assert!(p(&[("after", "abc")]).expect_err("not a number").to_string().contains("must be an integer"));
        assert_eq!(p(&[("after", "-6e2")]).expect("a whole float").after, -600);
    }

    #[test]
    fn defaults() {
        let q = p(&[]).expect("ok");
        assert_eq!((q.after, q.before, q.points), (-600, 0, 0));
        assert_eq!(q.passes, vec![GroupByPass::default()]);
        assert!(q.options.virtual_points && q.options.jsonwrap);
        assert_eq!(q.format, Format::Json2);
    }

    #[test]
    fn repeated_group_by_fills_passes_and_inherits_keys() {
        let q = p(&[("group_by", "instance"), ("aggregation", "sum"), ("group_by", "node"), ("aggregation", "max")])
            .expect("ok");
        assert_eq!(q.passes.len(), 2);
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Instance, GroupByKey::Node]);
        assert_eq!(q.passes[0].aggregation, Aggregation::Sum);
        assert_eq!(q.passes[1].keys, vec![GroupByKey::Node]);
        assert!(q.options.absolute); // A node pass before a dimension pass: not dimension-based as asked,
                                     // though it inherits `dimension` (spec: the adjustment follows parsing).
        let q = p(&[("group_by", "node"), ("group_by", "dimension")]).expect("ok");
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Node, GroupByKey::Dimension]);
        assert!(q.options.absolute);
        assert!(!p(&[("group_by", "dimension"), ("group_by", "dimension")]).expect("ok").options.absolute);
    }

    #[test]
    fn indexed_group_by_and_labels() {
        let q =
            p(&[("group_by[0]", "dimension,node"), ("group_by_label[0]", "env"), ("time_group", "max")]).expect("ok");
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Dimension, GroupByKey::Node, GroupByKey::Label]);
        assert_eq!(q.passes[0].labels, vec!["env".to_string()]);
        assert_eq!(q.time_group.method, Method::Max);
        assert!(!q.options.absolute);
    }

    /// A `label` grouping without label keys is dropped, as Netdata drops
    /// it (it grouped every instance into one series with the id ""): the
    /// first pass falls back to `dimension`, a later pass left with no key
    /// goes with the passes after it. With keys (also an inner pass
    /// inheriting an outer one's) it stays.
    #[test]
    fn label_grouping_without_keys_is_dropped() {
        assert_eq!(p(&[("group_by", "label")]).expect("ok").passes, vec![GroupByPass::default()]);
        let q = p(&[("group_by", "node,label"), ("aggregation", "sum")]).expect("ok");
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Node]);
        let q = p(&[("group_by", "instance"), ("group_by", "label")]).expect("ok");
        assert_eq!(q.passes.len(), 1);
        assert_eq!(q.passes[0].keys, vec![GroupByKey::Instance]);
        let q = p(&[("group_by", "instance"), ("group_by", "label"), ("group_by_label[1]", "env")]).expect("ok");
        assert_eq!(q.passes[0].labels, vec!["env".to_string()]);
        assert_eq!(p(&[("group_by_label", "env")]).expect("implies label").passes[0].keys, vec![GroupByKey::Label]);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (k, v) in [
            ("gtime", "999999999999"),
            ("time_resampling", "999999999999"),
            ("after", "abc"),
            ("points", "-3"),
            ("tier", "7"),
            ("time_group", "avg2"),
            ("group_by", "planet"),
            ("aggregation", "mode"),
            ("format", "xml"),
            ("options", "bogus"),
            ("nodes", "a,!"),
            ("group_by[5]", "node"),
        ] {
            let e = p(&[(k, v)]).expect_err(k);
            assert_eq!(e.path(), Some(k), "{k}={v}: {e}");
        }
    }

    /// As Netdata: more points than 86,400 are capped, not refused.
    #[test]
    fn points_past_the_cap_are_capped() {
        for (asked, got) in [("100000", MAX_POINTS), ("86401", MAX_POINTS), ("86400", MAX_POINTS), ("300", 300)] {
            assert_eq!(p(&[("points", asked)]).expect("ok").points, got, "points={asked}");
        }
        let body = serde_json::json!({"window": {"points": 1_000_000}});
        let q = crate::query::body::parse_body(ApiVersion::V3, &body).expect("ok");
        assert_eq!(q.points, MAX_POINTS);
    }

    #[test]
    fn selectors_fill_scope_and_match_all_is_none() {
        let q = p(&[("contexts", "system.*"), ("nodes", "*"), ("dimensions", "user|system")]).expect("ok");
        assert!(q.scope.contexts.is_some() && q.scope.nodes.is_none());
        assert!(q.selectors.dimensions.as_ref().is_some_and(|d| d.matches("system") && !d.matches("idle")));
    }

    #[test]
    fn v1_dimensions_switch_nonzero_off_as_netdata_1_37_does() {
        let v1 = |pairs: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            parse_params(ApiVersion::V1, &owned).expect("ok").options.nonzero
        };
        assert!(v1(&[("chart", "c"), ("options", "nonzero")]));
        assert!(!v1(&[("chart", "c"), ("options", "nonzero"), ("dimensions", "*")]));
        assert!(!v1(&[("chart", "c"), ("options", "nonzero"), ("dimensions", "zero,negzero")]));
        assert!(!v1(&[("dimensions", "zero"), ("options", "nonzero|seconds")]), "in either order");
        assert!(p(&[("options", "nonzero"), ("dimensions", "zero")]).expect("v2").options.nonzero, "v2 keeps it");
    }
}
