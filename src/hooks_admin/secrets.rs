//! Tenant hook secrets: write-only values, sealed before they are stored.

use super::{Actor, AdminError, HooksAdmin};
use crate::domain::TenantId;
use crate::hooks::DeployError;
use crate::hooks::registry::valid_secret_key;

/// Largest secret value accepted.
pub const MAX_SECRET_BYTES: usize = 8 * 1024;

impl HooksAdmin {
    /// Creates or replaces a secret; `true` when created. Hooks reading it see the new value
    /// from their next event on, on every replica.
    pub async fn put_secret(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        key: &str,
        value: &str,
    ) -> Result<bool, AdminError> {
        if !valid_secret_key(key) {
            return Err(DeployError::new(
                "invalid_secret_key",
                "a secret key is 1-64 of letters, digits and '_', not starting with a digit",
            )
            .into());
        }
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(DeployError::new(
                "invalid_secret_value",
                format!("a secret value is 1-{MAX_SECRET_BYTES} bytes"),
            )
            .into());
        }
        let sealed = self
            .sealer
            .seal(tenant.as_str(), key, value.as_bytes())
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let created = self
            .flows
            .store
            .put_hook_secret(tenant, key, &sealed, self.clock().now_millis())
            .await?;
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, secret = key, created, by = %actor.label(),
            "tenant hook secret set");
        Ok(created)
    }

    pub async fn delete_secret(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), AdminError> {
        if !self.flows.store.delete_hook_secret(tenant, key).await? {
            return Err(AdminError::NotFound("Secret not found"));
        }
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, secret = key, by = %actor.label(),
            "tenant hook secret removed");
        Ok(())
    }

    /// Names and when each was last set; values never leave the server.
    pub async fn secret_names(&self, tenant: &TenantId) -> Result<Vec<(String, i64)>, AdminError> {
        Ok(self.flows.store.hook_secret_names(tenant).await?)
    }
}
