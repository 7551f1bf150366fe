//! `meta.whoami`: the calling token, what it may do, the server and its
//! limits. Works with any valid token, so a user can see why an agent is
//! refused. Never shows the token or its hash.

use serde_json::{json, Map, Value};

use super::args::rfc3339;
use super::{allowed, Ctx, Tool, ToolError, MAX_CELLS, MAX_POINTS, MAX_SERIES};
use crate::admission::Class;

pub static TOOL: Tool = Tool {
    name: "meta.whoami",
    title: "Who am I",
    description: "The calling token (id, name, scopes, expiry, node allowlist), the tools it may call, the server's version and current time, and the limits every call is held to. Use it first when a tool is refused or to compute relative windows from the server's 'now'.",
    needs: None,
    class: Class::Light,
    input: || json!({"type": "object", "additionalProperties": false}),
    output,
    run,
};

fn output() -> Value {
    json!({"type": "object", "required": ["token", "allowed_tools", "server", "limits"], "properties": {
        "token": {"type": "object", "required": ["id", "name", "scopes", "expires_at", "node_allowlist"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "node_allowlist": {"type": ["array", "null"], "items": {"type": "string"}}}},
        "allowed_tools": {"type": "array", "items": {"type": "string"}},
        "server": {"type": "object", "required": ["name", "version", "protocol_version", "now"], "properties": {
            "name": {"const": "strata"}, "version": {"type": "string"},
            "protocol_version": {"type": "string"}, "now": {"type": "string", "format": "date-time"}}},
        "limits": {"type": "object", "properties": {
            "max_points": {"type": "integer"}, "max_series": {"type": "integer"}, "max_cells": {"type": "integer"},
            "max_window_s": {"type": "integer"}, "call_timeout_s": {"type": "integer"},
            "rate_per_second": {"type": "integer"}, "rate_per_minute": {"type": "integer"}}}}})
}

fn run(cx: &Ctx, _: &Map<String, Value>) -> Result<Value, ToolError> {
    let me = &cx.me;
    let windows = cx.st.auth.mcp_limiter.windows();
    let rate = |secs: u64| windows.iter().find(|w| w.1.as_secs() == secs).map(|w| w.0);
    Ok(json!({
        "token": {
            "id": me.token_id,
            "name": me.name,
            "scopes": me.scopes.names,
            "expires_at": me.expires_at.map(rfc3339),
            "node_allowlist": (!me.nodes.is_empty()).then(|| me.nodes.clone()),
        },
        "allowed_tools": allowed(me).iter().map(|t| t.name).collect::<Vec<_>>(),
        "server": {"name": "strata", "version": cx.st.agent.version, "protocol_version": cx.version, "now": rfc3339(cx.now)},
        "limits": {
            "max_points": MAX_POINTS,
            "max_series": MAX_SERIES,
            "max_cells": MAX_CELLS,
            "max_window_s": super::args::MAX_WINDOW_S,
            "call_timeout_s": cx.st.mcp.call_timeout.as_secs(),
            "rate_per_second": rate(1),
            "rate_per_minute": rate(60),
        },
    }))
}
