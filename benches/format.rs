//! Response formatting: the json2 document (`format: json2`, what the v2/v3
//! endpoints answer) and the v1 `json` family, written from real query
//! results (1,000 metrics, 1 h of per-second samples; see `common`). The
//! shapes are bench-peer's: one series x 300 points ((c), a dashboard
//! panel) and every series x 300 points ((g)). Reported as bytes/s of
//! response; the query itself runs once, outside the measured loops.
//! The `request` group times the other direction: a Grafana panel's POST
//! body into a request, read straight from the bytes (the server's path)
//! and through a `serde_json::Value` (the lenient path every body took
//! before).
//!
//! `STRATA_BENCH_ONLY=one|every` loops one shape's json2 for 20 s, for
//! profilers.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use strata_engine::query::body::{parse_body, parse_body_json};
use strata_engine::query::result::QueryResult;
use strata_engine::query::ApiVersion;
use strata_engine::Engine;
use strata_server::format::{json2, v1_json};

#[path = "common/mod.rs"]
mod common;
use common::{load_history, NOW};

const HISTORY: i64 = 3_600;

fn result(engine: &Engine, group_by: &[&str], scope: serde_json::Value, format: &str) -> QueryResult {
    let body = json!({
        "scope": scope,
        "window": {"after": NOW - HISTORY + 1, "before": NOW, "points": 300},
        "aggregations": {
            "metrics": [{"group_by": group_by, "aggregation": "average"}],
            "time": {"time_group": "average"}
        },
        "format": format,
        "options": ["minimal-stats"]
    });
    let req = parse_body(ApiVersion::V3, &body).expect("valid bench request");
    let r = engine.query(&req).expect("bench query runs");
    assert_eq!(r.window.points, 300, "rows");
    r
}

fn bench_format(c: &mut Criterion) {
    let engine = load_history(HISTORY);
    let agent = json2::Agent { machine_guid: "00000000-0000-0000-0000-000000000000", hostname: "bench", now: NOW };
    let one_scope = json!({"nodes": ["node-0000"], "contexts": ["system.cpu"], "dimensions": ["user"]});
    let one = result(&engine, &["selected"], one_scope, "json2");
    assert_eq!(one.series.len(), 1, "one series");
    let every = result(&engine, &["node", "instance", "dimension"], json!({}), "json2");
    assert_eq!(every.series.len(), 1_000, "every series");
    let every_v1 = result(&engine, &["node", "instance", "dimension"], json!({}), "json");
    let shapes = [("one", &one), ("every", &every)];

    if let Ok(only) = std::env::var("STRATA_BENCH_ONLY") {
        let r = shapes.iter().find(|(n, _)| *n == only).map_or(&every, |(_, r)| *r);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            black_box(json2::write(black_box(r), &agent, 1.0));
        }
        std::process::exit(0);
    }

    let mut g = c.benchmark_group("format");
    g.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for (name, r) in shapes {
        let bytes = json2::write(r, &agent, 1.0).len() as u64;
        eprintln!("format: json2 {name}: {} series x {} points, {bytes} bytes", r.series.len(), r.window.points);
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("json2_{name}_x300"), |b| {
            b.iter(|| black_box(json2::write(black_box(r), &agent, 1.0)))
        });
    }
    let bytes = v1_json::write(&every_v1, "system.cpu").0.len() as u64;
    eprintln!("format: v1 json (jsonwrap) every: {bytes} bytes");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("v1_json_every_x300", |b| {
        b.iter(|| black_box(v1_json::write(black_box(&every_v1), "system.cpu")))
    });
    g.finish();

    let body = br#"{"format":"json2","options":["jsonwrap","flip","ms","minimal-stats"],
        "scope":{"contexts":["system.cpu"],"nodes":["node-0000"],"instances":["cpu0"],"labels":[]},
        "selectors":{"contexts":["*"],"nodes":["*"],"instances":["*"],"dimensions":["*"],"labels":["*"]},
        "aggregations":{"metrics":[{"group_by":["selected"],"group_by_label":[],"aggregation":"avg"}],
                        "time":{"time_group":"average","time_resampling":0}},
        "window":{"after":1764140000,"before":1764143600,"points":60},"timeout":30000}"#;
    let mut g = c.benchmark_group("request");
    g.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("post_body_strict", |b| {
        b.iter(|| black_box(parse_body_json(ApiVersion::V3, black_box(body)).expect("strict").expect("valid")))
    });
    g.bench_function("post_body_via_value", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(body)).expect("JSON");
            black_box(parse_body(ApiVersion::V3, &v).expect("valid"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_format);
criterion_main!(benches);
