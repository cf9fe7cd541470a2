use serde::{Deserialize, Serialize};

use super::{Profile, TenantId, UnixMillis, UserId};

/// A user as the flows see it. The password hash stays inside the flows and the store;
/// everything that leaves the server goes through [`User::snapshot`].
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub tenant: TenantId,
    pub email: String,
    pub hashed_password: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_superuser: bool,
    pub roles: Vec<String>,
    /// Custom fields, already completed against the configured schema.
    pub profile: Profile,
    pub created_at: UnixMillis,
}

/// The public user object (API.md "User object"): what `/me` returns and what hooks receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSnapshot {
    pub id: String,
    pub email: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_superuser: bool,
    pub roles: Vec<String>,
    #[serde(flatten)]
    pub profile: Profile,
}

impl User {
    pub fn snapshot(&self) -> UserSnapshot {
        UserSnapshot {
            id: self.id.to_string(),
            email: self.email.clone(),
            is_active: self.is_active,
            is_verified: self.is_verified,
            is_superuser: self.is_superuser,
            roles: self.roles.clone(),
            profile: self.profile.clone(),
        }
    }
}
