//! How many verification and reset emails each account was sent in the current window, in the
//! database so that every replica counts against the same limit.

use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis, UserId};

#[derive(Clone, Copy, Debug)]
pub struct EmailLimit {
    pub max_sends: u32,
    pub window_ms: i64,
}

impl Store {
    /// Takes one send from the account's allowance for `purpose` ("verify_email",
    /// "password_reset"); `false` (and nothing changed) when the window's allowance is spent.
    pub async fn reserve_email_send(
        &self,
        tenant: &TenantId,
        user: &UserId,
        purpose: &str,
        limit: EmailLimit,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        // One statement, so concurrent requests on any replica are counted one by one.
        let reserved: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO email_sends (tenant_id, user_id, purpose, sent, window_start) \
             VALUES ($1, $2, $3, 1, $4) \
             ON CONFLICT (tenant_id, user_id, purpose) DO UPDATE SET \
               sent = CASE WHEN email_sends.window_start <= $5 THEN 1 \
                           ELSE email_sends.sent + 1 END, \
               window_start = CASE WHEN email_sends.window_start <= $5 THEN $4 \
                                   ELSE email_sends.window_start END \
             WHERE email_sends.window_start <= $5 OR email_sends.sent < $6 \
             RETURNING sent",
        )
        .bind(tenant.as_str())
        .bind(user.to_string())
        .bind(purpose)
        .bind(now)
        .bind(now - limit.window_ms)
        .bind(i64::from(limit.max_sends))
        .fetch_optional(&self.writer)
        .await?;
        Ok(reserved.is_some())
    }
}
