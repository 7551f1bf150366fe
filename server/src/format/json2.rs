//! The `json2` document (API spec section 4), short keys, key order as
//! Netdata writes it. `result.data` is serialised straight from the result
//! arrays, without building an intermediate tree.

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use strata_engine::query::detailed::Detailed;
use strata_engine::query::request::{ApiVersion, GroupByKey};
use strata_engine::query::result::{Item, QueryResult};
use strata_engine::query::result::{PointStats, PA_EMPTY};

use super::long_keys::{lengthen, lengthen_detailed};
use super::stats::{counts, put, sts};
use super::{round7, row_order, time_value};

/// Agent identity echoed in `agents[]`.
pub struct Agent<'a> {
    pub machine_guid: &'a str,
    pub hostname: &'a str,
    pub now: i64,
}

struct Rows<'a>(&'a QueryResult);

struct Cell {
    value: Option<f64>,
    arp: f64,
    pa: u8,
    /// Contributors, only in `raw` answers.
    count: Option<u32>,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(3 + usize::from(self.count.is_some())))?;
        seq.serialize_element(&self.value)?;
        seq.serialize_element(&round7(self.arp))?;
        seq.serialize_element(&self.pa)?;
        if let Some(c) = self.count {
            seq.serialize_element(&c)?;
        }
        seq.end()
    }
}

struct Row<'a>(&'a QueryResult, usize);

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, i) = (self.0, self.1);
        let opts = &r.request.options;
        let mut seq = s.serialize_seq(Some(r.series.len() + 1))?;
        seq.serialize_element(&time_value(r.window.bucket_end(i), opts))?;
        for sr in &r.series {
            let empty = sr.flags[i] & PA_EMPTY != 0;
            let value = if empty { opts.null2zero.then_some(0.0) } else { Some(round7(sr.values[i])) };
            let count = opts.raw.then(|| sr.counts[i]);
            seq.serialize_element(&Cell { value, arp: sr.arp[i], pa: sr.flags[i], count })?;
        }
        seq.end()
    }
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        // Nothing matched: no rows at all, as Netdata answers.
        let points = if r.series.is_empty() { 0 } else { r.window.points };
        let mut seq = s.serialize_seq(Some(points))?;
        for i in row_order(points, &r.request.options) {
            seq.serialize_element(&Row(r, i))?;
        }
        seq.end()
    }
}

struct ResultOut<'a> {
    labels: Vec<&'a str>,
    point: Value,
    data: Rows<'a>,
    long_keys: bool,
}

impl Serialize for ResultOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("labels", &self.labels)?;
        m.serialize_entry(if self.long_keys { "point_schema" } else { "point" }, &self.point)?;
        m.serialize_entry("data", &self.data)?;
        m.end()
    }
}

#[derive(Serialize)]
struct Doc<'a> {
    api: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Value>,
    summary: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    totals: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detailed: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    functions: Option<Value>,
    result: ResultOut<'a>,
    db: Value,
    view: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Value>,
}

fn item(it: &Item, abs_total: f64, extra: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut m = Map::new();
    extra(&mut m);
    put(&mut m, "ds", counts(&it.dimensions));
    put(&mut m, "sts", sts(&it.stats, abs_total));
    Value::Object(m)
}

fn summary(r: &QueryResult, total_ms: f64) -> Value {
    let s = &r.summary;
    let abs = s.abs_sum;
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(ni, n)| {
            let mut m = Map::new();
            m.insert("mg".into(), json!(n.machine_guid));
            if let Some(nd) = &n.node_id {
                m.insert("nd".into(), json!(nd));
            }
            m.insert("nm".into(), json!(n.name));
            m.insert("ni".into(), json!(ni));
            m.insert("st".into(), json!({"ai": 0, "code": 200, "msg": "", "ms": round7(total_ms)}));
            put(&mut m, "is", counts(&n.instances));
            put(&mut m, "ds", counts(&n.dimensions));
            put(&mut m, "sts", sts(&n.stats, abs));
            Value::Object(m)
        })
        .collect();
    let contexts: Vec<Value> = s
        .contexts
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("id".into(), json!(c.id));
            put(&mut m, "is", counts(&c.instances));
            put(&mut m, "ds", counts(&c.dimensions));
            put(&mut m, "sts", sts(&c.stats, abs));
            Value::Object(m)
        })
        .collect();
    let instances: Vec<Value> = s
        .instances
        .iter()
        .map(|i| {
            item(i, abs, |m| {
                m.insert("id".into(), json!(i.id));
                if let Some(nm) = &i.name {
                    m.insert("nm".into(), json!(nm));
                }
                m.insert("ni".into(), json!(i.node_index.unwrap_or(0)));
                if abs > 0.0 && i.stats.count > 0 {
                    m.insert("con".into(), json!(round7(i.stats.sum.abs() * 100.0 / abs)));
                }
            })
        })
        .collect();
    let dimensions: Vec<Value> = s
        .dimensions
        .iter()
        .map(|d| {
            let mut v = item(d, abs, |m| {
                m.insert("id".into(), json!(d.id));
            });
            v["pri"] = json!(d.priority);
            v
        })
        .collect();
    let labels: Vec<Value> = s
        .labels
        .iter()
        .map(|l| {
            let mut v = item(l, abs, |m| {
                m.insert("id".into(), json!(l.id));
            });
            v["vl"] = Value::Array(
                l.values
                    .iter()
                    .map(|x| {
                        item(x, abs, |m| {
                            m.insert("id".into(), json!(x.id));
                        })
                    })
                    .collect(),
            );
            v
        })
        .collect();
    json!({
        "nodes": nodes,
        "contexts": contexts,
        "instances": instances,
        "dimensions": dimensions,
        "labels": labels,
        "alerts": [],
    })
}

fn totals(r: &QueryResult) -> Value {
    let s = &r.summary;
    let count = |items: &[Item]| {
        let mut c = strata_engine::query::result::Counts::default();
        for it in items {
            c.selected += u64::from(it.dimensions.selected > 0);
            c.excluded += u64::from(it.dimensions.selected == 0 && it.dimensions.excluded > 0);
            c.queried += u64::from(it.dimensions.queried > 0);
        }
        counts(&c).unwrap_or(json!({}))
    };
    let values: Vec<Item> = s.labels.iter().flat_map(|l| l.values.iter().cloned()).collect();
    json!({
        "nodes": count(&s.nodes),
        "contexts": count(&s.contexts),
        "instances": count(&s.instances),
        "dimensions": count(&s.dimensions),
        "label_keys": count(&s.labels),
        "label_key_values": count(&values),
    })
}

/// `sts` arrays over a list of per-series stats objects.
fn sts_arrays(stats: &[PointStats], abs_total: f64) -> Value {
    let mut out = Map::new();
    let col = |f: &dyn Fn(&PointStats) -> f64| -> Value {
        Value::Array(stats.iter().map(|s| if s.count > 0 { json!(round7(f(s))) } else { Value::Null }).collect())
    };
    out.insert("min".into(), col(&|s| s.min));
    out.insert("max".into(), col(&|s| s.max));
    out.insert("avg".into(), col(&|s| s.sum / s.count as f64));
    out.insert("arp".into(), col(&|s| s.anomaly_rate()));
    out.insert("con".into(), col(&|s| if abs_total > 0.0 { s.sum.abs() * 100.0 / abs_total } else { 0.0 }));
    Value::Object(out)
}

/// Stats over the returned view values of each series.
fn view_stats(r: &QueryResult) -> Vec<PointStats> {
    r.series
        .iter()
        .map(|s| {
            let mut st = PointStats::default();
            for i in 0..s.values.len() {
                if s.flags[i] & PA_EMPTY == 0 {
                    let v = s.values[i];
                    st.min = st.min.min(v);
                    st.max = st.max.max(v);
                    st.sum += v;
                    st.count += 1;
                }
            }
            // Anomaly rate over the view: mean of point rates.
            let rates: f64 = s.arp.iter().sum();
            st.anomalous = 0;
            if st.count > 0 {
                st.anomalous = (rates / s.arp.len().max(1) as f64 * st.count as f64 / 100.0).round() as u64;
            }
            st
        })
        .collect()
}

/// The parsed request in the POST-body shape (`debug`), so callers see
/// exactly what strata understood.
fn request_echo(q: &strata_engine::query::request::QueryRequest) -> Value {
    fn pat<T: std::fmt::Display>(p: &Option<T>) -> Value {
        p.as_ref().map(|p| json!(p.to_string())).unwrap_or(Value::Null)
    }
    let sel = |s: &strata_engine::query::request::Selectors| {
        json!({"nodes": pat(&s.nodes), "contexts": pat(&s.contexts), "instances": pat(&s.instances),
               "dimensions": pat(&s.dimensions), "labels": pat(&s.labels), "alerts": pat(&s.alerts)})
    };
    let passes: Vec<Value> = q
        .passes
        .iter()
        .map(|p| {
            json!({"group_by": p.keys.iter().map(|k| k.name()).collect::<Vec<_>>(),
                   "group_by_label": p.labels, "aggregation": p.aggregation.name()})
        })
        .collect();
    json!({
        "format": format!("{:?}", q.format).to_lowercase(),
        "options": q.options.names(),
        "scope": sel(&q.scope),
        "selectors": sel(&q.selectors),
        "window": {"after": q.after, "before": q.before, "points": q.points, "tier": q.tier},
        "aggregations": {
            "time": {"time_group": q.time_group.name, "time_group_options": q.time_group.options, "time_resampling": q.time_resampling},
            "metrics": passes,
        },
        "timeout": q.timeout_ms,
    })
}

/// The `detailed` tree (API spec 4.6), objects keyed by ids.
fn detailed(d: &Detailed) -> Value {
    let mut nodes = Map::new();
    for n in &d.nodes {
        let mut contexts = Map::new();
        for c in &n.contexts {
            let mut instances = Map::new();
            for i in &c.instances {
                let mut dims = Map::new();
                for x in &i.dimensions {
                    let mut m = Map::new();
                    m.insert("nm".into(), json!(x.name));
                    m.insert("qr".into(), json!(u8::from(x.queried)));
                    m.insert("fe".into(), json!(x.first_entry));
                    m.insert("le".into(), json!(x.last_entry));
                    if let Some(a) = &x.grouped_as {
                        m.insert("as".into(), json!(a));
                    }
                    dims.insert(x.id.clone(), Value::Object(m));
                }
                let labels: Map<String, Value> = i.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                instances.insert(
                    i.id.clone(),
                    json!({"nm": i.name, "ue": i.update_every, "labels": labels, "dimensions": dims}),
                );
            }
            contexts.insert(c.id.clone(), json!({"instances": instances, "alerts": {}}));
        }
        nodes.insert(
            n.machine_guid.clone(),
            json!({"nd": n.node_id, "ni": n.node_index, "nm": n.hostname, "contexts": contexts}),
        );
    }
    json!({ "nodes": nodes })
}

/// Writes the whole json2 document.
pub fn write(r: &QueryResult, agent: &Agent<'_>, total_ms: f64) -> Result<Vec<u8>, serde_json::Error> {
    let opts = &r.request.options;
    let api = match r.request.api {
        ApiVersion::V1 => 1,
        ApiVersion::V2 => 2,
        ApiVersion::V3 => 3,
    };
    let ids: Vec<&str> = r.series.iter().map(|s| s.key.id.as_str()).collect();
    let mut labels = vec!["time"];
    labels.extend(ids.iter().copied());
    let units: Vec<&str> = r.series.iter().map(|s| s.key.units.as_str()).collect();
    let db_stats: Vec<PointStats> = r.series.iter().map(|s| s.db_stats).collect();
    let db_abs: f64 = db_stats.iter().map(|s| s.sum.abs()).sum();
    let vstats = view_stats(r);
    let view_abs: f64 = vstats.iter().map(|s| s.sum.abs()).sum();
    let (vmin, vmax) = r.view_min_max();
    let per_tier: Vec<Value> = r
        .tiers
        .iter()
        .map(|t| {
            json!({
                "tier": t.tier,
                "queries": r.tier_use.queries[t.tier],
                "points": r.tier_use.points[t.tier],
                "update_every": t.update_every,
                "first_entry": t.first_entry,
                "last_entry": t.last_entry,
            })
        })
        .collect();
    let db_units = if r.db_units.len() == 1 { json!(r.db_units[0]) } else { json!(r.db_units) };
    let grouped_by: Vec<String> = r
        .grouped_by
        .iter()
        .flat_map(|k| match k {
            GroupByKey::Label => r.group_by_labels.iter().map(|l| format!("label:{l}")).collect::<Vec<_>>(),
            k => vec![k.name().to_string()],
        })
        .collect();
    let mut dims = Map::new();
    dims.insert("grouped_by".into(), json!(grouped_by));
    dims.insert("ids".into(), json!(ids));
    dims.insert("names".into(), json!(r.series.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>()));
    dims.insert("units".into(), json!(units));
    dims.insert("priorities".into(), json!(r.series.iter().map(|s| s.key.priority).collect::<Vec<_>>()));
    dims.insert("aggregated".into(), json!(r.series.iter().map(|s| s.aggregated).collect::<Vec<_>>()));
    dims.insert("sts".into(), sts_arrays(&vstats, view_abs));
    if opts.group_by_labels {
        let mut by_key = Map::new();
        for l in &r.group_by_labels {
            let vals: Vec<Value> = r
                .series
                .iter()
                .map(|s| s.key.labels.iter().find(|(k, _)| k == l).map(|(_, v)| json!([v])).unwrap_or(Value::Null))
                .collect();
            by_key.insert(l.clone(), Value::Array(vals));
        }
        dims.insert("labels".into(), Value::Object(by_key));
    }
    let (after, before) = if r.window.points > 0 {
        (r.window.bucket_end(0), r.window.bucket_end(r.window.points - 1))
    } else {
        (r.window.after, r.window.before)
    };
    let mut view = Map::new();
    view.insert("title".into(), json!(r.title));
    view.insert("update_every".into(), json!(r.window.view_every));
    view.insert("after".into(), json!(after));
    view.insert("before".into(), json!(before));
    if opts.debug {
        view.insert("time_group".into(), json!(r.request.time_group.name));
        view.insert("tier".into(), json!(r.chosen_tier));
    }
    if let Some(f) = &r.folded {
        view.insert("cardinality".into(), json!({"folded": f.folded, "cut": round7(f.cut)}));
    }
    if let Some(a) = &r.approximation {
        view.insert("approximate".into(), super::approximate_json(a));
    }
    view.insert("units".into(), json!(r.units));
    view.insert("chart_type".into(), json!(r.chart_type));
    view.insert("dimensions".into(), Value::Object(dims));
    view.insert("min".into(), json!(round7(vmin)));
    view.insert("max".into(), json!(round7(vmax)));
    let minimal = opts.minimal_stats;
    let mut doc = Doc {
        api,
        id: opts.debug.then(|| format!("strata-query-{}", r.generation)),
        request: opts.debug.then(|| request_echo(&r.request)),
        versions: (!minimal).then(|| {
            json!({
                "routing_hard_hash": 1,
                "nodes_hard_hash": r.generation,
                "contexts_hard_hash": r.generation,
                "contexts_soft_hash": r.generation,
                "alerts_hard_hash": 1,
                "alerts_soft_hash": 1,
            })
        }),
        summary: summary(r, total_ms),
        totals: (!minimal).then(|| totals(r)),
        detailed: r.detailed.as_ref().map(detailed),
        functions: (!minimal).then(|| json!([])),
        result: ResultOut {
            labels,
            point: if opts.raw { json!({"value": 0, "arp": 1, "pa": 2, "count": 3}) } else { json!({"value": 0, "arp": 1, "pa": 2}) },
            data: Rows(r),
            long_keys: opts.long_json_keys,
        },
        db: json!({
            "tiers": r.tiers.len(),
            "update_every": r.update_every,
            "first_entry": r.first_entry,
            "last_entry": r.last_entry,
            "units": db_units,
            "dimensions": {"ids": ids, "units": units, "sts": sts_arrays(&db_stats, db_abs)},
            "per_tier": per_tier,
        }),
        view: Value::Object(view),
        agents: (!minimal).then(|| {
            json!([{
                "mg": agent.machine_guid,
                "nm": agent.hostname,
                "now": agent.now,
                "ai": 0,
                "timings": {"prep_ms": round7(r.prep_ms), "query_ms": round7(r.query_ms), "output_ms": 0, "total_ms": round7(total_ms), "cloud_ms": round7(total_ms)},
            }])
        }),
        timings: (!minimal).then(|| json!({"routing_ms": 0, "node_max_ms": 0, "total_ms": round7(total_ms)})),
    };
    if opts.long_json_keys {
        let Doc { summary, totals, result, db, view, agents, .. } = &mut doc;
        for v in [summary, db, view, &mut result.point].into_iter().chain(totals.as_mut()).chain(agents.as_mut()) {
            lengthen(v, "");
        }
        if let Some(d) = doc.detailed.as_mut() {
            lengthen_detailed(d);
        }
    }
    serde_json::to_vec(&doc)
}
