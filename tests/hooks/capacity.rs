//! The instance pool is sized per invocation slot for typical hooks; a hook with many core
//! instances (Python's have 38) can need more than its share. Invocations then wait for room
//! instead of failing.

use std::time::{Duration, Instant};

use hookauth::hooks::HookHost;

use crate::support::{HookDir, after_register, fixture};

#[tokio::test]
async fn invocations_wait_for_pool_room_instead_of_failing() {
    let dir = HookDir::new()
        .hook("heavy", &fixture("many-core-instances"))
        .manifest("[hooks.heavy]\ntimeout_ms = 10000\n");
    let mut settings = dir.settings();
    // Two slots: room for 64 core instances (the per-component maximum, more than two typical
    // hooks need), and this hook takes 41 per invocation.
    settings.max_concurrent = 2;
    let host = HookHost::load(&settings).await.unwrap();
    let hook = &host.hooks()[0];

    let events = [after_register(), after_register(), after_register()];
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        hook.invoke(&events[0]),
        hook.invoke(&events[1]),
        hook.invoke(&events[2]),
    );
    for outcome in [a, b, c] {
        outcome.expect("every invocation runs, one after the other");
    }
    // Each holds its instances for 300 ms and only one fits at a time.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}
