//! What each example hook costs through hookauth's own paths, one hook per language (Rust
//! minimal and welcome-email, C, JavaScript on QuickJS and on SpiderMonkey, Python), built by
//! the same code as tests/guests. Four parts, in this order, in one process:
//!
//! 1. A table, one row per guest (`WasmHook::invoke`: pool slot, store, limits, WASI context,
//!    fresh instance, call, drop):
//!    - build: wall time of the example's build command (as its README gives it), this run;
//!    - size: the deployed component;
//!    - compile: `HookHost::load` of a directory holding only this hook, no compile cache;
//!    - invoke p50/p99 over `GUEST_BENCH_N` (default 200) sequential invocations;
//!    - fuel and linear memory of one invocation (`Usage`): the largest memory, and all of the
//!      instance's memories together.
//! 2. One cold `HookHost::load` of a directory holding every guest, into an empty compile
//!    cache: this fills the cache that parts 3 and 4 load from.
//! 3. Resident memory per invocation in flight, `GUEST_BENCH_INFLIGHT` (default 100) at once,
//!    on the server's default pool (1,000 slots):
//!    - guests that send an email (Rust welcome-email, both JavaScript engines) POST to a local
//!      API that holds every request until all of them have arrived: VmRSS and Pss
//!      (/proc/self/smaps_rollup) are read with every instance alive and parked, and compared
//!      with before;
//!    - guests without I/O (Rust minimal, C, Python) cannot be held: an invocation runs to
//!      completion on its worker unless it yields (every 100,000 fuel). All are spawned at
//!      once; the peak (VmHWM, reset first through /proc/self/clear_refs) is compared with
//!      before, and divided by the most invocations that were in `invoke` at once.
//! 4. Criterion, per guest: `load/<guest>/cold` (`HookHost::load` of a directory holding
//!    only that hook, into an empty compile cache: compile + write the artifact) and
//!    `load/<guest>/warm` (the same directory, from the filled cache); `load/all/warm` for the
//!    directory of part 2. Cold loads of SpiderMonkey and Python take seconds each, so the
//!    cold groups use criterion's minimum of 10 samples, flat sampling, and no warm-up beyond
//!    one load.
//!
//! `cargo bench --bench guest_languages`. Needs scripts/install-guest-toolchains.
//! `GUEST_BENCH_LANGS=rust,rust-welcome,c,qjs,spidermonkey,python` picks guests (default: all).
//! Run as a test (`cargo test --bench guest_languages`, and so `cargo test --all-targets`),
//! it does every part once, quickly, with the Rust and C guests only, unless
//! `GUEST_BENCH_LANGS` says otherwise.
//! The email guests POST to a local HTTP sink on every invocation: their times include that
//! request.

#[allow(dead_code, reason = "the bench builds only the guests it measures")]
#[path = "../tests/guests/build.rs"]
mod build;
#[allow(
    dead_code,
    reason = "the bench uses hook directories and sample events only"
)]
#[path = "../tests/common/hook_support.rs"]
mod hook_support;
#[path = "common/measure.rs"]
mod measure;
#[allow(dead_code, reason = "the bench uses only the sink")]
#[path = "../tests/common/shared.rs"]
mod shared;
#[allow(
    dead_code,
    reason = "the bench uses the build helpers, not the toolchain checks"
)]
#[path = "../tests/guests/support.rs"]
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use measure::{percentile, proc_kib};

use criterion::{Criterion, SamplingMode};
use hookauth::domain::Event;
use hookauth::hooks::{DEFAULT_MAX_CONCURRENT, HookHost, HookSettings};
use tokio::runtime::Runtime;

use support::{HookDir, Sink};

const BENCH_KEY: &str = "BENCH_KEY";

struct Guest {
    /// Its name in `GUEST_BENCH_LANGS`, criterion ids and hooks directories.
    key: &'static str,
    name: &'static str,
    build: fn() -> &'static build::Built,
    /// Sends `send_verification_email` through an email API (outbound HTTP); the others get
    /// `after_login` and only log.
    email: bool,
}

impl Guest {
    fn event(&self) -> Event {
        if self.email {
            support::send_verification_email("tok")
        } else {
            support::after_login()
        }
    }

    fn built(&self) -> &'static build::Built {
        (self.build)()
    }

    /// Its hooks.toml entry, its email API on 127.0.0.1:`port` at `path`.
    fn entry(&self, port: u16, path: &str, timeout_ms: Option<u32>) -> String {
        let mut toml = format!("[hooks.{}]\n", self.key);
        if let Some(ms) = timeout_ms {
            toml.push_str(&format!("timeout_ms = {ms}\n"));
        }
        if self.key == "python" || self.email {
            toml.push_str("memory_mib = 64\n");
        }
        if self.email {
            toml.push_str(&format!(
                "allowed_hosts = [\"127.0.0.1:{port}\"]\n\
                 config = {{ url = \"http://127.0.0.1:{port}{path}\" }}\n\
                 secrets = {{ api_key = \"{BENCH_KEY}\" }}\n"
            ));
        }
        toml
    }
}

/// A Rust guest of guest-examples/rust (one cargo build for all of them, by tests/common).
fn rust(name: &'static str, cell: &'static OnceLock<build::Built>) -> &'static build::Built {
    cell.get_or_init(|| {
        let started = Instant::now();
        let bytes = shared::guest(name);
        build::Built {
            bytes,
            took: started.elapsed(),
        }
    })
}

fn rust_minimal() -> &'static build::Built {
    static CELL: OnceLock<build::Built> = OnceLock::new();
    rust("minimal", &CELL)
}

fn rust_welcome() -> &'static build::Built {
    static CELL: OnceLock<build::Built> = OnceLock::new();
    rust("welcome-email", &CELL)
}

const GUESTS: [Guest; 6] = [
    Guest {
        key: "rust",
        name: "Rust minimal (cargo, wasm32-wasip2)",
        build: rust_minimal,
        email: false,
    },
    Guest {
        key: "rust-welcome",
        name: "Rust welcome-email (+ local HTTP POST)",
        build: rust_welcome,
        email: true,
    },
    Guest {
        key: "c",
        name: "C audit (clang, wasip1 + adapter)",
        build: build::c,
        email: false,
    },
    Guest {
        key: "qjs",
        name: "JS email, QuickJS (+ local HTTP POST)",
        build: build::js_quickjs,
        email: true,
    },
    Guest {
        key: "spidermonkey",
        name: "JS email, SpiderMonkey (+ local HTTP POST)",
        build: build::js_spidermonkey,
        email: true,
    },
    Guest {
        key: "python",
        name: "Python analytics (componentize-py)",
        build: build::python,
        email: false,
    },
];

fn us(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Resident memory now: (VmRSS, Pss) in KiB. Pss counts a page shared between mappings (a
/// component's memory image, mapped copy-on-write into every instance's slot) once.
fn resident() -> (u64, u64) {
    (
        proc_kib("status", "VmRSS:"),
        proc_kib("smaps_rollup", "Pss:"),
    )
}

/// Settings as the server has them (default pool of 1,000 slots), with a compile cache.
fn server_settings(dir: &HookDir, cache: Option<&Path>) -> HookSettings {
    let mut settings = dir.settings();
    settings.max_concurrent = DEFAULT_MAX_CONCURRENT;
    settings.cache_dir = cache.map(Path::to_owned);
    settings
}

// ---- part 1: the table -----------------------------------------------------------------

async fn measure(guest: &Guest, n: usize, sink: &Sink) -> Option<Duration> {
    let built = guest.built();
    let dir = HookDir::new()
        .hook(guest.key, &built.bytes)
        .env(BENCH_KEY, "k")
        .manifest(&guest.entry(sink.port, "/send", None));
    let started = Instant::now();
    let host = match HookHost::load(&dir.settings()).await {
        Ok(h) => h,
        Err(e) => {
            println!(
                "| {} | – | – | not loadable by this host: {e} |",
                guest.name
            );
            return None;
        }
    };
    let compile = started.elapsed();
    let hook = &host.hooks()[0];
    let first = hook.invoke(&guest.event()).await.expect("first invocation");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let event = guest.event();
        let t = Instant::now();
        hook.invoke(&event).await.expect("invocation");
        times.push(t.elapsed());
    }
    times.sort();
    let last = hook.invoke(&guest.event()).await.unwrap();
    println!(
        "| {} | {:.1} s | {:.0} KB | {} | {} / {} | {} | {} | {} |",
        guest.name,
        built.took.as_secs_f64(),
        built.bytes.len() as f64 / 1000.0,
        us(compile),
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        last.fuel_used,
        mib(first.peak_memory.max(last.peak_memory)),
        mib(first.linear_memory.max(last.linear_memory)),
    );
    Some(compile)
}

// ---- part 3: resident memory per invocation in flight ------------------------------------

/// A local email API whose `/gate` holds every request while closed, and counts arrivals.
struct Gate {
    port: u16,
    arrived: Arc<AtomicUsize>,
    open: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start() -> Self {
        use axum::routing::post;
        let (open, rx) = tokio::sync::watch::channel(true);
        let arrived = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&arrived);
        let app = axum::Router::new().route(
            "/gate",
            post(move || {
                let mut rx = rx.clone();
                let count = Arc::clone(&count);
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.wait_for(|open| *open).await;
                    "queued"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            port,
            arrived,
            open,
            task,
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn in_flight(guest: &Guest, n: usize, cache: &Path) {
    let gate = Gate::start().await;
    let dir = HookDir::new()
        .hook(guest.key, &guest.built().bytes)
        .env(BENCH_KEY, "k")
        .manifest(&guest.entry(gate.port, "/gate", Some(60_000)));
    let host = HookHost::load(&server_settings(&dir, Some(cache)))
        .await
        .expect("loads");
    let hook = Arc::clone(&host.hooks()[0]);
    // Warm-up: code pages faulted in, a pool slot used; the linear memory of one invocation.
    let a = hook.invoke(&guest.event()).await.expect("warm-up");
    let b = hook.invoke(&guest.event()).await.expect("warm-up");
    let largest = a.peak_memory.max(b.peak_memory);
    let all_memories = a.linear_memory.max(b.linear_memory);

    // How many invocations are inside `invoke` at once, at most.
    let live = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (rss0, pss0) = resident();
    if guest.email {
        gate.open.send_replace(false);
        gate.arrived.store(0, Ordering::SeqCst);
    }
    let reset_hwm = !guest.email && std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let hook = Arc::clone(&hook);
            let event = guest.event();
            let (live, most) = (Arc::clone(&live), Arc::clone(&most));
            tokio::spawn(async move {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let result = hook.invoke(&event).await;
                live.fetch_sub(1, Ordering::SeqCst);
                result.map(drop).map_err(|f| f.to_string())
            })
        })
        .collect();
    let row = if guest.email {
        let deadline = Instant::now() + Duration::from_secs(55);
        while gate.arrived.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the last arrivals' guests reach their wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let parked = gate.arrived.load(Ordering::SeqCst);
        let (rss1, pss1) = resident();
        gate.open.send_replace(true);
        let per = |a: u64, b: u64| a.saturating_sub(b) / parked.max(1) as u64;
        format!(
            "{parked} parked | {} → {} MiB | **{} KiB** | {} → {} MiB | **{} KiB**",
            rss0 / 1024,
            rss1 / 1024,
            per(rss1, rss0),
            pss0 / 1024,
            pss1 / 1024,
            per(pss1, pss0),
        )
    } else {
        String::new()
    };
    let mut failed = Vec::new();
    for t in tasks {
        if let Err(failure) = t.await.unwrap() {
            failed.push(failure);
        }
    }
    // Each invocation has a 60 s deadline and a gate that opens: any failure means a limit,
    // the pool or the outbound path broke under concurrency, and the row would be a lie.
    assert!(
        failed.is_empty(),
        "{}: {} of {n} invocations in flight failed, first: {:?}",
        guest.name,
        failed.len(),
        failed.first()
    );
    let ok = n - failed.len();
    let row = if guest.email {
        row
    } else {
        let most = most.load(Ordering::SeqCst);
        if reset_hwm {
            let hwm = proc_kib("status", "VmHWM:");
            format!(
                "{most} at most | {} → {} MiB (peak, VmHWM) | {} KiB | – | –",
                rss0 / 1024,
                hwm / 1024,
                hwm.saturating_sub(rss0) / most.max(1) as u64,
            )
        } else {
            format!("{most} at most | (VmHWM not resettable here) | – | – | –")
        }
    };
    let (rss2, _) = resident();
    println!(
        "| {} | {} / {} | {row} | {} MiB | {ok}/{n} |",
        guest.name,
        mib(largest),
        mib(all_memories),
        rss2 / 1024,
    );
}

// ---- part 4: load, cold vs from the compile cache ----------------------------------------

fn load_benches(
    c: &mut Criterion,
    rt: &Runtime,
    guests: &[&Guest],
    cold_estimate: &[Option<Duration>],
    all: &HookDir,
    cache: &Path,
) {
    let port = 9; // never called: loading only asks each hook what it subscribes to
    for (guest, estimate) in guests.iter().zip(cold_estimate) {
        let dir = HookDir::new()
            .hook(guest.key, &guest.built().bytes)
            .env(BENCH_KEY, "k")
            .manifest(&guest.entry(port, "/send", None));
        let mut group = c.benchmark_group(format!("load/{}", guest.key));
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        // Flat sampling runs ceil(target / (10 × one load)) loads per sample: a target under
        // 10 cold loads (part 1's estimate) gives one each, 10 in all plus the warm-up one.
        let cold_time = estimate
            .map_or(Duration::from_secs(1), |e| e.mul_f64(8.0))
            .max(Duration::from_secs(1));
        group
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(cold_time);
        group.bench_function("cold", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let empty = tempfile::tempdir().unwrap();
                    let settings = server_settings(&dir, Some(empty.path()));
                    let started = Instant::now();
                    let host = rt.block_on(HookHost::load(&settings)).expect("loads");
                    total += started.elapsed();
                    assert_eq!(host.stats().compiled, 1);
                }
                total
            })
        });
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        group.bench_function("warm", |b| {
            let settings = server_settings(&dir, Some(cache));
            b.iter_custom(|iters| warm_loads(rt, &settings, iters, 1))
        });
        group.finish();
    }
    let mut group = c.benchmark_group("load/all");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("warm", |b| {
        let settings = server_settings(all, Some(cache));
        b.iter_custom(|iters| warm_loads(rt, &settings, iters, guests.len()))
    });
    group.finish();
}

/// Time spent in `iters` loads of a hooks directory whose `hooks` hooks are all in the cache.
fn warm_loads(rt: &Runtime, settings: &HookSettings, iters: u64, hooks: usize) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let host = rt.block_on(HookHost::load(settings)).expect("loads");
        total += started.elapsed();
        assert_eq!(host.stats().from_cache, hooks);
    }
    total
}

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // cargo bench passes --bench; cargo test does not (criterion's own test-mode rule).
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n = env_usize("GUEST_BENCH_N", if bench_mode { 200 } else { 3 });
    let inflight = env_usize("GUEST_BENCH_INFLIGHT", if bench_mode { 100 } else { 4 });
    let wanted = std::env::var("GUEST_BENCH_LANGS").unwrap_or_else(|_| {
        if bench_mode {
            "all"
        } else {
            "rust,rust-welcome,c"
        }
        .into()
    });
    let guests: Vec<&Guest> = GUESTS
        .iter()
        .filter(|g| wanted == "all" || wanted.split(',').any(|w| w.trim() == g.key))
        .collect();
    if !bench_mode {
        println!(
            "test mode: guests {:?}, N = {n}, {inflight} in flight (GUEST_BENCH_LANGS=all for every guest)",
            guests.iter().map(|g| g.key).collect::<Vec<_>>()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut all = HookDir::new().env(BENCH_KEY, "k");
    let mut manifest = String::new();
    for g in &guests {
        all = all.hook(g.key, &g.built().bytes);
        manifest.push_str(&g.entry(9, "/send", None));
    }
    let all = all.manifest(&manifest);

    let cold_estimate = rt.block_on(async {
        let sink = Sink::start().await;
        println!(
            "| guest | build | size | compile (load, no cache) | invoke p50 / p99 (n={n}) | fuel | largest memory | all memories |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let mut estimate = Vec::new();
        for g in &guests {
            estimate.push(measure(g, n, &sink).await);
        }
        println!("sink received {} requests", sink.received().len());

        let started = Instant::now();
        let host = HookHost::load(&server_settings(&all, Some(cache.path())))
            .await
            .expect("every guest loads");
        println!(
            "\nload of {} hooks ({}), cold into an empty compile cache: {:.2} s (compiled {})\n",
            guests.len(),
            guests.iter().map(|g| g.key).collect::<Vec<_>>().join(", "),
            started.elapsed().as_secs_f64(),
            host.stats().compiled,
        );
        drop(host);

        println!(
            "| guest | one invocation: largest / all memories | in flight (n={inflight}) | VmRSS before → with all in flight | VmRSS per invocation | Pss before → with all in flight | Pss per invocation | VmRSS after | ok |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for g in &guests {
            in_flight(g, inflight, cache.path()).await;
        }
        estimate
    });

    let mut c = Criterion::default().configure_from_args();
    load_benches(&mut c, &rt, &guests, &cold_estimate, &all, cache.path());
    c.final_summary();
}
