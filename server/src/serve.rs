//! The accept loop. axum's own `serve` has no header-read timeout, so
//! connections are driven by hyper directly: a client that dribbles its
//! headers (slow loris) is cut off after `header_read`. Body and request
//! time limits live in `BodyLimits` (see `routes::body`, `routes::router`).
//! On shutdown the listener stops accepting and every connection is told
//! to close: an idle keep-alive connection closes at once, one with a
//! request in flight answers it (with `Connection: close`) and then closes,
//! and no further request is read from any of them. In-flight requests get
//! a grace period of [`GRACE`]. With a TLS acceptor
//! every connection is a TLS handshake first (bounded by the same header
//! timeout), then the same HTTP/1.1 service. Connections support HTTP
//! upgrades (WebSocket streams), and every request carries a [`ConnKill`]
//! with which its handler can cut its own connection (a stalled stream
//! reader whose socket no longer drains). Past `max_connections` open
//! connections, a new one gets a JSON 503 with `Retry-After` and is closed,
//! so a flood of clients cannot exhaust file descriptors or memory.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How connections are served.
#[derive(Clone)]
pub struct ServeOptions {
    /// A client must send its headers within this (slow loris).
    pub header_read: Duration,
    /// A client must take each answer within this of its first byte
    /// (see `SendDeadline`).
    pub send: Duration,
    /// Open connections at most; further ones get a 503.
    pub max_connections: usize,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The answer to a connection past `max_connections`.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 64\r\n\r\n{\"error\":\"too many open connections; retry in 1 s\",\"status\":503}";

/// How long in-flight requests may take to finish once shutdown begins.
pub const GRACE: Duration = Duration::from_secs(10);

/// Serves `app` until `shutdown` completes, then closes idle connections
/// and waits up to [`GRACE`] for in-flight requests.
pub async fn run(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let ServeOptions { header_read, send, max_connections, tls } = opts;
    let active = Arc::new(AtomicUsize::new(0));
    // Tells every connection to stop taking requests; sent once, on shutdown.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        if active.load(Ordering::Relaxed) >= max_connections {
            tokio::spawn(async move {
                let write = async {
                    let mut rest = TOO_MANY_CONNECTIONS;
                    while !rest.is_empty() && stream.writable().await.is_ok() {
                        match stream.try_write(rest) {
                            Ok(n) => rest = &rest[n..],
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
            });
            continue;
        }
        let kill = ConnKill::default();
        let conn_kill = kill.clone();
        let svc = app.clone().map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(conn_kill.clone());
            req
        });
        let active = active.clone();
        active.fetch_add(1, Ordering::Relaxed);
        let tls = tls.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = Conn { svc, header_read, peer, stop: stop.clone() };
            match tls {
                None => conn.serve(Killable { io: stream, kill, send: SendDeadline::new(send) }).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(header_read, acceptor.accept(stream));
                    tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(tls_stream)) => {
                                conn.serve(Killable { io: tls_stream, kill, send: SendDeadline::new(send) }).await
                            }
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        },
                        // No request has been sent yet: nothing to finish.
                        _ = stopped(&mut stop) => {}
                    }
                }
            }
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    // No receiver left means no connection is open: nothing to tell.
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + GRACE;
    while active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Returns once the server stops (or the accept loop is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The borrow `wait_for` returns is not `Send`; it is dropped here,
    // before the caller's next await.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// One connection's service and settings.
struct Conn<Svc> {
    svc: Svc,
    header_read: Duration,
    peer: std::net::SocketAddr,
    /// Becomes `true` when the server shuts down.
    stop: tokio::sync::watch::Receiver<bool>,
}

impl<Svc> Conn<Svc>
where
    Svc: tower::Service<hyper::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: std::error::Error + Send + Sync + 'static,
{
    /// Drives one HTTP/1.1 connection over `io` (plain TCP or TLS) until
    /// the client closes it or, once the server stops, until the request in
    /// flight (if any) is answered.
    async fn serve<S>(self, io: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn { svc, header_read, peer, mut stop } = self;
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new()).header_read_timeout(header_read);
        let conn = b.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc)).with_upgrades();
        tokio::pin!(conn);
        let finished = tokio::select! {
            r = conn.as_mut() => Some(r),
            _ = stopped(&mut stop) => None,
        };
        let ended = match finished {
            Some(r) => r,
            None => {
                // Closes an idle connection now; a busy one answers its
                // request with `Connection: close` and reads no other.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Cuts one connection: once [`ConnKill::kill`] is called, every write to
/// it fails (also one already waiting for the peer), so hyper drops it.
#[derive(Debug, Clone, Default)]
pub struct ConnKill(Arc<KillState>);

#[derive(Debug, Default)]
struct KillState {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl ConnKill {
    pub fn kill(&self) {
        self.0.killed.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        self.0.waker.register(cx.waker());
        if self.0.killed.load(Ordering::Acquire) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection cut by the server"));
        }
        Ok(())
    }
}

/// A connection's IO with its [`ConnKill`] and its [`SendDeadline`].
struct Killable<S> {
    io: S,
    kill: ConnKill,
    send: SendDeadline,
}

/// How long a client may take to read what it is sent: every write from
/// the first after a completed flush to the next completed flush (one
/// answer; one message of a stream) must be done within `limit`. hyper
/// flushes only once all it has queued is written, so a client that stops
/// reading, or reads an answer a few bytes at a time, fails the write in
/// progress at the deadline and hyper drops the connection, with the
/// answer it held (see `crate::unsent`).
struct SendDeadline {
    limit: Duration,
    /// Armed by the first write of an answer, disarmed by its flush.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SendDeadline {
    fn new(limit: Duration) -> Self {
        SendDeadline { limit, timer: None }
    }

    /// Arms the deadline if no answer is being sent; fails once it passed.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client did not take the answer within {} s", limit.as_secs()),
            )),
            Poll::Pending => Ok(()),
        }
    }

    /// Fails once the deadline of the answer being written passed; no
    /// answer being written, nothing to check.
    fn check_armed(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.timer.is_some() {
            true => self.check(cx),
            false => Ok(()),
        }
    }

    /// Everything written has been flushed: the next write starts anew.
    fn done(&mut self) {
        self.timer = None;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.kill.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.kill.check(cx)?;
        self.send.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.kill.check(cx)?;
        self.send.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.kill.check(cx)?;
        // hyper flushes on every pass of its loop, idle or not: only an
        // answer being written (a timer already armed) is held to it.
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        match flushed {
            Poll::Ready(Ok(())) => self.send.done(),
            Poll::Pending => self.send.check_armed(cx)?,
            Poll::Ready(Err(_)) => {}
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn killable(io: tokio::io::DuplexStream, limit: Duration) -> Killable<tokio::io::DuplexStream> {
        Killable { io, kill: ConnKill::default(), send: SendDeadline::new(limit) }
    }

    /// A peer that does not read fails the write in progress at the
    /// deadline; one that reads gets everything; idle flushes arm nothing.
    #[tokio::test]
    async fn an_answer_not_taken_within_the_deadline_fails_its_write() {
        let limit = Duration::from_millis(300);
        let (ours, mut peer) = tokio::io::duplex(1024);
        let mut conn = killable(ours, limit);
        // Idle flushes (hyper flushes on every pass) arm no deadline.
        for _ in 0..3 {
            conn.flush().await.expect("idle flush");
            assert!(conn.send.timer.is_none(), "an idle flush armed the deadline");
        }
        // Taken in time (over several deadlines' worth of idle before):
        // written and flushed, the deadline disarmed.
        tokio::time::sleep(2 * limit).await;
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 4096];
            peer.read_exact(&mut got).await.expect("read");
            peer
        });
        conn.write_all(&[7u8; 4096]).await.expect("write");
        conn.flush().await.expect("flush");
        assert!(conn.send.timer.is_none());
        let _peer = reader.await.expect("reader");
        // Not taken: the write waits, then fails at the deadline.
        let started = tokio::time::Instant::now();
        let err = conn.write_all(&[7u8; 4096]).await.expect_err("the peer never reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let took = started.elapsed();
        assert!(took >= limit && took < 10 * limit, "failed after {took:?}");
    }
}
