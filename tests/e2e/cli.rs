//! The `strata` command line: gen-fixtures, ingest, query, exit codes.

use std::process::Output;

use serde_json::{json, Value};

use crate::dataset::T0;
use crate::harness::{describe, run_cli, Server, TempDir};

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_cli(args, stdin)
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", describe(o)))
}

/// A URL nothing listens on: bind a free port, then release it.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

const END: i64 = T0 + 3600;

#[test]
fn gen_fixtures_then_cli_ingest_and_cli_query_round_trip() {
    let out = TempDir::new("fixtures");
    let dir = out.path.to_str().expect("utf-8 path").to_string();
    let end = END.to_string();
    let o = run(
        &["gen-fixtures", "--out", &dir, "--nodes", "1", "--metrics-per-node", "5", "--hours", "1", "--end", &end],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "gen-fixtures: {}", describe(&o));
    let mut files: Vec<_> = std::fs::read_dir(&out.path)
        .expect("read fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "gen-fixtures wrote no .json files");
    let mut points_in_files = 0;
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).expect("read fixture")).expect("fixture is JSON");
        let series = v["series"].as_array().expect("a batch has series");
        assert!(!series.is_empty(), "{} has series", f.display());
        points_in_files += series.iter().map(|s| s["points"].as_array().map_or(0, Vec::len) as u64).sum::<u64>();
    }

    let server = crate::harness::Server::start(Some(END + 10));
    let mut total = 0;
    for f in &files {
        let o = run(&["ingest", "--url", &server.base, "--token", &server.token, f.to_str().expect("utf-8")], None);
        assert_eq!(o.status.code(), Some(0), "ingest {}: {}", f.display(), describe(&o));
        let report = stdout_json(&o);
        let accepted = report["accepted"].as_u64().unwrap_or(0);
        assert!(accepted > 0, "report {report}");
        assert_eq!(report["rejected_late"], json!(0), "report {report}");
        total += accepted;
    }
    assert_eq!(total, points_in_files, "every point in the fixture files is accepted");

    let body = json!({
        "window": {"after": T0 + 1, "before": END, "points": 60},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                         "time": {"time_group": "average"}},
    });
    let body_file = out.path.join("body.json");
    std::fs::write(&body_file, serde_json::to_vec(&body).expect("encode")).expect("write body");
    let o = run(&["query", "--url", &server.base, "--token", &server.token, body_file.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(0), "query: {}", describe(&o));
    let resp = stdout_json(&o);
    let labels = resp["result"]["labels"].as_array().expect("json2 result.labels");
    assert_eq!(labels[0], json!("time"));
    assert!(labels.len() > 1, "some series: {labels:?}");
    let rows = resp["result"]["data"].as_array().expect("json2 result.data");
    assert_eq!(rows.len(), 60, "60 one-minute rows");
    assert!(rows.iter().any(|r| r[1][0].is_number()), "some values");
    assert_eq!(rows[0][0], json!(END), "newest first, ending at --end");
    assert_eq!(resp["view"]["update_every"], json!(60));

    // The same body over HTTP gives the same result; and from stdin too.
    let direct = server.query_ok(&body);
    assert_eq!(direct["result"], resp["result"], "CLI and HTTP answers differ");
    let bytes = serde_json::to_vec(&body).expect("encode");
    let o = run(&["query", "--url", &server.base, "--token", &server.token, "-"], Some(&bytes));
    assert_eq!(o.status.code(), Some(0), "query from stdin: {}", describe(&o));
    assert_eq!(stdout_json(&o)["result"], direct["result"]);
}

#[test]
fn cli_ingest_without_token_uses_admin_token_from_data_dir() {
    let server = crate::harness::Server::start(Some(T0 + 100));
    let batch = json!({"series": [{"node": "n1", "context": "cli.tok", "dimension": "d", "points": [[T0 + 1, 1.0]]}]});
    let dd = server.data_dir().to_str().expect("utf-8").to_string();
    let bytes = serde_json::to_vec(&batch).expect("encode");
    let o = run(&["ingest", "--url", &server.base, "--data-dir", &dd, "-"], Some(&bytes));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(stdout_json(&o), json!({"accepted": 1, "rejected_late": 0, "new_series": 1}));
}

#[test]
fn cli_query_against_unreachable_server_exits_1_with_one_line_reason() {
    let tmp = TempDir::new("cli-dead");
    let body = tmp.path.join("body.json");
    std::fs::write(&body, b"{}").expect("write body");
    let o = run(&["query", "--url", &dead_url(), "--token", "t", body.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err:?}");
    let o = run(&["ingest", "--url", &dead_url(), "--token", "t", body.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(1), "ingest to a dead URL: {}", describe(&o));
}

#[test]
fn cli_query_rejected_by_server_prints_the_error_and_exits_1() {
    let server = crate::harness::Server::start(Some(T0 + 100));
    let body = serde_json::to_vec(&json!({"aggregations": {"time": {"time_group": "avg2"}}})).expect("encode");
    let o = run(&["query", "--url", &server.base, "--token", &server.token, "-"], Some(&body));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let printed = stdout_json(&o);
    assert_eq!(printed["status"], json!(400), "{printed}");
    let o = run(&["query", "--url", &server.base, "--token", "wrong-token", "-"], Some(b"{}"));
    assert_eq!(o.status.code(), Some(1), "wrong token: {}", describe(&o));
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["serve", "--bogus"][..],
        &["no-such-command"],
        &["gen-fixtures"],
        &["query", "--url"],
        &["serve", "--listen", "not-an-address"],
    ] {
        let o = run(args, None);
        assert_eq!(o.status.code(), Some(2), "strata {args:?}: {}", describe(&o));
        assert!(!o.stderr.is_empty(), "strata {args:?} explains itself on stderr");
    }
}

#[test]
fn token_cli_refuses_to_edit_the_data_dir_of_a_running_server_it_cannot_reach() {
    let server = Server::start(None);
    let dir = server.data_dir().to_str().expect("utf-8 path").to_string();
    let url = dead_url();
    let o = run(&["token", "--data-dir", &dir, "--url", &url, "create", "--name", "x", "--scopes", "viewer"], None);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did not answer"), "{}", describe(&o));
    // Through the real address it works.
    let o =
        run(&["token", "--data-dir", &dir, "--url", &server.base, "create", "--name", "x", "--scopes", "viewer"], None);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(stdout_json(&o)["token"].as_str().is_some_and(|t| t.starts_with("strata_")));
}
