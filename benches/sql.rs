//! strata SQL against the JSON API on the peer dataset (1,000 series x
//! 24 h x 1 s = 86.4 M samples, in memory; see `common`), for the two
//! shapes of the SQL issue, 300 buckets of 288 s:
//!
//! - (a) per-bucket average across the 1,000 series;
//! - (d) per-bucket median per series, averaged across the series.
//!
//! Each shape runs as the JSON API request (`Engine::query`), as strata
//! SQL with the `nd_*` functions (pushed into the engine's planner: rollups
//! where exact, kernels), and as plain DataFusion over strata's `samples`
//! table (the same statement with the pushdown off), after checking once
//! that SQL and JSON agree bucket by bucket. Reports min and median wall
//! time and CPU time per run (the machine is shared: CPU time is the
//! steadier number). `cargo bench --features sql --bench sql`;
//! `STRATA_BENCH_RUNS=N` (default 7).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use strata_engine::query::body::parse_body;
use strata_engine::query::result::PA_EMPTY;
use strata_engine::query::ApiVersion;
use strata_sql::datafusion::arrow::array::{Array, AsArray};
use strata_sql::datafusion::arrow::datatypes::{Float64Type, TimestampNanosecondType};
use strata_sql::{SqlEngine, SqlLimits};

#[path = "common/mod.rs"]
mod common;
use common::{cpu_secs, load, HISTORY, NOW};

const POINTS: i64 = 300;

/// Per series `f` per bucket, averaged across the series. The input is
/// `abs(value)`: the JSON API groups across dimensions on absolute values
/// (v2/v3), and the demo data has signed metrics (e.g. `net.net` sent).
fn sql_text(f: &str) -> String {
    let step = HISTORY / POINTS;
    format!(
        "SELECT b, avg(v) AS v FROM (SELECT metric_id, nd_bucket({step}, ts) AS b, {f}(abs(value)) AS v FROM samples \
         WHERE ts > to_timestamp_seconds({}) AND ts <= to_timestamp_seconds({NOW}) GROUP BY metric_id, b) \
         GROUP BY b ORDER BY b",
        NOW - HISTORY
    )
}

/// Min, median wall ms and mean CPU ms of `runs` runs of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let c0 = cpu_secs();
    let mut wall: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = (cpu_secs() - c0) * 1e3 / runs as f64;
    wall.sort_by(f64::total_cmp);
    (wall[0], wall[runs / 2], cpu)
}

fn main() {
    let runs: usize = std::env::var("STRATA_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7).max(1);
    let engine = Arc::new(load());
    let mut sql =
        SqlEngine::new(engine.clone(), SqlLimits { max_rows: 10_000_000, ..SqlLimits::default() }).expect("sql engine");
    println!("| shape | path | min ms | median ms | CPU ms/run |");
    println!("|---|---|---|---|---|");
    for (shape, tg, f) in
        [("(a) per-bucket average", "average", "nd_average"), ("(d) per-bucket median", "median", "nd_median")]
    {
        let body = json!({
            "window": {"after": NOW - HISTORY + 1, "before": NOW, "points": POINTS},
            "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": "average"}], "time": {"time_group": tg}},
        });
        let req = parse_body(ApiVersion::V3, &body).expect("request");
        let q = sql_text(f);
        // Equal answers first.
        let r = engine.query(&req).expect("json query");
        let s = &r.series[0];
        let want: BTreeMap<i64, f64> = (0..s.values.len())
            .filter(|&i| s.flags[i] & PA_EMPTY == 0)
            .map(|i| (r.window.bucket_end(i), s.values[i]))
            .collect();
        sql.pushdown = true;
        let a = sql.run_blocking(&q, None).expect("sql");
        let mut got = BTreeMap::new();
        for b in &a.batches {
            let (t, v) =
                (b.column(0).as_primitive::<TimestampNanosecondType>(), b.column(1).as_primitive::<Float64Type>());
            for i in 0..b.num_rows() {
                if v.is_valid(i) {
                    got.insert(t.value(i) / 1_000_000_000, v.value(i));
                }
            }
        }
        assert_eq!(got.len(), want.len(), "{shape}: buckets");
        for (k, w) in &want {
            let g = got[k];
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{shape} at {k}: SQL {g} vs JSON {w}");
        }
        let (mn, md, cpu) = time(runs, || {
            black_box(engine.query(&req).expect("json"));
        });
        println!("| {shape} | JSON API (`Engine::query`, time_group={tg}, group_by=selected, average) | {mn:.0} | {md:.0} | {cpu:.0} |");
        let (mn, md, cpu) = time(runs, || {
            black_box(sql.run_blocking(&q, None).expect("sql"));
        });
        println!("| {shape} | strata SQL, {f} (engine pushdown) | {mn:.0} | {md:.0} | {cpu:.0} |");
        sql.pushdown = false;
        let (mn, md, cpu) = time(runs.min(3), || {
            black_box(sql.run_blocking(&q, None).expect("sql"));
        });
        println!("| {shape} | strata SQL, {f}, pushdown off (plain DataFusion over `samples`) | {mn:.0} | {md:.0} | {cpu:.0} |");
        let flat = format!(
            "SELECT nd_bucket({}, ts) AS b, avg(abs(value)) FROM samples WHERE ts > to_timestamp_seconds({}) GROUP BY b",
            HISTORY / POINTS,
            NOW - HISTORY
        );
        if tg == "average" {
            let (mn, md, cpu) = time(runs.min(3), || {
                black_box(sql.run_blocking(&flat, None).expect("sql"));
            });
            println!("| {shape} | plain DataFusion `avg(abs(value))` over `samples`, one GROUP BY bucket | {mn:.0} | {md:.0} | {cpu:.0} |");
        }
    }
}
