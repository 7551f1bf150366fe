//! Query semantics on the shared dataset: every basic time group × group_by
//! key × aggregation compared cell by cell with the reference model, plus
//! two passes, tiers, selectors, the GET/room variants and bad queries.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::dataset::{
    self, compare, expected, guids, metrics, sample, server_with_dataset, Agg, Cell, Expect, Key, Metric, TimeGroup,
    Window, GAP_FREE_CPU_USER_N1, NOW, SDA_READS_N1, SPAN, T0,
};
use crate::harness::{approx_eq, Auth, Server};

/// Windows (end offset from T0, bucket width, points), all aligned to V.
const WINDOWS: [Window; 4] = [
    // The whole dataset in 5-minute buckets.
    Window { end: 7200, v: 300, points: 24 },
    // 20 minutes in 1-minute buckets, ending inside n2's disk gap's end.
    Window { end: 4200, v: 60, points: 20 },
    // Per-second buckets across the start of n2's disk gap (t = T0+3601).
    Window { end: 3630, v: 1, points: 60 },
    // 45 s buckets: crosses n1 sdb/reads' lone gaps and n2's gap start.
    Window { end: 3645, v: 45, points: 40 },
];

const SCOPES: [&[&str]; 2] = [&["disk.io", "system.cpu"], &["disk.io"]];

const AGGS: [Agg; 4] = [Agg::Sum, Agg::Average, Agg::Min, Agg::Max];

fn in_scope(contexts: &[&str]) -> Vec<Metric> {
    metrics().into_iter().filter(|m| contexts.contains(&m.context)).collect()
}

fn body(contexts: &[&str], w: &Window, tg: TimeGroup, passes: &[(Key, Agg)]) -> Value {
    json!({
        "scope": {"contexts": contexts},
        "window": w.json(),
        "aggregations": {
            "metrics": passes.iter().map(|(k, a)| k.pass(*a)).collect::<Vec<_>>(),
            "time": {"time_group": tg.name()},
        },
    })
}

/// Runs every (scope, window, time group, aggregation) for one group_by key,
/// and fails listing every mismatching case (first lines of each).
fn run_table(key: Key) {
    let s = server_with_dataset();
    let mut failures = Vec::new();
    let mut cases = 0;
    // How many expected cells are EMPTY / PARTIAL: the dataset's gaps must
    // exercise both (checked below, so the table cannot pass vacuously).
    let (mut empty, mut partial) = (0, 0);
    for contexts in SCOPES {
        let ms = in_scope(contexts);
        for w in WINDOWS {
            for tg in TimeGroup::ALL {
                for agg in AGGS {
                    // `selected` has one group only; aggregations still differ.
                    let passes = [(key.clone(), agg)];
                    let b = body(contexts, &w, tg, &passes);
                    let resp = s.query_ok(&b);
                    let want = expected(&Expect { metrics: &ms, window: w, tg, passes: &passes }, &guids(&resp));
                    for (_, cells) in want.values() {
                        empty += cells.iter().filter(|c| c.pa & 1 != 0).count();
                        partial += cells.iter().filter(|c| c.pa & 4 != 0).count();
                    }
                    let errs = compare(&resp, &w, &want, true, false);
                    cases += 1;
                    if !errs.is_empty() {
                        failures.push(format!(
                            "CASE contexts={contexts:?} window={w:?} time_group={} group_by={} aggregation={} ({} mismatches):\n  {}",
                            tg.name(),
                            key.group_by_word(),
                            agg.name(),
                            errs.len(),
                            errs.iter().take(6).cloned().collect::<Vec<_>>().join("\n  ")
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cases, SCOPES.len() * WINDOWS.len() * 4 * AGGS.len());
    assert!(partial > 0, "the reference expects no PARTIAL cell for group_by {}", key.group_by_word());
    if matches!(key, Key::Instance | Key::Node) {
        assert!(empty > 0, "the reference expects no EMPTY cell for group_by {}", key.group_by_word());
    }
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn group_by_dimension_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Dimension);
}

#[test]
fn group_by_instance_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Instance);
}

#[test]
fn group_by_node_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Node);
}

#[test]
fn group_by_context_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Context);
}

#[test]
fn group_by_units_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Units);
}

#[test]
fn group_by_label_device_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Label("device"));
}

#[test]
fn group_by_selected_matches_reference_for_every_time_group_and_aggregation() {
    run_table(Key::Selected);
}

#[test]
fn two_pass_instance_sum_then_node_average_is_mean_of_instance_sums() {
    let s = server_with_dataset();
    let mut failures = Vec::new();
    for contexts in SCOPES {
        let ms = in_scope(contexts);
        for w in WINDOWS {
            for tg in [TimeGroup::Average, TimeGroup::Sum, TimeGroup::Max] {
                let passes = [(Key::Instance, Agg::Sum), (Key::Node, Agg::Average)];
                let resp = s.query_ok(&body(contexts, &w, tg, &passes));
                let want = expected(&Expect { metrics: &ms, window: w, tg, passes: &passes }, &guids(&resp));
                // The node ids must be the two machine guids.
                assert_eq!(want.len(), 2, "two node groups expected");
                let errs = compare(&resp, &w, &want, false, false);
                if !errs.is_empty() {
                    failures.push(format!(
                        "CASE contexts={contexts:?} window={w:?} time_group={}:\n  {}",
                        tg.name(),
                        errs.iter().take(6).cloned().collect::<Vec<_>>().join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A hand-checked cell: the 1-minute bucket ending at T0+60, time group
    // sum, disk.io only, node n1: instances sda and sdb summed, then averaged.
    let w = Window { end: 60, v: 60, points: 1 };
    let passes = [(Key::Instance, Agg::Sum), (Key::Node, Agg::Average)];
    let resp = s.query_ok(&body(&["disk.io"], &w, TimeGroup::Sum, &passes));
    let mg = guids(&resp);
    let n1 = mg.get("host-1").expect("host-1 in summary.nodes").clone();
    let col = column(&resp, &n1).expect("node n1 column");
    let ms = in_scope(&["disk.io"]);
    let inst_sum = |inst: &str| -> f64 {
        ms.iter()
            .filter(|m| m.node == "n1" && m.instance == inst)
            .flat_map(|m| (1..=60).filter_map(move |k| crate::dataset::sample(m, k)))
            .map(f64::abs)
            .sum()
    };
    let want = (inst_sum("disk.sda") + inst_sum("disk.sdb")) / 2.0;
    let got = resp["result"]["data"][0][col][0].as_f64().expect("a value");
    assert!(approx_eq(got, want), "n1 two-pass value {got}, expected {want}");
}

/// The column index (in result.labels) of a series id.
fn column(resp: &Value, id: &str) -> Option<usize> {
    resp["result"]["labels"].as_array()?.iter().position(|l| l.as_str() == Some(id))
}

#[test]
fn series_ids_and_names_follow_group_by_naming_rules() {
    let s = server_with_dataset();
    let w = Window { end: 7200, v: 3600, points: 2 };
    let ids = |resp: &Value| -> Vec<String> {
        let mut v: Vec<String> = resp["result"]["labels"]
            .as_array()
            .expect("result.labels")
            .iter()
            .map(|x| x.as_str().expect("string label").to_string())
            .collect();
        assert_eq!(v.first().map(String::as_str), Some("time"), "labels start with time");
        v.remove(0);
        v.sort();
        v
    };
    let q = |key: Key| s.query_ok(&body(&["disk.io", "system.cpu"], &w, TimeGroup::Average, &[(key, Agg::Sum)]));

    let r = q(Key::Dimension);
    assert_eq!(ids(&r), ["reads", "system", "user", "writes"]);
    let mut nodes: Vec<&str> =
        r["summary"]["nodes"].as_array().expect("summary.nodes").iter().filter_map(|n| n["nm"].as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["host-1", "host-2"], "summary.nodes[].nm are the hostnames");
    let mut contexts: Vec<&str> = r["summary"]["contexts"]
        .as_array()
        .expect("summary.contexts")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    contexts.sort();
    assert_eq!(contexts, ["disk.io", "system.cpu"]);
    let mg = guids(&r);
    let (g1, g2) = (mg["host-1"].clone(), mg["host-2"].clone());
    assert!(!g1.is_empty() && g1 != g2, "distinct machine guids: {g1} {g2}");

    let r = q(Key::Node);
    let mut want = vec![g1.clone(), g2.clone()];
    want.sort();
    assert_eq!(ids(&r), want);
    let names = r["view"]["dimensions"]["names"].clone();
    let vids = r["view"]["dimensions"]["ids"].clone();
    for (id, host) in [(&g1, "host-1"), (&g2, "host-2")] {
        let i = vids.as_array().expect("ids").iter().position(|x| x.as_str() == Some(id)).expect("node id in view");
        assert_eq!(names[i], json!(host), "node {id} is named by its hostname");
    }

    let r = q(Key::Instance);
    let mut want: Vec<String> = ["disk.sda", "disk.sdb", "system.cpu"]
        .iter()
        .flat_map(|i| [format!("{i}@{g1}"), format!("{i}@{g2}")])
        .collect();
    want.sort();
    assert_eq!(ids(&r), want);
    let mut names: Vec<String> = r["view"]["dimensions"]["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = ["disk.sda", "disk.sdb", "system.cpu"]
        .iter()
        .flat_map(|i| [format!("{i}@host-1"), format!("{i}@host-2")])
        .collect();
    want.sort();
    assert_eq!(names, want);

    assert_eq!(ids(&q(Key::Context)), ["disk.io", "system.cpu"]);
    assert_eq!(ids(&q(Key::Units)), ["KiB/s", "percentage"]);
    assert_eq!(ids(&q(Key::Label("device"))), ["[unset]", "sda", "sdb"]);
    assert_eq!(ids(&q(Key::Selected)), ["selected"]);
}

#[test]
fn tier1_minute_rollups_give_the_same_average_and_sum_as_tier0() {
    let s = server_with_dataset();
    let m = metrics().into_iter().find(|m| m.idx == GAP_FREE_CPU_USER_N1).expect("gap-free metric");
    assert!((1..=SPAN).all(|k| crate::dataset::sample(&m, k).is_some()), "the tier-check series has no gaps");
    let w = Window { end: 7200, v: 300, points: 24 };
    for tg in [TimeGroup::Average, TimeGroup::Sum] {
        let q = |tier: i64| {
            let mut win = w.json();
            win["tier"] = json!(tier);
            s.query_ok(&json!({
                "scope": {"contexts": ["system.cpu"], "nodes": ["n1"]},
                "selectors": {"dimensions": ["user"]},
                "window": win,
                "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                                 "time": {"time_group": tg.name()}},
            }))
        };
        let (r0, r1) = (q(0), q(1));
        let p1 = r1["db"]["per_tier"][1]["points"].as_u64();
        assert!(p1.is_some_and(|p| p > 0), "tier-1 query: db.per_tier[1].points = {p1:?}; db = {}", r1["db"]);
        let p0 = r0["db"]["per_tier"][0]["points"].as_u64();
        assert!(p0.is_some_and(|p| p > 0), "tier-0 query: db.per_tier[0].points = {p0:?}");
        let p01 = r0["db"]["per_tier"][1]["points"].as_u64();
        assert_eq!(p01, Some(0), "a query pinned to tier 0 reads no tier-1 points: {}", r0["db"]["per_tier"]);
        let want = expected(
            &Expect { metrics: std::slice::from_ref(&m), window: w, tg, passes: &[(Key::Dimension, Agg::Sum)] },
            &BTreeMap::new(),
        );
        let e0 = compare(&r0, &w, &want, true, false);
        assert!(e0.is_empty(), "tier 0 {}: {e0:#?}", tg.name());
        let e1 = compare(&r1, &w, &want, true, false);
        assert!(e1.is_empty(), "tier 1 {} differs from the tier-0 reference: {e1:#?}", tg.name());
    }
}

#[test]
fn selectors_narrow_to_one_metric_and_anomaly_rate_is_reported() {
    let s = server_with_dataset();
    let m = metrics().into_iter().find(|m| m.idx == SDA_READS_N1).expect("sda reads n1");
    let w = Window { end: 1200, v: 100, points: 12 };
    let resp = s.query_ok(&json!({
        "scope": {"contexts": ["disk.io"], "nodes": ["n1"]},
        "selectors": {"dimensions": ["reads"], "labels": ["device:sda"]},
        "window": w.json(),
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                         "time": {"time_group": "average"}},
    }));
    let want = expected(
        &Expect {
            metrics: std::slice::from_ref(&m),
            window: w,
            tg: TimeGroup::Average,
            passes: &[(Key::Dimension, Agg::Sum)],
        },
        &BTreeMap::new(),
    );
    // Every 100 s bucket holds exactly one anomalous sample (k % 100 == 3).
    assert!(want["reads"].1.iter().all(|c: &Cell| c.arp == Some(1.0)));
    let errs = compare(&resp, &w, &want, true, true);
    assert!(errs.is_empty(), "{errs:#?}");
}

#[test]
fn instances_pinned_to_a_node_and_match_ids_or_names_restrict_the_forms() {
    let s = server_with_dataset();
    let guid = {
        let r = s.query_ok(&json!({"scope": {"contexts": ["system.cpu"], "nodes": ["n1"]},
                                   "window": {"after": T0 + 1, "before": T0 + 60, "points": 1}}));
        r["summary"]["nodes"][0]["mg"].as_str().expect("n1's machine guid").to_string()
    };
    // How many system.cpu dimensions (2 per node) each selector reaches.
    let reached = |instances: &str, options: &str| -> u64 {
        let q = format!(
            "/api/v3/data?contexts=system.cpu&instances={instances}&after={}&before={}&points=1&group_by=selected{options}",
            T0 + 1,
            T0 + 60
        );
        let (status, r) = s.get(&q);
        assert_eq!(status, 200, "{q}: {r}");
        r["summary"]["dimensions"]
            .as_array()
            .expect("dimensions")
            .iter()
            .map(|d| d["ds"]["sl"].as_u64().unwrap_or(0))
            .sum()
    };
    let by_host = "system.cpu@host-1";
    let by_guid = format!("system.cpu@{guid}");
    let by_node_id = "system.cpu@n1";
    for (sel, options, want) in [
        ("system.cpu", "", 4),
        (by_host, "", 2),
        (&by_guid, "", 2),
        (by_node_id, "", 2),
        ("*@host-2", "", 2),
        (by_host, "&options=match-ids", 0),
        (&by_guid, "&options=match-ids", 2),
        (by_node_id, "&options=match-ids", 2),
        (by_host, "&options=match-names", 2),
        (&by_guid, "&options=match-names", 0),
        (by_node_id, "&options=match-names", 0),
        (by_host, "&options=match-ids,match-names", 2),
    ] {
        assert_eq!(reached(sel, options), want, "instances={sel}{options}");
    }
}

#[test]
fn flip_option_returns_rows_oldest_first() {
    let s = server_with_dataset();
    let w = Window { end: 600, v: 60, points: 10 };
    let mut b = body(&["system.cpu"], &w, TimeGroup::Average, &[(Key::Node, Agg::Sum)]);
    let normal = s.query_ok(&b);
    b["options"] = json!(["flip"]);
    let flipped = s.query_ok(&b);
    let times = |r: &Value| -> Vec<i64> {
        r["result"]["data"].as_array().expect("rows").iter().map(|row| row[0].as_i64().expect("time")).collect()
    };
    let mut ends = w.ends();
    assert_eq!(times(&flipped), ends, "flip: oldest first");
    ends.reverse();
    assert_eq!(times(&normal), ends, "default: newest first");
    let mut rows: Vec<Value> = normal["result"]["data"].as_array().expect("rows").clone();
    rows.reverse();
    assert_eq!(json!(rows), flipped["result"]["data"], "same rows, reversed");
}

/// Keys of every object in `v`, at any depth.
fn all_keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.insert(k.clone());
            all_keys(x, out);
        }),
        Value::Array(a) => a.iter().for_each(|x| all_keys(x, out)),
        _ => {}
    }
}

#[test]
fn rfc3339_timestamps_and_long_json_keys_change_only_the_presentation() {
    let s = server_with_dataset();
    let w = Window { end: 600, v: 60, points: 10 };
    let mut b = body(&["system.cpu"], &w, TimeGroup::Average, &[(Key::Node, Agg::Sum)]);
    let plain = s.query_ok(&b);

    b["options"] = json!(["rfc3339"]);
    let text = s.query_ok(&b);
    let stamps: Vec<&str> =
        text["result"]["data"].as_array().expect("rows").iter().map(|r| r[0].as_str().expect("text time")).collect();
    let mut ends = w.ends();
    ends.reverse();
    assert_eq!(stamps.len(), ends.len());
    for (s, t) in stamps.iter().zip(&ends) {
        // T0 = 2023-11-14 22:00:00 UTC.
        let (h, m) = (22 + (t - T0) / 3600, (t - T0) % 3600 / 60);
        let want = if h < 24 {
            format!("2023-11-14T{h:02}:{m:02}:00Z")
        } else {
            format!("2023-11-15T{:02}:{m:02}:00Z", h - 24)
        };
        assert_eq!(*s, want, "epoch {t}");
    }
    let strip = |v: &Value| -> Vec<Value> {
        v["result"]["data"].as_array().expect("rows").iter().map(|r| json!(r.as_array().expect("row")[1..])).collect()
    };
    assert_eq!(strip(&text), strip(&plain), "same values");
    let qs = format!("chart=system.cpu&after={}&before={}&points=2&format=csv&options=rfc3339", T0 + 1, T0 + 120);
    let csv = s.request(&format!("/api/v1/data?{qs}"), Auth::Admin, None);
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.text.lines().nth(1).is_some_and(|l| l.starts_with("2023-11-14T22:0")), "{}", csv.text);

    b["options"] = json!(["long-json-keys"]);
    let long = s.query_ok(&b);
    let (mut short_keys, mut long_keys) = (BTreeSet::new(), BTreeSet::new());
    all_keys(&plain, &mut short_keys);
    all_keys(&long, &mut long_keys);
    for k in ["sl", "qr", "ds", "sts", "mg", "nm", "arp", "con", "point"] {
        assert!(short_keys.contains(k), "plain answers use the short key {k}");
        assert!(!long_keys.contains(k), "long-json-keys still has {k}");
    }
    for k in ["selected", "queried", "dimensions", "statistics", "machine_guid", "hostname", "anomaly_rate_percent"] {
        assert!(long_keys.contains(k), "long-json-keys lacks {k}");
    }
    assert_eq!(
        long["result"]["point_schema"],
        json!({"value": 0, "anomaly_rate_percent": 1, "point_annotations_bitmap": 2})
    );
    assert_eq!(long["result"]["data"], plain["result"]["data"], "rows unchanged");
    assert_eq!(long["summary"]["nodes"][0]["hostname"], plain["summary"]["nodes"][0]["nm"]);
}

#[test]
fn details_lists_every_selected_metric_under_its_node_context_and_instance() {
    let s = server_with_dataset();
    let mut b = json!({
        "scope": {"contexts": ["disk.io"]},
        "selectors": {"dimensions": ["reads"]},
        "window": {"after": T0 + 1, "before": T0 + 600, "points": 5},
        "aggregations": {"metrics": [{"group_by": ["node"], "aggregation": "sum"}]},
        "options": ["details"],
    });
    let r = s.query_ok(&b);
    let nodes = r["detailed"]["nodes"].as_object().unwrap_or_else(|| panic!("no detailed.nodes: {r}"));
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    for (ni, (id, host)) in dataset::NODES.iter().enumerate() {
        let guid = r["summary"]["nodes"][ni]["mg"].as_str().expect("mg");
        let n = &nodes[guid];
        assert_eq!((&n["nd"], &n["nm"], &n["ni"]), (&json!(id), &json!(host), &json!(ni)), "{n}");
        let instances = n["contexts"]["disk.io"]["instances"].as_object().expect("instances");
        assert_eq!(instances.keys().collect::<Vec<_>>(), ["disk.sda", "disk.sdb"], "{n}");
        for (iid, inst) in instances {
            assert_eq!(inst["ue"], json!(1));
            let device = iid.trim_start_matches("disk.");
            assert_eq!(inst["labels"], json!({"device": device}), "{inst}");
            let dims = inst["dimensions"].as_object().expect("dimensions");
            assert_eq!(dims.keys().collect::<Vec<_>>(), ["reads"], "only the selected dimension: {inst}");
            let d = &dims["reads"];
            assert_eq!((&d["nm"], &d["qr"], &d["as"]), (&json!("reads"), &json!(1), &json!(guid)), "{d}");
            assert_eq!(d["fe"], json!(T0 + 1), "the first sample is k = 1: {d}");
            assert_eq!(d["le"], json!(T0 + SPAN), "{d}");
        }
    }
    b["options"] = json!(["details", "long-json-keys"]);
    let long = s.query_ok(&b);
    let n = long["detailed"]["nodes"].as_object().and_then(|m| m.values().next()).expect("a node");
    assert!(n.get("hostname").is_some() && n.get("node_id").is_some(), "{n}");
    let d = &n["contexts"]["disk.io"]["instances"]["disk.sda"]["dimensions"]["reads"];
    assert_eq!(d["queried"], json!(1), "ids stay keys, fields get long names: {n}");
    b["options"] = json!([]);
    assert!(s.query_ok(&b).get("detailed").is_none(), "only on request");
}

#[test]
fn v1_label_quotes_and_jsonwrap_anomaly_rates() {
    let s = server_with_dataset();
    let (after, before) = (T0 + 1, T0 + 1200);
    let q = format!("/api/v1/data?chart=disk.sda&nodes=n1&after={after}&before={before}&points=12&tier=0");
    let csv = s.request(&format!("{q}&format=csv&options=label-quotes"), Auth::Admin, None);
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(csv.text.lines().next(), Some(r#""time","reads","writes""#), "{}", csv.text);
    let plain = s.request(&format!("{q}&format=csv"), Auth::Admin, None);
    assert_eq!(plain.text.lines().next(), Some("time,reads,writes"), "{}", plain.text);

    let (status, r) = s.get(&format!("{q}&format=json&options=jsonwrap,jw-anomaly-rates"));
    assert_eq!(status, 200, "{r}");
    let ar = &r["anomaly_rates"];
    assert_eq!(ar["labels"], r["result"]["labels"], "{r}");
    let rows = ar["data"].as_array().expect("anomaly rate rows");
    assert_eq!(rows.len(), 12, "{ar}");
    let reads = metrics().into_iter().find(|m| m.idx == SDA_READS_N1).expect("sda reads n1");
    let width = r["view_update_every"].as_i64().expect("view_update_every");
    for (row, res) in rows.iter().zip(r["result"]["data"].as_array().expect("rows")) {
        assert_eq!(row[0], res[0], "same timestamps");
        let end = row[0].as_i64().expect("time") - T0;
        let present: Vec<i64> = (end - width + 1..=end).filter(|&k| sample(&reads, k).is_some()).collect();
        let anomalous = present.iter().filter(|&&k| dataset::anomalous(&reads, k)).count();
        let want = 100.0 * anomalous as f64 / present.len() as f64;
        assert!(approx_eq(row[1].as_f64().expect("reads rate"), want), "reads at {end}: {row}, want {want}");
        assert_eq!(row[2], json!(0.0), "writes are never anomalous: {row}");
    }
    let (_, without) = s.get(&format!("{q}&format=json&options=jsonwrap"));
    assert!(without.get("anomaly_rates").is_none(), "only on request");
}

#[test]
fn get_v2_get_v3_and_room_post_agree_with_post_v3() {
    let s = server_with_dataset();
    let room = s.room_data_path();
    let w = Window { end: 3900, v: 60, points: 15 };
    let cases = [(Key::Node, Agg::Sum, TimeGroup::Average), (Key::Dimension, Agg::Max, TimeGroup::Min)];
    for (key, agg, tg) in cases {
        let b = body(&["disk.io"], &w, tg, &[(key.clone(), agg)]);
        let post = s.query_ok(&b);
        let want = expected(
            &Expect { metrics: &in_scope(&["disk.io"]), window: w, tg, passes: &[(key.clone(), agg)] },
            &guids(&post),
        );
        let errs = compare(&post, &w, &want, true, false);
        assert!(errs.is_empty(), "POST /api/v3/data {}: {errs:#?}", key.group_by_word());
        let qs = format!(
            "contexts=disk.io&after={}&before={}&points={}&time_group={}&group_by={}&aggregation={}&tier=0",
            w.after(),
            w.before(),
            w.points,
            tg.name(),
            key.group_by_word(),
            agg.name()
        );
        for path in ["/api/v3/data", "/api/v2/data"] {
            let (status, r) = s.get(&format!("{path}?{qs}"));
            assert_eq!(status, 200, "GET {path}?{qs}: {r}");
            assert_eq!(r["result"]["labels"], post["result"]["labels"], "GET {path} labels");
            assert_eq!(r["result"]["data"], post["result"]["data"], "GET {path} data");
        }
        let (status, r) = s.post_json(&room, &b);
        assert_eq!(status, 200, "room POST: {r}");
        assert_eq!(r["result"]["labels"], post["result"]["labels"], "room labels");
        assert_eq!(r["result"]["data"], post["result"]["data"], "room data");
    }
}

fn assert_json_error(status: u16, body: &Value, want_status: u16, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no 'error' string in {body}");
    assert_eq!(body["status"], json!(want_status), "{what}: 'status' field in {body}");
}

#[test]
fn get_with_non_numeric_points_is_400_naming_points() {
    let s = Server::start(Some(NOW));
    for path in ["/api/v3/data", "/api/v2/data"] {
        let (status, body) = s.get(&format!("{path}?contexts=disk.io&after={}&before={}&points=abc", T0 + 1, T0 + 60));
        assert_json_error(status, &body, 400, path);
        let mentions = body["error"].as_str().is_some_and(|e| e.contains("points"))
            || body["path"].as_str().is_some_and(|p| p.contains("points"));
        assert!(mentions, "{path}: the error should name 'points': {body}");
    }
}

#[test]
fn unknown_time_group_is_400_on_get_post_and_cloud_shaped_on_rooms() {
    let s = Server::start(Some(NOW));
    let (status, body) = s.get("/api/v3/data?contexts=disk.io&points=10&time_group=avg2");
    assert_json_error(status, &body, 400, "GET time_group=avg2");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("avg2")), "error names the value: {body}");
    let q = json!({"scope": {"contexts": ["disk.io"]}, "window": {"after": T0 + 1, "before": T0 + 60, "points": 1},
                   "aggregations": {"time": {"time_group": "avg2"}}});
    let (status, body) = s.post_json("/api/v3/data", &q);
    assert_json_error(status, &body, 400, "POST time_group avg2");
    let (status, body) = s.post_json(&s.room_data_path(), &q);
    assert_eq!(status, 400, "room POST avg2: {body}");
    for k in ["errorCode", "errorMsgKey", "errorMessage"] {
        assert!(body[k].as_str().is_some_and(|v| !v.is_empty()), "room error lacks {k}: {body}");
    }
}

#[test]
fn wrong_types_in_query_body_are_400_with_path() {
    let s = Server::start(Some(NOW));
    let (status, body) = s.post_json(
        "/api/v3/data",
        &json!({"scope": {"contexts": ["disk.io"]}, "window": {"after": T0 + 1, "before": T0 + 60, "points": "many"}}),
    );
    assert_json_error(status, &body, 400, "points: \"many\"");
    assert_eq!(body["path"], json!("window.points"), "{body}");
    let (status, body) = s.post_raw("/api/v3/data", b"{\"scope\": ");
    assert_json_error(status, &body, 400, "truncated JSON");
}

#[test]
fn unknown_context_is_200_with_empty_result() {
    let s = server_with_dataset();
    let w = Window { end: 600, v: 60, points: 10 };
    let resp = s.query_ok(&body(&["no.such.context"], &w, TimeGroup::Average, &[(Key::Dimension, Agg::Sum)]));
    assert_eq!(resp["result"]["labels"], json!(["time"]), "{}", resp["result"]);
    let rows = resp["result"]["data"].as_array().expect("result.data is an array");
    assert!(rows.is_empty(), "no series matched, so result.data should be empty: {rows:?}");
    let (status, r) = s.get("/api/v2/data?contexts=no.such.context&points=10");
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["result"]["labels"], json!(["time"]));
}

#[test]
fn unknown_api_path_is_404_json() {
    let s = Server::start(Some(NOW));
    let (status, body) = s.get("/api/v9/nothing-here");
    assert_json_error(status, &body, 404, "GET /api/v9/nothing-here");
}

/// The live edge over HTTP: with the clock pinned, one series has reported
/// up to now and another stopped three seconds earlier. A v3 answer drops
/// the trailing rows that lost the second series and says so under
/// `debug`; v1 keeps every row.
#[test]
fn trailing_rows_still_being_collected_are_dropped_and_reported() {
    let now = 1_790_000_000;
    let s = Server::start(Some(now));
    let upto = |dim: &str, last: i64| {
        let points: Vec<Value> = (now - 120..=last).map(|t| json!([t, 1.0])).collect();
        json!({"node": "edge", "context": "edge.ctx", "dimension": dim, "points": points})
    };
    s.ingest_ok(&json!({"series": [upto("a", now - 1), upto("b", now - 4)]}));
    let body = json!({"scope": {"contexts": ["edge.ctx"]}, "window": {"after": -10, "before": 0, "points": 10},
                      "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": "sum"}]},
                      "options": ["flip", "debug"]});
    let resp = s.query_ok(&body);
    let rows = resp["result"]["data"].as_array().expect("rows");
    let t = &resp["view"]["partial_data_trimming"];
    let cut = t["trimmed_after"].as_i64().expect("trimmed_after");
    assert_eq!(t["max_update_every"], json!(1), "{t}");
    assert!(cut <= now - 3 && rows.len() < 10, "{t} {rows:?}");
    assert!(rows.iter().all(|r| r[1][0] == json!(2.0)), "no dip left: {rows:?}");
    assert_eq!(resp["view"]["before"], rows.last().expect("a row")[0], "view.before is the last row");
    let (status, v1) = s.get("/api/v1/data?context=edge.ctx&after=-10&before=0&points=10&format=json");
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["data"].as_array().map(Vec::len), Some(10), "v1 keeps every row: {v1}");
}
