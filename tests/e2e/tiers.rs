//! The tier rule through the HTTP API: random data ingested over
//! `POST /api/v1/ingest` (several update_every values, outages, explicit
//! nulls, overwrites in the head), random windows whose buckets rarely line
//! up with minutes or hours, every time group: the automatic answer's
//! `result.data` equals the `tier: 0` answer's, and carries no
//! `view.approximate`. On the demo's rollup-only history the flag appears.

use serde_json::{json, Value};

use crate::harness::{Server, TempDir};

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const START: i64 = 1_763_900_017; // not on a minute or an hour

/// Series as (dimension, update_every, points); the newest sample time.
fn data(r: &mut Rng) -> (Vec<(String, i64, Vec<Value>)>, i64) {
    let mut out = Vec::new();
    let mut last = START;
    for (k, ue) in [1i64, 1, 3, 10].into_iter().enumerate() {
        let mut pts = Vec::new();
        let mut t = START + r.range(0, 400) / ue * ue;
        let end = START + 4 * 3600 + r.range(0, 1800);
        while t <= end {
            if r.chance(1) && r.chance(30) {
                t += r.range(60, 900) / ue * ue; // an outage
            }
            let v = if r.chance(1) { Value::Null } else { json!((r.range(-5000, 20000) as f64) / 100.0) };
            pts.push(if r.chance(10) { json!([t, v, true]) } else { json!([t, v]) });
            last = last.max(t);
            t += ue;
        }
        out.push((format!("d{k}"), ue, pts));
    }
    (out, last)
}

fn batch(series: &[(String, i64, Vec<Value>)], from: i64, to: i64) -> Value {
    let s: Vec<Value> = series
        .iter()
        .map(|(d, ue, pts)| {
            let p: Vec<&Value> = pts.iter().filter(|p| (from..to).contains(&p[0].as_i64().unwrap_or(0))).collect();
            json!({"node": "n1", "context": "t.ctx", "instance": format!("i{}", ue), "dimension": d,
                   "update_every": ue, "points": p})
        })
        .collect();
    json!({"series": s})
}

const GROUPS: [&str; 11] =
    ["average", "sum", "min", "max", "extremes", "median", "percentile", "stddev", "countif", "ses", "incremental-sum"];

fn data_of(doc: &Value) -> &Value {
    &doc["result"]["data"]
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Number(_), Value::Number(_)) => {
            let (p, q) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0)
        }
        _ => a == b,
    }
}

#[test]
fn automatic_tiers_answer_what_tier0_answers_over_http() {
    let mut r = Rng(std::env::var("STRATA_TIERS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7));
    let (series, last) = data(&mut r);
    let s = Server::start_with(TempDir::new("tiers"), Some(last + 1), &[]);
    let mut from = START - 10;
    while from <= last {
        s.ingest_ok(&batch(&series, from, from + 900));
        from += 900;
    }
    // Overwrite some head samples (values and nulls): rollups must follow.
    let mut head: Vec<(String, i64, Vec<Value>)> = Vec::new();
    for (d, ue, pts) in &series {
        let mut p = Vec::new();
        for t in pts.iter().filter_map(|p| p[0].as_i64()).filter(|&t| t > last - 600) {
            if r.chance(10) {
                p.push(json!([t, if r.chance(30) { Value::Null } else { json!(r.range(-100, 100)) }]));
            }
        }
        head.push((d.clone(), *ue, p));
    }
    let (_, late) = s.ingest_ok(&batch(&head, last - 600, last + 1));
    assert_eq!(late, 0);

    let cases: usize = std::env::var("STRATA_TIERS_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let (mut mergeable, mut rollups) = (0, 0);
    for case in 0..cases {
        let mut dur = r.range(300, 5 * 3600);
        let mut points = if r.chance(50) { r.range(1, 30) } else { r.range(30, 500) };
        // A quarter are buckets of whole minutes or hours, aligned (so on
        // their grid): rollups alone serve them.
        let whole = r.chance(25);
        if whole {
            let minutes = [1, 2, 5, 15, 60][r.range(0, 4) as usize];
            points = r.range(1, (3 * 60 / minutes).min(30));
            dur = points * 60 * minutes - 1;
        }
        // Whole windows lie inside the data (before it, tier 0 serves).
        let earliest = if whole { START + 400 + dur } else { START + dur / 2 };
        let before = r.range(earliest, last + 120);
        let mut tg = GROUPS[r.range(0, GROUPS.len() as i64 - 1) as usize];
        if whole && r.chance(50) {
            tg = ["average", "sum"][r.range(0, 1) as usize];
        }
        let group_by = ["dimension", "node", "instance"][r.range(0, 2) as usize];
        let mut options = vec!["jsonwrap"];
        if r.chance(30) && !whole {
            options.push("unaligned");
        }
        let mut body = json!({
            "scope": {"contexts": ["t.ctx"]},
            "window": {"after": before - dur, "before": before, "points": points},
            "aggregations": {"metrics": [{"group_by": [group_by], "aggregation": "sum"}],
                             "time": {"time_group": tg, "time_group_options": if tg == "countif" { ">50" } else { "" }}},
            "options": options,
        });
        let auto = s.query_ok(&body);
        body["window"]["tier"] = json!(0);
        let t0 = s.query_ok(&body);
        let what = format!("case {case}: {body}");
        assert!(same(data_of(&auto), data_of(&t0)), "{what}\nauto {}\ntier0 {}", data_of(&auto), data_of(&t0));
        assert_eq!(auto["result"]["labels"], t0["result"]["labels"], "{what}");
        assert!(auto["view"].get("approximate").is_none(), "{what}: {}", auto["view"]["approximate"]);
        let served: Vec<u64> = (0..3).map(|t| auto["db"]["per_tier"][t]["points"].as_u64().unwrap_or(0)).collect();
        if ["average", "sum", "min", "max", "extremes"].contains(&tg) {
            mergeable += 1;
            rollups += usize::from(served[1] + served[2] > 0);
        }
    }
    // The property is only as strong as its windows: many must read rollups.
    assert!(rollups * 3 >= mergeable, "only {rollups} of {mergeable} mergeable answers read rollups");
}

#[test]
fn rollup_only_history_is_flagged_in_the_response() {
    // The demo imports rollups for history before its tier-0 hours.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let s = Server::start_demo(TempDir::new("tiers-demo"), now, &[]);
    // Buckets of whole hours merge the imported hours exactly: not flagged.
    let hours = json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": -2 * 86_400, "before": 0, "points": 48},
                       "aggregations": {"time": {"time_group": "average"}}});
    let r = s.query_ok(&hours);
    assert!(r["view"].get("approximate").is_none(), "whole hours: {}", r["view"]["approximate"]);
    // Buckets of 57.6 minutes cut them.
    let day = json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": -2 * 86_400, "before": 0, "points": 50},
                     "aggregations": {"time": {"time_group": "average"}}});
    let r = s.query_ok(&day);
    let a = &r["view"]["approximate"];
    assert!(a["buckets"].as_u64().is_some_and(|b| b > 0 && b < 50), "{a}");
    assert!(a["reason"].as_str().is_some_and(|t| t.contains("tier 0 no longer holds")), "{a}");
    assert!(a["tiers"].as_array().is_some_and(|t| !t.is_empty() && !t.contains(&json!(0))), "{a}");
    let hour = json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": -3600, "before": 0, "points": 60},
                      "aggregations": {"time": {"time_group": "average"}}});
    assert!(s.query_ok(&hour)["view"].get("approximate").is_none(), "the last hour is exact");
}

/// Tier 0 kept for 2 h of 5 h of data that starts at an odd second: the
/// first sample's time (and each tier's) is still the true one, counted
/// back through the rollups; answers over the aged first hours are flagged
/// approximate and the last hour's are not. The same after a restart.
#[test]
fn aged_out_tier0_keeps_true_first_sample_times() {
    const FIRST: i64 = START + 1_373; // 30 s into a minute, not on an hour
    const FIRST2: i64 = (START + 2_001) / 2 * 2; // update_every 2 (2 h spans), on its grid
    let last = FIRST + 5 * 3600;
    let flags = ["--retention-tier0", "2h", "--late-grace", "0"];
    let s = Server::start_with(TempDir::new("tiers-aged"), Some(last + 60), &flags);
    let series = |from: i64, to: i64| {
        let one: Vec<Value> = (from.max(FIRST)..to).map(|t| json!([t, (t % 997) as f64 / 10.0])).collect();
        let two: Vec<Value> =
            (from.max(FIRST2)..to).filter(|t| t % 2 == 0).map(|t| json!([t, (t % 89) as f64])).collect();
        json!({"series": [
            {"node": "n1", "context": "aged.one", "instance": "i1", "dimension": "d", "update_every": 1, "points": one},
            {"node": "n1", "context": "aged.two", "instance": "i2", "dimension": "d", "update_every": 2, "points": two},
        ]})
    };
    let mut from = FIRST;
    while from <= last {
        s.ingest_ok(&series(from, (from + 600).min(last + 1)));
        from += 600;
    }
    let check = |s: &Server| {
        for (context, first) in [("aged.one", FIRST), ("aged.two", FIRST2)] {
            let whole = json!({"scope": {"contexts": [context]}, "window": {"after": FIRST - 600, "before": last, "points": 50}});
            let r = s.query_ok(&whole);
            assert_eq!(r["db"]["first_entry"], json!(first), "{context}: {}", r["db"]);
            let tiers = r["db"]["per_tier"].as_array().expect("per_tier");
            assert!(tiers[0]["first_entry"].as_i64().is_some_and(|f| f > first + 3600), "tier 0 aged out: {}", r["db"]);
            assert_eq!(tiers[1]["first_entry"], json!(first), "{context} tier 1: {}", r["db"]);
            assert_eq!(tiers[2]["first_entry"], json!(first), "{context} tier 2: {}", r["db"]);
            assert!(r["view"].get("approximate").is_some(), "{context}: the aged hours are flagged");
            let recent = json!({"scope": {"contexts": [context]}, "window": {"after": last - 3000, "before": last, "points": 7}});
            assert!(s.query_ok(&recent)["view"].get("approximate").is_none(), "{context}: tier 0 still holds these");
        }
    };
    check(&s);
    let s = Server::start_with(s.stop(), Some(last + 60), &flags);
    check(&s);
}

/// A gap sent over a metric's first (or last) sample moves `first_entry`
/// (`last_entry`) to the next sample held at once, the same before and
/// after a restart (which reads the extent back from the data).
#[test]
fn a_gap_over_the_first_sample_moves_first_entry() {
    let (b, now) = (START + 7, START + 400);
    let flags = ["--late-grace", "3600"];
    let s = Server::start_with(TempDir::new("tiers-gap-ends"), Some(now), &flags);
    let one = |points: Value| json!({"series": [{"node": "n1", "context": "gap.ends", "instance": "i", "dimension": "d", "points": points}]});
    s.ingest_ok(&one(json!([[b + 1, 7.0], [b + 10, 1.0], [b + 200, 3.0]])));
    s.ingest_ok(&one(json!([[b + 1, null], [b + 200, null]])));
    let q = json!({"scope": {"contexts": ["gap.ends"]}, "window": {"after": b - 100, "before": b + 300, "points": 4}});
    let ends = |s: &Server| {
        let r = s.query_ok(&q);
        (r["db"]["first_entry"].clone(), r["db"]["last_entry"].clone())
    };
    assert_eq!(ends(&s), (json!(b + 10), json!(b + 10)));
    let s = Server::start_with(s.stop(), Some(now), &flags);
    assert_eq!(ends(&s), (json!(b + 10), json!(b + 10)), "the same read back after a restart");
}
