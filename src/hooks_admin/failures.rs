//! A tenant's failed hook deliveries and undelivered emails, and their replay: the tenant sees
//! and replays only its own hooks' failures, never the platform's.

use serde::Serialize;

use super::{AdminError, HooksAdmin};
use crate::domain::TenantId;
use crate::store::{DecisionQuery, GateDecisionRecord, HookFailure};

/// Events read per listing for each one asked for: events failed only by platform hooks are
/// read and left out, so a page is filled from more than `limit` rows.
const SCAN_FACTOR: i64 = 4;
const SCAN_LIMIT: i64 = 2_000;

/// One event as a tenant sees it: only its own hooks are named.
#[derive(Debug, Clone, Serialize)]
pub struct TenantFailure {
    pub id: String,
    pub kind: String,
    /// `failed` (its hooks gave up) or `no_handler` (an email no hook was there to send).
    pub status: String,
    pub attempts: i64,
    pub failed_hooks: Vec<String>,
    pub failures: Vec<HookFailure>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl HooksAdmin {
    /// The tenant's gate decisions, newest first. Platform gates decide about the tenant's
    /// users too, so their decisions are listed, but why a platform gate failed is the
    /// operator's business: that reason is left out.
    pub async fn decisions(
        &self,
        tenant: &TenantId,
        hook: Option<String>,
        decision: Option<String>,
        limit: i64,
    ) -> Result<Vec<GateDecisionRecord>, AdminError> {
        let own = self.tenant_hook_names(tenant);
        let query = DecisionQuery {
            tenant: Some(tenant.clone()),
            hook,
            decision,
            limit,
        };
        let mut found = self.flows.gate_decisions(&query).await?;
        for d in &mut found {
            if !own.contains(&d.hook) && d.failure.is_some() {
                d.failure = Some("(a platform hook; reason withheld)".into());
            }
        }
        Ok(found)
    }

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
        let scan = i64::try_from(limit)
            .unwrap_or(i64::MAX)
            .saturating_mul(SCAN_FACTOR)
            .clamp(1, SCAN_LIMIT);
        let failed = self.flows.store.failed_events(Some(tenant), scan).await?;
        Ok(failed
            .into_iter()
            .filter_map(|f| {
                // Other hooks' errors (platform) are not the tenant's to read.
                let failures: Vec<HookFailure> = f
                    .failures
                    .into_iter()
                    .filter(|h| own.contains(&h.hook))
                    .collect();
                let no_handler = f.status == "no_handler";
                // An event failed only by platform hooks is the operator's business.
                (no_handler || !failures.is_empty()).then(|| TenantFailure {
                    id: f.id,
                    kind: f.kind,
                    attempts: failures.iter().map(|h| h.attempts).max().unwrap_or(0),
                    failed_hooks: failures.iter().map(|h| h.hook.clone()).collect(),
                    last_error: match failures.last() {
                        Some(h) => Some(format!(
                            "{}: {}",
                            h.hook,
                            h.last_error.as_deref().unwrap_or("")
                        )),
                        None => f.last_error,
                    },
                    failures,
                    status: f.status,
                    created_at: f.created_at,
                })
            })
            .take(limit)
            .collect())
    }

    /// Puts one of the tenant's events back in the queue: the deliveries its own hooks failed,
    /// or an email no hook was there to send (fanned out again to the hooks present now).
    /// `false`: no such event of this tenant, or none of its own hooks failed it.
    pub async fn replay_failure(&self, tenant: &TenantId, id: &str) -> Result<bool, AdminError> {
        let own = self.tenant_hook_names(tenant);
        Ok(self
            .flows
            .store
            .replay_event(id, Some(tenant), Some(&own), self.clock().now_millis())
            .await?)
    }
}
