//! TOTP credentials and recovery codes (one factor per user). The secret arrives sealed: the
//! flows seal and open it, the store only keeps bytes.

use sqlx::Row;

use super::{Announce, Store, StoreResult};
use crate::domain::{TenantId, UnixMillis, UserId};

/// A user's stored factor.
#[derive(Clone)]
pub struct MfaCredential {
    pub sealed_secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: i64,
    pub recovery_codes_left: u32,
}

impl std::fmt::Debug for MfaCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaCredential")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .field("recovery_codes_left", &self.recovery_codes_left)
            .finish_non_exhaustive()
    }
}

/// What an enrolment or a confirmation found.
#[derive(Debug, PartialEq, Eq)]
pub enum MfaChange {
    Done,
    /// The factor is already on (enrol, confirm), or there is no enrolment to confirm.
    AlreadyEnabled,
    NotEnrolled,
}

impl Store {
    pub async fn mfa_credential(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> StoreResult<Option<MfaCredential>> {
        let row = sqlx::query(
            "SELECT m.sealed, m.confirmed_at, m.last_step, \
             (SELECT COUNT(*) FROM mfa_recovery_codes c WHERE c.user_id = m.user_id) \
             FROM mfa_credentials m WHERE m.tenant_id = $1 AND m.user_id = $2",
        )
        .bind(tenant.as_str())
        .bind(user.to_string())
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let confirmed_at: Option<i64> = row.try_get(1)?;
        let left: i64 = row.try_get(3)?;
        Ok(Some(MfaCredential {
            sealed_secret: row.try_get(0)?,
            confirmed: confirmed_at.is_some(),
            last_step: row.try_get(2)?,
            recovery_codes_left: u32::try_from(left).unwrap_or(0),
        }))
    }

    /// Stores a new, unconfirmed secret, replacing an unconfirmed one (an abandoned enrolment
    /// can simply be restarted). A confirmed factor is never replaced: one statement decides,
    /// so two enrolments at once cannot both overwrite a live factor.
    pub async fn begin_mfa_enrolment(
        &self,
        tenant: &TenantId,
        user: &UserId,
        sealed_secret: Vec<u8>,
        now: UnixMillis,
    ) -> StoreResult<MfaChange> {
        let result = sqlx::query(
            "INSERT INTO mfa_credentials (user_id, tenant_id, sealed, confirmed_at, last_step, \
             created_at) VALUES ($1, $2, $3, NULL, 0, $4) \
             ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, last_step = 0, \
             created_at = excluded.created_at WHERE mfa_credentials.confirmed_at IS NULL",
        )
        .bind(user.to_string())
        .bind(tenant.as_str())
        .bind(sealed_secret)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(if result.rows_affected() == 1 {
            MfaChange::Done
        } else {
            MfaChange::AlreadyEnabled
        })
    }

    /// Turns an enrolment live with the step of its first code and the recovery codes'
    /// digests, and records the event, in one transaction.
    pub async fn confirm_mfa(
        &self,
        tenant: &TenantId,
        user: &UserId,
        step: i64,
        recovery_digests: &[String],
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<MfaChange> {
        let mut tx = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE mfa_credentials SET confirmed_at = $1, last_step = $2 \
             WHERE tenant_id = $3 AND user_id = $4 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(tenant.as_str())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let exists: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT confirmed_at FROM mfa_credentials WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_str())
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(match exists {
                Some((Some(_),)) => MfaChange::AlreadyEnabled,
                _ => MfaChange::NotEnrolled,
            });
        }
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        for digest in recovery_digests {
            sqlx::query("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user.to_string())
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        }
        self.commit_announcing(tx, Some(announce), now).await?;
        Ok(MfaChange::Done)
    }

    /// Records `step` as used; `false` when a step at or after it was already accepted (a
    /// replayed code, or the same code in two requests at once: only one UPDATE matches).
    pub async fn advance_mfa_step(
        &self,
        tenant: &TenantId,
        user: &UserId,
        step: i64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE mfa_credentials SET last_step = $1 WHERE tenant_id = $2 AND user_id = $3 \
             AND confirmed_at IS NOT NULL AND last_step < $1",
        )
        .bind(step)
        .bind(tenant.as_str())
        .bind(user.to_string())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Uses up a recovery code; `false` when the user has no such (unused) code.
    pub async fn consume_recovery_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        digest: &str,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2 \
             AND EXISTS (SELECT 1 FROM mfa_credentials m WHERE m.user_id = $1 \
             AND m.tenant_id = $3 AND m.confirmed_at IS NOT NULL)",
        )
        .bind(user.to_string())
        .bind(digest)
        .bind(tenant.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes the factor and its recovery codes; the event only when a live factor was
    /// removed. Answers whether one was.
    pub async fn disable_mfa(
        &self,
        tenant: &TenantId,
        user: &UserId,
        announce: Announce<'_>,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let removed: Option<(Option<i64>,)> = sqlx::query_as(
            "DELETE FROM mfa_credentials WHERE tenant_id = $1 AND user_id = $2 \
             RETURNING confirmed_at",
        )
        .bind(tenant.as_str())
        .bind(user.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        let was_live = matches!(removed, Some((Some(_),)));
        if was_live {
            self.commit_announcing(tx, Some(announce), now).await?;
        } else {
            tx.commit().await?;
        }
        Ok(was_live)
    }
}
