//! Compile bombs and the compile ceilings.

use std::time::{Duration, Instant};

use hookauth::hooks::compile::{CompileError, DEFAULT_MAX_COMPONENT_MIB};
use hookauth::hooks::{HookHost, LoadError, ProblemKind};

use crate::support::{HookDir, fixture};

/// A component whose one core function keeps `locals` locals live across `blocks` branches:
/// a few dozen KiB that take Cranelift seconds (SSA construction and register allocation grow
/// with locals × blocks).
pub fn compile_bomb(locals: usize, blocks: usize) -> Vec<u8> {
    let mut body = String::new();
    for b in 0..blocks {
        let k = b % (locals - 1);
        body.push_str(&format!(
            "(if (local.get 0) (then (local.set {k} (i32.add (local.get {k}) (local.get {})))))\n",
            k + 1
        ));
    }
    let mut sum = String::from("(local.get 0)");
    for l in 1..locals {
        sum = format!("(i32.add {sum} (local.get {l}))");
    }
    let wat = format!(
        "(component (core module (func (export \"f\") (param i32) (result i32) (local {}) {body} {sum})))",
        "i32 ".repeat(locals)
    );
    wat::parse_str(&wat).unwrap()
}

fn problems(err: LoadError) -> Vec<(String, ProblemKind)> {
    err.problems()
        .iter()
        .map(|p| (p.file.clone(), p.kind.clone()))
        .collect()
}

/// ~37 KiB that take ~2.3 s to compile on an idle 2-core machine (see `measure_bombs`).
fn bomb() -> Vec<u8> {
    compile_bomb(2000, 2000)
}

#[tokio::test]
async fn a_compile_bomb_fails_at_the_compile_ceiling_naming_hook_and_limit() {
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .hook("20-bomb", &bomb());
    let mut settings = dir.settings();
    // Far below the bomb's compile time, whatever the machine's load (a busy machine only
    // makes the bomb slower).
    settings.compile.timeout = Duration::from_millis(100);
    let err = HookHost::load(&settings).await.err().expect("refused");
    let found = problems(err);
    let bomb: Vec<_> = found.iter().filter(|(f, _)| f == "20-bomb.wasm").collect();
    assert_eq!(bomb.len(), 1, "{found:?}");
    assert!(
        matches!(&bomb[0].1, ProblemKind::CompileLimit(CompileError::TimedOut { limit })
            if *limit == Duration::from_millis(100)),
        "{found:?}"
    );
    let message = bomb[0].1.to_string();
    assert!(message.contains("compile_timeout_ms"), "{message}");
    assert!(message.contains("100 ms"), "{message}");

    // Lenient: the bomb is skipped, the good hook is served.
    settings.lenient = true;
    let host = HookHost::load(&settings).await.unwrap();
    let names: Vec<_> = host.hooks().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["10-ok"]);
}

#[tokio::test]
async fn a_component_over_the_size_ceiling_is_refused_before_compiling() {
    let dir = HookDir::new().hook("10-ok", &fixture("log-ok"));
    let size = std::fs::metadata(dir.dir.path().join("10-ok.wasm"))
        .unwrap()
        .len() as usize;
    let mut settings = dir.settings();
    settings.compile.max_component_bytes = size - 1;
    let found = problems(HookHost::load(&settings).await.err().expect("refused"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "10-ok.wasm");
    assert_eq!(
        found[0].1,
        ProblemKind::CompileLimit(CompileError::TooLarge {
            size,
            max: size - 1
        })
    );
    assert!(found[0].1.to_string().contains("max_component_mib"));
    // At the limit exactly, it loads.
    settings.compile.max_component_bytes = size;
    HookHost::load(&settings).await.unwrap();
}

#[tokio::test]
async fn hooks_check_applies_the_compile_ceiling() {
    // `hookauth hooks check` loads like the server, with the server's default ceilings: a
    // bomb far beyond them is reported, not compiled for minutes. Here the size ceiling (the
    // default 64 MiB) is what an author hits with an oversized file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.wasm");
    let mut bytes = fixture("log-ok");
    bytes.resize((DEFAULT_MAX_COMPONENT_MIB as usize) << 20 | 1, 0);
    std::fs::write(&file, &bytes).unwrap();
    let err = hookauth::hooks::tools::check(&file, None, None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("max_component_mib"), "{err}");
}

#[test]
#[ignore = "measurement"]
fn measure_bombs() {
    let engine = hookauth::hooks::engine::build_engine(4).unwrap();
    for (l, b) in [(500, 500), (1000, 1000), (2000, 2000), (1000, 4000)] {
        let bytes = compile_bomb(l, b);
        let t = Instant::now();
        let r = wasmtime::component::Component::new(&engine, &bytes);
        eprintln!(
            "{l}x{b}: {} bytes, {:?}, ok={}",
            bytes.len(),
            t.elapsed(),
            r.is_ok()
        );
    }
}

#[test]
fn compile_and_secret_settings_are_validated() {
    use hookauth::config::{HooksConfig, TenantHooksConfig};
    HooksConfig::default().check().unwrap();
    TenantHooksConfig::default().check_compile().unwrap();
    let bad = [
        HooksConfig {
            max_component_mib: 0,
            ..Default::default()
        },
        HooksConfig {
            compile_timeout_ms: 99,
            ..Default::default()
        },
        HooksConfig {
            secret_env_allow: vec!["HOOK-*".into()],
            ..Default::default()
        },
    ];
    for (config, key) in bad.iter().zip([
        "max_component_mib",
        "compile_timeout_ms",
        "secret_env_allow",
    ]) {
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = TenantHooksConfig {
        compile_timeout_ms: 0,
        ..Default::default()
    }
    .check_compile()
    .unwrap_err()
    .to_string();
    assert!(err.contains("tenant_hooks.compile_timeout_ms"), "{err}");
}
