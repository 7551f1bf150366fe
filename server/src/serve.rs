//! The accept loop. axum's own `serve` has no header-read timeout, so
//! connections are driven by hyper directly: a client that dribbles its
//! headers (slow loris) is cut off after `header_read`. Body and request
//! time limits live in `BodyLimits` (see `routes::body`, `routes::router`).
//! On shutdown, in-flight requests get a grace period.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `app` until `shutdown` completes, then waits up to 10 s for
/// in-flight connections.
pub async fn run(
    listener: TcpListener,
    app: Router,
    header_read: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
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
        let svc = app.clone().map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let active = active.clone();
        active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new()).header_read_timeout(header_read);
            let conn = b.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
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
