//! `GET /health`: liveness plus a few numbers; no token needed.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::state::AppState;

pub async fn health(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let engine = st.engine.clone();
    let (metrics, tiers) = {
        let s = engine.read()?;
        (s.catalog.registry.metrics.len(), s.store.stats())
    };
    let disk = engine.disk_bytes();
    let tiers: Vec<Value> = tiers
        .iter()
        .enumerate()
        .map(|(t, (sealed, open))| {
            json!({"tier": t, "sealed_spans": sealed, "open_spans": open, "disk_bytes": disk.map(|d| d[t])})
        })
        .collect();
    Ok(Json(
        json!({"status": "ok", "version": st.agent.version, "now": engine.now(), "metrics": metrics, "tiers": tiers}),
    ))
}
