//! What a hook invocation costs through hookauth's own path (`WasmHook::invoke`: slot, store,
//! limits, WASI context, instantiate, call, drop), and what loading and holding hooks costs.
//!
//! `cargo bench --bench hook_invoke` prints, before criterion's own report:
//! - latency p50/p99 of the trivial Rust hook (guest-examples/rust/minimal), sequential;
//! - throughput with 1, 2 and 8 concurrent tasks on a 2-worker tokio runtime;
//! - start-up time of a directory of 20 distinct hooks from the compile cache;
//!
//! Under `cargo test` (no `--bench`) every part runs once, small, with the same assertions.
//! - resident memory with 1,000 invocations in flight at once (each waiting on a slow API).
//!
//! Set `HOOK_BENCH_ONLY=criterion` or `=custom` to run one part, `=invoke` for latency and
//! throughput only.

#[allow(dead_code, reason = "the bench uses only the sample event and user")]
#[path = "../tests/common/hook_support.rs"]
mod hook_support;
#[path = "common/measure.rs"]
mod measure;
#[allow(dead_code, reason = "the bench uses only the guest builder")]
#[path = "../tests/common/shared.rs"]
mod shared;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hookauth::domain::{Event, EventPayload};
use hookauth::hooks::{HookHost, HookSettings, WasmHook};

use hook_support::{event, user};
use measure::{percentile, proc_kib};
use shared::guest;

/// Appends a custom section, so that copies of one component have distinct hashes (and
/// distinct cache entries) while staying the same program.
fn distinct(bytes: &[u8], n: u32) -> Vec<u8> {
    let name = b"bench-copy";
    let payload = n.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    let size = 1 + name.len() + payload.len();
    assert!(size < 128);
    out.push(size as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn rss_kib() -> u64 {
    proc_kib("status", "VmRSS:")
}

async fn load_one(dir: &Path, file: &str, bytes: &[u8]) -> (HookHost, Arc<WasmHook>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), bytes).unwrap();
    let host = HookHost::load(&HookSettings::new(dir)).await.unwrap();
    let hook = Arc::clone(&host.hooks()[0]);
    (host, hook)
}

async fn latency(hook: &WasmHook, ev: &Event, n: usize) {
    for _ in 0..n / 10 {
        hook.invoke(ev).await.unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        hook.invoke(ev).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "latency, trivial Rust hook, sequential, N={n}: p50 {:.1} µs, p99 {:.1} µs",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6
    );
}

async fn throughput(hook: &Arc<WasmHook>, ev: &Event, tasks: usize, total: usize) {
    let per_task = total / tasks;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let hook = Arc::clone(hook);
            let ev = ev.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    hook.invoke(&ev).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let total = per_task * tasks;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "throughput, trivial Rust hook, {tasks} task(s) on 2 workers: {rate:.0} invocations/s"
    );
}

async fn startup_cached(dir: &Path, count: u32, warm_loads: usize) {
    let sources = ["minimal", "audit-log"];
    let hooks_dir = dir.join("twenty");
    std::fs::create_dir_all(&hooks_dir).unwrap();
    let mut manifest = String::new();
    for i in 0..count {
        let src = sources[i as usize % 2]; // minimal and audit-log: no config needed
        let bytes = guest(src);
        std::fs::write(
            hooks_dir.join(format!("{i:02}-{src}.wasm")),
            distinct(&bytes, i),
        )
        .unwrap();
        manifest.push_str(&format!("[hooks.{i:02}-{src}]\nfuel = 10_000_000\n"));
    }
    std::fs::write(hooks_dir.join("hooks.toml"), manifest).unwrap();
    let mut settings = HookSettings::new(&hooks_dir);
    settings.cache_dir = Some(dir.join("cache"));

    let t = Instant::now();
    let cold = HookHost::load(&settings).await.unwrap();
    let cold_time = t.elapsed();
    assert_eq!(cold.stats().compiled, count as usize);
    drop(cold);

    let mut times = Vec::new();
    for _ in 0..warm_loads {
        let t = Instant::now();
        let warm = HookHost::load(&settings).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(warm.stats().from_cache, count as usize);
        assert_eq!(warm.hooks().len(), count as usize);
    }
    times.sort();
    println!(
        "start-up, {count} distinct Rust hooks: cold (compile + cache) {:.0} ms; from cache p50 {:.1} ms, max {:.1} ms",
        cold_time.as_secs_f64() * 1e3,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
}

async fn rss_in_flight(dir: &Path, welcome: &[u8], in_flight: usize) {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hang",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let hooks_dir = dir.join("rss");
    std::fs::create_dir_all(&hooks_dir).unwrap();
    std::fs::write(hooks_dir.join("welcome.wasm"), welcome).unwrap();
    std::fs::write(
        hooks_dir.join("hooks.toml"),
        format!(
            "[hooks.welcome]\nallowed_hosts = [\"127.0.0.1:{port}\"]\ntimeout_ms = 10000\n\
             config = {{ url = \"http://127.0.0.1:{port}/hang\" }}\nsecrets = {{ api_key = \"K\" }}\n"
        ),
    )
    .unwrap();
    let mut settings = HookSettings::new(&hooks_dir);
    settings.env = Some([("K".to_owned(), "k".to_owned())].into());
    let host = HookHost::load(&settings).await.unwrap();
    let hook = Arc::clone(&host.hooks()[0]);
    let ev = event(EventPayload::AfterRegister { user: user() });

    let before = rss_kib();
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let hook = Arc::clone(&hook);
            let ev = ev.clone();
            tokio::spawn(async move { hook.invoke(&ev).await })
        })
        .collect();
    let mut peak = before;
    while started.elapsed() < Duration::from_millis(2500) {
        peak = peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failed = Vec::new();
    for t in tasks {
        if let Err(failure) = t.await.unwrap() {
            failed.push(failure.to_string());
        }
    }
    // Every invocation waits out the slow API well within its 10 s deadline: a failure
    // means the pool, a limit or the outbound path broke under load, not a slow machine.
    assert!(
        failed.is_empty(),
        "{} of {in_flight} invocations failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    let ok = in_flight - failed.len();
    let after = rss_kib();
    server.abort();
    println!(
        "virtual memory reserved with the default pool (1,000 slots): {} GiB",
        proc_kib("status", "VmSize:") >> 20
    );
    println!(
        "resident memory, {in_flight} welcome-email invocations in flight at once (each waiting \
         3 s on the API): before {} MiB, peak {} MiB (+{} KiB per instance), after {} MiB; \
         {ok}/{in_flight} ok",
        before / 1024,
        peak / 1024,
        (peak.saturating_sub(before)) / in_flight as u64,
        after / 1024
    );
}

/// How much work each part does: the full bench, or (`quick`, under `cargo test`, where there
/// is no `--bench`) one short pass through every part, with every assertion the full run makes
/// (cold compile and cache hits counted, every in-flight invocation succeeding).
struct Sizes {
    latency: usize,
    throughput: usize,
    hooks: u32,
    warm_loads: usize,
    in_flight: usize,
}

const FULL: Sizes = Sizes {
    latency: 20_000,
    throughput: 40_000,
    hooks: 20,
    warm_loads: 10,
    in_flight: 1000,
};

const QUICK: Sizes = Sizes {
    latency: 200,
    throughput: 80,
    hooks: 4,
    warm_loads: 2,
    in_flight: 20,
};

fn custom(rt: &tokio::runtime::Runtime, only_invoke: bool, quick: bool) {
    let size = if quick { QUICK } else { FULL };
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let minimal = guest("minimal");
        let (_host, hook) = load_one(&tmp.path().join("minimal"), "minimal.wasm", &minimal).await;
        let ev = event(EventPayload::AfterLogin { user: user() });
        latency(&hook, &ev, size.latency).await;
        for tasks in [1, 2, 8] {
            throughput(&hook, &ev, tasks, size.throughput).await;
        }
        if only_invoke {
            return;
        }
        startup_cached(tmp.path(), size.hooks, size.warm_loads).await;
        let welcome = guest("welcome-email");
        rss_in_flight(tmp.path(), &welcome, size.in_flight).await;
    });
}

fn criterion_benches(rt: &tokio::runtime::Runtime) {
    let tmp = tempfile::tempdir().unwrap();
    let minimal = guest("minimal");
    let (_host, hook) = rt.block_on(load_one(
        &tmp.path().join("minimal"),
        "minimal.wasm",
        &minimal,
    ));
    let ev = event(EventPayload::AfterLogin { user: user() });
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("invoke/minimal_rust_after_login", |b| {
        b.to_async(rt).iter(|| hook.invoke(&ev))
    });
    c.final_summary();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // cargo bench passes --bench; cargo test does not (criterion's own test-mode rule).
    let quick = !std::env::args().any(|a| a == "--bench");
    let only = std::env::var("HOOK_BENCH_ONLY").unwrap_or_default();
    if only != "criterion" {
        custom(&rt, only == "invoke", quick);
    }
    if only.is_empty() || only == "criterion" {
        criterion_benches(&rt);
    }
}
