//! Loading a hooks directory: every `*.wasm` in file-name order, each validated (a component,
//! a supported WIT version, only allowed imports, complete config), compiled or taken from the
//! cache, and asked once what it subscribes to. Every problem is collected, file by file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use crate::domain::{EventKind, TenantId};
use crate::hooks::cache::CompileCache;
use crate::hooks::compile::{CompileError, compile};
use crate::hooks::engine::hex;
use crate::hooks::hook::WasmHook;
use crate::hooks::imports::check_import;
use crate::hooks::manifest::{
    HookEntry, MANIFEST_FILE, Manifest, check_secret_env, is_env_var_name, read_regular_file,
};
use crate::hooks::outbound::{AllowedHost, HostPattern, TenantNet};
use crate::hooks::problems::{Problem, ProblemKind};
use crate::hooks::runtime::Runtime;
use crate::hooks::state::{Grants, Secret};
use crate::hooks::wit::Exports;
use crate::hooks::{HookSettings, LoadStats};

pub(crate) struct Loaded {
    /// In registration order.
    pub hooks: Vec<WasmHook>,
    pub problems: Vec<Problem>,
    pub stats: LoadStats,
}

/// Which hooks a directory holds, and where their secrets come from.
pub(crate) enum DirScope {
    /// The hooks directory: platform hooks, secrets from environment variables.
    Platform,
    /// `hooks/tenants/<tenant>/`: that tenant's hooks, secrets from the tenant's own secrets
    /// (opened from the database), never the environment.
    Tenant {
        tenant: TenantId,
        secrets: BTreeMap<String, Secret>,
    },
}

pub(crate) async fn load_dir(
    runtime: &Arc<Runtime>,
    settings: &HookSettings,
    scope: &DirScope,
    permits: &Arc<Semaphore>,
) -> Loaded {
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut stats = LoadStats::default();
    let dir = &settings.dir;

    let manifest = Manifest::read(dir).unwrap_or_else(|e| {
        problems.push(problem(MANIFEST_FILE, ProblemKind::Manifest(e.to_string())));
        Manifest::default()
    });

    let files = match wasm_files(dir) {
        Ok(files) => files,
        Err(e) => {
            problems.push(problem(
                &dir.display().to_string(),
                ProblemKind::Unreadable(e.to_string()),
            ));
            return Loaded {
                hooks: Vec::new(),
                problems,
                stats,
            };
        }
    };

    let stems: BTreeSet<&str> = files.iter().map(|(stem, _)| stem.as_str()).collect();
    for name in manifest.hooks.keys() {
        if !stems.contains(name.as_str()) {
            problems.push(problem(
                MANIFEST_FILE,
                ProblemKind::UnknownHook { hook: name.clone() },
            ));
        }
    }

    let cache = settings.cache_dir.as_deref().and_then(|root| {
        CompileCache::open(root, &runtime.engine, settings.cache_key.as_ref())
            .inspect_err(|e| {
                tracing::warn!(error = %e,
                    "compile cache refused; hooks will be compiled on every start");
            })
            .ok()
    });

    let mut hooks = Vec::new();
    for (stem, path) in &files {
        let entry = manifest.hooks.get(stem).cloned().unwrap_or_default();
        let file = format!("{stem}.wasm");
        let loading = LoadOne {
            runtime,
            settings,
            cache: cache.as_ref(),
            permits,
            scope,
            name: stem,
            path,
            entry: &entry,
        };
        match loading.load(&mut stats).await {
            Ok(hook) => hooks.push((entry.order.unwrap_or(0), hook)),
            Err(kinds) => problems.extend(kinds.into_iter().map(|k| problem(&file, k))),
        }
    }
    // Stable: equal `order` keeps file-name order.
    hooks.sort_by_key(|(order, _)| *order);
    stats.elapsed = started.elapsed();
    Loaded {
        hooks: hooks.into_iter().map(|(_, h)| h).collect(),
        problems,
        stats,
    }
}

fn problem(file: &str, kind: ProblemKind) -> Problem {
    Problem {
        file: file.to_owned(),
        kind,
    }
}

/// `(stem, path)` of every `*.wasm` file, sorted by file name.
fn wasm_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((stem, path));
        }
    }
    files.sort();
    Ok(files)
}

struct LoadOne<'a> {
    runtime: &'a Arc<Runtime>,
    settings: &'a HookSettings,
    cache: Option<&'a CompileCache>,
    permits: &'a Arc<Semaphore>,
    scope: &'a DirScope,
    name: &'a str,
    path: &'a Path,
    entry: &'a HookEntry,
}

/// What hooks.toml grants a hook, once checked.
struct Granted {
    limits: crate::hooks::HookLimits,
    gate_limits: crate::hooks::HookLimits,
    grants: Grants,
    events: Option<Vec<EventKind>>,
    scope: crate::hooks::Scope,
}

impl LoadOne<'_> {
    async fn load(&self, stats: &mut LoadStats) -> Result<WasmHook, Vec<ProblemKind>> {
        let mut problems = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            problems.push(ProblemKind::BadName);
        }
        // The manifest is checked first and fully, so its problems are listed even when the
        // component itself is also broken.
        let granted = self.check_entry().map_err(|mut p| {
            problems.append(&mut p);
        });

        // Capped: a hooks-directory writer could put a FIFO or /dev/zero behind the name.
        let max = self.settings.compile.max_component_bytes;
        let bytes = match read_regular_file(self.path, max as u64) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                problems.push(ProblemKind::CompileLimit(CompileError::TooLarge {
                    size: std::fs::metadata(self.path).map_or(max + 1, |m| m.len() as usize),
                    max,
                }));
                return Err(problems);
            }
            Err(e) => {
                problems.push(ProblemKind::Unreadable(e.to_string()));
                return Err(problems);
            }
        };
        if let Err(kind) = check_header(&bytes) {
            problems.push(kind);
            return Err(problems);
        }
        let sha256 = hex(&Sha256::digest(&bytes));
        let component = match self.component(bytes, &sha256, stats).await {
            Ok(c) => c,
            Err(kind) => {
                problems.push(kind);
                return Err(problems);
            }
        };
        problems.extend(check_interfaces(&component, &self.runtime.engine));
        if !problems.is_empty() {
            return Err(problems);
        }
        let exports = self
            .runtime
            .linker
            .instantiate_pre(&component)
            .and_then(Exports::new)
            .map_err(|e| vec![ProblemKind::Link(e.root_cause().to_string())])?;
        let Ok(granted) = granted else {
            return Err(problems);
        };

        let mut hook = WasmHook {
            name: Arc::from(self.name),
            scope: granted.scope,
            file: self.path.to_owned(),
            sha256,
            events: BTreeSet::new(),
            limits: granted.limits,
            grants: Arc::new(granted.grants),
            exports,
            gate: None,
            runtime: Arc::clone(self.runtime),
        };
        let registration = hook
            .register()
            .await
            // The problem already says "its register() call failed"; a gate's call is named.
            .map_err(|e| {
                let reason = if e.gate {
                    format!("{}: {}", e.call(), e.reason)
                } else {
                    e.reason
                };
                vec![ProblemKind::Register(reason)]
            })?;

        let subscribed = registration.events.clone();
        if !registration.points.is_empty() {
            hook.gate = Some(crate::hooks::hook::GateSpec {
                points: registration.points.clone(),
                limits: granted.gate_limits.clone(),
                on_error: self.entry.on_error.unwrap_or_default(),
            });
        }
        hook.events = match granted.events {
            Some(wanted) => {
                for kind in &wanted {
                    if !subscribed.contains(kind) {
                        problems.push(ProblemKind::EventNotSubscribed {
                            event: kind.as_str().to_owned(),
                        });
                    }
                }
                wanted.into_iter().collect()
            }
            None => subscribed,
        };
        for key in &registration.config {
            if !hook.grants.config.contains_key(key) {
                problems.push(ProblemKind::MissingConfig {
                    hook: self.name.to_owned(),
                    key: key.clone(),
                });
            }
        }
        for key in &registration.secrets {
            if !self.entry.secrets.contains_key(key) {
                problems.push(ProblemKind::MissingSecret {
                    hook: self.name.to_owned(),
                    key: key.clone(),
                });
            }
        }
        if problems.is_empty() {
            Ok(hook)
        } else {
            Err(problems)
        }
    }

    /// Checks the hook's hooks.toml entry and resolves its secrets.
    fn check_entry(&self) -> Result<Granted, Vec<ProblemKind>> {
        let mut problems = Vec::new();
        let limits = self
            .settings
            .defaults
            .with_overrides(self.entry)
            .unwrap_or_else(|bad| {
                problems.extend(bad.into_iter().map(ProblemKind::Manifest));
                self.settings.defaults.clone()
            });
        let gate_limits = self
            .settings
            .gates
            .limits_for(
                limits.memory_bytes,
                self.entry.gate_timeout_ms,
                self.entry.gate_fuel,
            )
            .unwrap_or_else(|bad| {
                problems.extend(bad.into_iter().map(ProblemKind::Manifest));
                limits.clone()
            });
        let mut allowed = Vec::new();
        let mut tenant_net = None;
        match self.scope {
            DirScope::Platform => {
                for raw in &self.entry.allowed_hosts {
                    match AllowedHost::parse(raw) {
                        Ok(host) => allowed.push(host),
                        Err(e) => problems.push(ProblemKind::Manifest(e)),
                    }
                }
            }
            // Tenant hooks get patterns and the connect-time internal-address check; an
            // internal address is reachable only when its hooks.toml lists it exactly.
            DirScope::Tenant { .. } => {
                let mut patterns = Vec::new();
                for raw in &self.entry.allowed_hosts {
                    match HostPattern::parse(raw) {
                        Ok(p) => patterns.push(p),
                        Err(e) => problems.push(ProblemKind::Manifest(e)),
                    }
                }
                tenant_net = Some(TenantNet::new(patterns));
            }
        }
        let mut secrets = BTreeMap::new();
        for (key, var) in &self.entry.secrets {
            match self.scope {
                DirScope::Platform => {
                    if !is_env_var_name(var) {
                        problems.push(ProblemKind::SecretNotAVariable { key: key.clone() });
                        continue;
                    }
                    // Whoever writes hooks.toml must not be able to hand a hook the server's
                    // own secret key or database URL.
                    if let Err(reason) = check_secret_env(var, &self.settings.secret_env_allow) {
                        problems.push(ProblemKind::SecretVariableRefused {
                            key: key.clone(),
                            var: var.clone(),
                            reason,
                        });
                        continue;
                    }
                    match self.settings.read_env(var) {
                        Some(value) if !value.is_empty() => {
                            secrets.insert(key.clone(), Secret(value));
                        }
                        _ => problems.push(ProblemKind::SecretUnset {
                            key: key.clone(),
                            var: var.clone(),
                        }),
                    }
                }
                // A tenant's hooks.toml names the tenant's secrets: reading the operator's
                // environment from a tenant's configuration would leak the platform's keys.
                DirScope::Tenant {
                    secrets: tenant_secrets,
                    ..
                } => match tenant_secrets.get(var) {
                    Some(value) => {
                        secrets.insert(key.clone(), value.clone());
                    }
                    None => problems.push(ProblemKind::TenantSecretUnset {
                        key: key.clone(),
                        name: var.clone(),
                    }),
                },
            }
        }
        let scope = match (self.scope, &self.entry.tenants) {
            (DirScope::Platform, None) => crate::hooks::Scope::Platform(None),
            (DirScope::Platform, Some(names)) => {
                let mut only = BTreeSet::new();
                for name in names {
                    match TenantId::parse(name) {
                        Ok(t) => {
                            only.insert(t);
                        }
                        Err(e) => problems.push(ProblemKind::Manifest(format!(
                            "tenants lists {name:?}: {e}"
                        ))),
                    }
                }
                crate::hooks::Scope::Platform(Some(only))
            }
            (DirScope::Tenant { .. }, Some(_)) => {
                problems.push(ProblemKind::Manifest(
                    "`tenants` is for platform hooks; a tenant's hooks are its own".to_owned(),
                ));
                crate::hooks::Scope::Platform(None)
            }
            (DirScope::Tenant { tenant, .. }, None) => crate::hooks::Scope::Tenant(tenant.clone()),
        };
        let events = match self.entry.event_kinds() {
            None => None,
            Some(Ok(kinds)) => Some(kinds),
            Some(Err(unknown)) => {
                let known = EventKind::ALL.map(EventKind::as_str).join(", ");
                problems.extend(unknown.into_iter().map(|event| ProblemKind::UnknownEvent {
                    event,
                    known: known.clone(),
                }));
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Granted {
            limits,
            gate_limits,
            grants: Grants {
                tenant_net: tenant_net.map(Arc::new),
                allowed_hosts: allowed.into(),
                config: self.entry.config.clone(),
                secrets,
                ..Default::default()
            },
            events,
            scope,
        })
    }

    /// The compiled component, from the cache when possible.
    async fn component(
        &self,
        bytes: Vec<u8>,
        sha256: &str,
        stats: &mut LoadStats,
    ) -> Result<Component, ProblemKind> {
        let engine = &self.runtime.engine;
        // Reading and authenticating an artifact is tens of MiB of I/O and hashing for
        // interpreted guests: off the async workers, which may already be serving requests.
        if let Some(cache) = self.cache.cloned() {
            let (engine, sha256) = (engine.clone(), sha256.to_owned());
            if let Ok(Some(component)) =
                tokio::task::spawn_blocking(move || cache.load(&engine, &sha256)).await
            {
                stats.from_cache += 1;
                return Ok(component);
            }
        }
        // Seconds of CPU for interpreted guests, unbounded for a bomb: off the async workers,
        // within the size and time ceilings.
        let component = compile(engine, bytes, &self.settings.compile, self.permits)
            .await
            .map_err(|e| match e {
                CompileError::Invalid(reason) => ProblemKind::Compile(reason),
                limit => ProblemKind::CompileLimit(limit),
            })?;
        stats.compiled += 1;
        if let Some(cache) = self.cache.cloned() {
            let (c, sha256) = (component.clone(), sha256.to_owned());
            match tokio::task::spawn_blocking(move || cache.store(&c, &sha256)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(hook = self.name, error = %e,
                    "cannot write compiled hook to the cache"),
                Err(e) => tracing::warn!(hook = self.name, error = %e,
                    "cannot write compiled hook to the cache"),
            }
        }
        Ok(component)
    }
}

/// A binary component, not a core module or anything else.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), ProblemKind> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT_LAYER: [u8; 2] = [1, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(ProblemKind::NotAComponent(
            "not a binary WebAssembly file (text, a .cwasm or something else)",
        ));
    }
    if bytes[4..8] == CORE_MODULE {
        return Err(ProblemKind::NotAComponent(
            "a core Wasm module, not a component: build for wasm32-wasip2 or wrap it with \
             `wasm-tools component new`",
        ));
    }
    if bytes[6..8] != COMPONENT_LAYER {
        return Err(ProblemKind::NotAComponent(
            "not a WebAssembly component of a known binary version",
        ));
    }
    Ok(())
}

/// Every import not allowed, and whether the handler export is there at a served version.
pub(crate) fn check_interfaces(
    component: &Component,
    engine: &wasmtime::Engine,
) -> Vec<ProblemKind> {
    let ty = component.component_type();
    let mut problems: Vec<ProblemKind> = ty
        .imports(engine)
        .filter_map(|(name, _)| {
            check_import(name)
                .err()
                .map(|refusal| ProblemKind::ForbiddenImport {
                    import: name.to_owned(),
                    reason: refusal.to_string(),
                })
        })
        .collect();
    match crate::hooks::wit::find_exports(ty.exports(engine).map(|(name, _)| name)) {
        Ok(_) => {}
        Err(Some(found)) => problems.push(ProblemKind::UnsupportedVersion { found }),
        Err(None) => problems.push(ProblemKind::NoHandler),
    }
    problems
}
