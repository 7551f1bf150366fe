//! Metadata endpoints end to end on a small, fully known dataset: node and
//! context listings, full-text search, weights (a planted anomaly ranks
//! first by every method), allmetrics (the Prometheus output parses as the
//! text exposition format), the v1 inventory endpoints, the node allowlist
//! on all of them, and 4xx JSON errors for bad parameters.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::dataset::T0;
use crate::harness::{Auth, Server};

/// One hour of per-second samples: T0+1 ..= T0+SPAN.
const SPAN: i64 = 3600;
const NOW: i64 = T0 + SPAN + 10;
/// The last five minutes: where the anomaly is planted.
const HIGHLIGHT: (i64, i64) = (T0 + SPAN - 299, T0 + SPAN);

/// (node, hostname, node labels).
const NODES: [(&str, &str, &str); 2] = [("n1", "host-1", "prod"), ("n2", "host-2", "dev")];
/// The metric carrying the planted anomaly.
const PLANTED: (&str, &str, &str) = ("n2", "app.requests", "err");

/// Deterministic noise in [-10, 10].
fn noise(seed: u64, k: i64) -> f64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x % 2001) as f64 / 100.0 - 10.0
}

fn batch() -> Value {
    let mut series = Vec::new();
    let mut seed = 0;
    for (node, _, _) in NODES {
        let net = if node == "n1" { "net.eth0" } else { "net.eth1" };
        let device = &net[4..];
        for (context, instance, dims, units, labels) in [
            ("app.requests", "app.requests", &["ok", "err", "slow"][..], "requests/s", json!({"service": "api"})),
            ("net.net", net, &["received", "sent"][..], "kilobits/s", json!({"device": device})),
        ] {
            for dim in dims {
                seed += 1;
                let planted = (node, context, *dim) == PLANTED;
                let points: Vec<Value> = (1..=SPAN)
                    .map(|k| {
                        let t = T0 + k;
                        let v = 100.0 + noise(seed, k);
                        if planted && t >= HIGHLIGHT.0 {
                            json!([t, v + 500.0, true])
                        } else {
                            json!([t, v])
                        }
                    })
                    .collect();
                series.push(json!({"node": node, "context": context, "instance": instance, "dimension": dim,
                                   "units": units, "title": format!("{context} title"), "labels": labels,
                                   "points": points}));
            }
        }
    }
    let nodes: Vec<Value> =
        NODES.iter().map(|(id, host, env)| json!({"id": id, "hostname": host, "labels": {"env": env}})).collect();
    json!({ "nodes": nodes, "series": series })
}

fn start() -> Server {
    let s = Server::start(Some(NOW));
    s.ingest_ok(&batch());
    s
}

fn get_ok(s: &Server, path: &str) -> Value {
    let (status, v) = s.get(path);
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// The dimension row names (`context/instance/dimension@node`) of a weights
/// answer, heaviest first.
fn ranked(v: &Value) -> Vec<String> {
    let d = &v["dictionaries"];
    v["result"]
        .as_array()
        .expect("result rows")
        .iter()
        .filter(|r| r[0] == json!(0))
        .map(|r| {
            let at = |k: &str, i: usize| d[k][r[i].as_u64().expect("index") as usize].clone();
            format!(
                "{}/{}/{}@{}",
                at("contexts", 2)["id"].as_str().unwrap_or("?"),
                at("instances", 3)["id"].as_str().unwrap_or("?"),
                at("dimensions", 4)["id"].as_str().unwrap_or("?"),
                at("nodes", 1)["nd"].as_str().unwrap_or("?"),
            )
        })
        .collect()
}

/// Samples (labels, value) by metric name.
type Families = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// Checks Prometheus text exposition format: `# TYPE` before its samples,
/// a family's samples together, names, labels, values and timestamps well
/// formed. Returns samples by metric name.
fn parse_prometheus(text: &str) -> Families {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
    };
    let mut out = Families::new();
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    for (ln, line) in text.lines().enumerate() {
        let ln = ln + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or_default().to_string();
            let kind = parts.next().unwrap_or_default();
            assert!(name_ok(&name), "line {ln}: bad name in {line}");
            assert!(["gauge", "counter", "untyped", "summary", "histogram"].contains(&kind), "line {ln}: {line}");
            assert!(typed.insert(name.clone()), "line {ln}: second TYPE for {name}");
            assert!(!out.contains_key(&name), "line {ln}: TYPE after samples of {name}");
            current = Some(name);
            continue;
        }
        assert!(!line.starts_with('#') || line.starts_with("# HELP "), "line {ln}: {line}");
        if line.starts_with('#') {
            continue;
        }
        let brace = line.find('{').unwrap_or_else(|| panic!("line {ln}: no labels: {line}"));
        let name = &line[..brace];
        assert!(name_ok(name), "line {ln}: bad metric name {name}");
        assert_eq!(
            current.as_deref(),
            Some(name),
            "line {ln}: {name} is not the current family (samples must follow their TYPE)"
        );
        let mut labels = BTreeMap::new();
        let mut chars = line[brace + 1..].char_indices();
        let rest_at;
        loop {
            let mut key = String::new();
            let mut end = None;
            for (i, c) in chars.by_ref() {
                match c {
                    '=' => break,
                    '}' => {
                        end = Some(i);
                        break;
                    }
                    ',' if key.is_empty() => {}
                    c => key.push(c),
                }
            }
            if let Some(i) = end {
                rest_at = brace + 1 + i + 1;
                break;
            }
            assert!(name_ok(&key) && !key.contains(':'), "line {ln}: bad label name {key:?}");
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "line {ln}: label value must be quoted");
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        other => panic!("line {ln}: bad escape {other:?}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("line {ln}: unterminated label value"),
                }
            }
            assert!(labels.insert(key.clone(), value).is_none(), "line {ln}: label {key} twice");
        }
        let fields: Vec<&str> = line[rest_at..].split(' ').filter(|f| !f.is_empty()).collect();
        assert!(matches!(fields.len(), 1 | 2), "line {ln}: value and optional timestamp: {line}");
        let v: f64 = match fields[0] {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            x => x.parse().unwrap_or_else(|_| panic!("line {ln}: bad value {x}")),
        };
        if let Some(ts) = fields.get(1) {
            ts.parse::<i64>().unwrap_or_else(|_| panic!("line {ln}: bad timestamp {ts}"));
        }
        let family = out.entry(name.to_string()).or_default();
        assert!(family.iter().all(|(l, _)| *l != labels), "line {ln}: a second sample of one series: {line}");
        family.push((labels, v));
    }
    out
}

#[test]
fn meta_listings_search_and_inventory() {
    let s = start();
    let nodes = get_ok(&s, "/api/v2/nodes");
    let listed: Vec<(&str, &str)> = nodes["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["nd"].as_str().expect("nd"), n["nm"].as_str().expect("nm")))
        .collect();
    assert_eq!(listed, [("n1", "host-1"), ("n2", "host-2")]);
    // The v3 names answer the same (spec 5.1-5.4, 5.8).
    for (v2, v3) in [
        ("/api/v2/nodes", "/api/v3/nodes"),
        ("/api/v2/contexts", "/api/v3/contexts"),
        ("/api/v2/q?q=disk", "/api/v3/q?q=disk"),
    ] {
        assert_eq!(get_ok(&s, v3)["nodes"], get_ok(&s, v2)["nodes"], "{v3}");
    }
    assert_eq!(get_ok(&s, "/api/v3/contexts")["contexts"], get_ok(&s, "/api/v2/contexts")["contexts"]);
    let weights =
        |v: &str| get_ok(&s, &format!("/api/{v}/weights?method=value&after={}&before={}", T0 + 3001, T0 + 3600));
    let (v3, v2) = (weights("v3"), weights("v2"));
    assert!(v3["result"].as_array().is_some_and(|r| !r.is_empty()) && v3["result"] == v2["result"], "{v3}");
    assert_eq!(get_ok(&s, "/api/v3/allmetrics?format=json"), get_ok(&s, "/api/v1/allmetrics?format=json"));
    for n in nodes["nodes"].as_array().expect("nodes") {
        let mg = n["mg"].as_str().expect("mg");
        assert_eq!((mg.len(), mg.matches('-').count()), (36, 4), "mg is a UUID: {mg}");
        assert_eq!(n["state"], json!("reachable"), "{n}");
    }
    assert_eq!(get_ok(&s, "/api/v2/nodes?nodes=host-2")["nodes"].as_array().map(Vec::len), Some(1));

    // A machine GUID given at ingest becomes the node's mg (and selects it);
    // a malformed one or one another node holds is a 400 naming the field.
    let g = "6f1c3c52-7d7e-4b0a-9c41-2f8e5d0a1b23";
    s.ingest_ok(&json!({"nodes": [{"id": "n2", "machine_guid": g}]}));
    let n2 = get_ok(&s, "/api/v2/nodes?nodes=n2")["nodes"][0].clone();
    assert_eq!((n2["nd"].as_str(), n2["mg"].as_str()), (Some("n2"), Some(g)), "{n2}");
    assert_eq!(get_ok(&s, &format!("/api/v2/nodes?nodes={g}"))["nodes"][0]["nd"], json!("n2"));
    for (bad, why) in [("6F1C3C52-7D7E-4B0A-9C41-2F8E5D0A1B23", "UUID"), (g, "already belongs to node 'n2'")] {
        let (status, v) = s.post_json("/api/v1/ingest", &json!({"nodes": [{"id": "n1", "machine_guid": bad}]}));
        assert_eq!(status, 400, "{v}");
        assert!(v.to_string().contains("nodes[0].machine_guid") && v.to_string().contains(why), "{v}");
    }
    assert_ne!(get_ok(&s, "/api/v2/nodes?nodes=n1")["nodes"][0]["mg"], json!(g), "nothing written");

    let ctx = get_ok(&s, "/api/v2/contexts?options=dimensions,labels");
    let c = &ctx["contexts"]["app.requests"];
    assert_eq!(c["units"], json!("requests/s"));
    assert_eq!(c["dimensions"], json!(["ok", "err", "slow"]));
    assert_eq!(c["first_entry"], json!(T0 + 1));
    assert_eq!(c["live"], json!(true), "{c}");
    assert_eq!(ctx["contexts"]["net.net"]["labels"]["device"], json!(["eth0", "eth1"]));
    let before = get_ok(&s, &format!("/api/v2/contexts?after={}&before={}", T0 - 7200, T0 - 3600));
    assert_eq!(before["contexts"], json!({}), "a window before the data lists nothing");
    let capped = get_ok(&s, "/api/v2/contexts?cardinality=1");
    assert_eq!(capped["contexts"]["__truncated__"]["remaining"], json!(1), "{capped}");

    // Search: substrings, case-insensitive, over every kind of name.
    let q = |text: &str| get_ok(&s, &format!("/api/v2/q?q={text}"));
    let hits = q("ETH1");
    assert_eq!(
        hits["contexts"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["net.net".into()])
    );
    assert_eq!(hits["contexts"]["net.net"]["instances"], json!(["net.eth1"]));
    assert_eq!(hits["contexts"]["net.net"]["matched"], json!(["instances", "labels"]));
    // The hit is credited to the node where it matched alone.
    let ni: Vec<&str> = hits["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["nd"].as_str()).collect();
    assert_eq!(ni, ["n2"], "eth1 is on n2 alone: {hits}");
    assert_eq!(hits["contexts"]["net.net"]["nodes"].as_array().map(Vec::len), Some(1), "{hits}");
    // A context's own strings count on all of its nodes.
    assert_eq!(q("requests")["contexts"]["app.requests"]["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(q("slo")["contexts"]["app.requests"]["dimensions"], json!(["slow"]));
    assert_eq!(q("api")["contexts"]["app.requests"]["labels"]["service"], json!(["api"]));
    let by_node = q("host-2");
    assert_eq!(by_node["contexts"].as_object().map(|o| o.len()), Some(2), "a node name matches its contexts");
    assert!(by_node["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .any(|n| n["nd"] == json!("n2") && n["matched"] == json!(true)));
    assert_eq!(q("nothing-like-this")["contexts"], json!({}));
    let (status, e) = s.get("/api/v2/q");
    assert_eq!((status, e["path"].as_str()), (400, Some("q")), "{e}");

    // v1 inventory.
    let charts = get_ok(&s, "/api/v1/charts");
    assert_eq!(
        charts["charts"]["net.eth0"]["dimensions"],
        json!({"received": {"name": "received"}, "sent": {"name": "sent"}})
    );
    assert_eq!(charts["charts"]["app.requests"]["data_url"], json!("/api/v1/data?chart=app.requests"));
    assert_eq!(charts["hosts_count"], json!(2));
    let chart = get_ok(&s, "/api/v1/chart?chart=net.eth1");
    assert_eq!((chart["context"].clone(), chart["chart_labels"]["device"].clone()), (json!("net.net"), json!("eth1")));
    assert_eq!(s.get("/api/v1/chart").0, 400);
    let (status, e) = s.get("/api/v1/chart?chart=nope");
    assert_eq!(status, 404, "{e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("nope")), "{e}");
    let v1c = get_ok(&s, "/api/v1/contexts?options=full");
    assert_eq!(v1c["contexts"]["app.requests"]["charts"], json!(["app.requests"]));
    let info = get_ok(&s, "/api/v1/info");
    assert_eq!(
        (info["mirrored_hosts"].clone(), info["metrics-count"].clone()),
        (json!(["host-1", "host-2"]), json!(10))
    );
    let charts = get_ok(&s, "/api/v1/charts");
    assert_eq!(info["charts-count"], charts["charts_count"], "one count of charts: {info} {charts}");
    assert_eq!(charts["charts_count"].as_u64(), charts["charts"].as_object().map(|c| c.len() as u64));

    // A token allowed node n1 only sees n1 everywhere.
    let (status, t) =
        s.post_json("/api/v1/tokens", &json!({"name": "n1 only", "scopes": ["scope:grafana-plugin"], "nodes": ["n1"]}));
    assert_eq!(status, 201, "{t}");
    let h = format!("Bearer {}", t["token"].as_str().expect("token"));
    for path in [
        "/api/v2/nodes",
        "/api/v2/contexts?options=labels",
        "/api/v2/q?q=eth",
        "/api/v1/charts",
        "/api/v1/info",
        "/api/v1/allmetrics?format=json",
        "/api/v2/weights?method=value",
    ] {
        let r = s.request(path, Auth::Header(&h), None);
        assert_eq!(r.status, 200, "{path}: {}", r.snippet());
        assert!(!r.text.contains("host-2") && !r.text.contains("eth1"), "{path} shows node n2: {}", r.snippet());
    }

    // Bad parameters: a 400 naming them, in JSON.
    for (path, param) in [
        ("/api/v2/nodes?after=soon", "after"),
        ("/api/v2/contexts?options=sparkles", "options"),
        ("/api/v2/nodes?nodes=!", "nodes"),
        ("/api/v2/weights?method=telepathy", "method"),
        ("/api/v1/allmetrics?format=xml", "format"),
        ("/api/v1/allmetrics?prefix=1up", "prefix"),
    ] {
        let (status, e) = s.get(path);
        assert_eq!((status, e["path"].as_str()), (400, Some(param)), "{path}: {e}");
    }
}

#[test]
fn meta_weights_rank_a_planted_anomaly_first_and_allmetrics_parse() {
    let s = start();
    let (a, b) = HIGHLIGHT;
    let want = format!("{}/app.requests/{}@{}", PLANTED.1, PLANTED.2, PLANTED.0);
    for method in ["ks2", "volume", "anomaly-rate", "value"] {
        let v = get_ok(&s, &format!("/api/v2/weights?method={method}&after={a}&before={b}"));
        let order = ranked(&v);
        assert_eq!(order.first(), Some(&want), "{method}: ranking {order:?}");
        assert_eq!(v["request"]["method"], json!(method));
        if method == "anomaly-rate" {
            assert_eq!(order.len(), 1, "only the planted metric has anomalous samples: {order:?}");
        } else {
            assert_eq!(v["total_dimensions_count"], json!(10), "{v}");
        }
        if method == "ks2" {
            let top = &v["result"][0];
            assert!(top[5].as_f64().is_some_and(|w| w > 0.99), "planted ks2 weight {top}");
            let second = v["result"][1][5].as_f64().unwrap_or(1.0);
            assert!(second < 0.3, "the runner-up is far behind: {second}");
            assert_eq!(v["request"]["baseline"], json!({"after": a - 1200, "before": a - 1}));
        }
    }
    // By volume, a metric that appeared from nothing weighs 1 (and by ks2
    // it has no baseline to compare with, so it is left out).
    let fresh: Vec<Value> = (a..=b).map(|t| json!([t, 5.0])).collect();
    s.ingest_ok(&json!({"series": [{"node": "n1", "context": "app.fresh", "instance": "app.fresh", "dimension": "x",
                                    "points": fresh}]}));
    let v = get_ok(&s, &format!("/api/v2/weights?method=volume&after={a}&before={b}&contexts=app.fresh"));
    let dims: Vec<&Value> = v["result"].as_array().expect("rows").iter().filter(|r| r[0] == 0).collect();
    assert_eq!((dims.len(), dims[0][5].as_f64()), (1, Some(1.0)), "{v}");
    let v = get_ok(&s, &format!("/api/v2/weights?method=ks2&after={a}&before={b}&contexts=app.fresh"));
    assert_eq!(v["result"].as_array().map(Vec::len), Some(0), "{v}");
    let scoped = get_ok(&s, &format!("/api/v2/weights?method=volume&after={a}&before={b}&contexts=net.net"));
    assert!(ranked(&scoped).iter().all(|r| r.starts_with("net.net/")), "{:?}", ranked(&scoped));
    let (status, e) = s.get(&format!("/api/v2/weights?method=ks2&after={}&before={}", b - 5, b));
    assert_eq!(status, 400, "ks2 over 6 points: {e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("at least 15")), "{e}");

    // allmetrics: Prometheus text that parses, with the newest values.
    let r = s.request("/api/v1/allmetrics?format=prometheus", Auth::Admin, None);
    assert_eq!(r.status, 200, "{}", r.snippet());
    assert!(r.content_type.as_deref().is_some_and(|c| c.starts_with("text/plain")), "{:?}", r.content_type);
    let fams = parse_prometheus(&r.text);
    let req = &fams["netdata_app_requests_requests_persec_average"];
    assert_eq!(req.len(), 6, "3 dimensions on 2 nodes");
    let planted = req
        .iter()
        .find(|(l, _)| l["dimension"] == "err" && l["instance"] == "host-2")
        .unwrap_or_else(|| panic!("no planted sample in {req:?}"));
    assert!(planted.1 > 500.0, "latest value of the planted metric: {}", planted.1);
    assert_eq!(planted.0["chart"], "app.requests");
    assert_eq!(planted.0["service"], "api", "instance labels are carried");
    let total: usize = fams.values().map(Vec::len).sum();
    assert_eq!(total, 11, "the ten of the batch and app.fresh");
    let bare =
        s.request("/api/v1/allmetrics?format=prometheus&timestamps=no&hideunits=yes&prefix=strata", Auth::Admin, None);
    let fams = parse_prometheus(&bare.text);
    assert!(fams.contains_key("strata_net_net_average"), "{:?}", fams.keys().collect::<Vec<_>>());
    // Two nodes of one hostname, and instance labels that are no
    // Prometheus names as they stand (`a-b` and `a_b` sanitize alike,
    // `9bad` starts with a digit): still one valid series each.
    let labels = json!({"a-b": "1", "a_b": "2", "9bad": "z"});
    let twins: Vec<Value> = [1, 2]
        .map(|k| {
            json!({"node": format!("t{k}"), "context": "app.twin", "instance": "app.twin",
            "dimension": "x", "labels": labels, "points": [[b, k as f64]]})
        })
        .into();
    s.ingest_ok(
        &json!({"nodes": [{"id": "t1", "hostname": "twin"}, {"id": "t2", "hostname": "twin"}], "series": twins}),
    );
    let r = s.request("/api/v1/allmetrics?format=prometheus&nodes=t1,t2", Auth::Admin, None);
    let fams = parse_prometheus(&r.text);
    let twins = fams.values().flatten().filter(|(l, _)| l["chart"] == "app.twin").collect::<Vec<_>>();
    assert_eq!(twins.len(), 2, "{}", r.text);
    assert_eq!(twins.iter().map(|(l, _)| l["instance"].as_str()).collect::<BTreeSet<_>>(), ["t1", "t2"].into());
    assert!(twins.iter().all(|(l, _)| l["a_b"] == "1" && l["_9bad"] == "z"), "{twins:?}");
    let json_all = get_ok(&s, "/api/v1/allmetrics?format=json&nodes=n1");
    assert_eq!(json_all["app.requests"]["dimensions"]["ok"]["name"], json!("ok"), "{json_all}");
    let shell = s.request("/api/v1/allmetrics?nodes=n2", Auth::Admin, None);
    assert!(shell.text.lines().any(|l| l.starts_with("NETDATA_APP_REQUESTS_ERR=\"")), "{}", shell.snippet());
    assert!(shell.text.contains("NETDATA_NET_ETH1_VISIBLETOTAL="), "{}", shell.snippet());
}

/// A chart id holding URL and pattern syntax: the `data_url` of
/// `/api/v1/charts` and `/api/v1/chart` reads back that chart alone.
#[test]
fn meta_v1_data_url_round_trips_odd_chart_ids() {
    const ODD: &str = "odd,id|x&y=1 #2 50%+!*";
    let s = Server::start(Some(NOW));
    let points = |v: f64| (NOW - 120..=NOW - 1).map(|t| json!([t, v])).collect::<Vec<_>>();
    // Decoys: what the id's pieces would select if they were read as words.
    let series: Vec<Value> = [(ODD, 42.0), ("odd", 7.0), ("id", 7.0), ("x", 7.0)]
        .iter()
        .map(|(inst, v)| {
            json!({"node": "n1", "context": "odd.ctx", "instance": inst, "dimension": "d", "points": points(*v)})
        })
        .collect();
    s.ingest_ok(&json!({ "series": series }));
    let charts = get_ok(&s, "/api/v1/charts");
    let listed =
        charts["charts"][ODD]["data_url"].as_str().unwrap_or_else(|| panic!("no data_url: {charts}")).to_string();
    // `/api/v1/chart` takes the id itself (not a pattern), percent-encoded.
    let encoded: String = ODD
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let one = get_ok(&s, &format!("/api/v1/chart?chart={encoded}"));
    assert_eq!(one["id"], json!(ODD), "{one}");
    assert_eq!(one["data_url"], json!(listed));
    let v = get_ok(&s, &format!("{listed}&after=-60&points=6"));
    assert_eq!(v["labels"], json!(["time", "d"]), "{listed}: {v}");
    let rows = v["data"].as_array().unwrap_or_else(|| panic!("{listed}: no data rows: {v}"));
    assert!(!rows.is_empty() && rows.iter().all(|r| r[1] == json!(42.0)), "{listed}: only the odd chart's values: {v}");
}

/// `/api/v2/info` and `/api/v3/info`: the agent and counts of what the
/// caller may see, in the v2 envelope, under the scope of `/api/v1/info`.
#[test]
fn meta_v2_info_summarises_the_agent_and_what_it_holds() {
    let s = start();
    let v2 = get_ok(&s, "/api/v2/info");
    assert_eq!(v2["api"], json!(2), "{v2}");
    let agents = v2["agents"].as_array().unwrap_or_else(|| panic!("no agents: {v2}"));
    assert_eq!(agents.len(), 1, "{v2}");
    let a = &agents[0];
    let v1 = get_ok(&s, "/api/v1/info");
    assert_eq!((a["mg"].clone(), a["nm"].clone()), (v1["uid"].clone(), v1["hostname"].clone()), "{a}");
    assert_eq!(a["application"]["package"]["version"], v1["version"]);
    assert_eq!(a["now"], json!(NOW));
    // Two nodes, each with app.requests (3 dimensions) and one net chart (2).
    assert_eq!(a["nodes"], json!({"total": 2, "receiving": 2, "sending": 0, "archived": 0}), "{a}");
    assert_eq!(a["metrics"], json!({"collected": 10, "available": 10}));
    assert_eq!(a["instances"], json!({"collected": 4, "available": 4}));
    assert_eq!(a["contexts"], json!({"collected": 4, "available": 4, "unique": 2}));
    assert_eq!(a["api"]["bearer_protection"], json!(true));
    let tier0 = &a["db_size"][0];
    assert_eq!(
        (tier0["tier"].clone(), tier0["granularity"].clone(), tier0["metrics"].clone()),
        (json!(0), json!("1s"), json!(10)),
        "{a}"
    );
    assert_eq!((tier0["from"].clone(), tier0["to"].clone()), (json!(T0 + 1), json!(T0 + SPAN)), "{tier0}");
    assert_eq!(a["db_size"][1]["granularity"], json!("1m"));
    assert!(v2["versions"].is_object() && v2["timings"].is_object(), "{v2}");
    let v3 = get_ok(&s, "/api/v3/info");
    let counts = |v: &Value| {
        let mut a = v["agents"][0].clone();
        a["timings"] = Value::Null;
        a
    };
    assert_eq!(counts(&v3), counts(&v2), "v3 answers as v2");

    // Later, with n1 gone quiet: what is still collected shrinks.
    let later = Server::start(Some(NOW + 3600));
    later.ingest_ok(&batch());
    let quiet: Vec<Value> = (NOW + 3500..=NOW + 3600).map(|t| json!([t, 1.0])).collect();
    later.ingest_ok(&json!({"series": [{"node": "n2", "context": "net.net", "instance": "net.eth1",
                                        "dimension": "sent", "points": quiet}]}));
    let a = get_ok(&later, "/api/v2/info")["agents"][0].clone();
    assert_eq!(a["nodes"], json!({"total": 2, "receiving": 1, "sending": 0, "archived": 1}), "{a}");
    assert_eq!(a["metrics"], json!({"collected": 1, "available": 10}), "{a}");
    assert_eq!(a["contexts"], json!({"collected": 1, "available": 4, "unique": 2}), "{a}");

    // The allowlist narrows the counts; the scope is /api/v1/info's.
    let (status, t) =
        s.post_json("/api/v1/tokens", &json!({"name": "n1 info", "scopes": ["strata:metadata:read"], "nodes": ["n1"]}));
    assert_eq!(status, 201, "{t}");
    let h = format!("Bearer {}", t["token"].as_str().expect("token"));
    for path in ["/api/v2/info", "/api/v3/info"] {
        let (status, v) = s.get_auth(path, Auth::Header(&h));
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["agents"][0]["nodes"]["total"], json!(1), "{path}: {v}");
        assert_eq!(v["agents"][0]["metrics"]["available"], json!(5), "{path}: {v}");
    }
    let (status, t) = s.post_json("/api/v1/tokens", &json!({"name": "data only", "scopes": ["strata:data:read"]}));
    assert_eq!(status, 201, "{t}");
    let h = format!("Bearer {}", t["token"].as_str().expect("token"));
    for path in ["/api/v1/info", "/api/v2/info", "/api/v3/info"] {
        assert_eq!(s.request(path, Auth::Header(&h), None).status, 403, "{path} needs metadata read");
        assert_eq!(s.request(path, Auth::None, None).status, 401, "{path} needs a token");
    }
}

/// `/api/v1/weights`: the v2 ranking in Netdata's v1 layout (contexts >
/// charts > dimensions), v1's default method (`anomaly-rate`) and v1's 404
/// when nothing is ranked.
#[test]
fn meta_v1_weights_rank_in_the_v1_layout() {
    let s = start();
    let (a, b) = HIGHLIGHT;
    let window = format!("after={a}&before={b}");
    let v1 = get_ok(&s, &format!("/api/v1/weights?method=volume&{window}"));
    let v2 = get_ok(&s, &format!("/api/v2/weights?method=volume&{window}"));
    assert_eq!(
        (v1["method"].clone(), v1["after"].clone(), v1["before"].clone()),
        (json!("volume"), json!(a), json!(b))
    );
    assert_eq!((v1["baseline_after"].clone(), v1["baseline_before"].clone()), (json!(a - 1200), json!(a - 1)), "{v1}");
    assert_eq!(v1["correlated_dimensions"], v2["correlated_dimensions"]);
    assert_eq!(v1["total_dimensions_count"], json!(10));
    // Every dimension's weight is its v2 weight; two nodes: charts name their host.
    let mut from_v1 = BTreeMap::new();
    for (ctx, c) in v1["contexts"].as_object().unwrap_or_else(|| panic!("no contexts: {v1}")) {
        for (chart, ch) in c["charts"].as_object().expect("charts") {
            let (inst, host) = chart.split_once('@').unwrap_or_else(|| panic!("{chart} names no host"));
            let node = if host == "host-1" { "n1" } else { "n2" };
            for (dim, w) in ch["dimensions"].as_object().expect("dimensions") {
                from_v1.insert(format!("{ctx}/{inst}/{dim}@{node}"), w.as_f64().expect("weight"));
            }
        }
    }
    let rows: Vec<&Value> = v2["result"].as_array().expect("rows").iter().filter(|r| r[0] == json!(0)).collect();
    let from_v2: BTreeMap<String, f64> =
        ranked(&v2).into_iter().zip(rows).map(|(k, r)| (k, r[5].as_f64().expect("weight"))).collect();
    assert_eq!(from_v1, from_v2);
    let first = v1["contexts"].as_object().and_then(|o| o.keys().next().cloned());
    assert_eq!(first.as_deref(), Some("app.requests"), "the planted context weighs most: {v1}");

    // v1's default method, `context=`, and a single node's plain chart ids.
    let v = get_ok(&s, &format!("/api/v1/weights?{window}"));
    assert_eq!((v["method"].clone(), v["correlated_dimensions"].clone()), (json!("anomaly-rate"), json!(1)), "{v}");
    let v = get_ok(&s, &format!("/api/v1/weights?method=value&context=net.net&nodes=n1&{window}"));
    let charts = v["contexts"]["net.net"]["charts"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(charts, Some(vec!["net.eth0".to_string()]), "{v}");
    assert_eq!(v["contexts"].as_object().map(|o| o.len()), Some(1), "{v}");
    let (status, e) = s.get(&format!("/api/v1/weights?context=net.net&{window}"));
    assert_eq!(status, 404, "nothing anomalous in net.net: {e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("no results produced")), "{e}");
    let (status, e) = s.get("/api/v1/weights?context=!");
    assert_eq!((status, e["path"].as_str()), (400, Some("context")), "{e}");
    let (status, t) = s.post_json("/api/v1/tokens", &json!({"name": "meta only", "scopes": ["strata:metadata:read"]}));
    assert_eq!(status, 201, "{t}");
    let h = format!("Bearer {}", t["token"].as_str().expect("token"));
    assert_eq!(s.request("/api/v1/weights", Auth::Header(&h), None).status, 403, "weights read data");
}

/// `rfc3339` and `long-json-keys` on the listings: times become RFC 3339
/// text and node keys their long names, while context ids keep theirs.
#[test]
fn meta_listings_take_rfc3339_and_long_json_keys() {
    let s = start();
    // T0 + 1, T0 + SPAN and NOW, as UTC text.
    let (first, last, now) = ("2023-11-14T22:00:01Z", "2023-11-14T23:00:00Z", "2023-11-14T23:00:10Z");
    let plain = get_ok(&s, "/api/v2/contexts?options=retention");
    let shaped = get_ok(&s, "/api/v2/contexts?options=retention,rfc3339,long-json-keys");
    let ids: Vec<&String> = plain["contexts"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(ids.len(), 2, "{plain}");
    for id in ids {
        let (p, c) = (&plain["contexts"][id], &shaped["contexts"][id]);
        assert_eq!(p["first_entry"], json!(T0 + 1), "{p}");
        assert_eq!(c["first_entry"], json!(first), "{id}: {c}");
        assert_eq!(c["family"], p["family"], "{id}: other facts as they were");
    }
    for (p, c) in plain["nodes"].as_array().into_iter().flatten().zip(shaped["nodes"].as_array().into_iter().flatten())
    {
        assert_eq!(
            (&c["machine_guid"], &c["node_id"], &c["hostname"], &c["nodes_array_index"]),
            (&p["mg"], &p["nd"], &p["nm"], &p["ni"]),
            "{c}"
        );
        assert!(c.get("mg").is_none() && c.get("nm").is_none(), "{c}");
    }
    let nodes = get_ok(&s, "/api/v2/nodes?options=rfc3339");
    let retention = &nodes["nodes"][0]["retention"];
    assert_eq!((&retention["first_entry"], &retention["last_entry"]), (&json!(first), &json!(last)), "{nodes}");
    assert_eq!(nodes["nodes"][0]["labels"]["env"], json!("prod"), "labels are data: {nodes}");
    let info = get_ok(&s, "/api/v2/info?options=rfc3339|long-keys");
    let agent = &info["agents"][0];
    assert_eq!(agent["now"], json!(now), "{agent}");
    assert!(agent.get("machine_guid").is_some() && agent.get("mg").is_none(), "{agent}");
    assert_eq!(get_ok(&s, "/api/v2/info")["agents"][0]["now"], json!(NOW), "plain by default");
}

/// `/api/v1/metric_correlations`: the v1 ranking by chart, `ks2` unless a
/// method is given, the planted anomaly's chart first.
#[test]
fn meta_v1_metric_correlations_rank_by_chart() {
    let s = start();
    let (a, b) = HIGHLIGHT;
    let v = get_ok(&s, &format!("/api/v1/metric_correlations?after={a}&before={b}"));
    assert_eq!((v["method"].clone(), v["after"].clone(), v["before"].clone()), (json!("ks2"), json!(a), json!(b)));
    assert_eq!(v["baseline_before"], json!(a - 1), "{v}");
    let charts = v["correlated_charts"].as_object().unwrap_or_else(|| panic!("no correlated_charts: {v}"));
    let (key, first) = charts.iter().next().unwrap_or_else(|| panic!("no chart: {v}"));
    assert_eq!((key.as_str(), &first["context"]), ("app.requests@host-2", &json!("app.requests")), "{v}");
    let weights: Vec<f64> = charts
        .values()
        .flat_map(|c| c["dimensions"].as_object().into_iter().flatten())
        .map(|(_, w)| w.as_f64().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(json!(weights.len()), v["correlated_dimensions"], "{v}");
    let err = first["dimensions"]["err"].as_f64().unwrap_or_else(|| panic!("no err weight: {first}"));
    assert!(weights.iter().all(|&w| w <= err), "the planted dimension weighs most: {v}");
    assert!(v.get("contexts").is_none(), "{v}");

    let v = get_ok(&s, &format!("/api/v1/metric_correlations?method=volume&after={a}&before={b}"));
    assert_eq!(v["method"], json!("volume"), "{v}");
    let (status, e) = s.get(&format!("/api/v1/metric_correlations?context=no.such&after={a}&before={b}"));
    assert_eq!(status, 404, "{e}");
    let (status, e) = s.get("/api/v1/metric_correlations?method=nope");
    assert_eq!((status, e["path"].as_str()), (400, Some("method")), "{e}");
}
