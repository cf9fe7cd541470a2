//! `GET /oauth/providers`, `GET /oauth/{provider}/authorize`, `POST /oauth/{provider}/callback`:
//! signing in (or up) with a provider.

use serde::Serialize;

use super::super::{FlowError, Flows, TokenPair};
use super::Purpose;
use crate::domain::{
    Email, EventPayload, FamilyId, GateQuestion, Grant, OauthAccount, OauthUserInfo, Profile,
    RequestContext, TenantId, User, UserId,
};
use crate::oauth::TenantProviders;
use crate::store::{Announce, NewUser, OauthSignIn, StoreError};

/// What authorize answers: where to send the browser, and the binding the client keeps (in
/// memory or sessionStorage, never in a URL) and presents at the callback.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeStart {
    pub authorization_url: String,
    pub binding: String,
}

/// The callback's body.
pub struct CallbackInput {
    pub code: String,
    pub state: String,
    pub binding: String,
}

/// The tenant's provider names, sorted.
pub async fn oauth_providers(flows: &Flows, tenant: &TenantId) -> Result<Vec<String>, FlowError> {
    Ok(flows.oauth_of(tenant).await?.names())
}

/// Starts a sign-in with `provider`.
pub async fn oauth_authorize(
    flows: &Flows,
    tenant: &TenantId,
    provider: &str,
    redirect_uri: &str,
) -> Result<AuthorizeStart, FlowError> {
    let provider = flows.provider(tenant, provider).await?;
    flows
        .start_flow(tenant, provider, redirect_uri, Purpose::OauthState, None)
        .await
}

/// Finishes a sign-in: the user the provider account is linked to; else, with
/// `auto_link_by_email`, the account whose address the provider verified (linked now); else a
/// new passwordless account (verified if the provider verified the address). Gates decide as
/// for a password sign-in (before-register for a new account, before-login otherwise) and give
/// the token its claims (grant `oauth`). The user, the link, the session and the events
/// (`after_oauth_login`; for a new user also `after_register` and `after_oauth_register`)
/// commit together.
pub async fn oauth_callback(
    flows: &Flows,
    tenant: &TenantId,
    provider: &str,
    input: CallbackInput,
    ctx: &RequestContext,
) -> Result<(TokenPair, User), FlowError> {
    let (all, provider) = flows.provider(tenant, provider).await?;
    flows.gates_ready()?;
    let state = flows.open_state(tenant, &provider, &input, Purpose::OauthState)?;
    let info = flows.redeem(tenant, &provider, &state, &input.code).await?;
    // A concurrent sign-in (or registration) may take the email or the link between the look
    // and the write; the second look sees it.
    match sign_in_once(flows, tenant, &info, &all, ctx).await {
        Err(FlowError::Store(StoreError::Conflict)) => {
            match sign_in_once(flows, tenant, &info, &all, ctx).await {
                Err(FlowError::Store(StoreError::Conflict)) => Err(flows.oauth_failed(
                    tenant,
                    &info.provider,
                    "the account changed twice while signing in",
                )),
                other => other,
            }
        }
        other => other,
    }
}

async fn sign_in_once(
    flows: &Flows,
    tenant: &TenantId,
    info: &OauthUserInfo,
    settings: &TenantProviders,
    ctx: &RequestContext,
) -> Result<(TokenPair, User), FlowError> {
    let fail = |reason: &str| flows.oauth_failed(tenant, &info.provider, reason);
    let now = flows.clock.now_millis();
    let linked = flows
        .store
        .find_oauth_user(tenant, &info.provider, &info.subject)
        .await?;
    let (who, user) = match linked {
        Some(user) => (OauthSignIn::Linked(user.clone()), user),
        None => {
            let email = info.email.as_deref().and_then(|e| Email::parse(e).ok());
            let owner = match &email {
                Some(email) => {
                    flows
                        .store
                        .find_user_by_email(tenant, email.as_str())
                        .await?
                }
                None => None,
            };
            match (owner, email) {
                (Some(_), _) if !settings.auto_link_by_email => {
                    return Err(fail(
                        "the email belongs to an account and auto_link_by_email is off; sign \
                         in with the password and link the provider",
                    ));
                }
                (Some(_), _) if !info.email_verified => {
                    // Anyone can claim an address at a provider that does not verify it.
                    return Err(fail(
                        "the email belongs to an account but the provider did not verify it",
                    ));
                }
                (Some(user), _) => {
                    let linked = flows.store.oauth_accounts(tenant, &user.id).await?;
                    if linked.iter().any(|a| a.provider == info.provider) {
                        // One account per provider per user: unlinking names the provider.
                        return Err(fail(
                            "the email's account has another account of this provider linked",
                        ));
                    }
                    (OauthSignIn::Link(user.clone()), user)
                }
                (None, None) => return Err(fail("the provider gave no usable email address")),
                (None, Some(_)) if !info.email_verified && !settings.unverified_email_signup => {
                    return Err(fail(
                        "the provider did not verify the address and unverified_email_signup \
                         is off",
                    ));
                }
                (None, Some(email)) => {
                    let verdict = flows
                        .ask_gates(
                            tenant,
                            GateQuestion::BeforeRegister {
                                email: email.as_str().to_owned(),
                                profile: Profile::new(),
                            },
                            ctx,
                        )
                        .await?;
                    let new = NewUser {
                        id: UserId::new(),
                        tenant: tenant.clone(),
                        email: email.as_str().to_owned(),
                        hashed_password: None,
                        is_superuser: false,
                        is_verified: info.email_verified,
                        profile: verdict.profile,
                        roles: verdict.roles,
                    };
                    let preview = User {
                        id: new.id,
                        tenant: tenant.clone(),
                        email: new.email.clone(),
                        hashed_password: None,
                        is_active: true,
                        is_verified: new.is_verified,
                        is_superuser: false,
                        roles: new.roles.clone(),
                        profile: flows.settings.profile_schema.complete(&new.profile),
                        created_at: now,
                    };
                    (OauthSignIn::Create(new), preview)
                }
            }
        }
    };
    let is_new_user = matches!(who, OauthSignIn::Create(_));
    if !user.is_active {
        return Err(fail("the account is deactivated"));
    }
    // A new account was asked before-register above; an existing one is admitted like a
    // password sign-in.
    let claims = if is_new_user {
        flows.claims_for(&user, Grant::Oauth, ctx).await?
    } else {
        flows.admit(&user, Grant::Oauth, ctx).await?
    };

    let family = FamilyId::new();
    let auth_time = now / 1000;
    let (refresh, session) = flows.refresh_token(&user, family, auth_time, ctx);
    let provider = info.provider.clone();
    let user = flows
        .store
        .oauth_sign_in(
            tenant,
            who,
            &OauthAccount::of(info),
            &session,
            |user| {
                let mut events = vec![Announce::about(
                    user,
                    EventPayload::AfterOauthLogin {
                        user: user.snapshot(),
                        provider,
                        is_new_user,
                    },
                    ctx,
                )];
                if is_new_user {
                    events.push(Announce::about(
                        user,
                        EventPayload::AfterRegister {
                            user: user.snapshot(),
                        },
                        ctx,
                    ));
                    events.push(Announce::about(
                        user,
                        EventPayload::AfterOauthRegister {
                            user: user.snapshot(),
                            user_info: info.clone(),
                        },
                        ctx,
                    ));
                }
                events
            },
            now,
        )
        .await?;
    tracing::info!(tenant = %tenant, provider = %info.provider, user = %user.id, is_new_user,
        "OAuth sign-in");
    let access = flows.access_token(&user, &family, auth_time, claims);
    Ok((flows.pair(access, refresh.token), user))
}
