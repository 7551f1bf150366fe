//! The shared test dataset (2 nodes, 2 contexts, 12 metrics, 2 hours of
//! per-second data) and an independent reference implementation of the
//! query semantics the server must reproduce.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::harness::Server;

/// Start of the dataset: a multiple of 3600. Data covers T0+1 ..= T0+SPAN.
pub const T0: i64 = 1_699_999_200;
/// Two hours of per-second samples.
pub const SPAN: i64 = 7200;
/// The pinned engine clock: just after the last sample.
pub const NOW: i64 = T0 + SPAN + 10;
/// One ingest batch per half hour.
pub const BATCH_SECS: i64 = 1800;

#[derive(Debug, Clone)]
pub struct Metric {
    pub idx: usize,
    pub node: &'static str,
    pub hostname: &'static str,
    pub context: &'static str,
    pub instance: &'static str,
    pub dimension: &'static str,
    pub units: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
}

impl Metric {
    pub fn label(&self, key: &str) -> Option<&'static str> {
        self.labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

pub const NODES: [(&str, &str); 2] = [("n1", "host-1"), ("n2", "host-2")];

/// The 12 metrics, in a fixed order (the index feeds the value function).
pub fn metrics() -> Vec<Metric> {
    let mut out = Vec::new();
    for (node, hostname) in NODES {
        for (instance, device) in [("disk.sda", "sda"), ("disk.sdb", "sdb")] {
            for dimension in ["reads", "writes"] {
                out.push(Metric {
                    idx: out.len(),
                    node,
                    hostname,
                    context: "disk.io",
                    instance,
                    dimension,
                    units: "KiB/s",
                    labels: vec![("device", device)],
                });
            }
        }
        for dimension in ["user", "system"] {
            out.push(Metric {
                idx: out.len(),
                node,
                hostname,
                context: "system.cpu",
                instance: "system.cpu",
                dimension,
                units: "percentage",
                labels: vec![("cpu", "all")],
            });
        }
    }
    out
}

/// Index of the gap-free metric n1 / system.cpu / user.
pub const GAP_FREE_CPU_USER_N1: usize = 4;
/// Index of n1 / disk.sda / reads: gap-free, with anomalous points.
pub const SDA_READS_N1: usize = 0;

/// The sample of metric `m` at `T0 + k` (k in 1..=SPAN); None = explicit gap.
pub fn sample(m: &Metric, k: i64) -> Option<f64> {
    let i = m.idx as i64;
    // n1 / disk.sdb / reads: a gap every 37 s.
    if m.idx == 2 && k % 37 == 0 {
        return None;
    }
    // All of n2's disk.io: ten minutes of gap.
    if m.node == "n2" && m.context == "disk.io" && (3601..=4200).contains(&k) {
        return None;
    }
    // n2 / system.cpu / system: a one-minute gap and a few lone ones.
    if m.idx == 11 && ((4801..=4860).contains(&k) || k % 113 == 0) {
        return None;
    }
    let mut v = ((k * (3 + 2 * i) + 17 * i) % 101) as f64;
    if k % 7 == 0 {
        v += 0.5;
    } else if k % 13 == 0 {
        v += 0.125 * (i + 1) as f64;
    }
    if m.context == "system.cpu" {
        v = v * 0.75 + 0.3;
    }
    if m.dimension == "writes" {
        v = -(v + 1.0);
    }
    Some(v)
}

/// Whether the sample of `m` at `T0 + k` is flagged anomalous.
pub fn anomalous(m: &Metric, k: i64) -> bool {
    (m.idx == SDA_READS_N1 && k % 100 == 3) || (m.idx == 5 && k % 250 == 0)
}

/// One ingest batch with the samples k in `from..=to` of every metric.
pub fn batch(from: i64, to: i64, with_nodes: bool) -> (Value, u64) {
    let mut series = Vec::new();
    let mut n = 0u64;
    for m in metrics() {
        let points: Vec<Value> = (from..=to)
            .map(|k| {
                let t = T0 + k;
                match sample(&m, k) {
                    None => json!([t, null]),
                    Some(v) if anomalous(&m, k) => json!([t, v, true]),
                    Some(v) => json!([t, v]),
                }
            })
            .collect();
        n += points.len() as u64;
        let labels: serde_json::Map<String, Value> = m.labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        series.push(json!({
            "node": m.node,
            "context": m.context,
            "instance": m.instance,
            "dimension": m.dimension,
            "units": m.units,
            "title": format!("{} of {}", m.context, m.instance),
            "chart_type": "line",
            "update_every": 1,
            "labels": labels,
            "points": points,
        }));
    }
    let mut b = json!({ "series": series });
    if with_nodes {
        b["nodes"] = json!(NODES
            .iter()
            .enumerate()
            .map(|(i, (id, host))| json!({"id": id, "hostname": host, "labels": {"rack": format!("r{}", i + 1), "env": "e2e"}}))
            .collect::<Vec<_>>());
    }
    (b, n)
}

/// Ingests the whole dataset, one batch per half hour, asserting that every
/// point is accepted and none is late. Returns the per-batch reports.
pub fn load(server: &Server) -> Vec<(u64, u64, u64)> {
    let mut reports = Vec::new();
    let mut from = 1;
    while from <= SPAN {
        let to = from + BATCH_SECS - 1;
        let (b, sent) = batch(from, to, from == 1);
        let (accepted, late) = server.ingest_ok(&b);
        assert_eq!(accepted, sent, "batch {from}..={to}: accepted");
        assert_eq!(late, 0, "batch {from}..={to}: rejected_late");
        reports.push((sent, accepted, late));
        from = to + 1;
    }
    reports
}

/// A started server with the whole dataset loaded.
pub fn server_with_dataset() -> Server {
    let s = Server::start(Some(NOW));
    load(&s);
    s
}

// ---------------------------------------------------------------------------
// Reference semantics.

/// An absolute, aligned window: `points` buckets of `v` seconds ending at
/// `T0 + end` (a multiple of v). after = T0 + end - points*v + 1.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub end: i64,
    pub v: i64,
    pub points: i64,
}

impl Window {
    pub fn after(&self) -> i64 {
        T0 + self.end - self.points * self.v + 1
    }
    pub fn before(&self) -> i64 {
        T0 + self.end
    }
    /// Bucket end times, oldest first.
    pub fn ends(&self) -> Vec<i64> {
        assert_eq!(self.before() % self.v, 0, "window end must be a multiple of V");
        (1..=self.points).map(|i| self.after() - 1 + i * self.v).collect()
    }
    /// The `window` object, pinned to tier 0: the reference model is tier-0
    /// data (automatic tier selection would pick the per-minute tier 1 for
    /// most of these windows).
    pub fn json(&self) -> Value {
        json!({"after": self.after(), "before": self.before(), "points": self.points, "tier": 0})
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeGroup {
    Average,
    Min,
    Max,
    Sum,
}

impl TimeGroup {
    pub const ALL: [TimeGroup; 4] = [TimeGroup::Average, TimeGroup::Min, TimeGroup::Max, TimeGroup::Sum];
    pub fn name(self) -> &'static str {
        match self {
            TimeGroup::Average => "average",
            TimeGroup::Min => "min",
            TimeGroup::Max => "max",
            TimeGroup::Sum => "sum",
        }
    }
    /// Netdata's time grouping over the bucket's non-null samples.
    pub fn apply(self, xs: &[f64]) -> Option<f64> {
        if xs.is_empty() {
            return None;
        }
        Some(match self {
            TimeGroup::Average => xs.iter().sum::<f64>() / xs.len() as f64,
            TimeGroup::Sum => xs.iter().sum(),
            // By absolute value, sign kept, first wins ties.
            TimeGroup::Min => xs.iter().copied().fold(xs[0], |best, x| if x.abs() < best.abs() { x } else { best }),
            TimeGroup::Max => xs.iter().copied().fold(xs[0], |best, x| if x.abs() > best.abs() { x } else { best }),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Sum,
    Average,
    Min,
    Max,
}

impl Agg {
    pub fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Average => "average",
            Agg::Min => "min",
            Agg::Max => "max",
        }
    }
    /// Accumulates (without the final division of `average`).
    fn fold(self, xs: &[f64]) -> Option<f64> {
        if xs.is_empty() {
            return None;
        }
        Some(match self {
            Agg::Sum | Agg::Average => xs.iter().sum(),
            Agg::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
            Agg::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Dimension,
    Instance,
    Node,
    Context,
    Units,
    Label(&'static str),
    Selected,
}

impl Key {
    pub fn group_by_word(&self) -> &'static str {
        match self {
            Key::Dimension => "dimension",
            Key::Instance => "instance",
            Key::Node => "node",
            Key::Context => "context",
            Key::Units => "units",
            Key::Label(_) => "label",
            Key::Selected => "selected",
        }
    }

    /// The series id this key gives a metric (`mg` maps hostname -> machine guid).
    pub fn id(&self, m: &Metric, mg: &BTreeMap<String, String>) -> String {
        let guid = || mg.get(m.hostname).cloned().unwrap_or_else(|| format!("<no guid for {}>", m.hostname));
        match self {
            Key::Dimension => m.dimension.to_string(),
            Key::Instance => format!("{}@{}", m.instance, guid()),
            Key::Node => guid(),
            Key::Context => m.context.to_string(),
            Key::Units => m.units.to_string(),
            Key::Label(k) => m.label(k).unwrap_or("[unset]").to_string(),
            Key::Selected => "selected".to_string(),
        }
    }

    /// The display name for the id (instance and node use the hostname).
    pub fn name(&self, m: &Metric, mg: &BTreeMap<String, String>) -> String {
        match self {
            Key::Instance => format!("{}@{}", m.instance, m.hostname),
            Key::Node => m.hostname.to_string(),
            other => other.id(m, mg),
        }
    }

    /// The pass JSON for this key.
    pub fn pass(&self, agg: Agg) -> Value {
        let mut p = json!({"group_by": [self.group_by_word()], "aggregation": agg.name()});
        if let Key::Label(k) = self {
            p["group_by_label"] = json!([k]);
        }
        p
    }
}

/// One expected output cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub value: Option<f64>,
    /// Only the EMPTY (1) and PARTIAL (4) bits.
    pub pa: u64,
    /// Anomaly rate, when it is well defined for the test (single pass).
    pub arp: Option<f64>,
}

/// The per-bucket time-grouped values of one metric (oldest first), with
/// the bucket's anomaly rate over its non-null samples.
pub fn metric_buckets(m: &Metric, w: &Window, tg: TimeGroup, absolute: bool) -> Vec<(Option<f64>, f64)> {
    w.ends()
        .iter()
        .map(|&end| {
            let mut xs = Vec::new();
            let mut anomalies = 0usize;
            for t in (end - w.v + 1)..=end {
                let k = t - T0;
                if !(1..=SPAN).contains(&k) {
                    continue;
                }
                if let Some(x) = sample(m, k) {
                    xs.push(if absolute { x.abs() } else { x });
                    if anomalous(m, k) {
                        anomalies += 1;
                    }
                }
            }
            let arp = if xs.is_empty() { 0.0 } else { 100.0 * anomalies as f64 / xs.len() as f64 };
            (tg.apply(&xs), arp)
        })
        .collect()
}

/// A query description for the reference model.
pub struct Expect<'a> {
    pub metrics: &'a [Metric],
    pub window: Window,
    pub tg: TimeGroup,
    /// One or two passes of (key, aggregation).
    pub passes: &'a [(Key, Agg)],
}

/// Expected series: id -> (name, cells oldest first).
pub fn expected(e: &Expect, mg: &BTreeMap<String, String>) -> BTreeMap<String, (String, Vec<Cell>)> {
    let absolute = !e.passes.iter().any(|(k, _)| *k == Key::Dimension);
    let per_metric: Vec<Vec<(Option<f64>, f64)>> =
        e.metrics.iter().map(|m| metric_buckets(m, &e.window, e.tg, absolute)).collect();
    let nb = e.window.points as usize;
    let last = e.passes.len() - 1;
    let (final_key, final_agg) = &e.passes[last];

    // Pass 0 groups by its key plus the final pass's key (when two passes).
    let mut pass0: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, m) in e.metrics.iter().enumerate() {
        let k0 = e.passes[0].0.id(m, mg);
        let k1 = if last == 1 { final_key.id(m, mg) } else { String::new() };
        pass0.entry((k1, k0)).or_default().push(i);
    }
    // Each pass-0 group: per bucket, the accumulated value and counts.
    let agg0 = e.passes[0].1;
    let mut groups0: Vec<Group0> = Vec::new();
    for ((k1, k0), members) in &pass0 {
        let cells = (0..nb)
            .map(|b| {
                let present: Vec<usize> = members.iter().copied().filter(|&i| per_metric[i][b].0.is_some()).collect();
                let vals: Vec<f64> = present.iter().filter_map(|&i| per_metric[i][b].0).collect();
                GroupCell {
                    value: agg0.fold(&vals),
                    non_empty: vals.len(),
                    members: members.len(),
                    arp_sum: present.iter().map(|&i| per_metric[i][b].1).sum(),
                }
            })
            .collect();
        let first = &e.metrics[members[0]];
        let (id, name) = if last == 1 {
            (k1.clone(), final_key.name(first, mg))
        } else {
            (k0.clone(), e.passes[0].0.name(first, mg))
        };
        groups0.push(Group0 { id, name, cells });
    }

    let divide = |v: f64, n: usize| if final_agg == &Agg::Average { v / n as f64 } else { v };
    let mut out = BTreeMap::new();
    if last == 0 {
        for g in groups0 {
            let cells = g
                .cells
                .iter()
                .map(|c| {
                    let n = c.non_empty;
                    let pa = if n == 0 {
                        1
                    } else if n < c.members {
                        4
                    } else {
                        0
                    };
                    let arp = if n == 0 { Some(0.0) } else { Some(c.arp_sum / n as f64) };
                    Cell { value: c.value.map(|v| divide(v, n)), pa, arp }
                })
                .collect();
            out.insert(g.id, (g.name, cells));
        }
        return out;
    }
    // Second pass over the pass-0 groups; `average` divides only here.
    let mut by_final: BTreeMap<String, (String, Vec<&Group0>)> = BTreeMap::new();
    for g in &groups0 {
        by_final.entry(g.id.clone()).or_insert_with(|| (g.name.clone(), Vec::new())).1.push(g);
    }
    for (id, (name, members)) in by_final {
        let cells = (0..nb)
            .map(|b| {
                let vals: Vec<f64> = members.iter().filter_map(|g| g.cells[b].value).collect();
                let n = vals.len();
                Cell { value: final_agg.fold(&vals).map(|v| divide(v, n)), pa: if n == 0 { 1 } else { 0 }, arp: None }
            })
            .collect();
        out.insert(id, (name, cells));
    }
    out
}

/// One bucket of a first-pass group (before any `average` division).
struct GroupCell {
    value: Option<f64>,
    non_empty: usize,
    members: usize,
    arp_sum: f64,
}

/// A first-pass group, keyed by the id of the final pass.
struct Group0 {
    id: String,
    name: String,
    cells: Vec<GroupCell>,
}

/// hostname -> machine guid, from a json2 response's `summary.nodes`.
pub fn guids(resp: &Value) -> BTreeMap<String, String> {
    resp["summary"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes.iter().filter_map(|n| Some((n["nm"].as_str()?.to_string(), n["mg"].as_str()?.to_string()))).collect()
        })
        .unwrap_or_default()
}

/// Compares a json2 response with the expectation; returns every mismatch
/// as a line of text (empty = all good). `check_partial`: compare the
/// PARTIAL bit too; `check_arp`: compare anomaly rates.
pub fn compare(
    resp: &Value,
    w: &Window,
    want: &BTreeMap<String, (String, Vec<Cell>)>,
    check_partial: bool,
    check_arp: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    let labels: Vec<String> = resp["result"]["labels"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap_or("<non-string>").to_string()).collect())
        .unwrap_or_default();
    if labels.first().map(String::as_str) != Some("time") {
        errs.push(format!("result.labels[0] should be \"time\", labels = {labels:?}"));
        return errs;
    }
    let got_ids: Vec<&String> = labels[1..].iter().collect();
    let mut sorted_got: Vec<&String> = got_ids.clone();
    sorted_got.sort();
    let want_ids: Vec<&String> = want.keys().collect();
    if sorted_got != want_ids {
        errs.push(format!("series ids: got {got_ids:?}, expected (any order) {want_ids:?}"));
    }
    // view.dimensions.ids / names in the same order as result.labels.
    let view_ids: Vec<&str> = resp["view"]["dimensions"]["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let view_names: Vec<&str> = resp["view"]["dimensions"]["names"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let label_ids: Vec<&str> = got_ids.iter().map(|s| s.as_str()).collect();
    if view_ids != label_ids {
        errs.push(format!("view.dimensions.ids {view_ids:?} != result.labels[1..] {label_ids:?}"));
    }
    for (i, id) in label_ids.iter().enumerate() {
        if let Some((name, _)) = want.get(*id) {
            if view_names.get(i).copied() != Some(name.as_str()) {
                errs.push(format!(
                    "view.dimensions.names[{i}] for {id}: got {:?}, expected {name:?}",
                    view_names.get(i)
                ));
            }
        }
    }
    let uev = resp["view"]["update_every"].as_i64();
    if uev != Some(w.v) {
        errs.push(format!("view.update_every: got {uev:?}, expected {}", w.v));
    }
    let rows = resp["result"]["data"].as_array().cloned().unwrap_or_default();
    let ends = w.ends();
    if rows.len() != ends.len() {
        errs.push(format!("row count: got {}, expected {}", rows.len(), ends.len()));
        return errs;
    }
    // Newest first.
    for (r, row) in rows.iter().enumerate() {
        let b = ends.len() - 1 - r;
        let t = row[0].as_i64();
        if t != Some(ends[b]) {
            errs.push(format!("row {r}: time {t:?}, expected {}", ends[b]));
        }
        for (c, id) in label_ids.iter().enumerate() {
            let Some((_, cells)) = want.get(*id) else { continue };
            let cell = &row[c + 1];
            let exp = cells[b];
            let value = cell[0].as_f64();
            let pa = cell[2].as_u64();
            let ok_value = match (value, exp.value) {
                (None, None) => cell[0].is_null(),
                (Some(a), Some(e)) => crate::harness::approx_eq(a, e),
                _ => false,
            };
            if !ok_value {
                errs.push(format!("t={} {id}: value {} expected {:?}", ends[b], cell[0], exp.value));
            }
            let mask = if check_partial { 5 } else { 1 };
            if pa.map(|p| p & mask) != Some(exp.pa & mask) {
                errs.push(format!("t={} {id}: pa {} expected {} (mask {mask})", ends[b], cell[2], exp.pa & mask));
            }
            if check_arp {
                if let (Some(ea), got) = (exp.arp, cell[1].as_f64()) {
                    if !got.is_some_and(|g| crate::harness::approx_eq(g, ea)) {
                        errs.push(format!("t={} {id}: arp {} expected {ea}", ends[b], cell[1]));
                    }
                }
            }
        }
    }
    errs
}
