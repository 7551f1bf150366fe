//! Nezha-style server API for Nezha dashboards, bots and scripts:
//! `GET /api/v1/server` (nodes as Nezha servers) and `GET
//! /api/v1/server/{id}/metrics?metric=...&period=1d|7d|30d` (history from
//! the tiers through the ordinary query path; the metric table is
//! `strata_engine::views::nezha::METRICS`). Answers use Nezha's envelope
//! `{"success": true, "data": ...}`; errors `{"success": false, "error"}`
//! with a 4xx status. A server's `id` is its registration order (1-based,
//! stable across restarts); the node id or hostname works in the path too.
//! Nodes outside the token's allowlist do not exist here.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde_json::{json, Value};
use strata_engine::meta::{nodes, MetaScope};
use strata_engine::views::nezha::{self, Period};
use strata_engine::EngineError;

use super::data::pairs;
use super::meta::blocking;
use crate::admission::Class;
use crate::auth::Principal;
use crate::error::{ApiError, NezhaError};
use crate::format::rfc3339;
use crate::state::AppState;

type NezhaResult = Result<Json<Value>, NezhaError>;

fn param<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The visible nodes, each with its Nezha id.
fn servers(st: &strata_engine::engine::State, me: &Principal, tiers: usize) -> Vec<(u64, nodes::NodeInfo)> {
    let scope = MetaScope { allowed_nodes: me.allow.clone(), ..MetaScope::default() };
    let visible = scope.visible(&st.catalog, &st.store, tiers);
    nodes::list(&st.catalog, &st.store, &visible, tiers).into_iter().map(|n| (u64::from(n.index) + 1, n)).collect()
}

fn server_json(id: u64, n: &nodes::NodeInfo, now: i64) -> Value {
    let tags: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    json!({
        "id": id,
        "name": n.hostname,
        "uuid": n.machine_guid,
        "node_id": n.id,
        "tags": tags,
        "labels": n.labels,
        "last_active": n.span.last.map(rfc3339),
        "last_active_ts": n.span.last,
        "online": n.span.live(now),
    })
}

pub async fn list(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> NezhaResult {
    let p = pairs(q)?;
    let wanted: Option<Vec<u64>> = match param(&p, "id").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<u64>()
                        .map_err(|_| ApiError::BadRequest(format!("'id' must list server ids, got '{x}'")))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let items = blocking(&st, move |state, ctx| {
        Ok(servers(state, &me, ctx.tiers)
            .iter()
            .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(id)))
            .map(|(id, n)| server_json(*id, n, ctx.now))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({"success": true, "data": items})))
}

pub async fn metrics(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> NezhaResult {
    let Path(id) = id.map_err(super::bad_path)?;
    let p = pairs(q)?;
    let metric = param(&p, "metric").unwrap_or("");
    let map = nezha::mapping(metric)?;
    let period = Period::parse(param(&p, "period").unwrap_or(""))?;
    let cancel = st.auth.inflight.register(&me.token_id);
    // Which server, under a short read of the catalog; then the query,
    // which takes its own view of the store.
    let (num, hostname, req, now) = blocking(&st, move |state, ctx| {
        let all = servers(state, &me, ctx.tiers);
        let by_num = id.parse::<u64>().ok();
        let Some((num, node)) = all.iter().find(|(n, x)| Some(*n) == by_num || x.id == id || x.hostname == id) else {
            return Err(ApiError::NotFound(format!("server not found: '{id}'")));
        };
        // Scoped to this server's id (inside the token's allowlist, which
        // `servers` applied).
        let req = nezha::request(map, period, &node.id, ctx.now)?;
        Ok((*num, node.hostname.clone(), req, ctx.now))
    })
    .await?;
    let engine = st.engine.clone();
    // One node's few charts over a short period.
    let slot = st.admission.enter(Class::Light).await?;
    let result = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        engine.query_cancellable(&req, &cancel)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?;
    let result = match result {
        Ok(r) => Some(r),
        Err(EngineError::NothingMatched) => None,
        Err(EngineError::Cancelled) => {
            return Err(ApiError::Unauthorized("token was revoked during the query".into()).into())
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let points: Vec<Value> = result
        .as_ref()
        .map(|r| nezha::points(r, map))
        .unwrap_or_default()
        .into_iter()
        .map(|(ts, value)| json!({"ts": ts, "value": crate::format::round7(value)}))
        .collect();
    let (after, before) = period.window(now);
    // Nezha's fields, then strata's: the window and step the points cover.
    let doc = json!({
        "server_id": num,
        "server_name": hostname,
        "metric": map.metric,
        "data_points": points,
        "period": period.name(),
        "interval_s": period.step(),
        "after": after,
        "before": before,
    });
    Ok(Json(json!({"success": true, "data": doc})))
}
