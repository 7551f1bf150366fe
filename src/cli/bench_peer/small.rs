//! The small-query test: one series, 10 min, 60 points, over HTTP with
//! keep-alive. Latency percentiles at concurrency 1, then requests per
//! second at concurrency 16 (one client thread each), each for a fixed time.
//! The client is [`Conn`], a lean keep-alive client, so that on a shared
//! machine the client takes little CPU from the engine it measures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::query::Target;
use super::raw_http::Conn;
use super::workloads::Workload;

#[derive(Debug, Clone, Copy, Default)]
pub struct SmallResult {
    pub p50: Duration,
    pub p99: Duration,
    pub rps_16: f64,
    pub errors: u64,
}

/// One request on `c`, failing on a non-2xx answer.
fn once(c: &mut Conn, body: &mut Vec<u8>) -> Result<Duration, String> {
    let (status, took) = c.send(body)?;
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
        return Err(format!("the small query answered {status}: {text}"));
    }
    Ok(took)
}

pub fn run(t: &Target, w: &Workload, secs: f64) -> Result<SmallResult, String> {
    let req = t.request(w)?;
    let timeout = Duration::from_secs(30);
    let mut conn = Conn::new(&t.base, &req, timeout)?;
    let mut body = Vec::new();
    once(&mut conn, &mut body)?;
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs && lat.len() < 100_000 {
        lat.push(once(&mut conn, &mut body)?);
    }
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default();
    let (ok, errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let Ok(mut conn) = Conn::new(&t.base, &req, timeout) else { return };
                let mut body = Vec::new();
                while start.elapsed().as_secs_f64() < secs {
                    match once(&mut conn, &mut body) {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    let rps_16 = ok.into_inner() as f64 / start.elapsed().as_secs_f64();
    Ok(SmallResult { p50: pct(0.5), p99: pct(0.99), rps_16, errors: errors.into_inner() })
}
