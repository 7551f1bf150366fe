//! The MCP endpoint end to end: every exchange of spec mcp.md 4.1 replayed
//! from `fixtures/mcp/exchanges.json` against `strata serve`, plus the ones
//! that need several requests or computed values: body cap (4), rate limits
//! (5), the data table against `/api/v3/data` (23), series truncation (24),
//! every tool's output against its `outputSchema` with a JSON Schema
//! validator (14, 26), notifications/cancelled and revocation ending a
//! running call (27), and the loopback `Host` check.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::dataset::{self, NOW, T0};
use crate::harness::{agent, Server, TempDir};

const ACCEPT: &str = "application/json, text/event-stream";

/// Requests are spaced to stay under /mcp's 10/s per token, except where
/// the rate limit itself is tested.
static PACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn send(s: &Server, method: &str, auth: Option<&str>, headers: &[(String, String)], body: &[u8]) -> Reply {
    if PACE.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(105));
    }
    let url = s.url("/mcp");
    let a = agent();
    let mut req = axum_free_request(method, &url);
    if let Some(t) = auth {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("content-type") {
        req = req.header("Content-Type", "application/json");
    }
    if !has("accept") {
        req = req.header("Accept", ACCEPT);
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = match method {
        "POST" => a.run(req.body(body.to_vec()).expect("request")),
        _ => a.run(req.body(Vec::new()).expect("request")),
    }
    .unwrap_or_else(|e| panic!("{method} /mcp: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let mut resp = resp;
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply { status, headers, body }
}

fn axum_free_request(method: &str, url: &str) -> ureq::http::request::Builder {
    ureq::http::Request::builder().method(method).uri(url)
}

fn call(s: &Server, token: &str, body: &Value) -> Reply {
    send(s, "POST", Some(token), &[], body.to_string().as_bytes())
}

fn tool(s: &Server, token: &str, name: &str, args: Value) -> Value {
    let r = call(
        s,
        token,
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}}),
    );
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    r.json()["result"].clone()
}

fn mk(s: &Server, name: &str, scopes: &[&str]) -> (String, String) {
    let (st, v) = s.post_json("/api/v1/tokens", &json!({"name": name, "scopes": scopes}));
    assert_eq!(st, 201, "{v}");
    (v["id"].as_str().expect("id").into(), v["token"].as_str().expect("token").into())
}

/// 60 instances of one context, for truncation.
fn many_batch() -> Value {
    let series: Vec<Value> = (0..60)
        .map(|i| {
            json!({"node": "n1", "context": "fix.many", "instance": format!("fix.i{i:02}"), "dimension": "v",
                        "points": (6601..=7200).map(|k| json!([T0 + k, (i * 10 + k % 7) as f64])).collect::<Vec<_>>()})
        })
        .collect();
    json!({ "series": series })
}

fn check_case(s: &Server, case: &Value, tokens: &[(&str, String)]) -> Result<(), String> {
    let e = &case["expect"];
    let token = case["token"].as_str().unwrap_or("all");
    let auth = tokens.iter().find(|(k, _)| *k == token).map(|(_, t)| t.as_str());
    let host = s.base.trim_start_matches("http://");
    let origin = |v: &str| {
        v.replace("$OWN_ORIGIN_HTTPS", &format!("https://{host}")).replace("$OWN_ORIGIN", &format!("http://{host}"))
    };
    let headers: Vec<(String, String)> = case["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), origin(v.as_str().unwrap_or("")))).collect())
        .unwrap_or_default();
    let body = match (&case["raw"], &case["body"]) {
        (Value::String(r), _) => r.clone().into_bytes(),
        (_, Value::Null) => Vec::new(),
        (_, b) => b.to_string().into_bytes(),
    };
    let r = send(s, case["method"].as_str().unwrap_or("POST"), auth, &headers, &body);
    if e["status"] != json!(r.status) {
        return Err(format!("status {} (want {}): {}", r.status, e["status"], r.body));
    }
    for (h, want) in e["headers"].as_object().into_iter().flatten() {
        if r.header(h) != want.as_str() {
            return Err(format!("header {h}: {:?}", r.header(h)));
        }
    }
    for (h, want) in e["header_prefix"].as_object().into_iter().flatten() {
        if !r.header(h).is_some_and(|v| v.starts_with(want.as_str().unwrap_or(""))) {
            return Err(format!("header {h}: {:?}", r.header(h)));
        }
    }
    for h in e["absent_headers"].as_array().into_iter().flatten() {
        if r.header(h.as_str().unwrap_or("")).is_some() {
            return Err(format!("header {h} must be absent"));
        }
    }
    if e["empty_body"] == json!(true) {
        return if r.body.is_empty() { Ok(()) } else { Err(format!("body must be empty: {}", r.body)) };
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|x| format!("not JSON ({x}): {}", r.body))?;
    if let Some(code) = e["rpc_error"].as_i64() {
        if v["error"]["code"].as_i64() != Some(code) || v["jsonrpc"] != "2.0" {
            return Err(format!("want JSON-RPC error {code}: {v}"));
        }
    }
    if !e["exact"].is_null() && e["exact"] != v {
        return Err(format!("want exactly {}: {v}", e["exact"]));
    }
    for (ptr, want) in e["paths"].as_object().into_iter().flatten() {
        let got = v.pointer(ptr);
        let ok = match want.as_str() {
            Some("$present") => got.is_some(),
            Some("$absent") => got.is_none(),
            Some("$string") => got.is_some_and(Value::is_string),
            _ => got == Some(want) || (want.is_null() && got.is_none()),
        };
        if !ok {
            return Err(format!("{ptr}: {got:?} (want {want}) in {v}"));
        }
    }
    for (ptr, want) in e["contains"].as_object().into_iter().flatten() {
        let got = v.pointer(ptr).and_then(Value::as_array).cloned().unwrap_or_default();
        if !want.as_array().into_iter().flatten().all(|w| got.contains(w)) {
            return Err(format!("{ptr}: {got:?} lacks some of {want}"));
        }
    }
    if let Some(names) = e["tools"].as_array() {
        let got: Vec<Value> =
            v["result"]["tools"].as_array().into_iter().flatten().map(|t| t["name"].clone()).collect();
        if &got != names {
            return Err(format!("tools {got:?}, want {names:?}"));
        }
    }
    if e["tool_ok"] == json!(true) {
        let res = &v["result"];
        let text: Value =
            serde_json::from_str(res["content"][0]["text"].as_str().unwrap_or("")).map_err(|x| x.to_string())?;
        if res["content"][0]["type"] != "text" || text != res["structuredContent"] || res["isError"] == json!(true) {
            return Err(format!("not a successful tool result: {res}"));
        }
    }
    if let Some(want) = e["tool_error"].as_str() {
        let res = &v["result"];
        let text = res["content"][0]["text"].as_str().unwrap_or("");
        if res["isError"] != json!(true) || !text.contains(want) || res.get("structuredContent").is_some() {
            return Err(format!("want a tool error mentioning '{want}': {res}"));
        }
    }
    Ok(())
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("schema does not compile ({e}): {schema}"))
}

#[test]
fn mcp_replays_every_spec_exchange_and_tools_answer_like_the_query_api() {
    let s = Server::start_with(TempDir::new("mcp"), Some(NOW), &["--mcp-allowed-origin", "http://localhost:6274"]);
    dataset::load(&s);
    s.ingest_ok(&many_batch());
    let (_, t_mcp) = mk(&s, "mcp", &["strata:mcp:read", "strata:metadata:read"]);
    let (_, t_none) = mk(&s, "none", &["metrics-publisher"]);
    let (rid, t_revoked) = mk(&s, "revoked", &["scope:mcp"]);
    let del = crate::harness::call(
        &agent(),
        &s.base,
        "DELETE",
        &format!("/api/v1/tokens/{rid}"),
        Some(&format!("Bearer {}", s.token)),
        None,
    );
    assert_eq!(del.status, 200);
    let (_, t_all) = mk(&s, "all", &["scope:all"]);
    let tokens = [("all", t_all.clone()), ("mcp", t_mcp), ("none", t_none), ("revoked", t_revoked)];

    let cases: Vec<Value> = serde_json::from_str(include_str!("../../fixtures/mcp/exchanges.json")).expect("fixtures");
    let mut bad = Vec::new();
    for c in &cases {
        if let Err(e) = check_case(&s, c, &tokens) {
            bad.push(format!("#{} {}: {e}", c["n"], c["name"]));
        }
    }
    assert!(bad.is_empty(), "{} of {} exchanges failed:\n{}", bad.len(), cases.len(), bad.join("\n"));

    // 4: 8 MiB + 1 byte is refused unread (the answer comes before the body).
    {
        use std::io::{Read, Write};
        let addr = s.base.trim_start_matches("http://").to_string();
        let mut t = std::net::TcpStream::connect(&addr).expect("connect");
        t.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let len = (8 << 20) + 1;
        write!(t, "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t_all}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
            .expect("write");
        let mut buf = [0u8; 4096];
        let n = t.read(&mut buf).expect("read");
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        let body = head.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {head}"));
        assert_eq!((v["error"]["code"].clone(), v["id"].clone()), (json!(-32600), Value::Null));
    }

    // 14/26: schemas compile; every tool's answers validate against its outputSchema.
    let list = call(&s, &t_all, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).json();
    let tools = list["result"]["tools"].as_array().expect("tools").clone();
    let window = json!({"after": T0 + 1, "before": T0 + 600});
    let calls = [
        ("meta.whoami", json!({})),
        ("nodes.list", json!({})),
        ("nodes.list", json!({"pattern": "n1", "labels": ["env:e2e"], "limit": 1})),
        ("contexts.list", json!({"pattern": "disk.* system.*"})),
        ("contexts.list", json!({"window": window, "nodes": ["host-2"]})),
        ("contexts.search", json!({"q": "disk read"})),
        ("metrics.describe", json!({"context": "disk.io"})),
        ("data.query", json!({"contexts": ["system.cpu"], "window": window, "points": 5})),
        (
            "data.query",
            json!({"contexts": ["disk.io"], "window": window, "points": 3, "group_by": ["node"], "aggregation": "sum", "time_group": "max"}),
        ),
        ("data.summary", json!({"contexts": ["disk.io"], "window": window, "sort": "max"})),
        ("weights.rank", json!({"highlight": {"after": T0 + 3001, "before": T0 + 3600}, "method": "volume"})),
        (
            "weights.rank",
            json!({"highlight": {"after": T0 + 3001, "before": T0 + 3600}, "method": "value", "level": "context"}),
        ),
    ];
    for t in &tools {
        validator(&t["inputSchema"]);
        validator(&t["outputSchema"]);
    }
    for (name, args) in &calls {
        let t = tools.iter().find(|t| t["name"] == json!(name)).expect("listed");
        assert!(validator(&t["inputSchema"]).is_valid(args), "{name} {args} is valid input");
        let res = tool(&s, &t_all, name, args.clone());
        assert_ne!(res["isError"], json!(true), "{name} {args}: {res}");
        let sc = &res["structuredContent"];
        let errors: Vec<String> = validator(&t["outputSchema"]).iter_errors(sc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} {args}: output fails its schema: {errors:?}\n{sc}");
        let text: Value = serde_json::from_str(res["content"][0]["text"].as_str().expect("text")).expect("json text");
        assert_eq!(&text, sc, "{name}: content[0].text is the structured content");
    }
    let who = tool(&s, &t_all, "meta.whoami", json!({}))["structuredContent"].clone();
    assert_eq!(who["limits"]["rate_per_second"], 10);
    assert_eq!(who["server"]["now"], json!(crate_rfc3339(NOW)));
    let found = tool(&s, &t_all, "contexts.search", json!({"q": "disk read"}))["structuredContent"].clone();
    assert_eq!(found["matches"][0]["context"], "disk.io", "{found}");
    // A context's instances count as describe lists them: once per node.
    let listed = tool(&s, &t_all, "contexts.list", json!({}))["structuredContent"]["contexts"].clone();
    let mut per_node = 0;
    for c in listed.as_array().expect("contexts") {
        let d = tool(&s, &t_all, "metrics.describe", json!({"context": c["id"], "max_instances": 200}));
        let d = &d["structuredContent"];
        assert_eq!(c["instances"], d["instances_total"], "{c} against {d}");
        let listed = d["instances"].as_array().expect("instances");
        let ids: std::collections::BTreeSet<&str> = listed.iter().filter_map(|i| i["id"].as_str()).collect();
        per_node += usize::from(ids.len() < listed.len());
    }
    assert!(per_node > 0, "some context has one instance id on two nodes: {listed}");

    // 23: the table equals /api/v3/data's answer for the same query.
    let q = tool(
        &s,
        &t_all,
        "data.query",
        json!({"contexts": ["system.cpu"], "window": {"after": T0 + 1, "before": T0 + 600}, "points": 5}),
    );
    let sc = &q["structuredContent"];
    let rows = sc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(sc["columns"][0], "time");
    let v3 = s.query_ok(&json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": T0 + 1, "before": T0 + 600, "points": 5},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "average"}], "time": {"time_group": "average"}},
        "options": ["flip"]}));
    let labels: Vec<String> = v3["result"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_str().unwrap_or("").to_string())
        .collect();
    let cols: Vec<String> =
        sc["columns"].as_array().expect("cols").iter().map(|c| c.as_str().unwrap_or("").to_string()).collect();
    assert_eq!(cols, labels, "same series in the same order");
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().expect("row");
        assert_eq!(row.len(), cols.len());
        let stamp = row[0].as_str().expect("time");
        assert!(stamp.ends_with('Z'), "{stamp}");
        let v3row = &v3["result"]["data"][i];
        assert_eq!(json!(crate_rfc3339(v3row[0].as_i64().expect("t"))), row[0]);
        for j in 1..cols.len() {
            let want = v3row[j][0].as_f64().expect("v3 value");
            let got = row[j].as_f64().expect("mcp value");
            assert!((got - want).abs() <= want.abs() * 5e-4 + 1e-9, "row {i} col {j}: {got} vs {want}");
        }
    }

    // `window.last` is `after=-N, before=now`: the rows /api/v3/data gives
    // for that relative window, bucket for bucket.
    let last =
        tool(&s, &t_all, "data.query", json!({"contexts": ["system.cpu"], "window": {"last": "10m"}, "points": 2}));
    let rel = s.query_ok(&json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": -600, "before": 0, "points": 2},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "average"}], "time": {"time_group": "average"}},
        "options": ["flip"]}));
    let (mcp_rows, v3_rows) = (last["structuredContent"]["rows"].clone(), rel["result"]["data"].clone());
    assert_eq!(mcp_rows.as_array().map(Vec::len), Some(2), "{last}");
    for (m, v) in mcp_rows.as_array().expect("rows").iter().zip(v3_rows.as_array().expect("data")) {
        assert_eq!(m[0], json!(crate_rfc3339(v[0].as_i64().expect("t"))), "{mcp_rows} vs {v3_rows}");
        let (got, want) = (m[1].as_f64().expect("mcp value"), v[1][0].as_f64().expect("v3 value"));
        assert!((got - want).abs() <= want.abs() * 5e-4 + 1e-9, "{got} vs {want}");
    }
    // weights.rank over `last: 10m` reads the windows /api/v2/weights?after=-600 reads.
    let w = tool(&s, &t_all, "weights.rank", json!({"highlight": {"last": "10m"}, "method": "volume"}));
    let (status, rest) = s.get("/api/v2/weights?after=-600&before=0&method=volume");
    assert_eq!(status, 200, "{rest}");
    let at = |v: &Value| json!(crate_rfc3339(v.as_i64().expect("epoch")));
    let sc = &w["structuredContent"];
    assert_eq!(sc["highlight"]["after"], at(&rest["request"]["window"]["after"]), "{sc} vs {rest}");
    assert_eq!(sc["highlight"]["before"], at(&rest["request"]["window"]["before"]), "{sc} vs {rest}");
    assert_eq!(sc["baseline"]["after"], at(&rest["request"]["baseline"]["after"]), "{sc} vs {rest}");
    assert_eq!(sc["baseline"]["before"], at(&rest["request"]["baseline"]["before"]), "{sc} vs {rest}");
    // A 7-day baseline of a 1-day highlight: the engine lengthens it to a
    // power-of-two multiple (8 days), past the tool's cap; the tool reads
    // the longest within it (4 days, ending where asked).
    const DAY: i64 = 86_400;
    let highlight = json!({"after": NOW - 2 * DAY + 1, "before": NOW - DAY});
    let baseline = json!({"after": NOW - 9 * DAY + 1, "before": NOW - 2 * DAY});
    let w = tool(&s, &t_all, "weights.rank", json!({"highlight": highlight, "baseline": baseline}));
    let sc = &w["structuredContent"];
    assert_eq!(sc["baseline"]["after"], json!(crate_rfc3339(NOW - 6 * DAY + 1)), "{w}");
    assert_eq!(sc["baseline"]["before"], json!(crate_rfc3339(NOW - 2 * DAY)), "{w}");
    // A node's name finds its contexts, as /api/v2/q does.
    let by_node =
        tool(&s, &t_all, "contexts.search", json!({"q": "host-2", "limit": 100}))["structuredContent"].clone();
    let (status, q) = s.get("/api/v2/q?q=host-2");
    assert_eq!(status, 200, "{q}");
    let want: std::collections::BTreeSet<String> =
        q["contexts"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let got: std::collections::BTreeSet<String> = by_node["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["context"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!got.is_empty() && got == want, "{by_node} vs {q}");
    assert!(by_node["matches"][0]["matched_in"].as_array().is_some_and(|k| k.contains(&json!("node"))), "{by_node}");

    // "Did you mean" names near ids only.
    let said = |args: Value| {
        let r = tool(&s, &t_all, "metrics.describe", args);
        assert_eq!(r["isError"], json!(true), "{r}");
        r["content"][0]["text"].as_str().unwrap_or("").to_string()
    };
    assert!(said(json!({"context": "system.cpx"})).contains("did you mean 'system.cpu'"));
    let far = said(json!({"context": "nope"}));
    assert!(far.contains("no context 'nope'") && !far.contains("did you mean"), "{far}");

    // 24: 60 series, max_series 50.
    let many = tool(
        &s,
        &t_all,
        "data.query",
        json!({"contexts": ["fix.many"], "window": {"after": T0 + 6601, "before": T0 + 7200},
        "points": 2, "group_by": ["instance"], "max_series": 50}),
    );
    let many = many.get("structuredContent").cloned().unwrap_or_else(|| panic!("{many}"));
    assert_eq!(many["series"].as_array().map(Vec::len), Some(50), "{many}");
    assert_eq!(many["truncated"]["series_dropped"], 10);
    assert!(!many.to_string().contains("fix.i00@"), "the smallest series go first");
    assert_eq!(
        tool(&s, &t_all, "data.query", json!({"contexts": ["fix.many"], "points": 500, "max_series": 50}))["isError"],
        true
    );
    assert_eq!(tool(&s, &t_all, "data.query", json!({"contexts": ["no.such"], "window": window}))["isError"], true);

    // data.summary over two contexts: each series names its own.
    let sum = tool(&s, &t_all, "data.summary", json!({"contexts": ["disk.io", "system.cpu"], "window": window}));
    let series = sum["structuredContent"]["series"].as_array().cloned().unwrap_or_else(|| panic!("{sum}"));
    let contexts: std::collections::BTreeSet<&str> = series.iter().filter_map(|x| x["context"].as_str()).collect();
    assert_eq!(contexts, ["disk.io", "system.cpu"].into(), "{sum}");
    for x in &series {
        let one = tool(&s, &t_all, "data.summary", json!({"contexts": [x["context"]], "window": window}));
        let alone = one["structuredContent"]["series"].as_array().cloned().unwrap_or_default();
        assert!(
            alone.iter().any(|y| y["label"] == x["label"] && y["avg"] == x["avg"]),
            "{x} is in its context's own summary"
        );
    }
    // Contexts collected at other intervals share the combined grid.
    let slow: Vec<Value> = (1..=60).map(|k| json!([T0 + 10 * k, k as f64])).collect();
    s.ingest_ok(&json!({"series": [{"node": "n1", "context": "fix.slow", "instance": "fix.slow", "dimension": "v",
                                    "update_every": 10, "points": slow}]}));
    // Its retention per tier is in sample times (T0 + 10 .. T0 + 600), not
    // the rollup intervals' ends (tier 1 said T0 + 1, its ten-minute point's start).
    let d = tool(&s, &t_all, "metrics.describe", json!({"context": "fix.slow"}));
    let ret = d["structuredContent"]["retention"].as_array().cloned().unwrap_or_else(|| panic!("{d}"));
    let v3 = s.query_ok(
        &json!({"scope": {"contexts": ["fix.slow"]}, "window": {"after": T0, "before": T0 + 700, "points": 1}}),
    );
    let (first, last) =
        (v3["db"]["first_entry"].as_i64().expect("first"), v3["db"]["last_entry"].as_i64().expect("last"));
    assert_eq!((first, last), (T0 + 10, T0 + 600), "{v3}");
    for t in &ret {
        assert_eq!(t["first_entry"], ret[0]["first_entry"], "tier {t} vs tier 0: {d}");
        assert_eq!(t["last_entry"], ret[0]["last_entry"], "tier {t} vs tier 0: {d}");
    }
    assert_ne!(ret[0]["first_entry"], ret[0]["last_entry"]);
    for order in [["fix.slow", "system.cpu"], ["system.cpu", "fix.slow"]] {
        let sum = tool(&s, &t_all, "data.summary", json!({"contexts": order, "window": window}));
        assert_ne!(sum["isError"], json!(true), "{sum}");
        for x in sum["structuredContent"]["series"].as_array().expect("series") {
            assert!(x["coverage_pct"].as_f64().is_some_and(|c| c <= 100.0), "{x}");
        }
    }
    // A window ending now ends where /api/v3/data's relative window ends
    // (the last complete second), not in the future.
    let q = tool(&s, &t_all, "data.query", json!({"contexts": ["system.cpu"], "window": {"last": "1h"}, "points": 4}));
    let rows = q["structuredContent"]["rows"].as_array().cloned().unwrap_or_else(|| panic!("{q}"));
    let v3 = s.query_ok(&json!({"scope": {"contexts": ["system.cpu"]}, "window": {"after": -3600, "before": 0, "points": 4},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "average"}], "time": {"time_group": "average"}},
        "options": ["flip"]}));
    let last_v3 = v3["result"]["data"].as_array().and_then(|d| d.last()).map(|r| r[0].as_i64().expect("t"));
    let last = rows.last().map(|r| r[0].clone());
    assert_eq!(last, last_v3.map(|t| json!(crate_rfc3339(t))), "{q}");
    assert!(last_v3.is_some_and(|t| t <= NOW), "no row after now");
    // `last` with `before` is refused, not half read.
    let both = tool(
        &s,
        &t_all,
        "data.query",
        json!({"contexts": ["system.cpu"], "window": {"last": "1h", "before": T0 + 600}}),
    );
    assert_eq!(both["isError"], true, "{both}");
    let unlabelled = tool(&s, &t_all, "data.query", json!({"contexts": ["system.cpu"], "group_by": ["label"]}));
    assert_eq!(unlabelled["isError"], true, "group_by label names its keys: {unlabelled}");
    // CORS for a configured origin: the preflight needs no token, and
    // every answer (a 401 too) names the origin; another origin gets none.
    let from =
        |o: &str| vec![("Origin".to_string(), o.to_string()), ("Access-Control-Request-Method".into(), "POST".into())];
    let pre = send(&s, "OPTIONS", None, &from("http://localhost:6274"), b"");
    assert_eq!(pre.status, 204, "{}", pre.body);
    assert_eq!(pre.header("access-control-allow-origin"), Some("http://localhost:6274"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("POST"));
    assert!(pre.header("access-control-allow-headers").is_some_and(|h| h.contains("mcp-protocol-version")));
    let ping = br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#;
    for auth in [Some(t_all.as_str()), None] {
        let r = send(&s, "POST", auth, &from("http://localhost:6274"), ping);
        assert_eq!(r.header("access-control-allow-origin"), Some("http://localhost:6274"), "{} {}", r.status, r.body);
    }
    let other = send(&s, "OPTIONS", None, &from("http://evil.example"), b"");
    assert!(other.status != 204 && other.header("access-control-allow-origin").is_none(), "{}", other.status);
    // Ids are echoed as written; one that would be rewritten is refused.
    let big = call(
        &s,
        &t_all,
        &serde_json::from_str::<Value>(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#).expect("json"),
    );
    assert!(big.body.contains("\"id\":18446744073709551615"), "{}", big.body);
    let r = send(&s, "POST", Some(&t_all), &[], br#"{"jsonrpc":"2.0","id":1e3,"method":"ping"}"#);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (400, json!(-32600)), "{}", r.body);

    // 5: 10 per second and 120 per minute per token; another token is unaffected.
    PACE.store(false, std::sync::atomic::Ordering::Relaxed);
    let (_, limited) = mk(&s, "limited", &["scope:mcp"]);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let statuses: Vec<u16> = (0..11).map(|_| call(&s, &limited, &ping).status).collect();
    assert_eq!(&statuses[..10], &[200; 10]);
    let r = call(&s, &limited, &ping);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["error"]["code"], -32000);
    assert_eq!(call(&s, &t_all, &ping).status, 200, "other tokens are unaffected");
    let (_, paced) = mk(&s, "paced", &["scope:mcp"]);
    // 120 calls inside the minute, never 10 in a second: at least 150 ms
    // apart, so a stalled call is not followed by a burst that catches up.
    let started = Instant::now();
    let mut last: Option<Instant> = None;
    for i in 0..120 {
        let at = Duration::from_millis(200 * i);
        std::thread::sleep(at.saturating_sub(started.elapsed()));
        if let Some(last) = last {
            std::thread::sleep(Duration::from_millis(150).saturating_sub(last.elapsed()));
        }
        last = Some(Instant::now());
        let r = call(&s, &paced, &ping);
        assert_eq!(r.status, 200, "request {i} at {:?}: {}", started.elapsed(), r.body);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(58),
        "the 120 paced calls took {took:?}: the minute's check needs them inside it"
    );
    assert_eq!(call(&s, &paced, &ping).status, 429, "the 121st within a minute");

    // 27: revocation ends a running call with -32001; the next request is a 401.
    // Before it, notifications/cancelled ends another running call. The calls
    // must still be running when the token goes or the cancel comes: 400 series of four
    // hours every 2 s (their own update_every group, so the dataset's sealed
    // hours do not make them late), a median per bucket, and the revocation
    // only once /health shows the call running.
    for from in (T0 - 14_398..=T0).step_by(1200) {
        let slow: Vec<Value> = (0..400)
            .map(|m| json!({"node": "n1", "context": format!("slow.c{}", m / 10), "dimension": format!("d{}", m % 10),
                            "update_every": 2,
                            "points": (from..from + 1200).step_by(2).map(|t| json!([t, ((t * 7 + m) % 1000) as f64])).collect::<Vec<_>>()}))
            .collect();
        assert_eq!(s.ingest_ok(&json!({ "series": slow })), (400 * 600, 0));
    }
    let running = || s.get("/health").1["queries"]["running"].as_u64().unwrap_or(0);
    assert_eq!(running(), 0);

    // notifications/cancelled with the call's id (same token) ends it as a
    // tool error; the token stays valid.
    let (_, canceller) = mk(&s, "canceller", &["scope:mcp"]);
    let (runner, started) = slow_call(&s, &canceller, 28);
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 28, "reason": "user"}});
    let other = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 28}});
    assert_eq!(call(&s, &t_all, &other).status, 202, "another token's cancel is accepted but touches nothing");
    // Taken before the request: the call may answer before the 202 is read.
    let cancelled_at = Instant::now();
    assert_eq!(call(&s, &canceller, &note).status, 202);
    let (status, text, ended) = runner.join().expect("runner");
    let v: Value = serde_json::from_str(&text).expect("json");
    eprintln!(
        "mcp cancel: call ended {:?} after the notification: {status} {v}",
        ended.saturating_duration_since(cancelled_at)
    );
    assert!(ended > cancelled_at, "the call ended before the cancel ({:?}): make it slower", started.elapsed());
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(v["result"]["content"][0]["text"].as_str().unwrap_or("").contains("cancelled"), "{v}");
    assert!(ended.duration_since(cancelled_at) < Duration::from_secs(1));
    assert_eq!(running(), 0, "the cancelled call stopped");
    assert_eq!(call(&s, &canceller, &ping).status, 200, "cancelling does not revoke");

    let (vid, victim) = mk(&s, "victim", &["scope:mcp"]);
    let (runner, started) = slow_call(&s, &victim, 27);
    let revoked_at = Instant::now();
    let del = crate::harness::call(
        &agent(),
        &s.base,
        "DELETE",
        &format!("/api/v1/tokens/{vid}"),
        Some(&format!("Bearer {}", s.token)),
        None,
    );
    assert_eq!(del.status, 200);
    let (status, text, ended) = runner.join().expect("runner");
    let v: Value = serde_json::from_str(&text).expect("json");
    eprintln!(
        "mcp revocation: call ended {:?} after revoke ({:?} after start): {status} {v}",
        ended.saturating_duration_since(revoked_at),
        started.elapsed()
    );
    assert!(ended > revoked_at, "the call ended before the revocation ({:?}): make it slower", started.elapsed());
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert!(ended.duration_since(revoked_at) < Duration::from_secs(1));
    assert_eq!(running(), 0, "the revoked call stopped");
    assert_eq!(call(&s, &victim, &ping).status, 401);

    // A name other than the loopback server's own (DNS rebinding) is a 403.
    {
        use std::io::{Read, Write};
        let addr = s.base.trim_start_matches("http://").to_string();
        let port = addr.rsplit(':').next().expect("port");
        for (host, want) in [(format!("evil.example:{port}"), "403"), (format!("localhost:{port}"), "200")] {
            let mut t = std::net::TcpStream::connect(&addr).expect("connect");
            t.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let body = ping.to_string();
            write!(t, "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {t_all}\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                .expect("write");
            let mut head = String::new();
            let _ = t.read_to_string(&mut head);
            assert!(head.starts_with(&format!("HTTP/1.1 {want}")), "Host {host}: {head}");
        }
    }
}

/// Starts a data.query on a thread that runs for a while (400 series, four
/// hours, a median per bucket) and returns once /health shows it running.
fn slow_call(s: &Server, token: &str, id: i64) -> (std::thread::JoinHandle<(u16, String, Instant)>, Instant) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "data.query",
        "arguments": {"contexts": ["slow.*"], "window": {"after": T0 - 14_399, "before": T0}, "points": 500,
                      "max_series": 20, "time_group": "median"}}});
    let (base, tok) = (s.base.clone(), token.to_string());
    let started = Instant::now();
    let runner = std::thread::spawn(move || {
        let r = crate::harness::call(
            &agent(),
            &base,
            "POST",
            "/mcp",
            Some(&format!("Bearer {tok}")),
            Some(body.to_string().as_bytes()),
        );
        (r.status, r.text, Instant::now())
    });
    let running = || s.get("/health").1["queries"]["running"].as_u64().unwrap_or(0);
    while running() == 0 && !runner.is_finished() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    (runner, started)
}

fn crate_rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// A real MCP client: the official Python SDK (PyPI `mcp`, installed into
/// `target/mcp-venv` on first use) drives `/mcp` in legacy and in
/// 2026-07-28 mode (`tests/mcp_client_smoke.py`).
#[test]
fn the_python_mcp_sdk_drives_the_endpoint() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/mcp-venv");
    let python = venv.join("bin/python");
    let has_sdk = || std::process::Command::new(&python).args(["-c", "import mcp"]).status().is_ok_and(|s| s.success());
    if !has_sdk() {
        let ok = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(ok.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let pip = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "mcp==2.3.0"])
            .status();
        assert!(pip.is_ok_and(|s| s.success()), "pip install mcp==2.3.0 failed (PyPI must be reachable)");
    }
    let s = Server::start(None);
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/mcp_client_smoke.py"))
        .arg(format!("{}/mcp", s.base))
        .arg(&s.token)
        .arg("system.cpu")
        .output()
        .expect("running the Python MCP client");
    assert!(
        out.status.success(),
        "the Python MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A context that began reporting within the last interval (its only
/// sample after the window's rounded-down end) has nothing in a summary's
/// window; a summary of several contexts leaves it out and answers the
/// others, as `data.query` does, instead of failing whole.
#[test]
fn a_summary_leaves_out_a_context_newer_than_its_window() {
    let s = Server::start(Some(NOW));
    dataset::load(&s);
    let (_, t) = mk(&s, "all", &["scope:all"]);
    for ctx in ["fix.late", "fix.later"] {
        s.ingest_ok(&json!({"series": [{"node": "n1", "context": ctx, "dimension": "v", "points": [[NOW, 1.0]]}]}));
    }
    let window = json!({"after": -3600});
    let alone = tool(&s, &t, "data.summary", json!({"contexts": ["system.cpu"], "window": window}));
    let want = alone["structuredContent"]["series"].as_array().cloned().unwrap_or_else(|| panic!("{alone}"));
    assert!(!want.is_empty(), "{alone}");
    for contexts in [json!(["fix.late", "system.cpu"]), json!(["system.cpu", "fix.late"])] {
        let sum = tool(&s, &t, "data.summary", json!({"contexts": contexts, "window": window}));
        assert_ne!(sum["isError"], json!(true), "{contexts}: {sum}");
        assert_eq!(sum["structuredContent"]["series"].as_array(), Some(&want), "{contexts}: {sum}");
    }
    let late = tool(
        &s,
        &t,
        "data.summary",
        json!({"contexts": ["fix.late"], "window": {"after": NOW - 600, "before": NOW - 1}}),
    );
    assert_eq!(late["isError"], json!(true), "nothing of it in a window before its sample: {late}");
    // Only new contexts: nothing to summarise is an error that says so.
    let both = tool(&s, &t, "data.summary", json!({"contexts": ["fix.late", "fix.later"], "window": window}));
    let text = both["content"][0]["text"].as_str().unwrap_or_default();
    assert!(both["isError"] == json!(true) && text.contains("no data matches"), "{both}");
}

/// JSON has one number type: `5.0` for an integer argument is 5 (clients
/// and models write floats), while `5.5`, a value under the minimum and one
/// past any integer are refused as before, naming the argument.
#[test]
fn mcp_reads_integral_floats_as_integers() {
    let s = Server::start(Some(NOW));
    dataset::load(&s);
    let (_, t) = mk(&s, "all", &["scope:all"]);
    let ints = json!({"contexts": ["system.cpu"], "window": {"after": T0 + 1, "before": T0 + 600}, "points": 5,
                      "max_series": 3, "precision": 6});
    let floats = json!({"contexts": ["system.cpu"], "window": {"after": (T0 + 1) as f64, "before": (T0 + 600) as f64},
                        "points": 5.0, "max_series": 3.0, "precision": 6.0});
    let want = tool(&s, &t, "data.query", ints);
    let got = tool(&s, &t, "data.query", floats);
    assert_ne!(got["isError"], json!(true), "{got}");
    assert_eq!(got["structuredContent"]["rows"].as_array().map(Vec::len), Some(5), "{got}");
    assert_eq!(got["structuredContent"], want["structuredContent"], "5.0 reads as 5");
    let relative = tool(&s, &t, "data.summary", json!({"contexts": ["system.cpu"], "window": {"after": -600.0}}));
    assert_ne!(relative["isError"], json!(true), "a relative float time: {relative}");
    let listed = tool(&s, &t, "nodes.list", json!({"limit": 1.0}));
    assert_eq!(listed["structuredContent"]["nodes"].as_array().map(Vec::len), Some(1), "{listed}");

    for (points, why) in [
        (json!(5.5), "'points' must be of type integer, got number"),
        (json!(0.0), "'points' must be at least 1"),
        (json!(-5.0), "'points' must be at least 1"),
        (json!(501.0), "'points' must be at most 500"),
        (json!(1e300), "'points' must be of type integer, got number"),
    ] {
        let r = tool(&s, &t, "data.query", json!({"contexts": ["system.cpu"], "points": points}));
        let text = r["content"][0]["text"].as_str().unwrap_or_default();
        assert!(r["isError"] == json!(true) && text.contains(why), "points {points}: {r}");
    }
}
