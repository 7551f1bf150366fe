//! Running one workload on one engine: the request each engine gets, the
//! timing loop (one warm-up whose answer is kept for the comparison, then
//! timed runs), and the parsing of its answer.

use std::time::{Duration, Instant};

use super::raw_http::Conn;
use super::workloads::{parse_prom, parse_strata, Answer, Workload};

/// Wall time the timed runs of a fast workload add up to at least.
pub const MIN_TIMED: Duration = Duration::from_millis(500);
/// Fast workloads run at most this many times `--runs`.
pub const MAX_RUNS_FACTOR: usize = 20;

/// Whether `done` timed runs that took `spent` in all are enough (see
/// [`Target::time`]).
fn done_timing(done: usize, runs: usize, spent: Duration, budget: Duration) -> bool {
    let enough = done >= runs && (spent >= MIN_TIMED || done >= runs * MAX_RUNS_FACTOR);
    enough || (done >= 2 && spent >= budget)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Strata,
    VictoriaMetrics,
    Prometheus,
}

/// A queryable engine.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub base: String,
    pub token: Option<String>,
}

/// One engine's request for a workload: POST with a body, else GET.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// min and median of the timed runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub min: Duration,
    pub median: Duration,
    pub runs: usize,
}

impl Timing {
    pub fn of(mut v: Vec<Duration>) -> Timing {
        v.sort();
        let median = v.get(v.len() / 2).copied().unwrap_or_default();
        Timing { min: v.first().copied().unwrap_or_default(), median, runs: v.len() }
    }
}

impl Target {
    pub fn of(p: &super::engines::Proc, kind: Kind) -> Target {
        Target { name: p.name, kind, base: p.base.clone(), token: p.token.clone() }
    }

    /// Prometheus 2.x range selectors are closed on both ends.
    fn closed(&self) -> bool {
        self.kind == Kind::Prometheus
    }

    /// The exact request text (for the README and `--verbose` output).
    pub fn describe(&self, w: &Workload) -> String {
        match self.kind {
            Kind::Strata => format!("POST /api/v3/data {}", w.strata),
            _ => format!("GET /api/v1/query_range?{}", w.range_params(self.closed())),
        }
    }

    /// The request for `w`: its path (and query) and, for strata, the
    /// body and headers. Built once per workload, sent many times.
    pub fn request(&self, w: &Workload) -> Result<Request, String> {
        match self.kind {
            Kind::Strata => {
                let auth = format!("Bearer {}", self.token.as_deref().unwrap_or_default());
                let body = serde_json::to_vec(&w.strata).map_err(|e| format!("encoding a query: {e}"))?;
                let headers = vec![("Authorization".into(), auth), ("Content-Type".into(), "application/json".into())];
                Ok(Request { path: "/api/v3/data".into(), headers, body: Some(body) })
            }
            Kind::VictoriaMetrics | Kind::Prometheus => {
                // VictoriaMetrics caches range results; every run must compute.
                let nocache = if self.kind == Kind::VictoriaMetrics { "&nocache=1" } else { "" };
                let path = format!("/api/v1/query_range?{}{nocache}", w.range_params(self.closed()));
                Ok(Request { path, headers: Vec::new(), body: None })
            }
        }
    }

    /// One request on `conn` (built from [`Target::request`]): wall time,
    /// the raw answer in `body`.
    fn send(&self, conn: &mut Conn, body: &mut Vec<u8>) -> Result<Duration, String> {
        let (status, took) = conn.send(body)?;
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
            return Err(format!("{} answered {status}: {text}", self.base));
        }
        Ok(took)
    }

    pub fn parse(&self, body: &[u8], w: &Workload) -> Result<Answer, String> {
        match self.kind {
            Kind::Strata => parse_strata(body),
            _ => parse_prom(body, w.keys),
        }
    }

    /// A warm-up run (its answer is returned) then `runs` timed runs,
    /// stopping early (after at least 2) once `budget` is spent. A workload
    /// answered in milliseconds runs on until the timed runs add up to
    /// [`MIN_TIMED`] (at most [`MAX_RUNS_FACTOR`] x `runs`): five runs of
    /// half a millisecond give a median that follows the host's noise more
    /// than the engine.
    ///
    /// Every engine is timed through the same minimal keep-alive client
    /// ([`Conn`]): the request is encoded once, and the time is the
    /// engine's answer plus loopback TCP, not a general client's request
    /// building and response handling (tens of microseconds a request,
    /// most of a sub-millisecond answer).
    pub fn time(&self, w: &Workload, runs: usize, budget: Duration) -> Result<(Timing, Answer), String> {
        let mut conn = Conn::new(&self.base, &self.request(w)?, Duration::from_secs(900))?;
        let mut body = Vec::new();
        self.send(&mut conn, &mut body)?;
        let answer = self.parse(&body, w)?;
        let start = Instant::now();
        let mut v = Vec::new();
        while !done_timing(v.len(), runs, start.elapsed(), budget) {
            v.push(self.send(&mut conn, &mut body)?);
        }
        Ok((Timing::of(v), answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_workloads_run_more_and_slow_ones_stop_at_the_budget() {
        let (ms, budget) = (Duration::from_millis, Duration::from_secs(30));
        // Fast: past --runs until half a second is spent, at most 20x.
        assert!(!done_timing(5, 5, ms(3), budget));
        assert!(!done_timing(99, 5, ms(60), budget));
        assert!(done_timing(100, 5, ms(60), budget));
        assert!(done_timing(5, 5, ms(500), budget));
        // Never fewer than --runs while the budget lasts.
        assert!(!done_timing(4, 5, ms(20_000), budget));
        // Slow: two runs once the budget is spent.
        assert!(!done_timing(1, 5, ms(40_000), budget));
        assert!(done_timing(2, 5, ms(40_000), budget));
    }
}
