//! Agent-style v1 metadata: `GET /api/v1/info`, `/api/v1/charts`,
//! `/api/v1/chart?chart=ID`, `/api/v1/contexts`, `/api/v1/weights`,
//! `/api/v1/metric_correlations` and `/api/v1/allmetrics`.
//! v1 describes one host; strata holds several nodes, so the singular
//! fields (`hostname`, `uid`) name this server and the listings cover every
//! node the caller may see (narrow them with `nodes=` / `scope_nodes=`).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use strata_engine::catalog::Catalog;
use strata_engine::index::SimplePattern;
use strata_engine::meta::instances::{self, InstanceInfo};
use strata_engine::meta::params::{parse_allmetrics, parse_metric_correlations, parse_weights_v1, MetaRequest};
use strata_engine::meta::weights::{Weights, WeightsRequest};
use strata_engine::meta::{contexts, latest, nodes, MetaScope};
use strata_engine::EngineError;

use super::data::pairs;
use super::meta::{blocking, listing, rank};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::format::{allmetrics, weights_v1};
use crate::state::AppState;

/// Bytes a query value may hold unescaped: RFC 3986's unreserved set.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `/api/v1/data?chart=<id>` that reads back exactly chart `id`: `chart` is
/// a simple pattern, so the id's pattern characters (`,` `|` `*` `\` and a
/// leading `!`) are escaped first, then the value is percent-encoded so
/// `&`, `#`, `%`, `+` and spaces survive the query string.
fn data_url(id: &str) -> String {
    let pattern = SimplePattern::exact(id).to_string();
    format!("/api/v1/data?chart={}", utf8_percent_encode(&pattern, QUERY_VALUE))
}

fn chart_json(c: &InstanceInfo) -> Value {
    let dims: Map<String, Value> = c.dimensions.iter().map(|d| (d.clone(), json!({ "name": d }))).collect();
    let kind = c.id.split('.').next().unwrap_or(&c.id);
    json!({
        "id": c.id,
        "name": c.name,
        "type": kind,
        "family": c.family,
        "context": c.context,
        "title": c.title,
        "priority": c.priority,
        "plugin": "",
        "module": "",
        "units": c.units,
        "data_url": data_url(&c.id),
        "chart_type": c.chart_type,
        "duration": match (c.span.first, c.span.last) { (Some(f), Some(l)) => l - f + 1, _ => 0 },
        "first_entry": c.span.first,
        "last_entry": c.span.last,
        "update_every": c.span.update_every,
        "dimensions": dims,
        "chart_variables": {},
        "green": null,
        "red": null,
        "alarms": {},
        "chart_labels": c.labels,
        "functions": [],
    })
}

pub async fn info(State(st): State<AppState>, Extension(me): Extension<Principal>) -> ApiResult<Json<Value>> {
    blocking(&st, move |state, ctx| {
        let (cat, store) = (&state.catalog, &state.store);
        let scope = MetaScope { allowed_nodes: me.allow.clone(), ..MetaScope::default() };
        let visible = scope.visible(cat, store, ctx.tiers);
        let list = nodes::list(cat, store, &visible, ctx.tiers);
        // As many charts as `/api/v1/charts` lists (one per chart id).
        let instances = instances::count(cat, &visible);
        let agent = &ctx.st.agent;
        Ok(Json(json!({
            "version": agent.version,
            "uid": agent.machine_guid,
            "hostname": agent.hostname,
            "mirrored_hosts": list.iter().map(|n| n.hostname.clone()).collect::<Vec<_>>(),
            "mirrored_hosts_status": list.iter().map(|n| json!({
                "hostname": n.hostname, "hops": 0, "reachable": n.span.live(ctx.now),
                "guid": n.machine_guid, "node_id": n.id, "claim_id": null,
            })).collect::<Vec<_>>(),
            "alarms": {"normal": 0, "warning": 0, "critical": 0},
            "os_name": std::env::consts::OS,
            "architecture": std::env::consts::ARCH,
            "host_labels": {},
            "collectors": [],
            "cloud-enabled": false,
            "agent-claimed": false,
            "aclk-available": false,
            "web-enabled": true,
            "memory-mode": "dbengine",
            "storage_tiers": ctx.tiers,
            "charts-count": instances,
            "metrics-count": visible.len(),
            "nodes-count": list.len(),
            "now": ctx.now,
        })))
    })
    .await
}

pub async fn charts(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, _, visible| {
        let (cat, store) = (&state.catalog, &state.store);
        let list = instances::list(cat, store, visible, ctx.tiers, None);
        let hosts = nodes::list(cat, store, visible, ctx.tiers);
        let charts: Map<String, Value> = list.iter().map(|c| (c.id.clone(), chart_json(c))).collect();
        let agent = &ctx.st.agent;
        Ok(Json(json!({
            "hostname": agent.hostname,
            "version": agent.version,
            "release_channel": "stable",
            "os": std::env::consts::OS,
            "timezone": "UTC",
            "update_every": list.iter().filter_map(|c| c.span.update_every).min().unwrap_or(1),
            "history": 0,
            "memory_mode": "dbengine",
            "custom_info": "",
            "charts": charts,
            "charts_count": list.len(),
            "dimensions_count": list.iter().map(|c| c.dimensions.len()).sum::<usize>(),
            "alarms_count": 0,
            "rrd_memory_bytes": 0,
            "hosts_count": hosts.len(),
            "hosts": hosts.iter().map(|h| json!({"hostname": h.hostname})).collect::<Vec<_>>(),
        })))
    })
    .await
}

pub async fn chart(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let Some(id) = req.chart.as_deref() else {
            return Err(ApiError::BadRequest("No chart id is given at the request.".into()));
        };
        let list = instances::list(&state.catalog, &state.store, visible, ctx.tiers, Some(id));
        let c = list.first().ok_or_else(|| EngineError::ChartNotFound(id.to_string()))?;
        Ok(Json(chart_json(c)))
    })
    .await
}

pub async fn contexts_v1(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    listing(&st, me, q, |state, ctx, req, visible| {
        let list = contexts::list(&state.catalog, &state.store, visible, ctx.tiers);
        let full = req.option("full");
        let mut out = Map::new();
        for c in &list {
            let mut m = Map::new();
            m.insert("title".into(), json!(c.title));
            m.insert("units".into(), json!(c.units));
            m.insert("family".into(), json!(c.family));
            m.insert("chart_type".into(), json!(c.chart_type));
            m.insert("priority".into(), json!(c.priority));
            m.insert("first_time_t".into(), json!(c.span.first));
            m.insert("last_time_t".into(), json!(if c.span.live(ctx.now) { Some(0) } else { c.span.last }));
            m.insert("collected".into(), json!(c.span.live(ctx.now)));
            if full || req.option("charts") {
                m.insert("charts".into(), json!(c.instances));
            }
            if full || req.option("dimensions") {
                let d: Map<String, Value> = c.dimensions.iter().map(|d| (d.clone(), json!({ "name": d }))).collect();
                m.insert("dimensions".into(), Value::Object(d));
            }
            if full || req.option("labels") {
                m.insert("labels".into(), json!(c.labels));
            }
            out.insert(c.id.clone(), Value::Object(m));
        }
        let agent = &ctx.st.agent;
        Ok(Json(json!({
            "hostname": agent.hostname,
            "machine_guid": agent.machine_guid,
            "node_id": null,
            "claim_id": null,
            "host_labels": {},
            "contexts": out,
        })))
    })
    .await
}

/// Netdata's v1 metric correlations: the v2 ranking (default method
/// `anomaly-rate`, as v1's) in the v1 `contexts` layout.
pub async fn weights_v1(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    v1_ranking(&st, me, parse_weights_v1(&pairs(q)?)?, weights_v1::contexts).await
}

/// `/api/v1/metric_correlations`: `/api/v1/weights` with `ks2` by default,
/// by chart (Netdata's route from before `weights`).
pub async fn metric_correlations_v1(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    v1_ranking(&st, me, parse_metric_correlations(&pairs(q)?)?, weights_v1::charts).await
}

/// Ranks as `/api/v2/weights` does and writes the ranking with `layout`;
/// nothing ranked is v1's 404 (v2 answers an empty result).
async fn v1_ranking(
    st: &AppState,
    me: Principal,
    (req, w): (MetaRequest, WeightsRequest),
    layout: fn(&Catalog, &Weights, &[String], f64) -> Value,
) -> ApiResult<Json<Value>> {
    rank(st, me, req, w, move |ctx, state, req, ranked| {
        if ranked.weights.is_empty() {
            return Err(ApiError::NotFound("no results produced.".into()));
        }
        Ok(Json(layout(&state.catalog, ranked, &req.options, ctx.ms())))
    })
    .await
}

pub async fn allmetrics_v1(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let req = parse_allmetrics(&pairs(q)?)?;
    let (body, ctype) = blocking(&st, move |state, ctx| {
        let (cat, store) = (&state.catalog, &state.store);
        let mut scope = MetaScope { allowed_nodes: me.allow.clone(), ..MetaScope::default() };
        scope.scope.nodes = req.nodes.clone();
        scope.scope.instances = req.filter.clone();
        let visible = scope.visible(cat, store, ctx.tiers);
        let values = latest::latest(store, &visible, ctx.tiers);
        Ok(allmetrics::render(cat, &values, &req))
    })
    .await?;
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL's `chart` value, decoded as the data route decodes it, is a
    /// pattern matching the id alone.
    #[test]
    fn data_url_reads_back_the_chart_it_names() {
        for id in ["disk.sda", "a,b|c", "x&y=z#frag", "100% busy", "!neg*star\\back", "plus+sign", "ünï.cödé"] {
            let url = data_url(id);
            let query = url.strip_prefix("/api/v1/data?").expect("a data URL");
            assert!(!query.contains(['&', '#', ' ', '|', ',', '+']), "{url}: raw separators");
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("a query string");
            assert_eq!(pairs.len(), 1, "{url}: {pairs:?}");
            let p = SimplePattern::parse_get(&pairs[0].1).expect("a pattern");
            assert!(p.matches(id), "{url} does not select {id:?}");
            for other in ["a", "b", "c", "x", "neg", "100", "disk.sdb", ""] {
                assert!(other == id || !p.matches(other), "{url} also selects {other:?}");
            }
        }
    }
}
