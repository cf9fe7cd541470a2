//! Refresh-token families (sign-in sessions) and the revocation blacklist.

use sqlx::AnyConnection;

use super::users::{USER_COLUMNS, USER_SELECT, UserRow};
use super::{Announce, Store, StoreResult};
use crate::domain::{FamilyId, TenantId, UnixMillis, User, UserId};

/// A refresh token to store.
pub struct NewSession {
    pub user_id: UserId,
    pub family: FamilyId,
    pub token_digest: String,
    /// Unix seconds when the user last proved their password; carried across rotations.
    pub auth_time: i64,
    pub expires_at: UnixMillis,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

/// What a logout revokes.
pub struct SessionEnd<'a> {
    pub user_id: UserId,
    pub family: FamilyId,
    /// The access token used to log out, and when it expires.
    pub access_jti: Option<(&'a str, UnixMillis)>,
    /// Until when the family stays blacklisted.
    pub family_revoked_until: UnixMillis,
}

/// What a presented refresh token is, before anything is rotated.
pub enum RefreshCheck {
    /// Live, of an active user: may be rotated.
    Live {
        user: User,
        family: FamilyId,
        auth_time: i64,
    },
    /// The token was already used: the whole family is now revoked.
    ReuseDetected,
    /// Unknown, expired, or its user is gone or inactive.
    Rejected,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub family_id: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
}
any_row!(SessionInfo {
    family_id,
    ip_address,
    user_agent,
    created_at,
    last_used_at,
    expires_at
});

impl Store {
    /// A successful login: stores the refresh token, clears the email's failed-login counter and
    /// records `announce`, atomically.
    pub async fn start_session(
        &self,
        tenant: &TenantId,
        session: NewSession,
        login_email: &str,
        announce: Option<Announce<'_>>,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        insert_refresh(&mut tx, tenant, &session, now).await?;
        sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND email = $2")
            .bind(tenant.as_str())
            .bind(login_email)
            .execute(&mut *tx)
            .await?;
        self.commit_announcing(tx, announce, now).await
    }

    /// Rotation, first half: what the presented token is, read on the reader pool, so the
    /// single SQLite writer only does the compare-and-swap and the insert of
    /// [`Store::commit_rotation`]. Presenting a retired token revokes its family until
    /// `family_revoked_until`, which outlives every access token it could have issued. Between
    /// the two halves the flow may decide (claims gates) without holding a transaction.
    pub async fn check_refresh(
        &self,
        tenant: &TenantId,
        presented_digest: &str,
        family_revoked_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<RefreshCheck> {
        struct Row {
            user: UserRow,
            family_id: String,
            auth_time: i64,
            revoked: i64,
            expires_at: i64,
        }
        any_row!(Row {
            user: flatten,
            family_id,
            auth_time,
            revoked,
            expires_at
        });
        let sql = format!(
            "SELECT s.*, t.family_id, t.auth_time, t.revoked, t.expires_at \
             FROM refresh_tokens t, ({USER_SELECT} WHERE u.tenant_id = $2 AND u.id = \
               (SELECT user_id FROM refresh_tokens WHERE token_hash = $1)) s \
             WHERE t.token_hash = $1 AND t.tenant_id = $2"
        );
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(presented_digest)
            .bind(tenant.as_str())
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else {
            return Ok(RefreshCheck::Rejected);
        };
        if row.revoked != 0 {
            self.revoke_family(&row.family_id, family_revoked_until)
                .await?;
            return Ok(RefreshCheck::ReuseDetected);
        }
        let user = row.user.into_user(&self.profile_schema)?;
        let Some(family) = FamilyId::parse(&row.family_id) else {
            return Ok(RefreshCheck::Rejected);
        };
        if row.expires_at <= now || !user.is_active {
            return Ok(RefreshCheck::Rejected);
        }
        Ok(RefreshCheck::Live {
            user,
            family,
            auth_time: row.auth_time,
        })
    }

    /// Rotation, second half: atomically retires the presented token and stores `next` in the
    /// same family. `false` when the token was retired since [`Store::check_refresh`] (a
    /// reuse, however close): then the family is revoked and nothing is stored.
    pub async fn commit_rotation(
        &self,
        tenant: &TenantId,
        presented_digest: &str,
        next: &NewSession,
        family_revoked_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let retired = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = $1 AND revoked = 0",
        )
        .bind(presented_digest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if retired == 0 {
            revoke_family_in(&mut tx, &next.family.to_string(), family_revoked_until).await?;
            tx.commit().await?;
            return Ok(false);
        }
        insert_refresh(&mut tx, tenant, next, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: &str, until: UnixMillis) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        revoke_family_in(&mut tx, family_id, until).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Without rotation: the live refresh token's user, family and auth time.
    pub async fn find_live_refresh(
        &self,
        tenant: &TenantId,
        digest: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<(UserId, FamilyId, i64)>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT user_id, family_id, auth_time FROM refresh_tokens \
             WHERE token_hash = $1 AND tenant_id = $2 AND revoked = 0 AND expires_at > $3",
        )
        .bind(digest)
        .bind(tenant.as_str())
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.and_then(|(u, f, t)| Some((UserId::parse(&u)?, FamilyId::parse(&f)?, t))))
    }

    /// The live refresh token's user (whatever their status), family and auth time, in one
    /// round trip: what refresh needs to settle a token's claims before it rotates.
    pub async fn find_live_refresh_user(
        &self,
        tenant: &TenantId,
        digest: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<(User, FamilyId, i64)>> {
        struct Row {
            user: UserRow,
            family_id: String,
            auth_time: i64,
        }
        any_row!(Row {
            user: flatten,
            family_id,
            auth_time
        });
        let sql = format!(
            "SELECT {USER_COLUMNS}, t.family_id, t.auth_time FROM refresh_tokens t \
             JOIN users u ON u.id = t.user_id AND u.tenant_id = t.tenant_id \
             WHERE t.token_hash = $1 AND t.tenant_id = $2 AND t.revoked = 0 AND t.expires_at > $3"
        );
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(digest)
            .bind(tenant.as_str())
            .bind(now)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let Some(family) = FamilyId::parse(&row.family_id) else {
            return Ok(None);
        };
        Ok(Some((
            row.user.into_user(&self.profile_schema)?,
            family,
            row.auth_time,
        )))
    }

    /// Logout: blacklists the access token (if given) and the family, revokes the family's
    /// refresh tokens, and records `announce` (`after_logout`). `false`, with nothing changed,
    /// when another request already ended the session with the same token.
    pub async fn end_session(
        &self,
        end: SessionEnd<'_>,
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Two logouts racing with one token both got past authentication; only the one that
        // actually ends the session announces it (and the other is told the token is spent).
        let ended = match end.access_jti {
            Some((jti, until)) => insert_revocation(&mut tx, &format!("jti:{jti}"), until).await?,
            None => false,
        };
        let flipped =
            revoke_family_in(&mut tx, &end.family.to_string(), end.family_revoked_until).await?;
        let ended = match end.access_jti {
            Some(_) => ended,
            None => flipped > 0,
        };
        if !ended {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit_announcing(tx, Some(announce), now).await?;
        Ok(true)
    }

    /// Live sessions, most recently used first.
    pub async fn list_sessions(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        now: UnixMillis,
    ) -> StoreResult<Vec<SessionInfo>> {
        Ok(sqlx::query_as(
            "SELECT a.family_id, a.ip_address, a.user_agent, a.created_at AS last_used_at, \
             a.expires_at, (SELECT MIN(b.created_at) FROM refresh_tokens b \
                            WHERE b.family_id = a.family_id) AS created_at \
             FROM refresh_tokens a \
             WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.revoked = 0 AND a.expires_at > $3 \
             ORDER BY a.created_at DESC",
        )
        .bind(tenant.as_str())
        .bind(user_id.to_string())
        .bind(now)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Revokes one of the user's live sessions. `false` if it is not theirs or not live.
    pub async fn revoke_session(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        family: &FamilyId,
        family_revoked_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let flipped = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 WHERE tenant_id = $1 AND user_id = $2 \
             AND family_id = $3 AND revoked = 0 AND expires_at > $4",
        )
        .bind(tenant.as_str())
        .bind(user_id.to_string())
        .bind(family.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if flipped == 0 {
            return Ok(false);
        }
        insert_revocation(&mut tx, &format!("family:{family}"), family_revoked_until).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes every live session of the user but `keep`; returns the refresh rows flipped.
    pub async fn revoke_other_sessions(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        keep: &FamilyId,
        family_revoked_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let families: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2 \
             AND family_id <> $3 AND revoked = 0 AND expires_at > $4",
        )
        .bind(tenant.as_str())
        .bind(user_id.to_string())
        .bind(keep.to_string())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut flipped = 0;
        for (family,) in families {
            flipped += revoke_family_in(&mut tx, &family, family_revoked_until).await?;
        }
        tx.commit().await?;
        Ok(flipped)
    }
}

pub(super) async fn insert_refresh(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    s: &NewSession,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, tenant_id, user_id, family_id, auth_time, \
         expires_at, revoked, user_agent, ip_address, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
    )
    .bind(&s.token_digest)
    .bind(tenant.as_str())
    .bind(s.user_id.to_string())
    .bind(s.family.to_string())
    .bind(s.auth_time)
    .bind(s.expires_at)
    .bind(s.user_agent.clone())
    .bind(s.ip_address.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Blacklists a key until `until`, extending an existing entry but never shortening it.
pub(super) async fn insert_revocation(
    conn: &mut AnyConnection,
    key: &str,
    until: UnixMillis,
) -> StoreResult<bool> {
    let changed = sqlx::query(
        "INSERT INTO revocations (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) \
         DO UPDATE SET expires_at = excluded.expires_at \
         WHERE revocations.expires_at < excluded.expires_at",
    )
    .bind(key)
    .bind(until)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Revokes every refresh token of a family and blacklists the family for access tokens.
pub(super) async fn revoke_family_in(
    conn: &mut AnyConnection,
    family_id: &str,
    until: UnixMillis,
) -> StoreResult<u64> {
    let flipped =
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1 AND revoked = 0")
            .bind(family_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    insert_revocation(conn, &format!("family:{family_id}"), until).await?;
    Ok(flipped)
}

/// Ends every session of a user: families that still have a live refresh token, plus those
/// whose access tokens (issued within `access_window`) may still be in use.
pub(super) async fn revoke_all_sessions_in(
    conn: &mut AnyConnection,
    user_id: &UserId,
    access_window_start: UnixMillis,
    until: UnixMillis,
) -> StoreResult<()> {
    let families: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT family_id FROM refresh_tokens \
         WHERE user_id = $1 AND (revoked = 0 OR created_at >= $2)",
    )
    .bind(user_id.to_string())
    .bind(access_window_start)
    .fetch_all(&mut *conn)
    .await?;
    for (family,) in families {
        revoke_family_in(conn, &family, until).await?;
    }
    Ok(())
}
