//! Per-invocation limits: the server's defaults, each overridable per hook in hooks.toml.

use std::time::Duration;

use crate::hooks::engine::POOL_MAX_MEMORY_SIZE;
use crate::hooks::manifest::HookEntry;

/// Fuel per event by default: ~5–40 ms of CPU for compiled guests (wasm-notes §7: 10M fuel ≈
/// 1–8 ms). A trivial Rust hook uses ~2,000 and a JavaScript one ~140,000, so this only stops
/// runaway code. Without it a hostile loop would burn a core until the wall-clock deadline.
pub const DEFAULT_FUEL: u64 = 50_000_000;
/// Linear memory per invocation by default. Compiled guests idle at ~1 MiB; interpreted ones
/// (JS, Python) need 64 MiB, set per hook. Without a cap a memory bomb would take host memory.
pub const DEFAULT_MEMORY_BYTES: usize = 16 << 20;
/// Wall clock per event by default, host calls (outbound HTTP) included. Without it a hook
/// waiting on a slow API would hold the tenant's delivery queue indefinitely.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Upper bounds for what hooks.toml may ask for.
pub const MAX_FUEL: u64 = 10_000_000_000;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookLimits {
    pub fuel: u64,
    pub memory_bytes: usize,
    pub timeout: Duration,
}

impl Default for HookLimits {
    fn default() -> Self {
        Self {
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl HookLimits {
    /// These limits with an entry's overrides applied, or every override that is out of range.
    pub fn with_overrides(&self, entry: &HookEntry) -> Result<Self, Vec<String>> {
        let mut limits = self.clone();
        let mut bad = Vec::new();
        if let Some(fuel) = entry.fuel {
            if fuel == 0 || fuel > MAX_FUEL {
                bad.push(format!("fuel = {fuel} is outside 1..={MAX_FUEL}"));
            }
            limits.fuel = fuel;
        }
        if let Some(mib) = entry.memory_mib {
            let max_mib = POOL_MAX_MEMORY_SIZE >> 20;
            if mib == 0 || mib as usize > max_mib {
                bad.push(format!("memory_mib = {mib} is outside 1..={max_mib}"));
            }
            limits.memory_bytes = (mib as usize) << 20;
        }
        if let Some(ms) = entry.timeout_ms {
            let max_ms = MAX_TIMEOUT.as_millis();
            if ms == 0 || u128::from(ms) > max_ms {
                bad.push(format!("timeout_ms = {ms} is outside 1..={max_ms}"));
            }
            limits.timeout = Duration::from_millis(ms);
        }
        if bad.is_empty() { Ok(limits) } else { Err(bad) }
    }
}

/// Wall clock per gate decision by default: a gate runs inside a login or a sign-up, so its
/// budget is a fraction of the request's, not of a background delivery's.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_millis(50);
/// Fuel per gate decision by default (a trivial Rust gate uses a few thousand).
pub const DEFAULT_GATE_FUEL: u64 = 5_000_000;

/// The operator's gate budgets (`[hooks] gate_*`): what a gate gets unless hooks.toml says
/// otherwise, and how far hooks.toml (or a tenant manifest) may raise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateBudgets {
    pub timeout: Duration,
    pub fuel: u64,
    pub max_timeout: Duration,
    pub max_fuel: u64,
}

impl Default for GateBudgets {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_GATE_TIMEOUT,
            fuel: DEFAULT_GATE_FUEL,
            max_timeout: Duration::from_secs(5),
            max_fuel: 1_000_000_000,
        }
    }
}

impl GateBudgets {
    /// A gate's limits: the hook's memory, these budgets, and the hook's own `gate_timeout_ms` /
    /// `gate_fuel` within the ceilings. (Gates are files in the hooks directory, platform or
    /// tenant: whoever writes them is trusted with the operator's ceilings.)
    pub fn limits_for(
        &self,
        memory_bytes: usize,
        timeout_ms: Option<u64>,
        fuel: Option<u64>,
    ) -> Result<HookLimits, Vec<String>> {
        let mut bad = Vec::new();
        let (max_timeout, max_fuel) = (self.max_timeout, self.max_fuel);
        let timeout = match timeout_ms {
            Some(ms) if ms == 0 || u128::from(ms) > max_timeout.as_millis() => {
                bad.push(format!(
                    "gate_timeout_ms = {ms} is outside 1..={}",
                    max_timeout.as_millis()
                ));
                max_timeout
            }
            Some(ms) => Duration::from_millis(ms),
            None => self.timeout.min(max_timeout),
        };
        let fuel = match fuel {
            Some(f) if f == 0 || f > max_fuel => {
                bad.push(format!("gate_fuel = {f} is outside 1..={max_fuel}"));
                max_fuel
            }
            Some(f) => f,
            None => self.fuel.min(max_fuel),
        };
        if bad.is_empty() {
            Ok(HookLimits {
                fuel,
                memory_bytes,
                timeout,
            })
        } else {
            Err(bad)
        }
    }
}

/// What one invocation may make the host do or keep on its behalf, beyond fuel, memory and
/// time, and the outbound connections one hook may hold across all of its invocations.
/// Operator-wide (`[hooks]` in the config); each value is checked against [`SandboxCaps::check`]
/// at start. Exceeding one is an error the guest sees (outbound) or output cut with a marker
/// (logs, error strings), never a trap of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCaps {
    /// Outbound requests one invocation may start (refused ones included). Without it one
    /// invocation opened ~3,500 sockets.
    pub outbound_requests: u32,
    /// Outbound requests of one invocation in flight at once (connecting, waiting, or with a
    /// response body still open).
    pub outbound_concurrent: u32,
    /// Outbound requests of one hook in flight at once, over all of its invocations: what stops
    /// many concurrent invocations of a hostile hook from multiplying the per-invocation cap.
    /// A request past it waits for a slot (within its invocation's deadline) rather than
    /// failing, so honest concurrent deliveries of a busy hook queue; keep it above the
    /// hook's delivery lanes (`delivery.hook_concurrency`, 64 on 2 cores) for throughput.
    pub outbound_concurrent_per_hook: u32,
    /// Response body bytes one invocation may read over all of its requests.
    pub outbound_response_bytes: u64,
    /// `host.log` calls kept per invocation; later ones are dropped and counted.
    pub log_lines: u32,
    /// Bytes of `host.log` messages and fields kept per invocation.
    pub log_bytes: usize,
    /// Bytes kept of the string a hook returns with `err(...)`; it is logged and stored as the
    /// delivery's last error, so a guest must not choose its size.
    pub error_bytes: usize,
    /// Handles (streams, pollables, HTTP requests, fields...) one invocation may hold at once
    /// in its WASI resource table. wasmtime's default is 1,000,000, each costing host memory
    /// outside the memory cap.
    pub resources: usize,
}

pub const DEFAULT_OUTBOUND_REQUESTS: u32 = 16;
pub const DEFAULT_OUTBOUND_CONCURRENT: u32 = 4;
pub const DEFAULT_OUTBOUND_CONCURRENT_PER_HOOK: u32 = 256;
pub const DEFAULT_OUTBOUND_RESPONSE_BYTES: u64 = 4 << 20;
pub const DEFAULT_LOG_BYTES: usize = 64 << 10;
pub const DEFAULT_ERROR_BYTES: usize = 2048;
/// Plenty for interpreted guests, which create and drop pollables and streams constantly but
/// hold few at once.
/// With wasi:http fields capped at 32 KiB each, this bounds what handles can make the host
/// hold to ~128 MiB per invocation in the worst case.
pub const DEFAULT_RESOURCES: usize = 4_096;

/// Ceilings for the operator's values: above these the host itself would be at risk.
pub const MAX_OUTBOUND_REQUESTS: u32 = 1_000;
pub const MAX_OUTBOUND_CONCURRENT: u32 = 64;
pub const MAX_OUTBOUND_CONCURRENT_PER_HOOK: u32 = 4_096;
pub const MAX_OUTBOUND_RESPONSE_BYTES: u64 = 64 << 20;
pub const MAX_LOG_LINES_CEILING: u32 = 10_000;
pub const MAX_LOG_BYTES_CEILING: usize = 4 << 20;
pub const MAX_ERROR_BYTES: usize = 64 << 10;
pub const MAX_RESOURCES: usize = 1_000_000;

impl Default for SandboxCaps {
    fn default() -> Self {
        Self {
            outbound_requests: DEFAULT_OUTBOUND_REQUESTS,
            outbound_concurrent: DEFAULT_OUTBOUND_CONCURRENT,
            outbound_concurrent_per_hook: DEFAULT_OUTBOUND_CONCURRENT_PER_HOOK,
            outbound_response_bytes: DEFAULT_OUTBOUND_RESPONSE_BYTES,
            log_lines: crate::hooks::state::MAX_LOG_LINES,
            log_bytes: DEFAULT_LOG_BYTES,
            error_bytes: DEFAULT_ERROR_BYTES,
            resources: DEFAULT_RESOURCES,
        }
    }
}

impl SandboxCaps {
    /// Every value outside its range, named by its config key (`[hooks]`).
    pub fn check(&self) -> Result<(), Vec<String>> {
        fn range<T: PartialOrd + std::fmt::Display>(
            bad: &mut Vec<String>,
            key: &str,
            value: T,
            min: T,
            max: T,
        ) {
            if value < min || value > max {
                bad.push(format!("hooks.{key} = {value} is outside {min}..={max}"));
            }
        }
        let mut bad = Vec::new();
        range(
            &mut bad,
            "outbound_max_requests",
            self.outbound_requests,
            1,
            MAX_OUTBOUND_REQUESTS,
        );
        range(
            &mut bad,
            "outbound_max_concurrent",
            self.outbound_concurrent,
            1,
            MAX_OUTBOUND_CONCURRENT,
        );
        range(
            &mut bad,
            "outbound_max_concurrent_per_hook",
            self.outbound_concurrent_per_hook,
            1,
            MAX_OUTBOUND_CONCURRENT_PER_HOOK,
        );
        range(
            &mut bad,
            "outbound_max_response_bytes",
            self.outbound_response_bytes,
            1,
            MAX_OUTBOUND_RESPONSE_BYTES,
        );
        range(
            &mut bad,
            "log_max_lines",
            self.log_lines,
            1,
            MAX_LOG_LINES_CEILING,
        );
        range(
            &mut bad,
            "log_max_bytes",
            self.log_bytes,
            1024,
            MAX_LOG_BYTES_CEILING,
        );
        range(
            &mut bad,
            "error_max_bytes",
            self.error_bytes,
            64,
            MAX_ERROR_BYTES,
        );
        range(
            &mut bad,
            "max_resources",
            self.resources,
            256,
            MAX_RESOURCES,
        );
        if self.outbound_concurrent_per_hook < self.outbound_concurrent {
            bad.push(format!(
                "hooks.outbound_max_concurrent_per_hook = {} is below hooks.outbound_max_concurrent = {}",
                self.outbound_concurrent_per_hook, self.outbound_concurrent
            ));
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }
}

#[cfg(test)]
mod caps_tests {
    use super::*;

    #[test]
    fn the_defaults_are_in_range_and_zero_is_refused() {
        assert_eq!(SandboxCaps::default().check(), Ok(()));
        let zero = SandboxCaps {
            outbound_requests: 0,
            outbound_concurrent: 0,
            outbound_concurrent_per_hook: 0,
            outbound_response_bytes: 0,
            log_lines: 0,
            log_bytes: 0,
            error_bytes: 0,
            resources: 0,
        };
        assert_eq!(zero.check().unwrap_err().len(), 8);
        // One invocation alone must fit the hook's share.
        let narrow = SandboxCaps {
            outbound_concurrent_per_hook: 2,
            ..SandboxCaps::default()
        };
        let bad = narrow.check().unwrap_err();
        assert!(
            bad.len() == 1 && bad[0].contains("outbound_max_concurrent_per_hook"),
            "{bad:?}"
        );
    }
}
