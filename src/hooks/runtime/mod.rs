//! Running hooks: the one [`engine`], what an invocation may import ([`imports`]), what its
//! store holds and grants ([`state`], [`outbound`], [`stdio`]), its [`limits`], and one
//! invocation ([`invoke`]).
//!
//! [`Runtime`] is what every hook of a host shares: the engine, the linker, the epoch ticker and
//! the slots that bound concurrent invocations. It lives as long as the longest-lived hook.

pub mod engine;
pub mod imports;
pub(crate) mod invoke;
pub(crate) mod limits;
pub mod outbound;
pub(crate) mod state;
pub mod stdio;

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::hooks::engine::{EpochTicker, build_engine};
use crate::hooks::limits::SandboxCaps;
use crate::hooks::state::HookState;
use crate::metrics::Metrics;

pub(crate) struct Runtime {
    pub engine: Engine,
    pub linker: Linker<HookState>,
    /// One permit per pooled instance slot: an invocation waits for a slot instead of failing
    /// when all are in use.
    pub slots: Semaphore,
    /// Signalled whenever an invocation's instances return to the pool (see `invoke::run`).
    pub pool_freed: Notify,
    /// What every invocation may make the host do or keep (outbound, logs, handles).
    pub caps: SandboxCaps,
    /// Where every invocation is counted (`None`: the author's CLI tools, benchmarks).
    pub metrics: Option<Arc<Metrics>>,
    _ticker: EpochTicker,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the Wasm engine: {0}")]
    Engine(String),
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[from] std::io::Error),
}

impl Runtime {
    pub fn new(max_concurrent: u32) -> Result<Self, RuntimeError> {
        let engine =
            build_engine(max_concurrent).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let linker = linker(&engine).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            engine,
            linker,
            slots: Semaphore::new(max_concurrent as usize),
            pool_freed: Notify::new(),
            caps: SandboxCaps::default(),
            metrics: None,
            _ticker: ticker,
        })
    }

    /// The same runtime with the operator's caps instead of the defaults.
    pub fn with_caps(mut self, caps: SandboxCaps) -> Self {
        self.caps = caps;
        self
    }

    /// The same runtime, counting every invocation in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// WASI 0.2 (the context each store gets grants nothing), wasi:http's outgoing side (checked
/// against allowed_hosts) and hookauth's own host interface. Which of these a hook may import
/// at all is decided earlier, in `imports.rs`.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<HookState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::hooks::wit::add_to_linker(&mut linker)?;
    Ok(linker)
}
