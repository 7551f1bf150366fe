//! strata-server: the HTTP face of strata. axum routes (`routes`), bearer
//! auth (`auth`), output formats (`format`), and the single place errors
//! become HTTP responses (`error`). Storage and query semantics live in
//! `strata-engine`; this crate only parses, authorises and formats.

pub mod auth;
pub mod error;
pub mod format;
pub mod routes;
pub mod state;

pub use routes::router;
pub use state::{AgentInfo, AppState, BodyLimits};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
