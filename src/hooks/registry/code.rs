//! Compiled code shared by sha256: one component deployed to 1,000 tenants is compiled once, on
//! first use, on a bounded pool of blocking threads, so compiles never occupy the async workers
//! that serve auth requests, within the tenant compile ceilings (see [`super::compile`]).
//! Entries live as long as some hook holds them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OnceCell, Semaphore};
use wasmtime::component::Component;

use super::compile::{CompileError, CompileLimits, compile};
use crate::hooks::cache::{CacheKey, CompileCache};
use crate::hooks::runtime::Runtime;

/// One component's compiled code, compiled at most once.
pub(crate) struct Code {
    pub sha256: String,
    compiled: OnceCell<Component>,
    /// A compile that failed (invalid, too large, too slow) fails the same way every time:
    /// remembered, so a bomb is not recompiled on every event.
    failed: Mutex<Option<CompileError>>,
}

impl Code {
    pub fn is_compiled(&self) -> bool {
        self.compiled.initialized()
    }
}

pub(crate) struct CodeCache {
    runtime: Arc<Runtime>,
    entries: Mutex<HashMap<String, Weak<Code>>>,
    /// Compiles running at once. Each holds a core for up to seconds (JavaScript, Python); a
    /// burst of first events across tenants queues here instead of starving the server.
    /// Shared with the platform loader. A compile past its ceiling keeps its permit until it
    /// really ends.
    compiling: Arc<Semaphore>,
    limits: CompileLimits,
    disk: Option<CompileCache>,
}

/// Why a tenant component is not available.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodeError {
    /// Its bytes could not be had (database unreachable): tried again on the next event.
    #[error("{0}")]
    Fetch(String),
    #[error(transparent)]
    Compile(#[from] CompileError),
}

impl From<CodeError> for String {
    fn from(e: CodeError) -> Self {
        e.to_string()
    }
}

impl CodeCache {
    pub fn new(
        runtime: Arc<Runtime>,
        concurrency: u32,
        limits: CompileLimits,
        disk_dir: Option<PathBuf>,
        disk_key: Option<&CacheKey>,
    ) -> Self {
        let disk = disk_dir.and_then(|dir| {
            CompileCache::open(&dir, &runtime.engine, disk_key)
                .inspect_err(|e| {
                    tracing::warn!(dir = %dir.display(), error = %e,
                    "compile cache unavailable for tenant hooks")
                })
                .ok()
        });
        Self {
            runtime,
            entries: Mutex::new(HashMap::new()),
            compiling: Arc::new(Semaphore::new(concurrency.max(1) as usize)),
            limits,
            disk,
        }
    }

    /// The compile permits, for the platform loader to share.
    pub fn permits(&self) -> &Arc<Semaphore> {
        &self.compiling
    }

    /// The shared entry for a hash (not compiled yet unless someone already did).
    pub fn entry(&self, sha256: &str) -> Arc<Code> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(code) = entries.get(sha256).and_then(Weak::upgrade) {
            return code;
        }
        entries.retain(|_, w| w.strong_count() > 0);
        let code = Arc::new(Code {
            sha256: sha256.to_owned(),
            compiled: OnceCell::new(),
            failed: Mutex::new(None),
        });
        entries.insert(sha256.to_owned(), Arc::downgrade(&code));
        code
    }

    /// Distinct components currently compiled in memory.
    pub fn compiled_count(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .values()
            .filter_map(Weak::upgrade)
            .filter(|c| c.is_compiled())
            .count()
    }

    /// The compiled component; `bytes` is asked for only when it has to be compiled. A fetch
    /// failure (database unreachable) is not remembered: the next event tries again. A compile
    /// failure is.
    pub async fn component<F, Fut>(&self, code: &Code, bytes: F) -> Result<Component, CodeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, String>>,
    {
        if let Some(e) = code
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(e.into());
        }
        code.compiled
            .get_or_try_init(|| async {
                let engine = &self.runtime.engine;
                // Off the async workers: an artifact is tens of MiB to read and authenticate.
                if let Some(disk) = self.disk.clone() {
                    let (engine, sha256) = (engine.clone(), code.sha256.clone());
                    if let Ok(Some(c)) =
                        tokio::task::spawn_blocking(move || disk.load(&engine, &sha256)).await
                    {
                        return Ok(c);
                    }
                }
                let bytes = bytes().await.map_err(CodeError::Fetch)?;
                let compiled = compile(engine, bytes, &self.limits, &self.compiling)
                    .await
                    .inspect_err(|e| {
                        *code.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                    })?;
                if let Some(disk) = self.disk.clone() {
                    let (c, sha256) = (compiled.clone(), code.sha256.clone());
                    let stored = tokio::task::spawn_blocking(move || disk.store(&c, &sha256))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    if let Err(e) = stored {
                        tracing::warn!(sha256 = %code.sha256, error = %e,
                            "cannot write compiled tenant hook to the cache");
                    }
                }
                Ok(compiled)
            })
            .await
            .cloned()
    }
}
