//! Serving a router on a TCP listener with the limits a public endpoint needs (`auditlog
//! serve` calls [`serve`]; tests call it too).
//!
//! - **Connection cap**: at most `max_connections` connections are open; at the cap the loop
//!   stops accepting, so new connections wait in the kernel's listen backlog until one closes,
//!   and the open ones keep working. File descriptors are never exhausted by clients.
//! - **Idle timeout**: a connection that has not sent the first byte of a request head within
//!   `idle_timeout` (a new connection, or a keep-alive one after its previous response), or
//!   whose client has not read any of the response for that long (a blocked write), is closed.
//!   A request body that stalls for that long fails.
//! - **Header-read timeout**: once the first byte of a head has arrived, the whole head must
//!   arrive within `header_read_timeout` (a half-sent head is closed after it).
//! - **Parser limits**: hyper refuses heads above [`PARSER_MAX_HEADERS`] fields or
//!   [`PARSER_MAX_HEAD_BYTES`] with a bare 431 and closes; the documented, lower limits
//!   ([`super::limits`]) answer a JSON 431 first.
//! - **Graceful shutdown**: when `shutdown` completes the loop stops accepting, idle
//!   connections close, requests in flight finish (at most `shutdown_timeout`), then it returns.
//!
//! HTTP/1.1 only (as `axum::serve` with axum's default features).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::Service as _;

use super::metrics as m;
use crate::config::ApiConfig;

/// Most header fields hyper's parser accepts; beyond it a bare 431 (the JSON 431 is at
/// [`super::limits::MAX_HEADERS`]).
pub const PARSER_MAX_HEADERS: usize = 256;
/// Largest head (request line and headers) hyper's parser accepts; beyond it a bare 431 (the
/// JSON 431 is at [`super::limits::MAX_HEAD_BYTES`]).
pub const PARSER_MAX_HEAD_BYTES: usize = 64 * 1024;
/// File descriptors kept for everything but client connections (ClickHouse connections,
/// listeners, files) when the cap is fitted to the descriptor limit.
pub const RESERVED_FDS: u64 = 256;

/// Connection cap of the separate `/metrics` listener (`api.metrics_listen`).
pub const METRICS_MAX_CONNECTIONS: usize = 32;

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`ApiConfig::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// See [`ApiConfig::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`ApiConfig::max_connections`].
    pub max_connections: usize,
    /// See [`ApiConfig::shutdown_timeout`].
    pub shutdown_timeout: Duration,
    /// The `listener` label of the connection metrics (`api` or `metrics`).
    pub listener: &'static str,
}

impl Limits {
    /// The limits of `api.listen`.
    pub fn from_config(cfg: &ApiConfig) -> Self {
        Self {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            max_connections: cfg.max_connections,
            shutdown_timeout: cfg.shutdown_timeout,
            listener: "api",
        }
    }

    /// The limits of `api.metrics_listen`: the same timeouts, at most
    /// [`METRICS_MAX_CONNECTIONS`] connections.
    pub fn metrics_listener(cfg: &ApiConfig) -> Self {
        Self {
            max_connections: METRICS_MAX_CONNECTIONS,
            listener: "metrics",
            ..Self::from_config(cfg)
        }
    }

    /// The cap lowered so that it fits `nofile` descriptors (minus [`RESERVED_FDS`] and
    /// `others`, the caps of other listeners of the process), at least 1.
    pub fn fitted_to(mut self, nofile: u64, others: usize) -> Self {
        let room = nofile.saturating_sub(RESERVED_FDS + others as u64).max(1);
        self.max_connections = self
            .max_connections
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        self
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in effect
/// (`u64::MAX` where the platform has no such limit).
pub fn raise_nofile_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Serves `app` on `listener` until `shutdown` completes and the connections are drained.
/// `app`'s handlers see the peer address as [`axum::extract::ConnectInfo`]`<SocketAddr>`.
pub async fn serve<F>(listener: TcpListener, app: Router, limits: Limits, shutdown: F)
where
    F: Future<Output = ()> + Send,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    m::connections_listener(limits.listener, limits.max_connections);
    loop {
        // A permit first: at the cap, connections wait in the backlog, not in our memory.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: wait instead of spinning; the connection stays queued.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        m::connection_opened(limits.listener);
        let state = Arc::new(ConnState::new(Instant::now()));
        let io = TokioIo::new(Timed::new(stream, state.clone(), limits));
        let svc = ConnService {
            app: app.clone(),
            state: state.clone(),
            peer,
            body_timeout: limits.idle_timeout,
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // A backstop only: `Timed` closes such connections first.
            .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
            .max_headers(PARSER_MAX_HEADERS)
            .max_header_size(PARSER_MAX_HEAD_BYTES)
            // The read buffer, hence a partial head, stays within the same bound.
            .max_buf_size(PARSER_MAX_HEAD_BYTES)
            .keep_alive(true)
            .serve_connection(io, hyper::service::service_fn(move |r| svc.call(r)));
        let conn = graceful.watch(conn);
        let label = limits.listener;
        tokio::spawn(async move {
            let result = conn.await;
            let reason = match (state.timed_out(), result) {
                (Some(reason), _) => reason,
                (None, Ok(())) => m::CLOSED_NORMALLY,
                (None, Err(e)) => {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                    m::CLOSED_ERROR
                }
            };
            m::connection_closed(label, reason);
            drop(permit);
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(open, "stopped accepting; draining connections");
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections - permits.available_permits(),
            "api.shutdown_timeout passed; cutting the connections still open"
        );
    }
}

/// Where a connection is, as far as the timeouts care.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head since `since`; its first byte came at `first_byte`.
    AwaitingHead {
        since: Instant,
        first_byte: Option<Instant>,
    },
    /// A request is being handled or its response written.
    InRequest,
}

/// State shared by a connection's I/O and its service.
#[derive(Debug)]
struct ConnState {
    phase: Mutex<Phase>,
    timed_out: Mutex<Option<&'static str>>,
}

impl ConnState {
    fn new(now: Instant) -> Self {
        Self {
            phase: Mutex::new(Phase::AwaitingHead {
                since: now,
                first_byte: None,
            }),
            timed_out: Mutex::new(None),
        }
    }

    fn set(&self, p: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_read(&self, now: Instant) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::AwaitingHead {
            first_byte: f @ None,
            ..
        } = &mut *p
        {
            *f = Some(now);
        }
    }

    fn timed_out(&self) -> Option<&'static str> {
        *self.timed_out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection's service: marks the request phase and hands the request to the router.
#[derive(Clone)]
struct ConnService {
    app: Router,
    state: Arc<ConnState>,
    peer: std::net::SocketAddr,
    body_timeout: Duration,
}

impl ConnService {
    fn call(
        &self,
        req: hyper::Request<Incoming>,
    ) -> impl Future<Output = Result<Response<DoneBody>, Infallible>> {
        self.state.set(Phase::InRequest);
        let timeout = self.body_timeout;
        let mut req: Request =
            req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(timeout, b)));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let mut app = self.app.clone();
        let state = self.state.clone();
        async move {
            let resp = match app.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(resp.map(|body| DoneBody {
                body,
                done: Some(state),
            }))
        }
    }
}

/// A response body that puts its connection back to waiting for a head when it is finished
/// (hyper drops it once written).
struct DoneBody {
    body: Body,
    done: Option<Arc<ConnState>>,
}

impl Drop for DoneBody {
    fn drop(&mut self) {
        if let Some(s) = self.done.take() {
            s.set(Phase::AwaitingHead {
                since: Instant::now(),
                first_byte: None,
            });
        }
    }
}

impl HttpBody for DoneBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A TCP stream that fails with `TimedOut` when the connection's idle or head deadline passes
/// while it waits for the client.
struct Timed {
    io: TcpStream,
    state: Arc<ConnState>,
    limits: Limits,
    write_blocked: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

impl Timed {
    fn new(io: TcpStream, state: Arc<ConnState>, limits: Limits) -> Self {
        Self {
            io,
            state,
            limits,
            write_blocked: None,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// The earliest deadline now in force, and its reason.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        let head = match self.state.phase() {
            Phase::AwaitingHead {
                since,
                first_byte: None,
            } => Some((since + self.limits.idle_timeout, m::CLOSED_IDLE)),
            Phase::AwaitingHead {
                first_byte: Some(t),
                ..
            } => Some((
                t + self.limits.header_read_timeout,
                m::CLOSED_HEADER_TIMEOUT,
            )),
            Phase::InRequest => None,
        };
        let write = self
            .write_blocked
            .map(|t| (t + self.limits.idle_timeout, m::CLOSED_IDLE));
        match (head, write) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Called when the socket is not ready: an error once a deadline has passed, otherwise
    /// `Pending` with a wake-up at the deadline.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some((at, reason)) = self.deadline() else {
            return Poll::Pending;
        };
        if Instant::now() < at {
            self.sleep.as_mut().reset(at);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        *self
            .state
            .timed_out
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(reason);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason)))
    }
}

impl Timed {
    /// The outcome of a write: a blocked write starts (or keeps) the client's read deadline
    /// running, a completed one clears it.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if polled.is_pending() {
            self.write_blocked.get_or_insert_with(Instant::now);
            self.pending(cx)
        } else {
            self.write_blocked = None;
            polled
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.state.bytes_read(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.pending(cx),
        }
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        let l = Limits::from_config(&ApiConfig::default());
        assert_eq!(l.fitted_to(1_000_000, 0).max_connections, 4096);
        assert_eq!(l.fitted_to(1024, 32).max_connections, 1024 - 256 - 32);
        assert_eq!(l.fitted_to(10, 0).max_connections, 1);
    }
}
