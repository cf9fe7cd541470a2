//! Signing in with an OAuth2 / OpenID Connect provider: what a provider says about a person,
//! and a provider account linked to a user.

use serde::{Deserialize, Serialize};

/// What a provider said about the person signing in (WIT `oauth-user-info`). Built by the
/// provider client from a verified id_token or the userinfo answer, with every field capped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthUserInfo {
    /// The provider's name as configured (`google`, `github`, ...).
    pub provider: String,
    /// The provider's stable id for the account (`sub`, GitHub's numeric `id`).
    pub subject: String,
    pub email: Option<String>,
    /// True only when the provider says it checked the address.
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// A provider account linked to a user (`GET /oauth/accounts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OauthAccount {
    pub provider: String,
    pub provider_user_id: String,
    pub provider_email: Option<String>,
}

impl OauthAccount {
    pub fn of(info: &OauthUserInfo) -> Self {
        Self {
            provider: info.provider.clone(),
            provider_user_id: info.subject.clone(),
            provider_email: info.email.clone(),
        }
    }
}
