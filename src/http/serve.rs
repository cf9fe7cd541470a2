//! The connection layer: our own accept loop over hyper's HTTP/1 connections, because
//! `axum::serve` runs hyper without a timer and without limits, so a client could hold a
//! connection forever with half a header, half a body or nothing at all, and could open
//! connections until the process ran out of descriptors.
//!
//! Per connection: the request head must arrive within `header_read_timeout` of its first byte
//! (or of the accept); a body within `body_read_timeout` of its head (else 408); a connection
//! on which no bytes move either way for `idle_timeout` while no handler runs is closed (idle
//! keep-alive, and a client that stops reading its responses). Overall: at most
//! `max_connections` at once (more wait in the kernel's queue) and `max_connections_per_ip`
//! from one peer (more get 429 and are closed). Accept errors (EMFILE...) back off. At shutdown
//! requests in flight get `shutdown_grace`, then their connections are closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::Service;

/// Limits of the connection layer (`[server]` in the configuration).
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        let c = crate::config::ServerConfig::default();
        Self::from(&c)
    }
}

impl From<&crate::config::ServerConfig> for ServeSettings {
    fn from(c: &crate::config::ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(c.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(c.idle_timeout_ms),
            max_connections: c.max_connections,
            max_connections_per_ip: c.max_connections_per_ip,
            max_header_bytes: c.max_header_bytes as usize,
            shutdown_grace: Duration::from_millis(c.shutdown_grace_ms),
        }
    }
}

/// Answer to a peer over its connection cap, written without waiting and then closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 79\r\n\r\n\
{\"detail\":\"Too many connections from this address\",\"code\":\"too_many_connections\"}";

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// for the grace period and closes whatever remains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections as usize));
    let per_ip = Arc::new(PerIp {
        max: settings.max_connections_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    let (graceful_tx, graceful_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        // A slot first: at the cap, connections wait in the kernel's queue, not in our memory.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: retrying at once would spin; a closing
                    // connection frees what the next accept needs.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let Some(ip_slot) = PerIp::enter(&per_ip, peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many from this address");
            let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            router: router.clone(),
            settings: Arc::clone(&settings),
            peer,
        };
        let (graceful, close) = (graceful_rx.clone(), close_rx.clone());
        tokio::spawn(async move {
            conn.run(stream, graceful, close).await;
            drop((slot, ip_slot));
        });
    }
    drop(listener);
    let _ = graceful_tx.send(true);
    let all = settings.max_connections;
    if tokio::time::timeout(settings.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        let open = all as usize - slots.available_permits();
        tracing::warn!(
            connections = open,
            "shutdown grace over: closing the connections still open"
        );
        let _ = close_tx.send(true);
        let _ = slots.acquire_many(all).await;
    }
}

/// Accept errors that concern one connection only (the listener is fine).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset | K::Interrupted
    )
}

/// Open connections per peer address.
struct PerIp {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl PerIp {
    fn enter(this: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = this.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= this.max {
            return None;
        }
        *n += 1;
        Some(IpSlot(Arc::clone(this), ip))
    }
}

struct IpSlot(Arc<PerIp>, IpAddr);

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

const NONE: u64 = u64::MAX;

/// What a connection is doing, for its watchdog. Milliseconds since the accept.
struct Activity {
    start: Instant,
    /// Last byte read or written.
    last_io: AtomicU64,
    /// First byte of a request head not yet complete ([`NONE`]: none being read).
    head_since: AtomicU64,
    /// Handlers running (HTTP/1: 0 or 1).
    in_flight: AtomicUsize,
    /// Set by a request body whose deadline passed: the response becomes a 408.
    body_timed_out: AtomicBool,
}

impl Activity {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// When to look again, or why to close now.
    fn verdict(&self, s: &ServeSettings) -> Result<Instant, &'static str> {
        let now = self.now();
        let ms = |d: Duration| d.as_millis() as u64;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A handler is running: its body has its own deadline, the rest is ours to bound.
            return Ok(Instant::now() + s.idle_timeout);
        }
        let idle_at = self
            .last_io
            .load(Ordering::Relaxed)
            .saturating_add(ms(s.idle_timeout));
        let head_at = match self.head_since.load(Ordering::Relaxed) {
            NONE => NONE,
            since => since.saturating_add(ms(s.header_read_timeout)),
        };
        if now >= head_at {
            return Err("request head not received in time");
        }
        if now >= idle_at {
            return Err("idle");
        }
        Ok(self.start + Duration::from_millis(idle_at.min(head_at)))
    }
}

/// Marks a handler running; dropped when it returns (or the connection goes away).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_since.store(NONE, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Connection {
    router: Router,
    settings: Arc<ServeSettings>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        mut graceful: watch::Receiver<bool>,
        mut close: watch::Receiver<bool>,
    ) {
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            body_timed_out: AtomicBool::new(false),
        });
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let (router, peer, body_timeout) =
            (self.router, self.peer, self.settings.body_read_timeout);
        let service_activity = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let activity = Arc::clone(&service_activity);
            async move {
                let in_flight = InFlight::enter(&activity);
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                let body = TimedBody {
                    inner: body,
                    deadline: Instant::now() + body_timeout,
                    sleep: None,
                    activity: Arc::clone(&activity),
                };
                let response = match router.call(hyper::Request::from_parts(parts, body)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                drop(in_flight);
                if activity.body_timed_out.swap(false, Ordering::Relaxed) {
                    return Ok::<_, Infallible>(body_timeout_response());
                }
                Ok(response)
            }
        });
        let mut builder = http1::Builder::new();
        builder.max_header_size(self.settings.max_header_bytes);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut shutting_down = false;
        loop {
            let wake = match activity.verdict(&self.settings) {
                Ok(at) => at,
                Err(reason) => {
                    tracing::debug!(%peer, reason, "closing connection");
                    return;
                }
            };
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep_until(wake) => {}
                _ = graceful.wait_for(|stop| *stop), if !shutting_down => {
                    // Idle connections close now, a request in flight finishes first.
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = close.wait_for(|close| *close) => return,
            }
        }
    }
}

fn body_timeout_response() -> Response {
    let mut response = (
        axum::http::StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "detail": "Request body not received in time",
            "code": "request_timeout",
        })),
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// The socket, noting when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body with a deadline. The timer is made only when a handler first waits for the
/// body, so requests without one pay nothing.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    activity: Arc<Activity>,
}

#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimeout;

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.activity.body_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
