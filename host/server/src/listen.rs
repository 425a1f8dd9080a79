//! The HTTP/1.1 accept loop (instead of `axum::serve`, which sets no timer and so no timeout):
//! each connection is served by hyper with a header read timeout
//! ([`ConnectionLimits::header_read_timeout`]) that closes a connection which sends nothing, one
//! that dribbles its headers, and an idle keep-alive connection between requests. Each request
//! carries its peer address (`ConnectInfo<SocketAddr>`) for the throttles. On shutdown it stops
//! accepting, lets in-flight requests finish and waits for their connections to close.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use minihost_api::ConnectionLimits;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `app` on `listener` until `stop` resolves, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // Dropped on stop: every connection starts its graceful shutdown.
    let (stopping, stopping_rx) = watch::channel(());
    // Each connection holds a receiver; all dropped means all connections ended.
    let (closed_tx, closed) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stopping_rx.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_end(result, peer),
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await, peer);
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(stopping);
    drop(closed);
    // Every connection's receiver is gone once it ended.
    closed_tx.closed().await;
    Ok(())
}

fn log_end(result: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = result {
        tracing::trace!(%peer, error = %e, "connection ended");
    }
}
