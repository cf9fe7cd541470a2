//! Tenants as the request path sees them.

use super::{FlowError, Flows};
use crate::domain::TenantId;

/// Whether `tenant` exists (it was created and not deleted).
pub async fn tenant_exists(flows: &Flows, tenant: &TenantId) -> Result<bool, FlowError> {
    Ok(flows.store.tenant_exists(tenant).await?)
}
