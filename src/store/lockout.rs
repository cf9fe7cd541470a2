//! Failed-login counters per (tenant, normalised email), shared by every replica.

use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    pub max_attempts: u32,
    /// Failures count within this window, and a lock lasts this long.
    pub duration_ms: i64,
}

impl Store {
    pub async fn is_locked_out(
        &self,
        tenant: &TenantId,
        email: &str,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT locked_until FROM login_failures WHERE tenant_id = $1 AND email = $2",
        )
        .bind(tenant.as_str())
        .bind(email)
        .fetch_optional(&self.reader)
        .await?;
        Ok(matches!(row, Some((Some(until),)) if until > now))
    }

    /// Counts a failure; the `max_attempts`-th within the window locks the account.
    pub async fn record_login_failure(
        &self,
        tenant: &TenantId,
        email: &str,
        policy: LockoutPolicy,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let window_start = now - policy.duration_ms;
        // One statement, so concurrent failures on several replicas all count.
        sqlx::query(
            "INSERT INTO login_failures (tenant_id, email, failures, first_failure_at, locked_until) \
             VALUES ($1, $2, 1, $3, CASE WHEN $4 <= 1 THEN $5 ELSE NULL END) \
             ON CONFLICT (tenant_id, email) DO UPDATE SET \
               failures = CASE WHEN login_failures.first_failure_at < $6 THEN 1 \
                               ELSE login_failures.failures + 1 END, \
               first_failure_at = CASE WHEN login_failures.first_failure_at < $6 THEN $3 \
                                       ELSE login_failures.first_failure_at END, \
               locked_until = CASE \
                 WHEN login_failures.first_failure_at >= $6 AND login_failures.failures + 1 >= $4 \
                 THEN $5 ELSE login_failures.locked_until END",
        )
        .bind(tenant.as_str())
        .bind(email)
        .bind(now)
        .bind(i64::from(policy.max_attempts))
        .bind(now + policy.duration_ms)
        .bind(window_start)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
