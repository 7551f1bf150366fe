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
    /// CPU time (user and system) the engine's process used during the
    /// load, when it runs as a server this harness watches.
    pub server_cpu_secs: Option<f64>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.samples as f64 / self.secs.max(1e-9)
    }

    /// The engine's CPU seconds per million samples loaded: what a load
    /// costs it, whatever else the machine runs meanwhile (on a shared host
    /// a steadier figure than the rate).
    pub fn cpu_per_million(&self) -> Option<f64> {
        self.server_cpu_secs.map(|s| s * 1e6 / self.samples.max(1) as f64)
    }
}

/// CPU seconds (user and system, every thread) process `pid` has used, from
/// `/proc/<pid>/stat` (Linux; in USER_HZ ticks, 100 per second).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn stat_cpu_secs(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
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
    server_pid: u32,
) -> Result<LoadResult, String> {
    let cpu_before = cpu_secs(server_pid);
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
    let server_cpu_secs = cpu_before.zip(cpu_secs(server_pid)).map(|(a, b)| b - a);
    Ok(LoadResult { samples, secs, bytes, rejected_late: late.into_inner(), server_cpu_secs })
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
    Ok(LoadResult { samples: d.samples(), secs, bytes, rejected_late: 0, server_cpu_secs: None })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let line = "4242 (strata (a) b) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0 100 200 300";
        assert_eq!(stat_cpu_secs(line), Some(3.25));
        assert_eq!(stat_cpu_secs("4242 (short) S 1"), None);
        // This process: the figure grows with the CPU it spends.
        let pid = std::process::id();
        let before = cpu_secs(pid).expect("own stat");
        let start = Instant::now();
        let mut x = 0u64;
        while cpu_secs(pid).expect("own stat") < before + 0.05 {
            x = (0..100_000u64).fold(x, |a, k| a.wrapping_mul(31).wrapping_add(k));
            assert!(start.elapsed() < Duration::from_secs(30), "no CPU time counted ({x})");
        }
    }
}
