//! The audit of gate decisions: written in batches by the flows' audit writer, read by
//! `hookauth hooks decisions` and the tenant hooks API.

use serde::Serialize;
use sqlx::FromRow;

use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

/// One gate's answer (or failure) to one question.
#[derive(Clone, Debug, PartialEq, Serialize, FromRow)]
pub struct GateDecisionRecord {
    pub id: String,
    #[sqlx(rename = "tenant_id")]
    pub tenant: String,
    pub hook: String,
    pub point: String,
    /// `allow`, `deny`, `allow_with_changes`, `claims`, `failed_deny` (a failure that denied:
    /// `on_error = "deny"`) or `failed_allow` (a failure that was skipped).
    pub decision: String,
    /// The gate's own code for a deny, as sanitised.
    pub hook_code: Option<String>,
    /// The deny message as the client saw it.
    pub message: Option<String>,
    /// Why the gate gave no usable answer (`label: reason`).
    pub failure: Option<String>,
    /// A user id, or the email being registered.
    pub subject: String,
    pub request_id: String,
    pub duration_us: i64,
    pub decided_at: UnixMillis,
}

/// Which decisions to read, newest first.
#[derive(Clone, Debug, Default)]
pub struct DecisionQuery {
    pub tenant: Option<TenantId>,
    pub hook: Option<String>,
    pub decision: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Stores a batch in one statement.
    pub async fn record_gate_decisions(&self, batch: &[GateDecisionRecord]) -> StoreResult<()> {
        const COLUMNS: usize = 12;
        // Well under SQLite's and PostgreSQL's parameter limits.
        for chunk in batch.chunks(256) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let params: Vec<String> = (1..=COLUMNS)
                        .map(|c| format!("${}", r * COLUMNS + c))
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO gate_decisions (id, tenant_id, hook, point, decision, hook_code, \
                 message, failure, subject, request_id, duration_us, decided_at) VALUES {} \
                 ON CONFLICT (id) DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for d in chunk {
                query = query
                    .bind(&d.id)
                    .bind(&d.tenant)
                    .bind(&d.hook)
                    .bind(&d.point)
                    .bind(&d.decision)
                    .bind(&d.hook_code)
                    .bind(&d.message)
                    .bind(&d.failure)
                    .bind(&d.subject)
                    .bind(&d.request_id)
                    .bind(d.duration_us)
                    .bind(d.decided_at);
            }
            query.execute(&self.writer).await?;
        }
        Ok(())
    }

    pub async fn gate_decisions(
        &self,
        query: &DecisionQuery,
    ) -> StoreResult<Vec<GateDecisionRecord>> {
        let rows = sqlx::query_as(
            "SELECT id, tenant_id, hook, point, decision, hook_code, message, failure, subject, \
             request_id, duration_us, decided_at FROM gate_decisions \
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR hook = $2) \
               AND ($3 IS NULL OR decision = $3) \
             ORDER BY decided_at DESC, id DESC LIMIT $4",
        )
        .bind(query.tenant.as_ref().map(TenantId::as_str))
        .bind(query.hook.as_deref())
        .bind(query.decision.as_deref())
        .bind(query.limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// Deletes decisions older than `before`; returns how many.
    pub async fn prune_gate_decisions(&self, before: UnixMillis) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM gate_decisions WHERE decided_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}
