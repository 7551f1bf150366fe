//! Token management: `POST /api/v1/tokens` (create; the plaintext is in
//! this one response), `GET /api/v1/tokens[/{id}]` (masked), `DELETE
//! /api/v1/tokens/{id}` (revoke: the next request fails, running queries
//! end), `GET /api/v1/whoami`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Value};
use strata_engine::index::SimplePattern;
use strata_engine::query::select;
use strata_engine::EngineError;

use super::body::{parse_json, read_capped};
use crate::auth::{now_secs, NewToken, Principal, TokenRecord};
use crate::error::{ApiError, ApiResult, BodyKind};
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

/// Refuses an allowlist entry that names a known node by its hostname or
/// machine GUID but matches no node id: allowlists match node ids only (a
/// hostname is whatever the ingesting side calls itself), so that token
/// would silently see nothing. An entry that matches no node at all is
/// kept: it names a node that has not reported yet.
fn allowlist_names_ids(st: &AppState, nodes: &[String]) -> ApiResult<()> {
    let state = st.engine.read()?;
    for entry in nodes {
        // A malformed pattern is the token store's to refuse, by name.
        let Ok(p) = SimplePattern::parse_list(&[entry]) else { continue };
        if let Some(id) = select::named_by_alias_only(&state.catalog, &p) {
            let msg = format!(
                "'{entry}' is not a node id: it names node '{id}' by hostname or machine GUID, \
                 and allowlists match node ids only (use '{id}')"
            );
            return Err(EngineError::param("nodes", msg).into());
        }
    }
    Ok(())
}

pub async fn create(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bytes = read_capped(&headers, body, (1 << 20, BodyKind::Other), st.limits.read_timeout).await?;
    let req: NewToken = parse_json(&bytes)?;
    // Writing the token file fsyncs: off the async runtime.
    let (auth, who) = (st.auth.clone(), me.clone());
    let (rec, plaintext) = tokio::task::spawn_blocking(move || {
        // Only for a creator who sees every node: naming the id behind a
        // hostname would tell a restricted one what lies outside its list
        // (its own limit is then the token store's to enforce, with a 403).
        if who.allow.is_none() {
            allowlist_names_ids(&st, &req.nodes)?;
        }
        auth.tokens.create(&who, req, now_secs())
    })
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
    let (rec, ended) =
        tokio::task::spawn_blocking(move || auth.tokens.revoke_then(&tid, now_secs(), || auth.inflight.cancel(&tid)))
            .await
            .map_err(|e| ApiError::Internal(format!("token task failed: {e}")))??
            .ok_or_else(|| ApiError::NotFound(format!("no token with id '{id}'")))?;
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
