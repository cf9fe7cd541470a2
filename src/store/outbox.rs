//! The event outbox: rows written inside the flows' transactions by one helper,
//! [`Store::commit_announcing`], then fanned out into deliveries (see `deliveries.rs`).

use sqlx::{Any, AnyConnection, Transaction};

use super::{Dialect, Store, StoreError, StoreResult};
use crate::domain::{
    Event, EventKind, EventPayload, RequestContext, TenantId, UnixMillis, User, UserId,
    new_event_id,
};

/// Taken for the last statement of every event-writing PostgreSQL transaction: sequence values
/// are handed out at insert time but become visible at commit, so without serialising
/// "allocate seq + commit" a later seq could be fanned out before an earlier one commits.
const OUTBOX_ORDER_LOCK: i64 = 0x686f_6f6b_6175_7468; // "hookauth"

pub const NOTIFY_CHANNEL: &str = "hookauth_events";
pub(super) const NOTIFY_STATEMENT: &str = "NOTIFY hookauth_events";

/// An event a flow built, to be committed with the change it reports.
pub struct Announce<'a> {
    pub tenant: TenantId,
    /// The user the event is about. Delivery keeps one subject's events in commit order for
    /// each hook, and runs everything else in parallel.
    pub subject: Option<UserId>,
    pub payload: EventPayload,
    pub context: &'a RequestContext,
}

impl<'a> Announce<'a> {
    /// An event about `user`, in the user's tenant.
    pub fn about(user: &User, payload: EventPayload, context: &'a RequestContext) -> Self {
        Self {
            tenant: user.tenant.clone(),
            subject: Some(user.id),
            payload,
            context,
        }
    }
}

impl Store {
    /// The one way a change and its events are committed: writes the outbox rows (in order)
    /// as the transaction's last statements, commits, and wakes the local dispatcher. Without
    /// an event it only commits.
    pub(super) async fn commit_announcing<'a>(
        &self,
        mut tx: Transaction<'static, Any>,
        announce: impl IntoIterator<Item = Announce<'a>>,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut announced = false;
        for announce in announce {
            insert_event(&mut tx, self.dialect, announce, now).await?;
            announced = true;
        }
        tx.commit().await?;
        if announced {
            self.wake_dispatcher();
        }
        Ok(())
    }

    pub(super) fn wake_dispatcher(&self) {
        self.events_committed.notify_one();
    }
}

/// Must be the transaction's last statement (see [`OUTBOX_ORDER_LOCK`]).
async fn insert_event(
    conn: &mut AnyConnection,
    dialect: Dialect,
    announce: Announce<'_>,
    now: UnixMillis,
) -> StoreResult<()> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT COUNT(*) FROM pg_advisory_xact_lock($1)")
            .bind(OUTBOX_ORDER_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let mut payload = announce.payload;
    let secret = payload.take_secret();
    let context = serde_json::to_string(announce.context).expect("context serialises");
    let body = serde_json::to_string(&payload).expect("payload serialises");
    sqlx::query(
        "INSERT INTO events (id, tenant_id, kind, payload, secret, context, created_at, \
         status, attempts, next_attempt_at, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7, $8)",
    )
    .bind(new_event_id())
    .bind(announce.tenant.as_str())
    .bind(payload.kind().as_str())
    .bind(body)
    .bind(secret)
    .bind(context)
    .bind(now)
    .bind(announce.subject.map(|s| s.to_string()))
    .execute(&mut *conn)
    .await?;
    if dialect == Dialect::Postgres {
        // Delivered to every listening replica at commit, and only if the commit happens.
        sqlx::query(NOTIFY_STATEMENT).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A recorded event with its delivery state.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub event: Event,
    pub subject: Option<String>,
}

pub(super) struct EventRow {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) tenant_id: String,
    pub(super) payload: String,
    pub(super) secret: Option<String>,
    pub(super) context: String,
    pub(super) created_at: i64,
    pub(super) subject: Option<String>,
}
any_row!(EventRow {
    seq,
    id,
    tenant_id,
    payload,
    secret,
    context,
    created_at,
    subject
});

pub(super) const EVENT_COLUMNS: &str =
    "seq, id, tenant_id, payload, secret, context, created_at, subject";

impl EventRow {
    pub(super) fn into_record(self) -> StoreResult<EventRecord> {
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
            subject: self.subject,
        })
    }
}

/// An event that needs an operator: a hook failed it for good, or nobody could send it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedEvent {
    pub id: String,
    pub seq: i64,
    pub tenant: String,
    pub kind: String,
    /// `failed` (some hooks gave up) or `no_handler` (an email nobody was there to send).
    pub status: String,
    /// The most attempts any failed hook made.
    pub attempts: i64,
    /// The hooks that failed, in their order at fan-out.
    pub failed_handlers: Vec<String>,
    pub failures: Vec<HookFailure>,
    /// The last failed hook's error, prefixed with its name.
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HookFailure {
    pub hook: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Events with status `failed` or `no_handler`, oldest first, optionally of one tenant.
    pub async fn failed_events(
        &self,
        tenant: Option<&TenantId>,
        limit: i64,
    ) -> StoreResult<Vec<FailedEvent>> {
        struct Row {
            id: String,
            seq: i64,
            tenant_id: String,
            kind: String,
            status: String,
            created_at: i64,
        }
        any_row!(Row {
            id,
            seq,
            tenant_id,
            kind,
            status,
            created_at
        });
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, seq, tenant_id, kind, status, created_at FROM events \
             WHERE status IN ('failed', 'no_handler') AND ($1 IS NULL OR tenant_id = $1) \
             ORDER BY seq LIMIT $2",
        )
        .bind(tenant.map(|t| t.as_str().to_owned()))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let failures: Vec<(String, i64, Option<String>)> = sqlx::query_as(
                "SELECT hook, attempts, last_error FROM deliveries \
                 WHERE event_seq = $1 AND status = 'failed' ORDER BY position",
            )
            .bind(r.seq)
            .fetch_all(&self.reader)
            .await?;
            let failures: Vec<HookFailure> = failures
                .into_iter()
                .map(|(hook, attempts, last_error)| HookFailure {
                    hook,
                    attempts,
                    last_error,
                })
                .collect();
            out.push(FailedEvent {
                attempts: failures.iter().map(|f| f.attempts).max().unwrap_or(0),
                failed_handlers: failures.iter().map(|f| f.hook.clone()).collect(),
                last_error: match failures.last() {
                    Some(f) => Some(format!(
                        "{}: {}",
                        f.hook,
                        f.last_error.as_deref().unwrap_or("")
                    )),
                    None if r.status == "no_handler" => {
                        Some("no hook handled this event when it was committed".to_owned())
                    }
                    None => None,
                },
                failures,
                id: r.id,
                seq: r.seq,
                tenant: r.tenant_id,
                kind: r.kind,
                status: r.status,
                created_at: r.created_at,
            });
        }
        Ok(out)
    }

    /// Queues a failed event again: its failed deliveries (only those of `only_hooks`, when
    /// given) start over; a `no_handler` event is fanned out again to the hooks present now.
    /// `false` if there is no such failed event (in `tenant`, when given).
    pub async fn replay_event(
        &self,
        id: &str,
        tenant: Option<&TenantId>,
        only_hooks: Option<&[String]>,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let lock = self.row_lock();
        let row: Option<(i64, String)> = sqlx::query_as(&format!(
            "SELECT seq, status FROM events WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) {lock}"
        ))
        .bind(id)
        .bind(tenant.map(|t| t.as_str().to_owned()))
        .fetch_optional(&mut *tx)
        .await?;
        let replayed = match row {
            Some((seq, status)) if status == "no_handler" => {
                sqlx::query(
                    "UPDATE events SET status = 'pending', fanned_at = NULL, next_attempt_at = $2 \
                     WHERE seq = $1",
                )
                .bind(seq)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                true
            }
            Some((seq, status)) if status == "failed" => {
                let failed: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, hook FROM deliveries WHERE event_seq = $1 AND status = 'failed'",
                )
                .bind(seq)
                .fetch_all(&mut *tx)
                .await?;
                let mut requeued = 0;
                for (delivery, hook) in failed {
                    if only_hooks.is_some_and(|only| !only.contains(&hook)) {
                        continue;
                    }
                    sqlx::query(
                        "UPDATE deliveries SET status = 'pending', attempts = 0, \
                         next_attempt_at = $2, claimed_by = NULL, claim_until = NULL, \
                         done_at = NULL WHERE id = $1",
                    )
                    .bind(delivery)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    requeued += 1;
                }
                if requeued > 0 {
                    sqlx::query("UPDATE events SET status = 'pending' WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                requeued > 0
            }
            _ => false,
        };
        if replayed && self.dialect == Dialect::Postgres {
            sqlx::query(NOTIFY_STATEMENT).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if replayed {
            self.wake_dispatcher();
        }
        Ok(replayed)
    }

    /// One event as recorded (secret included while it is still held), for tools and tests.
    pub async fn find_event(&self, id: &str) -> StoreResult<Option<(EventRecord, String)>> {
        struct Row {
            event: EventRow,
            status: String,
        }
        any_row!(Row {
            event: flatten,
            status
        });
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

    /// `FOR UPDATE` on PostgreSQL; SQLite has one writer, which is lock enough.
    pub(super) fn row_lock(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE",
        }
    }
}
