//! The one dataset every engine gets: `series` CPU-like gauges (0..100,
//! two decimals) sampled every second for `hours`, ending at `end`.
//!
//! Values are a pure function of (series, seconds since the first sample),
//! so every run loads the same numbers; only the absolute times move with
//! the clock (the engines refuse data far in the past or future). `end` is
//! a multiple of 7200 s, so every bucket width used by the workloads (288,
//! 72, 60 and 10 s) divides it and all engines see the same bucket edges.

use std::collections::BTreeMap;
use std::f64::consts::TAU;
use std::io::Write;

use strata_engine::demo::mix;
use strata_engine::ingest::{IngestBatch, Point, SeriesSpec};

/// Strata names: context, and instances `bench.cpu<k>` per node.
pub const CONTEXT: &str = "bench.cpu";
/// PromQL / MetricsQL metric name.
pub const METRIC: &str = "bench_cpu";
/// Samples per load batch (about): large enough to amortise a request.
const BATCH_SAMPLES: usize = 60_000;

#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub series: usize,
    pub hours: i64,
    /// Last sample time (inclusive), a multiple of 7200.
    pub end: i64,
    pub seed: u64,
}

/// One series' names in both worlds.
#[derive(Debug, Clone)]
pub struct Names {
    pub node: String,
    /// The `cpu` label (`cpu7`); the strata instance is `bench.cpu7`.
    pub cpu: String,
}

impl Dataset {
    pub fn new(series: usize, hours: i64, now: i64) -> Dataset {
        // Two spans back, so the newest hour is not still "now" for any engine.
        let end = (now - 600).div_euclid(7200) * 7200;
        Dataset { series, hours, end, seed: 11 }
    }

    /// First sample time (inclusive).
    pub fn first(&self) -> i64 {
        self.end - self.hours * 3600 + 1
    }

    pub fn samples(&self) -> u64 {
        self.series as u64 * (self.hours * 3600) as u64
    }

    pub fn nodes(&self) -> usize {
        self.series.clamp(1, 10)
    }

    fn per_node(&self) -> usize {
        self.series.div_ceil(self.nodes())
    }

    pub fn names(&self, k: usize) -> Names {
        Names { node: format!("node-{:02}", k / self.per_node()), cpu: format!("cpu{}", k % self.per_node()) }
    }

    /// The sample of series `k` at time `t`.
    pub fn value(&self, k: usize, t: i64) -> f64 {
        let key = mix(self.seed ^ mix(k as u64 + 1));
        let unit = |x: u64| (mix(x) >> 11) as f64 / (1u64 << 53) as f64;
        let off = (t - self.first()) as f64;
        let base = 10.0 + 60.0 * unit(key);
        let daily = 15.0 * (TAU * off / 86_400.0 + unit(key ^ 1) * TAU).sin();
        let period = [300.0, 900.0, 3600.0][(key % 3) as usize];
        let wobble = 5.0 * (TAU * off / period).sin();
        let noise = (unit(key ^ (off as u64).wrapping_mul(0x9E37_79B9)) - 0.5) * 8.0;
        ((base + daily + wobble + noise).clamp(0.0, 100.0) * 100.0).round() / 100.0
    }

    /// Load batches in time order: `(from, to, series range)`, each about
    /// [`BATCH_SAMPLES`]. Chunks are at most 240 s and divide an hour, so
    /// two batches in flight never straddle an hour by more than strata's
    /// 5-minute late grace.
    pub fn chunks(&self) -> Vec<(i64, i64, std::ops::Range<usize>)> {
        let secs = (BATCH_SAMPLES / self.series.max(1)).clamp(60, 240) as i64;
        let secs = [240, 180, 120, 60].into_iter().find(|&c| c <= secs).unwrap_or(60);
        let group = (BATCH_SAMPLES / secs as usize).max(1);
        let mut out = Vec::new();
        let mut a = self.first();
        while a <= self.end {
            let b = (a + secs).min(self.end + 1);
            let mut s = 0;
            while s < self.series {
                out.push((a, b, s..(s + group).min(self.series)));
                s += group;
            }
            a = b;
        }
        out
    }

    /// A strata ingest batch for `[from, to)` of the given series.
    pub fn strata_batch(&self, from: i64, to: i64, series: std::ops::Range<usize>) -> IngestBatch {
        let series = series
            .map(|k| {
                let n = self.names(k);
                SeriesSpec {
                    node: Some(n.node),
                    context: CONTEXT.into(),
                    instance: Some(format!("{CONTEXT}{}", &n.cpu[3..])),
                    dimension: "user".into(),
                    units: Some("percentage".into()),
                    title: Some("bench-peer CPU-like gauge".into()),
                    chart_type: Some("line".into()),
                    update_every: Some(1),
                    labels: BTreeMap::new(),
                    points: (from..to).map(|t| Point::new(t, Some(self.value(k, t)))).collect(),
                }
            })
            .collect();
        IngestBatch { nodes: Vec::new(), series }
    }

    /// VictoriaMetrics `/api/v1/import` JSON lines for the same samples.
    pub fn vm_lines(&self, from: i64, to: i64, series: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(series.len() * (to - from) as usize * 22);
        for k in series {
            let n = self.names(k);
            let values: Vec<f64> = (from..to).map(|t| self.value(k, t)).collect();
            let ts: Vec<i64> = (from..to).map(|t| t * 1000).collect();
            let line = serde_json::json!({
                "metric": {"__name__": METRIC, "node": n.node, "cpu": n.cpu},
                "values": values, "timestamps": ts,
            });
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &line);
            out.push(b'\n');
        }
        out
    }

    /// The whole dataset as OpenMetrics text (for `promtool tsdb
    /// create-blocks-from openmetrics`), series by series.
    pub fn write_openmetrics(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "# TYPE {METRIC} gauge")?;
        for k in 0..self.series {
            let n = self.names(k);
            let head = format!("{METRIC}{{node=\"{}\",cpu=\"{}\"}} ", n.node, n.cpu);
            for t in self.first()..=self.end {
                writeln!(w, "{head}{} {t}", self.value(k, t))?;
            }
        }
        writeln!(w, "# EOF")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_two_decimal_cpu_like_values() {
        let d = Dataset::new(20, 1, 1_800_000_000);
        assert_eq!(d.end % 7200, 0);
        let e = Dataset::new(20, 1, 1_800_100_000);
        for k in 0..20 {
            for off in [0, 1, 1799, 3599] {
                let v = d.value(k, d.first() + off);
                assert!((0.0..=100.0).contains(&v), "{v}");
                assert_eq!((v * 100.0).round() / 100.0, v);
                assert_eq!(v, e.value(k, e.first() + off), "values depend on the offset only");
            }
        }
    }

    #[test]
    fn chunks_cover_every_sample_once_in_time_order() {
        for series in [1, 7, 100, 1000] {
            let d = Dataset::new(series, 2, 1_800_000_000);
            let cs = d.chunks();
            let total: u64 = cs.iter().map(|(a, b, s)| (b - a) as u64 * s.len() as u64).sum();
            assert_eq!(total, d.samples());
            assert!(cs.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(cs.iter().all(|(a, b, _)| b - a <= 240 && (a - d.first()) % (b - a) == 0));
        }
    }
}
