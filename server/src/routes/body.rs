//! Reading request bodies: a size cap that answers 413 as JSON, and a time
//! limit (408) so slow senders cannot hold a connection.

use axum::body::{to_bytes, Body, Bytes};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;

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

async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(ApiError::BodyTooLarge { size: n, limit: limit as u64 });
        }
    }
    to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { size: declared.unwrap_or(limit as u64 + 1), limit: limit as u64 })
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
