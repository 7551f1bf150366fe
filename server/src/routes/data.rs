//! Data queries: `GET /api/v1/data`, `GET /api/v2/data`, `GET|POST
//! /api/v3/data` and the Cloud-style `POST
//! /api/v3/spaces/{space}/rooms/{room}/data`. All parse into one
//! `QueryRequest`, run on a blocking thread (a tiny one on the async
//! worker, see [`runs_inline`]), and are formatted there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;
use strata_engine::query::body::{parse_body, parse_body_json};
use strata_engine::query::params::parse_params;
use strata_engine::query::request::{ApiVersion, Format, QueryRequest};
use strata_engine::EngineError;

use super::body::{parse_json, read_capped};
use crate::admission::{runs_inline, Class};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, BodyKind, CloudError};
use crate::format::{json2, v1_json};
use crate::state::AppState;

pub(crate) fn pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
}

fn bytes_response(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = Body::from(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Applies the caller's node allowlist (node ids): the query sees only
/// those nodes, and naming another one is a 403 (decided by the engine).
fn restrict(req: &mut QueryRequest, me: &Principal) {
    req.allowed_nodes = me.allow.clone();
}

/// Sets a query's cancel flag when dropped: when the request's future is
/// dropped (the client went away, or the request timed out), the work on
/// the blocking thread stops too, not just the response.
pub(crate) struct CancelOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs the query and renders it, off the async runtime, in a query slot
/// (503 when none is free). Revoking the caller's token, the client going
/// away and the request timing out all end it.
async fn run(st: AppState, me: Principal, mut req: QueryRequest, chart_id: String) -> ApiResult<Response> {
    restrict(&mut req, &me);
    let started = Instant::now();
    // The estimate needs the catalog's read lock: taken here when it is
    // free (a selection is microseconds), else on a blocking thread.
    let estimate = match st.engine.try_estimate(req) {
        Ok(estimate) => estimate,
        Err(req) => {
            let engine = st.engine.clone();
            tokio::task::spawn_blocking(move || engine.estimate(*req))
                .await
                .map_err(|e| ApiError::Internal(format!("query cost task failed: {e}")))?
        }
    };
    let estimate = estimate?;
    let cost = estimate.cost;
    let slot = st.admission.enter(Class::of(&cost)).await?;
    let engine = st.engine.clone();
    let agent = st.agent.clone();
    let cancel = st.auth.inflight.register(&me.token_id);
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let work = move || -> ApiResult<Response> {
        // Held until the work ends, even if the client left earlier.
        let _slot = slot;
        let result = engine.query_estimated(&estimate, &cancel).map_err(|e| match e {
            EngineError::Cancelled => ApiError::Unauthorized("token was revoked during the query".into()),
            e => e.into(),
        })?;
        let req = estimate.request();
        if req.api == ApiVersion::V1 && result.series.is_empty() {
            return Err(EngineError::NothingMatched.into());
        }
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        if req.format == Format::Json2 {
            let a = json2::Agent { machine_guid: &agent.machine_guid, hostname: &agent.hostname, now: engine.now() };
            return Ok(bytes_response(json2::write(&result, &a, total_ms), "application/json"));
        }
        let (body, ctype) = v1_json::write(&result, &chart_id);
        Ok(bytes_response(body, ctype))
    };
    if runs_inline(&cost) {
        // A panic answers 500 here too, as a blocking task's would.
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .unwrap_or_else(|_| Err(ApiError::Internal("query task failed: it panicked".into())));
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
}

pub async fn get_v1(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = pairs(q)?;
    let chart = p.iter().find(|(k, v)| (k == "chart" || k == "context") && !v.is_empty()).map(|(_, v)| v.clone());
    let Some(chart) = chart else {
        return Err(ApiError::BadRequest("No chart or context is given.".into()));
    };
    let req = parse_params(ApiVersion::V1, &p)?;
    run(st, me, req, chart).await
}

pub async fn get_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = parse_params(ApiVersion::V2, &pairs(q)?)?;
    run(st, me, req, String::new()).await
}

pub async fn get_v3(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = parse_params(ApiVersion::V3, &pairs(q)?)?;
    run(st, me, req, String::new()).await
}

async fn body_request(st: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<QueryRequest> {
    let bytes = read_capped(headers, body, (st.limits.query, BodyKind::Query), st.limits.read_timeout).await?;
    // The common shape is read straight from the bytes; the rest (lenient
    // forms, and malformed bodies, whose errors it words) through a
    // `Value`. Both give the same request (see `strata_engine::query::body`).
    if let Some(req) = parse_body_json(ApiVersion::V3, &bytes) {
        return Ok(req?);
    }
    let value: Value = parse_json(&bytes)?;
    Ok(parse_body(ApiVersion::V3, &value)?)
}

pub async fn post_v3(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let req = body_request(&st, &headers, body).await?;
    run(st, me, req, String::new()).await
}

/// The Cloud-style room data route: the room narrows the query to its
/// nodes; an unknown space or room is a 404.
pub async fn post_room(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    ids: Result<axum::extract::Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, CloudError> {
    // The body is read first: answering before it is read would cut off a
    // client still sending it.
    let req = body_request(&st, &headers, body).await;
    let axum::extract::Path((space, room)) = ids.map_err(super::bad_path)?;
    let room = st.cloud.room(&space, &room)?;
    let mut req = req?;
    req.room = room.filter;
    Ok(run(st, me, req, String::new()).await?)
}
