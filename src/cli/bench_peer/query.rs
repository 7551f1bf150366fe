//! Running one workload on one engine: the request each engine gets, the
//! timing loop (one warm-up whose answer is kept for the comparison, then
//! timed runs), and the parsing of its answer.

use std::time::{Duration, Instant};

use super::http;
use super::workloads::{parse_prom, parse_strata, Answer, Workload};

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

    /// One request: wall time and the raw answer.
    pub fn send(&self, agent: &ureq::Agent, w: &Workload) -> Result<(Duration, Vec<u8>), String> {
        match self.kind {
            Kind::Strata => {
                let auth = format!("Bearer {}", self.token.as_deref().unwrap_or_default());
                let body = serde_json::to_vec(&w.strata).map_err(|e| format!("encoding a query: {e}"))?;
                let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
                let (b, took) = http::send_ok(agent, &format!("{}/api/v3/data", self.base), &headers, Some(&body))?;
                Ok((took, b))
            }
            Kind::VictoriaMetrics | Kind::Prometheus => {
                // VictoriaMetrics caches range results; every run must compute.
                let nocache = if self.kind == Kind::VictoriaMetrics { "&nocache=1" } else { "" };
                let url = format!("{}/api/v1/query_range?{}{nocache}", self.base, w.range_params(self.closed()));
                let (b, took) = http::send_ok(agent, &url, &[], None)?;
                Ok((took, b))
            }
        }
    }

    pub fn parse(&self, body: &[u8], w: &Workload) -> Result<Answer, String> {
        match self.kind {
            Kind::Strata => parse_strata(body),
            _ => parse_prom(body, w.keys),
        }
    }

    /// A warm-up run (its answer is returned) then up to `runs` timed runs,
    /// stopping early (after at least 2) once `budget` is spent.
    pub fn time(&self, w: &Workload, runs: usize, budget: Duration) -> Result<(Timing, Answer), String> {
        let agent = http::agent(Duration::from_secs(900));
        let (_, body) = self.send(&agent, w)?;
        let answer = self.parse(&body, w)?;
        let start = Instant::now();
        let mut v = Vec::new();
        while v.len() < runs && (v.len() < 2 || start.elapsed() < budget) {
            v.push(self.send(&agent, w)?.0);
        }
        Ok((Timing::of(v), answer))
    }
}
