//! `/api/v1/weights` in Netdata's v1 layout (its `contexts` format):
//! the windows, then `contexts: {"<context>": {charts: {"<chart>":
//! {dimensions: {"<dimension>": weight}, weight}}, weight}}`, where a
//! chart's and a context's weight is the average of their dimensions'.
//! `/api/v1/metric_correlations` takes the same ranking by chart ([`charts`]).
//!
//! v1 describes one host. When the ranking spans several nodes, chart keys
//! become `<chart>@<hostname>` (as `allmetrics` JSON keys do), so the same
//! chart on two nodes does not collide. Contexts, charts and dimensions are
//! listed heaviest first.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use strata_engine::catalog::Catalog;
use strata_engine::meta::weights::Weights;
use strata_engine::model::Registry;

use super::chart_key::ChartKeys;
use super::round7;

/// Weight sum and count of a group's dimensions, and its members in order.
#[derive(Default)]
struct Group<T> {
    sum: f64,
    n: u32,
    members: Vec<T>,
}

impl<T> Group<T> {
    fn add(&mut self, weight: f64) {
        self.sum += weight;
        self.n += 1;
    }

    fn weight(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / f64::from(self.n)
        }
    }
}

/// A chart: its key and its (dimension, weight) pairs, heaviest first.
type Chart = (String, Group<(String, f64)>);

/// Charts of one context, keyed for lookup by position.
type Context = (Group<Chart>, BTreeMap<String, usize>);

/// The whole v1 answer; `options` as the request gave them, `ms` the time
/// the query took.
pub fn contexts(cat: &Catalog, w: &Weights, options: &[String], ms: f64) -> Value {
    let reg = cat.registry();
    let keys = chart_keys(reg, w);
    let mut order: Vec<String> = Vec::new();
    let mut by_context: BTreeMap<String, Context> = BTreeMap::new();
    // `w.weights` is heaviest first: each group's first member is its heaviest.
    for x in &w.weights {
        let metric = reg.metric(x.metric);
        let inst = &reg.instances()[metric.instance as usize];
        let context = &reg.contexts()[inst.context as usize].id;
        let chart = keys.key(inst);
        let (ctx, charts) = by_context.entry(context.clone()).or_insert_with(|| {
            order.push(context.clone());
            Default::default()
        });
        ctx.add(x.weight);
        let at = *charts.entry(chart.clone()).or_insert_with(|| {
            ctx.members.push((chart, Group::default()));
            ctx.members.len() - 1
        });
        let group = &mut ctx.members[at].1;
        group.add(x.weight);
        group.members.push((metric.dimension.clone(), x.weight));
    }
    let mut listed: Vec<(String, Group<Chart>)> =
        order.into_iter().filter_map(|c| by_context.remove(&c).map(|(g, _)| (c, g))).collect();
    listed.sort_by(|a, b| b.1.weight().total_cmp(&a.1.weight()));
    let mut out = Map::new();
    for (id, mut ctx) in listed {
        ctx.members.sort_by(|a, b| b.1.weight().total_cmp(&a.1.weight()));
        let charts: Map<String, Value> = ctx
            .members
            .iter()
            .map(|(chart, g)| {
                let dims: Map<String, Value> = g.members.iter().map(|(d, v)| (d.clone(), json!(round7(*v)))).collect();
                (chart.clone(), json!({"dimensions": dims, "weight": round7(g.weight())}))
            })
            .collect();
        out.insert(id, json!({"charts": charts, "weight": round7(ctx.weight())}));
    }
    framed(w, options, ms, "contexts", Value::Object(out))
}

/// `/api/v1/metric_correlations` (Netdata's `charts` format): the windows,
/// then `correlated_charts: {"<chart>": {context, dimensions: {"<dimension>":
/// weight}}}`. Charts are listed by their heaviest dimension, heaviest
/// first, and each chart once: Netdata writes a chart's object again each
/// time its walk comes back to the chart, which repeats the key, and a
/// JSON reader keeps only the last of those.
pub fn charts(cat: &Catalog, w: &Weights, options: &[String], ms: f64) -> Value {
    let reg = cat.registry();
    let keys = chart_keys(reg, w);
    let mut out = Map::new();
    // `w.weights` is heaviest first.
    for x in &w.weights {
        let metric = reg.metric(x.metric);
        let inst = &reg.instances()[metric.instance as usize];
        let chart = out
            .entry(keys.key(inst))
            .or_insert_with(|| json!({"context": reg.contexts()[inst.context as usize].id, "dimensions": {}}));
        chart["dimensions"][&metric.dimension] = json!(round7(x.weight));
    }
    framed(w, options, ms, "correlated_charts", Value::Object(out))
}

/// Keys for the charts of the ranked metrics' nodes.
fn chart_keys<'a>(reg: &'a Registry, w: &Weights) -> ChartKeys<'a> {
    ChartKeys::new(reg, w.weights.iter().map(|x| reg.instance_of(x.metric).node))
}

/// The v1 document around the ranking `body` (under `key`): the windows and
/// what was asked before it, the counts after it.
fn framed(w: &Weights, options: &[String], ms: f64, key: &str, body: Value) -> Value {
    let (after, before) = w.highlight;
    let mut doc = json!({"after": after, "before": before, "duration": before - after, "points": w.points});
    if let Some((a, b)) = w.baseline {
        doc["baseline_after"] = json!(a);
        doc["baseline_before"] = json!(b);
        doc["baseline_duration"] = json!(b - a);
    }
    doc["statistics"] = json!({"query_time_ms": round7(ms)});
    // The weights are taken over averages of the stored points.
    doc["group"] = json!("average");
    doc["method"] = json!(w.method.name());
    doc["options"] = json!(options);
    doc[key] = body;
    doc["correlated_dimensions"] = json!(w.weights.len());
    doc["total_dimensions_count"] = json!(w.considered);
    doc
}

#[cfg(test)]
mod tests {
    use strata_engine::meta::weights::{Method, Weight, WindowStats};
    use strata_engine::model::SeriesMeta;

    use super::*;

    fn ranking(cat: &mut Catalog, rows: &[(&str, &str, &str, &str, f64)]) -> Weights {
        let weights = rows
            .iter()
            .map(|&(node, context, instance, dimension, weight)| {
                let meta = SeriesMeta { node, context, instance, dimension, update_every: 1, ..Default::default() };
                Weight { metric: cat.register(&meta), weight, highlight: WindowStats::default(), baseline: None }
            })
            .collect();
        Weights {
            method: Method::Volume,
            highlight: (1000, 1599),
            baseline: Some((0, 999)),
            points: 0,
            weights,
            considered: 9,
        }
    }

    #[test]
    fn metric_correlations_list_each_chart_once_by_its_heaviest_dimension() {
        let mut cat = Catalog::default();
        let w = ranking(
            &mut cat,
            &[
                ("n1", "disk.io", "disk.sda", "reads", 0.9),
                ("n1", "system.cpu", "system.cpu", "user", 0.7),
                ("n1", "disk.io", "disk.sdb", "reads", 0.5),
                ("n1", "disk.io", "disk.sda", "writes", 0.1),
            ],
        );
        let v = charts(&cat, &w, &[], 1.5);
        let listed = &v["correlated_charts"];
        let order: Vec<&String> = listed.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(order, ["disk.sda", "system.cpu", "disk.sdb"], "{v}");
        assert_eq!(listed["disk.sda"], json!({"context": "disk.io", "dimensions": {"reads": 0.9, "writes": 0.1}}));
        assert_eq!(listed["system.cpu"], json!({"context": "system.cpu", "dimensions": {"user": 0.7}}));
        assert!(v.get("contexts").is_none(), "{v}");
        assert_eq!((v["correlated_dimensions"].clone(), v["total_dimensions_count"].clone()), (json!(4), json!(9)));
        assert_eq!((v["baseline_after"].clone(), v["method"].clone()), (json!(0), json!("volume")));
        // Two nodes: a chart names its host, so the same chart id does not collide.
        let mut cat = Catalog::default();
        let w = ranking(&mut cat, &[("n1", "c", "c.x", "a", 0.4), ("n2", "c", "c.x", "a", 0.3)]);
        let v = charts(&cat, &w, &[], 0.0);
        assert_eq!(v["correlated_charts"].as_object().map(|m| m.len()), Some(2), "{v}");
    }

    #[test]
    fn groups_by_context_and_chart_heaviest_first() {
        let mut cat = Catalog::default();
        let w = ranking(
            &mut cat,
            &[
                ("n1", "disk.io", "disk.sda", "reads", 0.9),
                ("n1", "disk.io", "disk.sdb", "reads", 0.8),
                ("n1", "system.cpu", "system.cpu", "user", 0.7),
                ("n1", "disk.io", "disk.sda", "writes", 0.1),
            ],
        );
        let v = contexts(&cat, &w, &["nonzero".to_string()], 1.5);
        assert_eq!(v["contexts"]["system.cpu"]["weight"], json!(0.7));
        let disk = &v["contexts"]["disk.io"];
        assert_eq!(disk["weight"], json!(0.6), "the average of its three dimensions");
        assert_eq!(disk["charts"]["disk.sda"], json!({"dimensions": {"reads": 0.9, "writes": 0.1}, "weight": 0.5}));
        let order = |o: &Value| o.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(order(&v["contexts"]), ["system.cpu", "disk.io"], "heaviest context first");
        assert_eq!(order(&disk["charts"]), ["disk.sdb", "disk.sda"], "heaviest chart first");
        assert_eq!((v["duration"].clone(), v["baseline_duration"].clone()), (json!(599), json!(999)));
        assert_eq!((v["correlated_dimensions"].clone(), v["total_dimensions_count"].clone()), (json!(4), json!(9)));
        assert_eq!((v["method"].clone(), v["options"].clone()), (json!("volume"), json!(["nonzero"])));
    }

    #[test]
    fn charts_of_several_nodes_name_their_host() {
        let mut cat = Catalog::default();
        let w = ranking(
            &mut cat,
            &[("n1", "disk.io", "disk.sda", "reads", 0.9), ("n2", "disk.io", "disk.sda", "reads", 0.3)],
        );
        let v = contexts(&cat, &w, &[], 0.0);
        let charts = &v["contexts"]["disk.io"]["charts"];
        assert_eq!(charts["disk.sda@n1"]["dimensions"]["reads"], json!(0.9), "{v}");
        assert_eq!(charts["disk.sda@n2"]["dimensions"]["reads"], json!(0.3), "{v}");
    }

    /// Nodes that share a hostname are told apart by id, never merged.
    #[test]
    fn charts_of_nodes_sharing_a_hostname_name_their_id() {
        let mut cat = Catalog::default();
        let w = ranking(
            &mut cat,
            &[
                ("n1", "disk.io", "disk.sda", "reads", 0.9),
                ("n2", "disk.io", "disk.sda", "reads", 0.3),
                ("n3", "disk.io", "disk.sda", "reads", 0.2),
            ],
        );
        for (node, host) in ["n1", "n2", "n3"].into_iter().zip(["box", "box", "other"]) {
            cat.upsert_node(node, Some(host), None, None);
        }
        let v = contexts(&cat, &w, &[], 0.0);
        let charts = &v["contexts"]["disk.io"]["charts"];
        let keys: Vec<&String> = charts.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["disk.sda@n1", "disk.sda@n2", "disk.sda@other"], "{v}");
        assert_eq!(charts["disk.sda@n2"]["dimensions"]["reads"], json!(0.3), "{v}");
    }
}
