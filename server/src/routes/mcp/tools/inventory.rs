//! The inventory tools: `nodes.list`, `contexts.list`, `contexts.search`
//! and `metrics.describe`, views of the engine's metadata listings
//! (`strata_engine::meta`) over the metrics the token may see.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use strata_engine::engine::State;
use strata_engine::index::{LabelFilter, SimplePattern};
use strata_engine::meta::{contexts, nodes, search, MetaScope, Span, Visible};
use strata_engine::model::node_pattern_names;
use strata_engine::query::plan::retention::tier_ranges;
use strata_engine::query::request::Selectors;

use super::args::{
    int, pattern_text, patterns, patterns_schema, rfc3339, strings, text, window, window_schema, MAX_WINDOW_S,
};
use super::{Ctx, Tool, ToolError};
use crate::admission::Class;
use crate::auth::Resource;

fn list_out(item: Value, key: &str) -> Value {
    json!({"type": "object", "required": [key, "total", "truncated"], "properties": {
        key: {"type": "array", "items": item}, "total": {"type": "integer"}, "truncated": {"type": "boolean"}}})
}

/// Runs `f` over the metrics the token may see, narrowed by `sel` and `win`.
fn with_visible<T>(
    cx: &Ctx,
    sel: Selectors,
    win: Option<(i64, i64)>,
    f: impl FnOnce(&State, &Visible, usize) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let guard = cx.st.engine.read()?;
    let tiers = cx.st.engine.config().limits.tiers;
    let scope = MetaScope { selectors: sel, allowed_nodes: cx.me.allow.clone(), window: win, ..MetaScope::default() };
    let visible = scope.visible(&guard.catalog, &guard.store, tiers);
    f(&guard, &visible, tiers)
}

fn opt_window(cx: &Ctx, args: &Map<String, Value>) -> Result<Option<(i64, i64)>, ToolError> {
    args.get("window").map(|w| window(Some(w), cx.now, 900, MAX_WINDOW_S, "window")).transpose()
}

fn state(span: &Span, now: i64) -> &'static str {
    if span.live(now) {
        "live"
    } else if span.last.is_some_and(|l| l >= now - 3600) {
        "stale"
    } else {
        "offline"
    }
}

pub static NODES: Tool = Tool {
    name: "nodes.list",
    title: "List nodes",
    description: "The monitored hosts this token may see: id, hostname, state (live = collected in the last seconds, stale = within the hour, offline), last sample time, number of contexts and host labels. Filter with a simple pattern on hostname, machine GUID or id and 'key:value' label filters.",
    needs: Some(Resource::Metadata),
    class: Class::Light,
    input: || {
        json!({"type": "object", "additionalProperties": false, "properties": {
            "pattern": {"type": "string", "maxLength": 200, "default": "*",
                "description": "Simple pattern on hostname, machine GUID or node id (tried in that order), space-separated words, first match wins, e.g. '!web-test* web*'."},
            "labels": patterns_schema(20, "Host label filters 'key:value-pattern', e.g. 'env:prod'."),
            "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}})
    },
    output: || {
        list_out(
            json!({"type": "object", "required": ["id", "hostname", "state", "last_seen", "contexts"], "properties": {
                "id": {"type": "string"}, "hostname": {"type": "string"},
                "state": {"enum": ["live", "stale", "offline"]},
                "last_seen": {"type": "string", "format": "date-time"},
                "contexts": {"type": "integer", "description": "number of contexts collected"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}),
            "nodes",
        )
    },
    run: |cx, args| {
        let pattern = pattern_text(args, "pattern", "*")?;
        let labels = strings(args, "labels");
        let filter = if labels.is_empty() {
            None
        } else {
            Some(LabelFilter::parse_list(&labels).map_err(|e| ToolError::tool(format!("'labels': {e}")))?)
        };
        let limit = int(args, "limit", 50) as usize;
        with_visible(cx, Selectors::default(), None, |st, visible, tiers| {
            let all: Vec<_> = nodes::list(&st.catalog, &st.store, visible, tiers)
                .into_iter()
                .filter(|n| pattern.matches_any(node_pattern_names(&n.hostname, &n.machine_guid, &n.id)))
                .filter(|n| filter.as_ref().is_none_or(|f| f.matches(|k| n.labels.get(k).map(String::as_str))))
                .collect();
            let items: Vec<Value> = all
                .iter()
                .take(limit)
                .map(|n| {
                    let labels: Map<String, Value> =
                        n.labels.iter().take(20).map(|(k, v)| (k.clone(), json!(v.chars().take(100).collect::<String>()))).collect();
                    json!({"id": n.id, "hostname": n.hostname, "state": state(&n.span, cx.now),
                           "last_seen": rfc3339(n.span.last.unwrap_or(0)), "contexts": n.contexts, "labels": labels})
                })
                .collect();
            Ok(json!({"nodes": items, "total": all.len(), "truncated": all.len() > limit}))
        })
    },
};

fn nodes_arg(args: &Map<String, Value>) -> Result<Option<SimplePattern>, ToolError> {
    patterns(&strings(args, "nodes"), "nodes")
}

pub static CONTEXTS: Tool = Tool {
    name: "contexts.list",
    title: "List contexts",
    description: "The metric families (contexts, e.g. system.cpu, disk.io) this token may see, sorted by id, with title, units, how many nodes, instances (counted per node, as metrics.describe lists them) and dimensions have them, their retention and whether they are still collected. Narrow with a pattern, nodes, or a window (only contexts with data in it).",
    needs: Some(Resource::Metadata),
    class: Class::Light,
    input: || {
        json!({"type": "object", "additionalProperties": false, "properties": {
            "pattern": {"type": "string", "maxLength": 200, "default": "*",
                "description": "Simple pattern on context id, e.g. 'system.* disk.*'."},
            "nodes": patterns_schema(20, "Only contexts present on these nodes (id or hostname patterns)."),
            "window": window_schema("Only contexts with data in this window. Default: any retained data."),
            "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}})
    },
    output: || {
        list_out(
            json!({"type": "object",
                "required": ["id", "title", "units", "nodes", "instances", "dimensions", "last_entry", "live"],
                "properties": {
                    "id": {"type": "string"}, "title": {"type": "string"}, "family": {"type": "string"},
                    "units": {"type": "string"}, "nodes": {"type": "integer"}, "instances": {"type": "integer"},
                    "dimensions": {"type": "integer"},
                    "first_entry": {"type": "string", "format": "date-time"},
                    "last_entry": {"type": "string", "format": "date-time"}, "live": {"type": "boolean"}}}),
            "contexts",
        )
    },
    run: |cx, args| {
        let pattern = pattern_text(args, "pattern", "*")?;
        let sel = Selectors { contexts: Some(pattern), nodes: nodes_arg(args)?, ..Selectors::default() };
        let limit = int(args, "limit", 100) as usize;
        with_visible(cx, sel, opt_window(cx, args)?, |st, visible, tiers| {
            let mut all = contexts::list(&st.catalog, &st.store, visible, tiers);
            all.sort_by(|a, b| a.id.cmp(&b.id));
            let items: Vec<Value> = all
                .iter()
                .take(limit)
                .map(|c| {
                    json!({"id": c.id, "title": c.title, "family": c.family, "units": c.units, "nodes": c.nodes.len(),
                           "instances": c.node_instances, "dimensions": c.dimensions.len(),
                           "first_entry": rfc3339(c.span.first.unwrap_or(0)), "last_entry": rfc3339(c.span.last.unwrap_or(0)),
                           "live": c.span.live(cx.now)})
                })
                .collect();
            Ok(json!({"contexts": items, "total": all.len(), "truncated": all.len() > limit}))
        })
    },
};

/// Engine match kinds to the spec's names (others are not reported).
fn matched_in(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "id" => "context",
        "title" => "title",
        "families" => "family",
        "instances" => "instance",
        "dimensions" => "dimension",
        "labels" => "label",
        "nodes" => "node",
        _ => return None,
    })
}

pub static SEARCH: Tool = Tool {
    name: "contexts.search",
    title: "Search metrics",
    description: "Full-text search over context ids, titles, families, instances, dimensions, labels and node names (like /api/v2/q: a word that names a node matches every context of that node). Words are AND-ed, case-insensitive substrings: 'disk read' finds disk.io with its reads dimension. Matches in the context id rank first, then the title. Use it to find the context to pass to metrics.describe or data.query.",
    needs: Some(Resource::Metadata),
    class: Class::Light,
    input: || {
        json!({"type": "object", "additionalProperties": false, "required": ["q"], "properties": {
            "q": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Words to find, e.g. 'cpu user'."},
            "nodes": patterns_schema(20, "Only these nodes (id or hostname patterns)."),
            "window": window_schema("Only metrics with data in this window."),
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}})
    },
    output: || {
        json!({"type": "object", "required": ["q", "matches", "total", "truncated"], "properties": {
            "q": {"type": "string"},
            "matches": {"type": "array", "items": {"type": "object", "required": ["context", "title", "units", "matched_in"],
                "properties": {
                    "context": {"type": "string"}, "title": {"type": "string"}, "units": {"type": "string"},
                    "matched_in": {"type": "array", "items": {"enum": ["context", "title", "family", "instance", "dimension", "label", "node"]}},
                    "examples": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
                    "nodes": {"type": "integer"}}}},
            "total": {"type": "integer"}, "truncated": {"type": "boolean"}}})
    },
    run: |cx, args| {
        let q = text(args, "q", "").to_string();
        let words: Vec<&str> = q.split_whitespace().collect();
        if words.is_empty() {
            return Err(ToolError::tool("'q' needs at least one word"));
        }
        let sel = Selectors { nodes: nodes_arg(args)?, ..Selectors::default() };
        let limit = int(args, "limit", 20) as usize;
        with_visible(cx, sel, opt_window(cx, args)?, |st, visible, _| {
            let mut per_word = Vec::new();
            for w in &words {
                let found = search::search(&st.catalog, visible, &search::compile(w)?);
                per_word.push(found.hits);
            }
            let Some(first) = per_word.first() else { return Ok(json!({})) };
            let mut hits: Vec<(u8, String, Value)> = Vec::new();
            for h in first {
                let all: Vec<&search::Hit> =
                    per_word.iter().filter_map(|hs| hs.iter().find(|x| x.context == h.context)).collect();
                if all.len() != per_word.len() {
                    continue;
                }
                let kinds: BTreeSet<&str> = all.iter().flat_map(|x| x.matched.iter().filter_map(|k| matched_in(k))).collect();
                if kinds.is_empty() {
                    continue;
                }
                let mut examples: Vec<String> = all
                    .iter()
                    .flat_map(|x| x.instances.iter().chain(&x.dimensions).cloned().chain(x.labels.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}:{v}")))))
                    .collect();
                examples.dedup();
                examples.truncate(3);
                let nodes: BTreeSet<u32> = all.iter().flat_map(|x| x.nodes.iter().copied()).collect();
                let rank = if kinds.contains("context") { 0 } else if kinds.contains("title") { 1 } else { 2 };
                hits.push((rank, h.context.clone(), json!({"context": h.context, "title": h.title, "units": h.units,
                    "matched_in": kinds, "examples": examples, "nodes": nodes.len()})));
            }
            hits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            let total = hits.len();
            let matches: Vec<Value> = hits.into_iter().take(limit).map(|h| h.2).collect();
            Ok(json!({"q": q, "matches": matches, "total": total, "truncated": total > limit}))
        })
    },
};

/// Levenshtein distance (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub static DESCRIBE: Tool = Tool {
    name: "metrics.describe",
    title: "Describe a context",
    description: "Everything about one context (exact id, e.g. 'system.cpu'): title, units, chart type, collection interval, dimensions, label keys with example values, its instances per node with retention, and the retention of each storage tier (tier 0 per second, tier 1 per minute, tier 2 per hour). Use contexts.search first if unsure of the id.",
    needs: Some(Resource::Metadata),
    class: Class::Light,
    input: || {
        json!({"type": "object", "additionalProperties": false, "required": ["context"], "properties": {
            "context": {"type": "string", "minLength": 1, "maxLength": 200,
                "description": "Exact context id, e.g. 'system.cpu'. Use contexts.search to find one."},
            "nodes": patterns_schema(20, "Only these nodes (id or hostname patterns)."),
            "instances": {"type": "string", "maxLength": 200, "default": "*", "description": "Simple pattern on instance id or name."},
            "max_instances": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}})
    },
    output: || {
        let when = json!({"type": ["string", "null"], "format": "date-time"});
        json!({"type": "object",
            "required": ["context", "title", "units", "dimensions", "instances", "retention", "instances_total", "truncated"],
            "properties": {
                "context": {"type": "string"}, "title": {"type": "string"}, "family": {"type": "string"},
                "units": {"type": "string"}, "chart_type": {"enum": ["line", "area", "stacked", "heatmap"]},
                "collection_interval_s": {"type": "integer"},
                "dimensions": {"type": "array", "items": {"type": "object", "required": ["id", "name"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}},
                "label_keys": {"type": "object", "additionalProperties": {"type": "array", "maxItems": 10, "items": {"type": "string"}}},
                "instances": {"type": "array", "items": {"type": "object", "required": ["id", "name", "node", "last_entry"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "node": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "dimensions": {"type": "array", "items": {"type": "string"}},
                        "first_entry": {"type": "string", "format": "date-time"},
                        "last_entry": {"type": "string", "format": "date-time"}}}},
                "retention": {"type": "array", "items": {"type": "object",
                    "required": ["tier", "granularity_s", "first_entry", "last_entry"],
                    "properties": {"tier": {"type": "integer"}, "granularity_s": {"type": "integer"},
                        "first_entry": when, "last_entry": when}}},
                "instances_total": {"type": "integer"}, "truncated": {"type": "boolean"}}})
    },
    run: |cx, args| {
        let id = text(args, "context", "").to_string();
        let inst = pattern_text(args, "instances", "*")?;
        let max = int(args, "max_instances", 50) as usize;
        let sel = Selectors { nodes: nodes_arg(args)?, ..Selectors::default() };
        with_visible(cx, sel, None, |st, visible, tiers| {
            let (cat, store) = (&st.catalog, &st.store);
            let known = contexts::list(cat, store, visible, tiers);
            let Some(c) = known.iter().find(|c| c.id == id) else {
                // Near ids only: within a third of the id's length in edits
                // (at least 2), so a typo finds its context and a word
                // that names none suggests nothing.
                let within = (id.chars().count() / 3).max(2);
                let mut near: Vec<(usize, &str)> = known
                    .iter()
                    .map(|c| (distance(&id, &c.id), c.id.as_str()))
                    .filter(|&(d, _)| d <= within)
                    .collect();
                near.sort();
                let names: Vec<String> = near.iter().take(3).map(|(_, n)| format!("'{n}'")).collect();
                let hint = if names.is_empty() { String::new() } else { format!("; did you mean {}?", names.join(", ")) };
                return Err(ToolError::tool(format!("no context '{id}'{hint} (contexts.search finds contexts by words)")));
            };
            let reg = cat.registry();
            let cidx = reg.context_idx(&id).unwrap_or(0);
            let mut instances = Vec::new();
            let mut label_keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut mine: Vec<u32> = Vec::new();
            for (i, x) in reg.instances().iter().enumerate() {
                if x.context != cidx {
                    continue;
                }
                let Some(b) = cat.postings().instance(i as u32) else { continue };
                let ms = b & visible;
                if ms.is_empty() || !inst.matches_any([x.id.as_str(), &x.name]) {
                    continue;
                }
                mine.extend(ms.iter());
                for (k, v) in &x.labels {
                    let e = label_keys.entry(k.clone()).or_default();
                    if e.len() < 10 {
                        e.insert(v.clone());
                    }
                }
                let span = Span::of(store, ms.iter(), tiers);
                instances.push(json!({"id": x.id, "name": x.name, "node": reg.nodes()[x.node as usize].id, "labels": x.labels,
                    "dimensions": ms.iter().map(|m| reg.metric(m).dimension.clone()).collect::<Vec<_>>(),
                    "first_entry": rfc3339(span.first.unwrap_or(0)), "last_entry": rfc3339(span.last.unwrap_or(0))}));
            }
            // Sample times, as `db.per_tier` and `/api/v2/info` give them
            // (not rollup interval ends), each metric's taken once.
            let ranges: Vec<_> = mine.iter().map(|&m| (m, tier_ranges(&**store, m, tiers))).collect();
            let retention: Vec<Value> = (0..tiers)
                .map(|t| {
                    let (mut first, mut last, mut res) = (None::<i64>, None::<i64>, None);
                    for &(m, r) in &ranges {
                        if let Some((f, l)) = r[t] {
                            res = res.or(store.resolution(m, t));
                            first = Some(first.map_or(f, |x: i64| x.min(f)));
                            last = Some(last.map_or(l, |x: i64| x.max(l)));
                        }
                    }
                    json!({"tier": t, "granularity_s": res.unwrap_or([1, 60, 3600][t.min(2)]),
                           "first_entry": first.map(rfc3339), "last_entry": last.map(rfc3339)})
                })
                .collect();
            let total = instances.len();
            instances.truncate(max);
            let chart_type = if ["line", "area", "stacked", "heatmap"].contains(&c.chart_type.as_str()) { c.chart_type.as_str() } else { "line" };
            Ok(json!({
                "context": c.id, "title": c.title, "family": c.family, "units": c.units, "chart_type": chart_type,
                "collection_interval_s": c.span.update_every.unwrap_or(1),
                "dimensions": c.dimensions.iter().map(|d| json!({"id": d, "name": d})).collect::<Vec<_>>(),
                "label_keys": label_keys, "instances": instances, "retention": retention,
                "instances_total": total, "truncated": total > max,
            }))
        })
    },
};
