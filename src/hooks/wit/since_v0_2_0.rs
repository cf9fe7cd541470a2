//! Bindings for `hookauth:hooks@0.2.0` (`wit/v0.2.0`): the `gate` interface, and the
//! conversion of the flows' questions and the gates' answers. 0.2.0 reuses 0.1.0's types and
//! host interface, so those are bound once, in `since_v0_1_0`, and shared here (`with`).

use crate::domain::{
    DecisionPoint as Point, Denial as DomainDenial, GateAnswer, GateContext as DomainContext,
    GateQuestion, Grant as DomainGrant, PasswordReason as Reason, PasswordSubject as DomainSubject,
    RegisterChanges as DomainChanges,
};

wasmtime::component::bindgen!({
    world: "gate-hook",
    path: "wit/v0.2.0",
    exports: { default: async },
    with: {
        "hookauth:hooks/types@0.1.0": super::since_v0_1_0::hookauth::hooks::types,
        "hookauth:hooks/host@0.1.0": super::since_v0_1_0::hookauth::hooks::host,
    },
});

pub use exports::hookauth::hooks0_2_0::gate::{
    Decision, DecisionPoint, Denial, GateContext, GateRegistration, Grant, GuestIndices,
    PasswordDecision, PasswordReason, PasswordSubject, RegisterDecision,
};

/// The interface a gate exports, without its version.
pub const GATE_INTERFACE: &str = "hookauth:hooks/gate";

pub fn domain_point(point: DecisionPoint) -> Point {
    match point {
        DecisionPoint::BeforeRegister => Point::BeforeRegister,
        DecisionPoint::BeforeLogin => Point::BeforeLogin,
        DecisionPoint::CheckPassword => Point::CheckPassword,
        DecisionPoint::TokenClaims => Point::TokenClaims,
    }
}

fn context(ctx: &DomainContext) -> GateContext {
    GateContext {
        tenant: ctx.tenant.to_string(),
        decision_id: ctx.decision_id.clone(),
        request_id: ctx.request.request_id.clone(),
        client_ip: ctx.request.client_ip.clone(),
        user_agent: ctx.request.user_agent.clone(),
    }
}

fn denial(d: Denial) -> DomainDenial {
    DomainDenial {
        code: d.code,
        message: d.message,
    }
}

/// Asks a loaded gate one question.
pub async fn call(
    gate: &exports::hookauth::hooks0_2_0::gate::Guest,
    store: &mut wasmtime::Store<crate::hooks::state::HookState>,
    question: &GateQuestion,
    ctx: &DomainContext,
) -> wasmtime::Result<Result<GateAnswer, String>> {
    use super::since_v0_1_0::user;
    let ctx = context(ctx);
    Ok(match question {
        GateQuestion::BeforeRegister { email, profile } => {
            let profile: Vec<(String, String)> = profile
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            Ok(
                match gate
                    .call_before_register(&mut *store, email, &profile, &ctx)
                    .await?
                {
                    RegisterDecision::Allow => GateAnswer::Allow,
                    RegisterDecision::Deny(d) => GateAnswer::Deny(denial(d)),
                    RegisterDecision::AllowWithChanges(c) => {
                        GateAnswer::AllowWithChanges(DomainChanges {
                            profile: c.profile,
                            roles: c.roles,
                        })
                    }
                },
            )
        }
        GateQuestion::BeforeLogin { user: u } => Ok(
            match gate.call_before_login(&mut *store, &user(u), &ctx).await? {
                Decision::Allow => GateAnswer::Allow,
                Decision::Deny(d) => GateAnswer::Deny(denial(d)),
            },
        ),
        GateQuestion::CheckPassword {
            subject,
            password,
            why,
        } => {
            let subject = match subject {
                DomainSubject::User(u) => PasswordSubject::User(user(u)),
                DomainSubject::Email(e) => PasswordSubject::Email(e.clone()),
            };
            let why = match why {
                Reason::Register => PasswordReason::Register,
                Reason::Change => PasswordReason::Change,
                Reason::Reset => PasswordReason::Reset,
            };
            Ok(
                match gate
                    .call_check_password(&mut *store, &subject, password.expose(), why, &ctx)
                    .await?
                {
                    PasswordDecision::Allow => GateAnswer::Allow,
                    PasswordDecision::Deny(message) => GateAnswer::Deny(DomainDenial {
                        code: None,
                        message,
                    }),
                },
            )
        }
        GateQuestion::TokenClaims { user: u, grant } => {
            let grant = match grant {
                DomainGrant::Login => Grant::Login,
                DomainGrant::Refresh => Grant::Refresh,
                DomainGrant::Oauth => Grant::Oauth,
            };
            gate.call_token_claims(&mut *store, &user(u), &ctx, grant)
                .await?
                .map(GateAnswer::Claims)
        }
    })
}
