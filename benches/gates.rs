//! What a gate decision costs through hookauth's own path (`WasmHook::ask`: slot, store, gate
//! budget, instantiate, call, answer), for a trivial Rust gate (tests/fixtures/gate-probe): the
//! part of a login or register that a gate adds, without argon2's noise around it. The HTTP
//! side (login/register/refresh with and without a gate, same run) is benches/load/gates.sh.
//!
//! `cargo bench --bench gates` prints p50/p99 per decision point, then criterion's report.
//! Under `cargo test` (no `--bench`) a short pass with the same assertions.

#[allow(dead_code, reason = "the bench uses only the sample user")]
#[path = "../tests/common/hook_support.rs"]
mod hook_support;
#[allow(dead_code, reason = "the bench uses only percentiles")]
#[path = "common/measure.rs"]
mod measure;
#[allow(dead_code, reason = "the bench uses only the probe builder")]
#[path = "../tests/common/shared.rs"]
mod shared;

use std::sync::Arc;
use std::time::Instant;

use criterion::Criterion;
use hookauth::domain::{
    GateAnswer, GateContext, GateQuestion, Grant, RequestContext, TenantId, new_event_id,
};
use hookauth::hooks::{HookHost, HookSettings, WasmHook};

use hook_support::user;
use measure::percentile;
use shared::gate_probe;

fn context() -> GateContext {
    GateContext {
        tenant: TenantId::default_tenant(),
        decision_id: new_event_id(),
        request: RequestContext {
            request_id: "bench".into(),
            client_ip: Some("203.0.113.7".into()),
            user_agent: Some("bench".into()),
        },
    }
}

fn questions() -> [(&'static str, GateQuestion); 3] {
    [
        (
            "before_register",
            GateQuestion::BeforeRegister {
                email: "ada@example.com".into(),
                profile: Default::default(),
            },
        ),
        ("before_login", GateQuestion::BeforeLogin { user: user() }),
        (
            "token_claims",
            GateQuestion::TokenClaims {
                user: user(),
                grant: Grant::Login,
            },
        ),
    ]
}

async fn load(dir: &std::path::Path) -> (HookHost, Arc<WasmHook>) {
    std::fs::write(dir.join("probe.wasm"), gate_probe()).unwrap();
    let host = HookHost::load(&HookSettings::new(dir)).await.unwrap();
    let hook = Arc::clone(&host.hooks()[0]);
    (host, hook)
}

async fn latency(hook: &WasmHook, n: usize) {
    let ctx = context();
    for (name, question) in questions() {
        for _ in 0..n / 10 {
            hook.ask(&question, &ctx).await.0.unwrap();
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let answer = hook.ask(&question, &ctx).await.0.unwrap();
            samples.push(t.elapsed());
            assert!(
                matches!(answer, GateAnswer::Allow | GateAnswer::Claims(_)),
                "{answer:?}"
            );
        }
        samples.sort();
        println!(
            "gate decision, trivial Rust gate, {name}, sequential, N={n}: p50 {:.1} µs, p99 {:.1} µs",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let quick = !std::env::args().any(|a| a == "--bench");
    let tmp = tempfile::tempdir().unwrap();
    let (_host, hook) = rt.block_on(load(tmp.path()));
    rt.block_on(latency(&hook, if quick { 100 } else { 20_000 }));
    if quick {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let ctx = context();
    for (name, question) in questions() {
        c.bench_function(&format!("gate/{name}_trivial_rust"), |b| {
            b.to_async(&rt).iter(|| hook.ask(&question, &ctx))
        });
    }
    c.final_summary();
}
