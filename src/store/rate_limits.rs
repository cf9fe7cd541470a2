//! Rate-limit windows shared by every replica (PostgreSQL): a sliding window per key, exact
//! across replicas because each check holds a transaction-scoped lock on its key. The check is
//! one call of the function `hookauth_count_rate_limited` (migration 0007): one round trip,
//! where the same steps as separate statements took four plus the transaction's two.

use super::{Dialect, Store, StoreResult};
use crate::domain::UnixMillis;

impl Store {
    /// Whether the database can share rate limits between replicas (PostgreSQL).
    pub fn shares_rate_limits(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Counts one request against `key`'s window, unless `limit` requests were counted in the
    /// last `window_ms`: then nothing is counted and the answer is how long until the oldest
    /// of them leaves the window (milliseconds). PostgreSQL only.
    pub async fn count_rate_limited(
        &self,
        key: &str,
        limit: u32,
        window_ms: i64,
        now: UnixMillis,
    ) -> StoreResult<Option<i64>> {
        let (wait,): (i64,) = sqlx::query_as("SELECT hookauth_count_rate_limited($1, $2, $3, $4)")
            .bind(key)
            .bind(i64::from(limit))
            .bind(window_ms)
            .bind(now)
            .fetch_one(&self.writer)
            .await?;
        Ok((wait >= 0).then_some(wait))
    }
}
