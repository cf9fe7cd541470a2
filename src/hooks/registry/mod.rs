//! Where the dispatcher finds each tenant's hooks, from three sources, in this order per event:
//!
//! 1. **platform** hooks: the hooks directory, for every tenant (or those its hooks.toml lists
//!    under `tenants`);
//! 2. **file** hooks: `hooks/tenants/<tenant>/*.wasm` with their own hooks.toml;
//! 3. **api** hooks: deployed through the management API and stored in the database, so every
//!    replica sharing it serves the same set.
//!
//! Each group runs by `order`, then name. Platform and file hooks are loaded (and compiled) at
//! start; API hooks are read as rows at start and compiled on their first event through the
//! shared [`code::CodeCache`], so 1,000 tenants start in milliseconds and one component
//! deployed to all of them compiles once.
//!
//! API hooks live in a snapshot swapped whole ([`HookRegistry::reload_tenant`]): an invocation
//! holds an `Arc` to the hook it started with and finishes on it, and every lookup after the
//! swap sees the new set. [`sync`] applies other replicas' changes.
//!
//! - [`manifest`]: `hooks.toml`; `tenant_manifest`: a deploy's JSON manifest and the ceilings;
//! - [`loader`], [`problems`]: loading a directory (platform or one tenant's), every problem
//!   collected; [`hook`]: a loaded file hook;
//! - [`cache`]: compiled code on disk; `code`: compiled code in memory, shared by sha256;
//!   [`compile`]: the size and time ceilings every compile runs under;
//! - `api_hook`, `validate`, `sync`: API-deployed hooks, deploy checks, replica sync.

mod api_hook;
pub mod cache;
mod code;
pub mod compile;
pub(crate) mod hook;
pub(crate) mod loader;
pub mod manifest;
pub(crate) mod problems;
mod sync;
mod tenant_manifest;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::Serialize;

pub use api_hook::ApiHook;
pub use tenant_manifest::{
    Ceilings, MAX_MANIFEST_BYTES, TenantManifest, valid_name, valid_secret_key,
};
pub use validate::{Prepared, too_large};

use super::hook::GateSpec;
use super::outbound::TenantNet;
use super::runtime::Runtime;
use super::state::{Grants, Secret};
use super::{HookLimits, HookSettings, LoadError, WasmHook};
use crate::crypto::SecretBox;
use crate::domain::{DecisionPoint, EventKind, TenantId};
use crate::events::{EventHandler, HandlerSource};
use crate::store::{Store, StoreError, TenantHookRow};
use api_hook::ApiHookParts;
use code::CodeCache;
use loader::DirScope;
use problems::{Problem, ProblemKind};

/// Why a deploy was refused: a stable `code` for tools, and a sentence for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct DeployError {
    pub code: &'static str,
    pub detail: String,
}

impl DeployError {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot read tenant hooks: {0}")]
    Store(#[from] StoreError),
}

/// How the server wants its hooks.
pub struct RegistrySettings {
    /// The hooks directory (platform hooks; `tenants/<tenant>/` for file-deployed tenant hooks).
    pub platform: Option<HookSettings>,
    pub max_concurrent: u32,
    /// What each invocation may make the host do or keep (outbound, logs, handles).
    pub caps: crate::hooks::SandboxCaps,
    pub ceilings: Ceilings,
    pub compile_concurrency: u32,
    /// Where compiled tenant components are cached on disk.
    pub cache_dir: Option<PathBuf>,
    /// Authenticates the artifacts in `cache_dir` (`None`: a key file in it).
    pub cache_key: Option<cache::CacheKey>,
    /// Where hook invocations are counted.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// What every API hook shares: the engine, the database, the code cache and the key that
/// opens tenant secrets.
pub(crate) struct Loader {
    pub runtime: Arc<Runtime>,
    pub store: Store,
    pub code: CodeCache,
    pub secrets: Arc<SecretBox>,
    pub ceilings: Ceilings,
}

type ApiSnapshot = HashMap<TenantId, Arc<[Arc<ApiHook>]>>;

pub struct HookRegistry {
    loader: Arc<Loader>,
    platform: Vec<Arc<WasmHook>>,
    files: BTreeMap<TenantId, Vec<Arc<WasmHook>>>,
    api: RwLock<Arc<ApiSnapshot>>,
    /// The revision of each tenant's hooks this replica has applied.
    revisions: Mutex<HashMap<String, i64>>,
    /// One reload at a time, so an older read never overwrites a newer one.
    reloading: tokio::sync::Mutex<()>,
    skipped: Vec<Problem>,
}

/// One hook as the management API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HookInfo {
    pub name: String,
    /// `platform`, `file` or `api`.
    pub source: &'static str,
    pub events: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Secret names the hook reads → the tenant secrets they come from (never values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// For a gate: the decision points it serves, its budget and `on_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateInfo {
    pub points: Vec<&'static str>,
    pub fuel: u64,
    pub timeout_ms: u128,
    pub on_error: &'static str,
}

impl From<&GateSpec> for GateInfo {
    fn from(g: &GateSpec) -> Self {
        Self {
            points: g.points.iter().map(|p| p.as_str()).collect(),
            fuel: g.limits.fuel,
            timeout_ms: g.limits.timeout.as_millis(),
            on_error: g.on_error.as_str(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitsInfo {
    pub fuel: u64,
    pub memory_mib: usize,
    pub timeout_ms: u128,
}

impl From<&super::HookLimits> for LimitsInfo {
    fn from(l: &super::HookLimits) -> Self {
        Self {
            fuel: l.fuel,
            memory_mib: l.memory_bytes >> 20,
            timeout_ms: l.timeout.as_millis(),
        }
    }
}

/// Tenants warned about one by one; more get one summary line.
pub const WARN_TENANTS_ONE_BY_ONE: usize = 10;

/// The kinds a tenant must have a hook for, or its users never get these emails.
pub const EMAIL_EVENTS: [EventKind; 2] = [
    EventKind::SendVerificationEmail,
    EventKind::SendPasswordResetEmail,
];

impl HookRegistry {
    pub async fn load(
        settings: RegistrySettings,
        store: Store,
        secrets: Arc<SecretBox>,
    ) -> Result<Self, RegistryError> {
        let started = Instant::now();
        let runtime = Arc::new(
            Runtime::new(settings.max_concurrent.max(1))
                .map_err(LoadError::Runtime)?
                .with_caps(settings.caps.clone())
                .with_metrics(settings.metrics.clone()),
        );
        let loader = Arc::new(Loader {
            code: CodeCache::new(
                Arc::clone(&runtime),
                settings.compile_concurrency,
                settings.ceilings.compile.clone(),
                settings.cache_dir.clone(),
                settings.cache_key.as_ref(),
            ),
            runtime,
            store,
            secrets,
            ceilings: settings.ceilings,
        });
        let mut skipped = Vec::new();
        let mut platform = Vec::new();
        let mut files = BTreeMap::new();
        if let Some(hs) = &settings.platform {
            let permits = loader.code.permits();
            let loaded = loader::load_dir(&loader.runtime, hs, &DirScope::Platform, permits).await;
            let mut problems = loaded.problems;
            platform = loaded.hooks.into_iter().map(Arc::new).collect();
            let platform_names: BTreeSet<String> =
                platform.iter().map(|h| h.name().to_owned()).collect();
            let tenants_dir = hs.dir.join("tenants");
            if tenants_dir.is_dir() {
                for (tenant, dir) in tenant_dirs(&tenants_dir, &mut problems) {
                    let opened = open_secrets(&loader, &tenant).await?;
                    let mut tenant_settings = hs.clone();
                    tenant_settings.dir = dir;
                    let scope = DirScope::Tenant {
                        tenant: tenant.clone(),
                        secrets: opened,
                    };
                    let loaded =
                        loader::load_dir(&loader.runtime, &tenant_settings, &scope, permits).await;
                    problems.extend(loaded.problems.into_iter().map(|p| Problem {
                        file: format!("tenants/{tenant}/{}", p.file),
                        kind: p.kind,
                    }));
                    let mut hooks = Vec::new();
                    for hook in loaded.hooks {
                        if platform_names.contains(hook.name()) {
                            problems.push(Problem {
                                file: format!("tenants/{tenant}/{}.wasm", hook.name()),
                                kind: ProblemKind::Manifest(
                                    "a tenant hook cannot take a platform hook's name".into(),
                                ),
                            });
                        } else {
                            hooks.push(Arc::new(hook));
                        }
                    }
                    files.insert(tenant, hooks);
                }
            }
            if !problems.is_empty() {
                if !hs.lenient {
                    return Err(LoadError::Problems(problems).into());
                }
                for p in &problems {
                    tracing::warn!(file = %p.file, problem = %p.kind, "skipping hook");
                }
            }
            skipped = problems;
        }
        let registry = Self {
            loader,
            platform,
            files,
            api: RwLock::new(Arc::new(HashMap::new())),
            revisions: Mutex::new(HashMap::new()),
            reloading: tokio::sync::Mutex::new(()),
            skipped,
        };
        registry.load_all_api_hooks().await?;
        let api_hooks: usize = registry.api_snapshot().values().map(|h| h.len()).sum();
        tracing::info!(
            platform = registry.platform.len(),
            file_tenants = registry.files.len(),
            api_tenants = registry.api_snapshot().len(),
            api_hooks,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "hooks loaded (API hooks compile on their first event)"
        );
        Ok(registry)
    }

    fn api_snapshot(&self) -> Arc<ApiSnapshot> {
        Arc::clone(&self.api.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every tenant's API hooks, at start.
    async fn load_all_api_hooks(&self) -> Result<(), StoreError> {
        let _guard = self.reloading.lock().await;
        // Revisions first: a change committed while the rows are read is applied again later,
        // never missed.
        let revisions = self.loader.store.tenant_hook_revisions().await?;
        let rows = self.loader.store.all_tenant_hooks().await?;
        let mut by_tenant: BTreeMap<String, Vec<TenantHookRow>> = BTreeMap::new();
        for row in rows {
            by_tenant
                .entry(row.tenant_id.clone())
                .or_default()
                .push(row);
        }
        let mut snapshot = HashMap::new();
        for (tenant, rows) in by_tenant {
            let Ok(tenant) = TenantId::parse(&tenant) else {
                continue;
            };
            let hooks = self.build_tenant(&tenant, rows).await?;
            snapshot.insert(tenant, hooks);
        }
        *self.api.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        *self.revisions.lock().unwrap_or_else(|p| p.into_inner()) = revisions.into_iter().collect();
        Ok(())
    }

    /// Re-reads one tenant's API hooks and secrets and swaps them in. Called after a local
    /// change (before the API answers) and when another replica reports one.
    pub async fn reload_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let _guard = self.reloading.lock().await;
        let revision = self
            .loader
            .store
            .tenant_hook_revisions()
            .await?
            .into_iter()
            .find(|(t, _)| t == tenant.as_str())
            .map(|(_, r)| r);
        let rows = self.loader.store.tenant_hooks(tenant).await?;
        let hooks = self.build_tenant(tenant, rows).await?;
        {
            let mut api = self.api.write().unwrap_or_else(|p| p.into_inner());
            let mut next = (**api).clone();
            if hooks.is_empty() {
                next.remove(tenant);
            } else {
                next.insert(tenant.clone(), hooks);
            }
            *api = Arc::new(next);
        }
        if let Some(r) = revision {
            self.revisions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tenant.to_string(), r);
        }
        Ok(())
    }

    /// Tenants whose revision in the database differs from the one applied here.
    pub(crate) async fn stale_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let current = self.loader.store.tenant_hook_revisions().await?;
        let applied = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(current
            .into_iter()
            .filter(|(t, r)| applied.get(t) != Some(r))
            .filter_map(|(t, _)| TenantId::parse(&t).ok())
            .collect())
    }

    async fn build_tenant(
        &self,
        tenant: &TenantId,
        rows: Vec<TenantHookRow>,
    ) -> Result<Arc<[Arc<ApiHook>]>, StoreError> {
        let manifests: Vec<(TenantHookRow, TenantManifest)> = rows
            .into_iter()
            .filter_map(|row| match serde_json::from_str(&row.manifest) {
                Ok(m) => Some((row, m)),
                Err(e) => {
                    tracing::error!(tenant = %tenant, hook = %row.name, error = %e,
                        "stored hook manifest is unreadable; hook not loaded");
                    None
                }
            })
            .collect();
        let needs_secrets = manifests.iter().any(|(_, m)| !m.secrets.is_empty());
        let opened = if needs_secrets {
            open_secrets(&self.loader, tenant).await?
        } else {
            BTreeMap::new()
        };
        let mut hooks: Vec<Arc<ApiHook>> = manifests
            .into_iter()
            .map(|(row, manifest)| Arc::new(self.build_hook(tenant, row, manifest, &opened)))
            .collect();
        for gate in hooks.iter().filter(|h| h.gate.is_some() && h.enabled) {
            gate.warm_up();
        }
        hooks.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        Ok(hooks.into())
    }

    fn build_hook(
        &self,
        tenant: &TenantId,
        row: TenantHookRow,
        manifest: TenantManifest,
        opened: &BTreeMap<String, Secret>,
    ) -> ApiHook {
        let ceilings = &self.loader.ceilings;
        // The operator may have lowered a ceiling since the deploy: the lower value wins.
        let limits = manifest.limits(ceilings).unwrap_or_else(|e| {
            tracing::warn!(tenant = %tenant, hook = %row.name, problem = %e,
                "hook asks for more than the current ceilings; running it at the ceilings");
            let d = ceilings.defaults();
            super::HookLimits {
                fuel: manifest.fuel.unwrap_or(d.fuel).min(ceilings.fuel),
                memory_bytes: manifest
                    .memory_mib
                    .map_or(d.memory_bytes, |m| (m as usize) << 20)
                    .min(ceilings.memory_bytes),
                timeout: manifest
                    .timeout_ms
                    .map_or(d.timeout, std::time::Duration::from_millis)
                    .min(ceilings.timeout),
            }
        });
        let hosts = manifest
            .allowed_hosts
            .iter()
            .filter_map(|raw| super::outbound::HostPattern::parse(raw).ok())
            .filter(|h| ceilings.allowed_hosts.iter().any(|c| c.covers(h)))
            .collect();
        let secrets = manifest
            .secrets
            .iter()
            .filter_map(|(key, name)| opened.get(name).map(|v| (key.clone(), v.clone())))
            .collect();
        let events = serde_json::from_str::<Vec<String>>(&row.events)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| EventKind::parse(e))
            .collect();
        let points: BTreeSet<DecisionPoint> = serde_json::from_str::<Vec<String>>(&row.gate_points)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| DecisionPoint::parse(p))
            .collect();
        // As for the limits: a ceiling lowered since the deploy wins.
        let gate = (!points.is_empty()).then(|| GateSpec {
            points,
            limits: manifest
                .gate_limits(ceilings, limits.memory_bytes)
                .unwrap_or_else(|_| HookLimits {
                    fuel: ceilings.gates.fuel.min(ceilings.fuel),
                    memory_bytes: limits.memory_bytes,
                    timeout: ceilings.gates.timeout.min(ceilings.timeout),
                }),
            on_error: manifest.on_error.unwrap_or_default(),
        });
        ApiHook::new(
            ApiHookParts {
                name: row.name,
                tenant: tenant.clone(),
                sha256: row.sha256,
                events,
                order: row.hook_order,
                enabled: row.enabled != 0,
                updated_at: row.updated_at,
                grants: Grants {
                    allowed_hosts: Arc::new([]),
                    tenant_net: Some(Arc::new(TenantNet::new(hosts))),
                    config: manifest.config.clone(),
                    secrets,
                    ..Default::default()
                },
                manifest,
                limits,
                gate,
            },
            Arc::clone(&self.loader),
        )
    }

    /// The tenant's API hooks as of now.
    pub fn api_hooks(&self, tenant: &TenantId) -> Vec<Arc<ApiHook>> {
        self.api_snapshot()
            .get(tenant)
            .map(|h| h.to_vec())
            .unwrap_or_default()
    }

    pub fn api_hook(&self, tenant: &TenantId, name: &str) -> Option<Arc<ApiHook>> {
        self.api_hooks(tenant)
            .into_iter()
            .find(|h| &*h.name == name)
    }

    /// Whether `name` belongs to a platform hook or one of the tenant's file hooks.
    pub fn name_taken_outside_api(&self, tenant: &TenantId, name: &str) -> Option<&'static str> {
        if self.platform.iter().any(|h| h.name() == name) {
            return Some("platform");
        }
        if self
            .files
            .get(tenant)
            .is_some_and(|hooks| hooks.iter().any(|h| h.name() == name))
        {
            return Some("file");
        }
        None
    }

    /// Every hook that runs for the tenant, in delivery order.
    pub fn describe(&self, tenant: &TenantId) -> Vec<HookInfo> {
        let events = |it: &mut dyn Iterator<Item = EventKind>| it.map(EventKind::as_str).collect();
        let mut out: Vec<HookInfo> = self
            .platform
            .iter()
            .filter(|h| h.scope().includes(tenant))
            .map(|h| HookInfo {
                name: h.name().to_owned(),
                source: "platform",
                events: events(&mut h.events()),
                sha256: None,
                order: None,
                enabled: None,
                limits: None,
                allowed_hosts: None,
                config: None,
                secrets: None,
                updated_at: None,
                gate: h.gate().map(GateInfo::from),
            })
            .collect();
        for h in self.files.get(tenant).into_iter().flatten() {
            out.push(HookInfo {
                name: h.name().to_owned(),
                source: "file",
                events: events(&mut h.events()),
                sha256: Some(h.sha256().to_owned()),
                order: None,
                enabled: Some(true),
                limits: Some(h.limits().into()),
                allowed_hosts: h
                    .grants
                    .tenant_net
                    .as_ref()
                    .map(|n| n.patterns().iter().map(ToString::to_string).collect()),
                config: None,
                secrets: None,
                updated_at: None,
                gate: h.gate().map(GateInfo::from),
            });
        }
        for h in self.api_hooks(tenant) {
            out.push(Self::api_info(&h));
        }
        out
    }

    pub fn api_info(h: &ApiHook) -> HookInfo {
        HookInfo {
            name: h.name.to_string(),
            source: "api",
            events: h.events.iter().map(|e| e.as_str()).collect(),
            sha256: Some(h.sha256.clone()),
            order: Some(h.order),
            enabled: Some(h.enabled),
            limits: Some((&h.limits).into()),
            allowed_hosts: Some(h.manifest.allowed_hosts.clone()),
            config: Some(h.manifest.config.clone()),
            secrets: Some(h.manifest.secrets.clone()),
            updated_at: Some(h.updated_at),
            gate: h.gate.as_ref().map(GateInfo::from),
        }
    }

    /// The email kinds no hook of the tenant receives.
    pub fn missing_email_hooks(&self, tenant: &TenantId) -> Vec<EventKind> {
        EMAIL_EVENTS
            .into_iter()
            .filter(|k| self.handlers_for(tenant, *k).is_empty())
            .collect()
    }

    /// Logs a warning for each tenant whose verification or reset emails no hook sends; past
    /// [`WARN_TENANTS_ONE_BY_ONE`] tenants, one summary line, so 1,000 tenants do not flood the
    /// start-up log.
    pub fn warn_missing_email_hooks<'a>(&self, tenants: impl IntoIterator<Item = &'a TenantId>) {
        let lacking: Vec<(&TenantId, Vec<&'static str>)> = tenants
            .into_iter()
            .map(|t| {
                let kinds = self
                    .missing_email_hooks(t)
                    .iter()
                    .map(|k| k.as_str())
                    .collect();
                (t, kinds)
            })
            .filter(|(_, kinds): &(_, Vec<_>)| !kinds.is_empty())
            .collect();
        if lacking.len() > WARN_TENANTS_ONE_BY_ONE {
            let first: Vec<&str> = lacking
                .iter()
                .take(WARN_TENANTS_ONE_BY_ONE)
                .map(|(t, _)| t.as_str())
                .collect();
            tracing::warn!(tenants = lacking.len(), first = ?first,
                "tenants with no hook for send_verification_email and/or \
                 send_password_reset_email: those emails are kept as undelivered until a hook is \
                 deployed (GET /t/<tenant>/api/v1/hooks shows each tenant's)");
            return;
        }
        for (tenant, kinds) in lacking {
            tracing::warn!(tenant = %tenant, events = ?kinds,
                "no hook sends these emails for this tenant: they are kept as undelivered \
                 until a hook is deployed");
        }
    }

    pub fn skipped(&self) -> &[Problem] {
        &self.skipped
    }

    /// Distinct tenant components compiled in memory (shared by every tenant that uses one).
    pub fn compiled_components(&self) -> usize {
        self.loader.code.compiled_count()
    }

    pub(crate) fn loader(&self) -> &Arc<Loader> {
        &self.loader
    }

    pub fn store(&self) -> &Store {
        &self.loader.store
    }
}

impl crate::flows::GateSource for HookRegistry {
    /// Platform gates first, then the tenant's own: file-deployed, then API-deployed, each in
    /// load order.
    fn gates_for(
        &self,
        tenant: &TenantId,
        point: crate::domain::DecisionPoint,
    ) -> Vec<Arc<dyn crate::flows::Gate>> {
        let platform = self
            .platform
            .iter()
            .filter(|h| h.scope().includes(tenant) && h.serves(point));
        let files = self
            .files
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|h| h.serves(point));
        let api = self.api_hooks(tenant);
        let api = api
            .into_iter()
            .filter(|h| h.serves(point))
            .map(|h| h as Arc<dyn crate::flows::Gate>);
        platform
            .chain(files)
            .map(|h| Arc::clone(h) as Arc<dyn crate::flows::Gate>)
            .chain(api)
            .collect()
    }
}

impl HandlerSource for HookRegistry {
    fn handlers_for(&self, tenant: &TenantId, kind: EventKind) -> Vec<Arc<dyn EventHandler>> {
        let platform = self
            .platform
            .iter()
            .filter(|h| h.scope().includes(tenant) && h.handles(kind))
            .map(|h| Arc::clone(h) as Arc<dyn EventHandler>);
        let files = self
            .files
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|h| h.handles(kind))
            .map(|h| Arc::clone(h) as Arc<dyn EventHandler>);
        let api = self.api_hooks(tenant);
        let api = api
            .into_iter()
            .filter(|h| h.handles(kind))
            .map(|h| h as Arc<dyn EventHandler>);
        platform.chain(files).chain(api).collect()
    }
}

/// `tenants/<tenant>/` directories, by tenant name.
fn tenant_dirs(dir: &std::path::Path, problems: &mut Vec<Problem>) -> Vec<(TenantId, PathBuf)> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                file: "tenants".into(),
                kind: ProblemKind::Unreadable(e.to_string()),
            });
            return out;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match TenantId::parse(&name) {
            Ok(t) => out.push((t, path)),
            Err(e) => problems.push(Problem {
                file: format!("tenants/{name}"),
                kind: ProblemKind::Manifest(e.to_owned()),
            }),
        }
    }
    out.sort();
    out
}

/// The tenant's secrets, opened. One that does not open (the server's secret_key changed) is
/// left out with an error logged: its hooks see it as unset.
async fn open_secrets(
    loader: &Loader,
    tenant: &TenantId,
) -> Result<BTreeMap<String, Secret>, StoreError> {
    let sealed = loader.store.sealed_hook_secrets(tenant).await?;
    let mut out = BTreeMap::new();
    for (key, value) in sealed {
        match loader.secrets.open(tenant.as_str(), &key, &value) {
            Ok(bytes) => {
                out.insert(key, Secret(String::from_utf8_lossy(&bytes).into_owned()));
            }
            Err(e) => tracing::error!(tenant = %tenant, secret = %key, error = %e,
                "cannot open tenant hook secret"),
        }
    }
    Ok(out)
}
