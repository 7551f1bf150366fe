//! `POST /mcp`: strata's MCP endpoint (spec mcp.md), a stateless,
//! JSON-only, dual-era server over Streamable HTTP. The route needs any
//! valid token (401 before the body is read); the tools check their own
//! scopes. Then, in order: the 8 MiB body cap (413, body not parsed), the
//! `Host` check when bound to loopback and the `Origin` check (403), `/mcp`'s own per-token limits (10/s and 120/min,
//! 429 with `Retry-After`), `Content-Type` (415) and `Accept` (406), the
//! JSON-RPC envelope (`protocol`) and the method (`dispatch`). GET, DELETE
//! and HEAD answer 405 with `Allow: POST` (the router's method fallback).
//! No sessions, no SSE: every request gets one `application/json` answer,
//! notifications and client responses 202 with no body.

mod dispatch;
pub mod protocol;
pub mod schema;
pub mod tools;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::body::read_capped;
use crate::auth::Principal;
use crate::error::{ApiError, BodyKind, RpcError};
use crate::state::AppState;

/// Largest request body.
pub const MAX_BODY: usize = 8 << 20;

/// Is a browser `Origin` allowed: the server's own (its scheme and the
/// `Host` header's name) or one configured with `--mcp-allowed-origin`.
/// A page served over plain HTTP is not the origin of an HTTPS server
/// (whoever can tamper with that page could then call `/mcp`).
fn origin_allowed(origin: &str, scheme: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let own = host.is_some_and(|h| origin.strip_prefix(scheme).and_then(|o| o.strip_prefix("://")) == Some(h));
    own || allowed.iter().any(|a| a.trim_end_matches('/') == origin)
}

/// Is `Host` one a loopback-bound server answers to: `localhost`,
/// `127.0.0.1` or `[::1]` with its port (a rebinding attack names the
/// attacker's host there). Any `Host` when not bound to loopback.
fn host_allowed(host: Option<&str>, loopback_port: Option<u16>) -> bool {
    let (Some(port), Some(host)) = (loopback_port, host) else { return true };
    let name = host.strip_suffix(&format!(":{port}")).unwrap_or(if port == 80 { host } else { "" });
    matches!(name.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

fn refuse(e: ApiError) -> Response {
    let retry = match &e {
        ApiError::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    };
    let mut r = RpcError(e).into_response();
    if let Some(v) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// Request headers a browser may send to `/mcp` (spec 1.8, CORS).
const CORS_ALLOW_HEADERS: &str =
    "authorization, content-type, accept, mcp-protocol-version, mcp-method, mcp-name, mcp-session-id";

/// CORS for `/mcp`, around every other layer (so that a 401 or 429 is
/// readable too): for an `Origin` configured with `--mcp-allowed-origin`,
/// a preflight `OPTIONS` is answered 204 before authentication (browsers
/// send no token on it), and every answer names the origin. Without a
/// configured origin nothing changes: browsers then cannot read answers.
pub async fn cors(State(st): State<AppState>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let allowed = (req.uri().path() == "/mcp")
        .then(|| req.headers().get(ORIGIN).and_then(|o| o.to_str().ok()))
        .flatten()
        .filter(|o| st.mcp.allowed_origins.iter().any(|a| a.trim_end_matches('/') == *o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let Some(origin) = allowed else { return next.run(req).await };
    let mut resp = if req.method() == axum::http::Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert("access-control-allow-methods", HeaderValue::from_static("POST"));
        h.insert("access-control-allow-headers", HeaderValue::from_static(CORS_ALLOW_HEADERS));
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", origin);
    h.insert("access-control-expose-headers", HeaderValue::from_static("mcp-session-id"));
    h.append(axum::http::header::VARY, HeaderValue::from_static("origin"));
    resp
}

/// Checks everything before the JSON-RPC body is read.
fn admit(st: &AppState, me: &Principal, h: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| h.get(name).map(|v: &HeaderValue| v.to_str().unwrap_or("\u{fffd}"));
    if !host_allowed(text(HOST), st.mcp.loopback_port) {
        let host = text(HOST).unwrap_or("");
        return Err(ApiError::Forbidden(format!(
            "Host '{host}' is not this loopback server's name (localhost, 127.0.0.1 or [::1] with its port)"
        )));
    }
    if let Some(origin) = text(ORIGIN) {
        let scheme = if st.mcp.tls { "https" } else { "http" };
        if !origin_allowed(origin, scheme, text(HOST), &st.mcp.allowed_origins) {
            return Err(ApiError::Forbidden(format!("origin '{origin}' is not allowed to call /mcp")));
        }
    }
    st.auth.mcp_limiter.check(&me.token_id).map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let ctype = text(CONTENT_TYPE).unwrap_or("");
    if !ctype.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!("Content-Type must be application/json, got '{ctype}'")));
    }
    if let Some(accept) = text(ACCEPT) {
        let a = accept.to_ascii_lowercase();
        if !(a.contains("application/json") || a.contains("*/*") || a.contains("application/*")) {
            return Err(ApiError::NotAcceptable("this server answers application/json only".into()));
        }
    }
    Ok(())
}

pub async fn post(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The body is read first (within the cap): answering before it is read
    // would cut off a client still sending it.
    let bytes = match read_capped(&headers, body, (MAX_BODY, BodyKind::Other), st.limits.read_timeout).await {
        Ok(b) => b,
        Err(e) => return refuse(e),
    };
    if let Err(e) = admit(&st, &me, &headers) {
        return refuse(e);
    }
    match protocol::parse(&bytes, &headers) {
        Err(f) => (f.status, Json(f.body())).into_response(),
        Ok(protocol::Incoming::Notification { method, params }) => {
            if method == "notifications/cancelled" {
                if let Some(id) = params.get("requestId") {
                    st.auth.mcp_calls.cancel(&me.token_id, id);
                }
            }
            StatusCode::ACCEPTED.into_response()
        }
        Ok(protocol::Incoming::Response) => StatusCode::ACCEPTED.into_response(),
        Ok(protocol::Incoming::Request(req)) => {
            let (status, body) = dispatch::handle(&st, &me, req).await;
            (status, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_on_loopback() {
        assert!(host_allowed(Some("127.0.0.1:19999"), Some(19999)));
        assert!(host_allowed(Some("LOCALHOST:19999"), Some(19999)));
        assert!(host_allowed(Some("[::1]:19999"), Some(19999)));
        assert!(host_allowed(Some("localhost"), Some(80)));
        assert!(!host_allowed(Some("evil.example:19999"), Some(19999)), "a rebound name");
        assert!(!host_allowed(Some("127.0.0.1:8080"), Some(19999)), "another port");
        assert!(!host_allowed(Some("localhost"), Some(19999)), "no port when it is not 80");
        assert!(host_allowed(Some("metrics.example:443"), None), "not bound to loopback");
        assert!(host_allowed(None, Some(19999)));
    }

    #[test]
    fn origins() {
        let allowed = vec!["http://localhost:6274".to_string()];
        assert!(origin_allowed("http://127.0.0.1:19999", "http", Some("127.0.0.1:19999"), &[]));
        assert!(!origin_allowed("https://127.0.0.1:19999", "http", Some("127.0.0.1:19999"), &[]), "another scheme");
        assert!(origin_allowed("https://metrics.example", "https", Some("metrics.example"), &[]));
        assert!(!origin_allowed("http://metrics.example", "https", Some("metrics.example"), &[]), "plain page");
        assert!(!origin_allowed("http://127.0.0.1:19999x", "http", Some("127.0.0.1:19999"), &[]));
        assert!(origin_allowed("http://localhost:6274", "http", Some("127.0.0.1:19999"), &allowed));
        assert!(!origin_allowed("http://evil.example", "http", Some("127.0.0.1:19999"), &allowed));
        assert!(!origin_allowed("null", "http", None, &allowed));
    }
}
