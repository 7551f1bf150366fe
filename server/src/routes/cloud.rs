//! Netdata Cloud-shaped routes, what the Netdata Grafana plugin and other
//! Cloud clients call: `GET /api/v2/accounts/me`, `GET /api/v2/spaces`,
//! `GET|POST /api/v2/spaces/{space}/rooms`, and the room-scoped `POST
//! /api/v3/spaces/{space}/rooms/{room}/{nodes,contexts}` (the room data
//! route is in `routes::data`). Errors use Cloud's shape; an unknown space
//! or room is a 404. A room narrows everything asked through it.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Value};
use strata_engine::engine::State as EngineState;
use strata_engine::meta::params::{parse_room_body, MetaRequest};
use strata_engine::meta::{nodes, MetaScope, RoomDef, Visible};
use strata_engine::model::machine_guid_for;

use super::bad_path;
use super::body::{parse_json, read_capped};
use super::meta::{blocking, contexts_doc, nodes_doc, scope_for, Ctx};
use crate::auth::Principal;
use crate::cloud::{Origin, Room, ALL_NODES};
use crate::error::{ApiError, BodyKind, CloudError};
use crate::state::AppState;

type CloudResult<T> = Result<T, CloudError>;

/// A stable, non-zero id for the calling token (the plugin's "Save & test"
/// only checks that it is not the all-zero UUID).
pub async fn accounts_me(Extension(me): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "id": machine_guid_for(&format!("strata-token:{}", me.token_id)),
        "name": me.name,
        "email": "",
        "avatarURL": "",
        "createdAt": "",
        "tokenId": me.token_id,
        "scopes": me.scopes.names,
    }))
}

pub async fn spaces(State(st): State<AppState>) -> Json<Value> {
    let c = &st.cloud;
    Json(json!([{
        "id": c.space_id,
        "slug": strata_engine::meta::room::slug(&c.space_name),
        "name": c.space_name,
        "description": "strata",
        "iconURL": "",
        "state": "active",
        "createdAt": "",
        "isNG": true,
        "permissions": [],
    }]))
}

/// A room as the Cloud lists it. Its definition (node patterns, host
/// labels) names nodes, so a caller held to some nodes (a token with an
/// allowlist) gets it empty: it could name nodes outside the allowlist.
fn room_json(r: &Room, node_count: usize, me: &Principal) -> Value {
    let def = if me.allow.is_some() { RoomDef::default() } else { r.def.clone().unwrap_or_default() };
    json!({
        "id": r.id,
        "slug": r.id,
        "name": r.name,
        "description": if r.id == ALL_NODES { "every node of this server" } else { "" },
        "private": false,
        "untouchable": r.origin != Origin::Api,
        "node_count": node_count,
        "member_count": 1,
        "isMember": true,
        "createdAt": "",
        "permissions": [],
        "nodes": def.nodes,
        "host_labels": def.host_labels,
    })
}

/// How many of the caller's visible nodes each room holds.
async fn node_counts(st: &AppState, me: &Principal, rooms: Vec<Room>) -> Result<Vec<(Room, usize)>, ApiError> {
    let allow = me.allow.clone();
    blocking(st, move |state, ctx| {
        Ok(rooms
            .into_iter()
            .map(|r| {
                let scope = MetaScope { allowed_nodes: allow.clone(), room: r.filter.clone(), ..MetaScope::default() };
                let visible = scope.visible(&state.catalog, &state.store, ctx.tiers);
                let n = nodes::list(&state.catalog, &state.store, &visible, ctx.tiers).len();
                (r, n)
            })
            .collect())
    })
    .await
}

pub async fn rooms(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    space: Result<Path<String>, PathRejection>,
) -> CloudResult<Json<Value>> {
    let Path(space) = space.map_err(bad_path)?;
    st.cloud.check_space(&space)?;
    let counted = node_counts(&st, &me, st.cloud.rooms()).await?;
    Ok(Json(Value::Array(counted.iter().map(|(r, n)| room_json(r, *n, &me)).collect())))
}

pub async fn create_room(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    space: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> CloudResult<(StatusCode, Json<Value>)> {
    let bytes = read_capped(&headers, body, (64 << 10, BodyKind::Other), st.limits.read_timeout).await;
    let Path(space) = space.map_err(bad_path)?;
    st.cloud.check_space(&space)?;
    let bytes = bytes?;
    let value: Value = parse_json(&bytes)?;
    let def = RoomDef::from_json(&value)?;
    let room = st.cloud.add_room(def)?;
    tracing::info!(room = %room.id, by = %me.name, "room created");
    let counted = node_counts(&st, &me, vec![room]).await?;
    let (room, n) = &counted[0];
    Ok((StatusCode::CREATED, Json(room_json(room, *n, &me))))
}

/// Reads a room route's body (`{}` when empty), resolves the room, and runs
/// `f` on a blocking thread over what the caller may see through the room.
async fn room_listing(
    st: &AppState,
    me: Principal,
    (space, room): (String, String),
    headers: &HeaderMap,
    body: Body,
    f: impl FnOnce(&EngineState, &Ctx, &MetaRequest, &Visible) -> Value + Send + 'static,
) -> CloudResult<Json<Value>> {
    // The body is read first: answering before it is read would cut off a
    // client still sending it.
    let bytes = read_capped(headers, body, (st.limits.query, BodyKind::Query), st.limits.read_timeout).await;
    let room = st.cloud.room(&space, &room)?;
    let bytes = bytes?;
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) { json!({}) } else { parse_json(&bytes)? };
    let req = parse_room_body(&value)?;
    Ok(blocking(st, move |state, ctx| {
        let visible = scope_for(&req, &me, room.filter, ctx.now).visible(&state.catalog, &state.store, ctx.tiers);
        Ok(Json(f(state, ctx, &req, &visible)))
    })
    .await?)
}

pub async fn room_nodes(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> CloudResult<Json<Value>> {
    let Path(ids) = ids.map_err(bad_path)?;
    room_listing(&st, me, ids, &headers, body, |state, ctx, _, visible| nodes_doc(state, ctx, visible, 0)).await
}

pub async fn room_contexts(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> CloudResult<Json<Value>> {
    let Path(ids) = ids.map_err(bad_path)?;
    room_listing(&st, me, ids, &headers, body, |state, ctx, req, visible| contexts_doc(state, ctx, visible, req)).await
}
