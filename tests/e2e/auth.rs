//! Bearer-token authentication on every /api route; /health is open; the
//! admin token file.

use serde_json::{json, Value};

use crate::dataset::{NOW, T0};
use crate::harness::{Auth, Resp, Server, TempDir};

fn routes() -> Vec<(&'static str, Option<Vec<u8>>)> {
    let query = serde_json::to_vec(&json!({"scope": {"contexts": ["disk.io"]},
                                          "window": {"after": T0 + 1, "before": T0 + 60, "points": 1}}))
    .expect("encode");
    let ingest = serde_json::to_vec(&json!({"series": [{"node": "n1", "context": "auth.test", "dimension": "d",
                                                       "points": [[T0 + 1, 1.0]]}]}))
    .expect("encode");
    vec![
        ("/api/v3/data?contexts=disk.io&points=1", None),
        ("/api/v3/data", Some(query.clone())),
        ("/api/v2/data?contexts=disk.io&points=1", None),
        ("/api/v1/ingest", Some(ingest)),
        ("/api/v3/spaces/s/rooms/r/data", Some(query)),
    ]
}

fn assert_401(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text);
    assert!(r.www_authenticate.as_deref().is_some_and(|h| h.starts_with("Bearer")), "{what}: WWW-Authenticate {r:?}");
    let body: Value = r.json();
    let agent_shape = body["error"].as_str().is_some_and(|e| !e.is_empty()) && body["status"] == json!(401);
    let cloud_shape = body["errorMessage"].as_str().is_some() && body["errorMsgKey"].as_str().is_some();
    assert!(agent_shape || cloud_shape, "{what}: 401 body {body}");
}

#[test]
fn missing_token_is_401_with_www_authenticate_on_every_api_route() {
    let s = Server::start(Some(NOW));
    for (path, body) in routes() {
        let r = s.request(path, Auth::None, body.as_deref());
        assert_401(&r, &format!("no token, {path}"));
        if body.as_ref().is_some_and(|b| !b.is_empty()) {
            // The body was not read: the connection cannot be reused.
            assert_eq!(r.connection.as_deref(), Some("close"), "no token, {path}: {r:?}");
        }
    }
    // The agent routes answer the agent error shape.
    let r = s.request("/api/v3/data?contexts=disk.io&points=1", Auth::None, None);
    assert_eq!(r.json()["status"], json!(401));
    assert!(r.content_type.as_deref().is_some_and(|c| c.contains("json")), "{r:?}");
}

#[test]
fn malformed_authorization_headers_are_401() {
    let s = Server::start(Some(NOW));
    let tok = s.token.clone();
    let raw_token = tok.clone();
    let basic = format!("Basic {tok}");
    let bare = "Bearer".to_string();
    let empty = "Bearer ".to_string();
    for header in [raw_token.as_str(), basic.as_str(), bare.as_str(), empty.as_str(), "garbage"] {
        for (path, body) in routes() {
            let r = s.request(path, Auth::Header(header), body.as_deref());
            assert_401(&r, &format!("Authorization: {header:?}, {path}"));
        }
    }
}

#[test]
fn unknown_token_is_401_and_admin_token_is_accepted() {
    let s = Server::start(Some(NOW));
    let wrong = format!("Bearer {}x", s.token);
    let other = "Bearer strata_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();
    for header in [wrong.as_str(), other.as_str()] {
        for (path, body) in routes() {
            let r = s.request(path, Auth::Header(header), body.as_deref());
            assert_401(&r, &format!("unknown token, {path}"));
        }
    }
    // Nothing was ingested by the refused requests; the admin token works.
    let room = format!("/spaces/{}/rooms/all-nodes/", s.space_id());
    for (path, body) in routes() {
        let path = path.replace("/spaces/s/rooms/r/", &room);
        let r = s.request(&path, Auth::Admin, body.as_deref());
        assert_eq!(r.status, 200, "admin token on {path}: {}", r.text);
    }
}

#[test]
fn health_answers_without_a_token() {
    let s = Server::start(Some(NOW));
    let r = s.request("/health", Auth::None, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.is_empty(), "health says something");
    let r = s.request("/health", Auth::Header("Bearer nonsense"), None);
    assert_eq!(r.status, 200, "a bad token does not matter on /health: {}", r.text);
}

#[test]
fn admin_token_file_is_0600_printed_once_and_kept_across_restarts() {
    let s = Server::start(Some(NOW));
    let path = s.data_dir().join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("admin.token metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "admin.token mode is {mode:o}");
    }
    let token = s.token.clone();
    assert!(s.stderr_text().contains(&token), "the first start prints the admin token on stderr");
    let dir: TempDir = s.stop();
    let s2 = Server::start_in(dir, Some(NOW));
    assert_eq!(s2.token, token, "the token file is unchanged by a restart");
    assert!(!s2.stderr_text().contains(&token), "a later start must not print the token:\n{}", s2.stderr_text());
    let r = s2.request("/api/v3/data?contexts=disk.io&points=1", Auth::Admin, None);
    assert_eq!(r.status, 200, "the admin token still works after a restart: {}", r.text);
}

#[test]
fn wrong_methods_are_json_405s_and_unknown_paths_404s_in_their_family_shape_after_auth() {
    let s = Server::start(Some(NOW));
    // POST on a GET-only route.
    let r = s.request("/api/v1/whoami", Auth::Admin, Some(b"{}"));
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.allow.as_deref(), Some("GET"), "{r:?}");
    assert_eq!(r.json()["status"], json!(405));
    assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("POST") && e.contains("GET")), "{r:?}");
    // Without a token the same request is a 401: the API cannot be probed.
    assert_401(&s.request("/api/v1/whoami", Auth::None, Some(b"{}")), "POST /api/v1/whoami, no token");
    // GET on the POST-only room route answers in Cloud's shape.
    let r = s.request("/api/v3/spaces/s/rooms/r/data", Auth::Admin, None);
    assert_eq!((r.status, r.allow.as_deref()), (405, Some("POST")), "{r:?}");
    assert_eq!(r.json()["errorMsgKey"], json!("ErrMethodNotAllowed"), "{r:?}");
    // Unknown paths: agent shape, and Cloud's shape under /spaces.
    let r = s.request("/api/v3/nothing", Auth::Admin, None);
    assert_eq!((r.status, r.json()["status"].clone()), (404, json!(404)), "{r:?}");
    let r = s.request("/api/v3/spaces/s/rooms/r/alerts", Auth::Admin, None);
    assert_eq!((r.status, r.json()["errorMsgKey"].clone()), (404, json!("ErrNotFound")), "{r:?}");
    // A known room route with an unknown space: 404, Cloud's shape.
    let r = s.request("/api/v3/spaces/s/rooms/r/nodes", Auth::Admin, Some(b"{}"));
    assert_eq!((r.status, r.json()["errorMsgKey"].clone()), (404, json!("ErrNotFound")), "{r:?}");
}
