//! Delivers committed outbox events to handlers.
//!
//! Woken right after a local commit (and, on PostgreSQL, by `NOTIFY` from other replicas), it
//! claims a batch of due events, hands each to its tenant's handlers in registration order, and
//! settles it: delivered (secret erased), retried later with exponential backoff for the
//! handlers that failed, or recorded as failed after the last attempt. A slow poll covers
//! retries that come due and claims left behind by a replica that died.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::{EventHandler, HandlerSource};
use crate::domain::UnixMillis;
use crate::flows::Clock;
use crate::store::{Dialect, EventRecord, Store, StoreResult};

#[derive(Clone, Debug)]
pub struct DispatcherSettings {
    /// Names this process in claims, so a claim can be released at shutdown.
    pub replica_id: String,
    pub batch_size: i64,
    /// How long a claim holds before another replica may take the event over.
    pub lease: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Longest sleep while idle.
    pub idle_poll: Duration,
    /// Delivered events are kept this long (for replay from the database), then pruned.
    pub keep_delivered: Duration,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            replica_id: uuid::Uuid::new_v4().to_string(),
            batch_size: 64,
            lease: Duration::from_secs(60),
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            idle_poll: Duration::from_secs(1),
            keep_delivered: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

pub struct Dispatcher {
    store: Store,
    registry: Arc<dyn HandlerSource>,
    settings: DispatcherSettings,
    clock: Clock,
    wake: Arc<Notify>,
}

/// Every ten minutes the dispatcher also prunes rows that can no longer matter.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// A failed event keeps its one-time token for replay this long (the longest token lifetime).
const FAILED_SECRET_RETENTION_MS: i64 = 24 * 3600 * 1000;

impl Dispatcher {
    pub fn new(
        store: Store,
        registry: Arc<dyn HandlerSource>,
        settings: DispatcherSettings,
        clock: Clock,
    ) -> Self {
        let wake = store.events_committed();
        Self {
            store,
            registry,
            settings,
            clock,
            wake,
        }
    }

    /// Runs until `shutdown` turns true; the event being delivered then is finished and the
    /// rest of the batch is released for another replica (or the next start).
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            if self.store.dialect() == Dialect::Postgres {
                self.forward_notifications(shutdown.clone());
            }
            let mut last_prune = tokio::time::Instant::now();
            while !*shutdown.borrow() {
                let delivered = match self.deliver_batch(&shutdown).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "event dispatcher could not reach the database");
                        0
                    }
                };
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = tokio::time::Instant::now();
                    self.prune().await;
                }
                if delivered as i64 >= self.settings.batch_size {
                    continue;
                }
                let nap = self.idle_nap().await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(nap) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if let Err(e) = self.store.release_claims(&self.settings.replica_id).await {
                tracing::warn!(error = %e, "could not release event claims at shutdown");
            }
        })
    }

    /// Claims and settles one batch; returns how many events it handled.
    pub async fn deliver_batch(&self, shutdown: &watch::Receiver<bool>) -> StoreResult<usize> {
        let now = self.clock.now_millis();
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let batch = self
            .store
            .claim_events(
                &self.settings.replica_id,
                self.settings.batch_size,
                now,
                now + lease,
            )
            .await?;
        let mut handled = 0;
        for record in batch {
            if *shutdown.borrow() {
                break;
            }
            self.deliver(record).await?;
            handled += 1;
        }
        Ok(handled)
    }

    async fn deliver(&self, record: EventRecord) -> StoreResult<()> {
        let event = Arc::new(record.event);
        let attempt = record.attempts + 1;
        let handlers: Vec<Arc<dyn EventHandler>> = self
            .registry
            .handlers_for(&event.tenant, event.kind())
            .into_iter()
            .filter(|h| {
                record
                    .pending_handlers
                    .as_ref()
                    .is_none_or(|pending| pending.iter().any(|p| p == h.name()))
            })
            .collect();
        let mut failed = Vec::new();
        let mut last_error = String::new();
        for handler in handlers {
            let name = handler.name().to_owned();
            let started = std::time::Instant::now();
            // A separate task, so a handler that panics cannot take the dispatcher with it.
            let job = {
                let event = event.clone();
                tokio::spawn(async move { handler.handle(&event).await })
            };
            let outcome = match job.await {
                Ok(result) => result.map_err(|e| e.0),
                Err(join) => Err(format!("handler panicked: {join}")),
            };
            if let Err(reason) = outcome {
                tracing::warn!(
                    handler = %name,
                    event = %event.kind(),
                    event_id = %event.id,
                    attempt,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    reason = %reason,
                    "event handler failed"
                );
                last_error = format!("{name}: {reason}");
                failed.push(name);
            }
        }
        let now = self.clock.now_millis();
        if failed.is_empty() {
            return self.store.mark_delivered(&event.id, attempt, now).await;
        }
        let give_up = attempt >= i64::from(self.settings.max_attempts);
        if give_up {
            tracing::error!(
                event = %event.kind(),
                event_id = %event.id,
                handlers = ?failed,
                attempts = attempt,
                "event delivery failed for good; list with `hookauth hooks failures`"
            );
        }
        self.store
            .mark_undelivered(
                &event.id,
                attempt,
                &failed,
                &last_error,
                now + self.backoff_ms(attempt),
                give_up,
            )
            .await
    }

    /// 1 s, 2 s, 4 s, ... capped.
    fn backoff_ms(&self, attempt: i64) -> UnixMillis {
        let initial = self.settings.backoff_initial.as_millis() as i64;
        let max = self.settings.backoff_max.as_millis() as i64;
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        initial.saturating_mul(1 << exponent).min(max)
    }

    async fn idle_nap(&self) -> Duration {
        let poll = self.settings.idle_poll;
        match self.store.next_event_due().await {
            Ok(Some(due)) => {
                let wait = (due - self.clock.now_millis()).max(0) as u64;
                poll.min(Duration::from_millis(wait))
            }
            _ => poll,
        }
    }

    async fn prune(&self) {
        let now = self.clock.now_millis();
        let keep = self.settings.keep_delivered.as_millis() as i64;
        if let Err(e) = self
            .store
            .prune_expired(now, now - keep, now - FAILED_SECRET_RETENTION_MS)
            .await
        {
            tracing::warn!(error = %e, "pruning expired rows failed");
        }
    }

    /// Other replicas' commits arrive as PostgreSQL notifications.
    fn forward_notifications(&self, mut shutdown: watch::Receiver<bool>) {
        let url = self.store.url().to_owned();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                match listen(&url, &wake, &mut shutdown).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox notification listener failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}

async fn listen(
    url: &str,
    wake: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(crate::store::NOTIFY_CHANNEL).await?;
    loop {
        tokio::select! {
            received = listener.recv() => {
                received?;
                wake.notify_one();
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
