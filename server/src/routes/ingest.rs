//! `POST /api/v1/ingest`: the JSON batch of `spec/cli-and-ingest.md`, or
//! with `Content-Type: application/vnd.apache.arrow.stream` the same batch
//! as an Arrow IPC stream (`strata_engine::ingest::arrow`). Answers 200 only
//! after the whole batch is applied; a bad batch is a 400 naming the
//! element (JSON path, or Arrow column/row) at fault and changes nothing.
//! Laying out the hours a batch closed happens after the answer
//! ([`strata_engine::Engine::ingest_deferred`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::Extension;
use axum::Json;
use strata_engine::ingest::{arrow, fast_json, IngestBatch, IngestReport};

use super::body::{parse_json, read_capped};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, BodyKind};
use crate::state::AppState;

pub async fn post_ingest(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<IngestReport>> {
    let is_arrow = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(arrow::CONTENT_TYPE)));
    let bytes = read_capped(&headers, body, (st.limits.ingest, BodyKind::Ingest), st.limits.read_timeout).await?;
    let engine = st.engine.clone();
    let auth = st.auth.clone();
    let report = tokio::task::spawn_blocking(move || -> ApiResult<IngestReport> {
        let (batch, rows) = if is_arrow {
            let d = arrow::decode_stream(bytes.clone())?;
            (d.batch, Some(d.rows))
        } else {
            // The common shape is read directly; serde reads the rest and
            // words the errors (see `fast_json`).
            let batch = match fast_json::parse(&bytes) {
                Some(b) => b,
                None => parse_json::<IngestBatch>(&bytes)?,
            };
            (batch, None)
        };
        if let Some(allow) = &me.allow {
            // A token limited to some nodes may only write those nodes.
            let default = engine.config().default_node.as_str();
            let named = batch.nodes.iter().map(|n| n.id.as_str());
            let used = batch.series.iter().map(|s| s.node.as_deref().unwrap_or(default));
            if let Some(n) = named.chain(used).find(|n| !allow.matches(n)) {
                return Err(ApiError::Forbidden(format!("node '{n}' is outside this token's allowlist")));
            }
        }
        let now = engine.now();
        let limit = me.new_series_per_hour.or(auth.default_new_series);
        let allowance = limit.map(|l| auth.series_budget.allowance(&me.token_id, l, now));
        // Arrow errors found after decoding name the stream row, not a series.
        let allowance = allowance.as_ref().map(|a| a as &dyn strata_engine::SeriesAllowance);
        let (report, after) = engine.ingest_deferred(&batch, allowance).map_err(|e| match &rows {
            Some(r) => ApiError::from(r.locate(e)),
            None => ApiError::from(e),
        })?;
        // The batch is durable: the client gets its answer now, and the
        // hours it closed are laid out after (tens of milliseconds at an
        // hour's end that it would otherwise wait for). Started here, not by
        // the handler: a client gone drops the handler before it could. A failure there is this server's to log; the
        // spans wait, readable, for the next ingest or checkpoint.
        if after.is_due() {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = engine.finish_ingest(after) {
                    tracing::error!(error = %e, "laying out closed spans after an ingest failed");
                }
            });
        }
        Ok(report)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))??;
    Ok(Json(report))
}
