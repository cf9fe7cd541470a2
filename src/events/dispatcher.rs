//! Delivers committed events to hooks: many at once, one user's events in order, fair across
//! tenants, with the backlog kept in the database.
//!
//! One loop per replica. Woken by a local commit, by `NOTIFY` from another replica, by a
//! finished delivery or by a timer, it (1) fans committed events out into one delivery per
//! hook, in commit order, (2) claims due deliveries round-robin across tenants into free lanes,
//! each tenant and each hook capped at a share of the lanes, (3) runs each claimed delivery as
//! its own task, and (4) writes outcomes in batches. A failure is a scheduled retry (the lane is
//! free at once); a hook failing persistently trips its circuit and is probed later. Claims are
//! leased and renewed by a heartbeat, so a replica that dies loses them within a lease.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::HandlerSource;
use crate::domain::{TenantId, UnixMillis};
use crate::flows::Clock;
use crate::metrics::{Delivery, Metrics};
use crate::store::{
    AttemptResult, BreakerPolicy, CircuitChange, CircuitChangeKind, ClaimedDelivery, Dialect,
    Outcome, Store, StoreResult,
};

#[derive(Clone, Debug)]
pub struct DispatcherSettings {
    /// Names this process in claims, so a claim can be renewed and released.
    pub replica_id: String,
    /// Events fanned out per transaction.
    pub batch_size: i64,
    /// How long a claim holds without a heartbeat before another replica may take it over.
    pub lease: Duration,
    /// Longest sleep while idle.
    pub poll: Duration,
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Deliveries in flight at once, and the most one tenant / one hook may hold.
    pub concurrency: usize,
    pub tenant_concurrency: usize,
    pub hook_concurrency: usize,
    pub breaker: BreakerPolicy,
    /// Delivered events are kept this long (for replay from the database), then pruned.
    pub keep_delivered: Duration,
    /// At shutdown, deliveries in flight get this long to finish before their claims are
    /// released for another replica (or the next start).
    pub shutdown_grace: Duration,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            // The process id tells an operator (and a test) which process holds a claim.
            replica_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            batch_size: 64,
            lease: Duration::from_secs(8),
            poll: Duration::from_secs(1),
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            concurrency: 128,
            tenant_concurrency: 96,
            hook_concurrency: 64,
            breaker: BreakerPolicy {
                failures: 5,
                pause_initial_ms: 5_000,
                pause_max_ms: BREAKER_PAUSE_MAX_MS,
            },
            keep_delivered: Duration::from_secs(7 * 24 * 3600),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// An open circuit is probed at least every ten minutes.
pub const BREAKER_PAUSE_MAX_MS: i64 = 600_000;
/// Every ten minutes the dispatcher also prunes rows that can no longer matter.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// A failed event keeps its one-time token for replay this long (the longest token lifetime).
const FAILED_SECRET_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// Fan-out batches per loop turn, so a huge backlog of new events cannot starve claiming.
const FANOUT_ROUNDS: usize = 4;

pub struct Dispatcher {
    store: Store,
    registry: Arc<dyn HandlerSource>,
    settings: DispatcherSettings,
    clock: Clock,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

/// What holds a lane, for the per-tenant and per-hook caps.
struct Lanes {
    total: usize,
    by_tenant: HashMap<String, usize>,
    by_hook: HashMap<(String, String), usize>,
    running: HashMap<i64, (String, String)>,
}

impl Lanes {
    fn take(&mut self, id: i64, tenant: &str, hook: &str) {
        self.total += 1;
        *self.by_tenant.entry(tenant.to_owned()).or_default() += 1;
        *self
            .by_hook
            .entry((tenant.to_owned(), hook.to_owned()))
            .or_default() += 1;
        self.running
            .insert(id, (tenant.to_owned(), hook.to_owned()));
    }

    fn give_back(&mut self, id: i64) {
        let Some((tenant, hook)) = self.running.remove(&id) else {
            return;
        };
        self.total -= 1;
        if let Some(n) = self.by_tenant.get_mut(&tenant) {
            *n -= 1;
            if *n == 0 {
                self.by_tenant.remove(&tenant);
            }
        }
        let key = (tenant, hook);
        if let Some(n) = self.by_hook.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.by_hook.remove(&key);
            }
        }
    }
}

impl Dispatcher {
    pub fn new(
        store: Store,
        registry: Arc<dyn HandlerSource>,
        settings: DispatcherSettings,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        let wake = store.events_committed();
        Self {
            store,
            registry,
            settings,
            clock,
            wake,
            metrics,
        }
    }

    /// Runs until `shutdown` turns true; deliveries in flight then get the grace period, and
    /// the claims of any still running are released.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.store.dialect() == Dialect::Postgres {
            self.forward_notifications(shutdown.clone());
        } else {
            // One process per SQLite file: any claim in it belongs to a process that is gone.
            match self.store.recover_stale_claims().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    deliveries = n,
                    "took back deliveries claimed by a process that stopped without releasing them"
                ),
                Err(e) => tracing::error!(error = %e, "could not recover stale claims"),
            }
        }
        let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let heartbeat = self.spawn_heartbeat(running.clone(), shutdown.clone());
        let mut lanes = Lanes {
            total: 0,
            by_tenant: HashMap::new(),
            by_hook: HashMap::new(),
            running: HashMap::new(),
        };
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut next_tenant = 0usize;
        let mut last_prune = tokio::time::Instant::now();
        while !*shutdown.borrow() {
            let busy = match self
                .turn(&mut lanes, &mut tasks, &running, &mut next_tenant)
                .await
            {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::error!(error = %e, "event dispatcher could not reach the database");
                    true
                }
            };
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                self.prune().await;
            }
            let nap = if busy {
                self.settings.poll
            } else {
                self.idle_nap().await
            };
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let mut outcomes = vec![done.expect("delivery tasks catch their panics")];
                    // Whatever else finished meanwhile goes into the same transaction.
                    while let Some(more) = tasks.try_join_next() {
                        outcomes.push(more.expect("delivery tasks catch their panics"));
                    }
                    self.settle(&mut lanes, &running, outcomes).await;
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.drain(&mut lanes, &mut tasks, &running).await;
        heartbeat.abort();
    }

    /// One turn: fan out, then claim into free lanes. Returns whether lanes or caps limited
    /// the claim (so finished deliveries, not a timer, should trigger the next turn).
    async fn turn(
        &self,
        lanes: &mut Lanes,
        tasks: &mut JoinSet<Outcome>,
        running: &Arc<Mutex<HashSet<i64>>>,
        next_tenant: &mut usize,
    ) -> StoreResult<bool> {
        let registry = self.registry.clone();
        let hooks_for = move |tenant: &TenantId, kind| {
            registry
                .handlers_for(tenant, kind)
                .iter()
                .map(|h| h.name().to_owned())
                .collect::<Vec<_>>()
        };
        for _ in 0..FANOUT_ROUNDS {
            let fanned = self
                .store
                .fan_out(
                    &hooks_for,
                    self.settings.batch_size,
                    self.clock.now_millis(),
                )
                .await?;
            if (fanned as i64) < self.settings.batch_size {
                break;
            }
        }
        let s = &self.settings;
        let now = self.clock.now_millis();
        let lease_until = now + millis(s.lease);
        let free = s.concurrency.saturating_sub(lanes.total);
        if free == 0 {
            return Ok(true);
        }
        let probes = self
            .store
            .claim_probes(&s.replica_id, free, now, lease_until)
            .await?;
        for claimed in probes {
            self.start(lanes, tasks, running, claimed);
        }
        let mut tenants = self.store.tenants_with_deliveries().await?;
        if tenants.is_empty() {
            return Ok(false);
        }
        // Round-robin: each turn starts one tenant further on.
        let start = *next_tenant % tenants.len();
        tenants.rotate_left(start);
        *next_tenant = next_tenant.wrapping_add(1);
        let mut limited = false;
        let mut exhausted = HashSet::new();
        // A few passes: the first splits the free lanes evenly, later ones hand what tenants
        // with little work left over to those with more.
        for _ in 0..3 {
            let mut progress = false;
            let active: Vec<&String> = tenants.iter().filter(|t| !exhausted.contains(*t)).collect();
            if active.is_empty() {
                break;
            }
            let free_now = s.concurrency.saturating_sub(lanes.total);
            let share = free_now.div_ceil(active.len()).max(1);
            for tenant in active {
                let free = s.concurrency.saturating_sub(lanes.total);
                if free == 0 {
                    return Ok(true);
                }
                let held = lanes.by_tenant.get(tenant).copied().unwrap_or(0);
                let room = s.tenant_concurrency.saturating_sub(held);
                if room == 0 {
                    limited = true;
                    exhausted.insert(tenant.clone());
                    continue;
                }
                let want = share.min(room).min(free);
                let mut picked: HashMap<String, usize> = HashMap::new();
                let mut capped = false;
                let mut hook_room = |hook: &str| {
                    let held = lanes
                        .by_hook
                        .get(&(tenant.clone(), hook.to_owned()))
                        .copied()
                        .unwrap_or(0);
                    let n = picked.entry(hook.to_owned()).or_default();
                    if held + *n < s.hook_concurrency {
                        *n += 1;
                        true
                    } else {
                        capped = true;
                        false
                    }
                };
                let claimed = self
                    .store
                    .claim_deliveries(
                        &s.replica_id,
                        tenant,
                        want,
                        &mut hook_room,
                        now,
                        lease_until,
                    )
                    .await?;
                limited |= capped;
                if claimed.len() < want {
                    exhausted.insert(tenant.clone());
                }
                progress |= !claimed.is_empty();
                for c in claimed {
                    self.start(lanes, tasks, running, c);
                }
            }
            if !progress {
                break;
            }
        }
        Ok(limited || lanes.total >= s.concurrency)
    }

    /// Runs one claimed delivery as its own task, holding a lane until it is settled.
    fn start(
        &self,
        lanes: &mut Lanes,
        tasks: &mut JoinSet<Outcome>,
        running: &Arc<Mutex<HashSet<i64>>>,
        claimed: ClaimedDelivery,
    ) {
        lanes.take(claimed.id, claimed.event.tenant.as_str(), &claimed.hook);
        running.lock().expect("lock").insert(claimed.id);
        let registry = self.registry.clone();
        let clock = self.clock.clone();
        let policy = RetryPolicy::of(&self.settings);
        let metrics = Arc::clone(&self.metrics);
        tasks.spawn(async move {
            let event = Arc::new(claimed.event);
            let attempt = claimed.attempts + 1;
            // Looked up by name now, not at fan-out: a replaced hook's new version handles it.
            let handler = registry
                .handlers_for(&event.tenant, event.kind())
                .into_iter()
                .find(|h| h.name() == claimed.hook);
            let started = std::time::Instant::now();
            let result = match handler {
                None => {
                    let error = format!(
                        "hook {} is no longer deployed for tenant {} (or no longer handles {})",
                        claimed.hook,
                        event.tenant,
                        event.kind()
                    );
                    tracing::error!(
                        hook = %claimed.hook, tenant = %event.tenant, event = %event.kind(),
                        event_id = %event.id, "{error}; recorded as failed, replayable"
                    );
                    AttemptResult::Unroutable { error }
                }
                Some(handler) => {
                    // A separate task, so a handler that panics takes only itself down.
                    let job = {
                        let event = event.clone();
                        tokio::spawn(async move { handler.handle(&event).await })
                    };
                    let outcome = match job.await {
                        Ok(result) => result.map_err(|e| e.0),
                        Err(join) => Err(format!("handler panicked: {join}")),
                    };
                    match outcome {
                        Ok(()) => AttemptResult::Delivered,
                        Err(error) => {
                            let give_up = attempt >= policy.max_attempts;
                            tracing::warn!(
                                hook = %claimed.hook, tenant = %event.tenant,
                                event = %event.kind(), event_id = %event.id, attempt,
                                elapsed_ms = started.elapsed().as_millis() as u64,
                                reason = %error, "event handler failed"
                            );
                            if give_up {
                                tracing::error!(
                                    hook = %claimed.hook, tenant = %event.tenant,
                                    event = %event.kind(), event_id = %event.id,
                                    attempts = attempt,
                                    "event delivery failed for good; list with \
                                     `hookauth hooks failures`"
                                );
                                AttemptResult::GaveUp { error }
                            } else {
                                let at = clock.now_millis() + policy.backoff_ms(attempt);
                                AttemptResult::Retry { at, error }
                            }
                        }
                    }
                }
            };
            let counted = match &result {
                AttemptResult::Delivered => Delivery::Delivered,
                AttemptResult::Retry { .. } => Delivery::Retry,
                AttemptResult::GaveUp { .. } | AttemptResult::Unroutable { .. } => Delivery::GaveUp,
            };
            metrics.record_delivery(
                event.tenant.as_str(),
                &claimed.hook,
                event.kind().as_str(),
                counted,
            );
            Outcome {
                delivery: claimed.id,
                event_seq: event.seq,
                event_id: event.id.clone(),
                tenant: event.tenant.clone(),
                hook: claimed.hook,
                attempt,
                result,
            }
        });
    }

    /// Writes outcomes, retrying the transaction (a deadlock between replicas or a dropped
    /// connection must not lose them), then frees their lanes.
    async fn settle(
        &self,
        lanes: &mut Lanes,
        running: &Arc<Mutex<HashSet<i64>>>,
        outcomes: Vec<Outcome>,
    ) {
        let mut wait = Duration::from_millis(20);
        // Past the lease another replica (or the next start) redelivers these anyway: at least
        // once, never lost, and a dead database cannot hang the dispatcher forever.
        let give_up = tokio::time::Instant::now() + self.settings.lease;
        loop {
            match self
                .store
                .settle_deliveries(
                    &self.settings.replica_id,
                    &outcomes,
                    self.settings.breaker,
                    self.clock.now_millis(),
                )
                .await
            {
                Ok(changes) => {
                    changes.iter().for_each(log_circuit);
                    break;
                }
                Err(e) if tokio::time::Instant::now() < give_up => {
                    tracing::warn!(error = %e, outcomes = outcomes.len(), "could not record delivery outcomes; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.settings.lease / 4);
                }
                Err(e) => {
                    tracing::error!(error = %e, outcomes = outcomes.len(), "gave up recording delivery outcomes; their claims will expire and they will be delivered again");
                    break;
                }
            }
        }
        let mut held = running.lock().expect("lock");
        for o in &outcomes {
            held.remove(&o.delivery);
            lanes.give_back(o.delivery);
        }
    }

    /// Shutdown: lets deliveries in flight finish within the grace period, records them, and
    /// releases the claims of the rest.
    async fn drain(
        &self,
        lanes: &mut Lanes,
        tasks: &mut JoinSet<Outcome>,
        running: &Arc<Mutex<HashSet<i64>>>,
    ) {
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_grace;
        let mut outcomes = Vec::new();
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(Ok(outcome))) => outcomes.push(outcome),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        tasks.abort_all();
        if !outcomes.is_empty() {
            self.settle(lanes, running, outcomes).await;
        }
        if let Err(e) = self.store.release_claims(&self.settings.replica_id).await {
            tracing::warn!(error = %e, "could not release delivery claims at shutdown");
        }
    }

    /// Renews the leases of the deliveries in flight every third of a lease, so a long hook
    /// keeps its claim and a dead replica's claims expire within one lease.
    fn spawn_heartbeat(
        &self,
        running: Arc<Mutex<HashSet<i64>>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let replica = self.settings.replica_id.clone();
        let lease = self.settings.lease;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(lease / 3) => {}
                    _ = shutdown.changed() => {}
                }
                let mut ids: Vec<i64> = running.lock().expect("lock").iter().copied().collect();
                if ids.is_empty() {
                    continue;
                }
                // One lock order for every writer of these rows.
                ids.sort_unstable();
                let until = clock.now_millis() + millis(lease);
                if let Err(e) = store.renew_claims(&replica, &ids, until).await {
                    tracing::warn!(error = %e, "could not renew delivery claims");
                }
            }
        })
    }

    async fn idle_nap(&self) -> Duration {
        let poll = self.settings.poll;
        match self.store.next_delivery_due().await {
            Ok(Some(due)) => {
                let wait = due - self.clock.now_millis();
                // Due now but not claimed: it waits behind an earlier delivery or a circuit,
                // and a finished delivery (not a timer) will free it.
                if wait <= 0 {
                    poll
                } else {
                    poll.min(Duration::from_millis(wait as u64))
                }
            }
            _ => poll,
        }
    }

    async fn prune(&self) {
        let now = self.clock.now_millis();
        let keep = millis(self.settings.keep_delivered);
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

#[derive(Clone, Copy)]
struct RetryPolicy {
    max_attempts: i64,
    initial_ms: i64,
    max_ms: i64,
}

impl RetryPolicy {
    fn of(s: &DispatcherSettings) -> Self {
        Self {
            max_attempts: i64::from(s.max_attempts.max(1)),
            initial_ms: millis(s.backoff_initial),
            max_ms: millis(s.backoff_max),
        }
    }

    /// initial × 2^(attempt-1), capped, then a random point in its upper half, so the retries
    /// of events that failed together (an outage) do not all come back at once.
    fn backoff_ms(&self, attempt: i64) -> UnixMillis {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let full = self
            .initial_ms
            .saturating_mul(1 << exponent)
            .min(self.max_ms);
        let half = full / 2;
        half + rand::thread_rng().gen_range(0..=half.max(0))
    }
}

fn log_circuit(change: &CircuitChange) {
    let CircuitChange {
        tenant,
        hook,
        event_id,
        reason,
        kind,
    } = change;
    match kind {
        CircuitChangeKind::Opened { pause_ms } => tracing::error!(
            %hook, %tenant, %event_id, %reason, pause_ms,
            "hook circuit opened: its deliveries wait, one probe after the pause \
             (`hookauth hooks failures`)"
        ),
        CircuitChangeKind::ProbeFailed { pause_ms } => tracing::warn!(
            %hook, %tenant, %event_id, %reason, pause_ms,
            "hook circuit probe failed; staying open"
        ),
        CircuitChangeKind::Closed => tracing::info!(
            %hook, %tenant, %event_id, "hook circuit closed: the hook succeeded again"
        ),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stays_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_ms: 1_000,
            max_ms: 8_000,
        };
        for _ in 0..100 {
            let first = policy.backoff_ms(1);
            assert!((500..=1_000).contains(&first), "{first}");
            let third = policy.backoff_ms(3);
            assert!((2_000..=4_000).contains(&third), "{third}");
            let late = policy.backoff_ms(40);
            assert!((4_000..=8_000).contains(&late), "{late}");
        }
    }
}
