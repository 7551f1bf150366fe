//! `weights.rank`: which metrics changed most between a highlighted window
//! and a baseline, by the engine's metric-correlation methods
//! (`strata_engine::meta::weights`, the same as `/api/v2/weights`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use strata_engine::meta::weights::{run, Method, WeightsRequest};
use strata_engine::meta::MetaScope;
use strata_engine::query::request::Selectors;

use super::args::{as_requested, int, patterns, patterns_schema, rfc3339, round, strings, text, window, window_schema};
use super::{Ctx, Tool, ToolError, MAX_WEIGHTS_METRICS};
use crate::admission::Class;
use crate::auth::Resource;

const DAY: i64 = 86_400;
/// The longest baseline the tool reads, before and after the engine
/// resizes it.
const MAX_BASELINE_S: i64 = 7 * DAY;

fn input() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["highlight"], "properties": {
        "highlight": window_schema("The window of interest (e.g. when the incident happened); at most 24 h."),
        "baseline": {"type": "object", "additionalProperties": false,
            "description": "Comparison window; default: the 4x longer window just before highlight. At most 7 days.",
            "properties": {"after": {"type": ["string", "integer"]}, "before": {"type": ["string", "integer"]}}},
        "method": {"enum": ["volume", "value", "ks2", "anomaly-rate"], "default": "volume"},
        "contexts": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 200}, "default": ["*"]},
        "nodes": patterns_schema(20, "Only these nodes (id or hostname patterns)."),
        "selectors": {"type": "object", "additionalProperties": false, "description": "Same as data.query selectors.",
            "properties": {
                "instances": patterns_schema(20, "Instance patterns."),
                "dimensions": patterns_schema(20, "Dimension patterns."),
                "labels": patterns_schema(20, "'key:value-pattern'.")}},
        "level": {"enum": ["dimension", "instance", "context"], "default": "dimension",
            "description": "Granularity of the ranked items (the best-scoring metric represents its instance or context)."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20},
        "precision": {"type": "integer", "minimum": 2, "maximum": 10, "default": 4}}})
}

fn output() -> Value {
    let win = json!({"type": "object", "properties": {
        "after": {"type": "string", "format": "date-time"}, "before": {"type": "string", "format": "date-time"}}});
    json!({"type": "object", "required": ["method", "highlight", "baseline", "results", "scored", "truncated"], "properties": {
        "method": {"type": "string"}, "highlight": win, "baseline": win,
        "results": {"type": "array", "items": {"type": "object",
            "required": ["rank", "score", "context", "node", "units", "highlight_avg", "baseline_avg"],
            "properties": {
                "rank": {"type": "integer"}, "score": {"type": "number", "description": "higher = more changed: 0..1 for volume, ks2 and anomaly-rate; for value, the highlight average itself"},
                "context": {"type": "string"}, "node": {"type": "string"},
                "instance": {"type": ["string", "null"]}, "dimension": {"type": ["string", "null"]},
                "units": {"type": "string"}, "highlight_avg": {"type": ["number", "null"]},
                "baseline_avg": {"type": ["number", "null"]}, "change_pct": {"type": ["number", "null"]}}}},
        "scored": {"type": "integer", "description": "metrics compared"},
        "truncated": {"type": "boolean", "description": "true if the 20 000-metric scan cap was hit"}}})
}

fn rank(cx: &Ctx, args: &Map<String, Value>) -> Result<Value, ToolError> {
    let (ha, hb) = window(args.get("highlight"), cx.now, 900, DAY, "highlight")?;
    let (after, before) = as_requested((ha, hb), cx.now);
    // The seconds the engine reads: a relative highlight the N up to now
    // (`ha + 1 ..= now`), an absolute one `ha ..= hb`.
    let (read_from, read_to) = if before == 0 { (ha + 1, cx.now) } else { (ha, hb) };
    let read = read_to - read_from + 1;
    let method = Method::parse(text(args, "method", "volume")).unwrap_or(Method::Volume);
    // What the engine reads as the baseline (the default, four times the
    // highlight just before it, is its own to pick, as for the REST route).
    let (baseline, (ba, bb)) = match args.get("baseline") {
        Some(b) => {
            let (ba, bb) = window(Some(b), cx.now, 4 * read, MAX_BASELINE_S, "baseline")?;
            ((Some(ba), Some(bb)), (ba, bb))
        }
        None => ((None, None), (read_from - 4 * read, read_from - 1)),
    };
    let sel = args.get("selectors").and_then(Value::as_object).cloned().unwrap_or_default();
    let contexts = match strings(args, "contexts") {
        c if c.is_empty() => vec!["*".to_string()],
        c => c,
    };
    let selectors = Selectors {
        contexts: patterns(&contexts, "contexts")?,
        nodes: patterns(&strings(args, "nodes"), "nodes")?,
        instances: patterns(&strings(&sel, "instances"), "selectors.instances")?,
        dimensions: patterns(&strings(&sel, "dimensions"), "selectors.dimensions")?,
        labels: match strings(&sel, "labels") {
            l if l.is_empty() => None,
            l => Some(
                strata_engine::index::LabelFilter::parse_list(&l)
                    .map_err(|e| ToolError::tool(format!("'selectors.labels': {e}")))?,
            ),
        },
        ..Selectors::default()
    };
    let digits = int(args, "precision", 4);
    let limit = int(args, "limit", 20) as usize;
    let level = text(args, "level", "dimension");
    let mut req = WeightsRequest {
        method,
        after,
        before,
        baseline_after: baseline.0,
        baseline_before: baseline.1,
        points: 0,
        cardinality_limit: 0,
        timeout_ms: cx.timeout_ms,
    };
    // Metrics with data in either window, as the engine resolves them (it
    // may lengthen a baseline to a power-of-two multiple of the highlight).
    let (hl, mut bl) = strata_engine::meta::weights::windows(&req, cx.now)?;
    // That lengthening may pass the tool's cap on the baseline (a 7-day
    // baseline of a 1-day highlight becomes 8 days): then the longest
    // power-of-two multiple within the cap, which the engine keeps as is.
    if let Some((b0, b1)) = bl.filter(|&(b0, b1)| b1 - b0 + 1 > MAX_BASELINE_S) {
        let dur = hl.1 - hl.0 + 1;
        let longest = (0..).map(|k| dur << k).take_while(|&d| d <= MAX_BASELINE_S).last().unwrap_or(dur);
        req.baseline_after = Some(b1 - longest + 1);
        req.baseline_before = Some(b1);
        bl = strata_engine::meta::weights::windows(&req, cx.now)?.1;
        if bl.is_some_and(|(a, b)| b - a >= MAX_BASELINE_S) {
            return Err(ToolError::tool(format!("the baseline {b0}..{b1} cannot be held to {MAX_BASELINE_S} s")));
        }
    }
    let guard = cx.st.engine.read()?;
    let tiers = cx.st.engine.config().limits.tiers;
    let (cat, store) = (&guard.catalog, &guard.store);
    let from = bl.map_or(hl.0, |b| b.0.min(hl.0));
    let scope =
        MetaScope { selectors, allowed_nodes: cx.me.allow.clone(), window: Some((from, hl.1)), ..MetaScope::default() };
    let visible = scope.visible(cat, store, tiers);
    if visible.len() > MAX_WEIGHTS_METRICS {
        return Err(ToolError::tool(format!(
            "{} metrics match; at most {MAX_WEIGHTS_METRICS} are compared: narrow contexts, nodes or selectors",
            visible.len()
        )));
    }
    // The ranking runs on a view, without the locks, so ingest does not wait.
    let view = strata_engine::meta::weights::view(store, &visible, &req, cx.now)?;
    drop(guard);
    let ranked = run(&view, &visible, &req, cx.now, tiers, Some(&cx.cancel))?;
    let guard = cx.st.engine.read()?;
    let reg = guard.catalog.registry();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut results = Vec::new();
    for w in &ranked.weights {
        let inst = reg.instance_of(w.metric);
        let ctx = reg.context_of(w.metric);
        let node = reg.node_of(w.metric);
        let key = match level {
            "context" => format!("{}|{}", node.id, ctx.id),
            "instance" => format!("{}|{}", node.id, inst.id),
            _ => w.metric.to_string(),
        };
        if seen.insert(key, ()).is_some() {
            continue;
        }
        if results.len() == limit {
            break;
        }
        let h = w.highlight.avg();
        let b = w.baseline.map(|s| s.avg());
        let change = b.filter(|b| *b != 0.0).map(|b| (h - b) / b.abs() * 100.0);
        results.push(json!({
            "rank": results.len() + 1,
            "score": round(w.weight, digits),
            "context": ctx.id, "node": node.id,
            "instance": (level != "context").then(|| inst.id.clone()),
            "dimension": (level == "dimension").then(|| reg.metric(w.metric).dimension.clone()),
            "units": ctx.units,
            "highlight_avg": round(h, digits),
            "baseline_avg": b.map_or(Value::Null, |b| round(b, digits)),
            "change_pct": change.map_or(Value::Null, |c| round(c, digits)),
        }));
    }
    let (rha, rhb) = ranked.highlight;
    let (rba, rbb) = ranked.baseline.unwrap_or((ba, bb));
    Ok(json!({
        "method": ranked.method.name(),
        "highlight": {"after": rfc3339(rha), "before": rfc3339(rhb)},
        "baseline": {"after": rfc3339(rba), "before": rfc3339(rbb)},
        "results": results,
        "scored": ranked.considered,
        "truncated": false,
    }))
}

pub static RANK: Tool = Tool {
    name: "weights.rank",
    title: "Rank changed metrics",
    description: "Which metrics changed most in a highlighted window (e.g. an incident, at most 24 h) compared with a baseline (default: the 4x longer window just before it). Methods: volume (change of the average, default), value (highlight average), ks2 (distribution change), anomaly-rate. Returns the top items with a score (0..1, except for value: the highlight average) and both averages; scans at most 20 000 metrics.",
    needs: Some(Resource::Data),
    class: Class::Heavy,
    input,
    output,
    run: rank,
};
