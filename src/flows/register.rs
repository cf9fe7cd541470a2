use super::{FlowError, Flows};
use crate::domain::{
    Email, EventPayload, GateQuestion, Password, PasswordReason, PasswordSubject, Profile,
    RequestContext, TenantId, User, UserId,
};
use crate::store::{Announce, NewUser, StoreError};

pub struct RegisterInput {
    pub email: Email,
    pub password: Password,
    pub profile: Profile,
}

pub enum RegisterOutcome {
    /// Enumeration protection off: the new user.
    Created(User),
    /// Enumeration protection on: the same answer whether or not an account was created.
    Accepted,
}

/// Creates an active, unverified, non-superuser account and records `after_register`.
/// The password is hashed before the duplicate check, so both paths take the same time.
/// Gates (before-register, then check-password) are asked before anything else, so a deny
/// creates nothing and says nothing about whether the email exists.
pub async fn register(
    flows: &Flows,
    tenant: &TenantId,
    input: RegisterInput,
    ctx: &RequestContext,
) -> Result<RegisterOutcome, FlowError> {
    flows
        .settings
        .password_policy
        .check(&input.password, Some(input.email.as_str()))
        .map_err(FlowError::PasswordPolicy)?;
    let email = input.email.as_str().to_owned();
    let verdict = flows
        .ask_gates(
            tenant,
            GateQuestion::BeforeRegister {
                email: email.clone(),
                profile: input.profile.clone(),
            },
            ctx,
        )
        .await?;
    flows
        .ask_gates(
            tenant,
            GateQuestion::CheckPassword {
                subject: PasswordSubject::Email(email.clone()),
                password: input.password.clone(),
                why: PasswordReason::Register,
            },
            ctx,
        )
        .await?;
    let mut profile = input.profile;
    profile.extend(verdict.profile);
    let hashed = flows.hash_password(input.password).await?;
    let new = NewUser {
        id: UserId::new(),
        tenant: tenant.clone(),
        email,
        hashed_password: Some(hashed),
        is_superuser: false,
        is_verified: false,
        profile,
        roles: verdict.roles,
    };
    let hide = flows.settings.prevent_registration_enumeration;
    match flows
        .store
        .insert_user(
            new,
            |user| {
                let payload = EventPayload::AfterRegister {
                    user: user.snapshot(),
                };
                Some(Announce::about(user, payload, ctx))
            },
            flows.clock.now_millis(),
        )
        .await
    {
        Ok(_) if hide => Ok(RegisterOutcome::Accepted),
        Ok(user) => Ok(RegisterOutcome::Created(user)),
        Err(StoreError::Conflict) if hide => Ok(RegisterOutcome::Accepted),
        Err(StoreError::Conflict) => Err(FlowError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Creates a superuser from the command line: verified, no event (as the library does for its
/// startup superuser).
pub async fn create_superuser(
    flows: &Flows,
    tenant: &TenantId,
    email: Email,
    password: Password,
) -> Result<User, FlowError> {
    flows
        .settings
        .password_policy
        .check(&password, Some(email.as_str()))
        .map_err(FlowError::PasswordPolicy)?;
    let hashed = flows.hash_password(password).await?;
    let new = NewUser {
        id: UserId::new(),
        tenant: tenant.clone(),
        email: email.as_str().to_owned(),
        hashed_password: Some(hashed),
        is_superuser: true,
        is_verified: true,
        profile: Profile::new(),
        roles: Vec::new(),
    };
    match flows
        .store
        .insert_user(new, |_| None, flows.clock.now_millis())
        .await
    {
        Err(StoreError::Conflict) => Err(FlowError::EmailTaken),
        other => Ok(other?),
    }
}
