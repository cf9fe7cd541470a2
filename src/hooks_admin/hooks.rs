//! Deploying, listing, changing and removing a tenant's API hooks.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Actor, AdminError, HooksAdmin};
use crate::domain::TenantId;
use crate::hooks::registry::TenantManifest;
use crate::hooks::{DeployError, HookInfo, HookRegistry};
use crate::store::{NewTenantHook, PutOutcome};

/// A deploy's outcome: created or replaced, the hook as now served, and what the tenant still
/// lacks (no email hook).
pub struct Deployed {
    pub created: bool,
    pub hook: HookInfo,
    pub warnings: Vec<String>,
}

/// `PATCH {T}/hooks/{name}`: each field present replaces the current value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookPatch {
    pub enabled: Option<bool>,
    pub order: Option<i32>,
    pub config: Option<BTreeMap<String, String>>,
    pub limits: Option<LimitsPatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub fuel: Option<u64>,
    pub memory_mib: Option<u32>,
    pub timeout_ms: Option<u64>,
}

impl HooksAdmin {
    pub fn list_hooks(&self, tenant: &TenantId) -> Vec<HookInfo> {
        self.registry.describe(tenant)
    }

    pub fn hook(&self, tenant: &TenantId, name: &str) -> Result<HookInfo, AdminError> {
        self.registry
            .describe(tenant)
            .into_iter()
            .find(|h| h.name == name)
            .ok_or(AdminError::NotFound("Hook not found"))
    }

    /// Validates everything, stores, swaps the tenant's hooks in before answering: an event
    /// committed after this returns is handled by the new version.
    pub async fn deploy(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        name: &str,
        component: Vec<u8>,
        manifest: Option<&[u8]>,
    ) -> Result<Deployed, AdminError> {
        let store = &self.flows.store;
        let secret_names: BTreeSet<String> = store
            .hook_secret_names(tenant)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let prepared = self
            .registry
            .prepare(tenant, name, component.clone(), manifest, &secret_names)
            .await?;
        let manifest_json = serde_json::to_string(&prepared.manifest)
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let events: Vec<&str> = prepared.events.iter().map(|e| e.as_str()).collect();
        let events_json =
            serde_json::to_string(&events).map_err(|e| AdminError::Internal(e.to_string()))?;
        let points: Vec<&str> = prepared.points.iter().map(|p| p.as_str()).collect();
        let points_json =
            serde_json::to_string(&points).map_err(|e| AdminError::Internal(e.to_string()))?;
        let outcome = store
            .put_tenant_hook(
                &NewTenantHook {
                    tenant,
                    name,
                    sha256: &prepared.sha256,
                    bytes: &component,
                    manifest: &manifest_json,
                    events: &events_json,
                    gate_points: &points_json,
                    order: i64::from(prepared.manifest.order.unwrap_or(0)),
                    enabled: true,
                    max_hooks: i64::from(self.max_hooks),
                },
                self.clock().now_millis(),
            )
            .await?;
        let created = match outcome {
            PutOutcome::Created => true,
            PutOutcome::Replaced => false,
            PutOutcome::TooMany => {
                return Err(DeployError::new(
                    "too_many_hooks",
                    format!("a tenant may deploy at most {} hooks", self.max_hooks),
                )
                .into());
            }
        };
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, hook = name, sha256 = %prepared.sha256, created,
            by = %actor.label(), "tenant hook deployed");
        let hook = self
            .registry
            .api_hook(tenant, name)
            .map(|h| HookRegistry::api_info(&h))
            .ok_or(AdminError::Internal("deployed hook not loaded".into()))?;
        Ok(Deployed {
            created,
            hook,
            warnings: self.email_warnings(tenant),
        })
    }

    /// What the tenant lacks, also logged: emails no hook sends stay undelivered.
    pub fn email_warnings(&self, tenant: &TenantId) -> Vec<String> {
        self.registry.warn_missing_email_hooks([tenant]);
        self.registry
            .missing_email_hooks(tenant)
            .into_iter()
            .map(|k| format!("no hook of this tenant receives {k}: those emails are not sent"))
            .collect()
    }

    pub async fn patch_hook(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        name: &str,
        patch: HookPatch,
    ) -> Result<HookInfo, AdminError> {
        let current = self
            .registry
            .api_hook(tenant, name)
            .ok_or(AdminError::NotFound("Hook not found"))?;
        let mut manifest: TenantManifest = current.manifest.clone();
        if let Some(order) = patch.order {
            manifest.order = Some(order);
        }
        if let Some(config) = patch.config {
            manifest.config = config;
        }
        if let Some(limits) = patch.limits {
            if limits.fuel.is_some() {
                manifest.fuel = limits.fuel;
            }
            if limits.memory_mib.is_some() {
                manifest.memory_mib = limits.memory_mib;
            }
            if limits.timeout_ms.is_some() {
                manifest.timeout_ms = limits.timeout_ms;
            }
        }
        self.registry.check_manifest(&manifest)?;
        let enabled = patch.enabled.unwrap_or(current.enabled);
        let json =
            serde_json::to_string(&manifest).map_err(|e| AdminError::Internal(e.to_string()))?;
        let found = self
            .flows
            .store
            .update_tenant_hook(
                tenant,
                name,
                &json,
                i64::from(manifest.order.unwrap_or(0)),
                enabled,
                self.clock().now_millis(),
            )
            .await?;
        if !found {
            return Err(AdminError::NotFound("Hook not found"));
        }
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, hook = name, by = %actor.label(), "tenant hook changed");
        self.registry
            .api_hook(tenant, name)
            .map(|h| HookRegistry::api_info(&h))
            .ok_or(AdminError::NotFound("Hook not found"))
    }

    pub async fn delete_hook(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), AdminError> {
        if !self.flows.store.delete_tenant_hook(tenant, name).await? {
            return Err(AdminError::NotFound("Hook not found"));
        }
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, hook = name, by = %actor.label(), "tenant hook removed");
        self.registry.warn_missing_email_hooks([tenant]);
        Ok(())
    }
}
