//! The Wasm hook host: platform hooks from the hooks directory and each tenant's own hooks
//! (file-deployed or deployed through the API), run sandboxed as [`EventHandler`]s.
//!
//! - [`runtime`]: running hooks: the one [`engine`], allowed [`imports`], a store's state and
//!   grants (`state`, [`outbound`], [`stdio`]), `limits`, one invocation (`invoke`).
//! - [`wit`]: the WIT versions served (`since_v0_1_0`, `since_v0_2_0`, the `latest` alias),
//!   which exports a component has and how each is called.
//! - [`registry`]: where hooks come from: the three sources and their order, [`manifest`]
//!   (`hooks.toml`) and tenant manifests, the `loader`, the compile [`cache`], API hooks stored
//!   in the database, replica sync. [`HookRegistry`] is the server's [`HandlerSource`].
//! - [`author`]: tools for hook authors ([`scaffold`], [`tools`]).
//!
//! Knows nothing of HTTP: the dispatcher hands it committed events; the registry reads tenant
//! hooks and secrets from the store.
//!
//! [`HandlerSource`]: crate::events::HandlerSource

pub mod author;
pub mod registry;
pub mod runtime;
pub mod wit;

// The parts by their short names, as the rest of the crate (and the tests) know them.
pub use author::{scaffold, tools};
pub use registry::{cache, compile, manifest};
pub(crate) use registry::{hook, loader, problems};
pub use runtime::{engine, imports, outbound, stdio};
pub(crate) use runtime::{invoke, limits, state};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use hook::{HookFailure, Scope, WasmHook};
pub use invoke::{FailureKind, Usage};
pub use limits::{
    DEFAULT_FUEL, DEFAULT_GATE_FUEL, DEFAULT_GATE_TIMEOUT, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT,
    GateBudgets, HookLimits, SandboxCaps,
};
pub use problems::{Problem, ProblemKind};
pub use registry::{DeployError, HookInfo, HookRegistry, RegistrySettings};
pub use runtime::RuntimeError;
pub use state::{MAX_LOG_BYTES, MAX_LOG_LINES};

use crate::domain::TenantId;
use crate::events::{EventHandler, HandlerRegistry};

/// Invocations that may run at once across all hooks by default (pooled instance slots).
/// Further invocations wait for a slot. Resident memory is bounded by this times each hook's
/// memory cap.
pub const DEFAULT_MAX_CONCURRENT: u32 = 1000;

/// How the server wants its hooks loaded.
#[derive(Clone)]
pub struct HookSettings {
    /// The directory of `*.wasm` hooks and the optional `hooks.toml`.
    pub dir: PathBuf,
    /// Skip bad hooks with a warning instead of refusing to start.
    pub lenient: bool,
    /// Where compiled hooks are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Authenticates the cached artifacts (derived from the server's `secret_key`); `None`
    /// uses a random key kept in the cache directory (see [`cache::CompileCache::open`]).
    pub cache_key: Option<cache::CacheKey>,
    /// Largest component and longest compile (`[hooks] max_component_mib`,
    /// `compile_timeout_ms`).
    pub compile: compile::CompileLimits,
    /// Patterns (`*` matches any run of characters) of the environment variables hooks.toml may
    /// name as secrets (`[hooks] secret_env_allow`). Names under `HOOKAUTH_` are refused
    /// whatever these say.
    pub secret_env_allow: Vec<String>,
    /// Limits for hooks that hooks.toml does not override.
    pub defaults: HookLimits,
    /// Invocations that may run at once.
    pub max_concurrent: u32,
    /// What each invocation may make the host do or keep (outbound, logs, handles).
    pub caps: SandboxCaps,
    /// Gate budgets and their ceilings.
    pub gates: GateBudgets,
    /// Where `secrets` environment variables are read: `None` is the process environment;
    /// a map stands in for it (tests, `hookauth hooks run`).
    pub env: Option<HashMap<String, String>>,
}

impl std::fmt::Debug for HookSettings {
    // By hand: `env` may hold secret values, so only its variable names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSettings")
            .field("dir", &self.dir)
            .field("lenient", &self.lenient)
            .field("cache_dir", &self.cache_dir)
            .field("cache_key", &self.cache_key)
            .field("compile", &self.compile)
            .field("secret_env_allow", &self.secret_env_allow)
            .field("defaults", &self.defaults)
            .field("max_concurrent", &self.max_concurrent)
            .field("caps", &self.caps)
            .field("gates", &self.gates)
            .field(
                "env",
                &self.env.as_ref().map(|m| m.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl HookSettings {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lenient: false,
            cache_dir: None,
            cache_key: None,
            compile: compile::CompileLimits::default(),
            secret_env_allow: manifest::DEFAULT_SECRET_ENV_ALLOW
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            defaults: HookLimits::default(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            caps: SandboxCaps::default(),
            gates: GateBudgets::default(),
            env: None,
        }
    }

    fn read_env(&self, var: &str) -> Option<String> {
        match &self.env {
            Some(map) => map.get(var).cloned(),
            None => std::env::var(var).ok(),
        }
    }
}

/// How loading went.
#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Hooks compiled in this process.
    pub compiled: usize,
    /// Hooks loaded from the compile cache.
    pub from_cache: usize,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Strict mode: every problem found, file by file.
    #[error("{}", problems::render(.0))]
    Problems(Vec<Problem>),
}

impl LoadError {
    /// The problems found (empty for a runtime error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Problems(p) => p,
            LoadError::Runtime(_) => &[],
        }
    }
}

/// The loaded hooks of every tenant (today: the directory serves the default tenant), with the
/// engine they run on. Hooks keep the engine alive, so handlers may outlive the host value.
pub struct HookHost {
    by_tenant: BTreeMap<TenantId, Vec<Arc<WasmHook>>>,
    skipped: Vec<Problem>,
    stats: LoadStats,
}

impl HookHost {
    /// Loads and validates every hook in `settings.dir` for the default tenant. Strict by
    /// default: any problem fails the load with the full list; lenient skips the bad hooks.
    pub async fn load(settings: &HookSettings) -> Result<HookHost, LoadError> {
        let runtime = Arc::new(
            runtime::Runtime::new(settings.max_concurrent)?.with_caps(settings.caps.clone()),
        );
        let tenant = TenantId::default_tenant();
        // One compile at a time: a compile past its ceiling keeps the permit until it ends.
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let loaded =
            loader::load_dir(&runtime, settings, &loader::DirScope::Platform, &permits).await;
        if !loaded.problems.is_empty() {
            if !settings.lenient {
                return Err(LoadError::Problems(loaded.problems));
            }
            for p in &loaded.problems {
                tracing::warn!(file = %p.file, problem = %p.kind, "skipping hook");
            }
        }
        tracing::info!(
            dir = %settings.dir.display(),
            hooks = loaded.hooks.len(),
            compiled = loaded.stats.compiled,
            from_cache = loaded.stats.from_cache,
            skipped = loaded.problems.len(),
            elapsed_ms = loaded.stats.elapsed.as_millis() as u64,
            "hooks loaded"
        );
        let hooks = loaded.hooks.into_iter().map(Arc::new).collect();
        Ok(HookHost {
            by_tenant: BTreeMap::from([(tenant, hooks)]),
            skipped: loaded.problems,
            stats: loaded.stats,
        })
    }

    /// The default tenant's hooks as handlers, in registration order.
    pub fn handlers(&self) -> Vec<Arc<dyn EventHandler>> {
        self.hooks()
            .iter()
            .map(|h| Arc::clone(h) as Arc<dyn EventHandler>)
            .collect()
    }

    /// The default tenant's hooks, in registration order.
    pub fn hooks(&self) -> &[Arc<WasmHook>] {
        self.hooks_for(&TenantId::default_tenant())
    }

    pub fn hooks_for(&self, tenant: &TenantId) -> &[Arc<WasmHook>] {
        self.by_tenant.get(tenant).map_or(&[], Vec::as_slice)
    }

    /// Registers every tenant's hooks, each tenant's in order.
    pub fn register_into(&self, registry: &mut HandlerRegistry) {
        for (tenant, hooks) in &self.by_tenant {
            for hook in hooks {
                registry.register(tenant.clone(), Arc::clone(hook) as Arc<dyn EventHandler>);
            }
        }
    }

    /// Problems of hooks skipped in lenient mode.
    pub fn skipped(&self) -> &[Problem] {
        &self.skipped
    }

    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }
}
