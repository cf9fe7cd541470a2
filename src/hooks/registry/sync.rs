//! Applying other replicas' changes: a listener on the PostgreSQL channel reloads a tenant as
//! soon as its change commits; a poll of the revision table (every second, on both backends)
//! catches what a dropped listener connection missed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::HookRegistry;
use crate::domain::TenantId;
use crate::store::{Dialect, HOOKS_NOTIFY_CHANNEL};

/// How often revisions are compared when no notification arrives.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

impl HookRegistry {
    /// Keeps this replica's API hooks in step with the database until `shutdown` turns true.
    pub fn spawn_sync(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        if self.store().dialect() == Dialect::Postgres {
            let registry = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move { registry.listen(shutdown).await });
        }
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                    _ = shutdown.changed() => break,
                }
                self.catch_up().await;
            }
        })
    }

    async fn catch_up(&self) {
        match self.stale_tenants().await {
            Ok(stale) => {
                for tenant in stale {
                    self.reload_logged(&tenant).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot poll tenant hook revisions"),
        }
    }

    async fn reload_logged(&self, tenant: &TenantId) {
        match self.reload_tenant(tenant).await {
            Ok(()) => tracing::info!(tenant = %tenant, "tenant hooks reloaded"),
            Err(e) => tracing::warn!(tenant = %tenant, error = %e, "cannot reload tenant hooks"),
        }
    }

    async fn listen(&self, mut shutdown: watch::Receiver<bool>) {
        let url = self.store().url().to_owned();
        while !*shutdown.borrow() {
            let result: Result<(), sqlx::Error> = async {
                let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
                listener.listen(HOOKS_NOTIFY_CHANNEL).await?;
                // Changes committed before the listener started are caught by this pass.
                self.catch_up().await;
                loop {
                    tokio::select! {
                        n = listener.recv() => {
                            // The payload names the tenant; comparing revisions instead skips
                            // the change this replica made (and already applied) itself.
                            n?;
                            self.catch_up().await;
                        }
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "tenant hook listener failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
