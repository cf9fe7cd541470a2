//! Everything checked before a deploy is answered: name, size, manifest against the ceilings,
//! the tenant's secrets, the component itself (binary format, world, imports), a compile, a
//! link and a `register()` call. The first problem found is returned with its stable code;
//! nothing is stored until all of it passed.

use std::collections::BTreeSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::code::{Code, CodeError};
use super::compile::CompileError;
use super::{DeployError, HookRegistry, TenantManifest, valid_name};
use crate::domain::{EventKind, TenantId};
use crate::hooks::engine::hex;
use crate::hooks::hook::register_exports;
use crate::hooks::loader::{check_header, check_interfaces};
use crate::hooks::problems::ProblemKind;
use crate::hooks::wit::Exports;

/// A deploy that passed every check, ready to be stored.
pub struct Prepared {
    pub sha256: String,
    pub manifest: TenantManifest,
    pub events: BTreeSet<EventKind>,
    /// The decision points it serves as a gate (empty for an after-event hook).
    pub points: BTreeSet<crate::domain::DecisionPoint>,
    /// Keeps the compiled code alive until the stored hook picks it up, so it is not compiled
    /// twice.
    pub(crate) _code: Arc<Code>,
}

impl HookRegistry {
    /// Validates a deploy of `name` for `tenant`. `secret_names` are the tenant's secrets.
    pub async fn prepare(
        &self,
        tenant: &TenantId,
        name: &str,
        bytes: Vec<u8>,
        manifest: Option<&[u8]>,
        secret_names: &BTreeSet<String>,
    ) -> Result<Prepared, DeployError> {
        let loader = self.loader();
        let ceilings = &loader.ceilings;
        if !valid_name(name) {
            return Err(DeployError::new(
                "invalid_name",
                "a hook name is 1-64 characters of a-z, 0-9 and single '-' (kebab-case)",
            ));
        }
        if let Some(source) = self.name_taken_outside_api(tenant, name) {
            return Err(DeployError::new(
                "name_taken",
                format!("`{name}` is the name of a {source} hook of this tenant"),
            ));
        }
        if bytes.len() > ceilings.max_component_bytes {
            return Err(too_large(ceilings.max_component_bytes));
        }
        let manifest = match manifest {
            Some(raw) => TenantManifest::parse(raw)?,
            None => TenantManifest::default(),
        };
        manifest.check_config()?;
        let limits = manifest.limits(ceilings)?;
        manifest.hosts(ceilings)?;
        let wanted = manifest.event_kinds()?;
        for (key, secret) in &manifest.secrets {
            if !secret_names.contains(secret) {
                return Err(DeployError::new(
                    "unknown_secret",
                    format!(
                        "secrets.{key} names tenant secret {secret:?}, which is not set \
                         (PUT .../hook-secrets/{secret} first)"
                    ),
                ));
            }
        }

        check_header(&bytes).map_err(|k| DeployError::new("not_a_component", k.to_string()))?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let code = loader.code.entry(&sha256);
        let component = loader
            .code
            .component(&code, || async move { Ok(bytes) })
            .await
            .map_err(|e| {
                let code = match &e {
                    CodeError::Compile(CompileError::TooLarge { .. }) => "component_too_large",
                    // Cranelift cannot be interrupted: a component this slow to compile is
                    // refused at the ceiling, its compile left to finish on its own thread
                    // while still holding a compile permit.
                    CodeError::Compile(CompileError::TimedOut { .. }) => "compile_timeout",
                    _ => "invalid_component",
                };
                DeployError::new(code, format!("hook `{name}`: {e}"))
            })?;
        if let Some(problem) = check_interfaces(&component, &loader.runtime.engine)
            .into_iter()
            .next()
        {
            let code = match problem {
                ProblemKind::ForbiddenImport { .. } => "forbidden_import",
                _ => "wrong_world",
            };
            return Err(DeployError::new(code, problem.to_string()));
        }
        let exports = loader
            .runtime
            .linker
            .instantiate_pre(&component)
            .and_then(Exports::new)
            .map_err(|e| {
                DeployError::new(
                    "wrong_world",
                    format!("cannot be linked: {}", e.root_cause()),
                )
            })?;
        // Checked here even for a hook that turns out not to be a gate: a manifest is refused
        // for asking too much, whatever it runs.
        manifest.gate_limits(ceilings, limits.memory_bytes)?;
        // A gate's decision points are resolved now and stored: its code is compiled lazily,
        // but a request must know its gates at once.
        let registered = register_exports(&loader.runtime, &exports, &limits, None)
            .await
            .map_err(|e| {
                DeployError::new(
                    "register_failed",
                    format!("its {} call failed: {}", e.call(), e.reason),
                )
            })?;
        let subscribed = registered.events;
        let (needs_config, needs_secrets, points) =
            (registered.config, registered.secrets, registered.points);
        let events = match wanted {
            Some(wanted) => {
                if let Some(k) = wanted.iter().find(|k| !subscribed.contains(k)) {
                    return Err(DeployError::new(
                        "event_not_subscribed",
                        format!("events lists {k}, which the hook does not subscribe to"),
                    ));
                }
                wanted.into_iter().collect()
            }
            None => subscribed,
        };
        if let Some(key) = needs_config
            .iter()
            .find(|k| !manifest.config.contains_key(*k))
        {
            return Err(DeployError::new(
                "missing_config",
                format!("the hook needs config `{key}`; add it to the manifest's config"),
            ));
        }
        if let Some(key) = needs_secrets
            .iter()
            .find(|k| !manifest.secrets.contains_key(*k))
        {
            return Err(DeployError::new(
                "missing_secret",
                format!(
                    "the hook needs secret `{key}`; map it to a tenant secret in the \
                     manifest's secrets"
                ),
            ));
        }
        Ok(Prepared {
            sha256,
            manifest,
            events,
            points,
            _code: code,
        })
    }
}

pub fn too_large(max: usize) -> DeployError {
    DeployError::new(
        "component_too_large",
        format!("the component is over the limit of {} MiB", max >> 20),
    )
}

impl HookRegistry {
    /// The checks a changed manifest must pass (`PATCH`): config sizes, limits within the
    /// ceilings, hosts granted by the operator.
    pub fn check_manifest(&self, manifest: &TenantManifest) -> Result<(), DeployError> {
        let ceilings = &self.loader().ceilings;
        manifest.check_config()?;
        let limits = manifest.limits(ceilings)?;
        manifest.gate_limits(ceilings, limits.memory_bytes)?;
        manifest.hosts(ceilings)?;
        Ok(())
    }
}
