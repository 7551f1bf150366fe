//! The deterministic data generator behind `serve --demo` and
//! `strata gen-fixtures`: a few nodes with Netdata-like charts whose values
//! are pure functions of (seed, series, time), so every run, every test and
//! every bench sees the same numbers.
//!
//! The demo loads history straight into each tier (tier 2 for the last
//! year, tier 1 for the last weeks, tier 0 for the last hours), because
//! replaying a year of per-second samples would take minutes and gigabytes.

use std::collections::BTreeMap;
use std::f64::consts::TAU;

use crate::engine::Engine;
use crate::error::Result;
use crate::ingest::{IngestBatch, NodeSpec, Point, SeriesSpec};
use crate::model::SeriesMeta;
use crate::storage::{AggPoint, RawPoint, WriteOutcome};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSpec {
    pub nodes: usize,
    pub metrics_per_node: usize,
    pub seed: u64,
}

impl GenSpec {
    /// The demo's shape: a few nodes, a few hundred metrics.
    pub const DEMO: GenSpec = GenSpec { nodes: 3, metrics_per_node: 80, seed: 42 };
}

/// One generated series and the shape of its values.
#[derive(Debug, Clone)]
pub struct GenSeries {
    pub node: String,
    pub context: &'static str,
    pub instance: String,
    pub dimension: String,
    pub units: &'static str,
    pub title: &'static str,
    pub chart_type: &'static str,
    pub labels: BTreeMap<String, String>,
    base: f64,
    amp: f64,
    noise: f64,
    period: f64,
    phase: f64,
    lo: f64,
    hi: f64,
    sign: f64,
    key: u64,
}

struct Template {
    context: &'static str,
    instance: &'static str,
    dims: &'static [&'static str],
    units: &'static str,
    title: &'static str,
    chart_type: &'static str,
    /// base, amplitude, noise, min, max
    shape: (f64, f64, f64, f64, f64),
    /// Dimensions drawn negative (sent, writes), as Netdata shows them.
    negative: &'static [&'static str],
    label: Option<&'static str>,
}

const TEMPLATES: &[Template] = &[
    Template {
        context: "system.cpu",
        instance: "system.cpu",
        dims: &["user", "system", "nice", "iowait", "irq", "softirq", "steal"],
        units: "percentage",
        title: "Total CPU utilization",
        chart_type: "stacked",
        shape: (8.0, 6.0, 2.0, 0.0, 100.0),
        negative: &[],
        label: None,
    },
    Template {
        context: "system.load",
        instance: "system.load",
        dims: &["load1", "load5", "load15"],
        units: "load",
        title: "System Load Average",
        chart_type: "line",
        shape: (1.5, 1.0, 0.3, 0.0, 64.0),
        negative: &[],
        label: None,
    },
    Template {
        context: "system.ram",
        instance: "system.ram",
        dims: &["free", "used", "cached", "buffers"],
        units: "MiB",
        title: "System RAM",
        chart_type: "stacked",
        shape: (4000.0, 800.0, 50.0, 0.0, 1e6),
        negative: &[],
        label: None,
    },
    Template {
        context: "net.net",
        instance: "net.eth#",
        dims: &["received", "sent"],
        units: "kilobits/s",
        title: "Bandwidth",
        chart_type: "area",
        shape: (2000.0, 1500.0, 300.0, 0.0, 1e7),
        negative: &["sent"],
        label: Some("device"),
    },
    Template {
        context: "disk.io",
        instance: "disk.sd#",
        dims: &["reads", "writes"],
        units: "KiB/s",
        title: "Disk I/O Bandwidth",
        chart_type: "area",
        shape: (500.0, 400.0, 150.0, 0.0, 1e7),
        negative: &["writes"],
        label: Some("device"),
    },
    Template {
        context: "disk.space",
        instance: "disk_space./mnt#",
        dims: &["avail", "used"],
        units: "GiB",
        title: "Disk Space Usage",
        chart_type: "stacked",
        shape: (120.0, 10.0, 0.5, 0.0, 1e5),
        negative: &[],
        label: Some("mount_point"),
    },
    Template {
        context: "cpu.cpu",
        instance: "cpu.cpu#",
        dims: &["user", "system", "iowait", "idle"],
        units: "percentage",
        title: "Core utilization",
        chart_type: "stacked",
        shape: (20.0, 15.0, 5.0, 0.0, 100.0),
        negative: &[],
        label: Some("cpu"),
    },
    Template {
        context: "apps.cpu",
        instance: "apps.cpu",
        dims: &["nginx", "postgres", "redis", "java", "python", "node", "cron", "sshd"],
        units: "percentage",
        title: "Apps CPU Time",
        chart_type: "stacked",
        shape: (3.0, 2.5, 1.0, 0.0, 400.0),
        negative: &[],
        label: None,
    },
];

/// SplitMix64: a tiny, well-mixed hash for deterministic noise.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

/// The series of a spec, in a stable order.
pub fn series(spec: &GenSpec) -> Vec<GenSeries> {
    let mut out = Vec::new();
    for n in 0..spec.nodes {
        let node = if spec.nodes <= 3 { ["web-1", "db-1", "cache-1"][n].to_string() } else { format!("node-{n:04}") };
        let mut made = 0;
        let mut round = 0usize;
        'fill: while made < spec.metrics_per_node {
            for t in TEMPLATES {
                if round > 0 && !t.instance.contains('#') {
                    continue;
                }
                let instance = t.instance.replace('#', &round.to_string());
                let mut labels = BTreeMap::new();
                if let Some(k) = t.label {
                    let v = instance.rsplit(['.', '/']).next().unwrap_or(&instance).to_string();
                    let v = if k == "mount_point" { format!("/mnt{round}") } else { v };
                    labels.insert(k.to_string(), v);
                }
                labels.insert("_collect_plugin".into(), "strata.demo".into());
                for d in t.dims {
                    if made == spec.metrics_per_node {
                        break 'fill;
                    }
                    let key = mix(spec.seed ^ mix(out.len() as u64 + 1));
                    let (base, amp, noise, lo, hi) = t.shape;
                    let scale = 0.5 + unit(key);
                    out.push(GenSeries {
                        node: node.clone(),
                        context: t.context,
                        instance: instance.clone(),
                        dimension: d.to_string(),
                        units: t.units,
                        title: t.title,
                        chart_type: t.chart_type,
                        labels: labels.clone(),
                        base: base * scale,
                        amp: amp * scale,
                        noise: noise * scale,
                        period: [600.0, 3600.0, 86_400.0][(key % 3) as usize],
                        phase: unit(key ^ 7) * TAU,
                        lo,
                        hi,
                        sign: if t.negative.contains(d) { -1.0 } else { 1.0 },
                        key,
                    });
                    made += 1;
                }
            }
            round += 1;
        }
    }
    out
}

impl GenSeries {
    /// The smooth part at time `t` (also the average of a tier window).
    pub fn smooth(&self, t: f64) -> f64 {
        let daily = 0.3 * self.amp * (TAU * t / 86_400.0).sin();
        (self.base + self.amp * (TAU * t / self.period + self.phase).sin() + daily).clamp(self.lo, self.hi) * self.sign
    }

    /// The per-second value at time `t`.
    pub fn value(&self, t: i64) -> f64 {
        let n = (unit(self.key ^ t as u64) - 0.5) * 2.0 * self.noise;
        let v = (self.smooth(t as f64).abs() + n).clamp(self.lo, self.hi) * self.sign;
        (v * 1000.0).round() / 1000.0
    }

    /// Roughly one sample in 5000 is flagged anomalous.
    pub fn anomalous(&self, t: i64) -> bool {
        mix(self.key.rotate_left(17) ^ t as u64).is_multiple_of(5000)
    }

    /// A synthetic tier point for the window `(end - res, end]`.
    pub fn rollup(&self, end: i64, res: i64) -> AggPoint {
        let avg = self.smooth((end - res / 2) as f64);
        let spread = self.noise + self.amp * (res as f64 / self.period).min(1.0);
        let (a, b) = ((avg.abs() - spread).max(self.lo), (avg.abs() + spread).min(self.hi));
        let (min, max) = if self.sign < 0.0 { (-b, -a) } else { (a, b) };
        let count = res as u32;
        AggPoint {
            sum: avg * f64::from(count),
            min: min.min(avg),
            max: max.max(avg),
            count,
            anomaly_count: u32::from(mix(self.key ^ end as u64).is_multiple_of(97)),
        }
    }

    fn spec(&self, points: Vec<Point>) -> SeriesSpec {
        SeriesSpec {
            node: Some(self.node.clone()),
            context: self.context.to_string(),
            instance: Some(self.instance.clone()),
            dimension: self.dimension.clone(),
            units: Some(self.units.to_string()),
            title: Some(self.title.to_string()),
            chart_type: Some(self.chart_type.to_string()),
            update_every: Some(1),
            labels: self.labels.clone(),
            points,
        }
    }
}

fn node_specs(all: &[GenSeries]) -> Vec<NodeSpec> {
    let mut nodes: Vec<NodeSpec> = Vec::new();
    for s in all {
        if !nodes.iter().any(|n| n.id == s.node) {
            nodes.push(NodeSpec {
                id: s.node.clone(),
                hostname: Some(s.node.clone()),
                machine_guid: None,
                labels: [("_strata_demo".to_string(), "true".to_string())].into(),
            });
        }
    }
    nodes
}

/// Ingest batches covering `[from, to)` per second, `chunk` seconds each,
/// every series in every batch (time-ordered, so nothing arrives late).
pub fn batches(spec: &GenSpec, from: i64, to: i64, chunk: i64) -> impl Iterator<Item = IngestBatch> {
    let all = series(spec);
    let nodes = node_specs(&all);
    let chunk = chunk.max(1);
    (0..).map(move |k| from + k * chunk).take_while(move |&a| a < to).map(move |a| {
        let b = (a + chunk).min(to);
        IngestBatch {
            nodes: if a == from { nodes.clone() } else { Vec::new() },
            series: all
                .iter()
                .map(|s| {
                    s.spec((a..b).map(|t| Point { t, value: Some(s.value(t)), anomalous: s.anomalous(t) }).collect())
                })
                .collect(),
        }
    })
}

/// Registers generated series (update_every 1); returns their MetricIds.
pub fn register(catalog: &mut crate::catalog::Catalog, all: &[GenSeries]) -> Vec<u32> {
    all.iter()
        .map(|s| {
            catalog.register(&SeriesMeta {
                node: &s.node,
                context: s.context,
                instance: &s.instance,
                dimension: &s.dimension,
                units: Some(s.units),
                title: Some(s.title),
                chart_type: Some(s.chart_type),
                update_every: 1,
                labels: Some(&s.labels),
            })
        })
        .collect()
}

/// How much history the demo loads into each tier.
#[derive(Debug, Clone, Copy)]
pub struct DemoHistory {
    pub tier0_secs: i64,
    pub tier1_secs: i64,
    pub tier2_secs: i64,
}

impl Default for DemoHistory {
    fn default() -> Self {
        DemoHistory { tier0_secs: 6 * 3600, tier1_secs: 14 * 86_400, tier2_secs: 365 * 86_400 }
    }
}

/// Loads demo history ending at `now` into the engine. Returns the number
/// of tier-0 samples and tier-1/2 points written.
pub fn load(
    engine: &Engine,
    spec: &GenSpec,
    hist: &DemoHistory,
    now: i64,
    mut progress: impl FnMut(&str),
) -> Result<(u64, u64)> {
    let all = series(spec);
    let mut st = engine.write()?;
    let cfg = *st.store.config();
    let span0 = cfg.span_secs(0, 1);
    // Tier 0 starts on a span boundary; coarser history ends where it starts.
    let t0 = (now - hist.tier0_secs).div_euclid(span0) * span0;
    for n in node_specs(&all) {
        st.catalog.upsert_node(&n.id, n.hostname.as_deref(), n.machine_guid.as_deref(), Some(&n.labels));
    }
    let ids = register(&mut st.catalog, &all);
    let mut rollups = 0u64;
    for (tier, secs) in [(2usize, hist.tier2_secs), (1, hist.tier1_secs)] {
        progress(&format!("demo: tier {tier} history ({} days)", secs / 86_400));
        let res = cfg.resolution(tier, 1);
        let first = (t0 - secs).div_euclid(res) * res + res;
        let mut end = first;
        while end <= t0 {
            for (s, &m) in all.iter().zip(&ids) {
                if st.store.write_rollup(m, 1, tier, end, s.rollup(end, res)) == WriteOutcome::Written {
                    rollups += 1;
                }
            }
            end += res;
        }
    }
    st.store.advance(1, t0, t0)?;
    progress(&format!("demo: tier 0 history ({} h, {} series)", (now - t0) / 3600, all.len()));
    let mut samples = 0u64;
    // One tier-0 span at a time, every series as a run.
    let (mut points, mut runs) = (Vec::new(), Vec::with_capacity(all.len()));
    let mut a = t0;
    while a <= now {
        let b = (a + span0).min(now + 1);
        points.clear();
        runs.clear();
        for (s, &m) in all.iter().zip(&ids) {
            let from = points.len();
            points.extend((a..b).map(|t| RawPoint { t, value: Some(s.value(t)), anomalous: s.anomalous(t) }));
            runs.push((m, 1, from..points.len()));
        }
        let series: Vec<_> = runs.iter().map(|(m, ue, r)| (*m, *ue, &points[r.clone()])).collect();
        samples += st.store.write_batch(&series, None)?.written;
        a = b;
    }
    st.store.seal_pending()?;
    Ok((samples, rollups))
}

/// One live demo tick at `t` (keeps demo nodes current while serving).
pub fn tick(spec: &GenSpec, t: i64) -> IngestBatch {
    IngestBatch {
        nodes: Vec::new(),
        series: series(spec)
            .iter()
            .map(|s| s.spec(vec![Point { t, value: Some(s.value(t)), anomalous: s.anomalous(t) }]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Clock, EngineConfig};

    #[test]
    fn generator_is_deterministic_and_sized() {
        let spec = GenSpec { nodes: 2, metrics_per_node: 50, seed: 7 };
        let a = series(&spec);
        let b = series(&spec);
        assert_eq!(a.len(), 100);
        assert_eq!(a[10].value(1_700_000_000), b[10].value(1_700_000_000));
        assert_ne!(series(&GenSpec { seed: 8, ..spec })[10].value(1_700_000_000), a[10].value(1_700_000_000));
        let net_sent = a.iter().find(|s| s.dimension == "sent").expect("sent");
        assert!(net_sent.value(123) <= 0.0);
        let cpu = a.iter().find(|s| s.context == "system.cpu").expect("cpu");
        assert!((0..1000).all(|t| (0.0..=100.0).contains(&cpu.value(t))));
    }

    #[test]
    fn batches_cover_the_range_in_order() {
        let spec = GenSpec { nodes: 1, metrics_per_node: 3, seed: 1 };
        let bs: Vec<_> = batches(&spec, 100, 250, 60).collect();
        assert_eq!(bs.len(), 3);
        assert_eq!(bs[0].nodes.len(), 1);
        assert_eq!(bs[2].series[0].points.len(), 30);
        let e = Engine::new(EngineConfig::default(), Clock::System);
        for b in &bs {
            let r = e.ingest(b).expect("ingest");
            assert_eq!(r.rejected_late, 0);
        }
    }

    #[test]
    fn demo_fills_every_tier() {
        let e = Engine::new(EngineConfig::default(), Clock::System);
        let spec = GenSpec { nodes: 1, metrics_per_node: 4, seed: 1 };
        let hist = DemoHistory { tier0_secs: 7200, tier1_secs: 2 * 86_400, tier2_secs: 30 * 86_400 };
        let now = 1_800_000_123;
        let (samples, rollups) = load(&e, &spec, &hist, now, |_| {}).expect("load");
        assert!(samples >= 4 * 7200 && rollups > 0);
        let st = e.read().expect("read");
        for tier in 0..3 {
            let ext = st.store.extent(0, tier).expect("data in every tier");
            assert!(ext.last >= now - 3600, "tier {tier} reaches the present: {ext:?}");
        }
        assert!(st.store.extent(0, 2).expect("t2").first <= now - 29 * 86_400);
    }
}
