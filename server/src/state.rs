//! Shared server state handed to every handler.

use std::sync::Arc;

use strata_engine::Engine;

use crate::auth::Auth;

/// Size caps on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub query: usize,
    pub ingest: usize,
    /// The whole body must arrive within this.
    pub read_timeout: std::time::Duration,
    /// Every request must be answered within this (504 otherwise).
    pub request_timeout: std::time::Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            query: 8 << 20,
            ingest: 64 << 20,
            read_timeout: std::time::Duration::from_secs(60),
            request_timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// Who this server is, as Netdata clients expect an agent to say.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub hostname: String,
    pub machine_guid: String,
    pub version: &'static str,
}

/// `--stream-queue-bytes`' default.
pub const DEFAULT_STREAM_QUEUE_BYTES: usize = 16 << 20;

/// Live streams (`/api/v1/ws/nodes`, `/api/v1/stream/nodes`).
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Contexts a subscriber gets when it names none (`--stream-contexts`).
    pub contexts: strata_engine::index::SimplePattern,
    /// Ticks a connection may have waiting to be written before it is
    /// dropped as a slow consumer (the per-connection queue bound).
    pub queue: usize,
    /// Bytes of ticks a connection may have waiting to be written (one
    /// tick larger than this still goes into an empty queue).
    pub queue_bytes: usize,
    /// Time between ticks.
    pub interval: std::time::Duration,
    /// Set when the server starts shutting down ([`crate::serve`]): every
    /// stream ends within a check (`End::Shutdown`), so an open SSE
    /// response does not hold the exit for the whole grace period.
    pub closing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Snapshots being built at once, server-wide (one per core): a tick
    /// of every context of a large fleet is tens of megabytes while it is
    /// built, and each view (subscription and allowlist) builds its own
    /// each tick period.
    pub builds: std::sync::Arc<tokio::sync::Semaphore>,
    /// The current second's snapshots, shared by connections of one view.
    pub shared: std::sync::Arc<crate::SharedTicks>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            contexts: strata_engine::views::snapshot::default_contexts(),
            queue: 4,
            queue_bytes: DEFAULT_STREAM_QUEUE_BYTES,
            interval: std::time::Duration::from_secs(1),
            closing: Default::default(),
            builds: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
            shared: Default::default(),
        }
    }
}

/// The MCP endpoint's settings.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// Browser origins allowed besides the server's own (`--mcp-allowed-origin`).
    pub allowed_origins: Vec<String>,
    /// A `tools/call` longer than this ends as a tool error (`--mcp-call-timeout`).
    pub call_timeout: std::time::Duration,
    /// The port when the server listens on a loopback address: `/mcp` then
    /// takes only `Host: localhost|127.0.0.1|[::1]:<port>` (the second half
    /// of the DNS-rebinding defence, with the `Origin` check).
    pub loopback_port: Option<u16>,
    /// Whether this listener serves HTTPS: the server's own origin is then
    /// `https://<Host>` only, else `http://<Host>` only (same-origin means
    /// the same scheme too; a TLS proxy in front names its origin with
    /// `--mcp-allowed-origin`).
    pub tls: bool,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_origins: Vec::new(),
            call_timeout: std::time::Duration::from_secs(10),
            loopback_port: None,
            tls: false,
        }
    }
}

/// The SQL surface (`--features sql`).
#[cfg(feature = "sql")]
pub use strata_sql::SqlEngine;

/// Stands in for the SQL surface in builds without `--features sql`.
#[cfg(not(feature = "sql"))]
#[derive(Debug)]
pub struct SqlEngine;

/// What every handler shares: a handle to the [`AppParts`], so the
/// per-request clones axum makes of its state are one reference count, not
/// a copy of each part (the stream and MCP settings hold patterns and
/// lists).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The server's parts, built once at start ([`AppState`] shares them).
pub struct AppParts {
    pub engine: Arc<Engine>,
    pub auth: Arc<Auth>,
    pub agent: Arc<AgentInfo>,
    pub limits: BodyLimits,
    /// The Cloud-shaped space and its rooms.
    pub cloud: Arc<crate::cloud::Cloud>,
    /// Query slots (503 past them).
    pub admission: Arc<crate::admission::Admission>,
    pub stream: StreamConfig,
    pub mcp: McpConfig,
    /// `POST /api/v1/sql`; `None` without `--features sql`.
    pub sql: Option<Arc<SqlEngine>>,
    /// Large answers not yet taken by their clients (503 past the budget).
    pub unsent: Arc<crate::unsent::Unsent>,
}
