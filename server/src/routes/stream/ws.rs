//! `GET /api/v1/ws/nodes`: the live stream over a WebSocket. Server to
//! client: `{"type": "tick", ...}` text messages, `{"type": "subscribed"}`
//! and `{"type": "error"}` answers to client messages, and a close frame
//! with the reason. Client to server: `{"type": "subscribe", "contexts",
//! "nodes"}` replaces the subscription from the next tick on.
//!
//! A writer task owns the socket's sending half and drains the bounded
//! queue; when the stream ends it sends the close frame, giving up after
//! [`CLOSE_WAIT`] when the peer does not read (a stalled reader).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::subscribe::{from_message, from_query};
use super::{push, Beat, End, Session};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::routes::data::pairs;
use crate::state::AppState;

/// How long the close frame may take to go out.
pub const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Largest client message accepted.
const MAX_CLIENT_MESSAGE: usize = 64 << 10;

pub async fn nodes(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let p = from_query(&pairs(q)?, &st.stream.contexts).map_err(ApiError::BadRequest)?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::BadRequest(format!(
            "this endpoint speaks WebSocket ({e}); for plain HTTP use /api/v1/stream/nodes (Server-Sent Events)"
        ))
    })?;
    let session = Session::new(st, me, p.sub, p.ticks);
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .max_write_buffer_size(4 << 20)
        .on_upgrade(move |socket| run(socket, session)))
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, end: &End) {
    let frame = CloseFrame { code: end.ws_code(), reason: end.reason().into() };
    let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
}

/// Sends queued messages until the queue closes or `stop` says why to end.
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    mut stop: oneshot::Receiver<End>,
) {
    loop {
        let msg = tokio::select! {
            biased;
            end = &mut stop => {
                if let Ok(end) = end {
                    close(&mut sink, &end).await;
                }
                return;
            }
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
        };
        tokio::select! {
            biased;
            end = &mut stop => {
                if let Ok(end) = end {
                    close(&mut sink, &end).await;
                }
                return;
            }
            sent = sink.send(msg) => if sent.is_err() { return },
        }
    }
}

/// How long an answer to a client message may wait for room in the
/// queue before the client counts as not reading.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

async fn answer_client(tx: &mpsc::Sender<Message>, answer: String) -> Result<(), End> {
    match tokio::time::timeout(ANSWER_WAIT, tx.send(Message::Text(answer.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientGone),
        Err(_) => Err(End::SlowConsumer),
    }
}

/// Why a read from the client failed: a message over the limit (the
/// reader names its size), a frame the protocol forbids, or a connection
/// that is gone. Said in the close frame, not as "client closed".
fn inbound_error(e: &axum::Error) -> End {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") {
        End::TooBig
    } else if text.contains("Protocol") || text.contains("protocol") {
        End::Broken
    } else {
        End::ClientGone
    }
}

async fn run(socket: WebSocket, mut session: Session) {
    let (sink, mut inbound) = socket.split();
    let (tx, rx) = mpsc::channel::<Message>(session.queue());
    let (stop_tx, stop_rx) = oneshot::channel::<End>();
    let writing = tokio::spawn(writer(sink, rx, stop_rx));
    let end = loop {
        tokio::select! {
            beat = session.beat() => match beat {
                Beat::End(e) => break e,
                Beat::Tick => match session.next_message().await {
                    Ok(msg) => if let Err(e) = push(&tx, Message::Text(msg.into())) { break e },
                    Err(e) => tracing::warn!(error = %e, "stream tick failed"),
                },
            },
            got = inbound.next() => match got {
                None | Some(Ok(Message::Close(_))) => break End::ClientGone,
                Some(Err(e)) => break inbound_error(&e),
                Some(Ok(Message::Text(text))) => {
                    let answer = match from_message(text.as_str(), session.default_contexts()) {
                        Ok(sub) => {
                            session.sub = sub;
                            json!({"type": "subscribed"})
                        }
                        Err(e) => json!({"type": "error", "error": e}),
                    };
                    // An answer waits for room (a client may send a burst
                    // of messages); the slow-consumer rule is for ticks.
                    if let Err(e) = answer_client(&tx, answer.to_string()).await {
                        break e;
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    };
    tracing::debug!(token = session.token_id(), reason = end.reason(), "WebSocket stream ended");
    let _ = stop_tx.send(end);
    // The writer gives up on the close frame after CLOSE_WAIT; dropping it
    // (and `inbound`) closes the connection.
    let _ = tokio::time::timeout(CLOSE_WAIT + Duration::from_millis(200), writing).await;
}
