use super::{Store, StoreError, StoreResult};
use crate::domain::{TenantId, UnixMillis};

impl Store {
    /// A taken name is [`StoreError::Conflict`].
    pub async fn create_tenant(&self, tenant: &TenantId, now: UnixMillis) -> StoreResult<()> {
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, $2)")
            .bind(tenant.as_str())
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn tenant_exists(&self, tenant: &TenantId) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    /// Deletes rows that can no longer matter: expired blacklist entries, tokens and counters,
    /// delivered events older than `keep_delivered_until`, and the one-time tokens held by failed
    /// events older than `scrub_failed_before` (no longer usable anyway).
    pub async fn prune_expired(
        &self,
        now: UnixMillis,
        keep_delivered_until: UnixMillis,
        scrub_failed_before: UnixMillis,
    ) -> StoreResult<()> {
        for (sql, cutoff) in [
            ("DELETE FROM revocations WHERE expires_at < $1", now),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM one_time_tokens WHERE expires_at < $1", now),
            // Windows are at most a day long (`rate_limit.window_seconds`).
            ("DELETE FROM rate_limit_hits WHERE at < $1 - 86400000", now),
            (
                "DELETE FROM login_failures WHERE (locked_until IS NULL OR locked_until < $1) \
                 AND first_failure_at < $1 - 86400000",
                now,
            ),
            (
                "DELETE FROM events WHERE status = 'delivered' AND delivered_at < $1",
                keep_delivered_until,
            ),
            (
                "UPDATE events SET secret = NULL WHERE status = 'failed' AND created_at < $1",
                scrub_failed_before,
            ),
        ] {
            sqlx::query(sql).bind(cutoff).execute(&self.writer).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Every tenant, oldest first.
    pub async fn list_tenants(&self) -> StoreResult<Vec<(String, UnixMillis)>> {
        Ok(
            sqlx::query_as("SELECT id, created_at FROM tenants ORDER BY created_at, id")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    /// Deletes a tenant with all of its data: users (and with them their sessions, tokens and
    /// roles), roles, events, hooks and hook secrets. `false` if there was no such tenant.
    /// The hook revision is bumped so every replica drops the tenant's hooks.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        for sql in [
            "DELETE FROM user_roles WHERE tenant_id = $1",
            "DELETE FROM role_permissions WHERE tenant_id = $1",
            "DELETE FROM refresh_tokens WHERE tenant_id = $1",
            "DELETE FROM one_time_tokens WHERE tenant_id = $1",
            "DELETE FROM login_failures WHERE tenant_id = $1",
            "DELETE FROM oauth_accounts WHERE tenant_id = $1",
            "DELETE FROM tenant_oauth_providers WHERE tenant_id = $1",
            "DELETE FROM users WHERE tenant_id = $1",
            "DELETE FROM roles WHERE tenant_id = $1",
            "DELETE FROM events WHERE tenant_id = $1",
            "DELETE FROM tenant_hooks WHERE tenant_id = $1",
            "DELETE FROM hook_secrets WHERE tenant_id = $1",
        ] {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM hook_components WHERE NOT EXISTS \
             (SELECT 1 FROM tenant_hooks WHERE tenant_hooks.sha256 = hook_components.sha256)",
        )
        .execute(&mut *tx)
        .await?;
        super::tenant_hooks::bump_revision(&mut tx, self.dialect, tenant).await?;
        tx.commit().await?;
        Ok(true)
    }
}
