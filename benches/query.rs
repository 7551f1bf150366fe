//! End-to-end query latency and scan throughput over a realistic store:
//! 1,000 metrics (10 nodes x 100 demo metrics) with 24 h of per-second
//! samples each (86.4 M samples), written through `Store::write` exactly as
//! ingest does, so tier 0 holds sealed Arrow segments plus an open head and
//! tiers 1-2 hold the rollups. The benches time `Engine::query` on
//! pre-parsed requests: full-window tier-0 scans (reported as samples/s),
//! the same query letting the planner choose a tier (tier 1, 1-minute
//! points), a group-by-dimension pass, and a short 1 h node/max query.
//! Setup runs once, outside the measured loops, and reports its time and
//! resident memory on stderr.

use std::hint::black_box;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use strata_engine::demo::{self, GenSpec};
use strata_engine::query::body::parse_body;
use strata_engine::query::request::QueryRequest;
use strata_engine::query::result::PA_EMPTY;
use strata_engine::query::ApiVersion;
use strata_engine::storage::RawPoint;
use strata_engine::{Clock, Engine, EngineConfig};

/// Last sample time; a multiple of 3600 so tier spans and 288 s buckets align.
const NOW: i64 = 1_700_006_400;
/// Seconds of history per metric.
const HISTORY: i64 = 86_400;
const SPEC: GenSpec = GenSpec { nodes: 10, metrics_per_node: 100, seed: 1 };
const METRICS: u64 = 1_000;

/// Resident and peak resident memory of this process, from /proc (Linux).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or("?".into())
    };
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

/// Builds the engine: registers every series, then writes 24 h of samples
/// one tier-0 span (an hour) at a time, every series as a run, in time
/// order, so nothing is rejected as late (the same state as per-sample
/// writes; `Store::write_batch` is proven equal to them).
fn load() -> Engine {
    // The planner treats the current second as still collecting, so the
    // clock sits one second after the newest sample.
    let engine = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(NOW + 1)));
    let all = demo::series(&SPEC);
    assert_eq!(all.len() as u64, METRICS);
    let start = Instant::now();
    let mut st = engine.write().expect("state lock");
    let ids = demo::register(&mut st.catalog, &all);
    let first = NOW - HISTORY + 1;
    let mut written = 0u64;
    let (mut points, mut runs) = (Vec::new(), Vec::with_capacity(all.len()));
    let mut a = first;
    while a <= NOW {
        // Up to the next hour boundary: one span per batch.
        let b = ((a / 3600) + 1) * 3600;
        let b = b.min(NOW + 1);
        points.clear();
        runs.clear();
        for (s, &m) in all.iter().zip(&ids) {
            let from = points.len();
            points.extend((a..b).map(|t| RawPoint { t, value: Some(s.value(t)), anomalous: s.anomalous(t) }));
            runs.push((m, 1, from..points.len()));
        }
        let o = st.store.write_batch(&points, &runs).expect("store write");
        assert_eq!(o.late, 0, "samples before {b} were late");
        written += o.written;
        if (b - first) % 14_400 == 0 {
            eprintln!(
                "setup: {:>2} h of {} h written ({written} samples, {:.1} s, {})",
                (b - first) / 3600,
                HISTORY / 3600,
                start.elapsed().as_secs_f64(),
                rss()
            );
        }
        a = b;
    }
    st.store.seal_pending().expect("seal");
    drop(st);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "setup: {written} samples in {secs:.1} s ({:.1} M samples/s write), {}",
        written as f64 / secs / 1e6,
        rss()
    );
    engine
}

fn request(body: serde_json::Value) -> QueryRequest {
    parse_body(ApiVersion::V3, &body).expect("valid bench request")
}

/// Body of a 300-point query ending at NOW; `tier: None` lets the planner choose.
fn body(secs: i64, tier: Option<usize>, group_by: &str, aggregation: &str, time_group: &str) -> serde_json::Value {
    let mut window = json!({"after": NOW - secs + 1, "before": NOW, "points": 300});
    if let Some(t) = tier {
        window["tier"] = json!(t);
    }
    json!({
        "window": window,
        "aggregations": {
            "metrics": [{"group_by": [group_by], "aggregation": aggregation}],
            "time": {"time_group": time_group}
        }
    })
}

/// Checks once that a query does real work: the expected rows, all filled.
fn check(engine: &Engine, name: &str, req: &QueryRequest, series: usize) {
    let t = Instant::now();
    let r = engine.query(req).expect("bench query runs");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(r.window.points, 300, "{name}: rows");
    assert_eq!(r.series.len(), series, "{name}: series");
    for s in &r.series {
        assert_eq!(s.values.len(), 300, "{name}: values per series");
        assert!(s.flags.iter().all(|f| f & PA_EMPTY == 0), "{name}: every point has data");
        assert!(s.values.iter().all(|v| v.is_finite()), "{name}: finite values");
    }
    eprintln!(
        "check: {name}: {} series x {} points, chosen tier {}, view_every {} s, points per tier {:?}, first run {ms:.0} ms",
        r.series.len(),
        r.window.points,
        r.chosen_tier,
        r.window.view_every,
        r.tier_use.points
    );
}

/// CPU seconds this process has used (user + system), from /proc (Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// With `STRATA_BENCH_CPU=N`: each query N times, reporting CPU time per run
/// (robust on a busy machine, where wall time is not).
fn cpu_report(engine: &Engine, name: &str, req: &QueryRequest) {
    let Some(n) = std::env::var("STRATA_BENCH_CPU").ok().and_then(|v| v.parse::<u32>().ok()) else { return };
    let (c0, t0) = (cpu_secs(), Instant::now());
    for _ in 0..n {
        black_box(engine.query(req).expect("query"));
    }
    let (cpu, wall) = (cpu_secs() - c0, t0.elapsed().as_secs_f64());
    eprintln!(
        "cpu: {name}: {:.1} ms CPU per run ({:.1} ms wall), {n} runs",
        cpu * 1e3 / f64::from(n),
        wall * 1e3 / f64::from(n)
    );
}

fn bench_query(c: &mut Criterion) {
    let engine = load();
    let nodes = SPEC.nodes;
    let dims = {
        let mut d: Vec<String> = demo::series(&SPEC).into_iter().map(|s| s.dimension).collect();
        d.sort();
        d.dedup();
        d.len()
    };
    let sum_t0 = request(body(HISTORY, Some(0), "selected", "sum", "average"));
    let sum_auto = request(body(HISTORY, None, "selected", "sum", "average"));
    let dim_t0 = request(body(HISTORY, Some(0), "dimension", "average", "average"));
    let node_1h = request(body(3600, Some(0), "node", "max", "max"));
    // Raw-needing time groups: the planner keeps them on tier 0 by itself.
    let median = request(body(HISTORY, None, "selected", "sum", "median"));
    let p95 = request(body(HISTORY, None, "selected", "sum", "percentile95"));
    check(&engine, "24h_300pts_selected_sum_tier0", &sum_t0, 1);
    check(&engine, "24h_300pts_selected_sum_auto", &sum_auto, 1);
    check(&engine, "24h_300pts_group_by_dimension_tier0", &dim_t0, dims);
    check(&engine, "1h_300pts_node_max_tier0", &node_1h, nodes);
    check(&engine, "24h_300pts_selected_median_auto", &median, 1);
    check(&engine, "24h_300pts_selected_percentile95_auto", &p95, 1);
    if let Ok(only) = std::env::var("STRATA_BENCH_ONLY") {
        // For profilers: loop one query for 20 s and stop.
        let req = if only == "auto" { &sum_auto } else { &sum_t0 };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            black_box(engine.query(req).expect("query"));
        }
        std::process::exit(0);
    }
    for (name, req) in [
        ("24h_300pts_selected_sum_tier0", &sum_t0),
        ("24h_300pts_selected_sum_auto", &sum_auto),
        ("24h_300pts_group_by_dimension_tier0", &dim_t0),
        ("1h_300pts_node_max_tier0", &node_1h),
    ] {
        cpu_report(&engine, name, req);
    }

    let mut g = c.benchmark_group("query");
    g.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    let mut run = |name: &str, elements: u64, req: &QueryRequest| {
        g.throughput(Throughput::Elements(elements));
        g.bench_function(name, |b| b.iter(|| black_box(engine.query(black_box(req)).expect("query"))));
    };
    let tier0_samples = METRICS * HISTORY as u64;
    run("24h_300pts_selected_sum_tier0", tier0_samples, &sum_t0);
    run("24h_300pts_selected_sum_auto", METRICS * 1440, &sum_auto);
    run("24h_300pts_group_by_dimension_tier0", tier0_samples, &dim_t0);
    run("1h_300pts_node_max_tier0", METRICS * 3600, &node_1h);
    run("24h_300pts_selected_median_auto", tier0_samples, &median);
    run("24h_300pts_selected_percentile95_auto", tier0_samples, &p95);
    g.finish();
}

criterion_group!(benches, bench_query);
criterion_main!(benches);
