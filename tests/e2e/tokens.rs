//! API tokens end to end: a generated route × credential matrix (every
//! route, every kind of missing, bad or good token, node allowlists, with
//! side effects checked), allowlist narrowing, revocation ending a running
//! query, per-token rate limits, the token file across restarts, secrets
//! kept out of logs, files and listings, the management rules,
//! `--anonymous-read`, and the `strata token` CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::dataset::{self, NOW, T0};
use crate::harness::{agent, Server, TempDir, BIN};

// ---------------------------------------------------------------------------
// HTTP with any method, any Authorization header, and the headers we check.

type Reply = crate::harness::Resp;

/// One request; `authorization` is the whole header value (None = no header).
fn call(base: &str, method: &str, path: &str, authorization: Option<&str>, body: Option<&[u8]>) -> Reply {
    crate::harness::call(&agent(), base, method, path, authorization, body)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn encode(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("encoding a JSON body")
}

/// A request with `token` as bearer.
fn req(s: &Server, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    let bytes = body.map(encode);
    call(&s.base, method, path, Some(&bearer(token)), bytes.as_deref())
}

/// A request with the admin token.
fn admin(s: &Server, method: &str, path: &str, body: Option<&Value>) -> Reply {
    req(s, method, path, &s.token, body)
}

// ---------------------------------------------------------------------------
// Tokens.

#[derive(Debug, Clone)]
struct Tok {
    id: String,
    token: String,
}

/// `strata_` + 43 base62 + 6 base62 checksum characters.
fn shaped_like_token(t: &str) -> bool {
    t.strip_prefix("strata_").is_some_and(|r| r.len() == 49 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The same token with one character changed: its checksum no longer matches.
fn typo(t: &str) -> String {
    let mut c: Vec<char> = t.chars().collect();
    let i = "strata_".len() + 10;
    c[i] = if c[i] == 'a' { 'b' } else { 'a' };
    c.into_iter().collect()
}

/// Checks a 201 body of POST /api/v1/tokens; returns id and plaintext.
fn created(body: &Value, what: &str) -> Tok {
    let token = body["token"].as_str().unwrap_or_else(|| panic!("{what}: no 'token' in {body}")).to_string();
    assert!(shaped_like_token(&token), "{what}: {token:?} is not strata_ + 49 base62 characters");
    let id = body["id"].as_str().unwrap_or_else(|| panic!("{what}: no 'id' in {body}")).to_string();
    for key in ["name", "scopes", "nodes", "expires_at", "created_at"] {
        assert!(body.get(key).is_some(), "{what}: no '{key}' in {body}");
    }
    Tok { id, token }
}

fn create_ok(s: &Server, creator: &str, body: &Value) -> Tok {
    let r = req(s, "POST", "/api/v1/tokens", creator, Some(body));
    assert_eq!(r.status, 201, "creating {body}: {}", r.text);
    created(&r.json(), &format!("creating {body}"))
}

/// A token created by the admin.
fn mk(s: &Server, name: &str, scopes: &[&str], nodes: &[&str]) -> Tok {
    let mut b = json!({"name": name, "scopes": scopes});
    if !nodes.is_empty() {
        b["nodes"] = json!(nodes);
    }
    create_ok(s, &s.token, &b)
}

fn revoke_ok(s: &Server, id: &str) -> Value {
    let r = admin(s, "DELETE", &format!("/api/v1/tokens/{id}"), None);
    assert_eq!(r.status, 200, "revoking {id}: {}", r.text);
    r.json()
}

const RESOURCES: [&str; 7] = ["data", "metadata", "ingest", "tokens", "admin", "mcp", "stream"];
const VERBS: [&str; 3] = ["read", "write", "delete"];

/// Every fine-grained scope except `need` (20 of the 21).
fn complement(need: &str) -> Vec<String> {
    RESOURCES.iter().flat_map(|r| VERBS.iter().map(move |v| format!("strata:{r}:{v}"))).filter(|s| s != need).collect()
}

/// `Ok` when a non-2xx answer has the right JSON error shape.
fn error_shape(r: &Reply, cloud: bool, path: &str) -> Result<(), String> {
    let Some(b) = r.json_opt() else { return Err(format!("error body is not JSON: {}", r.snippet())) };
    let nonempty = |k: &str| b[k].as_str().is_some_and(|s| !s.is_empty());
    let ok = if path == "/mcp" {
        b["jsonrpc"] == "2.0" && b["error"]["code"].is_i64()
    } else if path.starts_with("/api/v1/server") {
        b["success"] == json!(false) && nonempty("error")
    } else if cloud {
        nonempty("errorCode") && nonempty("errorMsgKey") && nonempty("errorMessage")
    } else {
        nonempty("error") && b["status"] == json!(r.status)
    };
    if ok {
        Ok(())
    } else {
        Err(format!("wrong error shape (cloud: {cloud}): {b}"))
    }
}

/// SHA-256 (FIPS 180-4), to check what the token file stores.
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (wi, word) in w.iter_mut().zip(chunk.chunks(4)) {
            *wi = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Labels of a json2 answer (first is "time").
fn labels(v: &Value) -> Vec<String> {
    v["result"]["labels"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 1. The matrix.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Health,
    Data,
    Ingest,
    Create,
    List,
    GetOne,
    Delete,
    Whoami,
    /// Metadata reads (listings narrow to the allowlist, never 403).
    Meta,
    /// `GET /api/v2/accounts/me`: any valid token.
    Account,
    /// `POST /api/v2/spaces/{space}/rooms`.
    RoomCreate,
    /// `POST /mcp` (a ping): any valid token.
    Mcp,
    /// `GET /api/v1/ws/nodes` as a plain GET: past the auth layer, the
    /// WebSocket handshake refuses the missing `Upgrade` with 400, so 401
    /// and 403 can only come from auth (the stream tests do the handshake).
    Ws,
}

impl Kind {
    fn ok(self) -> u16 {
        if matches!(self, Kind::Create | Kind::RoomCreate) {
            201
        } else if self == Kind::Ws {
            400
        } else {
            200
        }
    }
}

#[derive(Debug)]
struct Route {
    method: &'static str,
    path: &'static str,
    kind: Kind,
    /// The scope the route needs; "" = none (public, or any valid token).
    need: &'static str,
}

const fn route(method: &'static str, path: &'static str, kind: Kind, need: &'static str) -> Route {
    Route { method, path, kind, need }
}

const DATA_READ: &str = "strata:data:read";
const META_READ: &str = "strata:metadata:read";

/// The server's route table, as the issues state it. `{space}` is the
/// server's space id; `{id}` a token id.
static ROUTES: [Route; 32] = [
    route("GET", "/health", Kind::Health, ""),
    route("GET", "/api/v1/data", Kind::Data, DATA_READ),
    route("GET", "/api/v2/data", Kind::Data, DATA_READ),
    route("GET", "/api/v3/data", Kind::Data, DATA_READ),
    route("POST", "/api/v3/data", Kind::Data, DATA_READ),
    route("POST", "/api/v3/spaces/{space}/rooms/all-nodes/data", Kind::Data, DATA_READ),
    route("POST", "/api/v1/ingest", Kind::Ingest, "strata:ingest:write"),
    route("POST", "/api/v1/tokens", Kind::Create, "strata:tokens:write"),
    route("GET", "/api/v1/tokens", Kind::List, "strata:tokens:read"),
    route("GET", "/api/v1/tokens/{id}", Kind::GetOne, "strata:tokens:read"),
    route("DELETE", "/api/v1/tokens/{id}", Kind::Delete, "strata:tokens:delete"),
    route("GET", "/api/v1/whoami", Kind::Whoami, ""),
    route("GET", "/api/v1/info", Kind::Meta, META_READ),
    route("GET", "/api/v1/charts", Kind::Meta, META_READ),
    route("GET", "/api/v1/chart?chart=disk.sda", Kind::Meta, META_READ),
    route("GET", "/api/v1/contexts", Kind::Meta, META_READ),
    route("GET", "/api/v1/allmetrics?format=json", Kind::Meta, DATA_READ),
    route("GET", "/api/v2/nodes", Kind::Meta, META_READ),
    route("GET", "/api/v2/contexts", Kind::Meta, META_READ),
    route("GET", "/api/v2/q?q=disk", Kind::Meta, META_READ),
    route("GET", "/api/v2/weights?method=volume", Kind::Meta, DATA_READ),
    route("GET", "/api/v2/accounts/me", Kind::Account, ""),
    route("GET", "/api/v2/spaces", Kind::Meta, META_READ),
    route("GET", "/api/v2/spaces/{space}/rooms", Kind::Meta, META_READ),
    route("POST", "/api/v2/spaces/{space}/rooms", Kind::RoomCreate, "strata:admin:write"),
    route("POST", "/api/v3/spaces/{space}/rooms/all-nodes/nodes", Kind::Meta, META_READ),
    route("POST", "/api/v3/spaces/{space}/rooms/all-nodes/contexts", Kind::Meta, META_READ),
    route("GET", "/api/v1/server", Kind::Meta, META_READ),
    route("GET", "/api/v1/server/1/metrics?metric=cpu", Kind::Meta, DATA_READ),
    route("GET", "/api/v1/stream/nodes?ticks=1", Kind::Meta, "strata:stream:read"),
    route("GET", "/api/v1/ws/nodes", Kind::Ws, "strata:stream:read"),
    route("POST", "/mcp", Kind::Mcp, ""),
];

/// Routes the `scope:grafana-plugin` bundle must reach: everything the
/// plugin calls (R1-R6) and the rest of the read API.
const GRAFANA_ALLOWED: [&str; 2] = [DATA_READ, META_READ];

/// Which nodes a request names.
#[derive(Debug, Clone, Copy)]
enum Naming {
    Nothing,
    /// `nodes=` on GET, `selectors.nodes` on POST.
    Selectors(&'static str),
    /// `scope_nodes=` on GET, `scope.nodes` on POST.
    Scope(&'static str),
    /// Ingest series on these nodes.
    Series(&'static [&'static str]),
    /// Ingest a series on n1 plus a node record for this node.
    NodeRecord(&'static str),
    /// The `nodes` of a token to create.
    NewNodes(&'static [&'static str]),
}

const MX_AFTER: i64 = T0 + 1;
const MX_BEFORE: i64 = T0 + 300;

/// Path and body of `route` naming `naming`; `marker` makes side effects
/// traceable, `target` is the token id of /api/v1/tokens/{id}, `space` the
/// server's space id.
fn build(route: &Route, naming: Naming, marker: usize, target: &str, space: &str) -> (String, Option<Vec<u8>>) {
    let path = route.path.replace("{space}", space);
    match route.kind {
        Kind::Data if route.method == "GET" => {
            let key = if route.path == "/api/v1/data" { "context" } else { "contexts" };
            let mut p = format!("{}?{key}=disk.io&after={MX_AFTER}&before={MX_BEFORE}&points=10", route.path);
            match naming {
                Naming::Selectors(n) => write!(p, "&nodes={n}").expect("write to string"),
                Naming::Scope(n) => write!(p, "&scope_nodes={n}").expect("write to string"),
                _ => {}
            }
            (p, None)
        }
        Kind::Data => {
            let mut b = json!({"scope": {"contexts": ["disk.io"]},
                               "window": {"after": MX_AFTER, "before": MX_BEFORE, "points": 10}});
            match naming {
                Naming::Selectors(n) => b["selectors"] = json!({"nodes": [n]}),
                Naming::Scope(n) => b["scope"]["nodes"] = json!([n]),
                _ => {}
            }
            (path, Some(encode(&b)))
        }
        Kind::Ingest => {
            let (nodes, record): (&[&str], Option<&str>) = match naming {
                Naming::Series(ns) => (ns, None),
                Naming::NodeRecord(n) => (&["n1"], Some(n)),
                _ => (&["n1"], None),
            };
            let (context, points) = (format!("matrix.c{marker}"), json!([[T0 + 10, 1.0]]));
            let series: Vec<Value> = nodes
                .iter()
                .map(|n| json!({"node": n, "context": context, "dimension": "d", "points": points}))
                .collect();
            let mut b = json!({ "series": series });
            if let Some(n) = record {
                b["nodes"] = json!([{"id": n, "hostname": "hijacked"}]);
            }
            (route.path.to_string(), Some(encode(&b)))
        }
        Kind::Create => {
            let mut b = json!({"name": format!("matrix-c{marker}"), "scopes": ["strata:tokens:write"]});
            if let Naming::NewNodes(ns) = naming {
                b["nodes"] = json!(ns);
            }
            (route.path.to_string(), Some(encode(&b)))
        }
        Kind::GetOne | Kind::Delete => (route.path.replace("{id}", target), None),
        Kind::Health | Kind::List | Kind::Whoami | Kind::Account => (path, None),
        Kind::Meta if route.method == "POST" => (path, Some(b"{}".to_vec())),
        Kind::Mcp => (path, Some(encode(&json!({"jsonrpc": "2.0", "id": marker, "method": "ping"})))),
        Kind::Meta | Kind::Ws => (path, None),
        Kind::RoomCreate => (path, Some(encode(&json!({"name": format!("matrix-r{marker}"), "nodes": ["n1"]})))),
    }
}

struct Case {
    route: &'static Route,
    label: String,
    authorization: Option<String>,
    naming: Naming,
    expect: u16,
    /// For whoami: the id the answer must name.
    who: Option<String>,
}

fn check_case(c: &Case, r: &Reply, path: &str) -> Result<(), String> {
    if r.status != c.expect {
        return Err(format!("expected {}, got {}: {}", c.expect, r.status, r.snippet()));
    }
    if r.status == 401 && !r.www_authenticate.as_deref().is_some_and(|h| h.starts_with("Bearer")) {
        return Err(format!("401 without 'WWW-Authenticate: Bearer': {:?}", r.www_authenticate));
    }
    if r.status >= 400 {
        error_shape(
            r,
            path.contains("/spaces") || path.ends_with("/accounts/me"),
            path.split('?').next().unwrap_or(path),
        )?;
    }
    if r.status == 200 && r.content_type.as_deref().is_some_and(|c| c.starts_with("text/event-stream")) {
        // A stream (`ticks=1`): one tick and the end; an allowlist shows only n1.
        let events = r.text.matches("event: tick").count();
        let other = r.text.contains("\"id\":\"n2\"");
        return if events == 1 && !(c.label.contains("allowlist") && other) {
            Ok(())
        } else {
            Err(format!("stream body: {}", r.snippet()))
        };
    }
    let Some(body) = r.json_opt() else { return Err(format!("{} body is not JSON: {}", r.status, r.snippet())) };
    if r.status == 201 && c.route.kind == Kind::Create {
        let t = body["token"].as_str().unwrap_or_default();
        if !shaped_like_token(t) || !body["id"].is_string() {
            return Err(format!("201 body without a valid token and id: {body}"));
        }
    }
    if let (Some(who), 200) = (&c.who, r.status) {
        if body["id"].as_str() != Some(who.as_str()) {
            return Err(format!("whoami names {} instead of {who}", body["id"]));
        }
    }
    Ok(())
}

#[test]
fn tokens_matrix_every_route_times_every_credential_gets_the_exact_status() {
    // Well-formed and valid, but issued by another server (another data dir).
    let foreign = {
        let other = Server::start(None);
        mk(&other, "foreign", &["admin"], &[]).token
    };
    let s = Server::start(Some(NOW));
    let expired = create_ok(&s, &s.token, &json!({"name": "expired", "scopes": ["admin"], "seconds_to_live": 1}));
    let expiry_clock = Instant::now();
    let (batch, _) = dataset::batch(1, 300, true);
    s.ingest_ok(&batch);

    let full = mk(&s, "full", &["admin"], &[]);
    let revoked = mk(&s, "revoked", &["admin"], &[]);
    assert_eq!(req(&s, "GET", "/api/v1/whoami", &revoked.token, None).status, 200, "before its revocation");
    revoke_ok(&s, &revoked.id);
    let bundle = mk(&s, "bundle scope:all", &["scope:all"], &[]);
    let probe = mk(&s, "probe", &["viewer"], &[]);
    let (mut right, mut wrong, mut listed) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for need in ROUTES.iter().map(|r| r.need).collect::<BTreeSet<_>>() {
        let (rs, ws): (Vec<String>, Vec<String>) = if need.is_empty() {
            (vec!["strata:mcp:read".into()], vec!["metrics-publisher".into()])
        } else {
            (vec![need.to_string()], complement(need))
        };
        let rs: Vec<&str> = rs.iter().map(String::as_str).collect();
        let ws: Vec<&str> = ws.iter().map(String::as_str).collect();
        right.insert(need, mk(&s, &format!("right {need}"), &rs, &[]));
        wrong.insert(need, mk(&s, &format!("wrong {need}"), &ws, &[]));
        listed.insert(need, mk(&s, &format!("listed {need}"), &rs, &["n1"]));
    }

    let truncated = full.token[..full.token.len() - 1].to_string();
    let unauthenticated: [(&str, Option<String>); 6] = [
        ("no token", None),
        ("malformed (typo)", Some(bearer(&typo(&full.token)))),
        ("malformed (truncated)", Some(bearer(&truncated))),
        ("unknown (issued elsewhere)", Some(bearer(&foreign))),
        ("expired", Some(bearer(&expired.token))),
        ("revoked", Some(bearer(&revoked.token))),
    ];
    let mut cases: Vec<Case> = Vec::new();
    for route in &ROUTES {
        let k = route.kind;
        let mut add = |label: String, tok: Option<&Tok>, authorization: Option<String>, naming: Naming, expect: u16| {
            let authorization = authorization.or_else(|| tok.map(|t| bearer(&t.token)));
            let who = tok.filter(|_| k == Kind::Whoami).map(|t| t.id.clone());
            cases.push(Case { route, label, authorization, naming, expect, who });
        };
        let denied = |code: u16| if k == Kind::Health { 200 } else { code };
        for (label, header) in &unauthenticated {
            add(label.to_string(), None, header.clone(), Naming::Nothing, denied(401));
        }
        let scopeless = matches!(k, Kind::Health | Kind::Whoami | Kind::Account | Kind::Mcp);
        add("wrong scope".into(), Some(&wrong[route.need]), None, Naming::Nothing, if scopeless { 200 } else { 403 });
        if matches!(k, Kind::Create | Kind::List | Kind::GetOne | Kind::Delete) {
            add("wrong scope (scope:all bundle)".into(), Some(&bundle), None, Naming::Nothing, 403);
        }
        add("right scope".into(), Some(&right[route.need]), None, Naming::Nothing, k.ok());
        let (outside, inside): (Vec<Naming>, Vec<Naming>) = match k {
            Kind::Data => (
                vec![Naming::Selectors("n2"), Naming::Scope("n2")],
                vec![Naming::Nothing, Naming::Selectors("n1"), Naming::Scope("n1")],
            ),
            Kind::Ingest => (
                vec![Naming::Series(&["n2"]), Naming::Series(&["n1", "n2"]), Naming::NodeRecord("n2")],
                vec![Naming::Series(&["n1"])],
            ),
            Kind::Create => (
                vec![
                    Naming::NewNodes(&["n2"]),
                    Naming::NewNodes(&["n1", "n2"]),
                    Naming::NewNodes(&["n*"]),
                    Naming::NewNodes(&[]),
                ],
                vec![Naming::NewNodes(&["n1"])],
            ),
            _ => (vec![Naming::Nothing], vec![Naming::Nothing]),
        };
        let narrowable = matches!(k, Kind::Data | Kind::Ingest | Kind::Create);
        for n in outside {
            let expect = if narrowable { 403 } else { k.ok() };
            add(format!("outside allowlist [n1]: {n:?}"), Some(&listed[route.need]), None, n, expect);
        }
        for n in inside {
            add(format!("inside allowlist [n1]: {n:?}"), Some(&listed[route.need]), None, n, k.ok());
        }
    }
    // Each DELETE case gets its own victim, so successes and refusals are both visible.
    let victims: BTreeMap<usize, Tok> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.route.kind == Kind::Delete)
        .map(|(i, _)| (i, mk(&s, &format!("victim-c{i}"), &["viewer"], &[])))
        .collect();
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(expiry_clock.elapsed()));

    let space = admin(&s, "GET", "/api/v2/spaces", None).json()[0]["id"].as_str().expect("space id").to_string();
    // The plugin's own token reaches exactly the read routes.
    let grafana = mk(&s, "grafana", &["scope:grafana-plugin"], &[]);
    let mut bad_grafana = Vec::new();
    for route in &ROUTES {
        let want = if route.need.is_empty() || GRAFANA_ALLOWED.contains(&route.need) { route.kind.ok() } else { 403 };
        // Markers no case uses, so refused side effects stay invisible to the checks below.
        let (path, body) = build(route, Naming::Nothing, usize::MAX, &probe.id, &space);
        let r = call(&s.base, route.method, &path, Some(&bearer(&grafana.token)), body.as_deref());
        if r.status != want {
            bad_grafana.push(format!("{} {path}: {} (want {want}): {}", route.method, r.status, r.snippet()));
        }
    }
    let n = cases.len();
    eprintln!("token matrix: {n} cases");
    let mut bad = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let target = victims.get(&i).map_or(probe.id.as_str(), |v| v.id.as_str());
        let (path, body) = build(c.route, c.naming, i, target, &space);
        let r = call(&s.base, c.route.method, &path, c.authorization.as_deref(), body.as_deref());
        if let Err(e) = check_case(c, &r, &path) {
            bad.push(format!("#{i} {} {path} [{}]: {e}", c.route.method, c.label));
        }
    }

    // Side effects: refused requests changed nothing, accepted ones did.
    let listing = admin(&s, "GET", "/api/v1/tokens", None).json();
    let names: BTreeSet<&str> =
        listing["tokens"].as_array().expect("tokens list").iter().filter_map(|t| t["name"].as_str()).collect();
    let room_list = admin(&s, "GET", &format!("/api/v2/spaces/{space}/rooms"), None).json();
    let rooms: BTreeSet<&str> = room_list.as_array().expect("rooms").iter().filter_map(|r| r["id"].as_str()).collect();
    for (i, c) in cases.iter().enumerate() {
        let accepted = c.expect < 300;
        let what = format!("#{i} {} {} [{}]", c.route.method, c.route.path, c.label);
        match c.route.kind {
            Kind::Ingest => {
                let q = json!({"scope": {"contexts": [format!("matrix.c{i}")]},
                               "window": {"after": MX_AFTER, "before": MX_BEFORE, "points": 1}});
                let stored = labels(&s.query_ok(&q)).len() > 1;
                if stored != accepted {
                    bad.push(format!("{what}: data stored = {stored}, expected {accepted}"));
                }
            }
            Kind::Create => {
                let exists = names.contains(format!("matrix-c{i}").as_str());
                if exists != accepted {
                    bad.push(format!("{what}: token created = {exists}, expected {accepted}"));
                }
            }
            Kind::RoomCreate => {
                let exists = rooms.contains(format!("matrix-r{i}").as_str());
                if exists != accepted {
                    bad.push(format!("{what}: room created = {exists}, expected {accepted}"));
                }
            }
            Kind::Delete => {
                let v = &victims[&i];
                let rec = admin(&s, "GET", &format!("/api/v1/tokens/{}", v.id), None).json();
                let gone = !rec["revoked_at"].is_null();
                let works = req(&s, "GET", "/api/v1/whoami", &v.token, None).status == 200;
                if gone != accepted || works == accepted {
                    bad.push(format!(
                        "{what}: victim revoked_at {}, still works {works}; expected revoked {accepted}",
                        rec["revoked_at"]
                    ));
                }
            }
            _ => {}
        }
    }
    assert!(bad.is_empty(), "{} of {n} token-matrix cases are wrong:\n{}", bad.len(), bad.join("\n"));
    assert!(bad_grafana.is_empty(), "scope:grafana-plugin:\n{}", bad_grafana.join("\n"));
}

// ---------------------------------------------------------------------------
// 2. Allowlist narrowing.

#[test]
fn tokens_allowlist_narrows_queries_to_the_allowed_nodes() {
    let s = Server::start(Some(NOW));
    let (batch, _) = dataset::batch(1, 600, true);
    s.ingest_ok(&batch);
    let t = mk(&s, "only n1", &[DATA_READ], &["n1"]);
    let q = |scope_nodes: Option<&[&str]>, sel_nodes: Option<&[&str]>| {
        let mut b = json!({
            "scope": {"contexts": ["disk.io", "system.cpu"]},
            "window": {"after": T0 + 1, "before": T0 + 600, "points": 6, "tier": 0},
            "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}],
                             "time": {"time_group": "average"}},
        });
        if let Some(n) = scope_nodes {
            b["scope"]["nodes"] = json!(n);
        }
        if let Some(n) = sel_nodes {
            b["selectors"] = json!({ "nodes": n });
        }
        b
    };
    let node_names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["summary"]["nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["nm"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        n.sort();
        n
    };
    let all = s.query_ok(&q(None, None));
    let n1_only = s.query_ok(&q(Some(&["n1"]), None));
    assert_eq!(node_names(&all), ["host-1", "host-2"], "admin sees both nodes");
    assert_eq!(node_names(&n1_only), ["host-1"]);
    assert!(labels(&all).len() > labels(&n1_only).len(), "n2 has series of its own");
    let guid2 = dataset::guids(&all)["host-2"].clone();
    assert!(!guid2.is_empty(), "a machine guid for host-2 in {}", all["summary"]["nodes"]);

    type Names<'a> = Option<&'a [&'a str]>;
    let cases: [(&str, Names, Names); 5] = [
        ("no node named", None, None),
        ("selectors.nodes [*]", None, Some(&["*"])),
        ("scope.nodes [n*]", Some(&["n*"]), None),
        ("selectors.nodes [host-*]", None, Some(&["host-*"])),
        ("scope.nodes [n1]", Some(&["n1"]), None),
    ];
    for (what, scope, sel) in cases {
        let r = req(&s, "POST", "/api/v3/data", &t.token, Some(&q(scope, sel)));
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        let v = r.json();
        assert!(!r.text.contains("host-2") && !r.text.contains(&guid2), "{what}: the answer mentions n2: {}", r.text);
        assert_eq!(node_names(&v), ["host-1"], "{what}");
        assert_eq!(labels(&v), labels(&n1_only), "{what}: series");
        assert_eq!(v["result"]["data"], n1_only["result"]["data"], "{what}: values");
    }
    // GET v2 grouped by node: one series, n1's.
    let qs = format!("/api/v2/data?contexts=disk.io&after={}&before={}&points=2&group_by=node", T0 + 1, T0 + 600);
    let mine = req(&s, "GET", &qs, &t.token, None);
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(labels(&mine.json()).len(), 2, "one node series: {}", mine.text);
    assert_eq!(labels(&admin(&s, "GET", &qs, None).json()).len(), 3, "admin: two node series");
}

/// The allowlist names node ids: another node whose hostname (or machine
/// GUID) happens to equal an allowed id stays invisible, as it is for ingest.
#[test]
fn tokens_allowlist_matches_node_ids_not_hostnames() {
    let s = Server::start(Some(NOW));
    let (batch, _) = dataset::batch(1, 60, true);
    s.ingest_ok(&batch);
    // Node n9 calls itself "n1".
    let impostor = json!({
        "nodes": [{"id": "n9", "hostname": "n1"}],
        "series": [{"node": "n9", "context": "disk.io", "instance": "disk.sdz", "dimension": "reads",
                    "points": [[T0 + 5, 7.0], [T0 + 6, 7.0]]}],
    });
    s.ingest_ok(&impostor);
    let t = mk(&s, "only n1", &[DATA_READ], &["n1"]);
    let n9 = json!({"series": [{"node": "n9", "context": "disk.io", "instance": "disk.sdz", "dimension": "reads",
                                "points": [[T0 + 7, 1.0]]}]});
    let w = mk(&s, "n1 writer", &["strata:ingest:write"], &["n1"]);
    let r = req(&s, "POST", "/api/v1/ingest", &w.token, Some(&n9));
    assert_eq!(r.status, 403, "an n1-only token writes node n9: {}", r.text);

    let q = json!({"scope": {"contexts": ["disk.io"]}, "window": {"after": T0 + 1, "before": T0 + 60, "points": 1},
                   "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}]}});
    let all = s.query_ok(&q);
    assert!(labels(&all).iter().any(|l| l.starts_with("disk.sdz@")), "admin sees n9's instance: {:?}", labels(&all));
    let r = req(&s, "POST", "/api/v3/data", &t.token, Some(&q));
    assert_eq!(r.status, 200, "{}", r.text);
    let mine = labels(&r.json());
    assert!(
        !mine.iter().any(|l| l.starts_with("disk.sdz@")),
        "an n1-only token sees node n9 (hostname \"n1\"): {mine:?}"
    );
}

/// Allowlists name node ids: an entry that is a known node's hostname or
/// machine GUID (and no node's id) would grant nothing, so creating that
/// token is a 400 naming the entry and the id to use, through the API and
/// the CLI alike. Ids, and names of nodes still to report, are accepted.
#[test]
fn tokens_allowlist_refuses_a_hostname_or_guid_in_place_of_a_node_id() {
    let s = Server::start(Some(NOW));
    let (batch, _) = dataset::batch(1, 60, true);
    s.ingest_ok(&batch);
    let (status, nodes) = s.get("/api/v2/nodes?nodes=n1");
    assert_eq!(status, 200, "{nodes}");
    let guid = nodes["nodes"][0]["mg"].as_str().expect("n1's machine GUID").to_string();
    let body = |entries: &[&str]| json!({"name": "allowlist", "scopes": [DATA_READ], "nodes": entries});
    for entry in ["host-1", guid.as_str(), "host-*"] {
        let r = admin(&s, "POST", "/api/v1/tokens", Some(&body(&["n2", entry])));
        assert_eq!(r.status, 400, "{entry}: {}", r.text);
        let e = r.json();
        assert_eq!(e["path"], json!("nodes"), "{e}");
        let msg = e["error"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("'{entry}'")) && msg.contains("'n1'"), "names the entry and the id: {msg}");
    }
    let listed = admin(&s, "GET", "/api/v1/tokens", None).json();
    assert!(!listed.to_string().contains("allowlist"), "no refused token was stored: {listed}");
    // A creator restricted to n2 learns nothing about n1 from the check:
    // the same 403 as for any node off its list.
    let restricted =
        create_ok(&s, &s.token, &json!({"name": "r", "scopes": ["strata:tokens:write", DATA_READ], "nodes": ["n2"]}));
    for entry in ["host-1", guid.as_str(), "n1"] {
        let r = req(&s, "POST", "/api/v1/tokens", &restricted.token, Some(&body(&[entry])));
        assert_eq!(r.status, 403, "{entry}: {}", r.text);
        assert!(!r.text.contains("'n1'") || entry == "n1", "{entry}: {}", r.text);
    }
    for entries in [&["n1"][..], &["n*"], &["n9-not-yet"], &["n1", "n9-not-yet"]] {
        let t = create_ok(&s, &s.token, &body(entries));
        assert_eq!(req(&s, "GET", "/api/v1/whoami", &t.token, None).json()["nodes"], json!(entries));
    }
    // The CLI creates through the running server: the same refusal.
    let o = strata(&[
        "token",
        "create",
        "--name",
        "cli",
        "--scopes",
        "viewer",
        "--nodes",
        "host-2",
        "--url",
        &s.base,
        "--data-dir",
        s.data_dir().to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() != Some(0) && err.contains("'host-2'") && err.contains("'n2'"),
        "exit {:?}: {err}",
        o.status.code()
    );
}

// ---------------------------------------------------------------------------
// 3. Revocation ends a running query.

/// One ingest batch: `metrics` (10 dimensions per context) on n1, one sample an
/// hour over a day. Sparse data is cheap to ingest but the query still walks
/// every second of the day for every metric.
fn slow_batch(metrics: std::ops::Range<usize>) -> Vec<u8> {
    let mut s = String::from("{\"series\":[");
    for (i, m) in metrics.enumerate() {
        if i > 0 {
            s.push(',');
        }
        write!(s, "{{\"node\":\"n1\",\"context\":\"slow.c{}\",\"dimension\":\"d{}\",\"points\":[", m / 10, m % 10)
            .expect("write to string");
        for (j, k) in (1..=SLOW_SPAN).step_by(3600).enumerate() {
            if j > 0 {
                s.push(',');
            }
            let v = (k * 7919 + m as i64 * 104_729) % 1000;
            write!(s, "[{},{v}]", T0 + k).expect("write to string");
        }
        s.push_str("]}");
    }
    s.push_str("]}");
    s.into_bytes()
}

const SLOW_SPAN: i64 = 86_400;

#[test]
fn tokens_revocation_ends_a_running_query_within_a_second() {
    let s = Server::start(Some(T0 + SLOW_SPAN + 10));
    let q = json!({
        "scope": {"contexts": ["slow.*"]},
        "window": {"after": T0 + 1, "before": T0 + SLOW_SPAN, "points": SLOW_SPAN, "tier": 0},
        "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": "sum"}],
                         "time": {"time_group": "median"}},
    });
    // Grow the data until the query takes over 2.5 s with the admin token.
    let mut metrics = 0;
    let mut took = Duration::ZERO;
    for _ in 0..4 {
        for start in (metrics..metrics + 400).step_by(100) {
            let b = slow_batch(start..start + 100);
            let r = call(&s.base, "POST", "/api/v1/ingest", Some(&bearer(&s.token)), Some(b.as_slice()));
            assert_eq!(r.status, 200, "ingesting slow.* metrics {start}..: {}", r.snippet());
        }
        metrics += 400;
        let t = Instant::now();
        let r = admin(&s, "POST", "/api/v3/data", Some(&q));
        took = t.elapsed();
        assert_eq!(r.status, 200, "the slow query: {}", r.snippet());
        eprintln!("slow query over {metrics} metrics took {took:?}");
        if took > Duration::from_millis(2500) {
            break;
        }
    }
    assert!(took > Duration::from_secs(2), "could not make a query slower than 2 s ({took:?} with {metrics} metrics)");

    let victim = mk(&s, "victim", &["viewer"], &[]);
    let (base, auth, body) = (s.base.clone(), bearer(&victim.token), encode(&q));
    let started = Instant::now();
    let running = std::thread::spawn(move || {
        let r = call(&base, "POST", "/api/v3/data", Some(&auth), Some(&body));
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(300));
    let revoked_at = Instant::now();
    let d = revoke_ok(&s, &victim.id);
    let (r, done) = running.join().expect("the query thread");
    assert!(done > revoked_at, "the victim's query ended before the revocation ({:?})", done - started);
    let lag = done - revoked_at;
    assert_eq!(r.status, 401, "the revoked query answers 401 (after {lag:?}): {}", r.snippet());
    assert!(r.text.contains("revoked"), "the 401 says the token was revoked: {}", r.text);
    assert!(lag <= Duration::from_millis(1500), "the query ended {lag:?} after the revocation");
    assert!(d["ended"].as_u64().is_some_and(|n| n >= 1), "DELETE reports the ended query: {d}");
    assert!(!d["revoked_at"].is_null() && d["id"] == json!(victim.id), "DELETE body: {d}");
    let next = req(&s, "GET", "/api/v1/whoami", &victim.token, None);
    assert_eq!(next.status, 401, "the next request with the revoked token: {}", next.text);
    let next = req(&s, "GET", "/api/v3/data?contexts=slow.c0&points=1", &victim.token, None);
    assert_eq!(next.status, 401, "the next data request with the revoked token: {}", next.text);
}

// ---------------------------------------------------------------------------
// 4. Rate limits.

#[test]
fn tokens_rate_limit_answers_429_with_retry_after_and_spares_other_tokens() {
    let s = Server::start(Some(NOW));
    let limited = create_ok(
        &s,
        &s.token,
        &json!({"name": "limited", "scopes": ["viewer"], "rate_limit": {"per_second": 2.0, "burst": 5}}),
    );
    let other = mk(&s, "other", &["viewer"], &[]);
    let started = Instant::now();
    let mut passed = Vec::new();
    let mut refused = None;
    for _ in 0..30 {
        let r = req(&s, "GET", "/api/v1/whoami", &limited.token, None);
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        passed.push(r.status);
    }
    let elapsed = started.elapsed();
    assert!(passed.len() >= 5 && passed.iter().all(|&c| c == 200), "the burst of 5 passes: {passed:?}");
    let most = 5 + (elapsed.as_secs_f64() * 2.0).ceil() as usize;
    assert!(passed.len() <= most, "{} passed in {elapsed:?}; at most {most} may", passed.len());
    let r = refused.expect("no 429 within 30 quick requests");
    let retry: u64 = r
        .retry_after
        .as_deref()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {r:?}"));
    assert!(retry >= 1, "Retry-After {retry}");
    let body = r.json();
    assert_eq!(body["status"], json!(429), "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    // The data routes are limited the same way.
    let r = req(&s, "GET", "/api/v3/data?contexts=disk.io&points=1", &limited.token, None);
    assert_eq!(r.status, 429, "still limited on a data route: {}", r.text);

    for _ in 0..10 {
        let r = req(&s, "GET", "/api/v3/data?contexts=disk.io&points=1", &other.token, None);
        assert_eq!(r.status, 200, "another token is unaffected: {}", r.text);
    }
    assert_eq!(admin(&s, "GET", "/api/v1/whoami", None).status, 200, "the admin token is unaffected");
    std::thread::sleep(Duration::from_secs(retry));
    let r = req(&s, "GET", "/api/v1/whoami", &limited.token, None);
    assert_eq!(r.status, 200, "after Retry-After the token works again: {}", r.text);
}

// ---------------------------------------------------------------------------
// 5. The token file across restarts; plaintext only in admin.token.

#[test]
fn tokens_survive_a_restart_and_only_their_hashes_are_stored() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha256 self-check"
    );
    let s = Server::start(Some(NOW));
    let kept = mk(&s, "kept", &["viewer"], &["n1"]);
    let gone = mk(&s, "gone", &["viewer"], &[]);
    revoke_ok(&s, &gone.id);
    let admin_token = s.token.clone();
    let s = Server::start_in(s.stop(), Some(NOW));

    let who = req(&s, "GET", "/api/v1/whoami", &kept.token, None);
    assert_eq!(who.status, 200, "the created token still authenticates: {}", who.text);
    let who = who.json();
    assert_eq!(who["id"], json!(kept.id), "{who}");
    assert_eq!(who["nodes"], json!(["n1"]), "the allowlist is kept: {who}");
    let q = format!("/api/v3/data?contexts=disk.io&after={}&before={}&points=1", T0 + 1, T0 + 60);
    assert_eq!(req(&s, "GET", &q, &kept.token, None).status, 200);
    assert_eq!(req(&s, "GET", &format!("{q}&nodes=n2"), &kept.token, None).status, 403, "allowlist after restart");
    assert_eq!(req(&s, "GET", "/api/v1/whoami", &gone.token, None).status, 401, "revoked stays revoked");
    assert_eq!(admin(&s, "GET", "/api/v1/whoami", None).status, 200, "the admin token after the restart");

    let dir = s.data_dir().to_path_buf();
    let file = std::fs::read(dir.join("tokens").join("tokens.json")).expect("tokens/tokens.json exists");
    let records: Value = serde_json::from_slice(&file).expect("tokens.json is JSON");
    let stored = String::from_utf8_lossy(&file);
    for (name, t) in [("admin", &admin_token), ("kept", &kept.token), ("gone", &gone.token)] {
        assert!(!contains(&file, t) && !contains(&file, &t["strata_".len()..]), "tokens.json holds {name}'s plaintext");
        let h = sha256_hex(t.as_bytes());
        assert!(stored.contains(&h), "tokens.json holds the SHA-256 of {name}'s token");
    }
    assert_eq!(records.as_array().map(Vec::len), Some(3), "three records: {stored}");
    assert_eq!(kept.id, format!("tok_{}", &sha256_hex(kept.token.as_bytes())[..16]), "id derives from the hash");

    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let mut holding_admin = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        if contains(&bytes, &admin_token) {
            holding_admin.push(f.strip_prefix(&dir).unwrap_or(f).display().to_string());
        }
        for (name, t) in [("kept", &kept.token), ("gone", &gone.token)] {
            assert!(!contains(&bytes, t), "{} holds {name}'s plaintext", f.display());
        }
    }
    assert_eq!(holding_admin, ["admin.token"], "only admin.token holds the admin plaintext");
}

#[test]
fn tokens_last_use_survives_a_clean_stop() {
    let s = Server::start(Some(NOW));
    let used = mk(&s, "used", &["viewer"], &[]);
    let idle = mk(&s, "idle", &["viewer"], &[]);
    assert_eq!(req(&s, "GET", "/api/v1/whoami", &used.token, None).status, 200);
    let before = admin(&s, "GET", &format!("/api/v1/tokens/{}", used.id), None).json();
    assert_eq!(before["last_used_ip"], json!("127.0.0.1"), "recorded at once: {before}");
    let at = before["last_used_at"].as_i64().unwrap_or_else(|| panic!("no last_used_at: {before}"));

    let s = Server::start_in(s.stop_gracefully(), Some(NOW));
    let after = admin(&s, "GET", &format!("/api/v1/tokens/{}", used.id), None).json();
    assert_eq!(after["last_used_at"], json!(at), "last use kept across the restart: {after}");
    assert_eq!(after["last_used_ip"], json!("127.0.0.1"), "{after}");
    let never = admin(&s, "GET", &format!("/api/v1/tokens/{}", idle.id), None).json();
    assert_eq!((&never["last_used_at"], &never["last_used_ip"]), (&Value::Null, &Value::Null), "{never}");
}

// ---------------------------------------------------------------------------
// 6. Tokens never reach the log.

#[test]
fn tokens_plaintexts_never_reach_the_server_log() {
    let s = Server::start(Some(NOW));
    let (batch, _) = dataset::batch(1, 60, true);
    s.ingest_ok(&batch);
    let a = mk(&s, "log a", &["viewer"], &["n1"]);
    let b = mk(&s, "log b", &["metrics-publisher"], &[]);
    let c = mk(&s, "log c", &["strata:tokens:*", "viewer"], &[]);
    let q = format!("/api/v3/data?contexts=disk.io&after={}&before={}&points=1", T0 + 1, T0 + 60);
    let ingest =
        json!({"series": [{"node": "n2", "context": "log.test", "dimension": "d", "points": [[T0 + 5, 1.0]]}]});
    let uses: Vec<(&Tok, &str, String, Option<Value>, u16)> = vec![
        (&a, "GET", q.clone(), None, 200),
        (&a, "GET", format!("{q}&nodes=n2"), None, 403),
        (&a, "POST", "/api/v1/ingest".into(), Some(ingest.clone()), 403),
        (&a, "POST", "/api/v1/tokens".into(), Some(json!({"name": "x", "scopes": ["viewer"]})), 403),
        (&a, "GET", "/api/v1/whoami".into(), None, 200),
        (&a, "GET", "/api/v9/nothing".into(), None, 404),
        (&b, "POST", "/api/v1/ingest".into(), Some(json!({"series": "bad"})), 400),
        (&b, "POST", "/api/v1/ingest".into(), Some(ingest), 200),
        (&b, "GET", q.clone(), None, 403),
        (&c, "POST", "/api/v1/tokens".into(), Some(json!({"name": "y", "scopes": ["editor"]})), 403),
        (&c, "POST", "/api/v1/tokens".into(), Some(json!({"name": "z", "scopes": ["strata:nope:read"]})), 400),
        (&c, "GET", "/api/v1/tokens".into(), None, 200),
        (&c, "DELETE", format!("/api/v1/tokens/{}", b.id), None, 200),
        (&b, "GET", "/api/v1/whoami".into(), None, 401),
    ];
    for (t, method, path, body, want) in &uses {
        let r = req(&s, method, path, &t.token, body.as_ref());
        assert_eq!(r.status, *want, "{method} {path}: {}", r.text);
    }
    let child = create_ok(&s, &c.token, &json!({"name": "child", "scopes": ["viewer"]}));
    for (name, t) in [("a", &a), ("c", &c)] {
        let r = call(&s.base, "GET", &q, Some(&bearer(&typo(&t.token))), None);
        assert_eq!(r.status, 401, "typo of {name}");
        let r = call(&s.base, "GET", &q, Some(&format!("Basic {}", t.token)), None);
        assert_eq!(r.status, 401, "Basic scheme with {name}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = s.stderr_text();
    for (name, t) in [("a", &a.token), ("b", &b.token), ("c", &c.token), ("child", &child.token)] {
        let body = &t["strata_".len()..];
        assert!(!log.contains(t.as_str()) && !log.contains(body), "token {name} appears in the log:\n{log}");
        let typoed = typo(t);
        assert!(!log.contains(&typoed["strata_".len()..]), "a typo of token {name} appears in the log");
    }
    let n = log.matches(s.token.as_str()).count();
    assert!(n <= 1, "the admin token appears {n} times in the log (at most once, at first start)");
    assert_eq!(log.matches(&s.token["strata_".len()..]).count(), n, "admin token fragments in the log");
}

// ---------------------------------------------------------------------------
// 7. Management rules.

fn expect_status(bad: &mut Vec<String>, what: &str, r: &Reply, want: u16) {
    if r.status != want {
        bad.push(format!("{what}: expected {want}, got {}: {}", r.status, r.snippet()));
    } else if want >= 400 {
        if let Err(e) = error_shape(r, false, "") {
            bad.push(format!("{what}: {e}"));
        }
    }
}

#[test]
fn tokens_management_rules_no_escalation_masked_listings_404_and_400() {
    let s = Server::start(Some(NOW));
    let mut bad = Vec::new();
    let probe = mk(&s, "probe", &["viewer"], &[]);
    let viewer_body = json!({"name": "v", "scopes": ["viewer"]});

    // Bundles never manage tokens.
    for bundle in ["scope:all", "scope:agent-ui", "scope:grafana-plugin", "scope:mcp"] {
        let t = mk(&s, bundle, &[bundle], &[]);
        let r = req(&s, "POST", "/api/v1/tokens", &t.token, Some(&viewer_body));
        expect_status(&mut bad, &format!("{bundle} creates a viewer token"), &r, 403);
        let r = req(&s, "GET", "/api/v1/tokens", &t.token, None);
        expect_status(&mut bad, &format!("{bundle} lists tokens"), &r, 403);
        let r = req(&s, "DELETE", &format!("/api/v1/tokens/{}", probe.id), &t.token, None);
        expect_status(&mut bad, &format!("{bundle} revokes a token"), &r, 403);
    }

    // A manager with viewer power creates at most viewer power.
    let mgr = mk(&s, "manager", &["strata:tokens:*", "viewer"], &[]);
    let try_create = |creator: &Tok, scopes: &[&str], nodes: Option<&[&str]>| {
        let mut b = json!({"name": format!("by {}", creator.id), "scopes": scopes});
        if let Some(n) = nodes {
            b["nodes"] = json!(n);
        }
        req(&s, "POST", "/api/v1/tokens", &creator.token, Some(&b))
    };
    let mut children = Vec::new();
    let table: [(&[&str], u16); 13] = [
        (&["viewer"], 201),
        (&["scope:grafana-plugin"], 201),
        (&[DATA_READ, "strata:metadata:read"], 201),
        (&["strata:tokens:read"], 201),
        (&["strata:tokens:*", "viewer"], 201),
        (&["editor"], 403),
        (&["admin"], 403),
        (&["strata:*"], 403),
        (&["scope:all"], 403),
        (&["scope:agent-ui"], 403),
        (&["metrics-publisher"], 403),
        (&["strata:data:write"], 403),
        (&["viewer", "strata:ingest:write"], 403),
    ];
    for (scopes, want) in table {
        let r = try_create(&mgr, scopes, None);
        expect_status(&mut bad, &format!("manager creates {scopes:?}"), &r, want);
        if r.status == 201 {
            children.push(created(&r.json(), "child"));
        }
    }
    let viewer_child = children.first().cloned().expect("a viewer child");
    let r = try_create(&viewer_child, &["viewer"], None);
    expect_status(&mut bad, "a viewer token creates a token", &r, 403);
    let r = req(&s, "GET", "/api/v1/tokens", &mgr.token, None);
    expect_status(&mut bad, "manager lists", &r, 200);
    let r = req(&s, "DELETE", &format!("/api/v1/tokens/{}", viewer_child.id), &mgr.token, None);
    expect_status(&mut bad, "manager revokes its child", &r, 200);

    // A manager with an allowlist creates only explicit names from its list.
    let lm = mk(&s, "listed manager", &["strata:tokens:*", "viewer"], &["n1", "n3"]);
    let table: [(&[&str], u16); 8] = [
        (&["n1"], 201),
        (&["n1", "n3"], 201),
        (&["n2"], 403),
        (&["n1", "n2"], 403),
        (&[], 403),
        (&["n*"], 403),
        (&["*"], 403),
        (&["!n2"], 403),
    ];
    for (nodes, want) in table {
        let r = try_create(&lm, &["viewer"], Some(nodes));
        expect_status(&mut bad, &format!("allowlisted manager creates nodes {nodes:?}"), &r, want);
    }
    let r = try_create(&lm, &["viewer"], None);
    expect_status(&mut bad, "allowlisted manager creates a token without nodes", &r, 403);

    // A short-lived manager cannot mint a never-expiring token.
    let short = create_ok(
        &s,
        &s.token,
        &json!({"name": "short", "scopes": ["strata:tokens:*", "viewer"], "seconds_to_live": 600}),
    );
    let short_exp = admin(&s, "GET", &format!("/api/v1/tokens/{}", short.id), None).json()["expires_at"].as_i64();
    let r = req(
        &s,
        "POST",
        "/api/v1/tokens",
        &short.token,
        Some(&json!({"name": "forever", "scopes": ["viewer"], "expires_in_days": 0})),
    );
    expect_status(&mut bad, "short-lived manager creates a never-expiring token", &r, 201);
    if r.status == 201 {
        let exp = r.json()["expires_at"].as_i64();
        if exp.is_none() || short_exp.is_none() || exp > short_exp {
            bad.push(format!("child of a token expiring at {short_exp:?} expires at {exp:?}"));
        }
    }

    // Listings are masked.
    let known: Vec<String> = [&s.token, &mgr.token, &lm.token, &short.token, &probe.token]
        .into_iter()
        .cloned()
        .chain(children.iter().map(|c| c.token.clone()))
        .collect();
    let list = admin(&s, "GET", "/api/v1/tokens", None);
    expect_status(&mut bad, "admin lists", &list, 200);
    let one = admin(&s, "GET", &format!("/api/v1/tokens/{}", mgr.id), None);
    expect_status(&mut bad, "admin gets one", &one, 200);
    let mut entries: Vec<Value> = list.json()["tokens"].as_array().cloned().unwrap_or_default();
    if entries.len() < 10 {
        bad.push(format!("the listing has {} entries: {}", entries.len(), list.snippet()));
    }
    entries.push(one.json());
    for text in [&list.text, &one.text] {
        for t in &known {
            if text.contains(&t["strata_".len()..]) {
                bad.push(format!("a listing contains the plaintext of {}…", &t[..11]));
            }
        }
    }
    for e in &entries {
        for key in [
            "id",
            "name",
            "token",
            "scopes",
            "nodes",
            "created_at",
            "created_by",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
            "admin",
        ] {
            if e.get(key).is_none() {
                bad.push(format!("listing entry without '{key}': {e}"));
            }
        }
        let masked = e["token"].as_str().unwrap_or_default();
        if !(masked.starts_with("strata_") && masked.ends_with('…') && masked.chars().count() <= 12) {
            bad.push(format!("listing entry's token is not masked: {masked:?}"));
        }
        let obj = e.as_object().cloned().unwrap_or_default();
        for (k, v) in &obj {
            let hexish = v.as_str().is_some_and(|s| s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
            if k.contains("hash") || k.contains("sha") || hexish {
                bad.push(format!("listing entry exposes a hash: {k} = {v}"));
            }
        }
    }
    if let Some(m) = entries.iter().find(|e| e["id"] == json!(mgr.id)) {
        if m["last_used_at"].is_null() || m["created_by"] != json!("admin") {
            bad.push(format!("manager's entry: last_used_at and created_by should be set: {m}"));
        }
    }

    // Unknown ids.
    let r = admin(&s, "GET", "/api/v1/tokens/tok_0000000000000000", None);
    expect_status(&mut bad, "GET unknown token id", &r, 404);
    let r = admin(&s, "DELETE", "/api/v1/tokens/tok_0000000000000000", None);
    expect_status(&mut bad, "DELETE unknown token id", &r, 404);

    // Bad bodies: 400 naming the problem; the limits themselves are fine.
    let long = "x".repeat(129);
    let scopes33: Vec<&str> = vec!["viewer"; 33];
    let scopes32: Vec<&str> = vec!["viewer"; 32];
    let nodes1001: Vec<String> = (0..1001).map(|i| format!("node-{i}")).collect();
    let nodes1000 = &nodes1001[..1000];
    let rejected: Vec<(Value, &str)> = vec![
        (json!({"name": "x", "scopes": ["strata:planets:read"]}), "strata:planets:read"),
        (json!({"name": "x", "scopes": ["root"]}), "root"),
        (json!({"name": "x", "scopes": ["strata:data:eat"]}), "strata:data:eat"),
        (json!({"name": long, "scopes": ["viewer"]}), "name"),
        (json!({"name": "", "scopes": ["viewer"]}), "name"),
        (json!({"scopes": ["viewer"]}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x"}), "scopes"),
        (json!({"name": "x", "scopes": "viewer"}), "scopes"),
        (json!({"name": "x", "scopes": scopes33}), "32"),
        (json!({"name": "x", "scopes": ["viewer"], "nodes": nodes1001}), "nodes"),
        (json!({"name": "x", "scopes": ["viewer"], "expires_in_days": 3651}), "expires_in_days"),
        (json!({"name": "x", "scopes": ["viewer"], "expires_in_days": -1}), "expires_in_days"),
        (json!({"name": "x", "scopes": ["viewer"], "expires_in_days": 1, "seconds_to_live": 60}), "seconds_to_live"),
        (json!({"name": "x", "scopes": ["viewer"], "seconds_to_live": 0}), "seconds_to_live"),
        (json!({"name": "x", "scopes": ["viewer"], "rate_limit": {"per_second": 0, "burst": 1}}), "rate_limit"),
    ];
    for (body, names) in &rejected {
        let r = admin(&s, "POST", "/api/v1/tokens", Some(body));
        let what = format!("POST /api/v1/tokens {}", &body.to_string().chars().take(120).collect::<String>());
        expect_status(&mut bad, &what, &r, 400);
        if r.status == 400 && !r.text.contains(names) {
            bad.push(format!("{what}: the 400 does not name '{names}': {}", r.snippet()));
        }
    }
    let r = call(&s.base, "POST", "/api/v1/tokens", Some(&bearer(&s.token)), Some(b"{\"name\": "));
    expect_status(&mut bad, "POST /api/v1/tokens with broken JSON", &r, 400);
    let accepted: Vec<Value> = vec![
        json!({"name": "y".repeat(128), "scopes": ["viewer"]}),
        json!({"name": "x", "scopes": scopes32}),
        json!({"name": "x", "scopes": ["viewer"], "nodes": nodes1000}),
        json!({"name": "x", "scopes": ["viewer"], "expires_in_days": 3650}),
        json!({"name": "x", "scopes": ["viewer"], "expires_in_days": 0}),
    ];
    for body in &accepted {
        let r = admin(&s, "POST", "/api/v1/tokens", Some(body));
        let what = format!("POST /api/v1/tokens {}", &body.to_string().chars().take(120).collect::<String>());
        expect_status(&mut bad, &what, &r, 201);
        if r.status == 201 && body["expires_in_days"] == json!(0) && !r.json()["expires_at"].is_null() {
            bad.push(format!("{what}: expires_in_days 0 means never, got {}", r.json()["expires_at"]));
        }
    }

    // The admin token cannot be revoked through the API.
    let r = admin(&s, "DELETE", "/api/v1/tokens/admin", None);
    if (200..300).contains(&r.status) {
        bad.push(format!("DELETE /api/v1/tokens/admin succeeded: {}", r.text));
    }
    if admin(&s, "GET", "/api/v1/whoami", None).status != 200 {
        bad.push("the admin token stopped working".into());
    }
    assert!(bad.is_empty(), "{} management rules broken:\n{}", bad.len(), bad.join("\n"));
}

// ---------------------------------------------------------------------------
// 8. --anonymous-read.

#[test]
fn tokens_anonymous_read_reads_data_but_never_ingests_or_manages_tokens() {
    let s = Server::start_with(TempDir::new("anon"), Some(NOW), &["--anonymous-read"]);
    let (batch, _) = dataset::batch(1, 300, true);
    s.ingest_ok(&batch);
    let victim = mk(&s, "victim", &["viewer"], &[]);
    let revoked = mk(&s, "revoked", &["viewer"], &[]);
    revoke_ok(&s, &revoked.id);
    let publisher = mk(&s, "publisher", &["metrics-publisher"], &[]);
    let window = format!("after={MX_AFTER}&before={MX_BEFORE}&points=10");
    let query = encode(&json!({"scope": {"contexts": ["disk.io"]},
                              "window": {"after": MX_AFTER, "before": MX_BEFORE, "points": 10}}));
    let ingest = encode(&json!({"series": [{"node": "n1", "context": "anon.ingest", "dimension": "d",
                                            "points": [[T0 + 10, 1.0]]}]}));
    let new_token = encode(&json!({"name": "anon-created", "scopes": ["viewer"]}));
    let victim_path = format!("/api/v1/tokens/{}", victim.id);
    let garbage = "Bearer garbage".to_string();
    let typoed = bearer(&typo(&victim.token));
    let revoked_h = bearer(&revoked.token);
    let publisher_h = bearer(&publisher.token);
    // (method, path, body, Authorization, expected status)
    type Case<'a> = (&'a str, String, Option<&'a [u8]>, Option<&'a str>, u16);
    let cases: Vec<Case> = vec![
        ("GET", format!("/api/v3/data?contexts=disk.io&{window}"), None, None, 200),
        ("GET", format!("/api/v2/data?contexts=disk.io&{window}"), None, None, 200),
        ("GET", format!("/api/v1/data?context=disk.io&{window}"), None, None, 200),
        ("POST", "/api/v3/data".into(), Some(query.as_slice()), None, 200),
        ("POST", s.room_data_path(), Some(query.as_slice()), None, 200),
        ("POST", "/api/v1/ingest".into(), Some(ingest.as_slice()), None, 401),
        ("POST", "/api/v1/tokens".into(), Some(new_token.as_slice()), None, 401),
        ("GET", "/api/v1/tokens".into(), None, None, 401),
        ("GET", victim_path.clone(), None, None, 401),
        ("DELETE", victim_path, None, None, 401),
        ("GET", format!("/api/v3/data?contexts=disk.io&{window}"), None, Some(garbage.as_str()), 401),
        ("GET", format!("/api/v3/data?contexts=disk.io&{window}"), None, Some(typoed.as_str()), 401),
        ("POST", "/api/v3/data".into(), Some(query.as_slice()), Some(revoked_h.as_str()), 401),
        ("POST", s.room_data_path(), Some(query.as_slice()), Some(garbage.as_str()), 401),
        ("POST", "/api/v3/data".into(), Some(query.as_slice()), Some(publisher_h.as_str()), 403),
    ];
    let mut bad = Vec::new();
    for (method, path, body, auth, want) in &cases {
        let r = call(&s.base, method, path, *auth, *body);
        let what = format!("{method} {path} with {}", if auth.is_some() { "a token" } else { "no token" });
        if r.status != *want {
            bad.push(format!("{what}: expected {want}, got {}: {}", r.status, r.snippet()));
            continue;
        }
        if *want == 401 && !r.www_authenticate.as_deref().is_some_and(|h| h.starts_with("Bearer")) {
            bad.push(format!("{what}: 401 without WWW-Authenticate"));
        }
        if *want == 200 && path.contains("v3/data") && labels(&r.json()).len() < 2 {
            bad.push(format!("{what}: no series in {}", r.snippet()));
        }
    }
    // Nothing was changed by the refused requests.
    let q = json!({"scope": {"contexts": ["anon.ingest"]},
                   "window": {"after": MX_AFTER, "before": MX_BEFORE, "points": 1}});
    if labels(&s.query_ok(&q)).len() > 1 {
        bad.push("the anonymous ingest was applied".into());
    }
    let list = admin(&s, "GET", "/api/v1/tokens", None).text;
    if list.contains("anon-created") {
        bad.push("the anonymous POST /api/v1/tokens created a token".into());
    }
    if req(&s, "GET", "/api/v1/whoami", &victim.token, None).status != 200 {
        bad.push("the anonymous DELETE revoked the victim".into());
    }
    assert!(bad.is_empty(), "--anonymous-read: {} wrong:\n{}", bad.len(), bad.join("\n"));
}

// ---------------------------------------------------------------------------
// 9. The CLI.

fn strata(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("STRATA_URL")
        .env_remove("STRATA_TOKEN")
        .env_remove("STRATA_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running strata {args:?}: {e}"))
}

fn stdout_json(o: &Output, what: &str) -> Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// A URL nothing listens on: bind a free port, then release it.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn tokens_cli_creates_offline_and_revokes_through_the_api() {
    let s = Server::start(Some(NOW));
    let dir = s.stop();
    let d = dir.path.to_str().expect("utf-8 path").to_string();
    let dead = dead_url();
    let o = strata(&[
        "token",
        "create",
        "--name",
        "cli offline",
        "--scopes",
        "viewer,strata:ingest:write",
        "--nodes",
        "n1",
        "--expires-in-days",
        "30",
        "--data-dir",
        &d,
        "--url",
        &dead,
    ]);
    let v = stdout_json(&o, "token create (server stopped)");
    let tok = created(&v, "token create (server stopped)");
    assert_eq!(v["nodes"], json!(["n1"]), "{v}");
    assert_eq!(v["scopes"], json!(["viewer", "strata:ingest:write"]), "{v}");
    let exp = v["expires_at"].as_i64().expect("expires_at set");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((exp - now - 30 * 86_400).abs() < 120, "expires in 30 days: {exp} vs now {now}");

    let s = Server::start_in(dir, Some(NOW));
    let who = req(&s, "GET", "/api/v1/whoami", &tok.token, None);
    assert_eq!(who.status, 200, "the offline-created token works once the server starts: {}", who.text);
    assert_eq!(who.json()["id"], json!(tok.id));
    let (batch, _) = dataset::batch(1, 60, true);
    s.ingest_ok(&batch);
    let n1 = json!({"series": [{"node": "n1", "context": "cli.t", "dimension": "d", "points": [[T0 + 5, 1.0]]}]});
    let n2 = json!({"series": [{"node": "n2", "context": "cli.t", "dimension": "d", "points": [[T0 + 5, 1.0]]}]});
    assert_eq!(req(&s, "POST", "/api/v1/ingest", &tok.token, Some(&n1)).status, 200, "ingest to n1");
    assert_eq!(req(&s, "POST", "/api/v1/ingest", &tok.token, Some(&n2)).status, 403, "ingest to n2");
    let q = format!("/api/v3/data?contexts=disk.io&after={}&before={}&points=1", T0 + 1, T0 + 60);
    assert_eq!(req(&s, "GET", &q, &tok.token, None).status, 200, "data read");

    let o = strata(&["token", "list", "--url", &s.base, "--data-dir", &d]);
    let list = stdout_json(&o, "token list (server running)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.contains(&tok.token["strata_".len()..]), "token list prints a plaintext: {stdout}");
    assert!(!stdout.contains(&s.token["strata_".len()..]), "token list prints the admin plaintext");
    let entries = list["tokens"].as_array().expect("tokens in the list");
    assert!(entries.iter().any(|e| e["id"] == json!(tok.id)), "the list names the offline token: {list}");

    // Through the API while the server runs: the running server sees it at once.
    let o = strata(&["token", "revoke", &tok.id, "--url", &s.base, "--data-dir", &d]);
    let v = stdout_json(&o, "token revoke (server running)");
    assert_eq!(v["id"], json!(tok.id), "{v}");
    assert!(!v["revoked_at"].is_null(), "{v}");
    let r = req(&s, "GET", "/api/v1/whoami", &tok.token, None);
    assert_eq!(r.status, 401, "the revoked token: {}", r.text);
    assert_eq!(req(&s, "GET", &q, &tok.token, None).status, 401, "the revoked token on data");

    // Creating through the API while the server runs also works at once.
    let o =
        strata(&["token", "create", "--name", "cli online", "--scopes", "viewer", "--url", &s.base, "--data-dir", &d]);
    let online = created(&stdout_json(&o, "token create (server running)"), "token create (server running)");
    assert_eq!(req(&s, "GET", &q, &online.token, None).status, 200, "the token created through the API");
}
