//! Provider accounts linked to users, and the single use of OAuth states. The database's keys
//! hold the invariants (a provider account has one owner, a user one account per provider), so
//! two sign-ins or links racing cannot both win.

use super::sessions::{NewSession, insert_refresh};
use super::users::{USER_SELECT, UserRow, insert_user_rows};
use super::{Announce, Dialect, NewUser, Store, StoreError, StoreResult};
use crate::domain::{OauthAccount, TenantId, UnixMillis, User, UserId};

/// Who an OAuth sign-in signs in.
pub enum OauthSignIn {
    /// The provider account is linked to this user already (its email is refreshed).
    Linked(User),
    /// An existing user the provider account is linked to now (auto-link by verified email).
    Link(User),
    /// A new user, created with the link.
    Create(NewUser),
}

/// What a link request found.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// The provider account belongs to another user.
    TakenByOther,
    /// The user has another account of this provider linked.
    ProviderAlreadyLinked,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    NotLinked,
    /// It is the user's last way to sign in.
    LastMethod,
}

struct AccountRow {
    provider: String,
    provider_user_id: String,
    provider_email: Option<String>,
}
any_row!(AccountRow {
    provider,
    provider_user_id,
    provider_email
});

impl From<AccountRow> for OauthAccount {
    fn from(r: AccountRow) -> Self {
        OauthAccount {
            provider: r.provider,
            provider_user_id: r.provider_user_id,
            provider_email: r.provider_email,
        }
    }
}

impl Store {
    /// The user a provider account is linked to.
    pub async fn find_oauth_user(
        &self,
        tenant: &TenantId,
        provider: &str,
        provider_user_id: &str,
    ) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "{USER_SELECT} WHERE u.tenant_id = $1 AND u.id = (SELECT a.user_id FROM \
             oauth_accounts a WHERE a.tenant_id = $1 AND a.provider = $2 \
             AND a.provider_user_id = $3)"
        ))
        .bind(tenant.as_str())
        .bind(provider)
        .bind(provider_user_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| r.into_user(&self.profile_schema)).transpose()
    }

    /// The user's linked provider accounts, by provider name.
    pub async fn oauth_accounts(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> StoreResult<Vec<OauthAccount>> {
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT provider, provider_user_id, provider_email FROM oauth_accounts \
             WHERE tenant_id = $1 AND user_id = $2 ORDER BY provider",
        )
        .bind(tenant.as_str())
        .bind(user.to_string())
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(OauthAccount::from).collect())
    }

    /// Uses up an OAuth state (by its `jti`): true the first time only, also when two
    /// callbacks race with it. Kept until it would have expired anyway.
    pub async fn consume_oauth_state(
        &self,
        jti: &str,
        expires_at: UnixMillis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO revocations (key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(format!("oauth_state:{jti}"))
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One OAuth sign-in, atomically: the user (created or linked as `who` says), the link,
    /// the new session and the events. [`StoreError::Conflict`] when a concurrent request
    /// changed the picture (the email or the provider account was taken meanwhile): the caller
    /// looks again.
    pub async fn oauth_sign_in<'a>(
        &self,
        tenant: &TenantId,
        who: OauthSignIn,
        account: &OauthAccount,
        session: &NewSession,
        announce: impl FnOnce(&User) -> Vec<Announce<'a>>,
        now: UnixMillis,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await?;
        let (user, insert_link) = match who {
            OauthSignIn::Linked(user) => (user, false),
            OauthSignIn::Link(user) => (user, true),
            OauthSignIn::Create(new) => (
                insert_user_rows(&mut tx, &self.profile_schema, new, now).await?,
                true,
            ),
        };
        if insert_link {
            insert_account(&mut tx, tenant, &user.id, account, now).await?;
        } else {
            let done = sqlx::query(
                "UPDATE oauth_accounts SET provider_email = $1 WHERE tenant_id = $2 \
                 AND provider = $3 AND provider_user_id = $4 AND user_id = $5",
            )
            .bind(account.provider_email.clone())
            .bind(tenant.as_str())
            .bind(&account.provider)
            .bind(&account.provider_user_id)
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                // Unlinked meanwhile.
                return Err(StoreError::Conflict);
            }
        }
        insert_refresh(&mut tx, tenant, session, now).await?;
        let events = announce(&user);
        self.commit_announcing(tx, events, now).await?;
        Ok(user)
    }

    /// Links a provider account to a signed-in user, with its event.
    pub async fn link_oauth_account(
        &self,
        tenant: &TenantId,
        user: &User,
        account: &OauthAccount,
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<LinkOutcome> {
        let mut tx = self.writer.begin().await?;
        let owner: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM oauth_accounts WHERE tenant_id = $1 AND provider = $2 \
             AND provider_user_id = $3",
        )
        .bind(tenant.as_str())
        .bind(&account.provider)
        .bind(&account.provider_user_id)
        .fetch_optional(&mut *tx)
        .await?;
        match owner {
            Some((owner,)) if owner != user.id.to_string() => return Ok(LinkOutcome::TakenByOther),
            Some(_) => {
                // Linked already: a repeat refreshes the email and succeeds.
                sqlx::query(
                    "UPDATE oauth_accounts SET provider_email = $1 WHERE tenant_id = $2 \
                     AND provider = $3 AND provider_user_id = $4",
                )
                .bind(account.provider_email.clone())
                .bind(tenant.as_str())
                .bind(&account.provider)
                .bind(&account.provider_user_id)
                .execute(&mut *tx)
                .await?;
            }
            None => match insert_account(&mut tx, tenant, &user.id, account, now).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    // Either key: tell which from a fresh look (the transaction is void).
                    drop(tx);
                    let mine = self.oauth_accounts(tenant, &user.id).await?;
                    return Ok(if mine.iter().any(|a| a.provider == account.provider) {
                        LinkOutcome::ProviderAlreadyLinked
                    } else {
                        LinkOutcome::TakenByOther
                    });
                }
                Err(e) => return Err(e),
            },
        }
        self.commit_announcing(tx, Some(announce), now).await?;
        Ok(LinkOutcome::Linked)
    }

    /// Unlinks the user's account of `provider`, unless it is their last way to sign in: no
    /// password and no other linked account of a provider in `usable` (the ones configured
    /// now; an account of a removed provider cannot sign anyone in). Checked and deleted under
    /// a lock on the user, so two unlinks at once cannot remove the last two ways together.
    pub async fn unlink_oauth_account(
        &self,
        tenant: &TenantId,
        user: &User,
        provider: &str,
        usable: &[String],
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<UnlinkOutcome> {
        let mut tx = self.writer.begin().await?;
        // SQLite has one writer connection: its transactions are serialised already.
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        };
        let current: Option<(Option<String>,)> = sqlx::query_as(&format!(
            "SELECT hashed_password FROM users WHERE tenant_id = $1 AND id = $2{lock}"
        ))
        .bind(tenant.as_str())
        .bind(user.id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((password,)) = current else {
            return Ok(UnlinkOutcome::NotLinked);
        };
        let linked: Vec<(String,)> = sqlx::query_as(
            "SELECT provider FROM oauth_accounts WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_str())
        .bind(user.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        if !linked.iter().any(|(p,)| p == provider) {
            return Ok(UnlinkOutcome::NotLinked);
        }
        let others = linked
            .iter()
            .filter(|(p,)| p != provider && usable.contains(p))
            .count();
        if password.is_none() && others == 0 {
            return Ok(UnlinkOutcome::LastMethod);
        }
        sqlx::query(
            "DELETE FROM oauth_accounts WHERE tenant_id = $1 AND user_id = $2 AND provider = $3",
        )
        .bind(tenant.as_str())
        .bind(user.id.to_string())
        .bind(provider)
        .execute(&mut *tx)
        .await?;
        self.commit_announcing(tx, Some(announce), now).await?;
        Ok(UnlinkOutcome::Unlinked)
    }
}

async fn insert_account(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    user: &UserId,
    account: &OauthAccount,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oauth_accounts (tenant_id, provider, provider_user_id, user_id, \
         provider_email, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(&account.provider)
    .bind(&account.provider_user_id)
    .bind(user.to_string())
    .bind(account.provider_email.clone())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_insert)?;
    Ok(())
}

/// A provider a tenant admin configured through the management API: its settings as JSON
/// (without the secret), the sealed client secret, and when it was last set.
#[derive(Debug, Clone)]
pub struct StoredOauthProvider {
    pub name: String,
    pub config: String,
    pub sealed_secret: Vec<u8>,
    pub updated_at: i64,
}
any_row!(StoredOauthProvider {
    name,
    config,
    sealed_secret,
    updated_at
});

impl Store {
    /// The tenant's API-configured providers, by name.
    pub async fn tenant_oauth_providers(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<StoredOauthProvider>> {
        Ok(sqlx::query_as(
            "SELECT name, config, sealed_secret, updated_at FROM tenant_oauth_providers \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?)
    }

    /// Creates or replaces a provider; `true` when created.
    pub async fn put_tenant_oauth_provider(
        &self,
        tenant: &TenantId,
        provider: &StoredOauthProvider,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let existed: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM tenant_oauth_providers WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant.as_str())
        .bind(&provider.name)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tenant_oauth_providers (tenant_id, name, config, sealed_secret, \
             updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO UPDATE \
             SET config = excluded.config, sealed_secret = excluded.sealed_secret, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(&provider.name)
        .bind(&provider.config)
        .bind(provider.sealed_secret.clone())
        .bind(provider.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// `false` if there was no such provider.
    pub async fn delete_tenant_oauth_provider(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM tenant_oauth_providers WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.as_str())
                .bind(name)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
