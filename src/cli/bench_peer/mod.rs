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
mod raw_http;
mod report;
mod setup;
mod small;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use dataset::Dataset;
use engines::find_on_path;
use memory::Sampler;
use query::{Kind, Target};
use report::{Report, WorkloadResult};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// 100 series x 6 h instead of 1,000 series x 24 h.
    #[arg(long, env = "STRATA_QUICK")]
    pub quick: bool,
    /// Series in the dataset (overrides --quick; for CI-sized runs).
    #[arg(long, env = "STRATA_SERIES", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub series: Option<u64>,
    /// Hours of per-second data (overrides --quick; at most 48).
    #[arg(long, env = "STRATA_HOURS", value_parser = clap::value_parser!(i64).range(1..=48))]
    pub hours: Option<i64>,
    /// Timed runs per workload and engine (after one warm-up).
    #[arg(long, env = "STRATA_RUNS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Seconds for each half of the small-query test.
    #[arg(long, env = "STRATA_SMALL_SECS", default_value_t = 3.0, value_parser = parse_secs)]
    pub small_secs: f64,
    /// Client threads posting the load batches at once, the same for every
    /// engine. More keep an engine that acknowledges a batch only once it is
    /// durable busy during its fsyncs, and hold more batches in memory.
    #[arg(long, env = "STRATA_CLIENTS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// Bench strata alone even when peers are installed.
    #[arg(long, env = "STRATA_NO_PEERS")]
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

fn run_in(a: &BenchArgs, d: &Dataset, root: &Path) -> Result<String, String> {
    let peers = find_peers(a.no_peers);
    eprintln!("bench-peer: {} series x {} h = {} samples; temp dir {}", d.series, d.hours, d.samples(), root.display());
    eprintln!("bench-peer: measuring single-core memory bandwidth");
    let bandwidth = probe::measure(512, 5);
    let mem = Sampler::start();

    let (strata, strata_row, sdisk) = setup::strata(d, root, &mem, a.clients as usize)?;
    let mut targets = vec![Target::of(&strata, Kind::Strata)];
    let mut rows = vec![strata_row];
    let mut procs = vec![strata];
    if let Some(bin) = &peers.vm {
        let (p, row) = setup::victoria_metrics(d, bin, root, &mem, a.clients as usize)?;
        targets.push(Target::of(&p, Kind::VictoriaMetrics));
        rows.push(row);
        procs.push(p);
    }
    if let Some((prom, promtool)) = &peers.prometheus {
        let (p, row) = setup::prometheus(d, prom, promtool, root, &mem)?;
        targets.push(Target::of(&p, Kind::Prometheus));
        rows.push(row);
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
                                    r.agreement.insert(t.name, compare::compare(&answer, t0, compare::Peer::Rounded));
                                }
                                _ => {}
                            }
                            strata_answer = Some(answer)
                        }
                        Some(s) => {
                            r.agreement.insert(t.name, compare::compare(s, &answer, compare::Peer::Exact));
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
        clients: a.clients as usize,
        missing: peers.missing,
        engines: rows,
        workloads: results,
        strata_disk: sdisk,
        peaks,
    };
    Ok(report.render())
}
