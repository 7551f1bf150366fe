//! Token management: `POST /api/v1/tokens` (create; the plaintext is in
//! this one response), `GET /api/v1/tokens[/{id}]` (masked), `DELETE
//! /api/v1/tokens/{id}` (revoke: the next request fails, running queries
//! end), `GET /api/v1/whoami`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::body::{parse_json, read_capped};
use crate::auth::{now_secs, NewToken, Principal, TokenRecord};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn public(r: &TokenRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "token": r.prefix,
        "scopes": r.scopes,
        "nodes": r.nodes,
        "created_at": r.created_at,
        "created_by": r.created_by,
        "expires_at": r.expires_at,
        "last_used_at": r.last_used_at,
        "last_used_ip": r.last_used_ip,
        "revoked_at": r.revoked_at,
        "rate_limit": r.rate_limit.map(|l| format!("{}:{}", l.per_second, l.burst)),
        "new_series_per_hour": r.new_series_per_hour,
        "admin": r.admin,
    })
}

pub async fn create(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bytes = read_capped(&headers, body, 1 << 20, st.limits.read_timeout).await?;
    let req: NewToken = parse_json(&bytes)?;
    // Writing the token file fsyncs: off the async runtime.
    let (auth, who) = (st.auth.clone(), me.clone());
    let (rec, plaintext) = tokio::task::spawn_blocking(move || auth.tokens.create(&who, req, now_secs()))
        .await
        .map_err(|e| ApiError::Internal(format!("token task failed: {e}")))??;
    tracing::info!(id = %rec.id, name = %rec.name, by = %me.token_id, "token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": rec.id,
            "token": plaintext,
            "name": rec.name,
            "scopes": rec.scopes,
            "nodes": rec.nodes,
            "expires_at": rec.expires_at,
            "created_at": rec.created_at,
            "new_series_per_hour": rec.new_series_per_hour,
        })),
    ))
}

pub async fn list(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"tokens": st.auth.tokens.list().iter().map(public).collect::<Vec<_>>()}))
}

pub async fn get_one(
    State(st): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id.map_err(super::bad_path)?;
    let rec = st.auth.tokens.get(&id).ok_or_else(|| ApiError::NotFound(format!("no token with id '{id}'")))?;
    Ok(Json(public(&rec)))
}

pub async fn revoke(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id.map_err(super::bad_path)?;
    let (auth, tid) = (st.auth.clone(), id.clone());
    let rec = tokio::task::spawn_blocking(move || auth.tokens.revoke(&tid, now_secs()))
        .await
        .map_err(|e| ApiError::Internal(format!("token task failed: {e}")))??
        .ok_or_else(|| ApiError::NotFound(format!("no token with id '{id}'")))?;
    let ended = st.auth.inflight.cancel(&id);
    tracing::info!(id = %id, by = %me.token_id, ended, "token revoked");
    Ok(Json(json!({"id": rec.id, "revoked_at": rec.revoked_at, "ended": ended})))
}

pub async fn whoami(Extension(me): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "id": me.token_id,
        "name": me.name,
        "scopes": me.scopes.names,
        "nodes": me.nodes,
        "expires_at": me.expires_at,
        "admin": me.admin,
    }))
}
