//! Reads a fastapi-fullauth database (its SQLAlchemy/SQLModel tables `fullauth_*`, on SQLite
//! or PostgreSQL): users with their flags, hashes and custom columns (profile fields), roles
//! and permissions, OAuth account links and confirmed TOTP factors. The tables, types and
//! statements are in `tests/fixtures/fullauth/SCHEMA.md`; every column is selected as TEXT or
//! BIGINT because sqlx's `Any` driver reads nothing else from both databases.
//!
//! The source is opened read-only (SQLite `mode=ro`; on PostgreSQL only SELECTs are sent).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Row};

use super::{SourceError, parse_utc_datetime};
use crate::flows::{ImportRecord, ImportSource, ImportTotp};
use crate::store::ImportOauth;

/// The columns fastapi-fullauth's `UserMixin` defines; any other column of `fullauth_users` is
/// one of the app's profile fields.
const CORE_COLUMNS: [&str; 7] = [
    "id",
    "email",
    "hashed_password",
    "is_active",
    "is_verified",
    "is_superuser",
    "created_at",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A boolean column as 0/1 (PostgreSQL has no direct boolean-to-bigint cast).
    fn flag(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("CAST({column} AS BIGINT)"),
            Backend::Postgres => format!("CAST(CAST({column} AS INTEGER) AS BIGINT)"),
        }
    }

    /// A timestamp as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (SQLite stores exactly that text).
    fn time(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("CAST({column} AS TEXT)"),
            Backend::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            }
        }
    }
}

/// Accepts our URLs (`sqlite://PATH`, `postgres://...`) and SQLAlchemy's driver-qualified ones
/// (`postgresql+asyncpg://...`, `sqlite+aiosqlite://...`).
fn normalise_url(url: &str) -> Result<(Backend, String), SourceError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        SourceError::NotFullauth("the URL needs a scheme such as sqlite://".into())
    })?;
    let scheme = scheme.split('+').next().unwrap_or(scheme);
    match scheme {
        "sqlite" => {
            let path = rest.split('?').next().unwrap_or(rest);
            Ok((Backend::Sqlite, format!("sqlite://{path}?mode=ro")))
        }
        "postgres" | "postgresql" => Ok((Backend::Postgres, format!("postgres://{rest}"))),
        other => Err(SourceError::NotFullauth(format!(
            "unsupported database scheme {other:?}: use sqlite:// or postgres://"
        ))),
    }
}

/// Everything the import needs from the database at `url`.
pub async fn read(url: &str) -> Result<ImportSource, SourceError> {
    sqlx::any::install_default_drivers();
    let (backend, url) = normalise_url(url)?;
    let options = AnyConnectOptions::from_str(&url)
        .map_err(SourceError::Connect)?
        .disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(SourceError::Connect)?;
    let result = read_from(&pool, backend).await;
    pool.close().await;
    result
}

async fn read_from(pool: &AnyPool, backend: Backend) -> Result<ImportSource, SourceError> {
    let tables = tables(pool, backend).await?;
    if !tables.contains("fullauth_users") {
        return Err(SourceError::NotFullauth(
            "it has no fullauth_users table".into(),
        ));
    }
    let columns = user_columns(pool, backend).await?;
    for core in CORE_COLUMNS {
        if !columns.iter().any(|c| c == core) {
            return Err(SourceError::NotFullauth(format!(
                "fullauth_users has no {core} column"
            )));
        }
    }
    let custom: Vec<&String> = columns
        .iter()
        .filter(|c| !CORE_COLUMNS.contains(&c.as_str()))
        .collect();

    let mut source = ImportSource::default();
    let has = |t: &str| tables.contains(t);
    if has("fullauth_roles") {
        for row in sqlx::query("SELECT name FROM fullauth_roles ORDER BY name")
            .fetch_all(pool)
            .await?
        {
            source.roles.entry(row.try_get(0)?).or_default();
        }
    }
    if has("fullauth_roles") && has("fullauth_permissions") && has("fullauth_role_permissions") {
        for row in sqlx::query(
            "SELECT r.name, p.name FROM fullauth_role_permissions rp \
             JOIN fullauth_roles r ON r.id = rp.role_id \
             JOIN fullauth_permissions p ON p.id = rp.permission_id ORDER BY r.name, p.name",
        )
        .fetch_all(pool)
        .await?
        {
            let (role, permission): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            source.roles.entry(role).or_default().insert(permission);
        }
    }
    let mut roles_of: HashMap<String, Vec<String>> = HashMap::new();
    if has("fullauth_roles") && has("fullauth_user_roles") {
        for row in sqlx::query(
            "SELECT CAST(ur.user_id AS TEXT), r.name FROM fullauth_user_roles ur \
             JOIN fullauth_roles r ON r.id = ur.role_id ORDER BY r.name",
        )
        .fetch_all(pool)
        .await?
        {
            let user: String = row.try_get(0)?;
            roles_of.entry(user).or_default().push(row.try_get(1)?);
        }
    }
    let mut oauth_of: HashMap<String, Vec<ImportOauth>> = HashMap::new();
    if has("fullauth_oauth_accounts") {
        // Provider tokens are not imported: nothing here needs them, and they are secrets.
        for row in sqlx::query(
            "SELECT CAST(user_id AS TEXT), provider, provider_user_id, provider_email \
             FROM fullauth_oauth_accounts ORDER BY provider, provider_user_id",
        )
        .fetch_all(pool)
        .await?
        {
            let user: String = row.try_get(0)?;
            oauth_of.entry(user).or_default().push(ImportOauth {
                provider: row.try_get(1)?,
                provider_user_id: row.try_get(2)?,
                provider_email: row.try_get(3)?,
            });
        }
    }
    let mut totp_of: HashMap<String, ImportTotp> = HashMap::new();
    if has("fullauth_mfa") {
        // Only live factors: an unconfirmed enrolment never gated a sign-in there either.
        for row in sqlx::query(
            "SELECT CAST(user_id AS TEXT), secret, CAST(last_counter AS BIGINT), recovery_codes \
             FROM fullauth_mfa WHERE confirmed_at IS NOT NULL",
        )
        .fetch_all(pool)
        .await?
        {
            let user: String = row.try_get(0)?;
            let codes: Option<String> = row.try_get(3)?;
            totp_of.insert(
                user,
                ImportTotp {
                    secret_base32: row.try_get(1)?,
                    last_step: row.try_get(2)?,
                    recovery_digests: codes
                        .unwrap_or_default()
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
            );
        }
    }

    let custom_select: String = custom
        .iter()
        .map(|c| format!(", CAST({} AS TEXT)", quote(c)))
        .collect();
    let sql = format!(
        "SELECT CAST(id AS TEXT), email, hashed_password, {}, {}, {}, {}{custom_select} \
         FROM fullauth_users ORDER BY created_at, id",
        backend.flag("is_active"),
        backend.flag("is_verified"),
        backend.flag("is_superuser"),
        backend.time("created_at"),
    );
    for row in sqlx::query(&sql).fetch_all(pool).await? {
        let id: String = row.try_get(0)?;
        let created: Option<String> = row.try_get(6)?;
        let mut profile = Map::new();
        for (i, name) in custom.iter().enumerate() {
            let value: Option<String> = row.try_get(7 + i)?;
            profile.insert((*name).clone(), value.map_or(Value::Null, Value::String));
        }
        source.users.push(ImportRecord {
            origin: format!("fullauth_users id {id}"),
            email: row.try_get(1)?,
            password_hash: row.try_get(2)?,
            is_active: row.try_get::<i64, _>(3)? != 0,
            is_verified: row.try_get::<i64, _>(4)? != 0,
            is_superuser: row.try_get::<i64, _>(5)? != 0,
            roles: roles_of.remove(&id).unwrap_or_default(),
            profile,
            oauth: oauth_of.remove(&id).unwrap_or_default(),
            totp: totp_of.remove(&id),
            created_at: created.as_deref().and_then(parse_utc_datetime),
            source_id: Some(id),
        });
    }
    Ok(source)
}

/// The `fullauth_*` tables present.
async fn tables(pool: &AnyPool, backend: Backend) -> Result<BTreeSet<String>, SourceError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
    };
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(SourceError::from))
        .filter(|name| name.as_ref().map_or(true, |n| n.starts_with("fullauth_")))
        .collect()
}

/// `fullauth_users`' columns in table order.
async fn user_columns(pool: &AnyPool, backend: Backend) -> Result<Vec<String>, SourceError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name FROM pragma_table_info('fullauth_users') ORDER BY cid",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'fullauth_users' \
             ORDER BY ordinal_position"
        }
    };
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(SourceError::from))
        .collect()
}

/// A column name from the catalogue as an SQL identifier (doubling any quote in it).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_both_styles_are_understood() {
        let (b, url) = normalise_url("sqlite+aiosqlite:///tmp/peer.db").unwrap();
        assert!(b == Backend::Sqlite && url == "sqlite:///tmp/peer.db?mode=ro");
        let (b, url) = normalise_url("postgresql+asyncpg://u@h:5432/db").unwrap();
        assert!(b == Backend::Postgres && url == "postgres://u@h:5432/db");
        assert!(normalise_url("mysql://x").is_err());
        assert!(normalise_url("nothing").is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("display_name"), "\"display_name\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
