//! The JSON-RPC 2.0 envelope of MCP over Streamable HTTP, both eras (spec
//! mcp.md sections 1.1-1.10): parsing one message, telling the legacy era
//! (2025-03-26 .. 2025-11-25, `initialize` handshake) from the modern one
//! (2026-07-28, `params._meta` on every request), checking the protocol
//! headers, and the error objects with their HTTP statuses (table 1.9).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

/// Versions answered by `initialize`, newest first.
pub const LEGACY: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The modern revision.
pub const MODERN: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";

/// Every version strata speaks (`server/discover`'s `supportedVersions`).
pub fn supported() -> Vec<&'static str> {
    std::iter::once(MODERN).chain(LEGACY).collect()
}

/// Which era a request belongs to, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    Legacy(String),
    Modern,
}

impl Era {
    pub fn version(&self) -> &str {
        match self {
            Era::Legacy(v) => v,
            Era::Modern => MODERN,
        }
    }
}

/// A JSON-RPC error answer and the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    pub status: StatusCode,
    pub id: Box<Value>,
    pub code: i64,
    pub message: String,
    pub data: Option<Box<Value>>,
}

impl RpcFailure {
    pub fn new(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> RpcFailure {
        RpcFailure { status, id: Box::new(id), code, message: message.into(), data: None }
    }

    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = (**d).clone();
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": e})
    }
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL: i64 = -32603;
/// strata: the token was revoked while the call ran.
pub const REVOKED: i64 = -32001;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request(Request),
    /// No `id`: answered with 202 and no body.
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// A client's answer to a server request (strata sends none): 202.
    Response,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Map<String, Value>,
    pub era: Era,
}

fn bad(id: Value, code: i64, msg: impl Into<String>) -> RpcFailure {
    RpcFailure::new(StatusCode::BAD_REQUEST, id, code, msg)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Decodes an `Mcp-Name` header: plain, or `=?base64?...?=`.
fn decode_name(v: &str) -> String {
    let Some(inner) = v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) else { return v.to_string() };
    base64_decode(inner).and_then(|b| String::from_utf8(b).ok()).unwrap_or_else(|| v.to_string())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len().saturating_sub(1);
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

/// Parses one POST body with its headers. `Err` is the answer to send.
pub fn parse(body: &[u8], headers: &HeaderMap) -> Result<Incoming, RpcFailure> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(Value::Null, PARSE_ERROR, format!("parse error: the body is not JSON ({e})")))?;
    let obj = match v {
        Value::Object(o) => o,
        Value::Array(_) => return Err(bad(Value::Null, INVALID_REQUEST, "batching is not supported")),
        _ => return Err(bad(Value::Null, INVALID_REQUEST, "the body must be a JSON-RPC object")),
    };
    let id = match obj.get("id") {
        None => None,
        Some(i @ Value::String(_)) => Some(i.clone()),
        // Only integers that come back as they were written (spec 1.1: echo
        // the id exactly): `1e3` or a 23-digit number would be rewritten.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
        Some(_) => {
            return Err(bad(
                Value::Null,
                INVALID_REQUEST,
                "'id' must be a string or an integer (written plainly, at most 64 bits)",
            ))
        }
    };
    let echo = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(echo, INVALID_REQUEST, "'jsonrpc' must be \"2.0\""));
    }
    let Some(method) = obj.get("method") else {
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            return Ok(Incoming::Response);
        }
        return Err(bad(echo, INVALID_REQUEST, "'method' is missing"));
    };
    let Some(method) = method.as_str().map(str::to_string) else {
        return Err(bad(echo, INVALID_REQUEST, "'method' must be a string"));
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        // A notification gets no answer, not even an error (JSON-RPC 2.0):
        // it is taken without its params.
        Some(_) if id.is_none() => Map::new(),
        // Spec 1.9: -32602 travels with HTTP 200.
        Some(_) => return Err(RpcFailure::new(StatusCode::OK, echo, INVALID_PARAMS, "'params' must be an object")),
    };
    let Some(id) = id else { return Ok(Incoming::Notification { method, params }) };
    let era = era(&id, &method, &params, headers)?;
    Ok(Incoming::Request(Request { id, method, params, era }))
}

/// The era rule (spec 1.8): `_meta` with a protocol version, or
/// `server/discover`, is modern; anything else is legacy.
fn era(id: &Value, method: &str, params: &Map<String, Value>, h: &HeaderMap) -> Result<Era, RpcFailure> {
    let header_version = header(h, "mcp-protocol-version");
    let meta = params.get("_meta").and_then(Value::as_object);
    let meta_version = meta.and_then(|m| m.get(META_VERSION)).and_then(Value::as_str);
    if meta_version.is_none() && method != "server/discover" {
        if header_version == Some(MODERN) {
            return Err(bad(
                id.clone(),
                INVALID_PARAMS,
                format!("a {MODERN} request needs params._meta[\"{META_VERSION}\"]"),
            ));
        }
        return match header_version {
            None => Ok(Era::Legacy(if method == "initialize" { LEGACY[0] } else { "2025-03-26" }.to_string())),
            Some(v) if LEGACY.contains(&v) => Ok(Era::Legacy(v.to_string())),
            Some(v) => Err(bad(
                id.clone(),
                INVALID_REQUEST,
                format!("unsupported MCP-Protocol-Version '{v}'; supported: {}", supported().join(", ")),
            )),
        };
    }
    let Some(version) = meta_version else {
        return Err(bad(id.clone(), INVALID_PARAMS, format!("params._meta[\"{META_VERSION}\"] is required")));
    };
    if version != MODERN {
        let mut f = bad(id.clone(), UNSUPPORTED_VERSION, format!("unsupported protocol version '{version}'"));
        f.data = Some(Box::new(json!({"supported": supported(), "requested": version})));
        return Err(f);
    }
    if meta.and_then(|m| m.get(META_CAPS)).is_none_or(|c| !c.is_object()) {
        return Err(bad(id.clone(), INVALID_PARAMS, format!("params._meta[\"{META_CAPS}\"] (an object) is required")));
    }
    if header_version != Some(MODERN) {
        return Err(bad(id.clone(), HEADER_MISMATCH, format!("the MCP-Protocol-Version header must be {MODERN}")));
    }
    if header(h, "mcp-method") != Some(method) {
        return Err(bad(id.clone(), HEADER_MISMATCH, "the Mcp-Method header is missing or differs from 'method'"));
    }
    if matches!(method, "tools/call" | "prompts/get" | "resources/read") {
        let key = if method == "resources/read" { "uri" } else { "name" };
        let want = params.get(key).and_then(Value::as_str);
        let got = header(h, "mcp-name").map(decode_name);
        if want.is_none() || got.as_deref() != want {
            return Err(bad(
                id.clone(),
                HEADER_MISMATCH,
                format!("the Mcp-Name header is missing or differs from params.{key}"),
            ));
        }
    }
    Ok(Era::Modern)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, axum::http::HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn envelopes() {
        let none = HeaderMap::new();
        assert_eq!(parse(b"{", &none).map_err(|e| (e.code, *e.id)), Err((PARSE_ERROR, Value::Null)));
        assert_eq!(
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, &none).map_err(|e| e.code),
            Err(INVALID_REQUEST)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, &none).map_err(|e| (e.code, *e.id)),
            Err((INVALID_REQUEST, json!(1)))
        );
        assert_eq!(parse(br#"{"id":1}"#, &none).map_err(|e| e.code), Err(INVALID_REQUEST));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &none),
            Ok(Incoming::Notification { .. })
        ));
        let Ok(Incoming::Request(r)) = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#, &none) else {
            panic!("request")
        };
        assert_eq!((r.id, r.era), (json!("a"), Era::Legacy("2025-03-26".into())));
        let bad_header = h(&[("mcp-protocol-version", "2099-01-01")]);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &bad_header).map_err(|e| e.code),
            Err(INVALID_REQUEST)
        );
        assert_eq!(decode_name("=?base64?bWV0YS53aG9hbWk=?="), "meta.whoami");
    }

    #[test]
    fn ids_come_back_as_written_or_are_refused() {
        let none = HeaderMap::new();
        let id_of = |body: &[u8]| match parse(body, &none) {
            Ok(Incoming::Request(r)) => Ok(r.id.to_string()),
            Ok(_) => Err(0),
            Err(e) => Err(e.code),
        };
        assert_eq!(
            id_of(br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#).as_deref(),
            Ok("18446744073709551615")
        );
        assert_eq!(id_of(br#"{"jsonrpc":"2.0","id":-7,"method":"ping"}"#).as_deref(), Ok("-7"));
        for id in ["1e3", "1.5", "12345678901234567890123", "true", "{}"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert_eq!(id_of(body.as_bytes()), Err(INVALID_REQUEST), "id {id} is not echoed rewritten");
        }
    }

    #[test]
    fn params_that_are_no_object() {
        let none = HeaderMap::new();
        let e = parse(br#"{"jsonrpc":"2.0","id":9,"method":"ping","params":[1]}"#, &none).expect_err("refused");
        assert_eq!((e.status, e.code, *e.id), (StatusCode::OK, INVALID_PARAMS, json!(9)), "spec 1.9");
        // A notification is never answered: it is taken without them.
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":[1]}"#, &none),
            Ok(Incoming::Notification { params, .. }) if params.is_empty()
        ));
    }

    #[test]
    fn modern_headers_must_match() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"meta.whoami","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let ok = h(&[("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "meta.whoami")]);
        assert!(matches!(parse(body, &ok), Ok(Incoming::Request(Request { era: Era::Modern, .. }))));
        let wrong = h(&[("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "nodes.list")]);
        assert_eq!(parse(body, &wrong).map_err(|e| e.code), Err(HEADER_MISMATCH));
        let missing = h(&[("mcp-protocol-version", MODERN), ("mcp-name", "meta.whoami")]);
        assert_eq!(parse(body, &missing).map_err(|e| e.code), Err(HEADER_MISMATCH));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Err(e) = parse(&bytes, &HeaderMap::new()) {
                prop_assert!(e.status.is_client_error() || (e.status == StatusCode::OK && e.code == INVALID_PARAMS));
            }
        }

        #[test]
        fn json_shaped_bodies_never_panic(id in prop::option::of(0i64..5), m in "[a-z/]{0,12}", p in "[a-z_]{0,6}") {
            let mut body = json!({"jsonrpc": "2.0", "method": m, "params": {p: 1, "_meta": {META_VERSION: "2026-07-28"}}});
            if let Some(i) = id { body["id"] = json!(i); }
            let _ = parse(body.to_string().as_bytes(), &HeaderMap::new());
        }
    }
}
