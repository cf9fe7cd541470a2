//! Compiling a component, bounded in size and time, off the async runtime.
//!
//! Cranelift cannot be interrupted, and a small component can be made to take minutes to
//! compile (a 217 KiB one took 41–96 s). So:
//! - a component over [`CompileLimits::max_component_bytes`] is refused before any work;
//! - each compile runs on a thread of its own, never a tokio worker, and the caller stops
//!   waiting at [`CompileLimits::timeout`]: the compile is reported as failed at the ceiling;
//! - the thread holds its compile permit until Cranelift really returns, so a bomb whose
//!   caller gave up still counts against the pool: bombs cannot multiply, they queue.
//!
//! A dedicated thread rather than `spawn_blocking`: a runaway compile left on tokio's blocking
//! pool would also hold up the runtime's shutdown until it ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Default largest platform hook (`[hooks] max_component_mib`). The largest real guests are
/// 12 MB (SpiderMonkey JavaScript) and 18 MB (Python).
pub const DEFAULT_MAX_COMPONENT_MIB: u32 = 64;
/// Default compile-time ceiling for platform hooks (`[hooks] compile_timeout_ms`). The slowest
/// real guest (SpiderMonkey) compiles in ~15 s on an idle 2-core machine.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default compile-time ceiling for tenant hooks (`[tenant_hooks] compile_timeout_ms`): a
/// deploy waits for its compile, so it is shorter than the platform one.
pub const DEFAULT_TENANT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// How big and how slow a compile may be.
#[derive(Debug, Clone)]
pub struct CompileLimits {
    pub max_component_bytes: usize,
    pub timeout: Duration,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            max_component_bytes: (DEFAULT_MAX_COMPONENT_MIB as usize) << 20,
            timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error(
        "the component is {size} bytes, over the limit of {} MiB (max_component_mib)",
        .max >> 20
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "compiling it took longer than the limit of {} ms (compile_timeout_ms): refused as a \
         compile bomb",
        .limit.as_millis()
    )]
    TimedOut { limit: Duration },
    #[error("does not compile: {0}")]
    Invalid(String),
}

/// Compiles `bytes` within `limits`, holding one of `permits` for as long as the compile
/// really runs.
pub(crate) async fn compile(
    engine: &Engine,
    bytes: Vec<u8>,
    limits: &CompileLimits,
    permits: &Arc<Semaphore>,
) -> Result<Component, CompileError> {
    if bytes.len() > limits.max_component_bytes {
        return Err(CompileError::TooLarge {
            size: bytes.len(),
            max: limits.max_component_bytes,
        });
    }
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .map_err(|_| CompileError::Invalid("the compile pool is closed".into()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("hook-compile".into())
        .spawn(move || {
            let result = Component::new(&engine, &bytes);
            // Released only now, however long ago the caller stopped waiting.
            drop(permit);
            let _ = tx.send(result);
        })
        .map_err(|e| CompileError::Invalid(format!("cannot start a compile thread: {e}")))?;
    match tokio::time::timeout(limits.timeout, rx).await {
        Err(_) => Err(CompileError::TimedOut {
            limit: limits.timeout,
        }),
        Ok(Err(_)) => Err(CompileError::Invalid("the compiler panicked".into())),
        Ok(Ok(result)) => result.map_err(|e| CompileError::Invalid(e.root_cause().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Locals kept live across many branches: ~37 KiB that take Cranelift ~2.3 s on an idle
    /// 2-core machine (tests/hooks/compile_limits.rs has the measurement).
    fn bomb() -> Vec<u8> {
        let (locals, blocks) = (2000, 2000);
        let mut body = String::new();
        for b in 0..blocks {
            let k = b % (locals - 1);
            body.push_str(&format!(
                "(if (local.get 0) (then (local.set {k} (i32.add (local.get {k}) (local.get {})))))",
                k + 1
            ));
        }
        let wat = format!(
            "(component (core module (func (param i32) (local {}) {body})))",
            "i32 ".repeat(locals)
        );
        wat::parse_str(wat).unwrap()
    }

    #[tokio::test]
    async fn a_compile_past_its_ceiling_keeps_its_permit_until_it_really_ends() {
        let engine = crate::hooks::engine::build_engine(1).unwrap();
        let permits = Arc::new(Semaphore::new(1));
        let limits = CompileLimits {
            max_component_bytes: 1 << 20,
            timeout: Duration::from_millis(100),
        };
        let Err(err) = compile(&engine, bomb(), &limits, &permits).await else {
            panic!("the bomb compiled within 100 ms");
        };
        assert_eq!(
            err,
            CompileError::TimedOut {
                limit: Duration::from_millis(100)
            }
        );
        // The caller gave up; the compile still runs and still counts: a second bomb would
        // queue behind it rather than run alongside.
        assert_eq!(permits.available_permits(), 0);
        // And the permit comes back once Cranelift is done.
        let _back = permits.acquire().await.unwrap();
    }

    #[tokio::test]
    async fn the_size_ceiling_is_checked_before_any_work() {
        let engine = crate::hooks::engine::build_engine(1).unwrap();
        let permits = Arc::new(Semaphore::new(0));
        let limits = CompileLimits {
            max_component_bytes: 10,
            timeout: Duration::from_secs(1),
        };
        // No permit is available: a size check after acquiring one would wait forever.
        let Err(err) = compile(&engine, vec![0; 11], &limits, &permits).await else {
            panic!("compiled");
        };
        assert_eq!(err, CompileError::TooLarge { size: 11, max: 10 });
    }
}
