//! JSON of the metadata endpoints, shaped as Netdata's agent answers them
//! (API spec section 5): the node items (`mg`, `nd`, `nm`, `ni`, ...), the
//! `contexts` object, `/q` hits, the `weights` multinode format, the v2
//! `info` agent, and the shared envelope pieces (`versions`, `agents`,
//! `timings`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use strata_engine::catalog::Catalog;
use strata_engine::meta::contexts::ContextInfo;
use strata_engine::meta::inventory::{Count, Inventory};
use strata_engine::meta::nodes::NodeInfo;
use strata_engine::meta::search::Found;
use strata_engine::meta::weights::{Weights, WindowStats};
use strata_engine::model::NodeIdx;

use super::round7;
use crate::state::AgentInfo;

/// Cache-invalidation counters: they move whenever metadata changes.
pub fn versions(generation: u64) -> Value {
    json!({
        "routing_hard_hash": 1,
        "nodes_hard_hash": generation,
        "contexts_hard_hash": generation,
        "contexts_soft_hash": generation,
        "alerts_hard_hash": 1,
        "alerts_soft_hash": 1,
    })
}

pub fn agents(agent: &AgentInfo, now: i64, total_ms: f64) -> Value {
    json!([{
        "mg": agent.machine_guid,
        "nm": agent.hostname,
        "now": now,
        "ai": 0,
        "application": {"package": {"version": agent.version}},
        "timings": {"total_ms": round7(total_ms)},
    }])
}

/// `1s`, `1m`, `1h`, `1d` (or plain seconds when no unit divides them).
fn granularity(secs: i64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The one `agents[]` item of `/api/v2/info`: who the server is and what
/// it holds of the visible metrics. Netdata's fields that strata has no
/// fact for (capabilities, disk use, sample counts) are left out.
/// `resolutions[t]` is tier `t`'s resolution for once-a-second metrics.
/// `bearer_protection`: whether reading needs a token (not under
/// `--anonymous-read`).
pub fn agent_info(
    agent: &AgentInfo,
    now: i64,
    total_ms: f64,
    inv: &Inventory,
    resolutions: &[i64],
    bearer_protection: bool,
) -> Value {
    let count = |c: Count| json!({"collected": c.collected, "available": c.available});
    let db_size: Vec<Value> = inv
        .tiers
        .iter()
        .enumerate()
        .map(|(tier, h)| {
            let mut t = json!({
                "tier": tier,
                "granularity": granularity(resolutions.get(tier).copied().unwrap_or(0)),
                "metrics": h.metrics,
            });
            if let Some((from, to)) = h.range {
                t["from"] = json!(from);
                t["to"] = json!(to);
                t["retention"] = json!(to - from);
            }
            t
        })
        .collect();
    json!({
        "mg": agent.machine_guid,
        "nm": agent.hostname,
        "now": now,
        "ai": 0,
        "application": {"package": {"version": agent.version}},
        // strata never connects to Netdata Cloud.
        "cloud": {"status": "disabled"},
        // Every node sends to strata; strata sends to no parent.
        "nodes": {
            "total": inv.nodes.available,
            "receiving": inv.nodes.collected,
            "sending": 0,
            "archived": inv.nodes.available - inv.nodes.collected,
        },
        "metrics": count(inv.metrics),
        "instances": count(inv.instances),
        "contexts": {
            "collected": inv.contexts.collected,
            "available": inv.contexts.available,
            "unique": inv.unique_contexts,
        },
        "api": {"version": 2, "bearer_protection": bearer_protection},
        "db_size": db_size,
        "timings": {"total_ms": round7(total_ms)},
    })
}

pub fn timings(total_ms: f64) -> Value {
    json!({"routing_ms": 0, "node_max_ms": 0, "total_ms": round7(total_ms)})
}

/// Node array positions (`ni`) by node index.
pub type NodePositions = BTreeMap<NodeIdx, usize>;

pub fn positions(nodes: &[NodeInfo]) -> NodePositions {
    nodes.iter().enumerate().map(|(i, n)| (n.index, i)).collect()
}

/// `{mg, nd, nm, ni}`: how every listing names a node.
pub fn node_brief(n: &NodeInfo, ni: usize) -> Value {
    json!({"mg": n.machine_guid, "nd": n.id, "nm": n.hostname, "ni": ni})
}

/// The full node item of `/api/v2/nodes` and the Cloud room `nodes`.
pub fn node_full(n: &NodeInfo, ni: usize, now: i64, version: &str) -> Value {
    let state = if n.span.live(now) { "reachable" } else { "stale" };
    json!({
        "mg": n.machine_guid,
        "nd": n.id,
        "nm": n.hostname,
        "ni": ni,
        "v": version,
        "labels": n.labels,
        "hw": {},
        "os": {},
        "state": state,
        "isLive": state == "reachable",
        "health": {"status": if state == "reachable" { "online" } else { "offline" }, "alerts": {}},
        "capabilities": [],
        "retention": {"first_entry": n.span.first, "last_entry": n.span.last},
        "counts": {"contexts": n.contexts, "instances": n.instances, "metrics": n.metrics},
    })
}

/// What `/api/v2/contexts` adds to each context, beyond its defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextFields {
    pub titles: bool,
    pub dimensions: bool,
    pub labels: bool,
    pub instances: bool,
}

/// The `contexts` object: context id -> facts. `limit` caps it (0 = all),
/// adding Netdata's `__truncated__` entry.
pub fn contexts_object(list: &[ContextInfo], f: ContextFields, now: i64, limit: usize) -> Value {
    let mut out = Map::new();
    let shown = if limit == 0 { list.len() } else { limit.min(list.len()) };
    for c in &list[..shown] {
        let mut m = Map::new();
        m.insert("family".into(), json!(c.family));
        m.insert("units".into(), json!(c.units));
        m.insert("priority".into(), json!(c.priority));
        m.insert("first_entry".into(), json!(c.span.first));
        // Still collected: Netdata reports "now" as the last entry.
        let live = c.span.live(now);
        m.insert("last_entry".into(), json!(if live { Some(now) } else { c.span.last }));
        m.insert("live".into(), json!(live));
        m.insert("chart_type".into(), json!(c.chart_type));
        if f.titles {
            m.insert("title".into(), json!(c.title));
        }
        if f.dimensions {
            m.insert("dimensions".into(), json!(c.dimensions));
        }
        if f.labels {
            m.insert("labels".into(), json!(c.labels));
        }
        if f.instances {
            m.insert("instances".into(), json!(c.instances));
        }
        out.insert(c.id.clone(), Value::Object(m));
    }
    if shown < list.len() {
        out.insert(
            "__truncated__".into(),
            json!({"total_contexts": list.len(), "returned": shown, "remaining": list.len() - shown}),
        );
    }
    Value::Object(out)
}

/// The `/q` hits object.
pub fn search_object(found: &Found, pos: &NodePositions) -> Value {
    let mut out = Map::new();
    for h in &found.hits {
        let nodes: Vec<usize> = h.nodes.iter().filter_map(|n| pos.get(n).copied()).collect();
        out.insert(
            h.context.clone(),
            json!({
                "title": h.title,
                "family": h.family,
                "units": h.units,
                "matched": h.matched,
                "instances": h.instances,
                "dimensions": h.dimensions,
                "labels": h.labels,
                "nodes": nodes,
            }),
        );
    }
    Value::Object(out)
}

/// Weight sum and count per (ni, ci, ii); unused parts are `usize::MAX`.
type Rollup = BTreeMap<(usize, usize, usize), (f64, u32)>;

fn stats(s: &WindowStats) -> Value {
    let (min, max) = if s.count > 0 { (round7(s.min), round7(s.max)) } else { (0.0, 0.0) };
    json!([min, round7(s.avg()), max, round7(s.sum), s.count, s.anomalous])
}

/// The `weights` result in Netdata's multinode layout: dictionaries of
/// nodes, contexts, instances and dimensions, and rows
/// `[row_type, ni, ci, ii, di, weight, highlight, baseline?]` — dimension
/// rows (type 0, heaviest first), then per instance (1), context (2) and
/// node (3) the average weight of their dimensions.
pub fn weights_result(cat: &Catalog, w: &Weights) -> (Value, Value) {
    let reg = cat.registry();
    let mut nodes: Vec<Value> = Vec::new();
    let mut node_pos: BTreeMap<u32, usize> = BTreeMap::new();
    let mut contexts: Vec<Value> = Vec::new();
    let mut ctx_pos: BTreeMap<u32, usize> = BTreeMap::new();
    let mut instances: Vec<Value> = Vec::new();
    let mut inst_pos: BTreeMap<u32, usize> = BTreeMap::new();
    let mut dims: Vec<Value> = Vec::new();
    let mut dim_pos: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows: Vec<Value> = Vec::new();
    // (sum, count) of weights per instance, context and node.
    let mut up: [Rollup; 3] = Default::default();
    for x in &w.weights {
        let metric = reg.metric(x.metric);
        let inst = &reg.instances()[metric.instance as usize];
        let node = &reg.nodes()[inst.node as usize];
        let ctx = &reg.contexts()[inst.context as usize];
        let ni = *node_pos.entry(inst.node).or_insert_with(|| {
            nodes.push(json!({"mg": node.machine_guid, "nd": node.id, "nm": node.hostname, "ni": nodes.len(),
                              "st": {"ai": 0, "code": 200, "msg": ""}}));
            nodes.len() - 1
        });
        let ci = *ctx_pos.entry(inst.context).or_insert_with(|| {
            contexts.push(json!({"id": ctx.id, "units": ctx.units, "ci": contexts.len()}));
            contexts.len() - 1
        });
        let ii = *inst_pos.entry(metric.instance).or_insert_with(|| {
            instances.push(json!({"id": inst.id, "nm": inst.name, "ii": instances.len()}));
            instances.len() - 1
        });
        let di = *dim_pos.entry(metric.dimension.as_str()).or_insert_with(|| {
            dims.push(json!({"id": metric.dimension, "nm": metric.dimension, "di": dims.len()}));
            dims.len() - 1
        });
        let mut row = vec![json!(0), json!(ni), json!(ci), json!(ii), json!(di), json!(round7(x.weight))];
        row.push(stats(&x.highlight));
        if let Some(b) = &x.baseline {
            row.push(stats(b));
        }
        rows.push(Value::Array(row));
        for (level, key) in [(ni, ci, ii), (ni, ci, usize::MAX), (ni, usize::MAX, usize::MAX)].into_iter().enumerate() {
            let e = up[level].entry(key).or_insert((0.0, 0));
            e.0 += x.weight;
            e.1 += 1;
        }
    }
    for (level, items) in up.iter().enumerate() {
        let mut level_rows: Vec<(f64, Value)> = items
            .iter()
            .map(|(&(ni, ci, ii), &(sum, n))| {
                let avg = sum / f64::from(n);
                let opt = |v: usize| if v == usize::MAX { Value::Null } else { json!(v) };
                (avg, json!([level + 1, ni, opt(ci), opt(ii), null, round7(avg)]))
            })
            .collect();
        level_rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        rows.extend(level_rows.into_iter().map(|(_, r)| r));
    }
    let dictionaries = json!({"nodes": nodes, "contexts": contexts, "instances": instances, "dimensions": dims});
    (Value::Array(rows), dictionaries)
}
