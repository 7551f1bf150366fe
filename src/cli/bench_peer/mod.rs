//! `strata bench-peer [--quick]`: strata side by side with
//! VictoriaMetrics and Prometheus on one deterministic dataset, all on
//! 127.0.0.1 (see `benches/peer/README.md`). It installs nothing: peers
//! missing from PATH are reported and strata is benched alone.
//!
//! Steps: memory-bandwidth probe; load strata twice (JSON, then Arrow IPC,
//! each on a fresh data dir; the second one is stopped cleanly, measured on
//! disk and restarted for the queries), VictoriaMetrics (JSON import) and
//! Prometheus (promtool backfill); time every workload on every engine and
//! compare the answers with strata's; the small-query latency test; the
//! report and target lines on stdout. Progress goes to stderr. Temp dirs
//! and child processes are removed on every exit path (Ctrl-C included).

mod compare;
mod dataset;
mod engines;
mod http;
mod load;
mod memory;
mod probe;
mod query;
mod report;
mod small;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use dataset::Dataset;
use engines::{find_on_path, Proc};
use load::LoadResult;
use memory::Sampler;
use query::{Kind, Target};
use report::{EngineRow, Report, StrataDisk, WorkloadResult};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// 100 series x 6 h instead of 1,000 series x 24 h.
    #[arg(long)]
    pub quick: bool,
    /// Series in the dataset (overrides --quick; for CI-sized runs).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub series: Option<u64>,
    /// Hours of per-second data (overrides --quick; at most 48).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=48))]
    pub hours: Option<i64>,
    /// Timed runs per workload and engine (after one warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Seconds for each half of the small-query test.
    #[arg(long, default_value_t = 3.0, value_parser = parse_secs)]
    pub small_secs: f64,
    /// Bench strata alone even when peers are installed.
    #[arg(long)]
    pub no_peers: bool,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.05..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds in 0.05..600")),
    }
}

pub fn run(a: BenchArgs) -> Result<(), String> {
    let (series, hours) = if a.quick { (100, 6) } else { (1000, 24) };
    let series = a.series.map_or(series, |s| s as usize);
    let hours = a.hours.unwrap_or(hours);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|e| format!("reading the clock: {e}"))?;
    let d = Dataset::new(series, hours, now);
    let root = std::env::temp_dir().join(format!("strata-bench-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    engines::install_interrupt_handler(&root);
    let result = run_in(&a, &d, &root);
    let _ = std::fs::remove_dir_all(&root);
    let text = result?;
    print!("{text}");
    Ok(())
}

struct Peers {
    vm: Option<PathBuf>,
    prometheus: Option<(PathBuf, PathBuf)>,
    missing: Vec<String>,
}

fn find_peers(no_peers: bool) -> Peers {
    if no_peers {
        let note = "peers skipped (--no-peers): strata is benched alone".to_string();
        return Peers { vm: None, prometheus: None, missing: vec![note] };
    }
    let mut missing = Vec::new();
    let vm = find_on_path("victoria-metrics");
    if vm.is_none() {
        missing.push("VictoriaMetrics not found (no `victoria-metrics` on PATH; `apt-get install victoria-metrics`): not benched".into());
    }
    let prometheus = find_on_path("prometheus").zip(find_on_path("promtool"));
    if prometheus.is_none() {
        missing.push(
            "Prometheus not found (no `prometheus` and `promtool` on PATH; `apt-get install prometheus`): not benched"
                .into(),
        );
    }
    for m in &missing {
        eprintln!("bench-peer: {m}");
    }
    Peers { vm, prometheus, missing }
}

fn strata_headers(p: &Proc, content_type: &'static str) -> (String, &'static str) {
    (format!("Bearer {}", p.token.as_deref().unwrap_or_default()), content_type)
}

/// Loads the dataset into a fresh strata with one body format.
fn load_strata(d: &Dataset, dir: &Path, mem: &Sampler, arrow: bool) -> Result<(Proc, LoadResult), String> {
    let p = engines::start_strata(dir)?;
    mem.watch("strata", p.pid());
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
    let (auth, ctype) = strata_headers(&p, ctype);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", ctype)];
    let r = load::post_all(label, &format!("{}/api/v1/ingest", p.base), &headers, &bodies, d.samples())?;
    eprintln!("bench-peer: {label}: {:.2} M samples/s", r.rate() / 1e6);
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

fn run_in(a: &BenchArgs, d: &Dataset, root: &Path) -> Result<String, String> {
    let peers = find_peers(a.no_peers);
    eprintln!("bench-peer: {} series x {} h = {} samples; temp dir {}", d.series, d.hours, d.samples(), root.display());
    eprintln!("bench-peer: measuring single-core memory bandwidth");
    let bandwidth = probe::measure(512, 5);
    let mem = Sampler::start();

    let (json_proc, json_load) = load_strata(d, &root.join("strata-json"), &mem, false)?;
    drop(json_proc);
    let _ = std::fs::remove_dir_all(root.join("strata-json"));
    let strata_dir = root.join("strata");
    let (p, arrow_load) = load_strata(d, &strata_dir, &mem, true)?;
    p.stop_gracefully(Duration::from_secs(120))?;
    let sdisk = strata_disk(d, &strata_dir);
    let strata_bytes = load::dir_bytes(&strata_dir);
    let strata = engines::start_strata(&strata_dir)?;
    mem.watch("strata", strata.pid());
    let mut rows = vec![EngineRow {
        name: "strata",
        loads: vec![("JSON over HTTP", json_load), ("Arrow IPC over HTTP", arrow_load)],
        disk_bytes: strata_bytes,
        disk_note: "(whole data dir after a clean stop)".into(),
        small: None,
    }];
    let mut targets =
        vec![Target { name: "strata", kind: Kind::Strata, base: strata.base.clone(), token: strata.token.clone() }];
    let mut procs = vec![strata];

    if let Some(bin) = &peers.vm {
        let vm = engines::start_vm(bin, root)?;
        mem.watch("VictoriaMetrics", vm.pid());
        let bodies = load::encode_all(d, "VictoriaMetrics JSON lines", |a, b, s| Ok(d.vm_lines(a, b, s)))?;
        let url = format!("{}/api/v1/import", vm.base);
        let r = load::post_all("VictoriaMetrics import", &url, &[], &bodies, d.samples())?;
        drop(bodies);
        eprintln!("bench-peer: VictoriaMetrics import: {:.2} M samples/s; flushing and restarting", r.rate() / 1e6);
        let agent = http::agent(Duration::from_secs(300));
        http::send_ok(&agent, &format!("{}/internal/force_flush", vm.base), &[], None)?;
        // A clean stop writes every in-memory part, as strata's does.
        vm.stop_gracefully(Duration::from_secs(120))?;
        let bytes = load::dir_bytes(&root.join("vm-data"));
        let vm = engines::start_vm(bin, root)?;
        mem.watch("VictoriaMetrics", vm.pid());
        rows.push(EngineRow {
            name: "VictoriaMetrics",
            loads: vec![("JSON import over HTTP", r)],
            disk_bytes: bytes,
            disk_note: "(whole data dir after a clean stop)".into(),
            small: None,
        });
        targets.push(Target {
            name: "VictoriaMetrics",
            kind: Kind::VictoriaMetrics,
            base: vm.base.clone(),
            token: None,
        });
        procs.push(vm);
    }
    if let Some((prom, promtool)) = &peers.prometheus {
        let tsdb = root.join("prometheus-tsdb");
        let r = load::backfill_prometheus(d, promtool, root, &tsdb, |pid| {
            mem.watch("Prometheus (promtool backfill)", pid)
        })?;
        eprintln!("bench-peer: promtool backfill: {:.2} M samples/s", r.rate() / 1e6);
        let bytes = load::dir_bytes(&tsdb);
        let p = engines::start_prometheus(prom, root, &tsdb)?;
        mem.watch("Prometheus", p.pid());
        rows.push(EngineRow {
            name: "Prometheus",
            loads: vec![("promtool backfill (not HTTP)", r)],
            disk_bytes: bytes,
            disk_note: "(backfilled blocks)".into(),
            small: None,
        });
        targets.push(Target { name: "Prometheus", kind: Kind::Prometheus, base: p.base.clone(), token: None });
        procs.push(p);
    }

    let mut results = Vec::new();
    // strata's (a) answer on tier 0: "exact first" says (a-auto) must equal it.
    let mut strata_tier0 = None;
    for w in workloads::all(d) {
        let mut r = WorkloadResult {
            w,
            timings: Default::default(),
            agreement: Default::default(),
            errors: Default::default(),
        };
        let mut strata_answer = None;
        for t in &targets {
            eprintln!("bench-peer: ({}) {} on {}: {}", r.w.id, r.w.what, t.name, t.describe(&r.w));
            match t.time(&r.w, a.runs as usize, Duration::from_secs(30)) {
                Ok((timing, answer)) => {
                    r.timings.insert(t.name, timing);
                    match &strata_answer {
                        None if t.kind == Kind::Strata => {
                            match (r.w.id, &strata_tier0) {
                                ("a", _) => strata_tier0 = Some(answer.clone()),
                                ("a-auto", Some(t0)) => {
                                    r.agreement.insert(t.name, compare::compare(&answer, t0));
                                }
                                _ => {}
                            }
                            strata_answer = Some(answer)
                        }
                        Some(s) => {
                            r.agreement.insert(t.name, compare::compare(s, &answer));
                        }
                        None => {}
                    }
                }
                Err(e) => {
                    eprintln!("bench-peer: ({}) on {} failed: {e}", r.w.id, t.name);
                    r.errors.insert(t.name, e);
                }
            }
        }
        results.push(r);
    }
    let sw = workloads::small(d);
    for (t, row) in targets.iter().zip(rows.iter_mut()) {
        eprintln!("bench-peer: small query on {}", t.name);
        match small::run(t, &sw, a.small_secs) {
            Ok(s) => row.small = Some(s),
            Err(e) => eprintln!("bench-peer: small query on {} failed: {e}", t.name),
        }
    }
    let peaks = mem.peaks();
    drop(procs);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let report = Report {
        d,
        command,
        bandwidth,
        cores,
        missing: peers.missing,
        engines: rows,
        workloads: results,
        strata_disk: sdisk,
        peaks,
    };
    Ok(report.render())
}
