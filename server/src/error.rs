//! The server's error type and the one place errors become HTTP responses.
//! Agent-style routes answer `{"error", "status", "path"?, "hint"?}`;
//! Cloud-style routes (`/api/v2|v3/spaces/...`, `accounts/me`) answer
//! Cloud's `{"errorCode", "errorMsgKey", "errorMessage"}` with the same status.
//! The Nezha-style routes (`/api/v1/server...`) answer Nezha's envelope
//! `{"success": false, "error"}`, and `/mcp` a JSON-RPC error object with
//! `id: null` (MCP spec 1.9), both with the same status as everywhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_engine::{EngineError, ErrorKind};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Who are you? Missing, malformed, unknown or expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// You may not.
    #[error("{0}")]
    Forbidden(String),
    #[error("request body is {size} bytes, over the limit of {limit} bytes")]
    BodyTooLarge { size: u64, limit: u64, kind: BodyKind },
    #[error("invalid JSON body: {message}")]
    BadJson { path: Option<String>, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    #[error("{method} is not allowed on {path}; use {}", allow.join(" or "))]
    MethodNotAllowed { method: String, path: String, allow: Vec<String> },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("the request took longer than {0} s")]
    GatewayTimeout(u64),
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Every query slot is busy and the queue is full: try again shortly.
    #[error("the server is busy with other queries; retry in {retry_after} s")]
    Overloaded { retry_after: u64 },
    /// Answers already built wait for their clients to read them, up to
    /// the server's budget for them: try again shortly.
    #[error(
        "{waiting_mib} MiB of answers are waiting for their clients to read them (at most {budget_mib} MiB); \
         retry in {retry_after} s"
    )]
    AnswersWaiting { waiting_mib: u64, budget_mib: u64, retry_after: u64 },
    /// A file the request changes could not be written: the disk is full.
    #[error("{0}")]
    StorageFull(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a body was meant to be, for the hint of its 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// An ingest batch (splits into several).
    Ingest,
    /// A query or a listing request (narrows).
    Query,
    /// Anything else (tokens, rooms, MCP messages).
    Other,
}

/// SQL errors in the API's categories: the statement and its limits are
/// the caller's input (400), time is a 504 like every query's timeout.
#[cfg(feature = "sql")]
impl From<strata_sql::SqlError> for ApiError {
    fn from(e: strata_sql::SqlError) -> Self {
        use strata_sql::SqlError as S;
        match e {
            S::Invalid(_) | S::NotAQuery(_) | S::TooManyRows { .. } | S::TooManyBytes { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            S::Timeout { timeout_ms } => ApiError::Engine(EngineError::Timeout { timeout_ms, elapsed_ms: timeout_ms }),
            S::Cancelled => ApiError::Unauthorized("the query was cancelled: its token was revoked".into()),
            S::Engine { kind, message } => match kind {
                ErrorKind::Forbidden => ApiError::Forbidden(message),
                ErrorKind::Timeout => ApiError::GatewayTimeout(0),
                ErrorKind::Cancelled => ApiError::Unauthorized(message),
                ErrorKind::Internal | ErrorKind::StorageFull | ErrorKind::Unavailable => ApiError::Internal(message),
                _ => ApiError::BadRequest(message),
            },
            S::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(EngineError::TooManySeries { per_token: true, .. }) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Engine(e) => match e.kind() {
                ErrorKind::BadInput | ErrorKind::LimitExceeded => StatusCode::BAD_REQUEST,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::Cancelled => StatusCode::UNAUTHORIZED,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadJson { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } | ApiError::AnswersWaiting { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            ApiError::Engine(e) => e.path(),
            ApiError::BadJson { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            ApiError::Unauthorized(_) => {
                Some("send 'Authorization: Bearer <token>'; the admin token is in <data-dir>/admin.token")
            }
            ApiError::BodyTooLarge { kind: BodyKind::Ingest, .. } => {
                Some("send a smaller body (split an ingest batch into several)")
            }
            ApiError::BodyTooLarge { kind: BodyKind::Query, .. } => {
                Some("send a smaller body (narrow the request: select with patterns instead of long lists of names)")
            }
            ApiError::BodyTooLarge { kind: BodyKind::Other, .. } => Some("send a smaller body"),
            ApiError::StorageFull(_) => Some("free disk space under the data dir, then retry"),
            ApiError::Engine(e) if e.kind() == ErrorKind::StorageFull => Some(
                "free disk space under the data dir, then restart strata: the write-ahead log takes no writes after a failed one",
            ),
            ApiError::Engine(EngineError::Wal(strata_engine::wal::WalError::Poisoned { .. })) => {
                Some("restart strata once the cause in the error is fixed")
            }
            ApiError::Engine(EngineError::TooManySeries { per_token: false, .. }) => {
                Some("raise --max-series, or stop creating new series")
            }
            ApiError::Engine(EngineError::TooManySeries { per_token: true, .. }) => {
                Some("the token's new-series allowance refills within the hour; ask an admin to raise it")
            }
            _ => None,
        }
    }

    fn msg_key(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => "ErrBadRequest",
            StatusCode::UNAUTHORIZED => "ErrUnauthorized",
            StatusCode::FORBIDDEN => "ErrForbidden",
            StatusCode::NOT_FOUND => "ErrNotFound",
            StatusCode::CONFLICT => "ErrConflict",
            StatusCode::METHOD_NOT_ALLOWED => "ErrMethodNotAllowed",
            StatusCode::GATEWAY_TIMEOUT => "ErrQueryTimeout",
            StatusCode::TOO_MANY_REQUESTS => "ErrTooManyRequests",
            StatusCode::SERVICE_UNAVAILABLE => "ErrServiceUnavailable",
            _ => "ErrInternal",
        }
    }

    /// The Cloud-shaped rendering of this error.
    pub fn cloud(self) -> CloudError {
        CloudError(self)
    }
}

fn finish(err: &ApiError, status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"strata\""));
    }
    if let ApiError::MethodNotAllowed { allow, .. } = err {
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
    }
    if let ApiError::RateLimited { retry_after }
    | ApiError::Overloaded { retry_after }
    | ApiError::AnswersWaiting { retry_after, .. } = err
    {
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match status {
            // Load shedding and deadlines are the server working as
            // configured: under overload they come by the thousand, and an
            // ERROR line each would bury the failures that are real.
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                tracing::debug!(error = %self, status = status.as_u16(), "request refused")
            }
            s if s.is_server_error() => tracing::error!(error = %self, "request failed"),
            _ => {}
        }
        let mut body = json!({"error": self.to_string(), "status": status.as_u16()});
        if let Some(p) = self.path() {
            body["path"] = json!(p);
        }
        if let Some(h) = self.hint() {
            body["hint"] = json!(h);
        }
        finish(&self, status, body)
    }
}

/// An error on a Cloud-style route.
#[derive(Debug)]
pub struct CloudError(pub ApiError);

impl<E: Into<ApiError>> From<E> for CloudError {
    fn from(e: E) -> Self {
        CloudError(e.into())
    }
}

impl IntoResponse for CloudError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let code = format!("strata-{:08x}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let body = json!({"errorCode": code, "errorMsgKey": self.0.msg_key(), "errorMessage": self.0.to_string()});
        finish(&self.0, status, body)
    }
}

/// An error on a Nezha-style route: `{"success": false, "error": "..."}`.
#[derive(Debug)]
pub struct NezhaError(pub ApiError);

impl<E: Into<ApiError>> From<E> for NezhaError {
    fn from(e: E) -> Self {
        NezhaError(e.into())
    }
}

impl IntoResponse for NezhaError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        finish(&self.0, status, json!({"success": false, "error": self.0.to_string()}))
    }
}

/// An error of `/mcp` that happens before a JSON-RPC request is read
/// (authentication, size, rate, method): a JSON-RPC error with `id: null`.
#[derive(Debug)]
pub struct RpcError(pub ApiError);

impl RpcError {
    /// The JSON-RPC code for an HTTP-level failure (strata's choices in the
    /// implementation-defined range -32000..-32019, spec 1.9).
    pub fn code(&self) -> i64 {
        match self.0.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => -32001,
            StatusCode::TOO_MANY_REQUESTS => -32000,
            StatusCode::NOT_FOUND => -32601,
            s if s.is_server_error() => -32603,
            _ => -32600,
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": self.code(), "message": self.0.to_string()}});
        finish(&self.0, status, body)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use strata_engine::wal::{WalError, WalFailure};

    fn too_large(kind: BodyKind) -> ApiError {
        ApiError::BodyTooLarge { size: 2, limit: 1, kind }
    }

    #[test]
    fn a_too_large_body_gets_the_hint_of_its_route() {
        assert!(too_large(BodyKind::Ingest).hint().is_some_and(|h| h.contains("split an ingest batch")));
        let query = too_large(BodyKind::Query).hint().unwrap_or_default();
        assert!(query.contains("narrow") && !query.contains("ingest"), "{query}");
        assert_eq!(too_large(BodyKind::Other).hint(), Some("send a smaller body"));
        assert_eq!(too_large(BodyKind::Query).status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn poisoned(out_of_space: bool) -> ApiError {
        let cause = WalFailure { op: "write", path: "/d/wal/1.wal".into(), message: "boom".into(), out_of_space };
        ApiError::Engine(EngineError::Wal(WalError::Poisoned { cause }))
    }

    #[test]
    fn a_full_disk_is_507_and_says_to_free_space_and_restart() {
        let enospc = std::io::Error::from_raw_os_error(28);
        let first = ApiError::Engine(EngineError::Wal(WalError::Io { op: "write", path: "/d".into(), source: enospc }));
        for e in [first, poisoned(true)] {
            assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE, "{e}");
            assert!(e.hint().is_some_and(|h| h.contains("free disk space") && h.contains("restart strata")), "{e}");
        }
        let other = poisoned(false);
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(other.hint().is_some_and(|h| h.contains("restart strata")));
        assert!(other.to_string().contains("restart strata once its cause is fixed"), "{other}");
    }
}
