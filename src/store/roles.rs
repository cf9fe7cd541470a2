//! Roles and permissions, administered by superusers.

use super::{Store, StoreResult};
use crate::domain::{RoleName, TenantId, UserId};

impl Store {
    /// Which of `names` are roles of the tenant (a gate may assign only existing roles).
    pub async fn existing_roles(
        &self,
        tenant: &TenantId,
        names: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut known = Vec::new();
        // A gate names a handful at most (the flows cap it); one indexed lookup each keeps the
        // SQL portable.
        for name in names {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT name FROM roles WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_str())
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?;
            known.extend(found.map(|(n,)| n));
        }
        Ok(known)
    }

    /// Gives the user the role, creating the role if new. `false` if the user does not exist.
    pub async fn assign_role(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        role: &RoleName,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(user_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        ensure_role(&mut tx, tenant, role).await?;
        sqlx::query(
            "INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id.to_string())
        .bind(tenant.as_str())
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn remove_role(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        role: &RoleName,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2 AND role_name = $3",
        )
        .bind(tenant.as_str())
        .bind(user_id.to_string())
        .bind(role.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn assign_permission(
        &self,
        tenant: &TenantId,
        role: &RoleName,
        permission: &RoleName,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        ensure_role(&mut tx, tenant, role).await?;
        sqlx::query(
            "INSERT INTO role_permissions (tenant_id, role_name, permission) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(role.as_str())
        .bind(permission.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_permission(
        &self,
        tenant: &TenantId,
        role: &RoleName,
        permission: &RoleName,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM role_permissions WHERE tenant_id = $1 AND role_name = $2 \
             AND permission = $3",
        )
        .bind(tenant.as_str())
        .bind(role.as_str())
        .bind(permission.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn role_permissions(
        &self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT permission FROM role_permissions WHERE tenant_id = $1 AND role_name = $2 \
             ORDER BY permission",
        )
        .bind(tenant.as_str())
        .bind(role.as_str())
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }
}

async fn ensure_role(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    role: &RoleName,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO roles (tenant_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant.as_str())
        .bind(role.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
