//! The Netdata Grafana plugin's contract (docs/grafana.md): every request
//! it sends (fixtures/grafana/, written from the plugin's code as the spec
//! describes it) replayed in the plugin's order, repeats included, with a
//! `scope:grafana-plugin` token against a real `strata serve --demo`, and
//! every field the plugin reads checked. One server serves every check
//! (the demo history takes a while to load); rooms (config-file and
//! API-made) narrowing the same requests are checked on it too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{agent, call, Resp, Server, TempDir};

/// The dashboard range the fixtures were written for ends here.
const WINDOW_BEFORE: i64 = 1_764_143_600;
const NOW: i64 = WINDOW_BEFORE + 10;
const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grafana");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/grafana")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (v["request"].as_str().expect("request name").to_string(), v)
        })
        .collect()
}

struct Plugin<'a> {
    s: &'a Server,
    bearer: String,
    agent: ureq::Agent,
}

impl Plugin<'_> {
    /// Sends fixture `f` as the plugin would (through Grafana's proxy).
    fn send(&self, f: &Value, space: &str, room: &str) -> Resp {
        let path = f["path"].as_str().expect("path").replace("{spaceId}", space).replace("{roomId}", room);
        let body = f.get("body").map(|b| serde_json::to_vec(b).expect("body"));
        call(
            &self.agent,
            &self.s.base,
            f["method"].as_str().expect("method"),
            &path,
            Some(&self.bearer),
            body.as_deref(),
        )
    }
}

fn str_field<'a>(v: &'a Value, k: &str, what: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{what}: no string '{k}' in {v}"))
}

/// `[{id, name}]` with every id and name a non-empty string.
fn id_name_array(r: &Resp, what: &str) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{what}: {}", r.snippet());
    let v = r.json();
    let items = v.as_array().unwrap_or_else(|| panic!("{what} is not a JSON array: {v}"));
    assert!(!items.is_empty(), "{what}: empty array");
    items
        .iter()
        .map(|i| {
            let (id, name) = (str_field(i, "id", what), str_field(i, "name", what));
            assert!(!id.is_empty() && !name.is_empty(), "{what}: empty id or name in {i}");
            (id.to_string(), name.to_string())
        })
        .collect()
}

/// Every field the plugin reads from a data answer, plus the fixture's
/// own expectations. Returns the node ids (`nd`) of `summary.nodes`.
fn check_data(name: &str, f: &Value, r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{name}: {}", r.snippet());
    let v = r.json();
    let labels: Vec<&str> = v["result"]["labels"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no result.labels"))
        .iter()
        .map(|l| l.as_str().unwrap_or_else(|| panic!("{name}: a non-string label {l}")))
        .collect();
    assert_eq!(labels.first(), Some(&"time"), "{name}: result.labels[0] is the time column");
    let series = labels.len() - 1;
    let value_at =
        v["result"]["point"]["value"].as_u64().unwrap_or_else(|| panic!("{name}: no result.point.value")) as usize;
    let rows = v["result"]["data"].as_array().unwrap_or_else(|| panic!("{name}: no result.data"));
    let mut last_t = i64::MIN;
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().unwrap_or_else(|| panic!("{name}: row {i} is not an array"));
        assert_eq!(row.len(), labels.len(), "{name}: row {i} has {} cells for {} labels", row.len(), labels.len());
        let t = row[0].as_i64().unwrap_or_else(|| panic!("{name}: row {i} time {}", row[0]));
        assert!(t > 1_000_000_000_000, "{name}: row {i} time {t} is not in milliseconds");
        assert!(t > last_t, "{name}: rows are not ascending at {i} ({last_t} then {t})");
        last_t = t;
        for cell in &row[1..] {
            let cell = cell.as_array().unwrap_or_else(|| panic!("{name}: row {i}: a cell is not a point array"));
            let x = cell.get(value_at).unwrap_or_else(|| panic!("{name}: point.value {value_at} outside {cell:?}"));
            assert!(x.is_number() || x.is_null(), "{name}: value {x}");
        }
    }
    let dims = &v["view"]["dimensions"];
    let (ids, names) = (dims["ids"].as_array().expect("view.dimensions.ids"), dims["names"].as_array().expect("names"));
    assert_eq!(ids.len(), names.len(), "{name}: view.dimensions.ids and names differ in length");
    assert_eq!(ids.len(), series, "{name}: one view dimension per series");
    assert!(v["view"]["units"].is_string(), "{name}: view.units is a string");
    let nodes = v["summary"]["nodes"].as_array().expect("summary.nodes");
    assert!(v["summary"]["instances"].is_array(), "{name}: summary.instances");
    let mut nds = Vec::new();
    for n in nodes {
        for k in ["mg", "nd", "nm"] {
            str_field(n, k, &format!("{name}: summary.nodes[]"));
        }
        nds.push(n["nd"].as_str().unwrap_or_default().to_string());
    }
    let summary_labels = v["summary"]["labels"].as_array().expect("summary.labels");
    for l in summary_labels {
        str_field(l, "id", &format!("{name}: summary.labels[]"));
        for x in l["vl"].as_array().unwrap_or_else(|| panic!("{name}: summary.labels[].vl in {l}")) {
            str_field(x, "id", &format!("{name}: summary.labels[].vl[]"));
        }
    }
    let e = &f["expect"];
    if e["empty"] == json!(true) {
        assert_eq!(series, 0, "{name}: expected an empty result, got labels {labels:?}");
        assert!(rows.is_empty(), "{name}: expected no rows");
        return nds;
    }
    assert!(!rows.is_empty(), "{name}: no rows");
    assert!(series >= e["min_series"].as_u64().unwrap_or(1) as usize, "{name}: {series} series");
    if let Some(n) = e["series"].as_u64() {
        assert_eq!(series, n as usize, "{name}: series {labels:?}");
    }
    assert!(!summary_labels.is_empty(), "{name}: summary.labels is empty (the demo labels every instance)");
    let mgs: BTreeSet<&str> = nodes.iter().filter_map(|n| n["mg"].as_str()).collect();
    match e["labels_are"].as_str().unwrap_or("") {
        "mg" => {
            for l in &labels[1..] {
                assert!(mgs.contains(l), "{name}: label {l} does not resolve through summary.nodes[].mg {mgs:?}");
            }
        }
        "instance@mg" => {
            for l in &labels[1..] {
                let (_, mg) = l.rsplit_once('@').unwrap_or_else(|| panic!("{name}: {l} is not instance@mg"));
                assert!(mgs.contains(mg), "{name}: {l}");
            }
        }
        "label:device" => {
            for l in &labels[1..] {
                assert!(l.starts_with("eth"), "{name}: label-grouped series {l}");
            }
        }
        "dimensions" => {
            let dims: BTreeSet<&str> =
                v["summary"]["dimensions"].as_array().expect("dims").iter().filter_map(|d| d["id"].as_str()).collect();
            for l in &labels[1..] {
                assert!(dims.contains(l), "{name}: {l} is not a dimension of {dims:?}");
            }
        }
        other => panic!("{name}: unknown labels_are {other}"),
    }
    if let Some(want) = e["dimensions"].as_array() {
        let got: BTreeSet<&str> = labels[1..].iter().copied().collect();
        let want: BTreeSet<&str> = want.iter().filter_map(|x| x.as_str()).collect();
        assert_eq!(got, want, "{name}: dimension subset");
    }
    if let Some(want) = e["nodes"].as_array() {
        let got: BTreeSet<&str> = nds.iter().map(String::as_str).collect();
        let want: BTreeSet<&str> = want.iter().filter_map(|x| x.as_str()).collect();
        assert_eq!(got, want, "{name}: node subset");
    }
    if let Some(inst) = e["instances_all"].as_str() {
        for i in v["summary"]["instances"].as_array().expect("instances") {
            assert_eq!(i["id"].as_str(), Some(inst), "{name}: an instance outside the label filter: {i}");
        }
    }
    nds
}

fn make_token(s: &Server, scopes: &[&str]) -> String {
    let (status, body) =
        s.post_json("/api/v1/tokens", &json!({"name": format!("grafana {scopes:?}"), "scopes": scopes}));
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("token").to_string()
}

#[test]
fn grafana_plugin_contract_on_demo_data() {
    let dir = TempDir::new("grafana");
    let config = dir.path.join("strata.toml");
    std::fs::write(&config, "space_name = \"Lab\"\n[[rooms]]\nname = \"Web\"\nnodes = [\"web-*\"]\n").expect("config");
    let s = Server::start_demo(dir, NOW, &["--config", config.to_str().expect("utf-8")]);
    let fx = fixtures();
    assert!(fx.len() >= 16, "fixtures/grafana holds {} requests", fx.len());
    let get = |n: &str| &fx.iter().find(|(name, _)| name == n).unwrap_or_else(|| panic!("fixture {n}")).1;
    let plugin =
        Plugin { s: &s, bearer: format!("Bearer {}", make_token(&s, &["scope:grafana-plugin"])), agent: agent() };

    // R1: "Save & test".
    let me = plugin.send(get("R1-accounts-me"), "", "");
    assert_eq!(me.status, 200, "{}", me.snippet());
    let id = me.json()["id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty() && id != ZERO_UUID, "accounts/me id {id:?}");
    let bad = call(&plugin.agent, &s.base, "GET", "/api/v2/accounts/me", Some("Bearer strata_nope"), None);
    assert_eq!(bad.status, 401, "a bad token is a 401: {}", bad.snippet());
    // A path segment that is not UTF-8 is a JSON 400 in the route's shape.
    let (st, v) = s.get("/api/v2/spaces/%FF/rooms");
    assert_eq!((st, v["errorMsgKey"].as_str()), (400, Some("ErrBadRequest")), "{v}");
    let (st, v) = s.get("/api/v1/tokens/%FF");
    assert!(st == 400 && v["error"].as_str().is_some_and(|e| e.contains("bad path")), "{st} {v}");

    // R2, then R3 twice (a change handler and an effect both fetch).
    let spaces = id_name_array(&plugin.send(get("R2-spaces"), "", ""), "spaces");
    assert_eq!(spaces.len(), 1, "one space per server");
    let (space, space_name) = spaces[0].clone();
    assert_eq!(space_name, "Lab", "the configured space name");
    let rooms = id_name_array(&plugin.send(get("R3-rooms"), &space, ""), "rooms");
    assert_eq!(rooms, id_name_array(&plugin.send(get("R3-rooms"), &space, ""), "rooms again"));
    let room_ids: Vec<&str> = rooms.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(room_ids, ["all-nodes", "web"], "All nodes plus the configured room");
    let room = "all-nodes";

    // R5 before R4, each twice, as observed.
    let mut contexts = Vec::new();
    for _ in 0..2 {
        let r = plugin.send(get("R5-contexts"), &space, room);
        assert_eq!(r.status, 200, "contexts: {}", r.snippet());
        let obj = r.json()["contexts"].as_object().cloned().expect("contexts is an object");
        contexts.push(obj.keys().cloned().collect::<Vec<_>>());
    }
    assert_eq!(contexts[0], contexts[1], "repeated contexts answers differ");
    for c in ["system.cpu", "net.net", "disk.io"] {
        assert!(contexts[0].iter().any(|k| k == c), "{c} not in {:?}", contexts[0]);
    }
    let mut node_lists = Vec::new();
    for _ in 0..2 {
        let r = plugin.send(get("R4-nodes"), &space, room);
        assert_eq!(r.status, 200, "nodes: {}", r.snippet());
        let v = r.json();
        let nodes: Vec<(String, String)> = v["nodes"]
            .as_array()
            .expect("nodes array")
            .iter()
            .map(|n| (str_field(n, "nd", "nodes[]").to_string(), str_field(n, "nm", "nodes[]").to_string()))
            .collect();
        node_lists.push(nodes);
    }
    assert_eq!(node_lists[0], node_lists[1]);
    let nds: BTreeSet<String> = node_lists[0].iter().map(|(nd, _)| nd.clone()).collect();
    assert_eq!(nds, ["cache-1", "db-1", "web-1"].iter().map(|s| s.to_string()).collect(), "R4 node ids");

    // R6: every variant. The node ids picked in the editor are R4's `nd`s.
    let mut data_runs = 0;
    for (name, f) in fx.iter().filter(|(n, _)| n.starts_with("R6-")) {
        for n in f["body"]["scope"]["nodes"].as_array().into_iter().flatten() {
            assert!(nds.contains(n.as_str().unwrap_or_default()), "{name}: picks node {n} that R4 did not list");
        }
        let seen = check_data(name, f, &plugin.send(f, &space, room));
        if f["expect"]["nodes"].is_null() && f["expect"]["empty"].is_null() {
            assert_eq!(seen.len(), 3, "{name}: all three demo nodes in summary.nodes: {seen:?}");
        }
        data_runs += 1;
    }
    assert!(data_runs >= 11, "R6 variants run: {data_runs}");

    // The configured room narrows the same requests to its nodes.
    let web_nodes = plugin.send(get("R4-nodes"), &space, "web").json();
    let web: Vec<&str> =
        web_nodes["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["nd"].as_str()).collect();
    assert_eq!(web, ["web-1"], "nodes of room 'web'");
    // One node per room: one series.
    let mut node_grouped = get("R6-group-node").clone();
    node_grouped["expect"]["min_series"] = json!(1);
    let node_grouped = &node_grouped;
    let in_room = check_data("R6-group-node in room web", node_grouped, &plugin.send(node_grouped, &space, "web"));
    assert_eq!(in_room, ["web-1"], "a data query through room 'web'");
    let r = plugin.send(get("R5-contexts"), &space, "web");
    assert_eq!(r.status, 200, "{}", r.snippet());

    // A room made through the API (admin scope; the plugin's token may not).
    let body = serde_json::to_vec(&json!({"name": "Databases", "nodes": ["db-*"]})).expect("json");
    let path = format!("/api/v2/spaces/{space}/rooms");
    let refused = call(&plugin.agent, &s.base, "POST", &path, Some(&plugin.bearer), Some(&body));
    assert_eq!(refused.status, 403, "scope:grafana-plugin creates a room: {}", refused.snippet());
    let (status, created) = s.post_json(&path, &json!({"name": "Databases", "nodes": ["db-*"]}));
    assert_eq!((status, created["id"].as_str()), (201, Some("databases")), "{created}");
    let (status, again) = s.post_json(&path, &json!({"name": "Databases", "nodes": ["db-*"]}));
    assert_eq!(status, 409, "a second room of the same id: {again}");
    assert!(again["errorMessage"].is_string(), "Cloud error shape: {again}");
    let (status, bad) = s.post_json(&path, &json!({"name": "Nothing"}));
    assert_eq!(status, 400, "a room without a filter: {bad}");
    assert!(bad["errorMessage"].as_str().is_some_and(|m| m.contains("nodes")), "{bad}");
    let in_db =
        check_data("R6-group-node in room databases", node_grouped, &plugin.send(node_grouped, &space, "databases"));
    assert_eq!(in_db, ["db-1"]);
    // The room list shows definitions (they name nodes) only to callers
    // not held to some nodes.
    let room_of = |v: &Value| v.as_array().and_then(|a| a.iter().find(|r| r["id"] == "databases").cloned());
    let (status, all) = s.get(&path);
    assert_eq!((status, room_of(&all).map(|r| r["nodes"].clone())), (200, Some(json!(["db-*"]))), "{all}");
    let (status, tok) = s.post_json(
        "/api/v1/tokens",
        &json!({"name": "web only", "scopes": ["scope:grafana-plugin"], "nodes": ["web-1"]}),
    );
    assert_eq!(status, 201, "{tok}");
    let web = format!("Bearer {}", tok["token"].as_str().expect("token"));
    let r = call(&plugin.agent, &s.base, "GET", &path, Some(&web), None);
    let listed = room_of(&r.json()).unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!((listed["nodes"].clone(), listed["node_count"].clone()), (json!([]), json!(0)), "{listed}");
    assert!(!r.text.contains("db-"), "{}", r.text);

    // Unknown space or room: 404 in Cloud's error shape, on every room route.
    for (sp, rm) in [("no-such-space", room), (space.as_str(), "no-such-room")] {
        for fx_name in ["R4-nodes", "R5-contexts", "R6-group-dimension"] {
            let r = plugin.send(get(fx_name), sp, rm);
            assert_eq!(r.status, 404, "{fx_name} in {sp}/{rm}: {}", r.snippet());
            assert!(r.json()["errorMsgKey"] == json!("ErrNotFound"), "{}", r.text);
        }
    }
    let r = plugin.send(get("R3-rooms"), "no-such-space", "");
    assert_eq!(r.status, 404, "{}", r.snippet());
}
