//! `hookauth import users --jsonl FILE`: users from any system, one JSON object per line
//! (README "Coming from fastapi-fullauth" documents the format):
//!
//! ```text
//! {"email": "ann@example.com", "password_hash": "$2b$12$...", "is_verified": true,
//!  "roles": ["editor"], "profile": {"display_name": "Ann"},
//!  "oauth_accounts": [{"provider": "github", "provider_user_id": "583231"}]}
//! {"role": "editor", "permissions": ["posts:write"]}
//! ```
//!
//! A line with `email` is a user, a line with `role` a role and its permissions. Blank lines and
//! lines starting with `#` are skipped. Unknown keys make a line unreadable (a typo must not
//! silently drop a flag), as does a line over 1 MiB; unreadable lines are reported with their
//! number and the rest still imports.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{SourceError, parse_utc_datetime};
use crate::flows::{ImportRecord, ImportSource, ImportTotp, ReportEntry};
use crate::store::ImportOauth;

/// Longest line read; longer ones are reported, not parsed.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserLine {
    email: String,
    id: Option<String>,
    password_hash: Option<String>,
    #[serde(default = "yes")]
    is_active: bool,
    #[serde(default)]
    is_verified: bool,
    #[serde(default)]
    is_superuser: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    profile: Map<String, Value>,
    #[serde(default)]
    oauth_accounts: Vec<OauthLine>,
    totp: Option<TotpLine>,
    /// Unix milliseconds, or `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]` in UTC.
    created_at: Option<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OauthLine {
    provider: String,
    provider_user_id: String,
    provider_email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpLine {
    /// Base32, as authenticator apps take it.
    secret: String,
    #[serde(default)]
    last_step: i64,
    /// SHA-256 hex digests of the unused recovery codes.
    #[serde(default)]
    recovery_code_sha256: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleLine {
    role: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// Reads `path` (`-` for standard input).
pub fn read(path: &str) -> Result<ImportSource, SourceError> {
    let file_error = |source| SourceError::File {
        path: path.to_owned(),
        source,
    };
    if path == "-" {
        parse(std::io::stdin().lock()).map_err(file_error)
    } else {
        let file = std::fs::File::open(path).map_err(file_error)?;
        parse(std::io::BufReader::new(file)).map_err(file_error)
    }
}

pub fn parse(mut input: impl BufRead) -> std::io::Result<ImportSource> {
    let mut source = ImportSource::default();
    let mut number = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        number += 1;
        let (read, complete) = read_capped(&mut input, &mut line)?;
        if read == 0 {
            break;
        }
        let origin = format!("line {number}");
        let unreadable = |reason: String| ReportEntry {
            origin: origin.clone(),
            email: String::new(),
            outcome: "skipped",
            reason,
        };
        if !complete {
            source
                .unreadable
                .push(unreadable(format!("longer than {MAX_LINE_BYTES} bytes")));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            source.unreadable.push(unreadable("not UTF-8".into()));
            continue;
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                source.unreadable.push(unreadable(format!("not JSON: {e}")));
                continue;
            }
        };
        if value.get("role").is_some() {
            match serde_json::from_value::<RoleLine>(value) {
                Ok(role) => {
                    source
                        .roles
                        .entry(role.role)
                        .or_default()
                        .extend(role.permissions);
                }
                Err(e) => source
                    .unreadable
                    .push(unreadable(format!("role line: {e}"))),
            }
            continue;
        }
        match serde_json::from_value::<UserLine>(value) {
            Ok(user) => source.users.push(record(origin.clone(), user)),
            Err(e) => source
                .unreadable
                .push(unreadable(format!("user line: {e}"))),
        }
    }
    Ok(source)
}

fn record(origin: String, user: UserLine) -> ImportRecord {
    let created_at = match &user.created_at {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => parse_utc_datetime(s),
        _ => None,
    };
    ImportRecord {
        origin,
        source_id: user.id,
        email: user.email,
        password_hash: user.password_hash,
        is_active: user.is_active,
        is_verified: user.is_verified,
        is_superuser: user.is_superuser,
        roles: user.roles,
        profile: user.profile,
        oauth: user
            .oauth_accounts
            .into_iter()
            .map(|o| ImportOauth {
                provider: o.provider,
                provider_user_id: o.provider_user_id,
                provider_email: o.provider_email,
            })
            .collect(),
        totp: user.totp.map(|t| ImportTotp {
            secret_base32: t.secret,
            last_step: t.last_step,
            recovery_digests: t.recovery_code_sha256,
        }),
        created_at,
    }
}

/// Reads one line into `buf`, at most [`MAX_LINE_BYTES`] of it (the rest is consumed and
/// dropped). Answers the bytes consumed and whether the line fit.
fn read_capped(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut fits = true;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, fits));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        if chunk.len() > room {
            fits = false;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        input.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, fits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_roles_and_bad_lines() {
        let input = concat!(
            "# exported 2026-12-07\n",
            "{\"email\": \"ann@example.com\", \"password_hash\": \"$2b$04$x\", \"roles\": [\"editor\"], \"created_at\": 1000}\n",
            "\n",
            "{\"role\": \"editor\", \"permissions\": [\"posts:write\"]}\n",
            "{\"email\": \"bob@example.com\", \"is_admin\": true}\n",
            "not json\n",
            "{\"email\": \"cy@example.com\", \"is_active\": false, \"created_at\": \"2000-01-01T00:00:00Z\"}",
        );
        let source = parse(input.as_bytes()).unwrap();
        assert_eq!(source.users.len(), 2);
        assert_eq!(source.users[0].email, "ann@example.com");
        assert!(source.users[0].is_active);
        assert_eq!(source.users[0].created_at, Some(1000));
        assert!(!source.users[1].is_active);
        assert_eq!(source.users[1].created_at, Some(946_684_800_000));
        assert_eq!(source.users[1].origin, "line 7");
        assert_eq!(source.roles["editor"].len(), 1);
        let reasons: Vec<_> = source
            .unreadable
            .iter()
            .map(|e| e.origin.as_str())
            .collect();
        assert_eq!(reasons, ["line 5", "line 6"]);
        assert!(source.unreadable[0].reason.contains("is_admin"));
    }

    #[test]
    fn an_overlong_line_is_reported_and_the_next_one_read() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{\"email\": \"ann@example.com\"}\n");
        let source = parse(&input[..]).unwrap();
        assert_eq!(source.unreadable.len(), 1);
        assert_eq!(source.users.len(), 1);
        assert_eq!(source.users[0].origin, "line 2");
    }
}
