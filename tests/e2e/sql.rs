//! `POST /api/v1/sql` against the real server: answers equal
//! `/api/v3/data`'s on the same buckets, errors are JSON 400s, the node
//! allowlist holds by every route, limits are named. Built with
//! `--features sql`; without it the route says SQL is not built in.

#[cfg(feature = "sql")]
use serde_json::{json, Value};

use crate::harness::{Auth, Server};

/// A multiple of 3600.
const T0: i64 = 1_763_906_400;
const END: i64 = T0 + 3600;

#[cfg(feature = "sql")]
fn value(m: usize, t: i64) -> Option<f64> {
    let x = (t * 31 + m as i64 * 977) % 500;
    (x % 89 != 0).then(|| (x as f64 - 100.0) / 8.0)
}

#[cfg(feature = "sql")]
fn load(s: &Server) {
    let mut series = Vec::new();
    for (ni, n) in ["n1", "n2"].iter().enumerate() {
        for (di, d) in ["d1", "d2"].iter().enumerate() {
            let m = ni * 2 + di;
            let points: Vec<Value> = (T0 + 1..=END).map(|t| json!([t, value(m, t)])).collect();
            series.push(
                json!({"node": n, "context": "t.c", "instance": format!("t.c.{n}"), "dimension": d, "points": points}),
            );
        }
    }
    s.ingest_ok(&json!({"series": series}));
}

#[cfg(feature = "sql")]
fn sql(s: &Server, auth: Auth, query: &str, format: &str) -> crate::harness::Resp {
    let body = serde_json::to_vec(&json!({"query": query, "format": format})).expect("body");
    s.request("/api/v1/sql", auth, Some(&body))
}

#[cfg(feature = "sql")]
#[test]
fn sql_answers_equal_the_json_api() {
    let s = Server::start(Some(END + 300));
    load(&s);
    for (f, arg, tg, opt) in [
        ("nd_average", "", "average", None),
        ("nd_median", "", "median", None),
        ("nd_percentile", ", 90", "percentile", Some("90")),
        ("nd_countif", ", '>0'", "countif", Some(">0")),
        ("nd_stddev", "", "stddev", None),
        ("nd_extremes", "", "extremes", None),
    ] {
        let q = format!(
            "SELECT node, dimension, to_unixtime(nd_bucket(60, ts)) AS t, {f}(value{arg}) AS v FROM samples \
             WHERE ts > to_timestamp_seconds({T0}) AND ts <= to_timestamp_seconds({END}) \
             GROUP BY node, context, instance, dimension, nd_bucket(60, ts) ORDER BY node, dimension, t"
        );
        let r = sql(&s, Auth::Admin, &q, "json");
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let body = r.json();
        let names: Vec<&str> =
            body["columns"].as_array().expect("columns").iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, ["node", "dimension", "t", "v"]);
        let rows = body["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 4 * 60, "{f}");
        for n in ["n1", "n2"] {
            for d in ["d1", "d2"] {
                let mut time = json!({"time_group": tg});
                if let Some(o) = opt {
                    time["time_group_options"] = json!(o);
                }
                let want = s.query_ok(&json!({
                    "scope": {"contexts": ["t.c"], "nodes": [n]}, "selectors": {"dimensions": [d]},
                    "window": {"after": T0 + 1, "before": END, "points": 60},
                    "aggregations": {"metrics": [{"group_by": ["dimension"]}], "time": time},
                }));
                let data = want["result"]["data"].as_array().expect("data");
                assert_eq!(data.len(), 60);
                for row in data {
                    let t = row[0].as_i64().expect("time");
                    let v = row[1][0].as_f64();
                    let got = rows.iter().find(|r| r["node"] == n && r["dimension"] == d && r["t"].as_i64() == Some(t));
                    let got = got.and_then(|r| r["v"].as_f64());
                    match (got, v) {
                        (Some(a), Some(b)) => {
                            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{f} {n} {d} {t}: {a} vs {b}")
                        }
                        (a, b) => assert_eq!(a, b, "{f} {n} {d} {t}"),
                    }
                }
            }
        }
    }
    // CSV: a header and one line per row.
    let r = sql(&s, Auth::Admin, "SELECT node, count(*) AS n FROM samples GROUP BY node ORDER BY node", "csv");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.as_deref().is_some_and(|c| c.starts_with("text/csv")), "{:?}", r.content_type);
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines[0], "node,n");
    assert!(lines[1].starts_with("n1,") && lines[2].starts_with("n2,"), "{lines:?}");
}

#[cfg(feature = "sql")]
#[test]
fn sql_errors_are_json_400s_and_the_allowlist_holds() {
    let s = Server::start_with(crate::harness::TempDir::new("sql"), Some(END + 300), &["--sql-max-rows", "100"]);
    load(&s);
    for (q, needle) in [
        ("SELEC 1", "SELEC"),
        ("SELECT * FROM samplez", "samplez"),
        ("SELECT nd_median() FROM samples", "nd_median"),
        ("SELECT nd_countif(value, '>x') FROM samples", "countif"),
        ("CREATE TABLE t (a INT)", "only queries"),
        ("SELECT * FROM samples", "row limit"),
    ] {
        let r = sql(&s, Auth::Admin, q, "json");
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        let e = r.json();
        assert_eq!(e["status"], 400, "{e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(needle)), "{q}: {e}");
    }
    let r = s.request("/api/v1/sql", Auth::Admin, Some(br#"{"format": "json"}"#));
    assert_eq!(r.status, 400, "{}", r.text);
    // A list column in CSV is a 400 naming it (it was a 500); in JSON a row.
    let q =
        "SELECT array_agg(value) AS vs FROM samples WHERE metric_id = 0 AND value IS NOT NULL GROUP BY node LIMIT 1";
    let r = sql(&s, Auth::Admin, q, "csv");
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["error"].as_str().is_some_and(|m| m.contains("column 'vs'")), "{}", r.text);
    assert_eq!(sql(&s, Auth::Admin, q, "json").status, 200);
    // Chains of ORs: a thousand run, more are refused; the server lives
    // (a hundred used to overflow the stack and abort it).
    let ors = |n: usize| format!("SELECT 1 AS one WHERE {}", vec!["'a' = 'b'"; n].join(" OR "));
    assert_eq!(sql(&s, Auth::Admin, &ors(999), "json").status, 200);
    let r = sql(&s, Auth::Admin, &ors(5_000), "json");
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.get("/health").0, 200);
    let r = sql(&s, Auth::None, "SELECT 1", "json");
    assert_eq!(r.status, 401);

    // A token allowed n1 only, by every route.
    let (status, tok) =
        s.post_json("/api/v1/tokens", &json!({"name": "n1 only", "scopes": ["strata:data:read"], "nodes": ["n1"]}));
    assert_eq!(status, 201, "{tok}");
    let header = format!("Bearer {}", tok["token"].as_str().expect("token"));
    let (status, meta) = s.post_json("/api/v1/tokens", &json!({"name": "meta", "scopes": ["strata:metadata:read"]}));
    assert_eq!(status, 201, "{meta}");
    let meta = format!("Bearer {}", meta["token"].as_str().expect("token"));
    assert_eq!(sql(&s, Auth::Header(&meta), "SELECT 1", "json").status, 403);
    let window = format!("ts > to_timestamp_seconds({T0}) AND ts <= to_timestamp_seconds({END})");
    for q in [
        "SELECT DISTINCT node FROM samples".to_string(),
        "SELECT node, count(*) FROM samples WHERE node = 'n2' GROUP BY node".into(),
        "SELECT DISTINCT node FROM samples_1m WHERE node IN ('n1', 'n2')".into(),
        "SELECT node, instance FROM metrics".into(),
        "SELECT DISTINCT m.node FROM metrics m JOIN samples s USING (metric_id)".into(),
        "SELECT DISTINCT node FROM samples WHERE metric_id IN (SELECT metric_id FROM metrics WHERE node <> 'n1')".into(),
        format!("SELECT node, nd_bucket(600, ts) b, nd_median(value) FROM samples WHERE node = 'n2' AND {window} GROUP BY node, context, instance, dimension, b"),
    ] {
        let r = sql(&s, Auth::Header(&header), &q, "json");
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert!(!r.text.contains("n2"), "{q} leaked another node: {}", r.text);
    }
    let r = sql(&s, Auth::Header(&header), "SELECT DISTINCT node FROM samples", "csv");
    assert_eq!(r.text.trim(), "node\nn1");
    let q = r#"SELECT * FROM nd_query('{"scope": {"nodes": ["n2"]}, "window": {"after": -600}}')"#;
    let r = sql(&s, Auth::Header(&header), q, "json");
    assert_eq!(r.status, 403, "{}", r.text);
}

#[cfg(not(feature = "sql"))]
#[test]
fn sql_route_says_sql_is_not_built_in() {
    let s = Server::start(Some(END + 300));
    let r = s.request("/api/v1/sql", Auth::Admin, Some(br#"{"query": "SELECT 1"}"#));
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.json()["error"].as_str().is_some_and(|m| m.contains("--features sql")), "{}", r.text);
}

/// `strata sql` prints the answer as the server sent it: a CSV answer
/// once (no empty record after it), and one past 10 MiB whole (the
/// client's default read limit cut it).
#[cfg(feature = "sql")]
#[test]
fn the_sql_cli_prints_answers_whole_and_as_sent() {
    let s = Server::start(Some(END + 300));
    load(&s);
    let cli = |q: &str| {
        let o = crate::harness::run_cli(&["sql", "--url", &s.base, "--token", &s.token, "--format", "csv", q], None);
        assert!(o.status.success(), "{}", crate::harness::describe(&o));
        o.stdout
    };
    let q = "SELECT node, count(*) AS n FROM samples GROUP BY node ORDER BY node";
    assert_eq!(cli(q), sql(&s, Auth::Admin, q, "csv").text.into_bytes());
    let rows: usize = sql(&s, Auth::Admin, "SELECT count(*) AS n FROM samples", "json").json()["rows"][0]["n"]
        .as_u64()
        .expect("a count") as usize;
    let out = cli("SELECT repeat('x', 900) AS pad FROM samples");
    assert!(out.len() > 11 << 20, "{} bytes ({rows} rows)", out.len());
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), rows + 1, "header and every row");
}
