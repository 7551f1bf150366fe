//! Loading the dataset: pre-encoded bodies posted in time order by a few
//! threads (the same concurrency for every engine), and the Prometheus
//! backfill through promtool. Encoding happens before the clock starts, so
//! the rate is the engine's, not the harness's JSON writer's.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::dataset::Dataset;
use super::http;

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadResult {
    pub samples: u64,
    pub secs: f64,
    pub bytes: u64,
    /// strata only: points the server refused as late (should be 0).
    pub rejected_late: u64,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.samples as f64 / self.secs.max(1e-9)
    }
}

/// Encodes every load batch with `enc`, in order.
pub fn encode_all(
    d: &Dataset,
    what: &str,
    enc: impl Fn(i64, i64, std::ops::Range<usize>) -> Result<Vec<u8>, String>,
) -> Result<Vec<Vec<u8>>, String> {
    let chunks = d.chunks();
    eprintln!("bench-peer: encoding {} {what} batches", chunks.len());
    chunks.into_iter().map(|(a, b, s)| enc(a, b, s)).collect()
}

/// Posts `bodies` to `url` with `clients` threads taking them in order.
/// Every answer must be 2xx; strata's `rejected_late` is summed.
pub fn post_all(
    label: &str,
    url: &str,
    headers: &[(&str, &str)],
    bodies: &[Vec<u8>],
    samples: u64,
    clients: usize,
) -> Result<LoadResult, String> {
    let next = AtomicUsize::new(0);
    let late = AtomicU64::new(0);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    let agent = http::agent(Duration::from_secs(600));
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(body) = bodies.get(i) else { return Ok(()) };
                        let (resp, _) = http::send_ok(&agent, url, headers, Some(body))?;
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp) {
                            late.fetch_add(v["rejected_late"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_multiple_of((bodies.len() / 10).max(1)) {
                            eprintln!("bench-peer: {label}: {n}/{} batches", bodies.len());
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("a load thread panicked".into()))).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let bytes = bodies.iter().map(|b| b.len() as u64).sum();
    Ok(LoadResult { samples, secs, bytes, rejected_late: late.into_inner() })
}

/// Writes the OpenMetrics file and runs `promtool tsdb create-blocks-from
/// openmetrics` into `tsdb`. Only promtool's run is timed.
pub fn backfill_prometheus(
    d: &Dataset,
    promtool: &Path,
    root: &Path,
    tsdb: &Path,
    watch: impl FnOnce(u32),
) -> Result<LoadResult, String> {
    let om = root.join("dataset.om");
    eprintln!("bench-peer: writing {} (OpenMetrics text for promtool)", om.display());
    let f = std::fs::File::create(&om).map_err(|e| format!("creating {}: {e}", om.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    d.write_openmetrics(&mut w).map_err(|e| format!("writing {}: {e}", om.display()))?;
    std::io::Write::flush(&mut w).map_err(|e| format!("writing {}: {e}", om.display()))?;
    drop(w);
    let bytes = std::fs::metadata(&om).map(|m| m.len()).unwrap_or(0);
    eprintln!("bench-peer: promtool backfill ({} MB of text)", bytes / 1_000_000);
    let start = Instant::now();
    let mut cmd = Command::new(promtool);
    // 54h is promtool's block size just above a day: one pass over the file.
    cmd.args(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=54h"]).arg(&om).arg(tsdb);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    super::engines::run_tool(&mut cmd, "promtool", watch)?;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&om);
    Ok(LoadResult { samples: d.samples(), secs, bytes, rejected_late: 0 })
}

/// Bytes of every file under `dir` (apparent sizes).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
