//! The tier rule, end to end through the engine: over random data (gaps,
//! explicit nulls, overwrites, several update_every values, data crossing
//! minute and hour boundaries, an open head) and random windows (buckets
//! that rarely line up with minutes or hours, aligned or not, relative or
//! absolute), every time group answers the same with automatic tiers as
//! with `tier: 0`, and no answer is flagged approximate. Hand-computed
//! cases pin the symptoms that motivated the rule.

use std::sync::atomic::AtomicI64;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::demo::mix;
use crate::engine::{Clock, Engine, EngineConfig};
use crate::ingest::{IngestBatch, Point, SeriesSpec};
use crate::query::body::parse_body;
use crate::query::params::parse_params;
use crate::query::request::ApiVersion;
use crate::query::result::{QueryResult, PA_EMPTY};
use crate::query::time_group::Method;
use crate::storage::AggPoint;

/// A tiny deterministic generator (proptest picks the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0.wrapping_add(0x9E37_79B9_7F4A_7C15));
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A random dataset in an engine; `now` is one second after the newest sample.
struct Dataset {
    engine: Engine,
    first: i64,
    last: i64,
    /// Per series: its dimension, update_every, first sample with a value
    /// and last point (overwrites in the head may only empty slots before it).
    lives: Vec<(String, i64, i64, i64)>,
}

fn dataset(seed: u64) -> Dataset {
    dataset_with(seed, rollups_everywhere())
}

fn dataset_with(seed: u64, cfg: EngineConfig) -> Dataset {
    let mut r = Rng(seed);
    // A random start, so minute and hour boundaries fall anywhere in the data.
    let base = 1_700_000_000 + r.range(0, 7_199);
    let mut series = Vec::new();
    let n = r.range(2, 4);
    let mut last = base;
    for k in 0..n {
        let ue = [1, 1, 2, 5, 10, 15][r.below(6) as usize];
        let start = (base + r.range(0, 1_800)).div_euclid(ue) * ue;
        let len = r.range(600, 9_000) / ue;
        let kind = r.below(4);
        let mut points = Vec::new();
        let mut gap_left = 0;
        for i in 0..len {
            let t = start + i * ue;
            if gap_left > 0 {
                gap_left -= 1;
                continue;
            }
            if r.chance(0.002) {
                gap_left = r.range(1, 400); // a collection outage
                continue;
            }
            let x = (r.below(20_000) as f64) / 100.0;
            let value = match kind {
                0 => Some(x),               // positive, 2 decimals
                1 => Some(x - 100.0),       // both signs
                2 => Some(-(x + 1.0)),      // negative only
                _ => Some((t % 97) as f64), // integers, ties
            };
            let value = if r.chance(0.01) { None } else { value };
            points.push(Point { t, value, anomalous: r.chance(0.1) });
            last = last.max(t);
        }
        series.push(SeriesSpec {
            node: Some(format!("node{}", k % 2)),
            context: "test.ctx".into(),
            instance: Some(format!("inst{}", k % 3)),
            dimension: format!("d{k}"),
            update_every: Some(ue),
            points,
            ..Default::default()
        });
    }
    let lives = series
        .iter()
        .filter_map(|s| {
            let first = s.points.iter().find(|p| p.value.is_some())?.t;
            Some((s.dimension.clone(), s.update_every.unwrap_or(1), first, s.points.last()?.t))
        })
        .collect();
    let now = last + 1;
    let engine = Engine::new(cfg, Clock::Fixed(AtomicI64::new(now)));
    // In time order, a ten-minute slice of every series per batch: nothing is late.
    let first = series.iter().filter_map(|s| s.points.first().map(|p| p.t)).min().unwrap_or(base);
    let mut from = first;
    while from <= last {
        let to = from + 600;
        let batch = IngestBatch {
            nodes: vec![],
            series: series
                .iter()
                .map(|s| SeriesSpec {
                    points: s.points.iter().filter(|p| p.t >= from && p.t < to).cloned().collect(),
                    ..s.clone()
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        };
        engine.ingest(&batch).expect("ingest");
        from = to;
    }
    // Overwrites in the open head (per update_every group): new values,
    // and values turned into gaps.
    let cfg = *engine.read().expect("lock").store.config();
    let mut over = Vec::new();
    for s in &series {
        let ue = s.update_every.unwrap_or(1);
        let newest = series
            .iter()
            .filter(|o| o.update_every == s.update_every)
            .filter_map(|o| o.points.last())
            .map(|p| p.t)
            .max();
        let head = cfg.head_for(newest.unwrap_or(last), ue).max(last - 1_200);
        let mut points = Vec::new();
        for p in s.points.iter().filter(|p| p.t >= head) {
            if r.chance(0.05) {
                let value = if r.chance(0.3) { None } else { Some((r.below(1000) as f64) - 300.0) };
                points.push(Point { t: p.t, value, anomalous: r.chance(0.5) });
            }
        }
        if !points.is_empty() {
            over.push(SeriesSpec { points, ..s.clone() });
        }
    }
    let overwrites = IngestBatch { nodes: vec![], series: over };
    if !overwrites.series.is_empty() {
        let rep = engine.ingest(&overwrites).expect("overwrite");
        assert_eq!(rep.rejected_late, 0, "overwrites land in the head");
    }
    Dataset { engine, first, last, lives }
}

const TIME_GROUPS: [(&str, Option<&str>); 18] = [
    ("average", None),
    ("sum", None),
    ("min", None),
    ("max", None),
    ("extremes", None),
    ("median", None),
    ("trimmed-median", None),
    ("percentile", Some("80")),
    ("trimmed-mean", None),
    ("stddev", None),
    ("cv", None),
    ("ses", None),
    ("des", None),
    ("incremental-sum", None),
    ("countif", Some(">50")),
    ("latest", None),
    ("average", None),
    ("sum", None),
];

/// A random query over the dataset: a v3 body, or v1 GET parameters.
fn query(r: &mut Rng, d: &Dataset) -> (ApiVersion, Value) {
    let span = d.last - d.first;
    let (tg, opts) = TIME_GROUPS[r.below(TIME_GROUPS.len() as u64) as usize];
    let relative = r.chance(0.3);
    // Half the windows are long (wide buckets), half anything.
    let dur = if r.chance(0.5) { r.range(span / 2, span + 600) } else { r.range(1, span + 600) };
    let (mut after, mut before) = if relative {
        (-dur, -r.range(0, 900))
    } else {
        let before = r.range(d.first + dur / 2, d.last + 300);
        (before - dur, before)
    };
    // Few points make wide buckets (whole minutes and hours inside them).
    let mut points = match r.below(10) {
        0 => 0,
        1..=5 => r.range(1, 24),
        _ => r.range(1, 400),
    };
    // A fifth are absolute windows of buckets of whole minutes or hours,
    // aligned (so on their grid): buckets of rollups alone.
    let fits: Vec<i64> = [1, 2, 5, 15, 60, 120].into_iter().filter(|m| 60 * m <= span + 600).collect();
    let whole = r.chance(0.2) && !fits.is_empty();
    if whole {
        let minutes = fits[r.below(fits.len() as u64) as usize];
        points = r.range(1, ((span + 600) / (60 * minutes)).clamp(1, 40));
        let dur = points * 60 * minutes - 1;
        before = r.range(d.first + dur / 2, d.last + 300);
        after = before - dur;
    }
    let mut options = vec![];
    for (o, p) in [("unaligned", 0.3), ("anomaly-bit", 0.1), ("percentage", 0.1), ("null2zero", 0.05)] {
        if r.chance(p) && !(whole && o == "unaligned") {
            options.push(o);
        }
    }
    let group_by = ["dimension", "node", "instance", "selected"][r.below(4) as usize];
    let aggregation = ["average", "sum", "min", "max"][r.below(4) as usize];
    let resampling = if r.chance(0.15) && !whole { r.range(2, 900) } else { 0 };
    if r.chance(0.25) {
        // v1: natural points for relative windows, no absolute values.
        let mut v = json!({"after": after, "before": before, "points": points, "group": tg,
                           "options": options.join("|"), "context": "test.ctx"});
        if let Some(o) = opts {
            v["group_options"] = json!(o);
        }
        if resampling > 0 {
            v["gtime"] = json!(resampling);
        }
        return (ApiVersion::V1, v);
    }
    let mut time = json!({"time_group": tg, "time_resampling": resampling});
    if let Some(o) = opts {
        time["time_group_options"] = json!(o);
    }
    let body = json!({
        "scope": {"contexts": ["test.ctx"]},
        "window": {"after": after, "before": before, "points": points},
        "aggregations": {"metrics": [{"group_by": [group_by], "aggregation": aggregation}], "time": time},
        "options": options,
    });
    (ApiVersion::V3, body)
}

fn run(d: &Dataset, api: ApiVersion, q: &Value, tier: Option<usize>) -> QueryResult {
    let req = match api {
        ApiVersion::V1 => {
            let mut pairs: Vec<(String, String)> = q
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            if let Some(t) = tier {
                pairs.push(("tier".into(), t.to_string()));
            }
            parse_params(api, &pairs)
        }
        _ => {
            let mut body = q.clone();
            if let Some(t) = tier {
                body["window"]["tier"] = json!(t);
            }
            parse_body(api, &body)
        }
    }
    .expect("a valid generated query");
    d.engine.query(&req).expect("query runs")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Asserts two answers are the same: window, series, flags, values and
/// anomaly rates (values within 1e-9 relative).
fn assert_same(auto: &QueryResult, t0: &QueryResult, what: &str) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(auto.window, t0.window, "window: {}", what);
    prop_assert_eq!(auto.series.len(), t0.series.len(), "series: {}", what);
    for (a, b) in auto.series.iter().zip(&t0.series) {
        prop_assert_eq!(&a.key.id, &b.key.id, "{}", what);
        prop_assert_eq!(&a.flags, &b.flags, "flags of {}: {}", a.key.id, what);
        for i in 0..a.values.len() {
            if a.flags[i] & PA_EMPTY == 0 {
                prop_assert!(
                    close(a.values[i], b.values[i]),
                    "{} point {}: auto {} vs tier0 {}: {}",
                    a.key.id,
                    i,
                    a.values[i],
                    b.values[i],
                    what
                );
            }
            prop_assert!(close(a.arp[i], b.arp[i]), "arp {} point {}: {}", a.key.id, i, what);
        }
        prop_assert_eq!(a.db_stats.count, b.db_stats.count, "{}", what);
        prop_assert!(close(a.db_stats.sum, b.db_stats.sum), "{}", what);
        prop_assert_eq!(a.db_stats.anomalous, b.db_stats.anomalous, "{}", what);
        prop_assert_eq!((a.db_stats.min, a.db_stats.max), (b.db_stats.min, b.db_stats.max), "{}", what);
    }
    prop_assert_eq!(auto.first_entry, t0.first_entry, "{}", what);
    prop_assert_eq!(auto.last_entry, t0.last_entry, "{}", what);
    Ok(())
}

/// Checks eight random queries on a random dataset; returns how many
/// merge rollups and how many of those read rollup points.
fn check_seed(seed: u64) -> std::result::Result<(u32, u32), TestCaseError> {
    let d = dataset(seed);
    let mut r = Rng(seed ^ 0x5EED);
    let (mut mergeable, mut used) = (0, 0);
    for _ in 0..8 {
        let (api, q) = query(&mut r, &d);
        let auto = run(&d, api, &q, None);
        let t0 = run(&d, api, &q, Some(0));
        let what = format!("{api:?} {q}");
        assert_same(&auto, &t0, &what)?;
        prop_assert!(auto.approximation.is_none(), "flagged approximate: {:?} for {}", auto.approximation, what);
        if auto.request.time_group.method.merges_rollups() {
            mergeable += 1;
            used += u32::from(auto.tier_use.points[1] + auto.tier_use.points[2] > 0);
        }
    }
    Ok((mergeable, used))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("STRATA_TIER_RULE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40),
        ..ProptestConfig::default()
    })]

    /// Automatic tiers equal `tier: 0` wherever tier 0 holds the data.
    #[test]
    fn automatic_tiers_answer_what_tier0_answers(seed in any::<u64>()) {
        check_seed(seed)?;
    }

    /// Past tier 0's retention, buckets tier 0 holds whole stay exact.
    #[test]
    fn buckets_tier0_holds_whole_stay_exact_past_its_retention(seed in any::<u64>()) {
        check_aged_seed(seed)?;
    }
}

/// Where tier 0 aged out (a retention of 40 minutes drops the oldest
/// spans), a bucket whose samples tier 0 still holds whole (it starts at or
/// after its group's first kept slot less one update_every, see
/// [`super::layout::Coverage::exact_from`]) answers what `tier: 0` answers
/// and is not flagged, even the bucket that ends on the first kept slot;
/// time groups that carry state from bucket to bucket (ses, des,
/// incremental-sum) only where the whole window is so. Returns how many
/// queries reached aged history with a compared bucket starting on the
/// latest group's edge.
fn check_aged_seed(seed: u64) -> std::result::Result<u32, TestCaseError> {
    let mut cfg = rollups_everywhere();
    cfg.storage.tiers[0].retention_secs = 2_400;
    let d = dataset_with(seed, cfg);
    // Per group, the first bucket start served by tier 0 alone.
    let edges: Vec<i64> = {
        let st = d.engine.read().expect("lock");
        [1, 2, 5, 10, 15].into_iter().filter_map(|ue| st.store.rollup_only_until(ue).map(|r| r - ue)).collect()
    };
    let Some(&held_from) = edges.iter().max() else { return Ok(0) };
    let mut r = Rng(seed ^ 0xA6ED);
    let mut reached = 0;
    for k in 0..12 {
        let (api, mut q) = query(&mut r, &d);
        if k % 3 == 2 {
            // A v3 window with a bucket starting right on a group's edge
            // (the bucket ending on its first kept slot, and after).
            let (tg, _) = TIME_GROUPS[r.below(8) as usize];
            // The latest edge: buckets from there on are compared whole.
            let edge = held_from;
            let (every, points) = (r.range(1, 400), r.range(1, 30));
            let before = edge + every * r.range(1, points);
            q = json!({
                "scope": {"contexts": ["test.ctx"]},
                "window": {"after": before - every * points, "before": before, "points": points},
                "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                                 "time": {"time_group": tg}},
                "options": ["unaligned"],
            });
        }
        let api = if k % 3 == 2 { ApiVersion::V3 } else { api };
        let auto = run(&d, api, &q, None);
        let t0 = run(&d, api, &q, Some(0));
        let what = format!("{api:?} {q} (tier 0 whole from bucket start {held_from})");
        let w = auto.window;
        // The windows differ where the dropped history moves the data's
        // first entry (a window trimmed to the data): compare the buckets
        // both answers hold, by their ends.
        if w.view_every != t0.window.view_every {
            continue;
        }
        let start = |i: usize| w.bucket_end(i) - w.view_every;
        let stateful = matches!(auto.request.time_group.method, Method::Ses | Method::Des | Method::IncrementalSum);
        let first_held = (0..w.points).find(|&i| start(i) >= held_from).unwrap_or(w.points);
        reached += u32::from(first_held > 0 && start(first_held.min(w.points - 1)) == held_from);
        if stateful && (first_held > 0 || w != t0.window) {
            continue;
        }
        if let Some(a) = &auto.approximation {
            prop_assert!(a.last - w.view_every < held_from, "bucket ending {} flagged: {}", a.last, what);
        }
        prop_assert_eq!(auto.series.len(), t0.series.len(), "{}", what);
        for (a, b) in auto.series.iter().zip(&t0.series) {
            for i in first_held..w.points {
                let Some(j) = (0..t0.window.points).find(|&j| t0.window.bucket_end(j) == w.bucket_end(i)) else {
                    continue;
                };
                prop_assert_eq!(a.flags[i], b.flags[j], "{} flags at {}: {}", a.key.id, i, what);
                if a.flags[i] & PA_EMPTY == 0 {
                    prop_assert!(
                        close(a.values[i], b.values[j]),
                        "{} point {} (bucket end {}): auto {} vs tier0 {}: {}",
                        a.key.id,
                        i,
                        w.bucket_end(i),
                        a.values[i],
                        b.values[j],
                        what
                    );
                }
                prop_assert!(close(a.arp[i], b.arp[j]), "arp {} point {}: {}", a.key.id, i, what);
            }
        }
    }
    // No tier fills the time outside a metric's life: with buckets of
    // whole minutes (of its update_every), a bucket that ends by the start
    // of its first sample's minute, or starts at or after the end of its
    // last point's, is empty, and the answer is exact, whichever tiers
    // serve it (an hour point once filled the time around its minutes).
    let mut lives_checked = 0;
    for (dim, ue, first, last) in &d.lives {
        let minute = 60 * ue;
        for _ in 0..3 {
            let every = minute * r.range(1, 60);
            let points = r.range(1, 40);
            let before = r.range(d.first - 3_600, d.last).div_euclid(every) * every;
            let body = json!({
                "scope": {"contexts": ["test.ctx"], "dimensions": [dim]},
                "window": {"after": before - points * every + 1, "before": before, "points": points},
                "aggregations": {"time": {"time_group": "average"}},
            });
            let res = d.engine.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
            let w = res.window;
            if w.view_every != every || w.bucket_end(0).rem_euclid(minute) != 0 {
                continue;
            }
            prop_assert!(res.approximation.is_none(), "whole minutes: {:?} for {}", res.approximation, body);
            lives_checked += 1;
            // The minutes `(born, born + minute]` and `(gone - minute, gone]` hold them.
            let end_of = |t: i64| (t + minute - 1).div_euclid(minute) * minute;
            let (born, gone) = (end_of(*first) - minute, end_of(*last));
            for s in &res.series {
                for i in 0..w.points {
                    let (start, end) = (w.bucket_end(i) - w.view_every, w.bucket_end(i));
                    if end <= born || start >= gone {
                        prop_assert!(
                            s.flags[i] & PA_EMPTY != 0,
                            "{dim} [{first}, {last}]: bucket ({start}, {end}] = {} for {body}",
                            s.values[i]
                        );
                    }
                }
            }
        }
    }
    prop_assert!(lives_checked > 0, "no window of whole minutes was planned as asked");
    Ok(reached)
}

/// The aged property must see windows that reach dropped history.
#[test]
fn the_aged_queries_reach_dropped_history() {
    let reached: u32 = (0..12).map(|seed| check_aged_seed(seed).expect("the rule holds")).sum();
    assert!(reached >= 10, "{reached} queries reached aged history");
}

/// The property above is only as strong as its queries: most of those
/// whose time group merges rollups must really read rollup points.
#[test]
fn the_generated_queries_exercise_rollups() {
    let (mut mergeable, mut used) = (0, 0);
    for seed in 0..12 {
        let (m, u) = check_seed(seed).expect("the rule holds");
        mergeable += m;
        used += u;
    }
    assert!(mergeable >= 20 && used * 2 >= mergeable, "{used} of {mergeable} mergeable queries read rollups");
}

// Hand-computed cases: the symptoms this rule fixes.

const T0: i64 = 1_700_002_800; // a multiple of 3600

/// An engine whose automatic tiers take rollups into buckets of any width
/// (the default leaves narrow buckets to tier 0), so that these tests
/// check the rollup reads on every bucket they can serve.
fn rollups_everywhere() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.limits.rollup_min_bucket_points = 0;
    cfg
}

fn linear_engine(hours: i64, f: impl Fn(i64) -> Option<f64>) -> Engine {
    linear_engine_with(rollups_everywhere(), hours, f)
}

fn linear_engine_with(cfg: EngineConfig, hours: i64, f: impl Fn(i64) -> Option<f64>) -> Engine {
    let now = T0 + hours * 3600 + 1;
    let e = Engine::new(cfg, Clock::Fixed(AtomicI64::new(now)));
    let points: Vec<Point> = (1..=hours * 3600).map(|k| Point { t: T0 + k, value: f(k), anomalous: false }).collect();
    for chunk in points.chunks(3600) {
        let b = IngestBatch {
            nodes: vec![],
            series: vec![SeriesSpec {
                context: "lin".into(),
                dimension: "v".into(),
                points: chunk.to_vec(),
                ..Default::default()
            }],
        };
        e.ingest(&b).expect("ingest");
    }
    e
}

fn v3(e: &Engine, window: Value, tg: &str) -> QueryResult {
    let body = json!({"scope": {"contexts": ["lin"]}, "window": window,
                      "aggregations": {"time": {"time_group": tg}}});
    e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query")
}

#[test]
fn average_of_a_ramp_matches_tier0_in_a_mixed_bucket() {
    // v(t) = t - T0 over two hours, 12 points of 600 s: the last bucket
    // (T0 + 6600, T0 + 7200] averages 6601..=7200 = 6900.5 ... its samples'
    // mean, with whole minutes from tier 1 and tier 2 nowhere.
    let e = linear_engine(2, |k| Some(k as f64));
    let w = json!({"after": T0 + 1, "before": T0 + 7200, "points": 12});
    let auto = v3(&e, w.clone(), "average");
    let mut w0 = w;
    w0["tier"] = json!(0);
    let t0 = v3(&e, w0, "average");
    let last = auto.series[0].values[11];
    assert_eq!(last, (6601..=7200).sum::<i64>() as f64 / 600.0);
    assert_eq!(last, t0.series[0].values[11]);
    assert!(auto.tier_use.points[1] > 0, "whole minutes came from tier 1");
    assert!(auto.approximation.is_none());
}

#[test]
fn by_default_narrow_buckets_read_tier0_whole() {
    // Two hours of a noisy series. 600 s buckets (ten minutes of samples)
    // take whole minutes; 288 s buckets read tier 0 alone; 60 s buckets on
    // minute boundaries have no ragged edges and take the minutes; all
    // answer exactly what tier 0 answers.
    let e = linear_engine_with(EngineConfig::default(), 2, |k| Some(((k * 7919) % 1000) as f64 / 10.0));
    for (points, rollups) in [(12, true), (25, false), (7, true), (120, true), (24, true)] {
        let w = json!({"after": T0 + 1, "before": T0 + 7200, "points": points});
        let auto = v3(&e, w.clone(), "average");
        let mut w0 = w;
        w0["tier"] = json!(0);
        let t0 = v3(&e, w0, "average");
        assert_eq!(auto.tier_use.points[1] > 0, rollups, "{points} points");
        for (a, b) in auto.series[0].values.iter().zip(&t0.series[0].values) {
            assert!((a - b).abs() <= 1e-9 * b.abs(), "{points} points: {a} vs {b}");
        }
        let (a, b) = (&auto.series[0].db_stats, &t0.series[0].db_stats);
        assert!(a.count > 6_000 && a.count == b.count, "{points} points: {} vs {}", a.count, b.count);
        assert_eq!((a.min, a.max), (b.min, b.max));
    }
}

#[test]
fn minute_aligned_min_over_both_signs_reads_the_open_hour_samples() {
    // Buckets of whole minutes take tier 1 alone, but a minute holding both
    // signs cannot give `min` or `max` (nearest to / farthest from zero):
    // its samples are read instead, also in the open (unsealed) hour, whose
    // tier-0 blocks the view must hold although no layout piece names tier 0.
    let e = linear_engine(2, |k| Some(if k % 2 == 0 { -((k % 7) as f64) - 1.0 } else { (k % 5) as f64 + 0.5 }));
    let w = json!({"after": T0 + 1, "before": T0 + 7200, "points": 12});
    for tg in ["min", "max"] {
        let auto = v3(&e, w.clone(), tg);
        let mut w0 = w.clone();
        w0["tier"] = json!(0);
        let t0 = v3(&e, w0, tg);
        assert_eq!(auto.series[0].flags, t0.series[0].flags, "{tg}");
        assert_eq!(auto.series[0].values, t0.series[0].values, "{tg}");
        assert!(auto.tier_use.points[1] > 0 && auto.approximation.is_none(), "{tg}: from whole minutes, exact");
    }
}

#[test]
fn grafana_buckets_of_80_seconds_are_exact_and_gaps_stay_null() {
    // 6 h at 269 points: 81 s buckets, never a multiple of a minute; a
    // 30-minute outage must read as nulls, as tier 0 has it.
    let e =
        linear_engine(6, |k| if (10_000..11_800).contains(&k) { None } else { Some(((k * 37) % 1000) as f64 / 10.0) });
    let w = json!({"after": T0 + 1, "before": T0 + 6 * 3600, "points": 269});
    for tg in ["average", "sum", "min", "max"] {
        let auto = v3(&e, w.clone(), tg);
        let mut w0 = w.clone();
        w0["tier"] = json!(0);
        let t0 = v3(&e, w0, tg);
        assert_ne!(auto.window.view_every % 60, 0);
        assert_eq!(auto.series[0].flags, t0.series[0].flags, "{tg}: the outage is null in both");
        assert!(auto.series[0].flags.iter().filter(|f| *f & PA_EMPTY != 0).count() >= 20, "{tg}: the outage shows");
        for (a, b) in auto.series[0].values.iter().zip(&t0.series[0].values) {
            assert!(close(*a, *b), "{tg}: {a} vs {b}");
        }
        assert!(auto.tier_use.points[1] > 0 && auto.approximation.is_none(), "{tg}");
    }
}

#[test]
fn first_entry_is_the_first_sample_not_an_hour_boundary() {
    let e = linear_engine(2, |k| if k < 1_000 { None } else { Some(1.0) });
    let r = v3(&e, json!({"after": T0 - 3600, "before": T0 + 7200, "points": 10}), "average");
    assert_eq!(r.first_entry, Some(T0 + 1_000));
    assert_eq!(r.last_entry, Some(T0 + 7_200));
    for t in &r.tiers {
        assert_eq!((t.first_entry, t.last_entry), (Some(T0 + 1_000), Some(T0 + 7_200)), "tier {}", t.tier);
    }
}

#[test]
fn rollup_only_history_is_flagged_approximate_where_a_bucket_cuts_its_points() {
    // Tier 1 holds an imported hour before tier 0 begins. Buckets of whole
    // minutes merge its points by their counts, exactly (a point's
    // aggregate is its samples'); buckets that cut its minutes can only be
    // approximate there and say so; the rest does not.
    let e = Engine::new(rollups_everywhere(), Clock::Fixed(AtomicI64::new(T0 + 7_201)));
    {
        let mut st = e.write().expect("lock");
        let m = st.catalog.register(&crate::model::SeriesMeta {
            node: "localhost",
            context: "lin",
            instance: "lin",
            dimension: "v",
            units: None,
            title: None,
            chart_type: None,
            update_every: 1,
            labels: None,
        });
        for k in 1..=60 {
            let p = AggPoint { sum: 600.0, min: 5.0, max: 15.0, count: 60, anomaly_count: 0 };
            st.store.write_rollup(m, 1, 1, T0 + k * 60, p);
        }
        let pts: Vec<_> = (3_601..=7_200)
            .map(|k| crate::storage::RawPoint { t: T0 + k, value: Some(1.0), anomalous: false })
            .collect();
        st.store.write_batch(&[(m, 1, &pts[..])], None).expect("tier 0");
    }
    let r = v3(&e, json!({"after": T0 + 1, "before": T0 + 7_200, "points": 2}), "average");
    assert!(r.approximation.is_none(), "whole minutes are exact: {:?}", r.approximation);
    assert_eq!(r.series[0].values, vec![10.0, 1.0]);
    // Buckets of 90 s cut every other minute of the imported hour.
    let r = v3(&e, json!({"after": T0 - 89, "before": T0 + 7_110, "points": 80}), "average");
    let a = r.approximation.as_ref().expect("flagged");
    assert_eq!((a.first, a.last, a.tiers.clone()), (T0 + 90, T0 + 3_600, vec![1]));
    assert_eq!(a.buckets, 40, "each bucket of the imported hour cuts a minute at one end");
    // Only the recent hour: exact, not flagged.
    let r = v3(&e, json!({"after": T0 + 3_601, "before": T0 + 7_200, "points": 4}), "average");
    assert!(r.approximation.is_none(), "{:?}", r.approximation);
}

/// The first sample tier 0 keeps past its retention lies at the start of
/// its oldest kept span, which the rollup minute ending there shares with
/// 59 dropped samples: a bucket holding that sample alone, or it and later
/// ones, is tier 0's (an outside probe found it answered from the minute).
#[test]
fn the_bucket_ending_on_the_first_kept_sample_is_exact() {
    let mut cfg = rollups_everywhere();
    cfg.storage.tiers[0].retention_secs = 3_600;
    // 1.0 every second, 100.0 on each hour.
    let e = linear_engine_with(cfg, 3, |k| Some(if k % 3_600 == 0 { 100.0 } else { 1.0 }));
    // Retention counts back from the newest sample when the head moves
    // (to T0 + 2 h, once the data passes it by the late grace).
    let hz = T0 + 3_600;
    assert_eq!(e.read().expect("lock").store.rollup_only_until(1), Some(hz), "the first hour dropped");
    for tg in ["average", "sum", "max", "stddev"] {
        let one = v3(&e, json!({"after": hz - 9, "before": hz, "points": 10}), tg);
        assert_eq!(one.series[0].values[9], if tg == "stddev" { 0.0 } else { 100.0 }, "{tg}");
        let body = json!({"scope": {"contexts": ["lin"]}, "window": {"after": hz, "before": hz + 9, "points": 1},
                          "aggregations": {"time": {"time_group": tg}}, "options": ["unaligned"]});
        let ten = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
        assert_eq!(ten.window.bucket_end(0) - ten.window.view_every, hz - 1, "the bucket (hz - 1, hz + 9]");
        let want = match tg {
            "average" => 10.9,
            "sum" => 109.0,
            "max" => 100.0,
            _ => 31.306_548_8,
        };
        assert!((ten.series[0].values[0] - want).abs() < 1e-6, "{tg}: {} vs {want}", ten.series[0].values[0]);
        assert!(ten.approximation.is_none(), "{tg}");
    }
    let one = v3(&e, json!({"after": hz - 9, "before": hz, "points": 10}), "average");
    let a = one.approximation.as_ref().expect("the dropped seconds are flagged");
    assert_eq!((a.first, a.last), (hz - 9, hz - 1), "all but the last bucket");
    // A window inside one dropped minute is served by that minute's point
    // alone, cut by every bucket end, and says so in the tiers' points.
    let inside = v3(&e, json!({"after": hz - 50, "before": hz - 20, "points": 3}), "average");
    assert!(inside.approximation.as_ref().is_some_and(|a| a.tiers == vec![1]), "{:?}", inside.approximation);
    assert_eq!(inside.tier_use.points, [0, 1, 0], "the one minute, once");
    // ses and des carry their state, and with it the approximation, into
    // the buckets tier 0 holds; incremental-sum into the next one.
    // (Their aged buckets are approximate: they need the samples.)
    for (tg, last) in [("ses", hz + 600), ("des", hz + 600), ("incremental-sum", hz + 60), ("median", hz)] {
        let r = v3(&e, json!({"after": hz - 600, "before": hz + 600, "points": 20}), tg);
        let a = r.approximation.as_ref().unwrap_or_else(|| panic!("{tg} flagged"));
        assert_eq!(a.last, last, "{tg}");
    }
    let whole = v3(&e, json!({"after": hz - 600, "before": hz + 600, "points": 20}), "average");
    assert!(whole.approximation.is_none(), "whole minutes: {:?}", whole.approximation);
}

/// Where tier 0 aged out of a metric's whole life and tier 1 holds it all,
/// no coarser tier fills the time before its first sample or after its
/// last (the hour points around them reach past both): buckets outside
/// its life are null, the bucket with its last samples holds those alone,
/// and whole-minute buckets are exact and unflagged, as `tier: 1` answers
/// (an outside probe found the hours filling both sides, flagged).
#[test]
fn aged_history_is_not_filled_outside_the_metric_life() {
    let mut cfg = rollups_everywhere();
    cfg.storage.tiers[0].retention_secs = 3_600;
    let e = Engine::new(cfg, Clock::Fixed(AtomicI64::new(T0 + 5 * 3_600 + 1)));
    let (first, last) = (T0 + 1_817, T0 + 7_217);
    let value = |t: i64| 10.0 + (t % 7) as f64 * 0.5;
    for hour in 0..5 {
        let times = T0 + hour * 3_600 + 1..=T0 + (hour + 1) * 3_600;
        let lin: Vec<Point> = times
            .clone()
            .filter(|t| (first..=last).contains(t))
            .map(|t| Point { t, value: Some(value(t)), anomalous: false })
            .collect();
        let other: Vec<Point> = times.map(|t| Point { t, value: Some(1.0), anomalous: false }).collect();
        let spec = |context: &str, points: Vec<Point>| SeriesSpec {
            context: context.into(),
            dimension: "v".into(),
            points,
            ..Default::default()
        };
        e.ingest(&IngestBatch { nodes: vec![], series: vec![spec("lin", lin), spec("other", other)] }).expect("ingest");
    }
    let aged_until = e.read().expect("lock").store.rollup_only_until(1);
    assert!(aged_until.is_some_and(|r| r > last), "tier 0 dropped the metric's life: {aged_until:?}");
    let pinned = |after: i64, before: i64, points: usize| {
        let w = |tier: Option<usize>| {
            let mut w = json!({"after": after, "before": before, "points": points});
            if let Some(t) = tier {
                w["tier"] = json!(t);
            }
            v3(&e, w, "average")
        };
        let (auto, t1) = (w(None), w(Some(1)));
        assert!(auto.approximation.is_none(), "whole minutes are exact: {:?}", auto.approximation);
        assert_eq!(auto.series[0].flags, t1.series[0].flags);
        assert_eq!(auto.series[0].values, t1.series[0].values);
        auto
    };
    // Before the first sample (T0 + 1,817): two empty buckets of 600 s.
    let a = pinned(T0 + 601, T0 + 3_600, 5);
    let empty: Vec<bool> = a.series[0].flags.iter().map(|f| f & PA_EMPTY != 0).collect();
    assert_eq!(empty, [true, true, false, false, false]);
    // After the last (T0 + 7,217): the bucket (7,200, 7,800] holds its 17
    // samples alone, then nothing.
    let b = pinned(T0 + 6_601, T0 + 9_600, 5);
    let empty: Vec<bool> = b.series[0].flags.iter().map(|f| f & PA_EMPTY != 0).collect();
    assert_eq!(empty, [false, false, true, true, true]);
    let want = (T0 + 7_201..=last).map(value).sum::<f64>() / 17.0;
    assert!((b.series[0].values[1] - want).abs() < 1e-9, "{} vs {want}", b.series[0].values[1]);
    // Buckets of 30 minutes: Netdata's rule (at least half the points)
    // takes the hours, each cut in two; whole minutes answer exactly.
    let c = pinned(T0 + 1, T0 + 7_200, 4);
    assert_eq!(c.window.view_every, 1_800);
    assert_eq!(c.tier_use.points[2], 0, "no hour read");
}
