//! `GET /health`: liveness plus a few numbers; no token needed. A server
//! that can no longer take writes (its write-ahead log failed) answers 503
//! with `"status": "degraded"` and a `reason`; queries still work, but only
//! a restart brings ingest back, so a probe that restarts on 503 is right.
//! A failing checkpoint is `"status": "degraded"` with a `reason` too, but
//! a 200: its cause needs fixing (the WAL grows meanwhile), not a restart,
//! which would fail its own checkpoint on a full disk. It clears once a
//! checkpoint succeeds. So is a failure to lay out closed hours (they
//! stay in memory meanwhile), until that succeeds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::state::AppState;

/// Never queued behind queries (no admission slot); the locks are read on
/// a blocking thread, so a busy writer cannot stall the async runtime.
pub async fn health(State(st): State<AppState>) -> ApiResult<(StatusCode, Json<Value>)> {
    let engine = st.engine.clone();
    let (metrics, tiers) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let s = engine.read()?;
        Ok((s.catalog.registry().metrics().len(), s.store.stats()))
    })
    .await
    .map_err(|e| crate::error::ApiError::Internal(format!("health task failed: {e}")))??;
    let engine = st.engine.clone();
    // Read before the checkpoints: a follow-up ends only after the
    // checkpoint it plans is counted (see `Engine::pending_followups`).
    let followups = engine.pending_followups();
    let adm = st.admission.stats();
    let disk = engine.disk_bytes();
    let tiers: Vec<Value> = tiers
        .iter()
        .enumerate()
        .map(|(t, (sealed, open))| {
            json!({"tier": t, "sealed_spans": sealed, "open_spans": open, "disk_bytes": disk.map(|d| d[t])})
        })
        .collect();
    let mut body = json!({
        "status": "ok",
        "version": st.agent.version,
        "now": engine.now(),
        "metrics": metrics,
        "tiers": tiers,
        "queries": {
            "running": engine.queries_running(),
            "slots_busy": adm.busy,
            "slots": st.admission.limits().running,
            "heavy_busy": adm.heavy_busy,
            "heavy_slots": st.admission.heavy_slots(),
            "queued": adm.waiting,
            "refused": adm.refused,
            "answers_waiting_bytes": st.unsent.held(),
        },
        "ingest_followups_pending": followups,
        "checkpoints_pending": engine.pending_checkpoints(),
    });
    let (status, reason) = match (engine.wal_failure(), engine.checkpoint_failure()) {
        (Some(failure), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the write-ahead log takes no writes since {failure}; ingest fails until strata is restarted once {}",
                failure.remedy()
            ),
        ),
        // Not a 503: a restart does not cure a full disk, and the start's
        // own checkpoint would fail on it (a probe would loop restarts).
        (None, Some(e)) => (
            StatusCode::OK,
            format!(
                "the last checkpoint failed ({e}): until one succeeds the write-ahead log keeps every record and \
                 grows, and closed hours stay in memory; ingest and queries still work. Fix the cause (disk \
                 space, the data dir's permissions); the next checkpoint retries, and a restart would not help"
            ),
        ),
        (None, None) => match engine.seal_failure() {
            // Not a 503 either: the hours stay readable and in the WAL, and
            // the next laying out retries (each ingest past the bound does).
            Some(e) => (
                StatusCode::OK,
                format!(
                    "laying out closed hours failed ({e}): they stay in memory, readable and in the write-ahead \
                     log, and ingest is refused while more than a few of them wait; the next ingest or checkpoint \
                     retries"
                ),
            ),
            None => return Ok((StatusCode::OK, Json(body))),
        },
    };
    body["status"] = json!("degraded");
    body["reason"] = json!(reason);
    Ok((status, Json(body)))
}
