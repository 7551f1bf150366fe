//! Loading the dataset into each engine and measuring it on disk after a
//! clean stop, then (re)starting the engine for the queries. Each function
//! hands back the running engine and its report row.

use std::path::Path;
use std::time::Duration;

use super::dataset::Dataset;
use super::engines::{self, Proc};
use super::load::{self, LoadResult};
use super::memory::Sampler;
use super::report::{EngineRow, StrataDisk};

const AFTER_CLEAN_STOP: &str = "(whole data dir after a clean stop)";

fn row(name: &'static str, loads: Vec<(&'static str, LoadResult)>, disk_bytes: u64, note: &str) -> EngineRow {
    EngineRow { name, loads, disk_bytes, disk_note: note.into(), small: None }
}

/// Loads the dataset into a fresh strata with one body format.
fn load_strata(
    d: &Dataset,
    dir: &Path,
    mem: &Sampler,
    arrow: bool,
    clients: usize,
) -> Result<(Proc, LoadResult), String> {
    let p = engines::start_strata(dir)?;
    mem.watch("strata", p.pid());
    mem.watch(if arrow { "strata (during the Arrow IPC load)" } else { "strata (during the JSON load)" }, p.pid());
    let (label, ctype) = if arrow {
        ("strata Arrow IPC", strata_engine::ingest::arrow::CONTENT_TYPE)
    } else {
        ("strata JSON", "application/json")
    };
    let bodies = load::encode_all(d, label, |a, b, s| {
        let batch = d.strata_batch(a, b, s);
        if arrow {
            strata_engine::ingest::arrow::encode_stream(&batch).map_err(|e| e.to_string())
        } else {
            serde_json::to_vec(&batch).map_err(|e| e.to_string())
        }
    })?;
    let auth = format!("Bearer {}", p.token.as_deref().unwrap_or_default());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", ctype)];
    let url = format!("{}/api/v1/ingest", p.base);
    let r = load::post_all(label, &url, &headers, &bodies, d.samples(), clients, p.pid())?;
    let cpu = r.cpu_per_million().map_or(String::new(), |c| format!(", {c:.2} CPU s per M samples"));
    eprintln!("bench-peer: {label}: {:.2} M samples/s{cpu}", r.rate() / 1e6);
    if r.rejected_late > 0 {
        return Err(format!("{label}: strata refused {} samples as late; the load order is broken", r.rejected_late));
    }
    Ok((p, r))
}

/// Sealed tier-0 hours (distinct span starts in `tier0/`) and per-tier bytes.
fn strata_disk(d: &Dataset, dir: &Path) -> StrataDisk {
    let tiers = [0, 1, 2].map(|t| load::dir_bytes(&dir.join(format!("tier{t}"))));
    let starts: std::collections::BTreeSet<String> = std::fs::read_dir(dir.join("tier0"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.split('-').find(|p| p.starts_with('s')).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let sealed = (starts.len() as u64 * 3600 * d.series as u64).max(1);
    StrataDisk {
        tier0_per_sample: tiers[0] as f64 / sealed as f64,
        sealed_hours: starts.len(),
        tiers,
        other: load::dir_bytes(dir).saturating_sub(tiers.iter().sum()),
    }
}

/// strata, loaded twice on fresh data dirs (JSON, then Arrow IPC); the
/// second is stopped cleanly, measured, and restarted for the queries.
pub fn strata(
    d: &Dataset,
    root: &Path,
    mem: &Sampler,
    clients: usize,
) -> Result<(Proc, EngineRow, StrataDisk), String> {
    let (json_proc, json_load) = load_strata(d, &root.join("strata-json"), mem, false, clients)?;
    drop(json_proc);
    let _ = std::fs::remove_dir_all(root.join("strata-json"));
    let dir = root.join("strata");
    let (p, arrow_load) = load_strata(d, &dir, mem, true, clients)?;
    p.stop_gracefully(Duration::from_secs(120))?;
    let disk = strata_disk(d, &dir);
    let loads = vec![("JSON over HTTP", json_load), ("Arrow IPC over HTTP", arrow_load)];
    let row = row("strata", loads, load::dir_bytes(&dir), AFTER_CLEAN_STOP);
    let p = engines::start_strata(&dir)?;
    mem.watch("strata", p.pid());
    mem.watch("strata (restarted, during the queries)", p.pid());
    Ok((p, row, disk))
}

/// VictoriaMetrics: JSON-lines import, force_flush, a clean stop (which
/// writes every in-memory part, as strata's does), measured, restarted.
pub fn victoria_metrics(
    d: &Dataset,
    bin: &Path,
    root: &Path,
    mem: &Sampler,
    clients: usize,
) -> Result<(Proc, EngineRow), String> {
    let vm = engines::start_vm(bin, root)?;
    mem.watch("VictoriaMetrics", vm.pid());
    let bodies = load::encode_all(d, "VictoriaMetrics JSON lines", |a, b, s| Ok(d.vm_lines(a, b, s)))?;
    let url = format!("{}/api/v1/import", vm.base);
    let r = load::post_all("VictoriaMetrics import", &url, &[], &bodies, d.samples(), clients, vm.pid())?;
    drop(bodies);
    eprintln!("bench-peer: VictoriaMetrics import: {:.2} M samples/s; flushing and restarting", r.rate() / 1e6);
    let agent = super::http::agent(Duration::from_secs(300));
    super::http::send_ok(&agent, &format!("{}/internal/force_flush", vm.base), &[], None)?;
    vm.stop_gracefully(Duration::from_secs(120))?;
    let row = row(
        "VictoriaMetrics",
        vec![("JSON import over HTTP", r)],
        load::dir_bytes(&root.join("vm-data")),
        AFTER_CLEAN_STOP,
    );
    let vm = engines::start_vm(bin, root)?;
    mem.watch("VictoriaMetrics", vm.pid());
    Ok((vm, row))
}

/// Prometheus: promtool backfill (timed, not HTTP), then the server on it.
pub fn prometheus(
    d: &Dataset,
    prom: &Path,
    promtool: &Path,
    root: &Path,
    mem: &Sampler,
) -> Result<(Proc, EngineRow), String> {
    let tsdb = root.join("prometheus-tsdb");
    let r =
        load::backfill_prometheus(d, promtool, root, &tsdb, |pid| mem.watch("Prometheus (promtool backfill)", pid))?;
    eprintln!("bench-peer: promtool backfill: {:.2} M samples/s", r.rate() / 1e6);
    let row =
        row("Prometheus", vec![("promtool backfill (not HTTP)", r)], load::dir_bytes(&tsdb), "(backfilled blocks)");
    let p = engines::start_prometheus(prom, root, &tsdb)?;
    mem.watch("Prometheus", p.pid());
    Ok((p, row))
}
