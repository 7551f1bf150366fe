//! The built-in collector of the host's own metrics, read from Linux `/proc`.
//!
//! `strata serve` calls [`HostCollector::collect`] once a second and ingests
//! the batch it returns: one series per dimension, each with exactly one point
//! at `now`, all on one node whose id is also its hostname. Sources are CPU
//! (`stat`), RAM (`meminfo`), load (`loadavg`), network (`net/dev`) and disks
//! (`diskstats`), one file each here, each with a pure parser over `&str`.
//! Rates (CPU, network, disk) need a previous reading, so the first call
//! after [`HostCollector::new`] emits only memory and load. A source that
//! cannot be read or parsed is left out of that tick (never a panic, nothing
//! logged: the caller decides what to log), and a counter that went
//! backwards (wrap or reset) leaves out that one dimension for that tick.

mod cpu;
mod disk;
mod load;
mod memory;
mod net;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use strata_engine::ingest::{IngestBatch, NodeSpec, Point, SeriesSpec};

/// Everything a series of one chart shares except its instance and labels.
pub(crate) struct Chart {
    pub context: &'static str,
    pub units: &'static str,
    pub title: &'static str,
    pub chart_type: &'static str,
}

/// One computed value of one dimension of one chart instance.
pub(crate) struct Metric {
    pub chart: &'static Chart,
    pub instance: String,
    pub labels: BTreeMap<String, String>,
    pub dimension: &'static str,
    pub value: f64,
}

/// Per-second rate of a monotonic counter over `elapsed` seconds (min 1, so
/// two calls in the same second cannot divide by zero). `None` when the
/// counter went backwards: a wrap or a reset gives no meaningful delta.
pub(crate) fn rate(prev: u64, cur: u64, elapsed: i64) -> Option<f64> {
    let delta = cur.checked_sub(prev)?;
    Some(delta as f64 / elapsed.max(1) as f64)
}

/// Negates a value for the "down" half of an area chart (sent, writes),
/// keeping an idle interface at `0` rather than `-0`.
pub(crate) fn negate(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        -v
    }
}

/// A reading kept for the next tick's deltas, with the time it was taken.
struct Previous<T> {
    at: i64,
    reading: T,
}

/// Collects the host's metrics; keeps the last counter readings for rates.
pub struct HostCollector {
    node_id: String,
    proc_root: PathBuf,
    cpu: Option<Previous<Vec<cpu::CpuTimes>>>,
    net: Option<Previous<Vec<net::NetCounters>>>,
    disk: Option<Previous<Vec<disk::DiskCounters>>>,
}

impl HostCollector {
    /// `proc_root` is normally `/proc`; tests point it at fake files.
    pub fn new(node_id: String, proc_root: PathBuf) -> Self {
        HostCollector { node_id, proc_root, cpu: None, net: None, disk: None }
    }

    /// Reads every source once and returns the batch for time `now` (epoch
    /// seconds). Rates are over `now` minus the time of the source's last
    /// good reading; a failed source keeps its older reading, so the next
    /// rate is the true average over the longer gap.
    pub fn collect(&mut self, now: i64) -> IngestBatch {
        let mut metrics = Vec::new();

        if let Some(cur) = self.read("stat").and_then(|t| cpu::parse_stat(&t)) {
            if let Some(prev) = &self.cpu {
                metrics.extend(cpu::metrics(&prev.reading, &cur));
            }
            self.cpu = Some(Previous { at: now, reading: cur });
        }
        if let Some(mem) = self.read("meminfo").and_then(|t| memory::parse_meminfo(&t)) {
            metrics.extend(memory::metrics(&mem));
        }
        if let Some(avg) = self.read("loadavg").and_then(|t| load::parse_loadavg(&t)) {
            metrics.extend(load::metrics(avg));
        }
        if let Some(cur) = self.read("net/dev").and_then(|t| net::parse_net_dev(&t)) {
            if let Some(prev) = &self.net {
                metrics.extend(net::metrics(&prev.reading, &cur, now - prev.at));
            }
            self.net = Some(Previous { at: now, reading: cur });
        }
        if let Some(cur) = self.read("diskstats").and_then(|t| disk::parse_diskstats(&t)) {
            if let Some(prev) = &self.disk {
                metrics.extend(disk::metrics(&prev.reading, &cur, now - prev.at));
            }
            self.disk = Some(Previous { at: now, reading: cur });
        }

        IngestBatch {
            nodes: vec![NodeSpec {
                id: self.node_id.clone(),
                hostname: Some(self.node_id.clone()),
                machine_guid: None,
                labels: BTreeMap::from([("_os".to_string(), "linux".to_string())]),
            }],
            series: metrics.into_iter().map(|m| self.series(m, now)).collect(),
        }
    }

    fn read(&self, relative: &str) -> Option<String> {
        fs::read_to_string(self.proc_root.join(relative)).ok()
    }

    fn series(&self, m: Metric, now: i64) -> SeriesSpec {
        SeriesSpec {
            node: Some(self.node_id.clone()),
            context: m.chart.context.to_string(),
            instance: Some(m.instance),
            dimension: m.dimension.to_string(),
            units: Some(m.chart.units.to_string()),
            title: Some(m.chart.title.to_string()),
            chart_type: Some(m.chart.chart_type.to_string()),
            update_every: Some(1),
            labels: m.labels,
            points: vec![Point::new(now, Some(m.value))],
        }
    }
}

/// This machine's hostname from `/proc/sys/kernel/hostname` (always the real
/// `/proc`: it names the node), or `localhost` when unreadable or empty.
pub fn hostname() -> String {
    hostname_from(Path::new("/proc/sys/kernel/hostname"))
}

fn hostname_from(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => "localhost".to_string(),
    }
}
