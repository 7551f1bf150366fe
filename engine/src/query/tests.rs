//! Whole-query tests on a small engine: features that cross modules
//! (percentages with hidden dimensions, cardinality folding, raw and
//! anomaly-bit answers, timeouts, tier choice and approximation flags).

use std::sync::atomic::AtomicI64;

use serde_json::json;

use crate::engine::{Clock, Engine, EngineConfig};
use crate::ingest::{IngestBatch, Point, SeriesSpec};
use crate::query::body::parse_body;
use crate::query::request::ApiVersion;
use crate::query::result::QueryResult;
use crate::query::result::PA_EMPTY;

const T0: i64 = 1_700_000_400; // a multiple of 3600

fn series(node: &str, inst: &str, dim: &str, f: impl Fn(i64) -> Option<f64>, n: i64) -> SeriesSpec {
    SeriesSpec {
        node: Some(node.into()),
        context: "disk.space".into(),
        instance: Some(inst.into()),
        dimension: dim.into(),
        units: Some("GiB".into()),
        points: (1..=n).map(|k| Point { t: T0 + k, value: f(k), anomalous: k % 4 == 0 }).collect(),
        ..Default::default()
    }
}

/// Two filesystems on one node: `/` used 30 avail 70; `/data` used 10 avail 10.
fn engine() -> Engine {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3601)));
    let b = IngestBatch {
        nodes: vec![],
        series: vec![
            series("n1", "disk_space./", "used", |_| Some(30.0), 600),
            series("n1", "disk_space./", "avail", |_| Some(70.0), 600),
            series("n1", "disk_space./data", "used", |_| Some(10.0), 600),
            series("n1", "disk_space./data", "avail", |_| Some(10.0), 600),
        ],
    };
    e.ingest(&b).expect("ingest");
    e
}

fn q(e: &Engine, body: serde_json::Value) -> QueryResult {
    let req = parse_body(ApiVersion::V3, &body).expect("valid body");
    e.query(&req).expect("query")
}

fn window() -> serde_json::Value {
    json!({"after": T0 + 1, "before": T0 + 600, "points": 2})
}

#[test]
fn percentage_of_instance_uses_hidden_dimensions() {
    let e = engine();
    let r = q(
        &e,
        json!({"window": window(), "selectors": {"dimensions": ["used"]},
        "aggregations": {"metrics": [{"group_by": ["percentage-of-instance"]}]}}),
    );
    let names: Vec<&str> = r.series.iter().map(|s| s.key.name.as_str()).collect();
    assert_eq!(names, vec!["disk_space./@n1", "disk_space./data@n1"]);
    assert_eq!(r.series[0].values, vec![30.0, 30.0]);
    assert_eq!(r.series[1].values, vec![50.0, 50.0]);
    assert_eq!(r.units, "%");
}

#[test]
fn percentage_aggregation_and_option() {
    let e = engine();
    let r = q(
        &e,
        json!({"window": window(), "selectors": {"dimensions": ["used"]},
        "aggregations": {"metrics": [{"group_by": ["node"], "aggregation": "percentage"}]}}),
    );
    assert_eq!(r.series[0].values, vec![40.0 * 100.0 / 120.0; 2]);
    // The option: each row as % of the total over all dimensions, hidden included.
    let r = q(&e, json!({"window": window(), "selectors": {"dimensions": ["used"]}, "options": ["percentage"]}));
    assert_eq!(r.series.len(), 1);
    // `used` is averaged over two instances (20) against a row total of 40 + 80 = 120... the
    // hidden `avail` series contribute their per-instance values (70 + 10).
    let v = r.series[0].values[0];
    assert!((v - 20.0 * 100.0 / (20.0 + 80.0)).abs() < 1e-9, "{v}");
}

#[test]
fn cardinality_limit_folds_the_smallest() {
    let e = engine();
    let r = q(
        &e,
        json!({"window": window(), "aggregations": {"metrics": [{"group_by": ["instance", "dimension"], "aggregation": "sum"}]}, "cardinality_limit": 2}),
    );
    assert_eq!(r.series.len(), 2);
    assert_eq!(r.series[0].key.id, format!("avail,disk_space./@{}", crate::model::machine_guid_for("n1")));
    assert_eq!(r.series[1].key.id, "remaining 3 dimensions");
    assert_eq!(r.series[1].values, vec![50.0, 50.0]);
    assert_eq!(r.folded.map(|f| f.folded), Some(3));
}

#[test]
fn raw_keeps_sums_and_counts() {
    let e = engine();
    let r = q(
        &e,
        json!({"window": window(), "options": ["raw"], "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "avg"}]}}),
    );
    let used = r.series.iter().find(|s| s.key.id == "used").expect("used");
    assert_eq!(used.values, vec![40.0, 40.0]);
    assert_eq!(used.counts, vec![2, 2]);
}

#[test]
fn anomaly_bit_answers_anomaly_rates() {
    let e = engine();
    let r = q(&e, json!({"window": window(), "options": ["anomaly-bit"], "selectors": {"dimensions": ["used"]}}));
    // Every 4th sample is anomalous: 25% in each 300 s bucket.
    assert_eq!(r.series[0].values, vec![25.0, 25.0]);
    assert_eq!(r.series[0].arp, vec![25.0, 25.0]);
}

#[test]
fn raw_needing_groups_use_tier0_and_pinned_coarse_tiers_are_flagged() {
    let e = engine();
    let r = q(&e, json!({"window": window(), "aggregations": {"time": {"time_group": "median"}}}));
    assert_eq!(r.chosen_tier, 0);
    assert!(r.approximation.is_none());
    let r = q(
        &e,
        json!({"window": {"after": T0 + 1, "before": T0 + 600, "points": 2, "tier": 1},
        "aggregations": {"time": {"time_group": "median"}}}),
    );
    let a = r.approximation.as_ref().expect("median over pinned minutes is approximate");
    assert_eq!((a.tiers.clone(), a.buckets), (vec![1], 2));
    assert!(a.reason.contains("raw samples"), "{}", a.reason);
    let r = q(&e, json!({"window": {"after": T0 + 1, "before": T0 + 600, "points": 1}}));
    assert_eq!(r.chosen_tier, 1, "average over one 600 s bucket takes whole minutes from tier 1");
    assert!(r.approximation.is_none());
    let r = q(&e, json!({"window": window()}));
    assert_eq!(r.chosen_tier, 1, "300 s buckets of whole minutes take the minutes");
    let r = q(&e, json!({"window": {"after": T0 + 1, "before": T0 + 580, "points": 2}}));
    assert_eq!(r.chosen_tier, 0, "290 s buckets with ragged edges read tier 0 whole (the same answer, faster)");
}

#[test]
fn cv_and_countif_answer_percent_units() {
    let e = engine();
    for tg in ["cv", "countif"] {
        let r = q(&e, json!({"window": window(), "aggregations": {"time": {"time_group": tg}}}));
        assert_eq!(r.units, "%", "{tg}");
        assert!(r.series.iter().all(|s| s.key.units == "%"));
    }
}

#[test]
fn timeouts_cancel_the_query() {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 7201)));
    let b = IngestBatch {
        nodes: vec![],
        series: (0..400).map(|i| series("n1", &format!("i{i}"), "d", |k| Some(k as f64), 3600)).collect(),
    };
    e.ingest(&b).expect("ingest");
    let body = json!({"window": {"after": T0 + 1, "before": T0 + 3600, "points": 3600, "tier": 0},
        "aggregations": {"time": {"time_group": "median"}}, "timeout": 1});
    let req = parse_body(ApiVersion::V3, &body).expect("body");
    let err = e.query(&req).expect_err("1 ms is not enough for 1.4 M samples through median");
    assert_eq!(err.kind(), crate::error::ErrorKind::Timeout);
}

#[test]
fn nothing_selected_is_an_empty_answer() {
    let e = engine();
    let r = q(&e, json!({"window": window(), "scope": {"contexts": ["no.such"]}}));
    assert!(r.series.is_empty());
    let r = q(&e, json!({"window": window(), "selectors": {"alerts": ["*cpu*"]}}));
    assert!(r.series.is_empty());
    let r =
        q(&e, json!({"window": window(), "options": ["nonzero"], "aggregations": {"time": {"time_group": "stddev"}}}));
    // Constant data: every stddev is 0, and `nonzero` keeps all series when all are zero.
    assert_eq!(r.series.len(), 2, "used and avail");
    assert!(r.series.iter().all(|s| s.values.iter().all(|v| *v == 0.0)));
    assert!(
        r.series.iter().all(|s| s.flags.iter().all(|f| f & PA_EMPTY == 0)),
        "constant data: stddev 0 kept when all are zero"
    );
}

/// Extreme but well-typed windows: the answer is rows or a 400-class error
/// naming a parameter, never a panic or an overflow.
mod extreme_windows {
    use proptest::prelude::*;

    use super::*;
    use crate::error::EngineError;

    fn edge() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            Just(-1i64),
            Just(10_000_000_001i64),
            Just(-10_000_000_000i64),
            (T0 - 100_000..T0 + 100_000),
            (-1_000_000i64..1_000_000),
            any::<i64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panic(after in edge(), before in edge(), points in 0u64..200_000, resampling in edge()) {
            let e = engine();
            let body = json!({
                "scope": {"contexts": ["disk.space"]},
                "window": {"after": after, "before": before, "points": points},
                "aggregations": {"time": {"time_group": "average", "time_resampling": resampling}},
            });
            let Ok(req) = parse_body(ApiVersion::V3, &body) else { return Ok(()) };
            match e.query(&req) {
                Ok(_) | Err(EngineError::InvalidParameter { .. }) => {}
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }

    #[test]
    fn out_of_range_times_name_their_parameter() {
        let e = engine();
        for (window, resampling, name) in [
            (json!({"after": i64::MIN}), 0, "after"),
            (json!({"before": -9_223_372_036_854_775_807i64}), 0, "before"),
            (json!({"after": -60}), i64::MAX, "time_resampling"),
        ] {
            let body = json!({"window": window, "aggregations": {"time": {"time_resampling": resampling}}});
            let req = parse_body(ApiVersion::V3, &body).expect("well-typed body");
            match e.query(&req) {
                Err(EngineError::InvalidParameter { param, .. }) => assert_eq!(param, name, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}

/// A v1 GET on `e`, its query string as a client writes it (`&`, `=`).
fn v1(e: &Engine, query: &str) -> crate::error::Result<QueryResult> {
    let pairs: Vec<(String, String)> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    e.query(&crate::query::params::parse_params(ApiVersion::V1, &pairs)?)
}

#[test]
fn v1_chart_percentage_totals_only_that_chart() {
    let e = engine();
    let (a, b) = (T0 + 1, T0 + 600);
    let r = v1(&e, &format!("chart=disk_space./&dimension=used&after={a}&before={b}&points=1&options=percentage"))
        .expect("query");
    // 30 used of 30 + 70 on `/`; the other filesystem is not in the total.
    assert_eq!(r.series.len(), 1);
    assert_eq!(r.series[0].values, vec![30.0]);
    assert_eq!(r.summary.instances.len(), 1, "the summary covers the chart only");
}

/// A chart `c.x` of update_every 1: `a` holds T0+1..=T0+100, `b` (the
/// values -a, so a row sums to 0) stops at T0+90, `z` holds zeros.
fn chart_engine() -> Engine {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3601)));
    let dim = |d: &str, f: fn(i64) -> Option<f64>, n: i64| SeriesSpec {
        context: "c.x".into(),
        instance: Some("c.x".into()),
        ..series("n1", "c.x", d, f, n)
    };
    let b = IngestBatch {
        nodes: vec![],
        series: vec![
            dim("a", |k| Some(k as f64), 100),
            dim("b", |k| Some(-(k as f64)), 90),
            dim("z", |_| Some(0.0), 100),
        ],
    };
    e.ingest(&b).expect("ingest");
    e
}

/// v1 reads its chart as a unit (Netdata 1.37): a dimension with no
/// sample in the window is a column of nulls, a window within two
/// update_every past the data answers null rows (farther: nothing), and a
/// relative window ends at the chart's last entry whatever `dimensions`
/// selects.
#[test]
fn v1_reads_the_chart_as_a_unit() {
    let e = chart_engine();
    let names = |r: &QueryResult| r.series.iter().map(|s| s.key.name.clone()).collect::<Vec<_>>();
    let all_empty = |r: &QueryResult| r.series.iter().all(|s| s.flags.iter().all(|f| f & PA_EMPTY != 0));
    let w = |after: i64, before: i64| v1(&e, &format!("chart=c.x&after={after}&before={before}&points=0"));
    let r = w(T0 + 95, T0 + 100).expect("query");
    assert_eq!(names(&r), ["a", "b", "z"], "b has no sample after T0+90, and is still a column");
    assert!(r.series[1].flags.iter().all(|f| f & PA_EMPTY != 0));
    let r = w(T0 + 102, T0 + 110).expect("two seconds past the data");
    assert!(r.series.len() == 3 && all_empty(&r));
    let far = w(T0 + 103, T0 + 110).map(|r| r.series.len());
    assert!(!far.as_ref().is_ok_and(|n| *n > 0), "three seconds past: no data ({far:?})");
    // A relative `after` is compared as `now - |after|` (now is T0 + 3601):
    // 3499 s back is T0 + 102, two seconds past the data; 3498 s, three.
    let back = |secs: i64, dims: &str| v1(&e, &format!("chart=c.x&after=-{secs}&points=0&dimensions={dims}"));
    assert!(back(3499, "*").is_ok_and(|r| r.series.len() == 3), "within two seconds of the data");
    assert!(!back(3498, "*").is_ok_and(|r| !r.series.is_empty()), "three seconds past: no data");
    // The window ends at the chart's last entry (T0+100), not b's (T0+90).
    let r = back(3499, "b").expect("relative, b alone");
    assert_eq!(names(&r), ["b"]);
    assert_eq!(r.window.before, T0 + 100);
    // `latest_values`: the chart's last slot (T0+100), whatever the window;
    // b holds nothing there.
    let q = format!("chart=c.x&after={}&before={}&points=0&options=jsonwrap", T0 + 10, T0 + 20);
    let latest = v1(&e, &q).expect("query").db_latest.expect("v1 jsonwrap reads them");
    let want = [("a", Some(100.0)), ("b", None), ("z", Some(0.0))];
    assert_eq!(latest, want.iter().map(|&(d, v)| (d.to_string(), v)).collect());
}

/// A v1 chart on several nodes: each dimension's `latest_values` folds
/// the nodes' last-slot values with the query's aggregation, as its points
/// do (it showed the first node's value), over the nodes that hold the slot.
#[test]
fn v1_latest_values_fold_the_nodes_of_a_chart() {
    let e = chart_engine();
    let dim = |node: &str, d: &str, f: fn(i64) -> Option<f64>, n: i64| SeriesSpec {
        context: "c.x".into(),
        instance: Some("c.x".into()),
        ..series(node, "c.x", d, f, n)
    };
    let b = IngestBatch {
        nodes: vec![],
        series: vec![
            dim("n2", "a", |k| Some(3.0 * k as f64), 100),
            dim("n3", "a", |k| Some(k as f64 - 40.0), 100),
            dim("n2", "z", |_| Some(6.0), 99),
            // Negative at the last slot: percentages under `absolute` differ.
            dim("n3", "b", |k| Some(-(k as f64)), 100),
        ],
    };
    e.ingest(&b).expect("ingest");
    let latest = |agg: &str| {
        let q = format!("chart=c.x&after={}&before={}&points=1&options=jsonwrap&aggregation={agg}", T0 + 10, T0 + 20);
        v1(&e, &q).expect("query").db_latest.expect("v1 jsonwrap reads them")
    };
    // a at T0+100: 100 (n1), 300 (n2), 60 (n3); b: -100 (n3); z: 0 (n1),
    // nothing at n2.
    let want = |a: f64, z: f64| {
        [("a", Some(a)), ("b", Some(-100.0)), ("z", Some(z))].iter().map(|&(d, v)| (d.to_string(), v)).collect()
    };
    assert_eq!(latest("avg"), want(460.0 / 3.0, 0.0));
    assert_eq!(latest("sum"), want(460.0, 0.0));
    assert_eq!(latest("min"), want(60.0, 0.0));
    assert_eq!(latest("max"), want(300.0, 0.0));
    // The rule behind each: `latest_values` is what the query's own last
    // row says when its window ends at that slot, one slot a row, for every
    // aggregation (percentage too: it showed the average) and subset.
    // (`absolute` with `percentage` only: other latest values are the
    // stored ones, as Netdata prints them.)
    let cases = ["avg", "sum", "min", "max", "percentage", "extremes"].map(|a| (a, "jsonwrap"));
    for (agg, options) in cases.into_iter().chain([("percentage", "jsonwrap|absolute")]) {
        // (By node, a node's other dimensions are its percentage's hidden part.)
        for dims in ["", "&dimensions=a", "&dimensions=z|b", "&dimensions=a&group_by=node"] {
            let q = format!(
                "chart=c.x&after={}&before={}&points=0&options={options}&aggregation={agg}{dims}",
                T0 + 90,
                T0 + 100
            );
            let r = v1(&e, &q).expect("query");
            let latest = r.db_latest.as_ref().expect("v1 jsonwrap reads them");
            assert_eq!(r.window.before, T0 + 100, "{q}");
            assert_eq!(latest.len(), r.series.len(), "{q}");
            for s in &r.series {
                let last = s.values.len() - 1;
                let row = (s.flags[last] & PA_EMPTY == 0).then_some(s.values[last]);
                assert_eq!(latest[&s.key.id], row, "{q}: {}", s.key.id);
            }
        }
    }
}

/// `abs|percentage` on a subset: the row total is over every chart
/// dimension, each made absolute; `nonzero` hides what read only zeros,
/// not what grouped to 0, and nothing a `dimensions=` list selects.
#[test]
fn v1_percentages_and_nonzero() {
    let e = chart_engine();
    let names = |q: String| v1(&e, &q).expect("query").series.iter().map(|s| s.key.name.clone()).collect::<Vec<_>>();
    let q = format!("chart=c.x&after={0}&before={0}&points=1&dimensions=a&options=abs|percentage", T0 + 10);
    // |10| / (|10| + |-10| + 0) = 50 %, not 10 / (10 - 10 + 0).
    assert_eq!(v1(&e, &q).expect("query").series[0].values, vec![50.0]);
    // a and b read non-zero values; z read only zeros and goes.
    assert_eq!(
        names(format!("chart=c.x&after={}&before={}&points=1&group=sum&options=nonzero", T0 + 1, T0 + 2)),
        ["a", "b"]
    );
    // countif <0 is 0 for a and z; a read non-zero values, so only z goes.
    let q = format!("chart=c.x&after={}&before={}&points=1&group=countif&group_options=<0", T0 + 1, T0 + 4);
    assert!(!names(format!("{q}&options=nonzero")).contains(&"z".to_string()));
    assert!(names(format!("{q}&options=nonzero")).contains(&"a".to_string()));
    // A dimensions= list switches nonzero off (Netdata 1.37): z stays.
    assert_eq!(names(format!("{q}&dimensions=a|z&options=nonzero")), ["a", "z"]);
}

#[test]
fn cost_counts_selected_metrics_window_and_points() {
    let e = engine();
    let cost = |body: serde_json::Value| {
        let req = parse_body(ApiVersion::V3, &body).expect("valid body");
        e.estimate(req).expect("cost").cost
    };
    let all = cost(json!({"window": window()}));
    assert_eq!((all.metrics, all.window_secs, all.points), (4, 600, 2));
    assert_eq!((all.samples(), all.cells()), (2400, 8));
    let used = cost(json!({"window": {"after": -60, "before": 0}, "selectors": {"dimensions": ["used"]}}));
    assert_eq!((used.metrics, used.window_secs, used.points), (2, 60, 60), "no points: one per second");
    let pct = cost(json!({"window": window(), "selectors": {"dimensions": ["used"]}, "options": ["percentage"]}));
    assert_eq!(pct.metrics, 4, "percentages read the hidden dimensions too");
    let far =
        parse_body(ApiVersion::V3, &json!({"window": {"after": i64::MIN + 1, "before": i64::MAX}})).expect("body");
    assert!(e.estimate(far).is_err(), "out-of-range times are refused as the query refuses them");
    let req = parse_body(ApiVersion::V3, &json!({"window": window()})).expect("body");
    let tried = e.try_estimate(req.clone()).map(|c| c.ok().map(|c| c.cost));
    assert_eq!(tried.ok(), Some(Some(all)), "a free lock answers at once");
    let writing = e.write().expect("write lock");
    assert!(e.try_estimate(req).is_err(), "a held lock is not waited for: the request comes back");
    drop(writing);
}

/// The run takes the estimate's selection only while the catalog is as it
/// was: a metric registered in between is in the answer, as a query
/// resolved afresh has it; with no change the answer is the plain query's.
#[test]
fn an_estimate_hands_its_selection_to_the_run_only_while_the_catalog_holds() {
    let e = engine();
    let body = json!({"window": window(), "aggregations": {"metrics": [{"group_by": ["dimension"]}]}});
    let req = parse_body(ApiVersion::V3, &body).expect("valid body");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let names = |r: &QueryResult| r.series.iter().map(|s| s.key.name.clone()).collect::<Vec<_>>();
    let values = |r: &QueryResult| r.series.iter().map(|s| s.values.clone()).collect::<Vec<_>>();
    let unchanged = e.query_estimated(&e.estimate(req.clone()).expect("estimate"), &cancel).expect("query");
    let plain = e.query(&req).expect("query");
    assert_eq!((names(&unchanged), values(&unchanged)), (names(&plain), values(&plain)));
    assert_eq!(names(&plain), ["used", "avail"]);

    // Reused while nothing changed: an emptied selection answers nothing.
    let mut emptied = e.estimate(req.clone()).expect("estimate");
    emptied.resolved.sel = crate::query::select::Selection::default();
    assert!(e.query_estimated(&emptied, &cancel).expect("query").series.is_empty(), "the estimate's selection is used");

    let estimate = e.estimate(req.clone()).expect("estimate");
    assert_eq!(estimate.cost.metrics, 4);
    let new = IngestBatch { nodes: vec![], series: vec![series("n1", "disk_space./", "reserved", |_| Some(5.0), 600)] };
    e.ingest(&new).expect("ingest");
    let after_change = e.query_estimated(&estimate, &cancel).expect("query");
    assert_eq!(names(&after_change), ["used", "avail", "reserved"], "resolved again after the catalog changed");
    let fresh = e.query(&req).expect("query");
    assert_eq!((names(&after_change), values(&after_change)), (names(&fresh), values(&fresh)));
}

#[test]
fn summary_counts_each_instance_once_per_node_and_context() {
    let e = engine();
    let r = q(&e, json!({"window": window(), "selectors": {"dimensions": ["used"]}}));
    let s = &r.summary;
    let counts = |c: &crate::query::result::Counts| (c.selected, c.excluded, c.queried);
    // Two filesystems, each with `used` selected and `avail` excluded.
    assert_eq!(s.instances.len(), 2);
    for i in &s.instances {
        assert_eq!(counts(&i.dimensions), (1, 1, 1), "{}", i.id);
    }
    for item in [&s.nodes[0], &s.contexts[0]] {
        assert_eq!(counts(&item.dimensions), (2, 2, 2), "{}: metrics", item.id);
        assert_eq!(counts(&item.instances), (2, 2, 2), "{}: instances, once each", item.id);
    }
    let dims: Vec<_> = s.dimensions.iter().map(|d| (d.id.as_str(), counts(&d.dimensions))).collect();
    assert_eq!(dims.len(), 2);
    assert!(dims.contains(&("used", (2, 0, 2))) && dims.contains(&("avail", (0, 2, 0))), "{dims:?}");
    // Everything selected: two metrics per instance, each instance once.
    let r = q(&e, json!({"window": window()}));
    for item in [&r.summary.nodes[0], &r.summary.contexts[0]] {
        assert_eq!(counts(&item.dimensions), (4, 0, 4), "{}: metrics", item.id);
        assert_eq!(counts(&item.instances), (2, 0, 2), "{}: instances, once each", item.id);
    }
}

/// One 10 s series: `(offset from T0, value, anomalous)` points.
fn ten_second_engine(points: &[(i64, f64, bool)]) -> Engine {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3601)));
    let series = SeriesSpec {
        node: Some("n1".into()),
        context: "net.io".into(),
        dimension: "out".into(),
        update_every: Some(10),
        points: points.iter().map(|&(k, v, anomalous)| Point { t: T0 + k, value: Some(v), anomalous }).collect(),
        ..Default::default()
    };
    e.ingest(&IngestBatch { nodes: vec![], series: vec![series] }).expect("ingest");
    e
}

/// A bucket `(T0 + 11, T0 + 15]`: no point ends inside it, and the point
/// `(T0 + 10, T0 + 20]` is cut by its end.
fn cut_bucket(options: &[&str]) -> serde_json::Value {
    json!({"window": {"after": T0 + 11, "before": T0 + 15, "points": 1}, "options": options,
           "aggregations": {"time": {"time_group": "average"}}})
}

#[test]
fn closing_values_interpolate_magnitudes_under_the_absolute_rule() {
    // -10 then +10: the signed line crosses 0 at the bucket end, the
    // magnitudes are 10 at both ends (spec 5.1: points are made absolute
    // before time grouping, so before the interpolation).
    let e = ten_second_engine(&[(10, -10.0, false), (20, 10.0, false)]);
    assert_eq!(q(&e, cut_bucket(&[])).series[0].values, vec![-10.0 + 20.0 * 0.5]);
    assert_eq!(q(&e, cut_bucket(&["absolute"])).series[0].values, vec![10.0]);
    // group_by node implies the absolute rule (spec 5.1).
    let by_node = json!({"window": {"after": T0 + 11, "before": T0 + 15, "points": 1},
        "aggregations": {"metrics": [{"group_by": ["node"], "aggregation": "max"}], "time": {"time_group": "max"}}});
    assert_eq!(q(&e, by_node).series[0].values, vec![10.0]);
}

#[test]
fn the_closing_point_counts_once_in_the_anomaly_rate() {
    // (T0 + 8, T0 + 14] holds the point ending at T0 + 10 and is closed by
    // the one ending at T0 + 20: each counts once (spec 4.2).
    let window = json!({"after": T0 + 8, "before": T0 + 14, "points": 1});
    let body = json!({"window": window, "aggregations": {"time": {"time_group": "average"}}});
    let closing_anomalous = ten_second_engine(&[(0, 1.0, false), (10, 2.0, false), (20, 3.0, true)]);
    let r = q(&closing_anomalous, body.clone());
    assert!((r.series[0].values[0] - 2.2).abs() < 1e-12, "{:?}", r.series[0].values);
    assert_eq!(r.series[0].arp, vec![50.0]);
    let inner_anomalous = ten_second_engine(&[(0, 1.0, false), (10, 2.0, true), (20, 3.0, false)]);
    assert_eq!(q(&inner_anomalous, body).series[0].arp, vec![50.0]);
}

#[test]
fn trailing_rows_still_being_collected_are_trimmed_in_v2_and_v3() {
    // Clock at T0 + 3601: series a reported up to T0 + 3600, b only up to
    // T0 + 3597 (its last three seconds are not in yet).
    let now = T0 + 3601;
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(now)));
    let upto = |dim: &str, last: i64| SeriesSpec {
        node: Some("n1".into()),
        context: "live.edge".into(),
        dimension: dim.into(),
        points: (3500..=last).map(|k| Point { t: T0 + k, value: Some(1.0), anomalous: false }).collect(),
        ..Default::default()
    };
    e.ingest(&IngestBatch { nodes: vec![], series: vec![upto("a", 3600), upto("b", 3597)] }).expect("ingest");
    let body = json!({"window": {"after": -10, "before": 0, "points": 10},
                      "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": "sum"}]}});
    let r = q(&e, body.clone());
    let ends: Vec<i64> = (0..r.window.points).map(|i| r.window.bucket_end(i)).collect();
    let t = r.partial_trimming.expect("v3 reports its trimming");
    // The rows from the first one that lost b are gone; the sum never dips.
    assert_eq!(r.series[0].values, vec![2.0; r.window.points], "{ends:?} {t:?}");
    assert_eq!(ends.last().copied(), Some(T0 + 3597), "{ends:?}");
    assert_eq!((t.max_update_every, t.expected_after, t.trimmed_after), (1, T0 + 3598, T0 + 3598));
    // raw answers and v1 keep every row.
    let mut raw = body.clone();
    raw["options"] = json!(["raw"]);
    let r = q(&e, raw);
    assert_eq!(r.series[0].values.len(), 10);
    assert_eq!(r.partial_trimming.map(|t| t.trimmed_after), Some(T0 + 3600));
    let pairs: Vec<(String, String)> = [("context", "live.edge"), ("after", "-10"), ("before", "0"), ("points", "10")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = crate::query::params::parse_params(ApiVersion::V1, &pairs).expect("v1 parameters");
    let r = e.query(&req).expect("v1 query");
    assert_eq!((r.window.points, r.partial_trimming), (10, None));
}
