//! Single-use email-verification and password-reset tokens, stored by digest.

use sqlx::AnyConnection;

use super::sessions::revoke_all_sessions_in;
use super::users::find_user_in;
use super::{Announce, Store, StoreResult};
use crate::domain::{TenantId, UnixMillis, User, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
    /// Between a correct password and the second factor (`/mfa/verify`).
    MfaPending,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::MfaPending => "mfa_pending",
        }
    }
}

pub enum ConsumeOutcome {
    /// The change is committed; the user as it was before it.
    Done(User),
    /// Unknown, expired, used, wrong purpose, or its user is gone or inactive.
    Invalid,
}

/// When a password changes, every session ends until this long after now, which outlives the
/// access tokens they issued; `access_window_start` bounds which families may still hold one.
#[derive(Clone, Copy)]
pub struct SessionCutoff {
    pub access_window_start: UnixMillis,
    pub revoked_until: UnixMillis,
}

impl Store {
    /// Stores a token and the event that delivers it (whose payload holds the plaintext token,
    /// kept apart and erased after delivery), atomically.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_one_time_token(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        purpose: TokenPurpose,
        digest: &str,
        expires_at: UnixMillis,
        announce: Option<Announce<'_>>,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, tenant_id, user_id, purpose, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(digest)
        .bind(tenant.as_str())
        .bind(user_id.to_string())
        .bind(purpose.as_str())
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.commit_announcing(tx, announce, now).await
    }

    /// Burns a live token of `purpose` and answers its user; `None` when it is unknown,
    /// expired, used or of another purpose (of two requests at once, one wins).
    pub async fn consume_one_time_token(
        &self,
        tenant: &TenantId,
        digest: &str,
        purpose: TokenPurpose,
        now: UnixMillis,
    ) -> StoreResult<Option<UserId>> {
        let mut conn = self.writer.acquire().await?;
        burn(&mut conn, tenant, digest, purpose, now).await
    }

    /// Whether a token could be consumed now; lets a flow refuse a bad token before doing
    /// expensive work (hashing the new password). Consumption itself re-checks atomically.
    /// The user a live (unused, unexpired) one-time token belongs to.
    pub async fn one_time_token_user(
        &self,
        tenant: &TenantId,
        digest: &str,
        purpose: TokenPurpose,
        now: UnixMillis,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND tenant_id = $2 \
             AND purpose = $3 AND used_at IS NULL AND expires_at > $4",
        )
        .bind(digest)
        .bind(tenant.as_str())
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Burns a verification token and marks its user verified. `announce` (given the verified
    /// user) is recorded only when the user was not verified before.
    pub async fn confirm_email<'a>(
        &self,
        tenant: &TenantId,
        digest: &str,
        announce: impl FnOnce(&User) -> Announce<'a>,
        now: UnixMillis,
    ) -> StoreResult<ConsumeOutcome> {
        let mut tx = self.writer.begin().await?;
        let Some(user) = self
            .consume_in(&mut tx, tenant, digest, TokenPurpose::VerifyEmail, now)
            .await?
        else {
            return Ok(ConsumeOutcome::Invalid);
        };
        if !user.is_active {
            tx.commit().await?; // the token stays burned
            return Ok(ConsumeOutcome::Invalid);
        }
        let mut event = None;
        if !user.is_verified {
            sqlx::query("UPDATE users SET is_verified = 1 WHERE id = $1")
                .bind(user.id.to_string())
                .execute(&mut *tx)
                .await?;
            let mut verified = user.clone();
            verified.is_verified = true;
            event = Some(announce(&verified));
        }
        self.commit_announcing(tx, event, now).await?;
        Ok(ConsumeOutcome::Done(user))
    }

    /// Burns a reset token and sets the new password; ends every session and voids every
    /// other outstanding reset link; records `announce` (given the pre-reset user).
    pub async fn reset_password<'a>(
        &self,
        tenant: &TenantId,
        digest: &str,
        new_hash: &str,
        cutoff: SessionCutoff,
        announce: impl FnOnce(&User) -> Announce<'a>,
        now: UnixMillis,
    ) -> StoreResult<ConsumeOutcome> {
        let mut tx = self.writer.begin().await?;
        let Some(user) = self
            .consume_in(&mut tx, tenant, digest, TokenPurpose::PasswordReset, now)
            .await?
        else {
            return Ok(ConsumeOutcome::Invalid);
        };
        if !user.is_active {
            tx.commit().await?;
            return Ok(ConsumeOutcome::Invalid);
        }
        set_password_in(&mut tx, &user.id, new_hash, cutoff).await?;
        let event = announce(&user);
        self.commit_announcing(tx, Some(event), now).await?;
        Ok(ConsumeOutcome::Done(user))
    }

    /// change-password: sets the hash if it is still `expected_hash` (a concurrent change wins
    /// otherwise), ends every session, voids reset links, records `announce`.
    pub async fn change_password(
        &self,
        user: &User,
        expected_hash: Option<&str>,
        new_hash: &str,
        cutoff: SessionCutoff,
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let current: Option<(Option<String>,)> =
            sqlx::query_as("SELECT hashed_password FROM users WHERE id = $1")
                .bind(user.id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if current.map(|(h,)| h).as_ref().map(|h| h.as_deref()) != Some(expected_hash) {
            return Ok(false);
        }
        set_password_in(&mut tx, &user.id, new_hash, cutoff).await?;
        self.commit_announcing(tx, Some(announce), now).await?;
        Ok(true)
    }

    async fn consume_in(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        digest: &str,
        purpose: TokenPurpose,
        now: UnixMillis,
    ) -> StoreResult<Option<User>> {
        let Some(user_id) = burn(conn, tenant, digest, purpose, now).await? else {
            return Ok(None);
        };
        find_user_in(conn, &self.profile_schema, tenant, &user_id).await
    }
}

/// Marks a live token used, in one statement; its user, or `None` if it was not live.
async fn burn(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    digest: &str,
    purpose: TokenPurpose,
    now: UnixMillis,
) -> StoreResult<Option<UserId>> {
    let used: Option<(String,)> = sqlx::query_as(
        "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND tenant_id = $3 \
         AND purpose = $4 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now)
    .bind(digest)
    .bind(tenant.as_str())
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(used.and_then(|(id,)| UserId::parse(&id)))
}

async fn set_password_in(
    conn: &mut AnyConnection,
    user_id: &UserId,
    new_hash: &str,
    cutoff: SessionCutoff,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET hashed_password = $1 WHERE id = $2")
        .bind(new_hash)
        .bind(user_id.to_string())
        .execute(&mut *conn)
        .await?;
    // A reset link dies when the password changes.
    sqlx::query(
        "DELETE FROM one_time_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id.to_string())
    .bind(TokenPurpose::PasswordReset.as_str())
    .execute(&mut *conn)
    .await?;
    revoke_all_sessions_in(
        conn,
        user_id,
        cutoff.access_window_start,
        cutoff.revoked_until,
    )
    .await
}
