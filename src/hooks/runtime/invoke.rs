//! Running a hook once: a fresh `Store` and instance from the hook's `InstancePre`, under its
//! fuel budget, memory cap and wall-clock deadline; then the outcome, classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::hooks::limits::HookLimits;
use crate::hooks::runtime::Runtime;
use crate::hooks::state::{Grants, HookState, LogContext, MemoryLimitExceeded};
use crate::hooks::stdio::{STDIO_LINES, bounded_text, escape_controls};
use crate::hooks::wit::Exports;
pub(crate) use crate::hooks::wit::{Call, Returned};

/// Why an invocation failed. Guest errors are the hook's own report; everything else is caught
/// by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The hook returned `err(message)`.
    GuestError(String),
    /// The fuel budget ran out (a CPU-bound loop).
    OutOfFuel,
    /// The wall-clock deadline passed, in guest code or in a host call such as outbound HTTP.
    Timeout,
    /// The Wasm stack limit was hit (deep or unbounded recursion).
    StackOverflow,
    /// The guest panicked or aborted (`unreachable`).
    Panic,
    /// The guest tried to grow its memory past its cap.
    MemoryLimit,
    /// Any other trap, with wasmtime's one-line reason.
    Trap(String),
    /// The hook was asked to handle an event it did not subscribe to; it was not instantiated.
    NotSubscribed,
    /// The event belongs to another tenant than the hook; it was not instantiated.
    WrongTenant,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::GuestError(m) => write!(f, "returned an error: {m}"),
            FailureKind::OutOfFuel => f.write_str("ran out of fuel"),
            FailureKind::Timeout => f.write_str("exceeded its time limit"),
            FailureKind::StackOverflow => f.write_str("overflowed its stack"),
            FailureKind::Panic => f.write_str("panicked (unreachable executed)"),
            FailureKind::MemoryLimit => f.write_str("exceeded its memory limit"),
            FailureKind::Trap(m) => write!(f, "trapped: {m}"),
            FailureKind::NotSubscribed => f.write_str("is not subscribed to this event"),
            FailureKind::WrongTenant => f.write_str("belongs to another tenant"),
        }
    }
}

impl FailureKind {
    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::GuestError(_) => "guest_error",
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::Timeout => "timeout",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::Panic => "panic",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::Trap(_) => "trap",
            FailureKind::NotSubscribed => "not_subscribed",
            FailureKind::WrongTenant => "wrong_tenant",
        }
    }
}

/// What an invocation cost and did, whether it succeeded or not.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Fuel consumed. After a timeout this is a lower bound (the counter of a tight loop
    /// interrupted by an epoch is not always written back).
    pub fuel_used: u64,
    pub duration: Duration,
    /// Largest linear memory the guest asked for, in bytes.
    pub peak_memory: usize,
    /// All of the instance's linear memories together at the end of the invocation, in bytes
    /// (memories never shrink, so this is also their peak). It equals `peak_memory` for a
    /// component with one memory; a JavaScript hook composed with its HTTP shim has two, a
    /// C hook with the WASI adapter or a Python one may have more.
    pub linear_memory: usize,
    /// Outbound requests sent, as `METHOD URI`.
    pub outbound_sent: Vec<String>,
    /// Outbound requests refused by the allow-list, with the reason: the first
    /// [`REFUSED_SAMPLES`](crate::hooks::outbound::REFUSED_SAMPLES) of them.
    pub outbound_refused: Vec<String>,
    /// Outbound requests refused by the allow-list, all of them.
    pub outbound_refused_total: u64,
    /// Outbound requests refused, or response bodies cut, by an outbound cap.
    pub outbound_limited: u32,
    /// Response body bytes read.
    pub outbound_response_bytes: u64,
    /// `host.log` lines dropped past the invocation's caps.
    pub log_dropped_lines: u32,
    /// stdout/stderr lines dropped past [`STDIO_LINES`] (bytes past the capture cap are
    /// reported separately in the log).
    pub stdio_dropped_lines: usize,
    /// Bytes cut from the guest's `err(...)` string.
    pub error_bytes_cut: usize,
}

/// Runs one call in a fresh store. Never panics on guest misbehaviour: every trap becomes a
/// [`FailureKind`].
pub(crate) async fn run(
    runtime: &Runtime,
    exports: &Exports,
    grants: &Arc<Grants>,
    limits: &HookLimits,
    log: Option<LogContext>,
    call: Call<'_>,
) -> (Result<Returned, FailureKind>, Usage) {
    // Waiting for a free slot is not part of the hook's time: the clock starts after.
    let _slot = runtime.slots.acquire().await.expect("slots never closed");
    let started = Instant::now();
    let deadline = started + limits.timeout;

    let fresh_store = || {
        let state = HookState::new(
            Arc::clone(grants),
            limits.memory_bytes,
            log.clone(),
            &runtime.caps,
        );
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        store
            .fuel_async_yield_interval(Some(crate::hooks::engine::FUEL_YIELD_INTERVAL))
            .expect("fuel is enabled");
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    };
    let mut store = fresh_store();

    let mut error_cut = 0;
    let outcome = {
        let store = &mut store;
        let work = async move {
            let instance = loop {
                // Registered before trying, so a release between the failure and the wait
                // still wakes this one.
                let freed = runtime.pool_freed.notified();
                match exports.pre.instantiate_async(&mut *store).await {
                    Ok(instance) => break instance,
                    // The pool is sized per slot for typical hooks; a hook with many core
                    // instances (Python) can find it full although it holds a slot. Wait for
                    // another invocation to end (within this one's deadline), in a fresh store:
                    // the failed attempt's instances go back to the pool with the old one.
                    Err(e) if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                        *store = fresh_store();
                        freed.await;
                    }
                    Err(e) => return Err(e),
                }
            };
            exports.call(store, &instance, call).await
        };
        match tokio::time::timeout(limits.timeout, work).await {
            Ok(Ok(Returned::Handled(Err(message)) | Returned::Decided(Err(message)))) => {
                // Logged and stored as the delivery's last error: never whole, never raw.
                let (message, cut) = bounded_text(&message, runtime.caps.error_bytes);
                error_cut = cut;
                Err(FailureKind::GuestError(message))
            }
            Ok(Ok(returned)) => Ok(returned),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_elapsed) => Err(FailureKind::Timeout),
        }
    };

    let remaining = store.get_fuel().unwrap_or(0);
    let state = store.data_mut();
    state.policy.collect_connect_refusals();
    let counters = &state.policy.counters;
    let mut usage = Usage {
        fuel_used: limits.fuel.saturating_sub(remaining),
        duration: started.elapsed(),
        peak_memory: state.limiter.memory.peak_memory,
        linear_memory: state.limiter.memory.linear_memory,
        outbound_sent: std::mem::take(&mut state.policy.sent),
        outbound_refused: std::mem::take(&mut state.policy.refused),
        outbound_refused_total: state.policy.refused_total,
        outbound_limited: counters.limited(),
        outbound_response_bytes: counters
            .response_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        log_dropped_lines: state.log_dropped().0,
        stdio_dropped_lines: 0,
        error_bytes_cut: error_cut,
    };
    forward_output(state, log.as_ref(), &mut usage);
    if let (Some(metrics), Some(log)) = (&runtime.metrics, &log) {
        let outcome = match &outcome {
            Ok(_) => "ok",
            Err(kind) => kind.label(),
        };
        metrics.record_hook(&crate::metrics::HookRun {
            tenant: &log.tenant,
            hook: &log.hook,
            event: log.event,
            outcome,
            took: usage.duration,
            fuel: usage.fuel_used,
        });
    }
    // The instances go back to the pool with the store: wake anyone waiting for room.
    drop(store);
    runtime.pool_freed.notify_waiters();
    (outcome, usage)
}

/// Maps a wasmtime error to what happened, by type, never by message text.
fn classify(error: &wasmtime::Error) -> FailureKind {
    if error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return FailureKind::MemoryLimit;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => FailureKind::OutOfFuel,
        Some(Trap::Interrupt) => FailureKind::Timeout,
        Some(Trap::StackOverflow) => FailureKind::StackOverflow,
        Some(Trap::UnreachableCodeReached) => FailureKind::Panic,
        Some(other) => FailureKind::Trap(other.to_string()),
        None => {
            if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return FailureKind::Trap(format!("called exit({})", exit.0));
            }
            FailureKind::Trap(escape_controls(&error.root_cause().to_string()).into_owned())
        }
    }
}

/// Sends the captured stdout/stderr to the log, and one summary line per kind of cap the
/// invocation ran into (dropped output, refused or limited outbound requests).
fn forward_output(state: &mut HookState, log: Option<&LogContext>, usage: &mut Usage) {
    use std::sync::atomic::Ordering::Relaxed;
    let (hook, tenant, event, event_id) = match log {
        Some(c) => (&*c.hook, c.tenant.as_str(), c.event, c.event_id.as_str()),
        None => ("", "", "", ""),
    };
    for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let (text, dropped) = pipe.take();
        let mut lines = text.lines().filter(|l| !l.is_empty());
        for line in lines.by_ref().take(STDIO_LINES) {
            let line = escape_controls(line);
            tracing::info!(target: "hookauth::hook", hook, tenant, event, event_id, stream, "{line}");
        }
        let dropped_lines = lines.count();
        usage.stdio_dropped_lines += dropped_lines;
        if dropped > 0 || dropped_lines > 0 {
            tracing::warn!(target: "hookauth::hook", hook, tenant, event, event_id, stream,
                dropped_bytes = dropped, dropped_lines, "hook output past the cap was dropped");
        }
    }
    let (log_lines, log_bytes) = state.log_dropped();
    if log_lines > 0 {
        tracing::warn!(target: "hookauth::hook", hook, tenant, event, event_id,
            dropped_lines = log_lines, dropped_bytes = log_bytes,
            "hook log lines past the cap were dropped");
    }
    if usage.outbound_refused_total > 0 {
        tracing::warn!(target: "hookauth::hook", hook, tenant, event, event_id,
            refused = usage.outbound_refused_total, samples = ?usage.outbound_refused,
            "outbound request refused");
    }
    let c = &state.policy.counters;
    if usage.outbound_limited > 0 {
        tracing::warn!(target: "hookauth::hook", hook, tenant, event, event_id,
            over_requests = c.over_requests.load(Relaxed),
            over_concurrent = c.over_concurrent.load(Relaxed),
            over_response_bytes = c.over_response_bytes.load(Relaxed),
            waited_for_hook = c.waited_for_hook.load(Relaxed),
            "outbound requests limited");
    }
}
