//! Operator-only tenant management.

use serde::Serialize;

use super::{AdminError, HooksAdmin};
use crate::domain::TenantId;
use crate::store::StoreError;

#[derive(Debug, Clone, Serialize)]
pub struct TenantInfo {
    pub id: String,
    pub created_at: i64,
}

impl HooksAdmin {
    pub async fn create_tenant(&self, tenant: &TenantId) -> Result<TenantInfo, AdminError> {
        let now = self.clock().now_millis();
        match self.flows.store.create_tenant(tenant, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AdminError::Conflict),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(tenant = %tenant, "tenant created");
        self.registry.warn_missing_email_hooks([tenant]);
        Ok(TenantInfo {
            id: tenant.to_string(),
            created_at: now,
        })
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantInfo>, AdminError> {
        Ok(self
            .flows
            .store
            .list_tenants()
            .await?
            .into_iter()
            .map(|(id, created_at)| TenantInfo { id, created_at })
            .collect())
    }

    /// Deletes the tenant's users, sessions, events, hooks and secrets. The default tenant
    /// cannot be deleted.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<(), AdminError> {
        if tenant.as_str() == TenantId::DEFAULT {
            return Err(crate::hooks::DeployError::new(
                "default_tenant",
                "the default tenant cannot be deleted",
            )
            .into());
        }
        if !self.flows.store.delete_tenant(tenant).await? {
            return Err(AdminError::NotFound("Tenant not found"));
        }
        self.registry.reload_tenant(tenant).await?;
        tracing::info!(tenant = %tenant, "tenant deleted");
        Ok(())
    }
}
