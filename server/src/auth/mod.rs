//! Authentication and authorisation. 401 means "who are you" (no,
//! malformed, unknown, expired or revoked token); 403 means "you may not"
//! (the token lacks the route's scope, or names a node outside its
//! allowlist). Every route declares what it needs in one table
//! (`routes::TABLE`); this module enforces it, plus per-token rate limits.

pub mod limits;
pub mod mcp_calls;
pub mod scopes;
pub mod store;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use limits::{Inflight, RateLimiter, SeriesBudget, WindowLimiter};
pub use scopes::{Resource, Scopes, Verb};
pub use store::{NewToken, Principal, TokenRecord, TokenStore};

use crate::error::ApiError;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No token (health checks).
    Public,
    /// Any valid token.
    Authenticated,
    Scope(Resource, Verb),
}

/// Everything the auth layer needs.
#[derive(Debug)]
pub struct Auth {
    pub tokens: TokenStore,
    pub limiter: RateLimiter,
    pub inflight: Inflight,
    /// `/mcp`'s own per-token limits (10/s, 120/min), on top of `limiter`.
    pub mcp_limiter: WindowLimiter,
    /// `/mcp`'s in-flight `tools/call`s per token (at most 4; `notifications/cancelled`).
    pub mcp_calls: Arc<mcp_calls::Calls>,
    /// `--anonymous-read`: requests without a token read data and metadata.
    pub anonymous_read: bool,
    /// Limit for tokens that have none of their own.
    pub default_rate: store::RateLimit,
    /// New series per token per hour, for tokens with no limit of their own
    /// (`--max-new-series-per-hour`; `None`: unlimited).
    pub default_new_series: Option<u64>,
    pub series_budget: SeriesBudget,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn is_cloud_path(path: &str) -> bool {
    path.contains("/spaces") || path.ends_with("/accounts/me")
}

/// `e` in the error shape of `path`'s family: Cloud's on Cloud-style
/// paths, JSON-RPC on `/mcp`, Nezha's envelope on `/api/v1/server...`.
pub(crate) fn reject(e: ApiError, path: &str) -> Response {
    if path == "/mcp" || path.starts_with("/mcp/") {
        crate::error::RpcError(e).into_response()
    } else if path == "/api/v1/server" || path.starts_with("/api/v1/server/") {
        crate::error::NezhaError(e).into_response()
    } else if is_cloud_path(path) {
        e.cloud().into_response()
    } else {
        e.into_response()
    }
}

impl Auth {
    /// Decides whether `req` may reach a route that needs `need`.
    pub fn authorize(&self, need: Need, req: &Request) -> Result<Option<Principal>, ApiError> {
        if need == Need::Public {
            return Ok(None);
        }
        let header = req.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
        let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        let anonymous_ok = matches!(need, Need::Scope(Resource::Data | Resource::Metadata, Verb::Read));
        let principal = match header {
            None if self.anonymous_read && anonymous_ok => Principal::anonymous(),
            _ => self.tokens.authenticate(header, ip.as_deref(), now_secs())?,
        };
        if let Need::Scope(r, v) = need {
            if !principal.allows(r, v) {
                return Err(ApiError::Forbidden(format!(
                    "token '{}' lacks scope strata:{}:{}",
                    principal.name,
                    r.name(),
                    v.name()
                )));
            }
        }
        if let Err(retry) = self.limiter.check(&principal.token_id, principal.rate_limit.unwrap_or(self.default_rate)) {
            return Err(ApiError::RateLimited { retry_after: retry });
        }
        Ok(Some(principal))
    }
}

/// Middleware for one route: authenticate, check its scope, rate-limit.
pub async fn enforce(State((auth, need)): State<(Arc<Auth>, Need)>, mut req: Request, next: Next) -> Response {
    match auth.authorize(need, &req) {
        Ok(p) => {
            if let Some(p) = p {
                req.extensions_mut().insert(p);
            }
            next.run(req).await
        }
        Err(e) => {
            let retry = match &e {
                ApiError::RateLimited { retry_after } => Some(*retry_after),
                _ => None,
            };
            let mut resp = reject(e, req.uri().path());
            if let Some(s) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                resp.headers_mut().insert(RETRY_AFTER, s);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests;
