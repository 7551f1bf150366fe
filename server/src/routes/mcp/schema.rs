//! Checks tool arguments against the tool's `inputSchema`, the same JSON
//! value `tools/list` serves (one source of truth). It understands exactly
//! the JSON Schema subset strata's schemas use: `type` (one or a list),
//! `properties`, `required`, `additionalProperties: false`, `enum`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`/`maxItems`,
//! `uniqueItems`, `items` and `pattern` (only the duration pattern
//! `^[1-9][0-9]*(s|m|h|d)$`). The first problem is reported with the
//! argument's path and the allowed range, so a model can correct itself.
//! Before validation, [`integers_from_floats`] reads `5.0` as `5` where an
//! integer is wanted.

use serde_json::{Map, Value};

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

/// Does `schema` accept integers (its `type` names `integer`)?
fn wants_integer(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    }
}

/// Rewrites integral floats (`5.0`, `-60.0`) as integers wherever `schema`
/// wants an integer: JSON does not tell the two apart and many clients (and
/// models) write every number as a float. A fraction (`5.5`) or a float
/// outside the 64-bit integer range stays as it is, so [`validate`] refuses
/// it; minimum and maximum still apply to what is rewritten.
pub fn integers_from_floats(schema: &Value, v: &mut Value) {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) && wants_integer(schema) => {
            // 2^63 as f64: every integral float in [-2^63, 2^63) is an i64.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if let Some(x) = n.as_f64().filter(|x| x.fract() == 0.0 && (-LIMIT..LIMIT).contains(x)) {
                *v = Value::from(x as i64);
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                items.iter_mut().for_each(|x| integers_from_floats(item, x));
            }
        }
        Value::Object(m) => integer_properties(schema, m),
        _ => {}
    }
}

/// [`integers_from_floats`] over the properties of an object `schema`.
pub fn integer_properties(schema: &Value, m: &mut Map<String, Value>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, x) in m.iter_mut() {
            if let Some(s) = props.get(k) {
                integers_from_floats(s, x);
            }
        }
    }
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
                        return Err(match known.is_empty() {
                            true => format!("unknown property '{p}' (this takes no properties)"),
                            false => format!("unknown property '{p}' (allowed: {})", known.join(", ")),
                        });
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

    #[test]
    fn integral_floats_are_integers() {
        let s = schema();
        let fixed = |mut v: Value| {
            integers_from_floats(&s, &mut v);
            v
        };
        let v = fixed(json!({"contexts": ["x"], "points": 5.0, "when": -60.0}));
        assert_eq!(v, json!({"contexts": ["x"], "points": 5, "when": -60}));
        assert!(v["points"].is_i64(), "an integer the tools can read: {v}");
        assert!(validate(&s, &v, "").is_ok());
        let e = |v: Value| validate(&s, &fixed(v), "").expect_err("invalid");
        assert!(e(json!({"contexts": ["x"], "points": 5.5})).contains("'points' must be of type integer, got number"));
        assert!(e(json!({"contexts": ["x"], "points": 0.0})).contains("'points' must be at least 1"));
        assert!(e(json!({"contexts": ["x"], "points": -3.0})).contains("'points' must be at least 1"));
        assert!(e(json!({"contexts": ["x"], "points": 501.0})).contains("'points' must be at most 500"));
        assert!(e(json!({"contexts": ["x"], "points": 1e300})).contains("of type integer"), "beyond i64");
        assert!(e(json!({"contexts": ["x"], "points": 9.3e18})).contains("of type integer"), "just beyond i64");
        // Only where an integer is wanted: strings and patterns keep their floats.
        assert_eq!(fixed(json!({"contexts": [1.0]})), json!({"contexts": [1.0]}));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,100}") {
            if let Ok(mut v) = serde_json::from_str::<Value>(&s) {
                let _ = validate(&schema(), &v, "");
                integers_from_floats(&schema(), &mut v);
                let _ = validate(&schema(), &v, "");
            }
            let _ = is_duration(&s);
        }
    }
}
