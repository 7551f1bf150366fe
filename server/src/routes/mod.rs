//! Route table. Every `/api` route goes through the bearer-token layer;
//! `/health` does not (load balancers and the CLI probe it).

mod body;
mod data;
mod health;
mod ingest;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::require_token;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/data", get(data::get_v1))
        .route("/api/v2/data", get(data::get_v2))
        .route("/api/v3/data", get(data::get_v3).post(data::post_v3))
        .route("/api/v3/spaces/{space}/rooms/{room}/data", post(data::post_room))
        .route("/api/v1/ingest", post(ingest::post_ingest))
        .fallback(unknown_api)
        // Bodies are read with explicit caps (413 JSON), not axum's default.
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(state.tokens.clone(), require_token))
        .with_state(state.clone());
    Router::new().route("/health", get(health::health)).merge(api).with_state(state)
}

async fn unknown_api(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}
