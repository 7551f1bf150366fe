//! The route table: every route, its method, its handler and the scope it
//! needs, in one place. The router is built from it, so no route can exist
//! without a declared requirement (a test walks the table).

mod body;
mod cloud;
mod data;
mod health;
mod ingest;
mod mcp;
mod meta;
mod nezha;
mod sql;
pub(crate) mod stream;
mod tokens;
mod v1_meta;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method};
use axum::middleware;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use axum::response::Response;

use crate::auth::{enforce, reject, Auth, Need, Resource, Verb};
use crate::error::ApiError;
use crate::state::AppState;

/// One row of the table.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub need: Need,
    handler: fn() -> MethodRouter<AppState>,
}

const READ_DATA: Need = Need::Scope(Resource::Data, Verb::Read);
const READ_META: Need = Need::Scope(Resource::Metadata, Verb::Read);
const ADMIN: Need = Need::Scope(Resource::Admin, Verb::Write);
const READ_STREAM: Need = Need::Scope(Resource::Stream, Verb::Read);

/// Every route strata serves.
pub fn table() -> Vec<RouteSpec> {
    fn r(method: Method, path: &'static str, need: Need, handler: fn() -> MethodRouter<AppState>) -> RouteSpec {
        RouteSpec { method, path, need, handler }
    }
    vec![
        r(Method::GET, "/health", Need::Public, || get(health::health)),
        r(Method::GET, "/api/v1/data", READ_DATA, || get(data::get_v1)),
        r(Method::GET, "/api/v2/data", READ_DATA, || get(data::get_v2)),
        r(Method::GET, "/api/v3/data", READ_DATA, || get(data::get_v3)),
        r(Method::POST, "/api/v3/data", READ_DATA, || post(data::post_v3)),
        r(Method::POST, "/api/v1/sql", READ_DATA, || post(sql::post)),
        r(Method::GET, "/api/v1/info", READ_META, || get(v1_meta::info)),
        r(Method::GET, "/api/v1/charts", READ_META, || get(v1_meta::charts)),
        r(Method::GET, "/api/v1/chart", READ_META, || get(v1_meta::chart)),
        r(Method::GET, "/api/v1/contexts", READ_META, || get(v1_meta::contexts_v1)),
        r(Method::GET, "/api/v1/weights", READ_DATA, || get(v1_meta::weights_v1)),
        r(Method::GET, "/api/v1/metric_correlations", READ_DATA, || get(v1_meta::metric_correlations_v1)),
        r(Method::GET, "/api/v1/allmetrics", READ_DATA, || get(v1_meta::allmetrics_v1)),
        r(Method::GET, "/api/v2/info", READ_META, || get(meta::info_v2)),
        r(Method::GET, "/api/v2/nodes", READ_META, || get(meta::nodes_v2)),
        r(Method::GET, "/api/v2/contexts", READ_META, || get(meta::contexts_v2)),
        r(Method::GET, "/api/v2/q", READ_META, || get(meta::q_v2)),
        r(Method::GET, "/api/v2/weights", READ_DATA, || get(meta::weights_v2)),
        // The v3 names of the same listings (spec 5.1-5.4, 5.8): one answer.
        r(Method::GET, "/api/v3/info", READ_META, || get(meta::info_v2)),
        r(Method::GET, "/api/v3/nodes", READ_META, || get(meta::nodes_v2)),
        r(Method::GET, "/api/v3/contexts", READ_META, || get(meta::contexts_v2)),
        r(Method::GET, "/api/v3/q", READ_META, || get(meta::q_v2)),
        r(Method::GET, "/api/v3/weights", READ_DATA, || get(meta::weights_v2)),
        r(Method::GET, "/api/v3/allmetrics", READ_DATA, || get(v1_meta::allmetrics_v1)),
        r(Method::GET, "/api/v2/accounts/me", Need::Authenticated, || get(cloud::accounts_me)),
        r(Method::GET, "/api/v2/spaces", READ_META, || get(cloud::spaces)),
        r(Method::GET, "/api/v2/spaces/{space}/rooms", READ_META, || get(cloud::rooms)),
        r(Method::POST, "/api/v2/spaces/{space}/rooms", ADMIN, || post(cloud::create_room)),
        r(Method::POST, "/api/v3/spaces/{space}/rooms/{room}/nodes", READ_META, || post(cloud::room_nodes)),
        r(Method::POST, "/api/v3/spaces/{space}/rooms/{room}/contexts", READ_META, || post(cloud::room_contexts)),
        r(Method::POST, "/api/v3/spaces/{space}/rooms/{room}/data", READ_DATA, || post(data::post_room)),
        r(Method::POST, "/api/v1/ingest", Need::Scope(Resource::Ingest, Verb::Write), || post(ingest::post_ingest)),
        r(Method::POST, "/api/v1/tokens", Need::Scope(Resource::Tokens, Verb::Write), || post(tokens::create)),
        r(Method::GET, "/api/v1/tokens", Need::Scope(Resource::Tokens, Verb::Read), || get(tokens::list)),
        r(Method::GET, "/api/v1/tokens/{id}", Need::Scope(Resource::Tokens, Verb::Read), || get(tokens::get_one)),
        r(Method::DELETE, "/api/v1/tokens/{id}", Need::Scope(Resource::Tokens, Verb::Delete), || {
            delete(tokens::revoke)
        }),
        r(Method::GET, "/api/v1/whoami", Need::Authenticated, || get(tokens::whoami)),
        // Any valid token; each tool checks strata:mcp:read and its data scope.
        r(Method::POST, "/mcp", Need::Authenticated, || post(mcp::post)),
        r(Method::GET, "/api/v1/server", READ_META, || get(nezha::list)),
        r(Method::GET, "/api/v1/server/{id}/metrics", READ_DATA, || get(nezha::metrics)),
        r(Method::GET, "/api/v1/ws/nodes", READ_STREAM, || get(stream::ws::nodes)),
        r(Method::GET, "/api/v1/stream/nodes", READ_STREAM, || get(stream::sse::nodes)),
    ]
}

pub fn router(state: AppState) -> Router {
    let auth: Arc<Auth> = state.auth.clone();
    let mut router: Router<AppState> = Router::new();
    for spec in table() {
        let layer = middleware::from_fn_with_state((auth.clone(), spec.need), enforce);
        router = router.route(spec.path, (spec.handler)().route_layer(layer));
    }
    let limit = state.limits.request_timeout;
    let unsent = state.unsent.clone();
    router
        .method_not_allowed_fallback(wrong_method)
        .fallback(unknown_api)
        .layer(middleware::from_fn(move |req: axum::extract::Request, next: middleware::Next| {
            let unsent = unsent.clone();
            async move {
                use axum::response::IntoResponse;
                let has_body = request_has_body(&req);
                // An ingest is not cut: its body has its own limit (the
                // body timeout, 408), and once read it is applied whatever
                // the time (waiting for the ingest order, the WAL's fsync)
                // and answered with what was written: a 504 would leave its
                // client to guess, and retry a batch that may be stored.
                let resp = if is_ingest(&req) {
                    next.run(req).await
                } else {
                    match tokio::time::timeout(limit, next.run(req)).await {
                        Ok(resp) => resp,
                        Err(_) => ApiError::GatewayTimeout(limit.as_secs()).into_response(),
                    }
                };
                let mut resp = unsent.track(resp).await;
                // A refused request's body may be unread, so the connection
                // cannot carry another request: say so instead of just closing.
                if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
                    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                resp
            }
        }))
        .layer(middleware::from_fn_with_state(state.clone(), mcp::cors))
        .with_state(state)
}

/// `POST /api/v1/ingest`, which the request timeout does not cut.
fn is_ingest(req: &axum::extract::Request) -> bool {
    req.method() == Method::POST && req.uri().path() == "/api/v1/ingest"
}

/// A path segment axum could not take (bad UTF-8, say) as a JSON 400 in
/// the route's own error shape, instead of axum's plain-text answer.
pub fn bad_path(e: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::BadRequest(format!("bad path: {}", e.body_text()))
}

fn request_has_body(req: &axum::extract::Request) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// Unknown paths still need a token, so the API's shape is not probeable.
async fn unknown_api(st: axum::extract::State<AppState>, req: axum::extract::Request) -> Response {
    refuse_after_auth(st, req, |_, path| ApiError::NotFound(format!("no such endpoint: {path}")))
}

/// A known path with a method it does not serve: 405 with `Allow`, in JSON
/// like every other error, and (like unknown paths) only for a valid token.
async fn wrong_method(st: axum::extract::State<AppState>, req: axum::extract::Request) -> Response {
    refuse_after_auth(st, req, |method, path| ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow: allowed_methods(path),
        path: path.to_string(),
    })
}

/// `error` for a valid token, the authentication error otherwise, in the
/// error shape of the path's family.
fn refuse_after_auth(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    error: impl FnOnce(&Method, &str) -> ApiError,
) -> Response {
    let path = req.uri().path();
    let e = match st.auth.authorize(Need::Authenticated, &req) {
        Err(e) => e,
        Ok(_) => error(req.method(), path),
    };
    reject(e, path)
}

/// The methods the route table serves on `path` (`{x}` matches a segment).
fn allowed_methods(path: &str) -> Vec<String> {
    let matches = |template: &str| {
        let (mut t, mut p) = (template.split('/'), path.split('/'));
        loop {
            match (t.next(), p.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b || (a.starts_with('{') && !b.is_empty()) => {}
                _ => return false,
            }
        }
    };
    let mut out: Vec<String> = table().iter().filter(|r| matches(r.path)).map(|r| r.method.to_string()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_methods_follow_the_table() {
        assert_eq!(allowed_methods("/api/v3/data"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/api/v1/tokens/tok_1"), ["DELETE", "GET"]);
        assert_eq!(allowed_methods("/api/v3/spaces/s/rooms/r/data"), ["POST"]);
        assert_eq!(allowed_methods("/api/v2/spaces/s/rooms"), ["GET", "POST"]);
        assert!(allowed_methods("/api/v1/tokens/").is_empty());
    }

    #[test]
    fn every_route_declares_what_it_needs() {
        let t = table();
        assert!(t.len() >= 12);
        for spec in &t {
            let public = spec.need == Need::Public;
            assert_eq!(public, spec.path == "/health", "{} {} is public: {public}", spec.method, spec.path);
        }
        let mut seen = std::collections::HashSet::new();
        for spec in &t {
            assert!(seen.insert((spec.method.clone(), spec.path)), "duplicate route {} {}", spec.method, spec.path);
        }
    }
}
