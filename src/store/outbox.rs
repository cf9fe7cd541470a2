//! The event outbox: rows written by the flows' transactions, claimed and settled by the
//! dispatcher.

use sqlx::{AnyConnection, FromRow};

use super::{Dialect, Store, StoreError, StoreResult};
use crate::domain::{
    Event, EventKind, EventPayload, RequestContext, TenantId, UnixMillis, new_event_id,
};

/// Taken for the last statement of every event-writing PostgreSQL transaction: sequence values
/// are handed out at insert time but become visible at commit, so without serialising
/// "allocate seq + commit" a later seq could be delivered before an earlier one commits.
const OUTBOX_ORDER_LOCK: i64 = 0x686f_6f6b_6175_7468; // "hookauth"

pub const NOTIFY_CHANNEL: &str = "hookauth_events";
const NOTIFY_STATEMENT: &str = "NOTIFY hookauth_events";

/// Writes `payload` to the outbox inside the caller's transaction. Must be the transaction's last
/// statement (see [`OUTBOX_ORDER_LOCK`]). The caller wakes the dispatcher after commit.
pub(super) async fn insert_event(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &TenantId,
    mut payload: EventPayload,
    ctx: &RequestContext,
    now: UnixMillis,
) -> StoreResult<()> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT COUNT(*) FROM pg_advisory_xact_lock($1)")
            .bind(OUTBOX_ORDER_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let secret = payload.take_secret();
    let context = serde_json::to_string(ctx).expect("context serialises");
    let body = serde_json::to_string(&payload).expect("payload serialises");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, kind, payload, secret, context, created_at, \
         status, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7)",
    )
    .bind(new_event_id())
    .bind(tenant.as_str())
    .bind(payload.kind().as_str())
    .bind(body)
    .bind(secret)
    .bind(context)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if dialect == Dialect::Postgres {
        // Delivered to every listening replica at commit, and only if the commit happens.
        sqlx::query(NOTIFY_STATEMENT).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A claimed event with its delivery state.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub event: Event,
    pub attempts: i64,
    /// Handlers that still have to succeed; `None` means all of them.
    pub pending_handlers: Option<Vec<String>>,
}

/// An event that exhausted its attempts, for `hookauth hooks failures`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedEvent {
    pub id: String,
    pub seq: i64,
    pub tenant: String,
    pub kind: String,
    pub attempts: i64,
    pub failed_handlers: Vec<String>,
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
}

#[derive(FromRow)]
struct EventRow {
    seq: i64,
    id: String,
    tenant_id: String,
    payload: String,
    secret: Option<String>,
    context: String,
    created_at: i64,
    attempts: i64,
    pending_handlers: Option<String>,
}

const EVENT_COLUMNS: &str =
    "seq, id, tenant_id, payload, secret, context, created_at, attempts, pending_handlers";

impl EventRow {
    fn into_record(self) -> StoreResult<EventRecord> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("event {}: {what}", self.id));
        let mut payload: EventPayload =
            serde_json::from_str(&self.payload).map_err(|_| corrupt("payload"))?;
        if let Some(secret) = self.secret {
            payload.restore_secret(secret);
        }
        Ok(EventRecord {
            event: Event {
                id: self.id.clone(),
                seq: self.seq,
                tenant: TenantId::parse(&self.tenant_id).map_err(|_| corrupt("tenant"))?,
                occurred_at: self.created_at,
                context: serde_json::from_str(&self.context).map_err(|_| corrupt("context"))?,
                payload,
            },
            attempts: self.attempts,
            pending_handlers: parse_handlers(self.pending_handlers.as_deref()),
        })
    }
}

fn parse_handlers(raw: Option<&str>) -> Option<Vec<String>> {
    raw.and_then(|r| serde_json::from_str(r).ok())
}

impl Store {
    pub(super) fn wake_dispatcher(&self) {
        self.events_committed.notify_one();
    }

    /// Claims up to `limit` due events for `replica` until `lease_until`, oldest commit first.
    /// On PostgreSQL, rows another replica is claiming are skipped, so each event goes to one
    /// replica; a replica that dies loses its claims when the lease runs out.
    pub async fn claim_events(
        &self,
        replica: &str,
        limit: i64,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<EventRecord>> {
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE events SET claimed_by = $1, claim_until = $2 WHERE seq IN (\
               SELECT seq FROM events WHERE status = 'pending' AND next_attempt_at <= $3 \
               AND (claim_until IS NULL OR claim_until < $3) ORDER BY seq LIMIT $4 {lock}) \
             RETURNING {EVENT_COLUMNS}"
        );
        let rows: Vec<EventRow> = sqlx::query_as(&sql)
            .bind(replica)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?;
        let mut records = rows
            .into_iter()
            .map(EventRow::into_record)
            .collect::<StoreResult<Vec<_>>>()?;
        records.sort_by_key(|r| r.event.seq);
        Ok(records)
    }

    /// Every handler succeeded: the event is done and its secret (a one-time token) is erased.
    pub async fn mark_delivered(
        &self,
        id: &str,
        attempts: i64,
        now: UnixMillis,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE events SET status = 'delivered', secret = NULL, delivered_at = $2, \
             attempts = $3, pending_handlers = NULL, claimed_by = NULL, claim_until = NULL, \
             last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(attempts)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Some handlers failed: try those again at `next_attempt_at`, or, with `give_up`, record
    /// the event as failed for an operator to replay.
    pub async fn mark_undelivered(
        &self,
        id: &str,
        attempts: i64,
        failed_handlers: &[String],
        error: &str,
        next_attempt_at: UnixMillis,
        give_up: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE events SET status = $2, attempts = $3, pending_handlers = $4, \
             last_error = $5, next_attempt_at = $6, claimed_by = NULL, claim_until = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .bind(if give_up { "failed" } else { "pending" })
        .bind(attempts)
        .bind(serde_json::to_string(failed_handlers).expect("names serialise"))
        .bind(error)
        .bind(next_attempt_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Gives back this replica's unfinished claims so they are delivered without waiting for
    /// the lease to run out.
    pub async fn release_claims(&self, replica: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE events SET claimed_by = NULL, claim_until = NULL \
             WHERE claimed_by = $1 AND status = 'pending'",
        )
        .bind(replica)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// When the next pending event is due, if any, so an idle dispatcher knows how long to sleep.
    pub async fn next_event_due(&self) -> StoreResult<Option<UnixMillis>> {
        let (due,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(next_attempt_at) FROM events WHERE status = 'pending'")
                .fetch_one(&self.reader)
                .await?;
        Ok(due)
    }

    pub async fn failed_events(&self, limit: i64) -> StoreResult<Vec<FailedEvent>> {
        #[derive(FromRow)]
        struct Row {
            id: String,
            seq: i64,
            tenant_id: String,
            kind: String,
            attempts: i64,
            pending_handlers: Option<String>,
            last_error: Option<String>,
            created_at: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, seq, tenant_id, kind, attempts, pending_handlers, last_error, created_at \
             FROM events WHERE status = 'failed' ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FailedEvent {
                failed_handlers: parse_handlers(r.pending_handlers.as_deref()).unwrap_or_default(),
                id: r.id,
                seq: r.seq,
                tenant: r.tenant_id,
                kind: r.kind,
                attempts: r.attempts,
                last_error: r.last_error,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Puts a failed event back in the queue for the handlers that failed it.
    pub async fn replay_event(&self, id: &str, now: UnixMillis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = $2 \
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() > 0 {
            self.wake_dispatcher();
        }
        Ok(done.rows_affected() > 0)
    }

    /// One event as recorded (secret included while it is still held), for tools and tests.
    pub async fn find_event(&self, id: &str) -> StoreResult<Option<(EventRecord, String)>> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            event: EventRow,
            status: String,
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS}, status FROM events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| Ok((r.event.into_record()?, r.status)))
            .transpose()
    }

    /// Every event of a tenant in commit order: the audit trail tests and tools read.
    pub async fn events_of_tenant(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<(EventKind, String)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT kind, status FROM events WHERE tenant_id = $1 ORDER BY seq")
                .bind(tenant.as_str())
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|(kind, status)| {
                EventKind::parse(&kind)
                    .map(|k| (k, status))
                    .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind}")))
            })
            .collect()
    }
}
