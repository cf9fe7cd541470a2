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
