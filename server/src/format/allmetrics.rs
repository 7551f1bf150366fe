//! `/api/v1/allmetrics` bodies: every visible metric's latest value as
//! shell variables, JSON, or Prometheus text exposition format.
//!
//! Names follow Netdata's: shell `NETDATA_<CHART>_<DIM>="<value>"` upper
//! case with other characters as `_`; Prometheus
//! `<prefix>_<context>_<units>_average{chart, family, dimension, ...labels}`.
//! strata holds several nodes: Prometheus samples carry an `instance` label
//! (the hostname, or the node id where listed nodes share it); in JSON and shell, when more than one node is listed,
//! chart keys get `@<hostname>` (JSON) or a `<HOST>_` prefix (shell; the
//! node id where listed nodes share a hostname: [`super::chart_key`]), so
//! nothing collides. `nodes=` narrows to one node for Netdata's exact names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use strata_engine::catalog::Catalog;
use strata_engine::meta::latest::Latest;
use strata_engine::meta::params::{AllMetricsFormat, AllMetricsRequest};

use super::round7;

/// `[^A-Za-z0-9_]` -> `_`.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters
/// as `_`, and `_` before a leading digit (or for an empty name).
fn label_name(k: &str) -> String {
    let k = sanitize(k);
    match k.chars().next() {
        Some(c) if !c.is_ascii_digit() => k,
        _ => format!("_{k}"),
    }
}

/// Units as a metric name part, as Netdata writes them (`KiB/s` -> `KiB_persec`).
fn units_part(u: &str) -> String {
    let u = u.replace("/s", "_persec").replace('%', "percent");
    sanitize(&u)
}

/// A Prometheus label value, escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Shell variable names, each written once: charts (and a chart's
/// dimensions) whose names sanitize alike (`web-1` and `web.1`) would set
/// one variable twice, the second hiding the first, and add both to one
/// total. Later ones get `_2`, `_3`, ... in the order they come (charts in
/// the order of their ids).
#[derive(Default)]
struct ShellNames {
    /// Every variable name given, and each chart's `VISIBLETOTAL` (so a
    /// chart name is taken once its total is).
    taken: HashSet<String>,
    /// The chart name of each (node, instance id).
    charts: HashMap<(u32, String), String>,
}

impl ShellNames {
    /// `base`, or `base_N` with the smallest N >= 2 that is free under `free`.
    fn first_free(base: &str, free: impl Fn(&str) -> bool) -> String {
        if free(base) {
            return base.to_string();
        }
        (2..).map(|n| format!("{base}_{n}")).find(|c| free(c)).unwrap_or_default()
    }

    /// The chart name of instance `id` (of its node), `base()` the first
    /// time unless another chart has it.
    fn chart(&mut self, (node, id): (u32, &str), base: impl FnOnce() -> String) -> String {
        if let Some(name) = self.charts.get(&(node, id.to_string())) {
            return name.clone();
        }
        let base = base();
        let total = |c: &str| format!("NETDATA_{c}_VISIBLETOTAL");
        let name = Self::first_free(&base, |c| !self.taken.contains(&total(c)));
        self.taken.insert(total(&name));
        self.charts.insert((node, id.to_string()), name.clone());
        name
    }

    /// The variable of `chart_dim` (`<CHART>_<DIM>`), with its prefix.
    fn variable(&mut self, chart_dim: &str) -> String {
        let var = Self::first_free(&format!("NETDATA_{chart_dim}"), |c| !self.taken.contains(c));
        self.taken.insert(var.clone());
        var
    }
}

/// Renders `latest` (visible metrics' newest values); returns body and content type.
pub fn render(cat: &Catalog, latest: &[Latest], r: &AllMetricsRequest) -> (String, &'static str) {
    let reg = cat.registry();
    let keys = super::chart_key::ChartKeys::new(reg, latest.iter().map(|l| reg.instance_of(l.metric).node));
    let chart_key = |l: &Latest| keys.key(reg.instance_of(l.metric));
    match r.format {
        AllMetricsFormat::Json => {
            let mut charts: BTreeMap<String, Value> = BTreeMap::new();
            for l in latest {
                let inst = reg.instance_of(l.metric);
                let ctx = reg.context_of(l.metric);
                let dim = &reg.metric(l.metric).dimension;
                let c = charts.entry(chart_key(l)).or_insert_with(|| {
                    json!({"name": inst.name, "family": ctx.family, "context": ctx.id, "units": ctx.units,
                           "hostname": reg.nodes()[inst.node as usize].hostname, "last_updated": l.t, "dimensions": {}})
                });
                if c["last_updated"].as_i64().is_some_and(|t| t < l.t) {
                    c["last_updated"] = json!(l.t);
                }
                c["dimensions"][dim] = json!({"name": dim, "value": round7(l.value)});
            }
            let obj: Map<String, Value> = charts.into_iter().collect();
            (Value::Object(obj).to_string(), "application/json")
        }
        AllMetricsFormat::Shell => {
            let mut out = String::new();
            let mut names = ShellNames::default();
            let chart_name = |inst: &strata_engine::model::Instance| {
                let host = keys.node_part(inst).map(|p| format!("{}_", sanitize(p))).unwrap_or_default();
                format!("{host}{}", sanitize(&inst.id)).to_uppercase()
            };
            // Charts named in the order of their ids, not of the values:
            // the same charts get the same suffixes on every scrape.
            let mut charts: Vec<_> = latest.iter().map(|l| reg.instance_of(l.metric)).collect();
            charts.sort_by(|a, b| (&a.id, a.node).cmp(&(&b.id, b.node)));
            for inst in charts {
                names.chart((inst.node, &inst.id), || chart_name(inst));
            }
            let mut totals: BTreeMap<String, (f64, String)> = BTreeMap::new();
            for l in latest {
                let inst = reg.instance_of(l.metric);
                let ctx = reg.context_of(l.metric);
                let chart = names.chart((inst.node, &inst.id), || chart_name(inst));
                let var =
                    names.variable(&format!("{chart}_{}", sanitize(&reg.metric(l.metric).dimension).to_uppercase()));
                let _ = writeln!(out, "{var}=\"{:.0}\"      # {}", l.value, ctx.units);
                let t = totals.entry(chart).or_insert((0.0, ctx.units.clone()));
                t.0 += l.value;
            }
            for (chart, (sum, units)) in totals {
                let _ = writeln!(out, "NETDATA_{chart}_VISIBLETOTAL=\"{sum:.0}\"      # {units}");
            }
            (out, "text/plain; charset=utf-8")
        }
        AllMetricsFormat::Prometheus | AllMetricsFormat::PrometheusAllHosts => {
            // Samples of one metric name must be consecutive, after its TYPE line.
            let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for l in latest {
                let inst = reg.instance_of(l.metric);
                let ctx = reg.context_of(l.metric);
                let node = &reg.nodes()[inst.node as usize];
                let mut name = format!("{}_{}", r.prefix, sanitize(&ctx.id));
                if !r.hide_units && !ctx.units.is_empty() {
                    name.push('_');
                    name.push_str(&units_part(&ctx.units));
                }
                name.push_str("_average");
                // `instance` tells nodes apart: the hostname, or the node
                // id where listed nodes share that hostname (two samples
                // with one name and one label set would be one series).
                let instance = keys.node_part(inst).filter(|&p| p != node.hostname).unwrap_or(&node.hostname);
                let mut labels = format!(
                    "chart=\"{}\",family=\"{}\",dimension=\"{}\",instance=\"{}\"",
                    label_value(&inst.id),
                    label_value(&ctx.family),
                    label_value(&reg.metric(l.metric).dimension),
                    label_value(instance)
                );
                let mut taken: Vec<String> = ["chart", "family", "dimension", "instance"].map(String::from).into();
                for (k, v) in &inst.labels {
                    let k = label_name(k);
                    // Reserved names, and a second label that sanitizes to
                    // the same name (`a-b` and `a_b`), are left out: a
                    // label name twice makes the whole scrape invalid.
                    if k.starts_with("__") || taken.contains(&k) {
                        continue;
                    }
                    let _ = write!(labels, ",{k}=\"{}\"", label_value(v));
                    taken.push(k);
                }
                let value = round7(l.value);
                let line = if r.timestamps {
                    format!("{name}{{{labels}}} {value} {}", l.t * 1000)
                } else {
                    format!("{name}{{{labels}}} {value}")
                };
                by_name.entry(name).or_default().push(line);
            }
            let mut out = String::new();
            for (name, lines) in by_name {
                let _ = writeln!(out, "# TYPE {name} gauge");
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
            (out, "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(units_part("KiB/s"), "KiB_persec");
        assert_eq!(units_part("%"), "percent");
        assert_eq!(sanitize("disk_space./mnt0"), "disk_space__mnt0");
        assert_eq!(label_value("a\"b\\c"), "a\\\"b\\\\c");
    }

    /// Charts and dimensions that sanitize alike keep their own variables;
    /// a chart keeps its name for every dimension, and a dimension cannot
    /// take a chart's total.
    #[test]
    fn shell_names_are_written_once() {
        let mut n = ShellNames::default();
        let web1 = n.chart((0, "web-1"), || "WEB_1".into());
        let web1b = n.chart((0, "web.1"), || "WEB_1".into());
        let other_node = n.chart((1, "web-1"), || "WEB_1".into());
        assert_eq!((web1.as_str(), web1b.as_str(), other_node.as_str()), ("WEB_1", "WEB_1_2", "WEB_1_3"));
        assert_eq!(n.chart((0, "web.1"), || unreachable!("named once")), "WEB_1_2");
        assert_eq!(n.variable("WEB_1_A_B"), "NETDATA_WEB_1_A_B");
        assert_eq!(n.variable("WEB_1_A_B"), "NETDATA_WEB_1_A_B_2");
        assert_eq!(n.variable("WEB_1_VISIBLETOTAL"), "NETDATA_WEB_1_VISIBLETOTAL_2");
        // A chart named like another's suffixed name moves on too.
        let mut n = ShellNames::default();
        n.chart((0, "a"), || "A".into());
        n.chart((0, "a.b"), || "A".into());
        assert_eq!(n.chart((0, "a_2"), || "A_2".into()), "A_2_2");
    }
}
