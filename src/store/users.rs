use sqlx::AnyConnection;

use super::{Announce, Dialect, Store, StoreError, StoreResult};
use crate::domain::{Email, Profile, ProfileSchema, TenantId, UnixMillis, User, UserId};

/// Booleans are stored as 0/1 BIGINTs: the one representation sqlx's `Any` driver reads back
/// from both SQLite and PostgreSQL.
///
/// The user columns plus the user's role names, comma-joined (role names cannot hold commas).
/// A user row's columns (of `users u`), as [`UserRow`] reads them.
macro_rules! user_columns {
    () => {
        "u.id, u.tenant_id, u.email, u.hashed_password, \
         u.is_active, u.is_verified, u.is_superuser, u.profile, u.created_at, \
         (SELECT string_agg(r.role_name, ',' ORDER BY r.role_name) FROM user_roles r \
          WHERE r.user_id = u.id) AS roles"
    };
}
pub(super) const USER_COLUMNS: &str = user_columns!();
pub(super) const USER_SELECT: &str = concat!("SELECT ", user_columns!(), " FROM users u");

pub(super) struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    hashed_password: Option<String>,
    is_active: i64,
    is_verified: i64,
    is_superuser: i64,
    profile: String,
    created_at: i64,
    roles: Option<String>,
}
any_row!(UserRow {
    id,
    tenant_id,
    email,
    hashed_password,
    is_active,
    is_verified,
    is_superuser,
    profile,
    created_at,
    roles
});

impl UserRow {
    pub(super) fn into_user(self, schema: &ProfileSchema) -> StoreResult<User> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", self.id));
        let stored: Profile =
            serde_json::from_str(&self.profile).map_err(|_| corrupt("profile"))?;
        Ok(User {
            id: UserId::parse(&self.id).ok_or_else(|| corrupt("id"))?,
            tenant: TenantId::parse(&self.tenant_id).map_err(|_| corrupt("tenant"))?,
            email: self.email,
            hashed_password: self.hashed_password,
            is_active: self.is_active != 0,
            is_verified: self.is_verified != 0,
            is_superuser: self.is_superuser != 0,
            roles: self
                .roles
                .map(|r| r.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            profile: schema.complete(&stored),
            created_at: self.created_at,
        })
    }
}

pub struct NewUser {
    /// Chosen by the caller, so a flow can name the user (a session row, a gate's question)
    /// before the row exists.
    pub id: UserId,
    pub tenant: TenantId,
    pub email: String,
    pub hashed_password: Option<String>,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub profile: Profile,
    /// Existing roles to assign, in the same transaction (from before-register gates).
    pub roles: Vec<String>,
}

impl Store {
    pub async fn find_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "{USER_SELECT} WHERE u.tenant_id = $1 AND u.id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| r.into_user(&self.profile_schema)).transpose()
    }

    pub async fn find_user_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "{USER_SELECT} WHERE u.tenant_id = $1 AND u.email = $2"
        ))
        .bind(tenant.as_str())
        .bind(email)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| r.into_user(&self.profile_schema)).transpose()
    }

    /// The hot path of every authenticated request, in one round trip: the user, and whether
    /// the token's `jti` or its session family is on the blacklist.
    pub async fn find_session_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
        jti: &str,
        family_id: &str,
    ) -> StoreResult<Option<(User, bool)>> {
        struct Row {
            user: UserRow,
            revoked: i64,
        }
        any_row!(Row {
            user: flatten,
            revoked
        });
        let sql = format!(
            "SELECT s.*, (SELECT COUNT(*) FROM revocations v WHERE v.key IN ($3, $4)) AS revoked \
             FROM ({USER_SELECT} WHERE u.tenant_id = $1 AND u.id = $2) s"
        );
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(id.to_string())
            .bind(format!("jti:{jti}"))
            .bind(format!("family:{family_id}"))
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok((r.user.into_user(&self.profile_schema)?, r.revoked > 0)))
            .transpose()
    }

    /// Creates the user and the event `announce` builds from it (if any), atomically.
    /// A taken email is [`StoreError::Conflict`].
    pub async fn insert_user<'a>(
        &self,
        new: NewUser,
        announce: impl FnOnce(&User) -> Option<Announce<'a>>,
        now: UnixMillis,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await?;
        let user = insert_user_rows(&mut tx, &self.profile_schema, new, now).await?;
        self.commit_announcing(tx, announce(&user), now).await?;
        Ok(user)
    }

    /// Merges `changes` into the stored custom fields.
    pub async fn update_profile(
        &self,
        tenant: &TenantId,
        id: &UserId,
        changes: Profile,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin().await?;
        let current: Option<(String,)> =
            sqlx::query_as("SELECT profile FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((current,)) = current else {
            return Ok(None);
        };
        let mut profile: Profile = serde_json::from_str(&current)
            .map_err(|_| StoreError::Corrupt(format!("user {id}: profile")))?;
        profile.extend(changes);
        sqlx::query("UPDATE users SET profile = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(serde_json::Value::Object(profile).to_string())
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.find_user_on_writer(tenant, id).await
    }

    /// Deletes the user; refresh tokens, one-time tokens and role links go with it.
    pub async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a hash whose parameters are outdated; only if it is still the one we verified.
    pub async fn upgrade_password_hash(
        &self,
        tenant: &TenantId,
        id: &UserId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET hashed_password = $1 \
             WHERE tenant_id = $2 AND id = $3 AND hashed_password = $4",
        )
        .bind(new_hash)
        .bind(tenant.as_str())
        .bind(id.to_string())
        .bind(old_hash)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Brings addresses stored before domains were normalised to IDNA ASCII form (by
    /// [`Email::parse`]) to that form, so `user@bücher.de` stored then is found when typed either
    /// way now. Runs at every start after the migrations; it reads only rows holding non-ASCII
    /// characters, and is idempotent, so replicas starting together do no harm.
    ///
    /// A row whose new form is already taken in its tenant (both forms were registered as two
    /// accounts) is left exactly as it is, with a warning naming both accounts for an operator
    /// to merge or delete: neither account nor its data is lost, and login by address reaches
    /// the account already in ASCII form. Returns how many rows were changed.
    pub async fn normalise_email_domains(&self) -> StoreResult<u64> {
        // Byte length differs from character length exactly when the text is not ASCII.
        let non_ascii = match self.dialect {
            Dialect::Sqlite => "length(CAST(email AS BLOB)) <> length(email)",
            Dialect::Postgres => "octet_length(email) <> char_length(email)",
        };
        let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT id, tenant_id, email FROM users WHERE {non_ascii} ORDER BY created_at, id"
        ))
        .fetch_all(&self.writer)
        .await?;
        let mut changed = 0;
        for (id, tenant, email) in rows {
            let Ok(normal) = Email::parse(&email) else {
                tracing::warn!(user = %id, tenant = %tenant, "stored email address is not \
                    valid under the current rules; left unchanged");
                continue;
            };
            if normal.as_str() == email {
                continue; // non-ASCII only in the local part, which is kept as typed
            }
            let taken: Option<(String,)> =
                sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND email = $2")
                    .bind(&tenant)
                    .bind(normal.as_str())
                    .fetch_optional(&self.writer)
                    .await?;
            if let Some((other,)) = taken {
                tracing::warn!(user = %id, other_user = %other, tenant = %tenant,
                    "two accounts have the same email address once its domain is normalised; \
                     left unchanged: merge or delete one of them");
                continue;
            }
            let done = sqlx::query("UPDATE users SET email = $1 WHERE id = $2 AND email = $3")
                .bind(normal.as_str())
                .bind(&id)
                .bind(&email)
                .execute(&self.writer)
                .await;
            match done {
                Ok(done) => changed += done.rows_affected(),
                // Another replica got there first (or registered the ASCII form meanwhile).
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if changed > 0 {
            tracing::info!(changed, "email domains normalised to IDNA ASCII form");
        }
        Ok(changed)
    }

    /// Reads through the writer so a caller sees its own just-committed change even on SQLite,
    /// where readers are separate connections.
    pub(super) async fn find_user_on_writer(
        &self,
        tenant: &TenantId,
        id: &UserId,
    ) -> StoreResult<Option<User>> {
        let mut conn = self.writer.acquire().await?;
        find_user_in(&mut conn, &self.profile_schema, tenant, id).await
    }
}

/// The user's row and role links, inside the caller's transaction. A taken email is
/// [`StoreError::Conflict`].
pub(super) async fn insert_user_rows(
    conn: &mut AnyConnection,
    schema: &ProfileSchema,
    new: NewUser,
    now: UnixMillis,
) -> StoreResult<User> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, hashed_password, is_active, is_verified, \
         is_superuser, profile, created_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8)",
    )
    .bind(new.id.to_string())
    .bind(new.tenant.as_str())
    .bind(&new.email)
    .bind(new.hashed_password.clone())
    .bind(i64::from(new.is_verified))
    .bind(i64::from(new.is_superuser))
    .bind(serde_json::Value::Object(new.profile.clone()).to_string())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_insert)?;
    for role in &new.roles {
        sqlx::query(
            "INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(new.id.to_string())
        .bind(new.tenant.as_str())
        .bind(role)
        .execute(&mut *conn)
        .await?;
    }
    Ok(User {
        id: new.id,
        tenant: new.tenant,
        email: new.email,
        hashed_password: new.hashed_password,
        is_active: true,
        is_verified: new.is_verified,
        is_superuser: new.is_superuser,
        roles: new.roles,
        profile: schema.complete(&new.profile),
        created_at: now,
    })
}

pub(super) async fn find_user_in(
    conn: &mut AnyConnection,
    schema: &ProfileSchema,
    tenant: &TenantId,
    id: &UserId,
) -> StoreResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "{USER_SELECT} WHERE u.tenant_id = $1 AND u.id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.into_user(schema)).transpose()
}
