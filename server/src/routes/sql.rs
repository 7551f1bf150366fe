//! `POST /api/v1/sql`: `{"query": "SELECT ...", "format": "json|csv|arrow"}`
//! (scope `strata:data:read`). The statement runs on the SQL surface's
//! own runtime (strata-sql) in a query slot, sees only the caller's
//! allowed nodes, and stops when the client leaves, its token is revoked
//! or the query time limit passes. Built only with `--features sql`;
//! otherwise the route answers 404 saying so.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[cfg(not(feature = "sql"))]
pub async fn post(
    State(_st): State<AppState>,
    Extension(_me): Extension<Principal>,
    _headers: HeaderMap,
    _body: Body,
) -> ApiResult<Response> {
    Err(ApiError::NotFound("this strata was built without SQL; build it with `cargo build --features sql`".into()))
}

#[cfg(feature = "sql")]
pub async fn post(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    use serde_json::Value;
    use strata_sql::Format;

    use super::body::{parse_json, read_capped};
    use super::data::CancelOnDrop;
    use crate::error::BodyKind;

    let bytes = read_capped(&headers, body, (st.limits.query, BodyKind::Query), st.limits.read_timeout).await?;
    let v: Value = parse_json(&bytes)?;
    let usage = r#"expected {"query": "SELECT ...", "format": "json|csv|arrow"}"#;
    let Some(query) = v.get("query").and_then(Value::as_str) else {
        return Err(ApiError::BadRequest(format!("'query' is missing or not a string: {usage}")));
    };
    let format = match v.get("format") {
        None | Some(Value::Null) => Format::Json,
        Some(Value::String(f)) => {
            Format::parse(f).ok_or_else(|| ApiError::BadRequest(format!("unknown format '{f}': {usage}")))?
        }
        Some(_) => return Err(ApiError::BadRequest(format!("'format' must be a string: {usage}"))),
    };
    let Some(sql) = st.sql.clone() else {
        return Err(ApiError::NotFound("SQL is not enabled on this server".into()));
    };
    // A statement's cost is not known before DataFusion plans it.
    let slot = st.admission.enter(crate::admission::Class::Heavy).await?;
    let cancel = st.auth.inflight.register(&me.token_id);
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    // The slot goes with the statement's work, which may outlive this
    // handler (see `run_holding`).
    let answer = sql.run_holding(query, me.allow.clone(), cancel, slot).await?;
    let max = sql.limits.max_bytes;
    let body = tokio::task::spawn_blocking(move || strata_sql::encode(&answer, format, max))
        .await
        .map_err(|e| ApiError::Internal(format!("encoding task failed: {e}")))??;
    let mut r = Body::from(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(r)
}
