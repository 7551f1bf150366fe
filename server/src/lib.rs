//! strata-server: the HTTP face of strata. axum routes (`routes`), bearer
//! auth (`auth`), output formats (`format`), and the single place errors
//! become HTTP responses (`error`). Storage and query semantics live in
//! `strata-engine`; this crate only parses, authorises and formats.

pub mod admission;
pub mod auth;
pub mod cloud;
pub mod error;
pub mod format;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tls;
pub mod unsent;

pub use routes::router;
pub use routes::stream::shared::SharedTicks;
pub use state::{AgentInfo, AppParts, AppState, BodyLimits, McpConfig, StreamConfig};

pub use serve::ServeOptions;

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: impl Into<AppState>,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state: AppState = state.into();
    let closing = state.stream.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    serve::run(listener, router(state), opts, shutdown).await
}
