//! Reading request bodies: a size cap that answers 413 as JSON, and a time
//! limit (408) so slow senders cannot hold a connection.

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::HeaderMap;
use futures_util::StreamExt;

use crate::error::{ApiError, BodyKind};

/// The body, at most `limit` bytes of it (413 past that, its hint chosen by
/// `kind`), within `timeout` (408).
pub async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    (limit, kind): (usize, BodyKind),
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(timeout, read_limited(headers, body, limit, kind)).await.map_err(|_| {
        ApiError::RequestTimeout(format!("the request body did not arrive within {} s", timeout.as_secs()))
    })?
}

/// Bytes of a body declared over the limit that are still read (and
/// dropped) after the 413 has gone out. Most HTTP clients send the whole
/// body before they read an answer; if the server stopped reading at once,
/// they would see a reset connection (a broken pipe) instead of the 413
/// that says why. Past this many bytes or [`DRAIN_SECS`], the connection
/// is closed after all.
const DRAIN_MAX: u64 = 256 << 20;
/// The most a body's declared length reserves before its bytes arrive.
const RESERVE_AHEAD: u64 = 8 << 20;
const DRAIN_SECS: u64 = 60;

async fn read_limited(headers: &HeaderMap, body: Body, limit: usize, kind: BodyKind) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    // A compressed body would otherwise fail as "invalid JSON" (or Arrow).
    // Read and dropped, as a body over the limit is, so the client sees
    // the 415 rather than a reset connection.
    if let Some(enc) = headers.get(CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim();
        if !enc.eq_ignore_ascii_case("identity") {
            if declared.is_none_or(|n| n <= DRAIN_MAX) {
                tokio::spawn(tokio::time::timeout(std::time::Duration::from_secs(DRAIN_SECS), drain(body)));
            }
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding '{enc}' is not supported: send the body uncompressed"
            )));
        }
    }
    if let Some(n) = declared {
        if n > limit as u64 {
            if n <= DRAIN_MAX {
                tokio::spawn(tokio::time::timeout(std::time::Duration::from_secs(DRAIN_SECS), drain(body)));
            }
            return Err(ApiError::BodyTooLarge { size: n, limit: limit as u64, kind });
        }
    }
    let too_large = |size: u64| ApiError::BodyTooLarge { size: declared.unwrap_or(size), limit: limit as u64, kind };
    let mut stream = body.into_data_stream();
    // Each chunk is copied out as it comes and dropped: a chunk is a slice
    // of the connection's read buffer and keeps all of it alive, so holding
    // the chunks until the end (as a collect does) let a sender trickling
    // one byte per packet pin kilobytes per byte sent. Memory is at most
    // twice the bytes received, and those are capped. A body of one chunk
    // (most bodies that arrive at once) is not copied.
    let mut first: Option<Bytes> = None;
    let mut copied: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the request body could not be read: {e}")))?;
        let held = first.as_ref().map_or(copied.len(), Bytes::len);
        if held + chunk.len() > limit {
            return Err(too_large((held + chunk.len()) as u64));
        }
        match first.take() {
            None if copied.is_empty() => first = Some(chunk),
            held => {
                if let Some(f) = held {
                    // Sized once for the declared body, up to a bound: a
                    // bulk batch is then copied once, not regrown, and a
                    // declared size never reserves more than that bound
                    // ahead of the bytes that arrive.
                    let want = declared.unwrap_or(0).min(limit as u64).min(RESERVE_AHEAD) as usize;
                    copied.reserve(want.max(f.len() + chunk.len()));
                    copied.extend_from_slice(&f);
                }
                copied.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(copied)))
}

/// Reads `body` to its end (or its first error), keeping nothing.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// Parses JSON, naming the path of the first bad element. Path tracking
/// costs about a third of a large ingest batch's parse, so a body is parsed
/// plainly first and again with tracking only when it is bad.
/// Every body is an object: serde would also read a struct from an array
/// of its fields in order (`[]` an empty batch), which no client means.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::BadJson { path: None, message: "the body must be a JSON object, not an array".into() });
    }
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = known_path(e.path());
        ApiError::BadJson { path, message: e.into_inner().to_string() }
    })?;
    // The document read well, so the plain parse failed on what follows it
    // (a second batch, say): refused whole, never half read.
    de.end()
        .map_err(|e| ApiError::BadJson { path: None, message: format!("one JSON document per body: {e} after it") })?;
    Ok(v)
}

/// The path to the element at fault, without the trailing segments the
/// parser could not name (a key that did not parse is `?`): `None` when
/// nothing named is left (the whole body). The message has the line and
/// column.
fn known_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let named = segments.iter().rposition(|s| !matches!(s, Segment::Unknown)).map_or(0, |i| i + 1);
    // Written as the path's own Display writes it (`a[1].b`).
    let mut out = String::new();
    for (i, s) in segments[..named].iter().enumerate() {
        if i > 0 && !matches!(s, Segment::Seq { .. }) {
            out.push('.');
        }
        out.push_str(&s.to_string());
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn path_of(body: &str) -> Option<String> {
        match parse_json::<std::collections::BTreeMap<String, Vec<u32>>>(body.as_bytes()) {
            Err(ApiError::BadJson { path, .. }) => path,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn bad_json_names_a_path_only_where_there_is_one() {
        assert_eq!(path_of(r#"{"a": [1, "x"]}"#).as_deref(), Some("a[1]"));
        assert_eq!(path_of("{nope"), None, "a top-level key that does not parse");
        assert_eq!(path_of("nope"), None);
        let nested = |body: &str| match parse_json::<std::collections::BTreeMap<String, Value>>(body.as_bytes()) {
            Err(ApiError::BadJson { path, .. }) => path,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(nested(r#"{"a": {nope}}"#).as_deref(), Some("a"), "a key that does not parse, inside a");
        assert_eq!(nested(r#"{"a": [1, {nope}]}"#).as_deref(), Some("a[1]"));
        assert!(matches!(parse_json::<Value>(b"[1]"), Err(ApiError::BadJson { path: None, .. })));
    }
}
