//! What a stream subscriber asks for: `contexts` and `nodes` simple
//! patterns (a string split on `,` and `|`, or a JSON array of words) and,
//! on the query string, `ticks` (end after that many). The WebSocket also
//! takes `{"type": "subscribe", "contexts": ..., "nodes": ...}` messages.
//! Missing contexts mean the server's default set, missing nodes all nodes
//! the token may see.

use serde_json::Value;
use strata_engine::index::SimplePattern;
use strata_engine::views::snapshot::Subscription;

/// Most bytes of a pattern, most words of an array, most ticks.
const MAX_PATTERN: usize = 4096;
const MAX_WORDS: usize = 100;

/// A parsed subscription plus the query-string-only `ticks`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamParams {
    pub sub: Subscription,
    /// End the stream after this many ticks (`None`: until the client leaves).
    pub ticks: Option<u64>,
}

fn from_str(key: &str, s: &str) -> Result<Option<SimplePattern>, String> {
    if s.len() > MAX_PATTERN {
        return Err(format!("'{key}' is longer than {MAX_PATTERN} bytes"));
    }
    if s.trim().is_empty() {
        return Ok(None);
    }
    SimplePattern::parse_get(s).map(Some).map_err(|e| format!("'{key}': {e}"))
}

fn from_value(key: &str, v: &Value) -> Result<Option<SimplePattern>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => from_str(key, s),
        Value::Array(items) => {
            if items.len() > MAX_WORDS {
                return Err(format!("'{key}' has more than {MAX_WORDS} patterns"));
            }
            let mut words = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let w = item.as_str().ok_or_else(|| format!("'{key}[{i}]' must be a string"))?;
                if w.len() > MAX_PATTERN {
                    return Err(format!("'{key}[{i}]' is longer than {MAX_PATTERN} bytes"));
                }
                words.push(w);
            }
            if words.iter().all(|w| w.trim().is_empty()) {
                return Ok(None);
            }
            SimplePattern::parse_list(&words).map(Some).map_err(|e| format!("'{key}': {e}"))
        }
        _ => Err(format!("'{key}' must be a pattern string or an array of strings")),
    }
}

/// Query-string parameters (`contexts`, `nodes`, `ticks`); others are ignored.
pub fn from_query(pairs: &[(String, String)], default_contexts: &SimplePattern) -> Result<StreamParams, String> {
    let mut p = StreamParams { sub: Subscription { contexts: default_contexts.clone(), nodes: None }, ticks: None };
    for (k, v) in pairs {
        match k.as_str() {
            "contexts" => p.sub.contexts = from_str(k, v)?.unwrap_or_else(|| default_contexts.clone()),
            "nodes" => p.sub.nodes = from_str(k, v)?,
            // Empty, as empty `contexts` and `nodes`: the default (no end).
            "ticks" if v.trim().is_empty() => p.ticks = None,
            "ticks" => {
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("'ticks' must be a whole number (0 for no end), got '{v}'"))?;
                p.ticks = (n > 0).then_some(n);
            }
            _ => {}
        }
    }
    Ok(p)
}

/// A WebSocket text message: a `subscribe` replaces the subscription.
pub fn from_message(text: &str, default_contexts: &SimplePattern) -> Result<Subscription, String> {
    if text.len() > 4 * MAX_PATTERN {
        return Err(format!("messages are at most {} bytes", 4 * MAX_PATTERN));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(m) = &v else { return Err("a message must be a JSON object".into()) };
    match m.get("type").and_then(Value::as_str) {
        Some("subscribe") => {}
        Some(other) => return Err(format!("unknown message type '{other}' (send {{\"type\": \"subscribe\", ...}})")),
        None => return Err("a message needs \"type\": \"subscribe\"".into()),
    }
    let null = Value::Null;
    Ok(Subscription {
        contexts: from_value("contexts", m.get("contexts").unwrap_or(&null))?
            .unwrap_or_else(|| default_contexts.clone()),
        nodes: from_value("nodes", m.get("nodes").unwrap_or(&null))?,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn defaults() -> SimplePattern {
        strata_engine::views::snapshot::default_contexts()
    }

    #[test]
    fn query_and_messages() {
        let q = |s: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            from_query(&pairs, &defaults())
        };
        let p = q(&[("contexts", "system.cpu,net.*"), ("nodes", "web*"), ("ticks", "3")]).expect("ok");
        assert!(p.sub.contexts.matches("net.net") && !p.sub.contexts.matches("disk.io"));
        assert!(p.sub.nodes.as_ref().is_some_and(|n| n.matches("web-1")));
        assert_eq!(p.ticks, Some(3));
        assert_eq!(q(&[]).expect("ok").sub, Subscription::default());
        assert!(q(&[("ticks", "-1")]).is_err());
        let s =
            from_message(r#"{"type":"subscribe","contexts":["system.load"],"nodes":"db*"}"#, &defaults()).expect("ok");
        assert!(s.contexts.matches("system.load") && !s.contexts.matches("system.cpu"));
        assert!(from_message(r#"{"type":"subscribe"}"#, &defaults()).expect("ok").nodes.is_none());
        for bad in [r#"[]"#, r#"{"type":"x"}"#, r#"{"contexts":"a"}"#, r#"{"type":"subscribe","nodes":5}"#, "{"] {
            assert!(from_message(bad, &defaults()).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn messages_never_panic(s in "\\PC{0,200}") {
            let _ = from_message(&s, &defaults());
            let _ = from_query(&[("contexts".into(), s.clone()), ("nodes".into(), s.clone()), ("ticks".into(), s)], &defaults());
        }

        #[test]
        fn json_shaped_messages_never_panic(c in prop::collection::vec("[a-z.*!|, ]{0,12}", 0..5), n in "[a-z*!]{0,8}") {
            let msg = serde_json::json!({"type": "subscribe", "contexts": c, "nodes": n}).to_string();
            let _ = from_message(&msg, &defaults());
        }
    }
}
