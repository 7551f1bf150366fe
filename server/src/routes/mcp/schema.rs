//! Checks tool arguments against the tool's `inputSchema`, the same JSON
//! value `tools/list` serves (one source of truth). It understands exactly
//! the JSON Schema subset strata's schemas use: `type` (one or a list),
//! `properties`, `required`, `additionalProperties: false`, `enum`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`/`maxItems`,
//! `uniqueItems`, `items` and `pattern` (only the duration pattern
//! `^[1-9][0-9]*(s|m|h|d)$`). The first problem is reported with the
//! argument's path and the allowed range, so a model can correct itself.

use serde_json::Value;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    let k = kind(v);
    k == want || (want == "number" && k == "integer")
}

/// Is `s` a duration like `15m`?
pub fn is_duration(s: &str) -> bool {
    let Some(unit) = s.chars().last() else { return false };
    let digits = &s[..s.len() - unit.len_utf8()];
    matches!(unit, 's' | 'm' | 'h' | 'd')
        && !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `Ok` when `v` satisfies `schema`; else the first problem, naming `path`.
pub fn validate(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    let name = if path.is_empty() { "arguments".to_string() } else { format!("'{path}'") };
    match schema.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => return Err(format!("{name} must be of type {t}, got {}", kind(v))),
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            return Err(format!("{name} must be of type {}, got {}", names.join(" or "), kind(v)));
        }
        _ => {}
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(v) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            return Err(format!("{name} must be one of {}", list.join(", ")));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{name} must be {c}"));
        }
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min || x.is_nan() {
                    return Err(format!("{name} must be at least {min}, got {n}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max || x.is_nan() {
                    return Err(format!("{name} must be at most {max}, got {n}"));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    return Err(format!("{name} must have at least {min} characters"));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    return Err(format!("{name} must have at most {max} characters, got {len}"));
                }
            }
            if schema.get("pattern").is_some() && !is_duration(s) {
                return Err(format!("{name} must be a duration like 15m, 1h or 7d, got '{s}'"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if n < min {
                    return Err(format!("{name} must have at least {min} items"));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if n > max {
                    return Err(format!("{name} must have at most {max} items, got {n}"));
                }
            }
            if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
                for (i, a) in items.iter().enumerate() {
                    if items[..i].contains(a) {
                        return Err(format!("{name} must not repeat {a}"));
                    }
                }
            }
            if let Some(item) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    validate(item, x, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(req)) = schema.get("required") {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        let p = if path.is_empty() { r.to_string() } else { format!("{path}.{r}") };
                        return Err(format!("'{p}' is required"));
                    }
                }
            }
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match props.and_then(|ps| ps.get(k)) {
                    Some(s) => validate(s, x, &p)?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let known: Vec<&String> = props.map(|ps| ps.keys().collect()).unwrap_or_default();
                        let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                        return Err(format!("unknown property '{p}' (allowed: {})", known.join(", ")));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "additionalProperties": false, "required": ["contexts"], "properties": {
            "contexts": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string", "maxLength": 5}},
            "points": {"type": "integer", "minimum": 1, "maximum": 500},
            "when": {"type": ["string", "integer"]},
            "last": {"type": "string", "pattern": "^[1-9][0-9]*(s|m|h|d)$"},
            "g": {"type": "array", "uniqueItems": true, "items": {"enum": ["a", "b"]}}}})
    }

    #[test]
    fn names_the_problem() {
        let s = schema();
        assert!(
            validate(&s, &json!({"contexts": ["x"], "points": 5, "when": -60, "last": "15m", "g": ["a"]}), "").is_ok()
        );
        let e = |v: Value| validate(&s, &v, "").expect_err("invalid");
        assert!(e(json!({"contexts": ["x"], "points": 5000})).contains("'points' must be at most 500"));
        assert!(e(json!({"contexts": ["x"], "foo": 1})).contains("unknown property 'foo'"));
        assert!(e(json!({})).contains("'contexts' is required"));
        assert!(e(json!({"contexts": ["toolong"]})).contains("'contexts[0]'"));
        assert!(e(json!({"contexts": ["x"], "when": true})).contains("string or integer"));
        assert!(e(json!({"contexts": ["x"], "last": "0m"})).contains("duration"));
        assert!(e(json!({"contexts": ["x"], "g": ["a", "a"]})).contains("repeat"));
        assert!(e(json!({"contexts": ["x"], "g": ["c"]})).contains("one of"));
        assert!(e(json!([])).contains("object"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,100}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = validate(&schema(), &v, "");
            }
            let _ = is_duration(&s);
        }
    }
}
