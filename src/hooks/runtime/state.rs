//! What one invocation's `Store` holds: an empty WASI context, the outbound HTTP policy, the
//! memory limiter, and the hook's own config and secrets for the `host` imports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result as WasmResult};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::hooks::engine::{
    POOL_CORE_INSTANCES_PER_COMPONENT, POOL_MEMORIES_PER_COMPONENT, POOL_TABLES_PER_COMPONENT,
};
use crate::hooks::limits::SandboxCaps;
use crate::hooks::outbound::{
    AllowedHost, HookConnections, OutboundCaps, OutboundPolicy, TenantNet,
};
use crate::hooks::stdio::{CappedPipe, escape_controls};

/// Log lines one invocation may write through `host.log` by default (`hooks.log_max_lines`).
/// Without a cap, a hook logging in a loop would flood the server log (and its disk) until its
/// fuel ran out.
pub const MAX_LOG_LINES: u32 = 100;
/// Bytes kept of one log message or field value; the rest is cut.
pub const MAX_LOG_BYTES: usize = 4096;
/// Bytes kept of one log field name.
const MAX_LOG_KEY_BYTES: usize = 128;
/// Fields kept of one log call.
const MAX_LOG_FIELDS: usize = 32;
/// Core instances, linear memories and tables one store may create: the pool's per-component
/// bounds. A component that needs more is refused at instantiation.
const MAX_INSTANCES: usize = POOL_CORE_INSTANCES_PER_COMPONENT as usize;
const MAX_MEMORIES: usize = POOL_MEMORIES_PER_COMPONENT as usize;
const MAX_TABLES: usize = POOL_TABLES_PER_COMPONENT as usize;
/// Host memory per table element (a pointer), counted against the memory cap.
const TABLE_ELEMENT_BYTES: usize = 8;
/// Largest `wasi:random` request: the host builds the bytes outside the guest's memory cap
/// (wasmtime's default is 64 MiB per call). JS's `getRandomValues` allows 64 KiB per call.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Host memory one `wasi:http` fields (headers) resource may hold. wasmtime's default is
/// 128 KiB; times the resource cap that would be gigabytes per invocation.
const MAX_FIELDS_BYTES: usize = 32 << 10;

/// A secret value: never shown by `Debug`.
#[derive(Clone)]
pub struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A hook's grants, shared by all of its invocations.
#[derive(Debug, Default)]
pub struct Grants {
    pub allowed_hosts: Arc<[AllowedHost]>,
    /// Tenant hooks: host patterns and the internal-address check, used instead of
    /// `allowed_hosts`.
    pub tenant_net: Option<Arc<TenantNet>>,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Outbound requests of this hook in flight over all of its invocations.
    pub connections: HookConnections,
}

/// Who is running, attached to every log line of the invocation.
#[derive(Debug, Clone)]
pub struct LogContext {
    pub hook: Arc<str>,
    pub tenant: String,
    pub event_id: String,
    pub event: &'static str,
    /// The request that caused the event or decision (empty at load), so an operator can
    /// follow one request from the access log to every hook it reached.
    pub request_id: String,
}

/// The store's memory cap, as a typed error so that running into it is classified without
/// matching message text.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {cap} bytes exceeded (asked for {desired} bytes)")]
pub struct MemoryLimitExceeded {
    pub cap: usize,
    pub desired: usize,
}

pub struct Limiter {
    memory_cap: usize,
    pub peak_memory: usize,
    /// All linear memories of the store together, in bytes (see [`Usage::linear_memory`]).
    ///
    /// [`Usage::linear_memory`]: crate::hooks::Usage::linear_memory
    pub linear_memory: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> WasmResult<bool> {
        // Called with current = 0 when a memory is created, then on every growth: the sum of
        // the increments is the size of all memories together (they never shrink). The cap is
        // on that sum: a cap per memory let a component with 4 memories use 4 times its cap.
        let total = self
            .linear_memory
            .saturating_add(desired.saturating_sub(current));
        if desired > self.memory_cap || total > self.memory_cap {
            return Err(MemoryLimitExceeded {
                cap: self.memory_cap,
                desired: total.max(desired),
            }
            .into());
        }
        self.peak_memory = self.peak_memory.max(desired);
        self.linear_memory = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> WasmResult<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// The store's limiter: one cap over every linear memory and table of the instance together.
pub struct InstanceLimiter {
    pub memory: Limiter,
    /// All tables of the store together, in bytes of host memory.
    pub table_bytes: usize,
}

impl InstanceLimiter {
    fn over(&self, more: usize) -> Option<MemoryLimitExceeded> {
        let total = self
            .memory
            .linear_memory
            .saturating_add(self.table_bytes)
            .saturating_add(more);
        (total > self.memory.memory_cap).then_some(MemoryLimitExceeded {
            cap: self.memory.memory_cap,
            desired: total,
        })
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> WasmResult<bool> {
        if let Some(over) = self.over(desired.saturating_sub(current)) {
            return Err(over.into());
        }
        self.memory.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> WasmResult<bool> {
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        let more = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        if let Some(over) = self.over(more) {
            return Err(over.into());
        }
        self.table_bytes += more;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// What one invocation may still write to the log through `host.log`.
struct LogBudget {
    lines_left: u32,
    bytes_left: usize,
    dropped_lines: u32,
    dropped_bytes: usize,
}

pub struct HookState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub policy: OutboundPolicy,
    pub limiter: InstanceLimiter,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
    grants: Arc<Grants>,
    pub log: Option<LogContext>,
    log_budget: LogBudget,
}

impl HookState {
    /// A fresh state granting nothing beyond `grants`: no preopens, no environment, no
    /// arguments, closed stdin, no socket (every address refused), no name lookups;
    /// stdout/stderr captured.
    pub fn new(
        grants: Arc<Grants>,
        memory_cap: usize,
        log: Option<LogContext>,
        caps: &SandboxCaps,
    ) -> Self {
        let stdout = CappedPipe::new();
        let stderr = CappedPipe::new();
        // wasi:sockets is linked (CPython imports it) but must stay inert: a raw connection
        // would bypass allowed_hosts, which only wasi:http enforces. These are wasmtime-wasi's
        // defaults today; they are spelled out so that a changed default cannot open them.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .socket_addr_check(refuse_every_address)
            .allow_ip_name_lookup(false)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        // Every handle a guest holds (pollables, streams, HTTP fields and requests) is host
        // memory outside its memory cap: bound how many it may hold at once.
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(caps.resources);
        let policy = OutboundPolicy::new(
            Arc::clone(&grants.allowed_hosts),
            grants.tenant_net.clone(),
            OutboundCaps {
                requests: caps.outbound_requests,
                concurrent: caps.outbound_concurrent,
                response_bytes: caps.outbound_response_bytes,
                hook: grants
                    .connections
                    .semaphore(caps.outbound_concurrent_per_hook),
            },
        );
        Self {
            wasi,
            http,
            table,
            policy,
            limiter: InstanceLimiter {
                memory: Limiter {
                    memory_cap,
                    peak_memory: 0,
                    linear_memory: 0,
                },
                table_bytes: 0,
            },
            stdout,
            stderr,
            grants,
            log,
            log_budget: LogBudget {
                lines_left: caps.log_lines,
                bytes_left: caps.log_bytes,
                dropped_lines: 0,
                dropped_bytes: 0,
            },
        }
    }
}

/// The `socket_addr_check` of every hook: no address may be bound, connected or sent to.
fn refuse_every_address(
    _addr: SocketAddr,
    _use: SocketAddrUse,
) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>> {
    Box::pin(std::future::ready(false))
}

impl WasiView for HookState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HookState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

impl HookState {
    /// `host.log` lines and bytes dropped past the invocation's budget.
    pub fn log_dropped(&self) -> (u32, usize) {
        (self.log_budget.dropped_lines, self.log_budget.dropped_bytes)
    }
}

fn cut(s: String) -> String {
    cut_to(s, MAX_LOG_BYTES)
}

fn cut_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl HookState {
    /// `host.log` (every WIT version): one line into the server's log, within the invocation's
    /// line and byte budget, escaped, with the hook's context attached.
    pub(crate) fn log_line(
        &mut self,
        level: tracing::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        let budget = &mut self.log_budget;
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if budget.lines_left == 0 {
            budget.dropped_lines += 1;
            budget.dropped_bytes = budget.dropped_bytes.saturating_add(size);
            return;
        }
        budget.lines_left -= 1;
        // A guest's text never reaches the log raw: control characters (a `\n` would forge a
        // second log line, ANSI escapes would repaint the operator's terminal) are escaped.
        let message = escape_controls(&cut(message)).into_owned();
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| (cut_to(k, MAX_LOG_KEY_BYTES), cut(v)))
            .collect();
        let kept = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if kept > budget.bytes_left {
            budget.bytes_left = 0;
            budget.lines_left = 0;
            budget.dropped_lines += 1;
            budget.dropped_bytes = budget.dropped_bytes.saturating_add(size);
            return;
        }
        budget.bytes_left -= kept;
        budget.dropped_bytes = budget.dropped_bytes.saturating_add(size - kept.min(size));
        let ctx = self.log.as_ref();
        let hook = ctx.map_or("", |c| &c.hook);
        let tenant = ctx.map_or("", |c| c.tenant.as_str());
        let event_id = ctx.map_or("", |c| c.event_id.as_str());
        let event = ctx.map_or("", |c| c.event);
        let request_id = ctx.map_or("", |c| c.request_id.as_str());
        // The guest's fields stay one structured field; `?` (Debug) quotes and escapes them.
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(target: "hookauth::hook", $lvl, hook, tenant, event, event_id,
                    request_id, fields = ?fields, "{message}")
            };
        }
        match level {
            tracing::Level::TRACE => emit!(tracing::Level::TRACE),
            tracing::Level::DEBUG => emit!(tracing::Level::DEBUG),
            tracing::Level::INFO => emit!(tracing::Level::INFO),
            tracing::Level::WARN => emit!(tracing::Level::WARN),
            _ => emit!(tracing::Level::ERROR),
        }
    }

    /// `host.config-get`: a value of this hook's `config`.
    pub(crate) fn config_value(&self, key: &str) -> Option<String> {
        self.grants.config.get(key).cloned()
    }

    /// `host.secret-get`: one of this hook's secrets.
    pub(crate) fn secret_value(&self, key: &str) -> Option<String> {
        self.grants.secrets.get(key).map(|s| s.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// allow_tcp/allow_udp(false) already stop a socket from being created; the address check
    /// is the second line of defence should one of them ever be turned on, so it must refuse
    /// loopback and private addresses too.
    #[tokio::test]
    async fn the_socket_address_check_refuses_every_use_of_every_address() {
        for addr in ["127.0.0.1:80", "[::1]:443", "10.0.0.1:25", "0.0.0.0:0"] {
            for use_ in [
                SocketAddrUse::TcpBind,
                SocketAddrUse::TcpListen,
                SocketAddrUse::TcpAccept,
                SocketAddrUse::TcpConnect,
                SocketAddrUse::UdpBind,
                SocketAddrUse::UdpSend,
                SocketAddrUse::UdpReceive,
            ] {
                assert!(
                    !refuse_every_address(addr.parse().unwrap(), use_).await,
                    "{addr} {use_:?}"
                );
            }
        }
    }

    fn bare_state() -> HookState {
        let grants = Grants {
            allowed_hosts: Arc::from(Vec::new()),
            tenant_net: None,
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            ..Default::default()
        };
        HookState::new(
            Arc::new(grants),
            16 << 20,
            None,
            &crate::hooks::SandboxCaps::default(),
        )
    }

    /// The wiring guests actually get: the WASI context `HookState::new` builds, driven
    /// through wasmtime-wasi's own host implementation of wasi:sockets (what a guest's
    /// `create-tcp-socket` / `create-udp-socket` call). No socket of either protocol or family
    /// is created, so nothing reaches an address without going through wasi:http and
    /// allowed_hosts. Fails if `allow_tcp`/`allow_udp` were switched on (or their defaults
    /// changed). Name lookups are covered end to end by the Python raw-socket guest.
    #[tokio::test]
    async fn a_hook_state_creates_no_socket() {
        use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
        use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as _;
        use wasmtime_wasi::p2::bindings::sockets::udp_create_socket::Host as _;
        use wasmtime_wasi::sockets::WasiSocketsView;

        let mut state = bare_state();
        let mut sockets = state.sockets();
        for family in [IpAddressFamily::Ipv4, IpAddressFamily::Ipv6] {
            let tcp = sockets
                .create_tcp_socket(family)
                .expect_err("no TCP socket");
            assert_eq!(tcp.downcast().unwrap(), ErrorCode::AccessDenied);
            let udp = sockets
                .create_udp_socket(family)
                .await
                .expect_err("no UDP socket");
            assert_eq!(udp.downcast().unwrap(), ErrorCode::AccessDenied);
        }
    }

    #[test]
    fn limiter_sums_every_memory_and_keeps_the_largest() {
        let mut limiter = Limiter {
            memory_cap: 16 << 20,
            peak_memory: 0,
            linear_memory: 0,
        };
        // Two memories created (current = 0), then the first one grown twice.
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(limiter.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert!(limiter.memory_growing(3 << 20, 4 << 20, None).unwrap());
        assert_eq!(limiter.peak_memory, 4 << 20);
        assert_eq!(limiter.linear_memory, 6 << 20);
        // Refused growth counts for neither.
        assert!(limiter.memory_growing(4 << 20, 17 << 20, None).is_err());
        assert_eq!(limiter.peak_memory, 4 << 20);
        assert_eq!(limiter.linear_memory, 6 << 20);
    }
}
