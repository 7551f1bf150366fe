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

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::queue::TickRx;
use super::subscribe::{from_message, from_query};
use super::{Beat, End, Session};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::routes::data::pairs;
use crate::state::AppState;

/// How long the close frame may take to go out.
pub const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Largest client message accepted; a larger one ends the stream (1009).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;
/// Largest message the transport reads whole. Between the two, the
/// message is read and the stream ends with 1009 and a clean close; past
/// this the transport stops reading mid-message, and closing a socket
/// with unread bytes sends a reset, which can discard the close frame
/// before the client reads it.
const MAX_READ_MESSAGE: usize = 1 << 20;

pub async fn nodes(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    RawQuery(q): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let p = from_query(&pairs(q)?, &st.stream.contexts).map_err(ApiError::BadRequest)?;
    if let Err(WebSocketUpgradeRejection::InvalidWebSocketVersionHeader(_)) = &upgrade {
        // RFC 6455 4.4: a version the server does not speak is a 426
        // naming the one it does.
        let body = json!({"error": "unsupported WebSocket version: this server speaks version 13", "status": 426});
        let mut r = (StatusCode::UPGRADE_REQUIRED, axum::Json(body)).into_response();
        r.headers_mut().insert("Sec-WebSocket-Version", HeaderValue::from_static("13"));
        return Ok(r);
    }
    let upgrade = upgrade.map_err(|e| {
        ApiError::BadRequest(format!(
            "this endpoint speaks WebSocket ({e}); for plain HTTP use /api/v1/stream/nodes (Server-Sent Events)"
        ))
    })?;
    let session = Session::new(st, me, p.sub, p.ticks);
    Ok(upgrade
        .max_message_size(MAX_READ_MESSAGE)
        .max_frame_size(MAX_READ_MESSAGE)
        .max_write_buffer_size(4 << 20)
        .on_upgrade(move |socket| run(socket, session)))
}

/// Sends the close frame by `deadline`; true if it went out. A stream
/// that ran its course (`ticks=N`) first sends the ticks still queued: the
/// last one is queued just before the session ends, and `ticks=1` would
/// otherwise send nothing. Other ends (a slow consumer, a revoked token)
/// close at once.
async fn close(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut TickRx<Message>,
    end: &End,
    deadline: Instant,
) -> bool {
    if matches!(end, End::ClientClosed) {
        // The protocol layer queued the reply to the client's close frame
        // when it read it, and refuses another close frame after it: a
        // flush writes the reply (and then reports the connection closed).
        return tokio::time::timeout_at(deadline, sink.flush()).await.is_ok();
    }
    let frame = CloseFrame { code: end.ws_code(), reason: end.reason().into() };
    let flush = async {
        if matches!(end, End::Done) {
            while let Some(m) = rx.try_recv() {
                if sink.send(m).await.is_err() {
                    return false;
                }
            }
        }
        sink.send(Message::Close(Some(frame))).await.is_ok()
    };
    tokio::time::timeout_at(deadline, flush).await.unwrap_or(false)
}

/// Sends queued messages until the queue closes or `stop` says why to end;
/// true if it sent the close frame. Everything after `stop` (a send in
/// progress, queued ticks, the close frame) shares one [`CLOSE_WAIT`].
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: TickRx<Message>,
    mut answers: mpsc::Receiver<Message>,
    mut stop: oneshot::Receiver<End>,
) -> bool {
    loop {
        let msg = tokio::select! {
            biased;
            end = &mut stop => {
                let Ok(end) = end else { return false };
                return close(&mut sink, &mut rx, &end, Instant::now() + CLOSE_WAIT).await;
            }
            Some(m) = answers.recv() => m,
            m = rx.recv() => match m {
                Some(m) => m,
                None => return false,
            },
        };
        // The send races `stop` so that a stalled reader cannot hold the
        // writer; a stream that ran its course finishes the send instead.
        let stopped = {
            let sending = sink.send(msg);
            tokio::pin!(sending);
            tokio::select! {
                biased;
                end = &mut stop => {
                    let deadline = Instant::now() + CLOSE_WAIT;
                    let end = end.ok();
                    if matches!(end, Some(End::Done)) {
                        let _ = tokio::time::timeout_at(deadline, &mut sending).await;
                    }
                    Some((end, deadline))
                }
                sent = &mut sending => {
                    if sent.is_err() {
                        return false;
                    }
                    None
                }
            }
        };
        if let Some((end, deadline)) = stopped {
            let Some(end) = end else { return false };
            return close(&mut sink, &mut rx, &end, deadline).await;
        }
    }
}

/// Why a read from the client failed, said in the close frame: a message
/// over the limit (1009), text that is not UTF-8 (1007), a frame the
/// protocol forbids (1002), or a connection that is gone (a drop without
/// a closing handshake is the usual way a client leaves).
fn inbound_error(e: axum::Error) -> End {
    use tungstenite::error::ProtocolError;
    match e.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::TooBig,
        Some(tungstenite::Error::Utf8(_)) => End::BadText,
        Some(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => End::ClientGone,
        Some(tungstenite::Error::Protocol(_)) => End::Broken,
        _ => End::ClientGone,
    }
}

/// Answers to client messages waiting to be written: their own queue, so
/// that a burst of messages never fills the ticks' queue (whose overflow
/// means a slow consumer). While it is full, client messages are not read.
const ANSWERS: usize = 16;

async fn run(socket: WebSocket, mut session: Session) {
    let (sink, mut inbound) = socket.split();
    let (tx, rx) = session.queue::<Message>();
    let (answer_tx, answer_rx) = mpsc::channel::<Message>(ANSWERS);
    let (stop_tx, stop_rx) = oneshot::channel::<End>();
    let writing = tokio::spawn(writer(sink, rx, answer_rx, stop_rx));
    // An answer that found its queue full: sent once there is room, and
    // until then no further client message is read (the beat, and with it
    // revocation, goes on meanwhile).
    let mut pending: Option<Message> = None;
    let end = loop {
        tokio::select! {
            beat = session.beat() => match beat {
                Beat::End(e) => break e,
                Beat::Tick => match session.next_message().await {
                    Ok(msg) => {
                        let bytes = msg.len();
                        if let Err(e) = tx.push(Message::Text(msg.into()), bytes) { break e }
                    }
                    Err(e) => tracing::warn!(error = %e, "stream tick failed"),
                },
            },
            permit = answer_tx.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(answer)) => permit.send(answer),
                _ => break End::ClientGone,
            },
            got = inbound.next(), if pending.is_none() => match got {
                None => break End::ClientGone,
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Err(e)) => break inbound_error(e),
                Some(Ok(Message::Text(text))) if text.len() > MAX_CLIENT_MESSAGE => break End::TooBig,
                Some(Ok(Message::Binary(b))) if b.len() > MAX_CLIENT_MESSAGE => break End::TooBig,
                Some(Ok(Message::Text(text))) => {
                    let answer = match from_message(text.as_str(), session.default_contexts()) {
                        Ok(sub) => {
                            session.sub = sub;
                            json!({"type": "subscribed"})
                        }
                        Err(e) => json!({"type": "error", "error": e}),
                    };
                    match answer_tx.try_send(Message::Text(answer.to_string().into())) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => pending = Some(m),
                        Err(mpsc::error::TrySendError::Closed(_)) => break End::ClientGone,
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    };
    tracing::debug!(token = session.token_id(), reason = end.reason(), "WebSocket stream ended");
    let _ = stop_tx.send(end);
    // The writer gives up on the close frame after CLOSE_WAIT; past that
    // (and a margin) it is aborted, which drops the socket's sending half.
    let abort = writing.abort_handle();
    let closed = match tokio::time::timeout(CLOSE_WAIT + Duration::from_millis(200), writing).await {
        Ok(Ok(sent)) => sent,
        _ => {
            abort.abort();
            false
        }
    };
    // Once the close frame is out, what the client still sends (its close
    // reply) is read before the socket closes: a socket closed with unread
    // bytes sends a reset, and the client may lose the close frame with it.
    if closed {
        let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = inbound.next().await {} }).await;
    }
}
