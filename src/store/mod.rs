//! Storage on SQLite (embedded default) or PostgreSQL (scale-out), through sqlx's `Any` driver so
//! that every query is written once. Where the dialects differ (claiming outbox rows across
//! replicas, waking other replicas) the code branches on [`Dialect`].
//!
//! Each public method is one unit of work: it commits everything it changes, including the
//! outbox event that reports the change, or nothing.

/// `FromRow` for sqlx's `AnyRow`, by column name: what `#[derive(sqlx::FromRow)]` generated,
/// without compiling sqlx's proc-macro crates (and the second sqlx, PostgreSQL driver and SQLite
/// C library they bring for the build machine) on every clean build. List every field: a
/// missing one does not compile. `field = "column"` reads another column, `field: flatten`
/// reads a nested row type from the same row.
macro_rules! any_row {
    ($ty:ident { $($field:ident $(= $column:literal)? $(: $flatten:ident)?),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $ty {
            fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                Ok(Self { $($field: any_row!(@get row, $field $(= $column)? $(: $flatten)?),)* })
            }
        }
    };
    (@get $row:ident, $field:ident) => {
        sqlx::Row::try_get($row, stringify!($field))?
    };
    (@get $row:ident, $field:ident = $column:literal) => {
        sqlx::Row::try_get($row, $column)?
    };
    (@get $row:ident, $field:ident : flatten) => {
        sqlx::FromRow::from_row($row)?
    };
}

mod circuits;
mod deliveries;
mod email_limits;
mod gate_decisions;
mod hook_secrets;
mod import;
mod lockout;
mod mfa;
mod migrations;
mod oauth;
mod outbox;
mod rate_limits;
mod roles;
mod sessions;
mod tenant_hooks;
mod tenants;
mod tokens;
mod url;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use tokio::sync::Notify;

use crate::domain::ProfileSchema;

pub use circuits::{BreakerPolicy, CircuitChange, CircuitChangeKind, OpenCircuit};
pub use deliveries::{AttemptResult, ClaimedDelivery, DeliveryState, Outcome};
pub use email_limits::EmailLimit;
pub use gate_decisions::{DecisionQuery, GateDecisionRecord};
pub use import::{ImportMfa, ImportOauth, ImportUser, Imported};
pub use lockout::LockoutPolicy;
pub use mfa::{MfaChange, MfaCredential};
pub use oauth::{LinkOutcome, OauthSignIn, StoredOauthProvider, UnlinkOutcome};
pub use outbox::{Announce, EventRecord, FailedEvent, HookFailure, NOTIFY_CHANNEL};
pub use sessions::{NewSession, RefreshCheck, SessionEnd, SessionInfo};
pub use tenant_hooks::{HOOKS_NOTIFY_CHANNEL, NewTenantHook, PutOutcome, TenantHookRow};
pub use tokens::{ConsumeOutcome, SessionCutoff, TokenPurpose};
pub use url::DatabaseUrl;
pub use users::NewUser;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("unsupported database url {0}: use sqlite://FILE or postgres://...")]
    UnsupportedUrl(DatabaseUrl),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    fn from_insert(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub url: DatabaseUrl,
    pub max_connections: u32,
    /// "normal" or "full" (SQLite only).
    pub sqlite_synchronous: String,
    pub profile_schema: ProfileSchema,
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// SQLite: many connections that only read. PostgreSQL: the same pool as `writer`.
    reader: AnyPool,
    /// SQLite: a single connection, so writers queue in-process instead of spinning on
    /// SQLITE_BUSY. PostgreSQL: the one pool.
    writer: AnyPool,
    dialect: Dialect,
    url: DatabaseUrl,
    profile_schema: Arc<ProfileSchema>,
    /// Signalled after every commit that wrote an event, so the local dispatcher delivers it
    /// without polling.
    events_committed: Arc<Notify>,
}

impl Store {
    pub async fn connect(settings: &StoreSettings) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose();
        let (dialect, reader, writer) = if url.starts_with("sqlite:") {
            let url = with_create_mode(url);
            let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
            let pragmas = sqlite_pragmas(&settings.sqlite_synchronous);
            let make_pool = |size: u32| {
                let pragmas = pragmas.clone();
                AnyPoolOptions::new()
                    .max_connections(size)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(move |conn, _| {
                        let pragmas = pragmas.clone();
                        Box::pin(async move {
                            conn.execute(pragmas.as_str()).await?;
                            Ok(())
                        })
                    })
            };
            let writer = make_pool(1).connect_with(options.clone()).await?;
            // WAL lets readers proceed while the writer commits; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&writer)
                .await?;
            let reader = make_pool(settings.max_connections.max(1))
                .connect_with(options)
                .await?;
            (Dialect::Sqlite, reader, writer)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = AnyPoolOptions::new()
                .max_connections(settings.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            (Dialect::Postgres, pool.clone(), pool)
        } else {
            return Err(StoreError::UnsupportedUrl(settings.url.clone()));
        };
        Ok(Self {
            reader,
            writer,
            dialect,
            url: settings.url.clone(),
            profile_schema: Arc::new(settings.profile_schema.clone()),
            events_committed: Arc::new(Notify::new()),
        })
    }

    /// Applies pending migrations; safe to run from several replicas at once (sqlx takes a lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(self.dialect)
            .await?
            .run(&self.writer)
            .await?;
        self.normalise_email_domains().await?;
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL with its password, for opening further connections (the listener).
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// Resolves when an event has been committed through this handle.
    pub fn events_committed(&self) -> Arc<Notify> {
        self.events_committed.clone()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn sqlite_pragmas(synchronous: &str) -> String {
    let synchronous = if synchronous == "full" {
        "FULL"
    } else {
        "NORMAL"
    };
    format!(
        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = {synchronous};"
    )
}
