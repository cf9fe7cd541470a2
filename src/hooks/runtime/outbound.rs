//! Outbound HTTP for hooks: `wasi:http/outgoing-handler`, refused before any socket opens
//! unless the request's scheme, host and port are on the hook's `allowed_hosts`.
//!
//! wasi:http never follows redirects itself, so a redirect to another host is a new request
//! from the guest and goes through the same check. IP literals are allowed only when listed
//! exactly. The check is on the request's authority, which is also what the connection is made
//! to (the `Host` header is set by the host and is a forbidden header for guests).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use http::uri::{Scheme, Uri};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One `allowed_hosts` entry: `host` (the scheme's default port, 80 or 443) or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!("allowed_hosts entry {raw:?} is not `host` or `host:port` (no scheme or path)")
        };
        if raw.is_empty() || raw.contains(['/', '@', '?', '#', '*', ' ']) {
            return Err(bad());
        }
        let authority: http::uri::Authority = raw.parse().map_err(|_| bad())?;
        Ok(Self {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }

    fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        self.host == host && self.port.unwrap_or(default_port) == port
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request URI may be sent; `Err` says why not.
pub fn check_uri(allowed: &[AllowedHost], uri: &Uri) -> Result<(), String> {
    let default_port = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => 443,
        Some(s) if *s == Scheme::HTTP => 80,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "the request has no host".to_owned())?;
    // `user@host`: the connection is made to the whole authority string, so a userinfo part
    // could make the checked host differ from the dialled one. Never needed by an API client.
    if authority.as_str().contains('@') {
        return Err("credentials in the URL's authority are not allowed".to_owned());
    }
    let host = normalize_host(authority.host());
    let port = authority.port_u16().unwrap_or(default_port);
    if allowed.iter().any(|a| a.allows(&host, port, default_port)) {
        Ok(())
    } else {
        Err(format!("{host}:{port} is not in the hook's allowed_hosts"))
    }
}

/// Refused requests remembered per invocation (for `hooks run` and the log); the rest are only
/// counted. One event once grew the server by ~500 MiB remembering every refusal.
pub const REFUSED_SAMPLES: usize = 8;
/// Bytes kept of one remembered request line (`METHOD uri: reason`).
const SAMPLE_BYTES: usize = 512;

/// Outbound requests of one hook in flight, over all of its invocations. It lives in the hook's
/// [`Grants`](crate::hooks::state::Grants) (one per loaded hook) and is sized on first use from
/// the runtime's caps.
#[derive(Debug, Default)]
pub struct HookConnections(OnceLock<Arc<Semaphore>>);

impl HookConnections {
    pub fn semaphore(&self, permits: u32) -> Arc<Semaphore> {
        Arc::clone(
            self.0
                .get_or_init(|| Arc::new(Semaphore::new(permits as usize))),
        )
    }
}

/// Which outbound cap an invocation ran into, and how often. Shared with the tasks that read
/// response bodies, hence atomics.
#[derive(Debug, Default)]
pub struct OutboundCounters {
    /// Response body bytes read so far, over all requests.
    pub response_bytes: AtomicU64,
    /// Requests refused because the invocation had started its maximum already.
    pub over_requests: AtomicU32,
    /// Requests refused because the invocation had its maximum in flight.
    pub over_concurrent: AtomicU32,
    /// Requests that had to wait because the hook had its maximum in flight over all
    /// invocations (they go out when one of those ends, or die with the invocation's
    /// deadline). Not a refusal, so not in [`Self::limited`].
    pub waited_for_hook: AtomicU32,
    /// Response bodies cut because the invocation's response byte budget ran out.
    pub over_response_bytes: AtomicU32,
    /// Tenant hooks: requests refused after the allow-list, when the name resolved to an
    /// internal address (or to none), with the first [`REFUSED_SAMPLES`] reasons. Folded into
    /// the policy's refusals when the invocation ends, so they are logged with the hook,
    /// tenant and event like every other refusal.
    connect_refused: std::sync::Mutex<(u64, Vec<String>)>,
}

impl OutboundCounters {
    /// Requests refused or bodies cut by a cap, in total.
    pub fn limited(&self) -> u32 {
        self.over_requests.load(Ordering::Relaxed)
            + self.over_concurrent.load(Ordering::Relaxed)
            + self.over_response_bytes.load(Ordering::Relaxed)
    }
}

/// The caps one invocation's outbound traffic runs under.
pub struct OutboundCaps {
    pub requests: u32,
    pub concurrent: u32,
    pub response_bytes: u64,
    /// The hook's own in-flight limit (see [`HookConnections`]).
    pub hook: Arc<Semaphore>,
}

/// The per-invocation `WasiHttpHooks`: checks each request against the allow-list and the
/// caps, and keeps a bounded record of what happened for the log.
pub struct OutboundPolicy {
    allowed: Arc<[AllowedHost]>,
    /// Tenant hooks: host patterns instead of `allowed`, and the address check at connect time.
    tenant: Option<Arc<TenantNet>>,
    max_requests: u32,
    max_response_bytes: u64,
    started: u32,
    invocation: Arc<Semaphore>,
    hook: Arc<Semaphore>,
    pub counters: Arc<OutboundCounters>,
    /// Why the first [`REFUSED_SAMPLES`] refused requests were refused, in order.
    pub refused: Vec<String>,
    /// Requests refused by the allow-list, all of them.
    pub refused_total: u64,
    /// Requests let through, as `METHOD scheme://authority/path` (at most the request cap).
    pub sent: Vec<String>,
}

impl OutboundPolicy {
    pub fn new(
        allowed: Arc<[AllowedHost]>,
        tenant: Option<Arc<TenantNet>>,
        caps: OutboundCaps,
    ) -> Self {
        Self {
            allowed,
            tenant,
            max_requests: caps.requests,
            max_response_bytes: caps.response_bytes,
            started: 0,
            invocation: Arc::new(Semaphore::new(caps.concurrent as usize)),
            hook: caps.hook,
            counters: Arc::default(),
            refused: Vec::new(),
            refused_total: 0,
            sent: Vec::new(),
        }
    }

    fn refuse(&mut self, line: String) {
        record_refusal(&mut self.refused_total, &mut self.refused, line);
    }

    /// Adds the requests refused at connect time (see [`OutboundCounters`]) to the refusals;
    /// called once the invocation is over.
    pub fn collect_connect_refusals(&mut self) {
        let (total, samples) = std::mem::take(
            &mut *self
                .counters
                .connect_refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.refused_total += total;
        let room = REFUSED_SAMPLES.saturating_sub(self.refused.len());
        self.refused.extend(samples.into_iter().take(room));
    }
}

/// Counts a refused request and keeps its reason while fewer than [`REFUSED_SAMPLES`] are kept.
fn record_refusal(total: &mut u64, samples: &mut Vec<String>, line: String) {
    *total += 1;
    if samples.len() < REFUSED_SAMPLES {
        samples.push(cut_sample(line));
    }
}

fn cut_sample(mut s: String) -> String {
    if s.len() > SAMPLE_BYTES {
        let mut end = SAMPLE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

fn denied(error: HttpError) -> SendFuture {
    Box::new(async move { Err(error) })
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        // Counted before the allow-list, so a guest cannot spin on refused requests either.
        if self.started >= self.max_requests {
            self.counters.over_requests.fetch_add(1, Ordering::Relaxed);
            return denied(HttpError::ConnectionLimitReached);
        }
        self.started += 1;
        let uri = request.uri().clone();
        let target = match &self.tenant {
            Some(net) => match net.check_uri(&uri) {
                Ok(target) => Some(target),
                Err(reason) => {
                    self.refuse(format!("{} {uri}: {reason}", request.method()));
                    return denied(HttpError::HttpRequestDenied);
                }
            },
            None => {
                if let Err(reason) = check_uri(&self.allowed, &uri) {
                    self.refuse(format!("{} {uri}: {reason}", request.method()));
                    return denied(HttpError::HttpRequestDenied);
                }
                None
            }
        };
        // Held until the response body is done or dropped (they move into the connection's
        // driver below), so they bound open sockets, not just requests being started.
        let Ok(mine) = Arc::clone(&self.invocation).try_acquire_owned() else {
            self.counters
                .over_concurrent
                .fetch_add(1, Ordering::Relaxed);
            return denied(HttpError::ConnectionLimitReached);
        };
        // The hook's share is waited for, not refused: honest invocations of a busy hook
        // queue for a connection, and a hostile one still holds no more than the share.
        // One invocation alone cannot wait on itself: the share is at least the
        // per-invocation cap (checked with the config), which refuses first.
        let hook_permit = Arc::clone(&self.hook).try_acquire_owned().ok();
        if hook_permit.is_none() {
            self.counters
                .waited_for_hook
                .fetch_add(1, Ordering::Relaxed);
        }
        let hook_share = Arc::clone(&self.hook);
        self.sent
            .push(cut_sample(format!("{} {uri}", request.method())));
        let counters = Arc::clone(&self.counters);
        let cap = self.max_response_bytes;
        let net = self.tenant.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            let hooks = match hook_permit {
                Some(permit) => permit,
                // Dropped with the invocation (its deadline included) while waiting.
                None => hook_share
                    .acquire_owned()
                    .await
                    .map_err(|_closed| HttpError::ConnectionLimitReached)?,
            };
            let (response, io): (http::Response<WasiBody>, IoFuture) = match (net, target) {
                (Some(net), Some(target)) => {
                    let (response, io) = net.send(target, request, options, &counters).await?;
                    (response, Box::new(io))
                }
                _ => {
                    let (response, io) =
                        wasmtime_wasi_http::default_send_request(request, options).await?;
                    (response.map(BodyExt::boxed_unsync), Box::new(io))
                }
            };
            // Held by the connection's driver and by the response body, until both are done:
            // a response the guest keeps unread still counts (its bytes sit in host memory).
            let permits = Arc::new((mine, hooks));
            let held = Arc::clone(&permits);
            let response = response.map(|inner| {
                CappedBody {
                    inner,
                    counters,
                    cap,
                    done: false,
                    _permits: Some(held),
                }
                .boxed_unsync()
            });
            let io: IoFuture = Box::new(async move {
                let _permits = permits;
                std::pin::Pin::from(io).await
            });
            Ok((response, io))
        })
    }
}

/// A response body counted against the invocation's response byte budget: past it, the guest
/// reads an `HTTP-response-body-size` error instead of more data.
struct CappedBody {
    inner: WasiBody,
    counters: Arc<OutboundCounters>,
    cap: u64,
    done: bool,
    /// The invocation's and the hook's in-flight permits (see `send_request`).
    _permits: Option<Arc<Permits>>,
}

type Permits = (
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

impl hyper::body::Body for CappedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        let frame = match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            let before = self
                .counters
                .response_bytes
                .fetch_add(len, Ordering::Relaxed);
            if before.saturating_add(len) > self.cap {
                // Not read on the guest's behalf: it does not count as read.
                self.counters
                    .response_bytes
                    .fetch_sub(len, Ordering::Relaxed);
                self.done = true;
                self.counters
                    .over_response_bytes
                    .fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.cap)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

/// A `[tenant_hooks] allowed_hosts` entry or a tenant manifest's: `*` (any public host),
/// `*.example.com` (any name under it), `host` or an IP literal, each with an optional port
/// (without one: the scheme's default port; `*` alone: any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    /// `.example.com`: names strictly under it.
    Under(String),
    Exact(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "*" {
            return Ok(Self {
                host: HostMatch::Any,
                port: None,
            });
        }
        if let Some(rest) = raw.strip_prefix("*.") {
            let exact = AllowedHost::parse(rest)?;
            if exact.host.parse::<std::net::IpAddr>().is_ok() || !exact.host.contains('.') {
                return Err(format!("{raw:?}: a wildcard must be over a domain name"));
            }
            return Ok(Self {
                host: HostMatch::Under(format!(".{}", exact.host)),
                port: exact.port,
            });
        }
        let exact = AllowedHost::parse(raw)?;
        Ok(Self {
            host: HostMatch::Exact(exact.host),
            port: exact.port,
        })
    }

    /// An IP literal with its port, listed exactly: the only way to an internal address.
    fn exact_address(&self) -> Option<SocketAddr> {
        let HostMatch::Exact(host) = &self.host else {
            return None;
        };
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        Some(SocketAddr::new(ip, self.port?))
    }

    fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        let port_ok = match (&self.host, self.port) {
            (HostMatch::Any, None) => true,
            (_, p) => p.unwrap_or(default_port) == port,
        };
        port_ok
            && match &self.host {
                HostMatch::Any => host.parse::<IpAddr>().is_err() && !host.starts_with('['),
                HostMatch::Under(suffix) => host.ends_with(suffix.as_str()),
                HostMatch::Exact(h) => h == host,
            }
    }

    /// Whether everything `other` grants is granted by this (operator) entry. IP literals are
    /// covered only by the same literal: `*` never opens an address.
    pub fn covers(&self, other: &HostPattern) -> bool {
        if let HostMatch::Exact(h) = &other.host
            && (h.parse::<IpAddr>().is_ok() || h.starts_with('['))
        {
            return self == other;
        }
        let port_ok = match (&self.host, self.port) {
            (HostMatch::Any, None) => true,
            _ => self.port == other.port,
        };
        port_ok
            && match (&self.host, &other.host) {
                (HostMatch::Any, _) => true,
                (HostMatch::Under(s), HostMatch::Under(o)) => o.ends_with(s.as_str()),
                (HostMatch::Under(s), HostMatch::Exact(h)) => h.ends_with(s.as_str()),
                (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
                _ => false,
            }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Under(s) => write!(f, "*{s}")?,
            HostMatch::Exact(h) => f.write_str(h)?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Loopback, private, link-local, unspecified, shared (CGNAT), benchmarking, multicast,
/// documentation and other non-global addresses: where a hostile tenant hook would go to reach
/// the platform's internals (metadata services, databases, admin ports). IPv6 addresses that
/// carry an IPv4 address (mapped, IPv4-compatible, 6to4) are judged by the IPv4 address they
/// carry, so an internal IPv4 address cannot be reached under an IPv6 spelling.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                // 198.18.0.0/15, benchmarking: never a public service.
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            // ::/96, IPv4-compatible (deprecated; `::a.b.c.d`): some stacks still route it to
            // the IPv4 address. Nothing public lives there, `::` and `::1` included.
            if seg[..6].iter().all(|&s| s == 0) {
                return true;
            }
            // 2002::/16, 6to4: the next 32 bits are an IPv4 address a relay would deliver to.
            if seg[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new(
                    (seg[1] >> 8) as u8,
                    seg[1] as u8,
                    (seg[2] >> 8) as u8,
                    seg[2] as u8,
                );
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local (deprecated).
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                // 2001::/32, Teredo: carries an (obfuscated) IPv4 address; no API lives there.
                || (seg[0] == 0x2001 && seg[1] == 0)
                // 64:ff9b::/96 and 64:ff9b:1::/48, NAT64: translated to any IPv4 address.
                || (seg[0] == 0x64 && seg[1] == 0xff9b)
                // 100::/64, discard-only.
                || (seg[0] == 0x100 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0)
        }
    }
}

/// A tenant hook's network grant: its host patterns, and the internal addresses the operator
/// listed exactly (and the tenant was granted).
#[derive(Debug)]
pub struct TenantNet {
    patterns: Vec<HostPattern>,
    exact_internal: Vec<SocketAddr>,
}

/// Where a checked request goes.
pub struct Target {
    host: String,
    port: u16,
    tls: bool,
}

impl TenantNet {
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        let exact_internal = patterns
            .iter()
            .filter_map(HostPattern::exact_address)
            .collect();
        Self {
            patterns,
            exact_internal,
        }
    }

    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }

    fn check_uri(&self, uri: &Uri) -> Result<Target, String> {
        let (default_port, tls) = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => (443, true),
            Some(s) if *s == Scheme::HTTP => (80, false),
            other => return Err(format!("scheme {other:?} is not http or https")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| "the request has no host".to_owned())?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL's authority are not allowed".to_owned());
        }
        let host = normalize_host(authority.host());
        let port = authority.port_u16().unwrap_or(default_port);
        if self
            .patterns
            .iter()
            .any(|p| p.matches(&host, port, default_port))
        {
            Ok(Target { host, port, tls })
        } else {
            Err(format!("{host}:{port} is not in the hook's allowed_hosts"))
        }
    }

    /// The addresses `target` may be reached at: every resolved address must be public or
    /// listed exactly. Refusing when any is internal keeps a name that mixes a public and an
    /// internal answer from being used to reach the internal one.
    async fn resolve(&self, target: &Target) -> Result<SocketAddr, String> {
        let literal = target.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, target.port)],
            Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
                .collect(),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| format!("{} resolves to no address", target.host))?;
        for addr in &addrs {
            if is_internal(addr.ip()) && !self.exact_internal.contains(addr) {
                return Err(format!(
                    "{}:{} resolves to internal address {addr}, which is not listed exactly",
                    target.host, target.port
                ));
            }
        }
        Ok(first)
    }

    /// Sends the request over a connection to the address that was checked (never resolving
    /// the name a second time, so DNS rebinding cannot swap the address in between).
    async fn send(
        &self,
        target: Target,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        counters: &OutboundCounters,
    ) -> Result<(http::Response<WasiBody>, ConnectionDriver), HttpError> {
        use http_body_util::BodyExt;
        use wasmtime_wasi_http::io::TokioIo;

        let addr = match self.resolve(&target).await {
            Ok(addr) => addr,
            Err(reason) => {
                let mut refused = counters
                    .connect_refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (total, samples) = &mut *refused;
                let line = format!("{} {}: {reason}", request.method(), request.uri());
                record_refusal(total, samples, line);
                return Err(HttpError::HttpRequestDenied);
            }
        };
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(std::time::Duration::from_secs(10));
        let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Connect)?;
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let (response, conn) = if target.tls {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(HttpError::Tls)?;
            exchange(TokioIo::new(tls), request).await?
        } else {
            exchange(TokioIo::new(tcp), request).await?
        };
        Ok((
            response.map(|b| b.map_err(HttpError::from).boxed_unsync()),
            conn,
        ))
    }
}

/// Drives the connection while the guest reads the response body.
type ConnectionDriver = std::pin::Pin<Box<dyn Future<Output = Result<(), HttpError>> + Send>>;

type Exchanged = (http::Response<hyper::body::Incoming>, ConnectionDriver);

/// One HTTP/1.1 request on an established connection; the connection keeps being driven in the
/// returned future while the guest reads the body.
async fn exchange<IO>(io: IO, request: http::Request<WasiBody>) -> Result<Exchanged, HttpError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(HttpError::from)?;
    // Aborted when dropped: a connection must not outlive the invocation (or the permits
    // that counted it, which are dropped with the driver).
    let mut driver = AbortOnDrop(tokio::spawn(conn));
    let response = sender
        .send_request(request)
        .await
        .map_err(HttpError::from)?;
    let rest = Box::pin(async move {
        match (&mut driver.0).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HttpError::from(e)),
            Err(_) => Ok(()),
        }
    });
    Ok((response, rest))
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(len: usize, counters: &Arc<OutboundCounters>, cap: u64) -> CappedBody {
        use http_body_util::BodyExt;
        let inner = http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; len]))
            .map_err(|never| match never {})
            .boxed_unsync();
        CappedBody {
            inner,
            counters: Arc::clone(counters),
            cap,
            done: false,
            _permits: None,
        }
    }

    /// The budget is over all responses of the invocation: the second body that would go past
    /// it ends in an error instead of its data.
    #[tokio::test]
    async fn response_bytes_are_capped_over_all_bodies_of_an_invocation() {
        use http_body_util::BodyExt;
        let counters = Arc::new(OutboundCounters::default());
        let first = capped(100, &counters, 150).collect().await.unwrap();
        assert_eq!(first.to_bytes().len(), 100);
        let second = capped(100, &counters, 150).collect().await;
        assert!(matches!(
            second,
            Err(HttpError::HttpResponseBodySize(Some(150)))
        ));
        assert_eq!(counters.over_response_bytes.load(Ordering::Relaxed), 1);
        assert_eq!(counters.response_bytes.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn operator_patterns_cover_tenant_grants() {
        let p = |s: &str| HostPattern::parse(s).unwrap();
        assert!(p("*").covers(&p("api.mailer.com")));
        assert!(p("*").covers(&p("api.mailer.com:8443")));
        assert!(!p("*").covers(&p("127.0.0.1:9100")));
        assert!(!p("*").covers(&p("10.0.0.1")));
        assert!(p("127.0.0.1:9100").covers(&p("127.0.0.1:9100")));
        assert!(!p("127.0.0.1:9100").covers(&p("127.0.0.1:9101")));
        assert!(p("*.example.com").covers(&p("api.example.com")));
        assert!(p("*.example.com").covers(&p("*.eu.example.com")));
        assert!(!p("*.example.com").covers(&p("example.com")));
        assert!(!p("*.example.com").covers(&p("evilexample.com")));
        assert!(HostPattern::parse("*.10.0.0.1").is_err());
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_public_pattern_never_reaches_an_internal_address() {
        let net = TenantNet::new(vec![HostPattern::parse("*").unwrap()]);
        // `localhost` is a name matched by `*`, but it resolves to loopback.
        let target = net
            .check_uri(&"http://localhost:9/".parse().unwrap())
            .unwrap();
        assert!(net.resolve(&target).await.is_err());
        assert!(
            net.check_uri(&"http://127.0.0.1:9/".parse().unwrap())
                .is_err()
        );
        let exact = TenantNet::new(vec![HostPattern::parse("127.0.0.1:9100").unwrap()]);
        let target = exact
            .check_uri(&"http://127.0.0.1:9100/".parse().unwrap())
            .unwrap();
        assert!(exact.resolve(&target).await.is_ok());
    }

    /// A name the pattern lets through but that resolves to loopback is refused at connect
    /// time, inside the request's future; the refusal still reaches the policy's record, so
    /// it is logged with the hook, tenant and event like a refusal by the pattern.
    #[tokio::test]
    async fn a_refusal_at_connect_time_is_recorded_with_the_others() {
        use http_body_util::BodyExt;
        let net = Arc::new(TenantNet::new(vec![HostPattern::parse("*").unwrap()]));
        let caps = OutboundCaps {
            requests: 4,
            concurrent: 4,
            response_bytes: 1024,
            hook: Arc::new(Semaphore::new(4)),
        };
        let mut policy = OutboundPolicy::new(Arc::from(Vec::new()), Some(net), caps);
        let request = || {
            let body = http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync();
            http::Request::builder()
                .uri("http://localhost:9/send")
                .body(body)
                .unwrap()
        };
        for _ in 0..2 {
            let sent = policy.send_request(request(), None, Box::new(async { Ok(()) }));
            let result = std::pin::Pin::from(sent).await;
            assert!(matches!(result, Err(HttpError::HttpRequestDenied)));
        }
        assert_eq!(
            policy.refused_total, 0,
            "not known before the invocation ends"
        );
        policy.collect_connect_refusals();
        assert_eq!(policy.refused_total, 2);
        assert_eq!(policy.refused.len(), 2);
        assert!(
            policy.refused[0].contains("localhost:9")
                && policy.refused[0].contains("internal address"),
            "{:?}",
            policy.refused
        );
        policy.collect_connect_refusals();
        assert_eq!(policy.refused_total, 2, "collected once");
    }

    fn allowed(list: &[&str]) -> Vec<AllowedHost> {
        list.iter()
            .map(|s| AllowedHost::parse(s).unwrap())
            .collect()
    }

    fn check(list: &[&str], uri: &str) -> Result<(), String> {
        check_uri(&allowed(list), &uri.parse().unwrap())
    }

    #[test]
    fn a_bare_host_allows_its_default_ports_only() {
        let list = ["api.mailer.example"];
        assert!(check(&list, "https://api.mailer.example/send").is_ok());
        assert!(check(&list, "http://API.Mailer.Example./send").is_ok());
        assert!(check(&list, "https://api.mailer.example:8443/send").is_err());
        assert!(check(&list, "https://evil.example/").is_err());
        assert!(check(&list, "https://api.mailer.example.evil.example/").is_err());
    }

    #[test]
    fn ip_literals_must_be_listed_exactly() {
        let list = ["127.0.0.1:8025"];
        assert!(check(&list, "http://127.0.0.1:8025/").is_ok());
        assert!(check(&list, "http://127.0.0.1:8026/").is_err());
        assert!(check(&list, "http://127.0.0.2:8025/").is_err());
        assert!(check(&list, "http://[::1]:8025/").is_err());
        assert!(check(&list, "http://localhost:8025/").is_err());
        assert!(check(&list, "ftp://127.0.0.1:8025/").is_err());
    }

    #[test]
    fn userinfo_cannot_disguise_the_host() {
        let list = ["127.0.0.1:8025"];
        assert!(check(&list, "http://evil.example:80@127.0.0.1:8025/").is_err());
        assert!(check(&list, "http://user@127.0.0.1:8025/").is_err());
    }

    #[test]
    fn entries_are_hosts_not_urls() {
        assert!(AllowedHost::parse("https://api.example").is_err());
        assert!(AllowedHost::parse("api.example/path").is_err());
        assert!(AllowedHost::parse("*.example").is_err());
        assert!(AllowedHost::parse("[::1]:80").is_ok());
    }
}
