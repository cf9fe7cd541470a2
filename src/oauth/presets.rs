//! What each provider kind knows in advance: endpoints, default scopes, and how its user
//! endpoint answers.

use serde_json::Value;

use super::{ProviderError, ProviderKind, client::ProviderClient};

pub(super) struct Preset {
    pub(super) issuer: Option<&'static str>,
    pub(super) authorize: Option<&'static str>,
    pub(super) token: Option<&'static str>,
    pub(super) userinfo: Option<&'static str>,
    pub(super) scopes: &'static [&'static str],
}

const OPENID_SCOPES: &[&str] = &["openid", "email", "profile"];

pub(super) fn preset(kind: ProviderKind) -> Preset {
    let none = Preset {
        issuer: None,
        authorize: None,
        token: None,
        userinfo: None,
        scopes: &[],
    };
    match kind {
        ProviderKind::Google => Preset {
            issuer: Some("https://accounts.google.com"),
            scopes: OPENID_SCOPES,
            ..none
        },
        ProviderKind::Gitlab => Preset {
            issuer: Some("https://gitlab.com"),
            scopes: OPENID_SCOPES,
            ..none
        },
        ProviderKind::Github => Preset {
            issuer: None,
            authorize: Some("https://github.com/login/oauth/authorize"),
            token: Some("https://github.com/login/oauth/access_token"),
            userinfo: Some("https://api.github.com/user"),
            scopes: &["read:user", "user:email"],
        },
        ProviderKind::Discord => Preset {
            issuer: None,
            authorize: Some("https://discord.com/oauth2/authorize"),
            token: Some("https://discord.com/api/oauth2/token"),
            userinfo: Some("https://discord.com/api/users/@me"),
            scopes: &["identify", "email"],
        },
        ProviderKind::Oidc => Preset {
            scopes: OPENID_SCOPES,
            ..none
        },
        ProviderKind::Oauth2 => none,
    }
}

/// What a provider said, before it is capped.
pub(super) struct RawInfo {
    pub(super) subject: String,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) name: Option<String>,
    pub(super) picture: Option<String>,
}

/// `email_verified` is a boolean, but some providers send the string "true".
pub(super) fn truthy(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true))) || value.and_then(Value::as_str) == Some("true")
}

fn text(answer: &Value, key: &str) -> Option<String> {
    answer.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An id as a string: providers send strings or numbers.
fn id(answer: &Value, key: &str) -> Option<String> {
    match answer.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// OpenID standard claims (`sub`, `email`, `email_verified`, `name`, `picture`).
pub(super) fn standard_claims(answer: &Value) -> Result<RawInfo, ProviderError> {
    Ok(RawInfo {
        subject: id(answer, "sub").ok_or(ProviderError::UserInfo("no sub".into()))?,
        email: text(answer, "email"),
        email_verified: truthy(answer.get("email_verified")),
        name: text(answer, "name"),
        picture: text(answer, "picture"),
    })
}

/// Who signed in, from a provider without id_tokens.
pub(super) async fn fetch_user(
    kind: ProviderKind,
    client: &ProviderClient,
    userinfo_url: &str,
    access_token: &str,
) -> Result<RawInfo, ProviderError> {
    let answer = client
        .get_json(userinfo_url, Some(access_token), "userinfo")
        .await?;
    match kind {
        ProviderKind::Github => {
            let subject = id(&answer, "id").ok_or(ProviderError::UserInfo("no id".into()))?;
            // The profile's email is public and unverified; the verified primary address is
            // only in the emails list, which the `user:email` scope opens. Without it the
            // profile's address is used, unverified (so it never links an account).
            let emails_url = format!("{}/emails", userinfo_url.trim_end_matches('/'));
            let verified = match client
                .get_json(&emails_url, Some(access_token), "emails")
                .await
            {
                Ok(Value::Array(entries)) => entries.iter().find_map(|e| {
                    let yes = |k: &str| e.get(k).and_then(Value::as_bool) == Some(true);
                    (yes("primary") && yes("verified"))
                        .then(|| text(e, "email"))
                        .flatten()
                }),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "GitHub emails lookup failed; the profile's \
                        address is used unverified");
                    None
                }
            };
            Ok(RawInfo {
                subject,
                email_verified: verified.is_some(),
                email: verified.or_else(|| text(&answer, "email")),
                name: text(&answer, "name").or_else(|| text(&answer, "login")),
                picture: text(&answer, "avatar_url"),
            })
        }
        ProviderKind::Discord => {
            let subject = id(&answer, "id").ok_or(ProviderError::UserInfo("no id".into()))?;
            // `avatar` is a hash on Discord's CDN.
            let picture = text(&answer, "avatar")
                .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(|h| format!("https://cdn.discordapp.com/avatars/{subject}/{h}.png"));
            Ok(RawInfo {
                email: text(&answer, "email"),
                email_verified: truthy(answer.get("verified")),
                name: text(&answer, "global_name").or_else(|| text(&answer, "username")),
                picture,
                subject,
            })
        }
        _ => standard_claims(&answer),
    }
}
