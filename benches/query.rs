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
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use strata_engine::demo;
use strata_engine::query::body::parse_body;
use strata_engine::query::request::QueryRequest;
use strata_engine::query::result::PA_EMPTY;
use strata_engine::query::ApiVersion;
use strata_engine::Engine;

#[path = "common/mod.rs"]
mod common;
use common::{cpu_secs, load, HISTORY, METRICS, NOW, SPEC};

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

/// With `STRATA_BENCH_CPU=N`: each query N times, reporting CPU time per run
/// (robust on a busy machine, where wall time is not) and where the wall
/// time goes: selection, plan and store view (`prep`), the scan and
/// grouping (`scan`), and the rest (result, releasing the view).
/// `STRATA_BENCH_CPU_MATCH=text` reports only the queries whose name holds it.
fn cpu_report(engine: &Engine, name: &str, req: &QueryRequest) {
    let Some(n) = std::env::var("STRATA_BENCH_CPU").ok().and_then(|v| v.parse::<u32>().ok()) else { return };
    if std::env::var("STRATA_BENCH_CPU_MATCH").is_ok_and(|m| !name.contains(&m)) {
        return;
    }
    let (c0, t0) = (cpu_secs(), Instant::now());
    let (mut prep, mut scan) = (0.0, 0.0);
    for _ in 0..n {
        let r = black_box(engine.query(req).expect("query"));
        (prep, scan) = (prep + r.prep_ms, scan + r.query_ms);
    }
    let (cpu, wall) = (cpu_secs() - c0, t0.elapsed().as_secs_f64());
    let per = |x: f64| x / f64::from(n);
    eprintln!(
        "cpu: {name}: {:.3} ms CPU per run ({:.3} ms wall: prep {:.3}, scan {:.3}, rest {:.3}), {n} runs",
        per(cpu * 1e3),
        per(wall * 1e3),
        per(prep),
        per(scan),
        per(wall * 1e3 - prep - scan)
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
    // Tier 1 alone: what the automatic tier cost when it answered from
    // rollups only (approximately), the baseline of the 2x speed rule.
    let sum_t1 = request(body(HISTORY, Some(1), "selected", "sum", "average"));
    let dim_t0 = request(body(HISTORY, Some(0), "dimension", "average", "average"));
    let node_1h = request(body(3600, Some(0), "node", "max", "max"));
    // Raw-needing time groups: the planner keeps them on tier 0 by itself.
    let median = request(body(HISTORY, None, "selected", "sum", "median"));
    let p95 = request(body(HISTORY, None, "selected", "sum", "percentile95"));
    // One metric among the 1,000: the per-query costs (selection, plan, view, runs).
    let one = demo::series(&SPEC).into_iter().next().expect("a demo series");
    let mut one_body = body(HISTORY, None, "selected", "average", "average");
    one_body["scope"] = json!({"nodes": [one.node], "contexts": [one.context], "instances": [one.instance], "dimensions": [one.dimension]});
    let one_auto = request(one_body);
    // Wide buckets (864 s): the automatic layout takes whole minutes, and
    // tier 0 only at the ragged ends.
    let mut wide_auto = body(HISTORY, None, "selected", "sum", "average");
    wide_auto["window"]["points"] = json!(100);
    let wide_auto = request(wide_auto);
    // bench-peer's (b): the last hour in minute buckets, from the open head.
    let mut last_hour = body(3600, None, "selected", "average", "average");
    last_hour["window"]["points"] = json!(60);
    let last_hour = request(last_hour);
    check(&engine, "24h_300pts_selected_sum_tier0", &sum_t0, 1);
    check(&engine, "24h_300pts_selected_sum_auto", &sum_auto, 1);
    check(&engine, "24h_300pts_group_by_dimension_tier0", &dim_t0, dims);
    check(&engine, "1h_300pts_node_max_tier0", &node_1h, nodes);
    check(&engine, "24h_300pts_selected_median_auto", &median, 1);
    check(&engine, "24h_300pts_selected_percentile95_auto", &p95, 1);
    check(&engine, "24h_300pts_one_metric_auto", &one_auto, 1);
    if let Ok(only) = std::env::var("STRATA_BENCH_ONLY") {
        // For profilers: loop one query (`auto`, `median`, `one`, `hour`, `tier1`, `wide`, else tier 0) for 20 s and stop.
        let req = match only.as_str() {
            "auto" => &sum_auto,
            "median" => &median,
            "one" => &one_auto,
            "hour" => &last_hour,
            "tier1" => &sum_t1,
            "wide" => &wide_auto,
            _ => &sum_t0,
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            black_box(engine.query(req).expect("query"));
        }
        std::process::exit(0);
    }
    for (name, req) in [
        ("24h_300pts_selected_sum_tier0", &sum_t0),
        ("24h_300pts_selected_sum_auto", &sum_auto),
        ("24h_300pts_selected_sum_tier1", &sum_t1),
        ("24h_300pts_group_by_dimension_tier0", &dim_t0),
        ("1h_300pts_node_max_tier0", &node_1h),
        ("24h_300pts_selected_median_auto", &median),
        ("24h_300pts_one_metric_auto", &one_auto),
        ("1h_60pts_selected_average_auto", &last_hour),
        ("24h_100pts_selected_sum_auto", &wide_auto),
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
