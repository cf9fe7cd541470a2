use serde_json::{Map, Value};

use super::attempts::Attempt;
use super::{FlowError, Flows, Session};
use crate::config::RESERVED_USER_FIELDS;
use crate::domain::{Password, ProfileError, User};

#[derive(Debug)]
pub enum ProfileUpdateError {
    Flow(FlowError),
    /// A declared field with a value of the wrong type.
    Invalid(Vec<ProfileError>),
}

impl From<FlowError> for ProfileUpdateError {
    fn from(e: FlowError) -> Self {
        ProfileUpdateError::Flow(e)
    }
}

/// PATCH /me: protected fields are dropped silently, undeclared ones are refused by name, and
/// declared ones are type-checked before anything is stored.
pub async fn update_profile(
    flows: &Flows,
    session: &Session,
    body: Map<String, Value>,
) -> Result<User, ProfileUpdateError> {
    let body: Map<String, Value> = body
        .into_iter()
        .filter(|(k, _)| !RESERVED_USER_FIELDS.contains(&k.as_str()))
        .collect();
    if body.is_empty() {
        return Err(FlowError::NoValidFields.into());
    }
    let schema = &flows.settings.profile_schema;
    let mut unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !schema.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(FlowError::UnknownFields(unknown.join(", ")).into());
    }
    let changes = schema.extract(&body).map_err(ProfileUpdateError::Invalid)?;
    flows
        .store
        .update_profile(&session.user.tenant, &session.user.id, changes)
        .await
        .map_err(FlowError::from)?
        .ok_or(ProfileUpdateError::Flow(FlowError::InvalidCredentials))
}

/// DELETE /me: needs the current password (checked under the lockout), or a session that
/// proved it recently.
pub async fn delete_account(
    flows: &Flows,
    session: &Session,
    current_password: Option<Password>,
) -> Result<(), FlowError> {
    match current_password.filter(|p| !p.is_empty()) {
        Some(password) => {
            let user = &session.user;
            // Under the account's lockout, like a login: no guessing around it from a session.
            let verified = match user.hashed_password.clone() {
                Some(hash) => {
                    flows
                        .guarded_verify(&user.tenant, &user.email, password, hash)
                        .await?
                }
                None => Attempt::Mismatch,
            };
            if !matches!(verified, Attempt::Match) {
                return Err(FlowError::CurrentPasswordRejected);
            }
        }
        None => {
            if session.auth_age_secs(flows.clock.now_secs()) > flows.settings.reauth_max_age_secs {
                return Err(FlowError::ReauthenticationRequired);
            }
        }
    }
    flows
        .store
        .delete_user(&session.user.tenant, &session.user.id)
        .await?;
    Ok(())
}
