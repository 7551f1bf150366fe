//! The route table: every route, its method, its handler and the scope it
//! needs, in one place. The router is built from it, so no route can exist
//! without a declared requirement (a test walks the table).

mod body;
mod data;
mod health;
mod ingest;
mod tokens;

use std::sync::Arc;

use axum::http::Method;
use axum::middleware;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use crate::auth::{enforce, Auth, Need, Resource, Verb};
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
        r(Method::POST, "/api/v3/spaces/{space}/rooms/{room}/data", READ_DATA, || post(data::post_room)),
        r(Method::POST, "/api/v1/ingest", Need::Scope(Resource::Ingest, Verb::Write), || post(ingest::post_ingest)),
        r(Method::POST, "/api/v1/tokens", Need::Scope(Resource::Tokens, Verb::Write), || post(tokens::create)),
        r(Method::GET, "/api/v1/tokens", Need::Scope(Resource::Tokens, Verb::Read), || get(tokens::list)),
        r(Method::GET, "/api/v1/tokens/{id}", Need::Scope(Resource::Tokens, Verb::Read), || get(tokens::get_one)),
        r(Method::DELETE, "/api/v1/tokens/{id}", Need::Scope(Resource::Tokens, Verb::Delete), || {
            delete(tokens::revoke)
        }),
        r(Method::GET, "/api/v1/whoami", Need::Authenticated, || get(tokens::whoami)),
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
    router
        .fallback(unknown_api)
        .layer(middleware::from_fn(move |req: axum::extract::Request, next: middleware::Next| async move {
            use axum::response::IntoResponse;
            match tokio::time::timeout(limit, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => ApiError::GatewayTimeout(limit.as_secs()).into_response(),
            }
        }))
        .with_state(state)
}

/// Unknown paths still need a token, so the API's shape is not probeable.
async fn unknown_api(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> ApiError {
    match st.auth.authorize(Need::Authenticated, &req) {
        Err(e) => e,
        Ok(_) => ApiError::NotFound(format!("no such endpoint: {}", req.uri().path())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
