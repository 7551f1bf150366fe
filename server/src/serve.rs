//! The accept loop. axum's own `serve` has no header-read timeout, so
//! connections are driven by hyper directly: a client that dribbles its
//! headers (slow loris) is cut off after `header_read`. Body and request
//! time limits live in `BodyLimits` (see `routes::body`, `routes::router`).
//! On shutdown, in-flight requests get a grace period. With a TLS acceptor
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
    /// Open connections at most; further ones get a 503.
    pub max_connections: usize,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The answer to a connection past `max_connections`.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 64\r\n\r\n{\"error\":\"too many open connections; retry in 1 s\",\"status\":503}";

/// Serves `app` until `shutdown` completes, then waits up to 10 s for
/// in-flight connections.
pub async fn run(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let ServeOptions { header_read, max_connections, tls } = opts;
    let active = Arc::new(AtomicUsize::new(0));
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
        tokio::spawn(async move {
            match tls {
                None => serve_conn(Killable { io: stream, kill }, svc, header_read, peer).await,
                Some(acceptor) => match tokio::time::timeout(header_read, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_conn(Killable { io: tls_stream, kill }, svc, header_read, peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
    for _ in 0..100 {
        if active.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Drives one HTTP/1.1 connection over `io` (plain TCP or TLS).
async fn serve_conn<S, Svc>(io: S, svc: Svc, header_read: Duration, peer: std::net::SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: tower::Service<hyper::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: std::error::Error + Send + Sync + 'static,
{
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new()).header_read_timeout(header_read);
    let conn = b.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc)).with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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

/// A connection's IO with its [`ConnKill`].
struct Killable<S> {
    io: S,
    kill: ConnKill,
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
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.kill.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
