//! Deliveries: one row per (event, hook), claimed with a renewable lease, settled in batches.
//!
//! Committed events are fanned out once, in commit order, into deliveries for the hooks present
//! at that moment. A delivery is claimable when it is due, unclaimed (or its lease ran out), its
//! hook's circuit is closed, and it is the oldest unfinished delivery of its
//! (tenant, hook, subject): that one rule keeps a user's events in commit order for each hook
//! while everything else runs in parallel, on one replica or many.

use sqlx::AnyConnection;

use super::circuits::{BreakerPolicy, CircuitChange, update_circuit};
use super::outbox::{EVENT_COLUMNS, EventRow, NOTIFY_STATEMENT};
use super::{Dialect, Store, StoreResult};
use crate::domain::{Event, EventKind, TenantId, UnixMillis};

/// Held (per transaction) by the one PostgreSQL replica fanning out; the others skip fan-out
/// rather than wait, since the holder will fan out their events too.
const FANOUT_LOCK: i64 = 0x686f_6f6b_6661_6e6f; // "hookfano"

/// Rows per multi-row INSERT: well under both databases' bind-parameter limits.
const INSERT_CHUNK: usize = 500;

/// The ordering and circuit rules every claim applies, on deliveries aliased `d`.
const CLAIMABLE: &str = "d.status = 'pending' AND d.next_attempt_at <= $1 \
     AND (d.claim_until IS NULL OR d.claim_until < $1) \
     AND (d.subject IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o \
          WHERE o.tenant_id = d.tenant_id AND o.hook = d.hook AND o.subject = d.subject \
          AND o.status = 'pending' AND o.id < d.id))";

/// A delivery this replica holds and must settle.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub hook: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Claimed as the one probe of an open circuit.
    pub probe: bool,
    pub event: Event,
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    Delivered,
    /// Failed; try again at this time.
    Retry {
        at: UnixMillis,
        error: String,
    },
    /// Failed for good: attempts exhausted.
    GaveUp {
        error: String,
    },
    /// Never attempted: the hook is gone. Recorded as failed (replayable), not counted
    /// against the hook's circuit.
    Unroutable {
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery: i64,
    pub event_seq: i64,
    pub event_id: String,
    pub tenant: TenantId,
    pub hook: String,
    /// The attempt number just made (1-based).
    pub attempt: i64,
    pub result: AttemptResult,
}

/// One delivery row as stored.
#[derive(Debug, Clone)]
pub struct DeliveryState {
    pub id: i64,
    pub event_id: String,
    pub tenant_id: String,
    pub hook: String,
    pub subject: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub claimed_by: Option<String>,
    pub claim_until: Option<i64>,
    pub last_error: Option<String>,
}
any_row!(DeliveryState {
    id,
    event_id,
    tenant_id,
    hook,
    subject,
    status,
    attempts,
    claimed_by,
    claim_until,
    last_error
});

impl Store {
    /// Fans out up to `limit` committed events, oldest first, into one delivery per hook
    /// `hooks_for` names. An email event nobody handles is kept as `no_handler` (with its
    /// token) for an operator; any other event without hooks is done. Returns how many events
    /// were fanned out (0 also when another replica holds the fan-out lock).
    pub async fn fan_out(
        &self,
        hooks_for: &(dyn Fn(&TenantId, EventKind) -> Vec<String> + Sync),
        limit: i64,
        now: UnixMillis,
    ) -> StoreResult<usize> {
        // Checked on the reader first: most turns find nothing to fan out, and on SQLite the
        // writer connection is what the flows' commits queue for. (`fanned_at IS NULL` implies
        // status `pending`, and matches the partial index `events_unfanned`.)
        let waiting: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM events WHERE fanned_at IS NULL LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut tx = self.writer.begin().await?;
        if self.dialect == Dialect::Postgres {
            let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
                .bind(FANOUT_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !locked {
                return Ok(0);
            }
        }
        struct Row {
            seq: i64,
            id: String,
            tenant_id: String,
            kind: String,
            subject: Option<String>,
            pending_handlers: Option<String>,
        }
        any_row!(Row {
            seq,
            id,
            tenant_id,
            kind,
            subject,
            pending_handlers
        });
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, id, tenant_id, kind, subject, pending_handlers FROM events \
             WHERE fanned_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut planned: Vec<(i64, String, Option<String>, String, i64)> = Vec::new();
        let mut fanned: Vec<i64> = Vec::new();
        for row in &rows {
            let (Ok(tenant), Some(kind)) =
                (TenantId::parse(&row.tenant_id), EventKind::parse(&row.kind))
            else {
                tracing::error!(event_id = %row.id, "event row is corrupt; recorded as failed");
                sqlx::query("UPDATE events SET status = 'failed', fanned_at = $2, last_error = 'corrupt row' WHERE seq = $1")
                    .bind(row.seq)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                continue;
            };
            let mut hooks = hooks_for(&tenant, kind);
            // Rows left half-delivered by the dispatcher before deliveries existed name the
            // handlers still owed.
            if let Some(owed) = row
                .pending_handlers
                .as_deref()
                .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
            {
                hooks.retain(|h| owed.contains(h));
            }
            let mut seen = std::collections::HashSet::new();
            hooks.retain(|h| seen.insert(h.clone()));
            if hooks.is_empty() {
                let emails = matches!(
                    kind,
                    EventKind::SendVerificationEmail | EventKind::SendPasswordResetEmail
                );
                if emails {
                    // Dropping it would leave a user waiting for an email that never comes.
                    tracing::error!(
                        tenant = %tenant, event = %kind, event_id = %row.id,
                        "no hook handles this email event; kept as no_handler: deploy a hook, \
                         then `hookauth hooks replay {}`", row.id
                    );
                }
                sqlx::query(
                    "UPDATE events SET fanned_at = $2, status = $3, \
                     secret = CASE WHEN $3 = 'delivered' THEN NULL ELSE secret END, \
                     delivered_at = CASE WHEN $3 = 'delivered' THEN $2 ELSE NULL END \
                     WHERE seq = $1",
                )
                .bind(row.seq)
                .bind(now)
                .bind(if emails { "no_handler" } else { "delivered" })
                .execute(&mut *tx)
                .await?;
                continue;
            }
            for (position, hook) in hooks.into_iter().enumerate() {
                planned.push((
                    row.seq,
                    row.tenant_id.clone(),
                    row.subject.clone(),
                    hook,
                    position as i64,
                ));
            }
            fanned.push(row.seq);
        }
        for chunk in planned.chunks(INSERT_CHUNK) {
            insert_deliveries(&mut tx, chunk, now).await?;
        }
        for chunk in fanned.chunks(INSERT_CHUNK) {
            let list = id_list(chunk);
            sqlx::query(&format!(
                "UPDATE events SET fanned_at = $1 WHERE seq IN ({list})"
            ))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !planned.is_empty() && self.dialect == Dialect::Postgres {
            sqlx::query(NOTIFY_STATEMENT).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Tenants with unfinished deliveries, by an index walk (one seek per tenant), so a large
    /// backlog of one tenant costs nothing here.
    pub async fn tenants_with_deliveries(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(Option<String>,)> = sqlx::query_as(
            "WITH RECURSIVE t(tenant_id) AS ( \
               SELECT MIN(tenant_id) FROM deliveries WHERE status = 'pending' \
               UNION ALL \
               SELECT (SELECT MIN(d.tenant_id) FROM deliveries d \
                       WHERE d.status = 'pending' AND d.tenant_id > t.tenant_id) \
               FROM t WHERE t.tenant_id IS NOT NULL) \
             SELECT tenant_id FROM t",
        )
        .fetch_all(&self.reader_or_writer())
        .await?;
        Ok(rows.into_iter().filter_map(|(t,)| t).collect())
    }

    /// Per tenant (or for one): deliveries not done plus events not fanned out yet, and when
    /// the oldest of their events was committed. Tenants with nothing waiting are absent.
    pub async fn outbox_depths(
        &self,
        tenant: Option<&TenantId>,
    ) -> StoreResult<Vec<(String, i64, Option<UnixMillis>)>> {
        let filter = if tenant.is_some() {
            "WHERE tenant_id = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT tenant_id, COUNT(*), MIN(created_at) FROM ( \
               SELECT d.tenant_id AS tenant_id, e.created_at AS created_at \
               FROM deliveries d JOIN events e ON e.seq = d.event_seq \
               WHERE d.status = 'pending' \
               UNION ALL \
               SELECT tenant_id, created_at FROM events WHERE fanned_at IS NULL \
             ) waiting {filter} GROUP BY tenant_id ORDER BY tenant_id"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(tenant) = tenant {
            query = query.bind(tenant.as_str());
        }
        Ok(query.fetch_all(&self.reader_or_writer()).await?)
    }

    /// Claims up to `want` of `tenant`'s claimable deliveries, oldest first, until
    /// `lease_until`, taking at most `room(hook)` of any hook's. On PostgreSQL rows another
    /// replica is claiming are skipped.
    pub async fn claim_deliveries(
        &self,
        replica: &str,
        tenant: &str,
        want: usize,
        room: &mut (dyn FnMut(&str) -> bool + Send),
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if want == 0 {
            return Ok(Vec::new());
        }
        let skip = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let mut tx = self.writer.begin().await?;
        // Read more than wanted, so hooks at their cap do not starve the others.
        let candidates: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT d.id, d.hook FROM deliveries d WHERE {CLAIMABLE} AND d.tenant_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM hook_circuits c WHERE c.tenant_id = d.tenant_id \
                             AND c.hook = d.hook AND c.is_open = 1) \
             ORDER BY d.id LIMIT $3 {skip}"
        ))
        .bind(now)
        .bind(tenant)
        .bind((want * 4) as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut chosen = Vec::new();
        for (id, hook) in candidates {
            if chosen.len() >= want {
                break;
            }
            if room(&hook) {
                chosen.push(id);
            }
        }
        let claimed = claim_ids(&mut tx, replica, &chosen, lease_until, false).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// For each open circuit whose pause is over and that has no probe in flight, claims its
    /// oldest claimable delivery as the one probe (at most `limit`).
    pub async fn claim_probes(
        &self,
        replica: &str,
        limit: usize,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let skip = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let mut tx = self.writer.begin().await?;
        let circuits: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT c.tenant_id, c.hook FROM hook_circuits c WHERE c.is_open = 1 \
             AND c.retry_at <= $1 AND (c.probe_id IS NULL OR NOT EXISTS ( \
               SELECT 1 FROM deliveries p WHERE p.id = c.probe_id AND p.status = 'pending' \
               AND p.claim_until >= $1)) \
             ORDER BY c.retry_at LIMIT $2 {skip}"
        ))
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::new();
        for (tenant, hook) in circuits {
            let next: Option<(i64,)> = sqlx::query_as(&format!(
                "SELECT d.id FROM deliveries d WHERE {CLAIMABLE} AND d.tenant_id = $2 \
                 AND d.hook = $3 ORDER BY d.id LIMIT 1 {skip}"
            ))
            .bind(now)
            .bind(&tenant)
            .bind(&hook)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id,)) = next else { continue };
            sqlx::query(
                "UPDATE hook_circuits SET probe_id = $3 WHERE tenant_id = $1 AND hook = $2",
            )
            .bind(&tenant)
            .bind(&hook)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            claimed.extend(claim_ids(&mut tx, replica, &[id], lease_until, true).await?);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Extends the lease of the deliveries this replica is still working on.
    pub async fn renew_claims(
        &self,
        replica: &str,
        ids: &[i64],
        lease_until: UnixMillis,
    ) -> StoreResult<()> {
        for chunk in ids.chunks(INSERT_CHUNK) {
            let list = id_list(chunk);
            sqlx::query(&format!(
                "UPDATE deliveries SET claim_until = $2 WHERE id IN ({list}) \
                 AND claimed_by = $1 AND status = 'pending'"
            ))
            .bind(replica)
            .bind(lease_until)
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// Writes a batch of attempt outcomes in one transaction; an event whose last delivery
    /// finished becomes `delivered` (token erased) or `failed`. Outcomes for claims this
    /// replica no longer holds (its lease ran out and another took over) are ignored.
    pub async fn settle_deliveries(
        &self,
        replica: &str,
        outcomes: &[Outcome],
        breaker: BreakerPolicy,
        now: UnixMillis,
    ) -> StoreResult<Vec<CircuitChange>> {
        let mut order: Vec<&Outcome> = outcomes.iter().collect();
        // One lock order for every settler, so two replicas cannot deadlock on event rows.
        order.sort_by_key(|o| (o.event_seq, o.delivery));
        let mut tx = self.writer.begin().await?;
        let lock = self.row_lock();
        let mut settled = Vec::new();
        for o in order {
            if self.dialect == Dialect::Postgres {
                // Two replicas finishing an event's last two deliveries take turns here, so
                // the second sees the first's write and settles the event.
                sqlx::query(&format!("SELECT seq FROM events WHERE seq = $1 {lock}"))
                    .bind(o.event_seq)
                    .execute(&mut *tx)
                    .await?;
            }
            let (status, next_at, error) = match &o.result {
                AttemptResult::Delivered => ("delivered", now, None),
                AttemptResult::Retry { at, error } => ("pending", *at, Some(error.as_str())),
                AttemptResult::GaveUp { error } | AttemptResult::Unroutable { error } => {
                    ("failed", now, Some(error.as_str()))
                }
            };
            let done = sqlx::query(
                "UPDATE deliveries SET status = $3, attempts = $4, next_attempt_at = $5, \
                 last_error = COALESCE($6, last_error), claimed_by = NULL, claim_until = NULL, \
                 done_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $7 END \
                 WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
            )
            .bind(o.delivery)
            .bind(replica)
            .bind(status)
            .bind(o.attempt)
            .bind(next_at)
            .bind(error.map(str::to_owned))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                continue;
            }
            settled.push(o);
            if status != "pending" {
                sqlx::query(
                    "UPDATE events SET \
                       status = CASE WHEN EXISTS (SELECT 1 FROM deliveries f \
                         WHERE f.event_seq = $1 AND f.status = 'failed') \
                         THEN 'failed' ELSE 'delivered' END, \
                       secret = CASE WHEN EXISTS (SELECT 1 FROM deliveries f \
                         WHERE f.event_seq = $1 AND f.status = 'failed') \
                         THEN secret ELSE NULL END, \
                       attempts = (SELECT MAX(a.attempts) FROM deliveries a WHERE a.event_seq = $1), \
                       delivered_at = $2 \
                     WHERE seq = $1 AND status = 'pending' AND fanned_at IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM deliveries p \
                                     WHERE p.event_seq = $1 AND p.status = 'pending')",
                )
                .bind(o.event_seq)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Circuits after events, in (tenant, hook) order, again for one lock order; within a
        // hook, outcomes keep the order they finished in.
        settled.sort_by(|a, b| (a.tenant.as_str(), &a.hook).cmp(&(b.tenant.as_str(), &b.hook)));
        let mut changes = Vec::new();
        for o in settled {
            if let Some(change) = update_circuit(&mut tx, lock, o, breaker, now).await? {
                changes.push(change);
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Gives back this replica's unfinished claims so they are delivered without waiting for
    /// the lease to run out.
    pub async fn release_claims(&self, replica: &str) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE deliveries SET claimed_by = NULL, claim_until = NULL \
             WHERE claimed_by = $1 AND status = 'pending'",
        )
        .bind(replica)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// SQLite has one process: at start, every claim in the file was left by a process that
    /// died (or was killed) and is taken back at once instead of after its lease.
    pub async fn recover_stale_claims(&self) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE deliveries SET claimed_by = NULL, claim_until = NULL \
             WHERE claimed_by IS NOT NULL AND status = 'pending'",
        )
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// The earliest time something may become claimable (a retry, a lease running out, a
    /// circuit's probe), so an idle dispatcher knows how long it may sleep.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<UnixMillis>> {
        let (due,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(t) FROM ( \
               SELECT MIN(CASE WHEN claim_until IS NOT NULL AND claim_until > next_attempt_at \
                          THEN claim_until ELSE next_attempt_at END) AS t \
               FROM deliveries WHERE status = 'pending' \
               UNION ALL SELECT MIN(retry_at) AS t FROM hook_circuits WHERE is_open = 1 \
               UNION ALL SELECT MIN(created_at) AS t FROM events \
                 WHERE fanned_at IS NULL) x",
        )
        .fetch_one(&self.reader_or_writer())
        .await?;
        Ok(due)
    }

    /// Every delivery row, oldest first, optionally of one tenant: for tools and tests.
    pub async fn delivery_states(
        &self,
        tenant: Option<&TenantId>,
    ) -> StoreResult<Vec<DeliveryState>> {
        Ok(sqlx::query_as(
            "SELECT d.id, e.id AS event_id, d.tenant_id, d.hook, d.subject, d.status, d.attempts, \
             d.claimed_by, d.claim_until, d.last_error FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE ($1 IS NULL OR d.tenant_id = $1) \
             ORDER BY d.id",
        )
        .bind(tenant.map(|t| t.as_str().to_owned()))
        .fetch_all(&self.reader)
        .await?)
    }

    /// How many deliveries are claimed right now, per hook of a tenant: what holds lanes.
    pub async fn claimed_deliveries(
        &self,
        tenant: &TenantId,
        now: UnixMillis,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT hook, COUNT(*) FROM deliveries WHERE tenant_id = $1 AND status = 'pending' \
             AND claim_until >= $2 GROUP BY hook ORDER BY hook",
        )
        .bind(tenant.as_str())
        .bind(now)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The dispatcher's bookkeeping reads see its own writes: on SQLite the reader pool may lag
    /// the single writer by a WAL checkpoint, which is fine; both pools see commits.
    fn reader_or_writer(&self) -> sqlx::AnyPool {
        self.reader.clone()
    }
}

async fn insert_deliveries(
    conn: &mut AnyConnection,
    rows: &[(i64, String, Option<String>, String, i64)],
    now: UnixMillis,
) -> StoreResult<()> {
    let mut sql = String::from(
        "INSERT INTO deliveries (event_seq, tenant_id, subject, hook, position, status, \
         attempts, next_attempt_at) VALUES ",
    );
    for i in 0..rows.len() {
        let b = i * 5;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, 'pending', 0, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            rows.len() * 5 + 1
        ));
    }
    sql.push_str(" ON CONFLICT (event_seq, hook) DO NOTHING");
    let mut query = sqlx::query(&sql);
    for (seq, tenant, subject, hook, position) in rows {
        query = query
            .bind(*seq)
            .bind(tenant.clone())
            .bind(subject.clone())
            .bind(hook.clone())
            .bind(*position);
    }
    query.bind(now).execute(&mut *conn).await?;
    Ok(())
}

/// Marks `ids` claimed and reads them back with their events.
async fn claim_ids(
    conn: &mut AnyConnection,
    replica: &str,
    ids: &[i64],
    lease_until: UnixMillis,
    probe: bool,
) -> StoreResult<Vec<ClaimedDelivery>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = id_list(ids);
    sqlx::query(&format!(
        "UPDATE deliveries SET claimed_by = $1, claim_until = $2 WHERE id IN ({list})"
    ))
    .bind(replica)
    .bind(lease_until)
    .execute(&mut *conn)
    .await?;
    struct Row {
        delivery_id: i64,
        hook: String,
        delivery_attempts: i64,
        event: EventRow,
    }
    any_row!(Row {
        delivery_id,
        hook,
        delivery_attempts,
        event: flatten
    });
    let columns = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT d.id AS delivery_id, d.hook, d.attempts AS delivery_attempts, {columns} \
         FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id IN ({list}) \
         ORDER BY d.id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ClaimedDelivery {
                id: r.delivery_id,
                hook: r.hook,
                attempts: r.delivery_attempts,
                probe,
                event: r.event.into_record()?.event,
            })
        })
        .collect()
}

/// Integer ids inlined into `IN (...)`: they come from our own rows, never from input.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}
