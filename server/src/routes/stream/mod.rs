//! Live streams of node snapshots: `GET /api/v1/ws/nodes` (WebSocket) and
//! `GET /api/v1/stream/nodes` (Server-Sent Events). Every tick (1 s) a
//! connection gets, for each node its token may see, the node's online
//! state and the latest values of the subscribed contexts
//! (`strata_engine::views::snapshot`).
//!
//! Invariants:
//! - Per connection at most `StreamConfig::queue` (default 4) ticks wait to
//!   be written, and at most `StreamConfig::queue_bytes` of them (default
//!   16 MiB, or one tick where one is larger: [`queue`]). When a tick finds
//!   the queue full the reader is too slow: the stream ends with the reason
//!   `slow consumer` (WebSocket close 1013, SSE `close` event where it still
//!   fits) and the connection is cut, so a stalled reader costs at most that
//!   queue, the tick being written and the socket's buffers.
//! - The token's revocation (the same `Inflight` flag queries use) or expiry
//!   ends the stream within [`CHECK`] (100 ms) plus one write: close 1008.
//!   So does the server's shutdown: close 1001 (going away), and the SSE
//!   response ends, so it does not hold the exit for the grace period.
//! - Each tick reads the engine under its read lock for one snapshot only
//!   (on a blocking thread); nothing is held between ticks. Connections of
//!   the same view share a tick period's snapshot ([`shared`]), and at most one
//!   build per core runs at once.

pub mod queue;
pub mod shared;
pub mod sse;
pub mod subscribe;
pub mod ws;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use strata_engine::views::snapshot::{snapshot, Subscription};
use tokio::time::{interval, Interval, MissedTickBehavior};

use crate::auth::{now_secs, Principal};
use crate::error::ApiError;
use crate::state::AppState;

/// How often a stream looks at its token.
pub const CHECK: Duration = Duration::from_millis(100);

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Revoked,
    Expired,
    /// The queue of unwritten ticks was full.
    SlowConsumer,
    /// The client closed the connection.
    ClientGone,
    /// The client sent a WebSocket close frame: the reply, already queued
    /// by the protocol layer, is sent as the connection ends.
    ClientClosed,
    /// `ticks=N` reached.
    Done,
    /// A client message over the size limit (WebSocket).
    TooBig,
    /// A client frame the WebSocket protocol does not allow.
    Broken,
    /// A client text message that is not UTF-8.
    BadText,
    /// The server is shutting down.
    Shutdown,
}

impl End {
    pub fn reason(&self) -> &'static str {
        match self {
            End::Revoked => "token revoked",
            End::Expired => "token expired",
            End::SlowConsumer => "slow consumer: ticks were not read in time",
            End::ClientGone | End::ClientClosed => "client closed",
            End::Done => "done",
            End::TooBig => "message too big: client messages are at most 64 KiB",
            End::Broken => "protocol error in a client frame",
            End::BadText => "a client text message is not UTF-8",
            End::Shutdown => "server shutting down",
        }
    }

    /// The WebSocket close code (RFC 6455 / IANA registry).
    pub fn ws_code(&self) -> u16 {
        match self {
            End::Revoked | End::Expired => 1008,
            End::SlowConsumer => 1013,
            End::ClientGone | End::ClientClosed | End::Done => 1000,
            End::TooBig => 1009,
            End::Broken => 1002,
            End::BadText => 1007,
            End::Shutdown => 1001,
        }
    }

    pub fn message(&self) -> String {
        json!({"type": "close", "reason": self.reason(), "code": self.ws_code()}).to_string()
    }
}

/// One subscriber: its token, its subscription, its clock.
pub struct Session {
    st: AppState,
    me: Principal,
    revoked: Arc<AtomicBool>,
    pub sub: Subscription,
    ticks: Option<u64>,
    sent: u64,
    tick: Interval,
    check: Interval,
}

/// What the clock says.
pub enum Beat {
    Tick,
    End(End),
}

impl Session {
    pub fn new(st: AppState, me: Principal, sub: Subscription, ticks: Option<u64>) -> Session {
        let revoked = st.auth.inflight.register(&me.token_id);
        let mut tick = interval(st.stream.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut check = interval(CHECK);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Session { st, me, revoked, sub, ticks, sent: 0, tick, check }
    }

    /// The token's state, `Some` when the stream must end.
    fn dead(&self) -> Option<End> {
        if self.st.stream.closing.load(Ordering::Relaxed) {
            Some(End::Shutdown)
        } else if self.revoked.load(Ordering::Relaxed) {
            Some(End::Revoked)
        } else if self.me.expires_at.is_some_and(|x| now_secs() >= x) {
            Some(End::Expired)
        } else {
            None
        }
    }

    /// Waits for the next tick, or for the token to die.
    pub async fn beat(&mut self) -> Beat {
        if self.ticks.is_some_and(|n| self.sent >= n) {
            return Beat::End(End::Done);
        }
        loop {
            if let Some(e) = self.dead() {
                return Beat::End(e);
            }
            tokio::select! {
                _ = self.tick.tick() => return Beat::Tick,
                _ = self.check.tick() => {}
            }
        }
    }

    /// The next tick's JSON message, around the tick period's snapshot
    /// shared with every connection of the same view ([`shared`]).
    pub async fn next_message(&mut self) -> Result<String, ApiError> {
        self.sent += 1;
        let interval_ms = self.st.stream.interval.as_millis();
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let period = u64::try_from(ms / interval_ms.max(1)).unwrap_or(u64::MAX);
        let cell = self.st.stream.shared.cell(period, &self.sub, self.me.allow.as_ref());
        let (t, nodes) = cell.get_or_try_init(|| self.build()).await?;
        Ok(format!(r#"{{"type":"tick","seq":{},"t":{t},"interval_ms":{interval_ms},"nodes":{nodes}}}"#, self.sent))
    }

    /// The snapshot now, with the engine's time, as a JSON array: built
    /// after a turn of the server's build permits
    /// ([`crate::StreamConfig::builds`]) and written straight from it (no
    /// JSON tree between).
    async fn build(&self) -> Result<(i64, Arc<str>), ApiError> {
        let (st, sub, allow) = (self.st.clone(), self.sub.clone(), self.me.allow.clone());
        let permit = self.st.stream.builds.clone().acquire_owned().await;
        let permit = permit.map_err(|e| ApiError::Internal(format!("stream tick builds: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _building = permit;
            let now = st.engine.now();
            let tiers = st.engine.config().limits.tiers;
            let nodes = {
                let guard = st.engine.read()?;
                snapshot(&guard.catalog, &guard.store, &sub, allow.as_ref(), now, tiers)
            };
            let json = serde_json::to_string(&nodes).map_err(|e| ApiError::Internal(format!("stream tick: {e}")))?;
            Ok((now, Arc::from(json)))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("stream tick task failed: {e}")))?
    }

    /// The connection's queue of unwritten ticks.
    pub fn queue<T>(&self) -> (queue::TickTx<T>, queue::TickRx<T>) {
        queue::channel(self.st.stream.queue, self.st.stream.queue_bytes)
    }

    pub fn default_contexts(&self) -> &strata_engine::index::SimplePattern {
        &self.st.stream.contexts
    }

    pub fn token_id(&self) -> &str {
        &self.me.token_id
    }
}
