//! Importing users from another system (`hookauth import fullauth`, `hookauth import users`):
//! the readers (`crate::import`) turn a source into [`ImportSource`]; this flow validates and
//! normalises every record, keeps password hashes it can verify, seals imported TOTP secrets,
//! and stores the users in batches (one transaction each). Nothing that exists is changed, so
//! a second run imports only what is new, and a dry run reports the same without writing.
//!
//! No event fires: an import is not a registration, and hooks must not greet a whole user
//! base again.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{FlowError, Flows};
use crate::crypto::totp::TotpSecret;
use crate::domain::{Email, FieldType, Profile, RoleName, TenantId, UnixMillis, UserId};
use crate::store::{ImportMfa, ImportOauth, ImportUser, Imported};

/// Users per transaction: a failure loses at most one batch (the report says which), and
/// SQLite's single writer is not held for the whole import.
const BATCH: usize = 500;

/// A user as a source describes it.
#[derive(Debug, Default)]
pub struct ImportRecord {
    /// Where the report points for this record (a line number, a source id).
    pub origin: String,
    /// The source's id; kept when it is a UUID no other user has.
    pub source_id: Option<String>,
    pub email: String,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_superuser: bool,
    pub roles: Vec<String>,
    /// Candidate profile fields; those the server does not declare are reported, not stored.
    pub profile: Map<String, Value>,
    pub oauth: Vec<ImportOauth>,
    pub totp: Option<ImportTotp>,
    pub created_at: Option<UnixMillis>,
}

/// A confirmed TOTP factor from the source.
pub struct ImportTotp {
    pub secret_base32: String,
    pub last_step: i64,
    /// SHA-256 hex digests of the recovery codes (fastapi-fullauth's format, and ours).
    pub recovery_digests: Vec<String>,
}

impl std::fmt::Debug for ImportTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportTotp(<secret>)")
    }
}

/// Everything one import brings.
#[derive(Debug, Default)]
pub struct ImportSource {
    /// Roles and their permissions (also roles nobody holds).
    pub roles: BTreeMap<String, BTreeSet<String>>,
    pub users: Vec<ImportRecord>,
    /// Records the reader could not use at all, with why (a malformed line, say).
    pub unreadable: Vec<ReportEntry>,
}

/// A validated user waiting for its batch, with what the report will say about it.
struct Pending {
    user: ImportUser,
    note: Note,
}

struct Note {
    origin: String,
    email: String,
    remarks: Vec<String>,
    without_password: bool,
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub tenant: String,
    pub dry_run: bool,
    pub imported: usize,
    pub skipped: usize,
    pub roles: usize,
    /// Imported without a usable password: they sign in after a reset (or with OAuth).
    pub need_password_reset: usize,
    /// Source fields that are not profile fields of this server, and were left out.
    pub ignored_fields: Vec<String>,
    /// One entry per user that was skipped or imported with a remark.
    pub entries: Vec<ReportEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportEntry {
    pub origin: String,
    pub email: String,
    /// `imported` or `skipped`.
    pub outcome: &'static str,
    pub reason: String,
}

pub async fn import_users(
    flows: &Flows,
    tenant: &TenantId,
    source: ImportSource,
    dry_run: bool,
) -> Result<ImportReport, FlowError> {
    if !flows.store.tenant_exists(tenant).await? {
        return Err(FlowError::NotFound("Tenant not found"));
    }
    let now = flows.clock.now_millis();
    let mut report = ImportReport {
        tenant: tenant.as_str().to_owned(),
        dry_run,
        imported: 0,
        skipped: source.unreadable.len(),
        roles: 0,
        need_password_reset: 0,
        ignored_fields: Vec::new(),
        entries: source.unreadable,
    };
    let mut roles: Vec<(String, Vec<String>)> = Vec::new();
    for (role, permissions) in &source.roles {
        let Ok(role) = RoleName::parse(role) else {
            report.entries.push(ReportEntry {
                origin: "roles".into(),
                email: String::new(),
                outcome: "skipped",
                reason: format!("role {role:?} is not a valid role name"),
            });
            continue;
        };
        let permissions = permissions
            .iter()
            .filter(|p| RoleName::parse(p).is_ok())
            .cloned()
            .collect();
        roles.push((role.as_str().to_owned(), permissions));
    }
    report.roles = roles.len();

    let mut seen = HashSet::new();
    let mut ignored = BTreeSet::new();
    let mut batch: Vec<Pending> = Vec::new();
    let mut first_batch = true;
    for record in source.users {
        let origin = record.origin.clone();
        let raw_email = record.email.clone();
        match prepare(flows, tenant, record, &mut seen, &mut ignored, now).await? {
            Ok((user, remarks)) => batch.push(Pending {
                note: Note {
                    origin,
                    email: user.email.clone(),
                    remarks,
                    without_password: user.hashed_password.is_none(),
                },
                user,
            }),
            Err(reason) => {
                report.skipped += 1;
                report.entries.push(ReportEntry {
                    origin,
                    email: raw_email,
                    outcome: "skipped",
                    reason,
                });
            }
        }
        if batch.len() >= BATCH {
            let roles = if first_batch { &roles[..] } else { &[] };
            store_batch(flows, tenant, roles, &mut batch, dry_run, now, &mut report).await?;
            first_batch = false;
        }
    }
    let roles = if first_batch { &roles[..] } else { &[] };
    store_batch(flows, tenant, roles, &mut batch, dry_run, now, &mut report).await?;
    report.ignored_fields = ignored.into_iter().collect();
    Ok(report)
}

async fn store_batch(
    flows: &Flows,
    tenant: &TenantId,
    roles: &[(String, Vec<String>)],
    batch: &mut Vec<Pending>,
    dry_run: bool,
    now: UnixMillis,
    report: &mut ImportReport,
) -> Result<(), FlowError> {
    let (users, notes): (Vec<ImportUser>, Vec<Note>) =
        batch.drain(..).map(|p| (p.user, p.note)).unzip();
    if users.is_empty() && roles.is_empty() {
        return Ok(());
    }
    let outcomes = flows
        .store
        .import_batch(tenant, roles, users, dry_run, now)
        .await?;
    for (outcome, note) in outcomes.into_iter().zip(notes) {
        match outcome {
            Imported::Created { .. } => {
                report.imported += 1;
                if note.without_password {
                    report.need_password_reset += 1;
                }
                if !note.remarks.is_empty() {
                    report.entries.push(ReportEntry {
                        origin: note.origin,
                        email: note.email,
                        outcome: "imported",
                        reason: note.remarks.join("; "),
                    });
                }
            }
            Imported::Exists => {
                report.skipped += 1;
                report.entries.push(ReportEntry {
                    origin: note.origin,
                    email: note.email,
                    outcome: "skipped",
                    reason: "a user with this email already exists in the tenant".into(),
                });
            }
        }
    }
    Ok(())
}

/// Validates one record: the user to store and remarks for the report, or why it is skipped.
async fn prepare(
    flows: &Flows,
    tenant: &TenantId,
    record: ImportRecord,
    seen: &mut HashSet<String>,
    ignored: &mut BTreeSet<String>,
    now: UnixMillis,
) -> Result<Result<(ImportUser, Vec<String>), String>, FlowError> {
    let email = match Email::parse(&record.email) {
        Ok(email) => email.as_str().to_owned(),
        Err(why) => return Ok(Err(format!("invalid email: {why}"))),
    };
    if !seen.insert(email.clone()) {
        return Ok(Err("the same email appears earlier in the source".into()));
    }
    let mut remarks = Vec::new();
    let hashed_password = match record.password_hash.filter(|h| !h.is_empty()) {
        None => None,
        Some(hash) => match flows.hasher.classify(&hash) {
            Ok(_) => Some(hash),
            Err(why) => {
                remarks.push(format!(
                    "password hash not usable ({why}): imported without a password, the user \
                     must reset it"
                ));
                None
            }
        },
    };
    let mut roles = Vec::new();
    for role in record.roles {
        match RoleName::parse(&role) {
            Ok(role) => roles.push(role.as_str().to_owned()),
            Err(_) => remarks.push(format!("role {role:?} left out: not a valid role name")),
        }
    }
    let profile = profile(flows, record.profile, ignored, &mut remarks);
    let mut id = record
        .source_id
        .as_deref()
        .and_then(UserId::parse)
        .unwrap_or_default();
    if flows.store.user_id_taken(&id).await? {
        remarks.push("its id is used by another user: given a new id".into());
        id = UserId::new();
    }
    let mfa = match record.totp {
        None => None,
        Some(totp) => match TotpSecret::from_base32(&totp.secret_base32) {
            Some(secret) => Some(ImportMfa {
                sealed_secret: flows.seal_totp_for(tenant, &id, &secret)?,
                last_step: totp.last_step,
                recovery_digests: totp
                    .recovery_digests
                    .into_iter()
                    .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
            }),
            None => {
                remarks.push("TOTP secret unreadable: imported without a second factor".into());
                None
            }
        },
    };
    Ok(Ok((
        ImportUser {
            id,
            email,
            hashed_password,
            is_active: record.is_active,
            is_verified: record.is_verified,
            is_superuser: record.is_superuser,
            roles,
            profile,
            oauth: record.oauth,
            mfa,
            created_at: record.created_at.unwrap_or(now),
        },
        remarks,
    )))
}

/// The declared profile fields, coerced from text where the source had no types (SQL columns
/// read as text); undeclared fields are collected for the report.
fn profile(
    flows: &Flows,
    fields: Map<String, Value>,
    ignored: &mut BTreeSet<String>,
    remarks: &mut Vec<String>,
) -> Profile {
    let schema = &flows.settings.profile_schema;
    let mut profile = Profile::new();
    for (name, value) in fields {
        let Some(ty) = schema.field_type(&name) else {
            ignored.insert(name);
            continue;
        };
        if value.is_null() {
            continue;
        }
        let value = coerce(ty, value);
        if ty.accepts(&value) {
            profile.insert(name, value);
        } else {
            remarks.push(format!("profile field {name} left out: not a {ty:?}"));
        }
    }
    profile
}

fn coerce(ty: FieldType, value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    let text = text.trim();
    let parsed = match ty {
        FieldType::String => None,
        FieldType::Integer => text.parse::<i64>().ok().map(Value::from),
        FieldType::Number => text.parse::<f64>().ok().map(Value::from),
        FieldType::Boolean => match text {
            "1" | "true" | "t" => Some(Value::Bool(true)),
            "0" | "false" | "f" => Some(Value::Bool(false)),
            _ => None,
        },
    };
    parsed.unwrap_or(value)
}
