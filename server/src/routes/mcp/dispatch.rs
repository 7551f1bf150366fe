//! One JSON-RPC request to its answer: the lifecycle methods of both eras
//! (`initialize`, `ping`, `server/discover`), `tools/list` and
//! `tools/call`. Tool calls run on a blocking thread with the token's
//! revocation flag and the per-call time limit, at most 4 per token at once
//! ([`calls`]); revocation answers -32001, `notifications/cancelled` and a
//! dropped connection stop the call the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::protocol::{Era, Request, RpcFailure, INTERNAL, INVALID_PARAMS, LEGACY, METHOD_NOT_FOUND, REVOKED};
use super::schema::{integer_properties, validate};
use super::tools::{self, Ctx, ToolError, MAX_BYTES};
use crate::auth::mcp_calls as calls;
use crate::auth::Principal;
use crate::state::AppState;

const INSTRUCTIONS: &str = "strata holds metrics of monitored nodes (Netdata contexts such as system.cpu, disk.io). Start with contexts.search or contexts.list to find a context, metrics.describe to see its dimensions and instances, then data.query (a small table; keep points small) or data.summary (stats per series). weights.rank finds what changed in an incident window. Times are RFC 3339 or seconds relative to now (e.g. -3600); windows also take {\"last\": \"15m\"}. nodes.list shows which hosts are live; meta.whoami shows your token's limits.";

/// Sets the flag when dropped: an abandoned call (dropped connection) stops.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn server_info(st: &AppState) -> Value {
    json!({"name": "strata", "title": "strata metrics", "version": st.agent.version})
}

/// Adds the modern-era fields to a result.
fn modern(st: &AppState, mut result: Value) -> Value {
    result["resultType"] = json!("complete");
    result["_meta"] = json!({"io.modelcontextprotocol/serverInfo": server_info(st)});
    result
}

fn ok(id: &Value, result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn fail(f: RpcFailure) -> (StatusCode, Value) {
    (f.status, f.body())
}

/// The answer to `req` (status and body).
pub async fn handle(st: &AppState, me: &Principal, req: Request) -> (StatusCode, Value) {
    let id = req.id.clone();
    let is_modern = req.era == Era::Modern;
    let finish = |result: Value| if is_modern { modern(st, result) } else { result };
    match req.method.as_str() {
        "initialize" => {
            let asked = req.params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
            let version = if LEGACY.contains(&asked) { asked } else { LEGACY[0] };
            ok(
                &id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": server_info(st),
                    "instructions": INSTRUCTIONS,
                }),
            )
        }
        "ping" => ok(&id, finish(json!({}))),
        "server/discover" => ok(
            &id,
            json!({
                "resultType": "complete",
                "supportedVersions": super::protocol::supported(),
                "capabilities": {"tools": {}},
                "instructions": INSTRUCTIONS,
                "_meta": {"io.modelcontextprotocol/serverInfo": server_info(st)},
                "ttlMs": 3_600_000,
                "cacheScope": "public",
            }),
        ),
        "tools/list" => {
            let list: Vec<Value> = tools::allowed(me).iter().map(|t| t.listing()).collect();
            let mut result = json!({ "tools": list });
            if is_modern {
                result["ttlMs"] = json!(300_000);
                result["cacheScope"] = json!("private");
            }
            ok(&id, finish(result))
        }
        "tools/call" => match call(st, me, &req).await {
            Ok(result) => ok(&id, finish(result)),
            Err(f) => fail(f),
        },
        other => {
            let status = if is_modern { StatusCode::NOT_FOUND } else { StatusCode::OK };
            fail(RpcFailure::new(status, id, METHOD_NOT_FOUND, format!("method not found: {other}")))
        }
    }
}

fn tool_error(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

async fn call(st: &AppState, me: &Principal, req: &Request) -> Result<Value, RpcFailure> {
    let invalid = |msg: String| RpcFailure::new(StatusCode::OK, req.id.clone(), INVALID_PARAMS, msg);
    let Some(name) = req.params.get("name").and_then(Value::as_str) else {
        return Err(invalid("tools/call needs params.name (a string)".into()));
    };
    let Some(tool) = tools::find(name) else { return Err(invalid(format!("unknown tool: {name}"))) };
    let mut args: Map<String, Value> = match req.params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Ok(tool_error("'arguments' must be an object".into())),
    };
    let schema = (tool.input)();
    integer_properties(&schema, &mut args);
    let started = Instant::now();
    let outcome = if let Some(why) = tool.forbidden(me) {
        Err(ToolError::Tool(why))
    } else if let Err(e) = validate(&schema, &Value::Object(args.clone()), "") {
        Err(ToolError::Tool(e))
    } else {
        // Revocation, a dropped connection and notifications/cancelled all
        // set this one flag.
        let cancel = st.auth.inflight.register(&me.token_id);
        let _guard = CancelOnDrop(cancel.clone());
        let Some(_place) = st.auth.mcp_calls.enter(&me.token_id, &req.id, &cancel, calls::WAIT).await else {
            return Ok(tool_error(format!(
                "too many concurrent calls: at most {} per token; wait for one to finish",
                calls::PER_TOKEN
            )));
        };
        // Tools query: they take a query slot like data queries, held until the work ends.
        let slot = match st.admission.enter(tool.class).await {
            Ok(slot) => slot,
            Err(busy) => return Ok(tool_error(format!("{busy}; retry shortly"))),
        };
        let cx = Ctx {
            st: st.clone(),
            me: me.clone(),
            version: req.era.version().to_string(),
            now: st.engine.now(),
            cancel: cancel.clone(),
            timeout_ms: st.mcp.call_timeout.as_millis() as u64,
        };
        let limit = st.mcp.call_timeout + std::time::Duration::from_secs(1);
        let run = tool.run;
        let job = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            run(&cx, &args)
        });
        match tokio::time::timeout(limit, job).await {
            Err(_) => Err(ToolError::tool(format!(
                "the call exceeded {} s; reduce the window or points",
                st.mcp.call_timeout.as_secs()
            ))),
            Ok(Err(e)) => Err(ToolError::Internal(format!("tool task failed: {e}"))),
            Ok(Ok(r)) if cancel.load(Ordering::Relaxed) && r.is_err() => {
                if st.auth.tokens.get(&me.token_id).is_none_or(|r| r.revoked_at.is_some()) {
                    Err(ToolError::Revoked)
                } else {
                    Err(ToolError::tool("the call was cancelled"))
                }
            }
            Ok(Ok(r)) => r,
        }
    };
    let outcome = outcome.and_then(|v| {
        let text = v.to_string();
        if text.len() > MAX_BYTES {
            return Err(ToolError::tool(format!(
                "the result is {} bytes, over the {} KiB limit; narrow the query (fewer points, series or items)",
                text.len(),
                MAX_BYTES >> 10
            )));
        }
        Ok((v, text))
    });
    let (kind, size) = match &outcome {
        Ok((_, t)) => ("ok", t.len()),
        Err(ToolError::Tool(t)) => ("tool error", t.len()),
        Err(_) => ("protocol error", 0),
    };
    tracing::info!(token = %me.token_id, name = %me.name, tool = name, ms = started.elapsed().as_millis() as u64,
        bytes = size, outcome = kind, "mcp tools/call");
    match outcome {
        Ok((v, text)) => Ok(json!({"content": [{"type": "text", "text": text}], "structuredContent": v})),
        Err(ToolError::Tool(t)) => Ok(tool_error(t)),
        Err(ToolError::Revoked) => Err(RpcFailure::new(StatusCode::OK, req.id.clone(), REVOKED, "token revoked")),
        Err(ToolError::Internal(e)) => {
            tracing::error!(error = %e, tool = name, "mcp tool failed");
            Err(RpcFailure::new(StatusCode::OK, req.id.clone(), INTERNAL, "internal error"))
        }
    }
}
