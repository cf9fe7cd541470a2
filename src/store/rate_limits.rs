//! Rate-limit windows shared by every replica (PostgreSQL): a sliding window per key, exact
//! across replicas because each check holds a transaction-scoped lock on its key.

use super::{Dialect, Store, StoreResult};
use crate::domain::UnixMillis;

/// Namespace of the advisory locks taken here (the outbox's lock is one 64-bit key; these
/// are (class, key) pairs, so the two never meet).
const LOCK_CLASS: i32 = 0x726c; // "rl"

impl Store {
    /// Whether the database can share rate limits between replicas (PostgreSQL).
    pub fn shares_rate_limits(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Counts one request against `key`'s window, unless `limit` requests were counted in the
    /// last `window_ms`: then nothing is counted and the answer is how long until the oldest
    /// of them leaves the window (milliseconds).
    pub async fn count_rate_limited(
        &self,
        key: &str,
        limit: u32,
        window_ms: i64,
        now: UnixMillis,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("SELECT COUNT(*) FROM pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM rate_limit_hits WHERE key = $1 AND at <= $2")
            .bind(key)
            .bind(now - window_ms)
            .execute(&mut *tx)
            .await?;
        let (count, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(at) FROM rate_limit_hits WHERE key = $1")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if count >= i64::from(limit) {
            tx.commit().await?;
            let wait = oldest.map_or(window_ms, |at| (at + window_ms - now).max(0));
            return Ok(Some(wait));
        }
        sqlx::query("INSERT INTO rate_limit_hits (key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(None)
    }
}
