//! The Nezha-style server API on the demo data: the server list, every
//! metric x period against the `/api/v3/data` answer for the same window
//! (the documented mapping table, restated here), empty lists for metrics
//! the demo does not collect, the envelope on errors, and the allowlist.

use serde_json::{json, Value};

use crate::harness::{Auth, Server, TempDir};

/// The pinned clock: a whole minute, well inside the demo's tier-0 hours.
const NOW: i64 = 1_795_000_020;

/// metric, context, dimension, aggregation, time group, factor, cumulative.
const MAPPED: [(&str, &str, &str, &str, &str, f64, bool); 10] = [
    ("cpu", "system.cpu", "*", "sum", "average", 1.0, false),
    ("memory", "system.ram", "used", "sum", "average", 1_048_576.0, false),
    ("disk", "disk.space", "used", "sum", "average", 1_073_741_824.0, false),
    ("net_in_speed", "net.net", "received", "sum", "average", 125.0, false),
    ("net_out_speed", "net.net", "sent", "sum", "average", 125.0, false),
    ("net_in_transfer", "net.net", "received", "sum", "average", 125.0, true),
    ("net_out_transfer", "net.net", "sent", "sum", "average", 125.0, true),
    ("load1", "system.load", "load1", "sum", "average", 1.0, false),
    ("load5", "system.load", "load5", "sum", "average", 1.0, false),
    ("load15", "system.load", "load15", "sum", "average", 1.0, false),
];
const UNCOLLECTED: [&str; 6] = ["swap", "tcp_conn", "udp_conn", "process_count", "temperature", "uptime"];
const PERIODS: [(&str, i64, i64); 3] = [("1d", 86_400, 30), ("7d", 7 * 86_400, 1800), ("30d", 30 * 86_400, 7200)];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn nezha_server_api_answers_every_metric_and_period_like_the_v3_query() {
    let s = Server::start_demo(TempDir::new("nezha"), NOW, &[]);
    let (st, list) = s.get("/api/v1/server");
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["success"], true);
    let servers = list["data"].as_array().expect("servers");
    let names: Vec<&str> = servers.iter().filter_map(|x| x["name"].as_str()).collect();
    assert_eq!(names, ["web-1", "db-1", "cache-1"]);
    for (i, x) in servers.iter().enumerate() {
        assert_eq!(x["id"], json!(i + 1));
        assert_eq!(x["online"], true, "{x}");
        assert!(x["last_active"].as_str().is_some_and(|t| t.ends_with('Z')), "{x}");
        assert!(x["tags"].as_array().is_some_and(|t| t.contains(&json!("_strata_demo:true"))), "{x}");
    }
    assert_eq!(s.get("/api/v1/server?id=2").1["data"][0]["name"], "db-1");

    let mut checked = 0;
    for (period, secs, step) in PERIODS {
        let before = NOW.div_euclid(step) * step;
        let after = before - secs + 1;
        for (metric, ctx, dim, agg, tg, factor, cumulative) in MAPPED {
            let (st, v) = s.get(&format!("/api/v1/server/1/metrics?metric={metric}&period={period}"));
            assert_eq!(st, 200, "{metric} {period}: {v}");
            assert_eq!((v["success"].clone(), v["data"]["metric"].clone()), (json!(true), json!(metric)));
            assert_eq!(v["data"]["server_name"], "web-1");
            let points = v["data"]["data_points"].as_array().expect("points");
            let q = s.query_ok(&json!({
                "scope": {"nodes": ["web-1"], "contexts": [ctx]},
                "selectors": {"dimensions": [dim]},
                "window": {"after": after, "before": before, "points": secs / step},
                "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": agg}], "time": {"time_group": tg}},
                "options": ["flip", "absolute"],
            }));
            let mut want = Vec::new();
            let mut total = 0.0;
            for row in q["result"]["data"].as_array().expect("rows") {
                let Some(x) = row[1][0].as_f64() else { continue };
                let t = row[0].as_i64().expect("t");
                let val = if cumulative {
                    total += x * step as f64 * factor;
                    total
                } else {
                    x * factor
                };
                want.push(((t - step) * 1000, val));
            }
            assert!(!want.is_empty(), "{metric} {period}: the demo has data");
            assert_eq!(points.len(), want.len(), "{metric} {period}: points");
            for (p, (ts, val)) in points.iter().zip(&want) {
                assert_eq!(p["ts"].as_i64(), Some(*ts), "{metric} {period}");
                let got = p["value"].as_f64().expect("value");
                assert!(close(got, *val), "{metric} {period} at {ts}: {got} vs {val}");
                checked += 1;
            }
            if period == "1d" {
                assert_eq!(points.len(), 2880, "{metric}: a day of 30-second points");
            }
        }
        for metric in UNCOLLECTED {
            let (st, v) = s.get(&format!("/api/v1/server/web-1/metrics?metric={metric}&period={period}"));
            assert_eq!(
                (st, v["success"].clone(), v["data"]["data_points"].clone()),
                (200, json!(true), json!([])),
                "{metric}"
            );
        }
    }
    eprintln!("nezha: {checked} points checked against v3");

    // Errors in Nezha's envelope, as 4xx.
    for (path, status) in [
        ("/api/v1/server/1/metrics?metric=gpu", 400),
        ("/api/v1/server/1/metrics?metric=cpu&period=2d", 400),
        ("/api/v1/server/1/metrics", 400),
        ("/api/v1/server/99/metrics?metric=cpu", 404),
        ("/api/v1/server?id=x", 400),
    ] {
        let r = s.request(path, Auth::Admin, None);
        let v = r.json();
        assert_eq!((r.status, v["success"].clone()), (status, json!(false)), "{path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {v}");
    }
    let r = s.request("/api/v1/server", Auth::None, None);
    assert_eq!((r.status, r.json()["success"].clone()), (401, json!(false)));

    // The allowlist: db-1 only.
    let (_, t) = s.post_json("/api/v1/tokens", &json!({"name": "db only", "scopes": ["viewer"], "nodes": ["db-1"]}));
    let bearer = format!("Bearer {}", t["token"].as_str().expect("token"));
    let mine = s.request("/api/v1/server", Auth::Header(&bearer), None).json();
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine["data"][0]["name"], "db-1");
    let r = s.request("/api/v1/server/1/metrics?metric=cpu", Auth::Header(&bearer), None);
    assert_eq!(r.status, 404, "web-1 does not exist for this token: {}", r.text);
    let r = s.request("/api/v1/server/db-1/metrics?metric=cpu", Auth::Header(&bearer), None);
    assert_eq!(r.status, 200);
    let _: Value = r.json();
}
