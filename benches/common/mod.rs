//! The dataset of the query benches: 1,000 metrics (10 nodes x 100 demo
//! metrics) with 24 h of per-second samples (86.4 M), written through the
//! store as ingest does (sealed tier-0 hours, an open head, rollups).

#![allow(dead_code)]

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use strata_engine::demo::{self, GenSpec};
use strata_engine::storage::RawPoint;
use strata_engine::{Clock, Engine, EngineConfig};

/// The server's allocator, so a bench measures what `strata serve` runs.
#[path = "../../src/alloc.rs"]
mod alloc;

/// Last sample time; a multiple of 3600 so tier spans and 288 s buckets align.
pub const NOW: i64 = 1_700_006_400;
/// Seconds of history per metric.
pub const HISTORY: i64 = 86_400;
pub const SPEC: GenSpec = GenSpec { nodes: 10, metrics_per_node: 100, seed: 1 };
pub const METRICS: u64 = 1_000;

/// Resident and peak resident memory of this process, from /proc (Linux).
pub fn rss() -> String {
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
pub fn load() -> Engine {
    load_history(HISTORY)
}

/// [`load`] with `history` seconds per metric (ending at [`NOW`]) instead of 24 h.
pub fn load_history(history: i64) -> Engine {
    // The planner treats the current second as still collecting, so the
    // clock sits one second after the newest sample.
    // `STRATA_BENCH_ROLLUP_MIN=N` sets the automatic layout's narrow-bucket
    // threshold (`QueryLimits::rollup_min_bucket_points`), to compare paths.
    let mut cfg = EngineConfig::default();
    if let Some(n) = std::env::var("STRATA_BENCH_ROLLUP_MIN").ok().and_then(|v| v.parse().ok()) {
        cfg.limits.rollup_min_bucket_points = n;
    }
    let engine = Engine::new(cfg, Clock::Fixed(AtomicI64::new(NOW + 1)));
    let all = demo::series(&SPEC);
    assert_eq!(all.len() as u64, METRICS);
    let start = Instant::now();
    let mut st = engine.write().expect("state lock");
    let ids = demo::register(&mut st.catalog, &all);
    let first = NOW - history + 1;
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
        let series: Vec<_> = runs.iter().map(|(m, ue, r)| (*m, *ue, &points[r.clone()])).collect();
        let o = st.store.write_batch(&series, None).expect("store write");
        assert_eq!(o.late, 0, "samples before {b} were late");
        written += o.written;
        if (b - first) % 14_400 == 0 {
            eprintln!(
                "setup: {:>2} h of {} h written ({written} samples, {:.1} s, {})",
                (b - first) / 3600,
                history / 3600,
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

/// CPU seconds this process has used (user + system), from /proc (Linux).
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
