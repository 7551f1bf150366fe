//! Agent-style metadata: `GET /api/v2/info`, `/api/v2/nodes`, `/api/v2/contexts`,
//! `/api/v2/q` (search) and `/api/v2/weights` (metric correlations). Each
//! parses its parameters into an engine request, narrows it to the
//! caller's node allowlist, runs it on a blocking thread and formats it.
//! The Cloud room routes reuse the same listings (`routes::cloud`).

use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use serde_json::{json, Value};
use strata_engine::engine::State as EngineState;
use strata_engine::meta::params::{parse_meta, parse_weights, MetaRequest};
use strata_engine::meta::weights::{Weights, WeightsRequest};
use strata_engine::meta::{contexts, inventory, nodes, search, weights, MetaScope, RoomFilter, Visible};

use super::data::pairs;
use crate::admission::Class;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::format::meta::{self as fmt, ContextFields};
use crate::format::meta_options::MetaShape;
use crate::state::AppState;

/// What a blocking metadata job gets besides the engine state.
pub(super) struct Ctx {
    pub now: i64,
    pub tiers: usize,
    pub started: Instant,
    pub st: AppState,
}

impl Ctx {
    pub fn ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    pub fn envelope_tail(&self, doc: &mut Value, generation: u64) {
        doc["versions"] = fmt::versions(generation);
        doc["agents"] = fmt::agents(&self.st.agent, self.now, self.ms());
        doc["timings"] = fmt::timings(self.ms());
    }
}

/// Runs `f` on a blocking thread with a consistent engine state.
pub(super) async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&EngineState, &Ctx) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    blocking_unlocked(st, move |ctx| {
        let guard = ctx.st.engine.read()?;
        f(&guard, ctx)
    })
    .await
}

/// Runs `f` on a blocking thread (with a query slot), taking no lock: for
/// jobs that read a [`strata_engine::storage::StoreView`] between locks.
pub(super) async fn blocking_unlocked<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&Ctx) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let ctx =
        Ctx { now: st.engine.now(), tiers: st.engine.config().limits.tiers, started: Instant::now(), st: st.clone() };
    let slot = st.admission.enter(Class::Light).await?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f(&ctx)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("metadata task failed: {e}")))?
}

/// The request's scope, narrowed to the caller's allowlist and a room.
pub(super) fn scope_for(req: &MetaRequest, me: &Principal, room: Option<RoomFilter>, now: i64) -> MetaScope {
    let mut s = req.meta_scope(now);
    s.allowed_nodes = me.allow.clone();
    s.room = room;
    s
}

/// `{api, nodes: [...full items], versions, agents, timings}`.
pub(super) fn nodes_doc(state: &EngineState, ctx: &Ctx, visible: &Visible, limit: usize) -> Value {
    let mut list = nodes::list(&state.catalog, &state.store, visible, ctx.tiers);
    if limit > 0 {
        list.truncate(limit);
    }
    let items: Vec<Value> =
        list.iter().enumerate().map(|(i, n)| fmt::node_full(n, i, ctx.now, ctx.st.agent.version)).collect();
    let mut doc = json!({"api": 2, "nodes": items});
    ctx.envelope_tail(&mut doc, state.catalog.registry().generation());
    doc
}

/// `{api, nodes: [...brief], contexts: {...}, versions, agents, timings}`.
pub(super) fn contexts_doc(state: &EngineState, ctx: &Ctx, visible: &Visible, req: &MetaRequest) -> Value {
    let (cat, store) = (&state.catalog, &state.store);
    let nodes = nodes::list(cat, store, visible, ctx.tiers);
    let list = contexts::list(cat, store, visible, ctx.tiers);
    let fields = ContextFields {
        titles: true,
        dimensions: req.option("dimensions"),
        labels: req.option("labels"),
        instances: req.option("instances"),
    };
    let briefs: Vec<Value> = nodes.iter().enumerate().map(|(i, n)| fmt::node_brief(n, i)).collect();
    let mut doc = json!({
        "api": 2,
        "nodes": briefs,
        "contexts": fmt::contexts_object(&list, fields, ctx.now, req.cardinality),
    });
    ctx.envelope_tail(&mut doc, cat.registry().generation());
    doc
}

/// Parses GET metadata parameters, then runs `f` on a blocking thread over
/// the metrics the caller may see (scope, selectors, window, allowlist).
pub(super) async fn listing<T: Send + 'static>(
    st: &AppState,
    me: Principal,
    q: Option<String>,
    f: impl FnOnce(&EngineState, &Ctx, &MetaRequest, &Visible) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let req = parse_meta(&pairs(q)?)?;
    blocking(st, move |state, ctx| {
        let visible = scope_for(&req, &me, None, ctx.now).visible(&state.catalog, &state.store, ctx.tiers);
        f(state, ctx, &req, &visible)
    })
    .await
}

/// `{api, agents: [agent_info], versions, timings}`: who this server is and
/// counts of what the caller may see (`nodes=` narrows them too).
pub async fn info_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let store = &state.store;
        let inv = inventory::count(&state.catalog, store, visible, ctx.tiers, ctx.now);
        let resolutions: Vec<i64> = (0..inv.tiers.len()).map(|t| store.config().resolution(t, 1)).collect();
        let mut doc = json!({"api": 2});
        ctx.envelope_tail(&mut doc, state.catalog.registry().generation());
        let protected = !ctx.st.auth.anonymous_read;
        doc["agents"] = json!([fmt::agent_info(&ctx.st.agent, ctx.now, ctx.ms(), &inv, &resolutions, protected)]);
        MetaShape::of(&req.options).apply(&mut doc);
        Ok(Json(doc))
    })
    .await
}

pub async fn nodes_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let mut doc = nodes_doc(state, ctx, visible, req.cardinality);
        MetaShape::of(&req.options).apply(&mut doc);
        Ok(Json(doc))
    })
    .await
}

pub async fn contexts_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let mut doc = contexts_doc(state, ctx, visible, req);
        MetaShape::of(&req.options).apply(&mut doc);
        Ok(Json(doc))
    })
    .await
}

pub async fn q_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let pattern = search::compile(req.q.as_deref().unwrap_or(""))?;
        let (cat, store) = (&state.catalog, &state.store);
        let mut found = search::search(cat, visible, &pattern);
        if req.cardinality > 0 {
            found.hits.truncate(req.cardinality);
        }
        let all = nodes::list(cat, store, visible, ctx.tiers);
        let shown: Vec<_> = all
            .into_iter()
            .filter(|n| found.matched_nodes.contains(&n.index) || found.hits.iter().any(|h| h.nodes.contains(&n.index)))
            .collect();
        let pos = fmt::positions(&shown);
        let briefs: Vec<Value> = shown
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut b = fmt::node_brief(n, i);
                b["matched"] = json!(found.matched_nodes.contains(&n.index));
                b
            })
            .collect();
        let mut doc = json!({
            "api": 2,
            "q": req.q,
            "nodes": briefs,
            "contexts": fmt::search_object(&found, &pos),
            "searches": {"strings": found.strings, "char": 0, "total": found.strings},
        });
        ctx.envelope_tail(&mut doc, cat.registry().generation());
        MetaShape::of(&req.options).apply(&mut doc);
        Ok(Json(doc))
    })
    .await
}

/// Ranks the metrics `req` scopes for the caller, then formats the ranking
/// with `f` (given the catalog, read again after the ranking).
pub(super) async fn rank<T: Send + 'static>(
    st: &AppState,
    me: Principal,
    req: MetaRequest,
    w: WeightsRequest,
    f: impl FnOnce(&Ctx, &EngineState, &MetaRequest, &Weights) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    blocking_unlocked(st, move |ctx| {
        // The ranking reads every visible metric over both windows: it runs
        // on a view, without the locks, so ingest does not wait for it.
        let (visible, view) = {
            let state = ctx.st.engine.read()?;
            let visible = scope_for(&req, &me, None, ctx.now).visible(&state.catalog, &state.store, ctx.tiers);
            let view = weights::view(&state.store, &visible, &w, ctx.now)?;
            (visible, view)
        };
        let ranked = weights::run(&view, &visible, &w, ctx.now, ctx.tiers, None)?;
        let state = ctx.st.engine.read()?;
        f(ctx, &state, &req, &ranked)
    })
    .await
}

pub async fn weights_v2(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (req, w) = parse_weights(&pairs(q)?)?;
    rank(&st, me, req, w, |ctx, state, req, ranked| {
        let cat = &state.catalog;
        let (result, dictionaries) = fmt::weights_result(cat, ranked);
        let stats = "[min, avg, max, sum, count, anomaly_count]";
        let mut doc = json!({
            "api": 2,
            "request": {
                "method": ranked.method.name(),
                "options": req.options,
                "window": {"after": ranked.highlight.0, "before": ranked.highlight.1, "points": ranked.points},
                "baseline": ranked.baseline.map(|(a, b)| json!({"after": a, "before": b})),
            },
            "schema": {
                "type": "array",
                "items": ["row_type (0 dimension, 1 instance, 2 context, 3 node)", "ni", "ci", "ii", "di", "weight",
                          format!("highlight {stats}"), format!("baseline {stats} (ks2, volume)")],
            },
            "result": result,
            "dictionaries": dictionaries,
            "correlated_dimensions": ranked.weights.len(),
            "total_dimensions_count": ranked.considered,
        });
        ctx.envelope_tail(&mut doc, cat.registry().generation());
        Ok(Json(doc))
    })
    .await
}
