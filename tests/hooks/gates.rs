//! The host serving both WIT versions: a 0.1.0 component from guest-examples unchanged next to
//! 0.2.0 gates, each export found and called, gate budgets and `on_error` from hooks.toml.

use hookauth::domain::{
    DecisionPoint, GateAnswer, GateContext, GateQuestion, OnError, RequestContext, TenantId,
    new_event_id,
};
use hookauth::hooks::HookHost;

use crate::support::{HookDir, after_login, gate_probe, guest, user};

fn ctx() -> GateContext {
    GateContext {
        tenant: TenantId::default_tenant(),
        decision_id: new_event_id(),
        request: RequestContext::default(),
    }
}

#[tokio::test]
async fn a_0_1_0_component_from_guest_examples_runs_unchanged_beside_a_0_2_0_gate() {
    let dir = HookDir::new()
        .hook("10-minimal", &guest("minimal"))
        .hook("20-probe", &gate_probe())
        .manifest("[hooks.20-probe]\non_error = \"allow\"\ngate_timeout_ms = 5000\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (minimal, probe) = (&host.hooks()[0], &host.hooks()[1]);

    // The 0.1.0 hook: its handler, exactly as before; no gate.
    assert_eq!(
        minimal.handler_interface().as_deref(),
        Some("hookauth:hooks/handler@0.1.0")
    );
    assert_eq!(minimal.gate_interface(), None);
    assert!(minimal.gate().is_none());
    minimal
        .invoke(&after_login())
        .await
        .expect("a 0.1.0 hook still handles events");
    assert!(
        minimal
            .imports()
            .iter()
            .all(|i| !i.starts_with("hookauth:") || i.ends_with("@0.1.0")),
        "{:?}",
        minimal.imports()
    );

    // The probe exports both: an after-event handler (0.1.0) and a gate (0.2.0).
    assert_eq!(
        probe.gate_interface().as_deref(),
        Some("hookauth:hooks/gate@0.2.0")
    );
    assert!(probe.handler_interface().is_some());
    let gate = probe.gate().expect("registered as a gate");
    assert_eq!(gate.points.len(), DecisionPoint::ALL.len());
    assert_eq!(gate.on_error, OnError::Allow);
    assert_eq!(gate.limits.timeout.as_millis(), 5000);
    assert_eq!(gate.limits.fuel, hookauth::hooks::DEFAULT_GATE_FUEL);

    let (answer, usage) = probe
        .ask(
            &GateQuestion::BeforeLogin {
                user: hookauth::domain::UserSnapshot {
                    email: "blocked@example.com".into(),
                    ..user()
                },
            },
            &ctx(),
        )
        .await;
    assert!(
        matches!(answer, Ok(GateAnswer::Deny(ref d)) if d.message == "Sign-in is closed for this account"),
        "{answer:?}"
    );
    assert!(usage.fuel_used > 0);
    // A 0.1.0-only hook is never asked; asking it anyway is a refusal, not a trap.
    let (answer, _) = minimal
        .ask(&GateQuestion::BeforeLogin { user: user() }, &ctx())
        .await;
    assert_eq!(answer.unwrap_err().label, "not_subscribed");
}

#[tokio::test]
async fn gate_budgets_out_of_range_are_load_problems_naming_the_key() {
    let dir = HookDir::new()
        .hook("probe", &gate_probe())
        .manifest("[hooks.probe]\ngate_timeout_ms = 600000\ngate_fuel = 0\n");
    let err = HookHost::load(&dir.settings())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("gate_timeout_ms = 600000") && text.contains("gate_fuel = 0"),
        "{text}"
    );
    let dir = HookDir::new()
        .hook("probe", &gate_probe())
        .manifest("[hooks.probe]\non_error = \"maybe\"\n");
    let err = HookHost::load(&dir.settings())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("on_error"), "{err}");
}

#[tokio::test]
async fn a_gate_over_its_budget_fails_with_a_label_not_a_trap_of_the_host() {
    let dir = HookDir::new()
        .hook("probe", &gate_probe())
        .manifest("[hooks.probe]\ngate_fuel = 1_000_000\ngate_timeout_ms = 2000\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let probe = &host.hooks()[0];
    let spin = GateQuestion::BeforeRegister {
        email: "spin@example.com".into(),
        profile: Default::default(),
    };
    let (answer, usage) = probe.ask(&spin, &ctx()).await;
    assert_eq!(answer.unwrap_err().label, "out_of_fuel");
    assert!(usage.fuel_used >= 1_000_000, "{usage:?}");
    // The host is fine: the next decision is answered.
    let (answer, _) = probe
        .ask(
            &GateQuestion::BeforeRegister {
                email: "ada@example.com".into(),
                profile: Default::default(),
            },
            &ctx(),
        )
        .await;
    assert_eq!(answer, Ok(GateAnswer::Allow));
}
