//! What operators watch: how far each tenant's outbox is behind, and its hooks' recent runs.

use serde::Serialize;

use super::{FlowError, Flows};
use crate::domain::TenantId;
use crate::metrics::{HookActivity, OutboxDepth};

/// One tenant's live delivery state (`GET {T}/monitor`, the admin console).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantMonitor {
    pub tenant: String,
    pub outbox: OutboxDepth,
    /// Recent invocations on this replica.
    pub hooks: Vec<HookActivity>,
}

/// Refreshes the outbox gauges from the database and renders every metric (`/metrics`).
pub async fn render_metrics(flows: &Flows) -> Result<String, FlowError> {
    let depths = outbox_depths(flows, None).await?;
    flows.metrics.set_outbox(&depths);
    Ok(flows.metrics.render())
}

/// `tenant`'s outbox and its hooks' recent activity.
pub async fn tenant_monitor(flows: &Flows, tenant: &TenantId) -> Result<TenantMonitor, FlowError> {
    let outbox = outbox_depths(flows, Some(tenant))
        .await?
        .into_iter()
        .next()
        .map(|(_, depth)| depth)
        .unwrap_or_default();
    Ok(TenantMonitor {
        tenant: tenant.to_string(),
        outbox,
        hooks: flows.metrics.hook_activity(tenant.as_str()),
    })
}

async fn outbox_depths(
    flows: &Flows,
    tenant: Option<&TenantId>,
) -> Result<Vec<(String, OutboxDepth)>, FlowError> {
    let now = flows.clock.now_millis();
    Ok(flows
        .store
        .outbox_depths(tenant)
        .await?
        .into_iter()
        .map(|(tenant, pending, oldest)| {
            let age_ms = oldest.map_or(0, |at| now.saturating_sub(at).max(0));
            (
                tenant,
                OutboxDepth {
                    pending,
                    oldest_pending_seconds: age_ms as f64 / 1000.0,
                },
            )
        })
        .collect())
}
