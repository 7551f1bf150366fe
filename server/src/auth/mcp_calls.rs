//! The `tools/call`s each token has in flight: at most [`PER_TOKEN`] at once
//! (a further call waits up to [`WAIT`] for one to end, then is refused),
//! and `notifications/cancelled` finds a call by its request id.
//!
//! One mutex guards the table; it is held only to look up, insert or
//! remove an entry, never across an await or a tool's work. A call's entry
//! lives exactly as long as its [`CallGuard`], so an abandoned call (its
//! future dropped with the connection) frees its place too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

/// Calls one token may have in flight (spec mcp.md: 4).
pub const PER_TOKEN: usize = 4;
/// How long a call over the cap waits for a place.
pub const WAIT: Duration = Duration::from_secs(1);

/// One call in flight: entry number, request id as JSON text, cancel flag.
type Entry = (u64, String, Arc<AtomicBool>);

#[derive(Debug, Default)]
pub struct Calls {
    /// token id -> its calls in flight.
    table: Mutex<HashMap<String, Vec<Entry>>>,
    next: std::sync::atomic::AtomicU64,
    freed: Notify,
}

/// A call's place; dropping it frees the place.
#[derive(Debug)]
pub struct CallGuard {
    calls: Arc<Calls>,
    token: String,
    entry: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Ok(mut t) = self.calls.table.lock() {
            if let Some(list) = t.get_mut(&self.token) {
                list.retain(|(e, _, _)| *e != self.entry);
                if list.is_empty() {
                    t.remove(&self.token);
                }
            }
        }
        self.calls.freed.notify_waiters();
    }
}

impl Calls {
    fn try_enter(self: &Arc<Self>, token: &str, id: &str, flag: &Arc<AtomicBool>) -> Option<CallGuard> {
        let mut t = self.table.lock().ok()?;
        let list = t.entry(token.to_string()).or_default();
        if list.len() >= PER_TOKEN {
            return None;
        }
        let entry = self.next.fetch_add(1, Ordering::Relaxed);
        list.push((entry, id.to_string(), flag.clone()));
        Some(CallGuard { calls: self.clone(), token: token.to_string(), entry })
    }

    /// A place for call `id` of `token`, whose cancel flag is `flag`;
    /// `None` when the token still has [`PER_TOKEN`] calls after `wait`.
    pub async fn enter(
        self: &Arc<Self>,
        token: &str,
        id: &Value,
        flag: &Arc<AtomicBool>,
        wait: Duration,
    ) -> Option<CallGuard> {
        let id = id.to_string();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a place freed between the
            // check and the wait still wakes this call.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(g) = self.try_enter(token, &id, flag) {
                return Some(g);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// Cancels `token`'s in-flight calls with request id `id`; how many.
    pub fn cancel(&self, token: &str, id: &Value) -> usize {
        let id = id.to_string();
        let Ok(t) = self.table.lock() else { return 0 };
        t.get(token)
            .map(|list| {
                list.iter().filter(|(_, i, _)| *i == id).map(|(_, _, f)| f.store(true, Ordering::Relaxed)).count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    #[tokio::test]
    async fn a_fifth_call_waits_for_a_place_then_is_refused() {
        let c = Arc::new(Calls::default());
        let mut held = Vec::new();
        for i in 0..PER_TOKEN {
            held.push(c.enter("t", &json!(i), &flag(), WAIT).await.expect("a place"));
        }
        let short = Duration::from_millis(50);
        assert!(c.enter("t", &json!(9), &flag(), short).await.is_none(), "a fifth call is refused");
        assert!(c.enter("u", &json!(9), &flag(), short).await.is_some(), "other tokens have their own places");
        // A place freed while the fifth waits lets it in.
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.enter("t", &json!(10), &flag(), WAIT).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        held.pop();
        assert!(waiter.await.expect("task"), "the waiting call got the freed place");
    }

    #[tokio::test]
    async fn cancel_finds_the_call_by_token_and_request_id() {
        let c = Arc::new(Calls::default());
        let (a, b, other) = (flag(), flag(), flag());
        let _ga = c.enter("t", &json!(7), &a, WAIT).await.expect("place");
        let _gb = c.enter("t", &json!("7"), &b, WAIT).await.expect("place");
        let _go = c.enter("u", &json!(7), &other, WAIT).await.expect("place");
        assert_eq!(c.cancel("t", &json!(7)), 1);
        assert!(a.load(Ordering::Relaxed), "request 7 of token t is cancelled");
        assert!(!b.load(Ordering::Relaxed), "the string id \"7\" is another request");
        assert!(!other.load(Ordering::Relaxed), "another token's request 7 is not touched");
        drop(_ga);
        assert_eq!(c.cancel("t", &json!(7)), 0, "an ended call is gone");
    }
}
