//! strata's MCP tools (spec mcp.md section 3): their registry in the order
//! `tools/list` shows them, the scopes each needs, their input and output
//! schemas, and the global ceilings. Every tool reads through the engine's
//! own listings and query path under the calling token's node allowlist;
//! none has logic of its own beyond shaping arguments and answers.

pub mod args;
mod data;
mod inventory;
mod weights;
mod whoami;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use strata_engine::{EngineError, ErrorKind};

use crate::admission::Class;
use crate::auth::{Principal, Resource, Verb};
use crate::state::AppState;

/// Most points per series of `data.query`.
pub const MAX_POINTS: i64 = 500;
/// Most series of `data.query`.
pub const MAX_SERIES: i64 = 50;
/// Most cells (series x points) of one `data.query`.
pub const MAX_CELLS: i64 = 10_000;
/// Most bytes of one call's `structuredContent`.
pub const MAX_BYTES: usize = 64 << 10;
/// Most metrics `weights.rank` compares.
pub const MAX_WEIGHTS_METRICS: u64 = 20_000;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// Reported to the model as `isError: true` with this text.
    Tool(String),
    /// The token was revoked while the call ran (JSON-RPC -32001).
    Revoked,
    /// A server fault (JSON-RPC -32603).
    Internal(String),
}

impl ToolError {
    pub fn tool(msg: impl Into<String>) -> ToolError {
        ToolError::Tool(msg.into())
    }
}

impl From<EngineError> for ToolError {
    fn from(e: EngineError) -> Self {
        match e.kind() {
            ErrorKind::Cancelled => ToolError::Revoked,
            ErrorKind::Timeout => ToolError::tool(format!("{e}; reduce the window or the points")),
            ErrorKind::Internal | ErrorKind::StorageFull | ErrorKind::Unavailable => ToolError::Internal(e.to_string()),
            _ => ToolError::tool(match e.path() {
                Some(p) => format!("{e} (at {p})"),
                None => e.to_string(),
            }),
        }
    }
}

/// What a running tool may use.
pub struct Ctx {
    pub st: AppState,
    pub me: Principal,
    /// The request's protocol version.
    pub version: String,
    pub now: i64,
    /// Turns true when the token is revoked or the call is abandoned.
    pub cancel: Arc<AtomicBool>,
    /// The per-call time limit, for queries.
    pub timeout_ms: u64,
}

/// One tool.
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// Scopes needed besides `strata:mcp:read` (`None`: any valid token).
    pub needs: Option<Resource>,
    pub input: fn() -> Value,
    pub output: fn() -> Value,
    /// Runs on a blocking thread.
    pub run: fn(&Ctx, &Map<String, Value>) -> Result<Value, ToolError>,
    /// How its call is admitted: light for the listings and for
    /// `data.query` (capped at [`MAX_CELLS`] values); heavy for
    /// `weights.rank` (up to [`MAX_WEIGHTS_METRICS`] metrics).
    pub class: Class,
}

impl Tool {
    /// `None` when `me` may call it, else the reason.
    pub fn forbidden(&self, me: &Principal) -> Option<String> {
        let need = self.needs?;
        for (r, label) in [(Resource::Mcp, "strata:mcp:read"), (need, "")] {
            if !me.allows(r, Verb::Read) {
                let scope = if label.is_empty() { format!("strata:{}:read", r.name()) } else { label.to_string() };
                return Some(format!(
                    "forbidden: tool {} requires scope {scope} (scope:mcp grants everything the tools need)",
                    self.name
                ));
            }
        }
        None
    }

    /// The `tools/list` entry.
    pub fn listing(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": (self.input)(),
            "outputSchema": (self.output)(),
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false},
        })
    }
}

/// Every tool, in the order of spec section 3.
pub fn all() -> [&'static Tool; 8] {
    [
        &whoami::TOOL,
        &inventory::NODES,
        &inventory::CONTEXTS,
        &inventory::SEARCH,
        &inventory::DESCRIBE,
        &data::QUERY,
        &data::SUMMARY,
        &weights::RANK,
    ]
}

pub fn find(name: &str) -> Option<&'static Tool> {
    all().into_iter().find(|t| t.name == name)
}

/// The tools `me` may call.
pub fn allowed(me: &Principal) -> Vec<&'static Tool> {
    all().into_iter().filter(|t| t.forbidden(me).is_none()).collect()
}
