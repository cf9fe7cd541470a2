//! Tenant hook secrets, sealed before they get here (`crypto::SecretBox`): the store only ever
//! sees ciphertext. A change bumps the tenant's hook revision, so hooks reading the secret pick
//! up the new value on every replica.

use super::tenant_hooks::bump_revision;
use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

impl Store {
    /// Creates or replaces a secret; `true` when it was created.
    pub async fn put_hook_secret(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &[u8],
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let existed: Option<(String,)> =
            sqlx::query_as("SELECT key FROM hook_secrets WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO hook_secrets (tenant_id, key, sealed, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET sealed = excluded.sealed, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(sealed.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        bump_revision(&mut tx, self.dialect, tenant).await?;
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// `false` if there was no such secret.
    pub async fn delete_hook_secret(&self, tenant: &TenantId, key: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM hook_secrets WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_revision(&mut tx, self.dialect, tenant).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Names and last change, never values.
    pub async fn hook_secret_names(&self, tenant: &TenantId) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT key, updated_at FROM hook_secrets WHERE tenant_id = $1 ORDER BY key",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?)
    }

    /// Every sealed secret of a tenant, for the registry to open when it builds the hooks.
    pub async fn sealed_hook_secrets(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        Ok(
            sqlx::query_as("SELECT key, sealed FROM hook_secrets WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_all(&self.reader)
                .await?,
        )
    }
}
