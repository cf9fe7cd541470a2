//! Password attempts per (tenant, normalised email), shared by every replica.
//!
//! `failures` counts the attempts *reserved* in the current window: in flight or failed. An
//! attempt is reserved in one statement before the password is verified, so however many
//! guesses arrive at once, at most `max_attempts` of them are ever checked against the hash.
//! A success deletes the row; a failure leaves its reservation counted and, once the count
//! reaches `max_attempts`, sets the lock. Attempts refused during a lock change nothing, so
//! they never extend it.

use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    pub max_attempts: u32,
    /// Failures count within this window, and a lock lasts this long.
    pub duration_ms: i64,
}

impl Store {
    /// Reserves one password attempt; `false` when the account is locked or `max_attempts`
    /// attempts are already in flight or failed within the window (then nothing is changed).
    pub async fn reserve_login_attempt(
        &self,
        tenant: &TenantId,
        email: &str,
        policy: LockoutPolicy,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        // A row starts afresh when its window has passed or its lock has expired.
        const STALE: &str = "(login_failures.first_failure_at <= $4 \
             OR (login_failures.locked_until IS NOT NULL AND login_failures.locked_until <= $3))";
        let sql = format!(
            "INSERT INTO login_failures (tenant_id, email, failures, first_failure_at, locked_until) \
             VALUES ($1, $2, 1, $3, NULL) \
             ON CONFLICT (tenant_id, email) DO UPDATE SET \
               failures = CASE WHEN {STALE} THEN 1 ELSE login_failures.failures + 1 END, \
               first_failure_at = CASE WHEN {STALE} THEN $3 \
                                       ELSE login_failures.first_failure_at END, \
               locked_until = CASE WHEN {STALE} THEN NULL ELSE login_failures.locked_until END \
             WHERE {STALE} OR (login_failures.failures < $5 AND login_failures.locked_until IS NULL) \
             RETURNING failures"
        );
        // One statement: PostgreSQL re-checks the WHERE against the row it locked, SQLite has
        // one writer, so concurrent reservations on any replica are counted one by one.
        let reserved: Option<(i64,)> = sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(email)
            .bind(now)
            .bind(now - policy.duration_ms)
            .bind(i64::from(policy.max_attempts))
            .fetch_optional(&self.writer)
            .await?;
        Ok(reserved.is_some())
    }

    /// A reserved attempt failed: it stays counted, and the `max_attempts`-th locks the
    /// account for `duration_ms` from now. An existing lock is never moved. Answers whether
    /// this failure locked the account.
    pub async fn record_login_failure(
        &self,
        tenant: &TenantId,
        email: &str,
        policy: LockoutPolicy,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        // The insert only happens when a success cleared the row while this attempt was in
        // flight; the failure still counts.
        let locked_until = now + policy.duration_ms;
        let row: (Option<i64>,) = sqlx::query_as(
            "INSERT INTO login_failures (tenant_id, email, failures, first_failure_at, locked_until) \
             VALUES ($1, $2, 1, $3, CASE WHEN $4 <= 1 THEN $5 ELSE NULL END) \
             ON CONFLICT (tenant_id, email) DO UPDATE SET \
               locked_until = CASE \
                 WHEN login_failures.failures >= $4 AND login_failures.locked_until IS NULL \
                 THEN $5 ELSE login_failures.locked_until END \
             RETURNING locked_until",
        )
        .bind(tenant.as_str())
        .bind(email)
        .bind(now)
        .bind(i64::from(policy.max_attempts))
        .bind(locked_until)
        .fetch_one(&self.writer)
        .await?;
        // Only this statement writes `now + duration`: an older lock has an older end.
        Ok(row.0 == Some(locked_until))
    }

    /// The password was proven (a correct password, or a reset through the mailbox): the
    /// count and any lock are gone.
    pub async fn clear_login_failures(&self, tenant: &TenantId, email: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND email = $2")
            .bind(tenant.as_str())
            .bind(email)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The attempts counted for an email now and whether it is locked (operators, tests).
    pub async fn login_attempts(
        &self,
        tenant: &TenantId,
        email: &str,
        now: UnixMillis,
    ) -> StoreResult<(u32, bool)> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT failures, locked_until FROM login_failures WHERE tenant_id = $1 AND email = $2",
        )
        .bind(tenant.as_str())
        .bind(email)
        .fetch_optional(&self.writer)
        .await?;
        Ok(match row {
            Some((failures, locked_until)) => (
                u32::try_from(failures).unwrap_or(u32::MAX),
                locked_until.is_some_and(|until| until > now),
            ),
            None => (0, false),
        })
    }
}
