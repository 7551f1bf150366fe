//! `GET /api/v1/stream/nodes`: the live stream as Server-Sent Events.
//! Each tick is an `event: tick` whose data is the tick's JSON; the end is
//! an `event: close` with `{"reason"}` (when the queue still has room for
//! it). A slow consumer's connection is cut ([`crate::serve::ConnKill`]).

use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::subscribe::from_query;
use super::{Beat, End, Session};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::routes::data::pairs;
use crate::serve::ConnKill;
use crate::state::AppState;

pub async fn nodes(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    kill: Option<Extension<ConnKill>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = from_query(&pairs(q)?, &st.stream.contexts).map_err(ApiError::BadRequest)?;
    let mut session = Session::new(st, me, p.sub, p.ticks);
    let (tx, rx) = session.queue::<Event>();
    tokio::spawn(async move {
        let end = loop {
            match session.beat().await {
                Beat::End(e) => break e,
                Beat::Tick => match session.next_message().await {
                    Ok(msg) => {
                        let bytes = msg.len();
                        if let Err(e) = tx.push(Event::default().event("tick").data(msg), bytes) {
                            break e;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "stream tick failed"),
                },
            }
        };
        tracing::debug!(token = session.token_id(), reason = end.reason(), "SSE stream ended");
        let close = end.message();
        let bytes = close.len();
        let _ = tx.push(Event::default().event("close").data(close), bytes);
        if end == End::SlowConsumer {
            if let Some(Extension(k)) = kill {
                k.kill();
            }
        }
    });
    let events =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok::<Event, Infallible>(e), rx)) },
        );
    Ok(Sse::new(events).into_response())
}
