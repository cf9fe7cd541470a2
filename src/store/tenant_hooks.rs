//! Tenant hooks deployed through the API: rows in `tenant_hooks`, component bytes in
//! `hook_components` (once per sha256), and a per-tenant revision that tells other replicas to
//! reload. Every change bumps the revision in the same transaction and, on PostgreSQL, sends
//! `NOTIFY hookauth_tenant_hooks, '<tenant>'` at commit.

use sqlx::AnyConnection;

use super::{Dialect, Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

/// The channel replicas listen on for tenant hook changes (payload: the tenant id).
pub const HOOKS_NOTIFY_CHANNEL: &str = "hookauth_tenant_hooks";

/// One deployed hook, without its component bytes (those are read when it first runs).
#[derive(Debug, Clone)]
pub struct TenantHookRow {
    pub tenant_id: String,
    pub name: String,
    pub sha256: String,
    /// The manifest as deployed (JSON object).
    pub manifest: String,
    /// The events it receives (JSON array of event names), resolved at deploy.
    pub events: String,
    /// The decision points it serves as a gate (JSON array of names), resolved at deploy.
    pub gate_points: String,
    pub hook_order: i64,
    /// 0 or 1 (an integer on both backends).
    pub enabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}
any_row!(TenantHookRow {
    tenant_id,
    name,
    sha256,
    manifest,
    events,
    gate_points,
    hook_order,
    enabled,
    created_at,
    updated_at
});

/// How a deploy was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
    /// A new hook past the tenant's `max_hooks`: nothing was written.
    TooMany,
}

/// What a deploy writes.
pub struct NewTenantHook<'a> {
    pub tenant: &'a TenantId,
    pub name: &'a str,
    pub sha256: &'a str,
    pub bytes: &'a [u8],
    pub manifest: &'a str,
    pub events: &'a str,
    pub gate_points: &'a str,
    pub order: i64,
    pub enabled: bool,
    /// Hooks the tenant may have; checked in the same transaction as the insert.
    pub max_hooks: i64,
}

const COLUMNS: &str = "tenant_id, name, sha256, manifest, events, gate_points, hook_order, enabled, created_at, \
     updated_at";

/// Bumps the tenant's revision inside the caller's transaction and, on PostgreSQL, notifies
/// every listening replica at commit.
pub(super) async fn bump_revision(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &TenantId,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tenant_hook_revisions (tenant_id, revision) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_hook_revisions.revision + 1",
    )
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(HOOKS_NOTIFY_CHANNEL)
            .bind(tenant.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Creates or replaces a hook. Component bytes are stored once per sha256, and bytes no
    /// hook uses any more are removed. The hook count is checked inside the transaction
    /// (serialised per tenant on PostgreSQL), so concurrent deploys cannot exceed `max_hooks`.
    pub async fn put_tenant_hook(
        &self,
        hook: &NewTenantHook<'_>,
        now: UnixMillis,
    ) -> StoreResult<PutOutcome> {
        let mut tx = self.writer.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT COUNT(*) FROM pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("hookauth tenant hooks {}", hook.tenant))
                .execute(&mut *tx)
                .await?;
        }
        let existed: Option<(String,)> =
            sqlx::query_as("SELECT name FROM tenant_hooks WHERE tenant_id = $1 AND name = $2")
                .bind(hook.tenant.as_str())
                .bind(hook.name)
                .fetch_optional(&mut *tx)
                .await?;
        if existed.is_none() {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM tenant_hooks WHERE tenant_id = $1")
                    .bind(hook.tenant.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if n >= hook.max_hooks {
                return Ok(PutOutcome::TooMany);
            }
        }
        sqlx::query(
            "INSERT INTO hook_components (sha256, bytes, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(hook.sha256)
        .bind(hook.bytes.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tenant_hooks (tenant_id, name, sha256, manifest, events, hook_order, \
             enabled, created_at, updated_at, gate_points) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET sha256 = excluded.sha256, \
             manifest = excluded.manifest, events = excluded.events, \
             gate_points = excluded.gate_points, \
             hook_order = excluded.hook_order, enabled = excluded.enabled, \
             updated_at = excluded.updated_at",
        )
        .bind(hook.tenant.as_str())
        .bind(hook.name)
        .bind(hook.sha256)
        .bind(hook.manifest)
        .bind(hook.events)
        .bind(hook.order)
        .bind(i64::from(hook.enabled))
        .bind(now)
        .bind(hook.gate_points)
        .execute(&mut *tx)
        .await?;
        remove_unused_components(&mut tx).await?;
        bump_revision(&mut tx, self.dialect, hook.tenant).await?;
        tx.commit().await?;
        Ok(if existed.is_none() {
            PutOutcome::Created
        } else {
            PutOutcome::Replaced
        })
    }

    /// Changes a hook's settings (not its component); `false` if there is no such hook.
    pub async fn update_tenant_hook(
        &self,
        tenant: &TenantId,
        name: &str,
        manifest: &str,
        order: i64,
        enabled: bool,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE tenant_hooks SET manifest = $3, hook_order = $4, enabled = $5, \
             updated_at = $6 WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(manifest)
        .bind(order)
        .bind(i64::from(enabled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_revision(&mut tx, self.dialect, tenant).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `false` if there was no such hook.
    pub async fn delete_tenant_hook(&self, tenant: &TenantId, name: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM tenant_hooks WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        remove_unused_components(&mut tx).await?;
        bump_revision(&mut tx, self.dialect, tenant).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn tenant_hooks(&self, tenant: &TenantId) -> StoreResult<Vec<TenantHookRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tenant_hooks WHERE tenant_id = $1 ORDER BY hook_order, name"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?)
    }

    /// Every tenant's hooks, for start-up: rows only, so 3,000 hooks load in milliseconds.
    pub async fn all_tenant_hooks(&self) -> StoreResult<Vec<TenantHookRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tenant_hooks ORDER BY tenant_id, hook_order, name"
        ))
        .fetch_all(&self.reader)
        .await?)
    }

    /// The bytes of a deployed component, by hash.
    pub async fn hook_component(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM hook_components WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|(b,)| b))
    }

    /// Every tenant's hook revision: what a replica compares to notice changes it missed.
    pub async fn tenant_hook_revisions(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT tenant_id, revision FROM tenant_hook_revisions")
                .fetch_all(&self.reader)
                .await?,
        )
    }
}

async fn remove_unused_components(conn: &mut AnyConnection) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM hook_components WHERE NOT EXISTS \
         (SELECT 1 FROM tenant_hooks WHERE tenant_hooks.sha256 = hook_components.sha256)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
