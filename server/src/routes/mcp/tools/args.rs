//! Shared argument shapes of the MCP tools (spec mcp.md 3.0): TimeSpec,
//! Window, pattern lists, and the output conventions (RFC 3339 times,
//! values rounded to `precision` significant digits).

use serde_json::{json, Map, Value};
use strata_engine::index::SimplePattern;

use super::ToolError;
pub use crate::format::rfc3339;

/// Longest window any tool reads.
pub const MAX_WINDOW_S: i64 = 90 * 86_400;

/// A `window` property's schema.
pub fn window_schema(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": false, "description": description,
        "properties": {
            "after": {"type": ["string", "integer"],
                "description": "RFC 3339 time, 'now', seconds <= 0 relative to now (e.g. -3600), or epoch seconds."},
            "before": {"type": ["string", "integer"], "description": "Like 'after'; default 'now'."},
            "last": {"type": "string", "pattern": "^[1-9][0-9]*(s|m|h|d)$",
                "description": "Shorthand for after=-N, before=now, e.g. '1h'."}}})
}

/// A list of patterns (`maxItems` items of at most 200 characters).
pub fn patterns_schema(max_items: u64, description: &str) -> Value {
    json!({"type": "array", "maxItems": max_items, "items": {"type": "string", "maxLength": 200}, "description": description})
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // No 31 April or 29 February 2026: the next month's first day must follow.
    let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
    if days_from_civil(y, mo, d) >= days_from_civil(ny, nm, 1) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// A TimeSpec to epoch seconds.
fn time_spec(v: &Value, now: i64, key: &str) -> Result<i64, ToolError> {
    match v {
        Value::String(s) if s == "now" => Ok(now),
        Value::String(s) => parse_rfc3339(s).ok_or_else(|| {
            ToolError::tool(format!(
                "'{key}' must be an RFC 3339 time (e.g. 2026-11-23T10:00:00Z), 'now' or seconds; got '{s}'"
            ))
        }),
        Value::Number(n) => match n.as_i64() {
            Some(x) if x <= 0 => Ok(now.saturating_add(x)),
            Some(x) => Ok(x),
            None => Err(ToolError::tool(format!("'{key}' must be an integer number of seconds"))),
        },
        _ => Err(ToolError::tool(format!("'{key}' must be a time"))),
    }
}

/// `15m` to seconds.
pub fn duration(s: &str) -> Option<i64> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    s[..s.len() - 1].parse::<i64>().ok()?.checked_mul(unit)
}

/// The absolute `[after, before]` of a `window` argument (default: the
/// last `default_s` seconds), at most `max_s` long. `last: N` is exactly
/// `after: -N` (and the default `after: -default_s`), so a tool answers
/// what `/api/v3/data?after=-N&before=0` answers: a window is `before -
/// after` seconds long, as in the REST API.
pub fn window(v: Option<&Value>, now: i64, default_s: i64, max_s: i64, key: &str) -> Result<(i64, i64), ToolError> {
    let empty = Map::new();
    let w = v.and_then(Value::as_object).unwrap_or(&empty);
    let (after, before) = match (w.get("last"), w.get("after")) {
        (Some(_), Some(_)) => return Err(ToolError::tool(format!("give '{key}.last' or '{key}.after', not both"))),
        // `last` ends now: a `before` beside it (other than now itself)
        // would be dropped unseen.
        (Some(_), None)
            if w.get("before").is_some_and(|b| time_spec(b, now, &format!("{key}.before")).ok() != Some(now)) =>
        {
            return Err(ToolError::tool(format!("give '{key}.last' or '{key}.before', not both ('last' ends now)")))
        }
        (Some(l), None) => {
            let secs = l
                .as_str()
                .and_then(duration)
                .ok_or_else(|| ToolError::tool(format!("'{key}.last' must be like 15m")))?;
            (now.saturating_sub(secs), now)
        }
        (None, a) => {
            let before = w.get("before").map_or(Ok(now), |b| time_spec(b, now, &format!("{key}.before")))?;
            let after =
                a.map_or(Ok(before.saturating_sub(default_s)), |a| time_spec(a, now, &format!("{key}.after")))?;
            (after, before)
        }
    };
    if after >= before {
        return Err(ToolError::tool(format!(
            "'{key}': after ({}) must be before before ({})",
            rfc3339(after),
            rfc3339(before)
        )));
    }
    let span = before.saturating_sub(after);
    if span > max_s {
        return Err(ToolError::tool(format!("'{key}' spans {span} s; at most {max_s} s is allowed")));
    }
    Ok((after, before))
}

/// How a [`window`] goes to the engine, as the REST routes take it. One
/// ending now (or later) as a relative window, `after: -N, before: 0`:
/// data then ends at the last complete second (an absolute `before` would
/// be aligned forward into the future, its last row a partial bucket that
/// reads like a sudden drop), and weights read the N seconds up to now,
/// both ends counted, as `/api/v2/weights?after=-N` does. One that starts
/// at or after now stays absolute (a relative `after` of 0 means the first
/// sample held), as do windows in the past.
pub fn as_requested((after, before): (i64, i64), now: i64) -> (i64, i64) {
    if before >= now && after < now {
        (after - now, 0)
    } else {
        (after, before)
    }
}

/// Strings of an array argument.
pub fn strings(args: &Map<String, Value>, key: &str) -> Vec<String> {
    args.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A simple-pattern text argument (words split on spaces, as spec 3.0
/// writes them, and on `|`), `default` when absent or blank.
pub fn pattern_text(args: &Map<String, Value>, key: &str, default: &str) -> Result<SimplePattern, ToolError> {
    let mut words: Vec<&str> = text(args, key, default).split_whitespace().collect();
    if words.is_empty() {
        words.push(default);
    }
    SimplePattern::parse_list(&words).map_err(|e| ToolError::tool(format!("'{key}': {e}")))
}

/// A pattern list argument; `None` when absent or empty.
pub fn patterns(list: &[String], key: &str) -> Result<Option<SimplePattern>, ToolError> {
    if list.is_empty() {
        return Ok(None);
    }
    SimplePattern::parse_list(list).map(Some).map_err(|e| ToolError::tool(format!("'{key}': {e}")))
}

pub fn int(args: &Map<String, Value>, key: &str, default: i64) -> i64 {
    args.get(key).and_then(Value::as_i64).unwrap_or(default)
}

pub fn text<'a>(args: &'a Map<String, Value>, key: &str, default: &'a str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or(default)
}

/// `v` rounded to `digits` significant digits; `null` for non-finite values.
pub fn round(v: f64, digits: i64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    let s = format!("{:.*e}", (digits.clamp(2, 10) - 1) as usize, v);
    s.parse::<f64>().map_or(Value::Null, |r| json!(if r == 0.0 { 0.0 } else { r }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_and_windows() {
        assert_eq!(parse_rfc3339("2026-11-23T16:31:00Z"), Some(1_795_451_460));
        assert_eq!(parse_rfc3339("2026-11-23T17:31:00.5+01:00"), Some(1_795_451_460));
        assert_eq!(parse_rfc3339(&rfc3339(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
        let now = 1_800_000_000;
        assert_eq!(window(None, now, 900, MAX_WINDOW_S, "window").ok(), Some((now - 900, now)));
        assert_eq!(window(Some(&json!({"last": "1h"})), now, 900, MAX_WINDOW_S, "w").ok(), Some((now - 3600, now)));
        let minus = window(Some(&json!({"after": -3600})), now, 900, MAX_WINDOW_S, "w").ok();
        assert_eq!(minus, Some((now - 3600, now)), "`last: N` is `after: -N`");
        assert!(window(Some(&json!({"last": "90d"})), now, 900, MAX_WINDOW_S, "w").is_ok(), "the longest window");
        assert_eq!(window(Some(&json!({"after": -60})), now, 900, MAX_WINDOW_S, "w").ok(), Some((now - 60, now)));
        assert!(window(Some(&json!({"after": 5, "before": 1})), now, 900, MAX_WINDOW_S, "w").is_err());
        assert!(window(Some(&json!({"last": "100d"})), now, 900, MAX_WINDOW_S, "w").is_err());
        let both = window(Some(&json!({"last": "1h", "before": "2026-12-01T00:00:00Z"})), now, 900, MAX_WINDOW_S, "w");
        assert!(both.is_err_and(|e| format!("{e:?}").contains("'w.before'")), "no `before` dropped unseen");
        let now_too = window(Some(&json!({"last": "1h", "before": "now"})), now, 900, MAX_WINDOW_S, "w");
        assert_eq!(now_too.ok(), Some((now - 3600, now)), "a `before` of now says what `last` says");
        assert_eq!(as_requested((now - 3600, now), now), (-3600, 0), "ending now: relative");
        assert_eq!(as_requested((now - 3600, now + 60), now), (-3600, 0), "ending later: relative");
        assert_eq!(as_requested((now - 7200, now - 3600), now), (now - 7200, now - 3600), "past: absolute");
        assert_eq!(as_requested((now, now + 60), now), (now, now + 60), "starting now: absolute");
        // Days a month does not have are refused, not rolled into the next.
        assert_eq!(parse_rfc3339("2026-02-31T10:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-04-31T10:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-02-29T10:00:00Z"), None);
        assert!(parse_rfc3339("2028-02-29T10:00:00Z").is_some(), "a leap day");
        assert!(parse_rfc3339("2026-12-31T23:59:59Z").is_some());
        assert_eq!(round(1.23456, 4), json!(1.235));
        assert_eq!(round(123456.0, 2), json!(120000.0));
        assert_eq!(round(f64::NAN, 4), Value::Null);
    }

    #[test]
    fn pattern_text_splits_words_on_spaces() {
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        // First match wins (spec 3.0): the negation goes first.
        let p = pattern_text(&args(json!({"pattern": "!web-test* web*"})), "pattern", "*").expect("pattern");
        assert!(p.matches("web-1") && !p.matches("web-test-2") && !p.matches("db-1"));
        let p = pattern_text(&args(json!({"pattern": "web-1 db-1"})), "pattern", "*").expect("pattern");
        assert!(p.matches("web-1") && p.matches("db-1") && !p.matches("web-2"));
        let p = pattern_text(&args(json!({"pattern": "  "})), "pattern", "*").expect("blank is the default");
        assert!(p.matches("anything"));
        assert!(pattern_text(&args(json!({})), "pattern", "*").expect("default").matches("db-1"));
    }

    proptest! {
        #[test]
        fn time_parsers_never_panic(s in "\\PC{0,40}", n in any::<i64>()) {
            let _ = parse_rfc3339(&s);
            let _ = duration(&s);
            let _ = window(Some(&json!({"after": s, "before": n})), 1_800_000_000, 900, MAX_WINDOW_S, "w");
            let _ = window(Some(&json!({"after": n})), 1_800_000_000, 900, MAX_WINDOW_S, "w");
        }
    }
}
