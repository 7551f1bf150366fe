//! Reading request bodies: a size cap that answers 413 as JSON, and a time
//! limit (408) so slow senders cannot hold a connection.

use axum::body::{to_bytes, Body, Bytes};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use futures_util::StreamExt;

use crate::error::ApiError;

pub async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(timeout, read_limited(headers, body, limit)).await.map_err(|_| {
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
const DRAIN_SECS: u64 = 60;

async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limit as u64 {
            if n <= DRAIN_MAX {
                tokio::spawn(tokio::time::timeout(std::time::Duration::from_secs(DRAIN_SECS), drain(body)));
            }
            return Err(ApiError::BodyTooLarge { size: n, limit: limit as u64 });
        }
    }
    to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { size: declared.unwrap_or(limit as u64 + 1), limit: limit as u64 })
}

/// Reads `body` to its end (or its first error), keeping nothing.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// Parses JSON, naming the path of the first bad element. Path tracking
/// costs about a third of a large ingest batch's parse, so a body is parsed
/// plainly first and again with tracking only when it is bad.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::BadJson { path: (path != ".").then_some(path), message: inner.to_string() }
    })
}
