//! Nezha's server-metrics history (`/api/v1/server/{id}/metrics`) as
//! ordinary data queries. One table ([`METRICS`]) maps each Nezha metric
//! name to a context, a dimension pattern, how the matching series combine
//! and the factor that turns Netdata units into Nezha's; [`request`] builds
//! the [`QueryRequest`] for one node and period, and [`points`] turns its
//! answer into Nezha's `data_points`.
//!
//! Windows follow Nezha's periods: `1d` is 2880 points of 30 s, `7d` 336
//! of 30 min, `30d` 360 of 2 h, ending at the last whole step before now.
//! The tier is chosen by the query planner's usual rule (tier 0 while it
//! holds the data, whole per-minute / per-hour rollups inside coarser
//! buckets), so `1d` reads tiers 0/1 and `7d`/`30d` mostly tiers 1/2.
//! Buckets without data are left out, as Nezha does; a point's `ts` is the
//! start of its bucket in milliseconds.

use crate::error::{EngineError, Result};
use crate::index::SimplePattern;
use crate::query::request::{Aggregation, ApiVersion, GroupByKey, GroupByPass, QueryRequest};
use crate::query::result::{QueryResult, PA_EMPTY};
use crate::query::time_group::TimeGroup;

/// A Nezha history period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// `1d` (also empty), `7d`, `30d`.
    pub fn parse(s: &str) -> Result<Period> {
        match s {
            "" | "1d" => Ok(Period::Day),
            "7d" => Ok(Period::Week),
            "30d" => Ok(Period::Month),
            other => Err(EngineError::param("period", format!("invalid period: {other}, expected 1d, 7d, or 30d"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "1d",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Period::Day => 86_400,
            Period::Week => 7 * 86_400,
            Period::Month => 30 * 86_400,
        }
    }

    /// Seconds per point.
    pub fn step(self) -> i64 {
        match self {
            Period::Day => 30,
            Period::Week => 1800,
            Period::Month => 7200,
        }
    }

    /// `[after, before]` (absolute) for a request made at `now`.
    pub fn window(self, now: i64) -> (i64, i64) {
        let before = now.div_euclid(self.step()) * self.step();
        (before - self.secs() + 1, before)
    }
}

/// How one Nezha metric is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    /// Nezha's name (`metric=`).
    pub metric: &'static str,
    /// Context id pattern (words separated by spaces).
    pub contexts: &'static str,
    /// Dimension pattern.
    pub dimensions: &'static str,
    /// How the matching series (instances, dimensions) combine.
    pub aggregation: Aggregation,
    /// Time group inside a bucket.
    pub time_group: &'static str,
    /// Nezha value = strata value x factor.
    pub factor: f64,
    /// Values are made non-negative (Netdata draws `sent` negative).
    pub absolute: bool,
    /// Nezha keeps a counter here; strata keeps a rate, so the answer is the
    /// running total over the period (rate x bucket seconds, summed).
    pub cumulative: bool,
}

const fn m(
    metric: &'static str,
    contexts: &'static str,
    dimensions: &'static str,
    aggregation: Aggregation,
    factor: f64,
) -> Mapping {
    Mapping {
        metric,
        contexts,
        dimensions,
        aggregation,
        time_group: "average",
        factor,
        absolute: false,
        cumulative: false,
    }
}

const MIB: f64 = 1_048_576.0;
const GIB: f64 = 1_073_741_824.0;
/// kilobits/s -> bytes/s.
const KBIT: f64 = 125.0;

/// The mapping table (docs/nezha.md shows it to users).
pub const METRICS: [Mapping; 16] = [
    // Netdata's system.cpu has no idle dimension: the sum is the busy share.
    m("cpu", "system.cpu", "*", Aggregation::Sum, 1.0),
    m("memory", "system.ram", "used", Aggregation::Sum, MIB),
    m("swap", "mem.swap system.swap", "used", Aggregation::Sum, MIB),
    m("disk", "disk.space", "used", Aggregation::Sum, GIB),
    m("net_in_speed", "net.net", "received", Aggregation::Sum, KBIT),
    Mapping { absolute: true, ..m("net_out_speed", "net.net", "sent", Aggregation::Sum, KBIT) },
    Mapping { cumulative: true, ..m("net_in_transfer", "net.net", "received", Aggregation::Sum, KBIT) },
    Mapping { absolute: true, cumulative: true, ..m("net_out_transfer", "net.net", "sent", Aggregation::Sum, KBIT) },
    m("load1", "system.load", "load1", Aggregation::Sum, 1.0),
    m("load5", "system.load", "load5", Aggregation::Sum, 1.0),
    m("load15", "system.load", "load15", Aggregation::Sum, 1.0),
    m("tcp_conn", "ipv4.tcpsock", "connections", Aggregation::Sum, 1.0),
    m("udp_conn", "ipv4.sockstat_udp_sockets", "inuse", Aggregation::Sum, 1.0),
    m("process_count", "system.active_processes", "active", Aggregation::Sum, 1.0),
    m("temperature", "sensors.temperature sensors.sensor_temperature", "*", Aggregation::Max, 1.0),
    Mapping { time_group: "max", ..m("uptime", "system.uptime", "uptime", Aggregation::Max, 1.0) },
];

/// The row of `metric`.
pub fn mapping(metric: &str) -> Result<&'static Mapping> {
    METRICS.iter().find(|x| x.metric == metric).ok_or_else(|| {
        let names: Vec<&str> = METRICS.iter().map(|x| x.metric).collect();
        EngineError::param("metric", format!("invalid metric name '{metric}' (one of {})", names.join(", ")))
    })
}

fn pattern(param: &str, words: &[&str]) -> Result<SimplePattern> {
    SimplePattern::parse_list(words).map_err(|e| EngineError::param(param, e.to_string()))
}

/// The data query answering `map` for node `node_id` over `period`.
pub fn request(map: &Mapping, period: Period, node_id: &str, now: i64) -> Result<QueryRequest> {
    let (after, before) = period.window(now);
    let mut req = QueryRequest::new(ApiVersion::V3);
    // The server's own id, matched as it is and against ids alone (as
    // allowlists are): `nz*` must not take in `nz-other`, nor a node whose
    // hostname someone chose to equal this id. The caller has checked the
    // server against the token's own allowlist.
    req.allowed_nodes = Some(SimplePattern::exact(node_id));
    req.scope.contexts = Some(pattern("metric", &map.contexts.split(' ').collect::<Vec<_>>())?);
    req.selectors.dimensions = Some(pattern("metric", &[map.dimensions])?);
    req.after = after;
    req.before = before;
    req.points = (period.secs() / period.step()) as u64;
    req.time_group = TimeGroup::parse(map.time_group, "metric")?;
    req.passes =
        vec![GroupByPass { keys: vec![GroupByKey::Selected], labels: Vec::new(), aggregation: map.aggregation }];
    req.options.absolute = map.absolute;
    req.finish();
    Ok(req)
}

/// Nezha's `data_points` (`(ts in ms, value)`) of an answer to [`request`]:
/// empty buckets left out, each `ts` the start of its bucket.
pub fn points(result: &QueryResult, map: &Mapping) -> Vec<(i64, f64)> {
    let Some(s) = result.series.first() else { return Vec::new() };
    let w = &result.window;
    let step = w.view_every.max(1);
    let mut total = 0.0;
    let mut out = Vec::new();
    for (i, (&v, &f)) in s.values.iter().zip(&s.flags).enumerate() {
        if f & PA_EMPTY != 0 {
            continue;
        }
        let end = w.after - 1 + (i as i64 + 1) * step;
        let value = if map.cumulative {
            total += v * step as f64 * map.factor;
            total
        } else {
            v * map.factor
        };
        out.push(((end - step) * 1000, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_windows() {
        assert_eq!(Period::parse("").expect("default"), Period::Day);
        assert!(Period::parse("2d").is_err());
        let (a, b) = Period::Day.window(1_800_000_017);
        assert_eq!((b % 30, b - a + 1), (0, 86_400));
        assert_eq!(Period::Month.secs() / Period::Month.step(), 360);
        assert_eq!(Period::Week.secs() / Period::Week.step(), 336);
    }

    #[test]
    fn every_row_builds_a_query() {
        assert_eq!(METRICS.len(), 16);
        for map in &METRICS {
            let req = request(map, Period::Week, "web-1", 1_800_000_000).expect("request");
            assert_eq!(req.points, 336, "{}", map.metric);
            assert_eq!(mapping(map.metric).expect("found").metric, map.metric);
        }
        assert!(mapping("gpu").is_err());
    }

    #[test]
    fn a_server_id_is_matched_as_it_is_not_as_a_pattern() {
        let req = request(&METRICS[0], Period::Day, "nz*", 1_800_000_000).expect("request");
        assert!(req.scope.nodes.is_none(), "not by hostname: by id alone");
        let nodes = req.allowed_nodes.expect("scoped to the server");
        assert!(nodes.matches("nz*"));
        assert!(!nodes.matches("nz-other"), "a `*` in an id is no wildcard");
        let req = request(&METRICS[0], Period::Day, "a|b !c", 1_800_000_000).expect("request");
        let nodes = req.allowed_nodes.expect("scoped to the server");
        assert!(nodes.matches("a|b !c") && !nodes.matches("a") && !nodes.matches("b"));
    }
}
