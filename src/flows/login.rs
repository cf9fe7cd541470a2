use super::{FlowError, Flows, TokenPair};
use crate::crypto::Verification;
use crate::domain::{
    Email, EventPayload, FamilyId, Grant, Password, RequestContext, TenantId, User,
};
use crate::store::Announce;

/// How a correct password ends.
pub enum LoginOutcome {
    SignedIn(TokenPair, User),
    /// The account has a second factor: this short-lived, single-use token buys only the
    /// right to submit a code at `/mfa/verify`.
    MfaRequired {
        mfa_token: String,
    },
}

pub struct LoginInput {
    /// As typed: login takes any string and only normalises it for lookup.
    pub email: String,
    pub password: Password,
}

/// Password login. Every refusal is the same credentials error and costs one argon2
/// verification, whether the email exists or not. Each attempt is reserved against the email's
/// lockout before the password is verified (see `store::lockout`); a correct password clears
/// the count, a wrong one (or an unknown email) keeps it.
pub async fn login(
    flows: &Flows,
    tenant: &TenantId,
    input: LoginInput,
    ctx: &RequestContext,
) -> Result<LoginOutcome, FlowError> {
    let key = Email::normalise_lookup_key(&input.email);

    if !could_be_stored(&key) {
        // No such account can exist, and the database would refuse the key (NUL bytes,
        // index size limits).
        flows.verify_dummy(input.password).await?;
        return Err(FlowError::InvalidCredentials);
    }
    // Reserved before anything is verified, so parallel guesses cannot all reach the hash.
    if !flows.reserve_attempt(tenant, &key).await? {
        // Locked: the same answer and cost as a wrong password, and nothing recorded, so
        // guessing during a lock does not extend it.
        flows.verify_dummy(input.password).await?;
        return Err(FlowError::InvalidCredentials);
    }
    if flows
        .settings
        .password_policy
        .too_long_to_hash(&input.password)
    {
        flows.record_failure(tenant, &key).await?;
        return Err(FlowError::InvalidCredentials);
    }
    let user = flows.store.find_user_by_email(tenant, &key).await?;
    let Some((user, stored_hash)) = user.and_then(|u| u.hashed_password.clone().map(|h| (u, h)))
    else {
        flows.verify_dummy(input.password).await?;
        flows.record_failure(tenant, &key).await?;
        return Err(FlowError::InvalidCredentials);
    };
    let verification = flows
        .verify_password(input.password.clone(), stored_hash.clone())
        .await?;
    let Verification::Match { outdated } = verification else {
        flows.record_failure(tenant, &key).await?;
        return Err(FlowError::InvalidCredentials);
    };
    if !user.is_active {
        // The password is proven, so the reservation is released; an active account's count
        // goes in the same transaction as its new session (`start_session`).
        flows.clear_attempts(tenant, &key).await?;
        return Err(FlowError::InvalidCredentials);
    }
    if outdated {
        upgrade_hash_later(flows, &user, stored_hash, input.password);
    }
    if flows.mfa_enabled_for(&user).await? {
        // The password is proven, so its count is cleared; the codes count on their own key
        // (see `mfa`), which a correct password never clears.
        flows.clear_attempts(tenant, &key).await?;
        let mfa_token = flows.issue_mfa_token(&user).await?;
        return Ok(LoginOutcome::MfaRequired { mfa_token });
    }
    let (pair, user) = finish_sign_in(flows, user, &key, ctx).await?;
    Ok(LoginOutcome::SignedIn(pair, user))
}

/// The end of every password sign-in (with or without a second factor): the gates decide
/// about the proven, active account, then the session starts with `after_login`. A deny ends
/// the attempt like a success would (the reservation under `key` is released) but starts no
/// session.
pub(super) async fn finish_sign_in(
    flows: &Flows,
    user: User,
    key: &str,
    ctx: &RequestContext,
) -> Result<(TokenPair, User), FlowError> {
    let tenant = &user.tenant;
    let claims = match flows.admit(&user, Grant::Login, ctx).await {
        Ok(claims) => claims,
        Err(e) => {
            flows.clear_attempts(tenant, key).await?;
            return Err(e);
        }
    };
    let now = flows.clock.now_millis();
    let family = FamilyId::new();
    let auth_time = now / 1000;
    let (refresh, session) = flows.refresh_token(&user, family, auth_time, ctx);
    let event = EventPayload::AfterLogin {
        user: user.snapshot(),
    };
    flows
        .store
        .start_session(
            tenant,
            session,
            key,
            Some(Announce::about(&user, event, ctx)),
            now,
        )
        .await?;
    let access = flows.access_token(&user, &family, auth_time, claims);
    Ok((flows.pair(access, refresh.token), user))
}

/// Stored emails are valid addresses: at most 254 bytes and free of control characters.
fn could_be_stored(key: &str) -> bool {
    key.len() <= 254 && !key.chars().any(char::is_control)
}

/// Re-hashes with the current parameters off the request path: the user already waited for
/// one argon2 run and should not wait for a second.
fn upgrade_hash_later(flows: &Flows, user: &User, old_hash: String, password: Password) {
    let store = flows.store.clone();
    let hasher = flows.hasher.clone();
    let hashing = flows.hashing.clone();
    let (tenant, id) = (user.tenant.clone(), user.id);
    tokio::spawn(async move {
        let Ok(_permit) = hashing.acquire().await else {
            return;
        };
        let Ok(new_hash) = tokio::task::spawn_blocking(move || hasher.hash(&password)).await else {
            return;
        };
        if let Err(e) = store
            .upgrade_password_hash(&tenant, &id, &old_hash, &new_hash)
            .await
        {
            tracing::warn!(user = %id, error = %e, "could not upgrade an outdated password hash");
        }
    });
}
