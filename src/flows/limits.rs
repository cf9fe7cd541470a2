//! Request rate limits shared by every replica: on PostgreSQL the HTTP layer counts requests
//! here, in the database, so N replicas behind a load balancer allow what one would, not N
//! times as much. (SQLite is one process: it counts in memory.)

use std::time::Duration;

use super::{FlowError, Flows};

/// Whether the store shares rate limits between replicas.
pub fn shares_rate_limits(flows: &Flows) -> bool {
    flows.store.shares_rate_limits()
}

/// Counts one request against `key`, unless `limit` were counted within `window`: then nothing
/// is counted and the answer is how long until a place frees up.
pub async fn count_request(
    flows: &Flows,
    key: &str,
    limit: u32,
    window: Duration,
) -> Result<Option<Duration>, FlowError> {
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let wait = flows
        .store
        .count_rate_limited(key, limit, window_ms, flows.clock.now_millis())
        .await?;
    Ok(wait.map(|ms| Duration::from_millis(ms.max(0) as u64)))
}
