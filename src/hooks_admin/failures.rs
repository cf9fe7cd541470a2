//! A tenant's failed hook deliveries, and their replay.
//!
//! MERGE POINT: written over today's store functions (`failed_events(limit)`, filtered here by
//! tenant, and `replay_event(id, now)`). After the delivery branch lands, replace the bodies of
//! [`HooksAdmin::failures`] and [`HooksAdmin::replay_failure`] with
//! `store.failed_events(Some(tenant), limit)` and
//! `store.replay_event(id, Some(tenant), Some(&self.tenant_hook_names(tenant)), now)`; nothing
//! else calls the store for failures.

use serde::Serialize;

use super::{AdminError, HooksAdmin};
use crate::domain::TenantId;

/// Failed events scanned at most per listing (today's store cannot filter by tenant).
const SCAN_LIMIT: i64 = 10_000;

/// One failed delivery as a tenant sees it: only its own hooks are named.
#[derive(Debug, Clone, Serialize)]
pub struct TenantFailure {
    pub id: String,
    pub kind: String,
    pub attempts: i64,
    pub failed_hooks: Vec<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl HooksAdmin {
    /// The names of the tenant's own hooks (file and API): what it may see and replay.
    pub fn tenant_hook_names(&self, tenant: &TenantId) -> Vec<String> {
        self.registry
            .describe(tenant)
            .into_iter()
            .filter(|h| h.source != "platform")
            .map(|h| h.name)
            .collect()
    }

    pub async fn failures(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<TenantFailure>, AdminError> {
        let own = self.tenant_hook_names(tenant);
        let failed = self.flows.store.failed_events(SCAN_LIMIT).await?;
        Ok(failed
            .into_iter()
            .filter(|f| f.tenant == tenant.as_str())
            .filter_map(|f| {
                let failed_hooks: Vec<String> = f
                    .failed_handlers
                    .into_iter()
                    .filter(|h| own.contains(h))
                    .collect();
                // An event failed only by platform hooks is the operator's business.
                (!failed_hooks.is_empty()).then(|| TenantFailure {
                    id: f.id,
                    kind: f.kind,
                    attempts: f.attempts,
                    // Other hooks' errors (platform) are not the tenant's to read.
                    last_error: f
                        .last_error
                        .filter(|e| failed_hooks.iter().any(|h| e.starts_with(&format!("{h}:")))),
                    failed_hooks,
                    created_at: f.created_at,
                })
            })
            .take(limit)
            .collect())
    }

    /// Puts one of the tenant's failed events back in the queue. `false`: no such failed event
    /// of this tenant failed by one of its own hooks.
    pub async fn replay_failure(&self, tenant: &TenantId, id: &str) -> Result<bool, AdminError> {
        let own = self.tenant_hook_names(tenant);
        let mine = self
            .failures(tenant, usize::MAX)
            .await?
            .into_iter()
            .any(|f| f.id == id && f.failed_hooks.iter().any(|h| own.contains(h)));
        if !mine {
            return Ok(false);
        }
        Ok(self
            .flows
            .store
            .replay_event(id, self.clock().now_millis())
            .await?)
    }
}
