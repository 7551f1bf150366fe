//! Answers built but not yet taken by their clients, counted against one
//! byte budget. A query's answer is in memory whole before its first byte
//! goes out, and it stays there until the client has read it: a client
//! that asks for large answers and never reads them (or reads one byte a
//! second) would otherwise keep each in memory after its query slot is
//! free, and a few dozen such clients pass any memory bound.
//!
//! Invariant: the bytes of every answer of at least [`TRACKED`] bytes that
//! hyper still holds are counted in `held`; an answer is counted when it
//! leaves the handler and uncounted when hyper drops its bytes (written
//! out, or the connection closed, by the client or by the send timeout of
//! [`crate::serve`]). An answer that would take `held` past the budget is
//! replaced by a 503, unless nothing else is held (so one answer larger
//! than the budget, which the query's own memory limit allowed, still
//! goes out). Smaller answers are not counted: they are bounded by the
//! connection limit times [`TRACKED`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Answers smaller than this are not counted.
pub const TRACKED: u64 = 256 << 10;

/// The budget and what answers hold of it now.
#[derive(Debug)]
pub struct Unsent {
    held: AtomicU64,
    budget: u64,
}

/// An answer's bytes and their share of the budget, given back on drop.
struct Held {
    bytes: Bytes,
    unsent: Arc<Unsent>,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.unsent.held.fetch_sub(self.bytes.len() as u64, Ordering::AcqRel);
    }
}

impl Unsent {
    pub fn new(budget: u64) -> Arc<Self> {
        Arc::new(Unsent { held: AtomicU64::new(0), budget })
    }

    /// Bytes of answers built and not yet taken by their clients.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// `resp`, with its body counted until sent if it is large; a 503 in
    /// its place when the budget has no room for it. Streamed bodies (no
    /// exact size: SSE, exports) pass as they are.
    pub async fn track(self: &Arc<Self>, resp: Response) -> Response {
        let Some(len) = resp.body().size_hint().exact().filter(|&n| n >= TRACKED) else { return resp };
        let before = self.held.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.budget {
            self.held.fetch_sub(len, Ordering::AcqRel);
            let mib = |b: u64| b.div_ceil(1 << 20);
            return ApiError::AnswersWaiting { waiting_mib: mib(before), budget_mib: mib(self.budget), retry_after: 1 }
                .into_response();
        }
        let (parts, body) = resp.into_parts();
        // A body of known size is one frame (axum's `Full`): no copy.
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => {
                // Counted at the size the body declared; `Held` gives back
                // what it holds (the same, for a body of one frame). One
                // step, so the count never dips below what is held.
                let got = bytes.len() as u64;
                if got > len {
                    self.held.fetch_add(got - len, Ordering::AcqRel);
                } else if got < len {
                    self.held.fetch_sub(len - got, Ordering::AcqRel);
                }
                let held = Held { bytes, unsent: self.clone() };
                Response::from_parts(parts, Body::from(Bytes::from_owner(held)))
            }
            Err(e) => {
                self.held.fetch_sub(len, Ordering::AcqRel);
                ApiError::Internal(format!("reading an answer's body: {e}")).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Response {
        Response::new(Body::from(vec![b'x'; n]))
    }

    #[tokio::test]
    async fn large_answers_hold_the_budget_until_dropped_small_ones_pass() {
        let u = Unsent::new(3 * TRACKED);
        let small = u.track(answer(TRACKED as usize - 1)).await;
        assert_eq!(u.held(), 0, "a small answer is not counted");
        let a = u.track(answer(2 * TRACKED as usize)).await;
        assert_eq!(u.held(), 2 * TRACKED);
        // Would pass the budget while another is held: a 503.
        let refused = u.track(answer(2 * TRACKED as usize)).await;
        assert_eq!(refused.status(), 503);
        assert!(refused.headers().contains_key("retry-after"));
        let text = axum::body::to_bytes(refused.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("waiting for their clients to read them"), "{text}");
        assert_eq!(u.held(), 2 * TRACKED, "the refused answer holds nothing");
        // The held answer reads back whole; once its bytes are dropped, room again.
        let bytes = axum::body::to_bytes(a.into_body(), usize::MAX).await.expect("body");
        assert_eq!(bytes.len(), 2 * TRACKED as usize);
        assert!(bytes.iter().all(|&b| b == b'x'));
        assert_eq!(u.held(), 2 * TRACKED, "held while its bytes live");
        drop(bytes);
        assert_eq!(u.held(), 0);
        // Alone, an answer larger than the whole budget still goes out.
        let big = u.track(answer(4 * TRACKED as usize)).await;
        assert_eq!(big.status(), 200);
        assert_eq!(u.held(), 4 * TRACKED);
        drop(big);
        drop(small);
        assert_eq!(u.held(), 0);
    }
}
