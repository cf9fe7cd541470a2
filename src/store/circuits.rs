//! One circuit breaker per (tenant, hook), in `hook_circuits`, shared by every replica: opened
//! by a run of failed attempts, probed by one delivery at a time after a pause that doubles per
//! failed probe, closed by any success.

use sqlx::AnyConnection;

use super::deliveries::{AttemptResult, Outcome};
use super::{Store, StoreResult};
use crate::domain::{TenantId, UnixMillis};

/// When a hook's circuit opens and how long it stays open.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open the circuit.
    pub failures: i64,
    pub pause_initial_ms: i64,
    pub pause_max_ms: i64,
}

/// A circuit changed state while settling; the dispatcher logs it.
#[derive(Debug, Clone)]
pub struct CircuitChange {
    pub tenant: TenantId,
    pub hook: String,
    pub event_id: String,
    pub reason: String,
    pub kind: CircuitChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChangeKind {
    Opened { pause_ms: i64 },
    ProbeFailed { pause_ms: i64 },
    Closed,
}

/// An open circuit, for `hookauth hooks failures`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenCircuit {
    pub tenant_id: String,
    pub hook: String,
    pub failures: i64,
    pub opened_at: Option<i64>,
    pub retry_at: Option<i64>,
    pub last_error: Option<String>,
}
any_row!(OpenCircuit {
    tenant_id,
    hook,
    failures,
    opened_at,
    retry_at,
    last_error
});

impl Store {
    /// Circuits that are open now.
    pub async fn open_circuits(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<OpenCircuit>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, hook, failures, opened_at, retry_at, last_error FROM hook_circuits \
             WHERE is_open = 1 AND ($1 IS NULL OR tenant_id = $1) ORDER BY tenant_id, hook",
        )
        .bind(tenant.map(|t| t.as_str().to_owned()))
        .fetch_all(&self.reader)
        .await?)
    }
}

/// Applies one settled attempt to its hook's circuit.
pub(super) async fn update_circuit(
    conn: &mut AnyConnection,
    lock: &str,
    o: &Outcome,
    breaker: BreakerPolicy,
    now: UnixMillis,
) -> StoreResult<Option<CircuitChange>> {
    let change = |kind, reason: &str| CircuitChange {
        tenant: o.tenant.clone(),
        hook: o.hook.clone(),
        event_id: o.event_id.clone(),
        reason: reason.to_owned(),
        kind,
    };
    let error = match &o.result {
        AttemptResult::Delivered => {
            // A success closes the circuit: the row's absence is "closed, no failures".
            let was: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM hook_circuits WHERE tenant_id = $1 AND hook = $2 RETURNING is_open",
            )
            .bind(o.tenant.as_str())
            .bind(&o.hook)
            .fetch_optional(&mut *conn)
            .await?;
            return Ok(matches!(was, Some((1,))).then(|| change(CircuitChangeKind::Closed, "ok")));
        }
        AttemptResult::Unroutable { .. } => return Ok(None),
        AttemptResult::Retry { error, .. } | AttemptResult::GaveUp { error } => error,
    };
    struct Row {
        failures: i64,
        is_open: i64,
        pause_ms: Option<i64>,
        probe_id: Option<i64>,
    }
    any_row!(Row {
        failures,
        is_open,
        pause_ms,
        probe_id
    });
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT failures, is_open, pause_ms, probe_id FROM hook_circuits \
         WHERE tenant_id = $1 AND hook = $2 {lock}"
    ))
    .bind(o.tenant.as_str())
    .bind(&o.hook)
    .fetch_optional(&mut *conn)
    .await?;
    let (failures, open, pause, probe) = match row {
        Some(r) => (r.failures + 1, r.is_open == 1, r.pause_ms, r.probe_id),
        None => (1, false, None, None),
    };
    let (open_now, pause_now, opened, kind) = if open {
        if probe == Some(o.delivery) {
            // The probe failed: wait twice as long before the next one.
            let pause = pause
                .unwrap_or(breaker.pause_initial_ms)
                .saturating_mul(2)
                .min(breaker.pause_max_ms);
            (
                true,
                Some(pause),
                false,
                Some(CircuitChangeKind::ProbeFailed { pause_ms: pause }),
            )
        } else {
            // In flight when the circuit opened: not a probe, changes nothing.
            (true, pause, false, None)
        }
    } else if failures >= breaker.failures {
        let pause = breaker.pause_initial_ms;
        (
            true,
            Some(pause),
            true,
            Some(CircuitChangeKind::Opened { pause_ms: pause }),
        )
    } else {
        (false, None, false, None)
    };
    let retry_at = match kind {
        Some(_) => pause_now.map(|p| now + p),
        None => None,
    };
    sqlx::query(
        "INSERT INTO hook_circuits (tenant_id, hook, failures, is_open, opened_at, retry_at, \
         pause_ms, probe_id, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) \
         ON CONFLICT (tenant_id, hook) DO UPDATE SET failures = excluded.failures, \
           is_open = excluded.is_open, \
           opened_at = CASE WHEN $9 = 1 THEN excluded.opened_at ELSE hook_circuits.opened_at END, \
           retry_at = COALESCE(excluded.retry_at, hook_circuits.retry_at), \
           pause_ms = excluded.pause_ms, \
           probe_id = CASE WHEN $10 = 1 THEN NULL ELSE hook_circuits.probe_id END, \
           last_error = excluded.last_error",
    )
    .bind(o.tenant.as_str())
    .bind(&o.hook)
    .bind(failures)
    .bind(i64::from(open_now))
    .bind(opened.then_some(now))
    .bind(retry_at)
    .bind(pause_now)
    .bind(error.clone())
    .bind(i64::from(opened))
    .bind(i64::from(kind.is_some()))
    .execute(&mut *conn)
    .await?;
    Ok(kind.map(|k| change(k, error)))
}
