//! The one Wasm [`Engine`] of the process and the thread that advances its epoch.
//!
//! Every knob is a named constant saying what a hostile hook could do without it. The numbers
//! come from measurements on this project's machine (`shared/wasm-notes.md` §7–§11).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Without epochs a guest stuck in a loop that burns little fuel
/// per iteration could hold its worker thread far past its wall-clock deadline; with them it is
/// interrupted at most one tick after the deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A running guest yields to the async executor after this much fuel (~0.1 ms of CPU). Without
/// it, a spinning hook would keep a tokio worker to itself until its fuel or deadline ran out,
/// starving the HTTP requests scheduled on the same worker.
pub const FUEL_YIELD_INTERVAL: u64 = 100_000;

/// The Wasm stack a guest may use. Without a cap, unbounded recursion would overflow the host
/// thread's stack and crash the server; with it, the guest traps with "call stack exhausted".
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The largest memory cap a hook may be given in hooks.toml; also the size of each linear
/// memory slot in the pool. Without a ceiling an operator typo (or a guest asking for 4 GiB)
/// would reserve and touch memory the server needs.
pub const POOL_MAX_MEMORY_SIZE: usize = 256 << 20;

/// Core instances a single hook component may contain (Rust: 3, QuickJS: 8, Python: 14, and
/// 38 for a `componentize-py --stub-wasi` build). Without a cap, one component of thousands of
/// core modules could exhaust the pool alone.
pub const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Linear memories per component (QuickJS uses 2).
pub const POOL_MEMORIES_PER_COMPONENT: u32 = 4;

/// Tables per component.
pub const POOL_TABLES_PER_COMPONENT: u32 = 8;

/// Elements per table. SpiderMonkey and Python need tens of thousands; without a cap a guest
/// could grow a table until host memory ran out (8 bytes per element).
pub const POOL_TABLE_ELEMENTS: usize = 100_000;

/// Size of one core instance's or component instance's host-side metadata. Without a cap,
/// a component with huge numbers of globals or functions would claim host memory per instance.
pub const POOL_MAX_INSTANCE_SIZE: usize = 1 << 20;

/// Bytes of each memory / table slot kept resident and reset in place when a slot is reused,
/// rather than returned to the kernel. This is what makes a fresh instance ~11 µs instead of
/// ~25 µs, and lets a second worker thread add throughput instead of contending on `madvise`.
pub const POOL_KEEP_RESIDENT: usize = 16 << 20;

/// Unused slots that may stay warm (keeping their resident pages). Bounds the resident memory
/// left behind after a burst of concurrent invocations.
pub const POOL_MAX_UNUSED_WARM_SLOTS: u32 = 64;

/// Builds the engine every hook runs on: fuel, epochs, a fixed stack and a pooling allocator
/// sized for `max_concurrent` simultaneous invocations.
pub fn build_engine(max_concurrent: u32) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    // Deterministic CPU budget per invocation: the same hook uses the same fuel on every machine.
    config.consume_fuel(true);
    // Wall-clock deadlines (see EPOCH_TICK).
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Hooks are WASI 0.2 components: the component-model-async machinery (WASI 0.3, streams,
    // futures) is not offered, and leaving it on costs every store set-up and tear-down.
    config.concurrency_support(false);

    let mut pool = PoolingAllocationConfig::new();
    // Totals sized for typical hooks (Rust: 3 core instances, 1 memory), but never below what
    // one component may use, so the largest allowed hook always fits when it runs alone.
    // Heavier hooks running together wait for room (see `invoke::run`).
    pool.total_component_instances(max_concurrent)
        .total_core_instances(
            max_concurrent
                .saturating_mul(16)
                .max(POOL_CORE_INSTANCES_PER_COMPONENT),
        )
        .total_memories(
            max_concurrent
                .saturating_mul(2)
                .max(POOL_MEMORIES_PER_COMPONENT),
        )
        .total_tables(
            max_concurrent
                .saturating_mul(4)
                .max(POOL_TABLES_PER_COMPONENT),
        )
        .total_stacks(max_concurrent)
        .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(POOL_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(POOL_TABLES_PER_COMPONENT)
        .max_memories_per_module(2)
        .max_tables_per_module(POOL_TABLES_PER_COMPONENT)
        .table_elements(POOL_TABLE_ELEMENTS)
        .max_memory_size(POOL_MAX_MEMORY_SIZE)
        .max_component_instance_size(POOL_MAX_INSTANCE_SIZE)
        .max_core_instance_size(POOL_MAX_INSTANCE_SIZE)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(POOL_KEEP_RESIDENT)
        .max_unused_warm_slots(POOL_MAX_UNUSED_WARM_SLOTS)
        // Resets only the pages a guest dirtied (Linux ≥ 6.7); falls back silently elsewhere.
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    Engine::new(&config)
}

/// A short, stable name for the engine's code-generation settings. Compiled artifacts are only
/// valid for an engine with the same one.
pub fn compatibility_key(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    hex(&digest[..12])
}

/// Feeds whatever `Hash` writes into SHA-256, so the key is stable across processes and Rust
/// versions (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own, until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hook-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
