//! Bulk import of users from another system (`hookauth import ...`): one transaction per
//! batch, and nothing that exists is ever changed, so a re-run imports only what is new.

use super::{Store, StoreResult};
use crate::domain::{Profile, TenantId, UnixMillis, UserId};

/// A user as the importer stores it (already validated and normalised by the flow).
pub struct ImportUser {
    /// The source's id when free (see [`Store::user_id_taken`]), so `sub` claims and foreign
    /// keys elsewhere still match.
    pub id: UserId,
    pub email: String,
    pub hashed_password: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_superuser: bool,
    pub roles: Vec<String>,
    pub profile: Profile,
    pub oauth: Vec<ImportOauth>,
    pub mfa: Option<ImportMfa>,
    pub created_at: UnixMillis,
}

#[derive(Debug)]
pub struct ImportOauth {
    pub provider: String,
    pub provider_user_id: String,
    pub provider_email: Option<String>,
}

/// A confirmed TOTP factor, its secret already sealed.
pub struct ImportMfa {
    pub sealed_secret: Vec<u8>,
    pub last_step: i64,
    pub recovery_digests: Vec<String>,
}

/// What became of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Created {
        id: UserId,
    },
    /// Its email is taken in the tenant (imported before, or registered here).
    Exists,
}

impl Store {
    /// Whether any tenant has a user with this id (the same database imported into two
    /// tenants: the second copy gets new ids).
    pub async fn user_id_taken(&self, id: &UserId) -> StoreResult<bool> {
        let found: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.writer)
            .await?;
        Ok(found.is_some())
    }

    /// Stores the roles (with their permissions) and the users of one batch in one
    /// transaction; rolled back instead of committed for a dry run. Existing roles gain the
    /// listed permissions; existing users are left exactly as they are.
    pub async fn import_batch(
        &self,
        tenant: &TenantId,
        roles: &[(String, Vec<String>)],
        users: Vec<ImportUser>,
        dry_run: bool,
        now: UnixMillis,
    ) -> StoreResult<Vec<Imported>> {
        let mut tx = self.writer.begin().await?;
        for (role, permissions) in roles {
            sqlx::query(
                "INSERT INTO roles (tenant_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(role)
            .execute(&mut *tx)
            .await?;
            for permission in permissions {
                sqlx::query(
                    "INSERT INTO role_permissions (tenant_id, role_name, permission) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(role)
                .bind(permission)
                .execute(&mut *tx)
                .await?;
            }
        }
        let mut outcomes = Vec::with_capacity(users.len());
        for user in users {
            let taken: Option<(String,)> =
                sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND email = $2")
                    .bind(tenant.as_str())
                    .bind(&user.email)
                    .fetch_optional(&mut *tx)
                    .await?;
            if taken.is_some() {
                outcomes.push(Imported::Exists);
                continue;
            }
            let id = user.id.to_string();
            sqlx::query(
                "INSERT INTO users (id, tenant_id, email, hashed_password, is_active, \
                 is_verified, is_superuser, profile, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(tenant.as_str())
            .bind(&user.email)
            .bind(user.hashed_password.clone())
            .bind(i64::from(user.is_active))
            .bind(i64::from(user.is_verified))
            .bind(i64::from(user.is_superuser))
            .bind(serde_json::Value::Object(user.profile.clone()).to_string())
            .bind(user.created_at)
            .execute(&mut *tx)
            .await?;
            for role in &user.roles {
                sqlx::query(
                    "INSERT INTO roles (tenant_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(role)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(tenant.as_str())
                .bind(role)
                .execute(&mut *tx)
                .await?;
            }
            for link in &user.oauth {
                // A provider account already linked to someone else in the tenant stays
                // theirs (the flow reports it).
                sqlx::query(
                    "INSERT INTO oauth_accounts (tenant_id, provider, provider_user_id, user_id, \
                     provider_email, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(&link.provider)
                .bind(&link.provider_user_id)
                .bind(&id)
                .bind(link.provider_email.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(mfa) = &user.mfa {
                sqlx::query(
                    "INSERT INTO mfa_credentials (user_id, tenant_id, sealed, confirmed_at, \
                     last_step, created_at) VALUES ($1, $2, $3, $4, $5, $4)",
                )
                .bind(&id)
                .bind(tenant.as_str())
                .bind(mfa.sealed_secret.clone())
                .bind(now)
                .bind(mfa.last_step)
                .execute(&mut *tx)
                .await?;
                for digest in &mfa.recovery_digests {
                    sqlx::query(
                        "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&id)
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            outcomes.push(Imported::Created { id: user.id });
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcomes)
    }
}
