//! What each non-Rust example hook costs through hookauth's own invoke path (`WasmHook::invoke`:
//! pool slot, store, limits, WASI context, fresh instance, call, drop), built by the same code
//! as tests/guests. Prints one table row per guest:
//!
//! - build: wall time of the example's build command (as its README gives it), this run;
//! - size: the deployed component;
//! - compile: `HookHost::load` of a directory holding only this hook, no compile cache;
//! - invoke p50/p99 over `GUEST_BENCH_N` (default 200) sequential invocations;
//! - fuel and peak linear memory of one invocation (`Usage`).
//!
//! `cargo bench --bench guest_languages`. Needs scripts/install-guest-toolchains.
//! The JS hook POSTs to a local HTTP sink on every invocation: its times include that request.

#[allow(dead_code)]
#[path = "../tests/guests/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "../tests/common/hook_support.rs"]
mod hook_support;
#[allow(dead_code)]
#[path = "../tests/common/shared.rs"]
mod shared;
#[allow(dead_code)]
#[path = "../tests/guests/support.rs"]
mod support;

use std::time::{Duration, Instant};

use hookauth::domain::Event;
use hookauth::hooks::HookHost;

use support::{HookDir, Sink};

struct Row {
    name: &'static str,
    built: &'static build::Built,
    manifest: String,
    event: fn() -> Event,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

async fn measure(row: Row, n: usize) {
    let dir = HookDir::new()
        .hook("hook", &row.built.bytes)
        .env("BENCH_KEY", "k")
        .manifest(&row.manifest);
    let started = Instant::now();
    let host = match HookHost::load(&dir.settings()).await {
        Ok(h) => h,
        Err(e) => {
            println!("| {} | – | – | not loadable by this host: {e} |", row.name);
            return;
        }
    };
    let compile = started.elapsed();
    let hook = &host.hooks()[0];
    let event = (row.event)();
    let first = hook.invoke(&event).await.expect("first invocation");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        hook.invoke(&event).await.expect("invocation");
        times.push(t.elapsed());
    }
    times.sort();
    let last = hook.invoke(&event).await.unwrap();
    println!(
        "| {} | {:.1} s | {:.0} KB | {} | {} / {} | {} | {:.1} MiB |",
        row.name,
        row.built.took.as_secs_f64(),
        row.built.bytes.len() as f64 / 1000.0,
        us(compile),
        us(pct(&times, 0.5)),
        us(pct(&times, 0.99)),
        last.fuel_used,
        first.peak_memory.max(last.peak_memory) as f64 / (1 << 20) as f64,
    );
}

fn main() {
    let n: usize = std::env::var("GUEST_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = Sink::start().await;
        let mail = format!(
            "[hooks.hook]\nmemory_mib = 64\nallowed_hosts = [\"127.0.0.1:{p}\"]\n\
             config = {{ url = \"http://127.0.0.1:{p}/send\" }}\nsecrets = {{ api_key = \"BENCH_KEY\" }}\n",
            p = sink.port
        );
        let rows = [
            Row {
                name: "C audit (clang, wasip1 + adapter)",
                built: build::c(),
                manifest: String::new(),
                event: support::after_login,
            },
            Row {
                name: "JS email, QuickJS (+ local HTTP POST)",
                built: build::js_quickjs(),
                manifest: mail.clone(),
                event: || support::send_verification_email("tok"),
            },
            Row {
                name: "JS email, SpiderMonkey (+ local HTTP POST)",
                built: build::js_spidermonkey(),
                manifest: mail.clone(),
                event: || support::send_verification_email("tok"),
            },
            Row {
                name: "Python analytics (componentize-py)",
                built: build::python(),
                manifest: "[hooks.hook]\nmemory_mib = 64\n".into(),
                event: support::after_login,
            },
        ];
        println!(
            "| guest | build | size | compile (load, no cache) | invoke p50 / p99 (n={n}) | fuel | peak memory |"
        );
        println!("|---|---|---|---|---|---|---|");
        for row in rows {
            measure(row, n).await;
        }
        println!("sink received {} requests", sink.received().len());
    });
}
