//! Loading a hooks directory: validation, every problem listed, strict vs lenient, hooks.toml,
//! the compile cache.

use hookauth::hooks::{HookHost, LoadError, ProblemKind};

use crate::support::{HookDir, fixture, guest};

fn problems(err: LoadError) -> Vec<(String, ProblemKind)> {
    err.problems()
        .iter()
        .map(|p| (p.file.clone(), p.kind.clone()))
        .collect()
}

#[tokio::test]
async fn a_forbidden_import_is_rejected_at_load_naming_the_import() {
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .hook("20-forbidden", &fixture("forbidden-imports"));
    let err = HookHost::load(&dir.settings())
        .await
        .err()
        .expect("strict load fails");
    let text = err.to_string();
    assert!(
        text.contains("20-forbidden.wasm: imports `wasi:http/incoming-handler@0.2.0`"),
        "{text}"
    );
    assert!(
        text.contains("hooks may only make outbound HTTP requests"),
        "{text}"
    );
    assert!(
        text.contains("20-forbidden.wasm: imports `evil:host/exec@1.0.0`"),
        "{text}"
    );
    assert_eq!(err.problems().len(), 2, "{text}");
}

#[tokio::test]
async fn lenient_mode_skips_bad_hooks_and_keeps_the_good_ones() {
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .hook("20-forbidden", &fixture("forbidden-imports"));
    let mut settings = dir.settings();
    settings.lenient = true;
    let host = HookHost::load(&settings).await.unwrap();
    let names: Vec<_> = host.hooks().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["10-ok"]);
    assert_eq!(host.skipped().len(), 2);
    assert!(host.skipped().iter().all(|p| p.file == "20-forbidden.wasm"));
}

#[tokio::test]
async fn every_problem_is_listed_file_by_file() {
    let core_module = wat::parse_str("(module)").unwrap();
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .hook("20-core", &core_module)
        .file("30-text.wasm", b"(component)")
        .hook("40-forbidden", &fixture("forbidden-imports"))
        .hook("50-no-handler", &wat::parse_str("(component)").unwrap())
        .manifest(
            r#"
            [hooks.10-ok]
            events = ["after_login", "after_lunch"]
            memory_mib = 100000
            secrets = { key = "sk_live_abc/123" }
            allowed_hosts = ["https://api.example"]

            [hooks.99-gone]
            fuel = 1
            "#,
        );
    let err = HookHost::load(&dir.settings()).await.err().unwrap();
    let found = problems(err);
    let files: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
    for file in [
        "hooks.toml",
        "10-ok.wasm",
        "20-core.wasm",
        "30-text.wasm",
        "40-forbidden.wasm",
        "50-no-handler.wasm",
    ] {
        assert!(files.contains(&file), "{file} missing from {found:#?}");
    }
    let has = |pred: &dyn Fn(&ProblemKind) -> bool| found.iter().any(|(_, k)| pred(k));
    assert!(has(
        &|k| matches!(k, ProblemKind::UnknownHook { hook } if hook == "99-gone")
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::UnknownEvent { event, .. } if event == "after_lunch")
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::SecretNotAVariable { key } if key == "key")
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::Manifest(m) if m.contains("memory_mib"))
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::Manifest(m) if m.contains("https://api.example"))
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::NotAComponent(m) if m.contains("core Wasm module"))
    ));
    assert!(has(
        &|k| matches!(k, ProblemKind::NotAComponent(m) if m.contains("not a binary"))
    ));
    assert!(has(&|k| matches!(k, ProblemKind::NoHandler)));
    // The plaintext secret never reaches the error text.
    let text = HookHost::load(&dir.settings())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(!text.contains("sk_live"), "{text}");
}

#[tokio::test]
async fn events_in_hooks_toml_must_be_a_subset_of_the_subscriptions() {
    let dir = HookDir::new()
        .hook("log-ok", &fixture("log-ok"))
        .manifest("[hooks.log-ok]\nevents = [\"after_login\"]\n");
    let found = problems(HookHost::load(&dir.settings()).await.err().unwrap());
    assert_eq!(
        found,
        [(
            "log-ok.wasm".to_owned(),
            ProblemKind::EventNotSubscribed {
                event: "after_login".into()
            }
        )]
    );
}

#[tokio::test]
async fn a_hook_missing_its_config_or_secrets_is_refused() {
    let dir = HookDir::new()
        .hook("welcome", &guest("welcome-email"))
        .manifest("[hooks.welcome]\nsecrets = { other = \"UNSET_VAR\" }\n");
    let found = problems(HookHost::load(&dir.settings()).await.err().unwrap());
    let kinds: Vec<_> = found.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        kinds,
        [ProblemKind::SecretUnset {
            key: "other".into(),
            var: "UNSET_VAR".into()
        }]
    );

    let dir = HookDir::new()
        .hook("welcome", &guest("welcome-email"))
        .env("MAILER_KEY", "k")
        .manifest("[hooks.welcome]\nsecrets = { other = \"MAILER_KEY\" }\n");
    let found = problems(HookHost::load(&dir.settings()).await.err().unwrap());
    let kinds: Vec<_> = found.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::MissingConfig {
                hook: "welcome".into(),
                key: "url".into()
            },
            ProblemKind::MissingSecret {
                hook: "welcome".into(),
                key: "api_key".into()
            }
        ]
    );
}

#[tokio::test]
async fn order_follows_file_names_unless_hooks_toml_overrides_it() {
    let dir = HookDir::new()
        .hook("10-a", &fixture("log-ok"))
        .hook("20-b", &fixture("log-ok"))
        .hook("30-c", &fixture("log-ok"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let names: Vec<_> = host.hooks().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["10-a", "20-b", "30-c"]);

    let dir = dir.manifest("[hooks.30-c]\norder = -1\n[hooks.10-a]\norder = 5\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let names: Vec<_> = host.hooks().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["30-c", "20-b", "10-a"]);
    let handler_names: Vec<_> = host
        .handlers()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    assert_eq!(handler_names, names);
}

#[tokio::test]
async fn compiled_hooks_are_cached_on_disk_and_reused_after_a_restart() {
    let cache = tempfile::tempdir().unwrap();
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .hook("20-audit", &guest("audit-log"));
    let mut settings = dir.settings();
    settings.cache_dir = Some(cache.path().to_owned());

    let first = HookHost::load(&settings).await.unwrap();
    assert_eq!((first.stats().compiled, first.stats().from_cache), (2, 0));
    let second = HookHost::load(&settings).await.unwrap();
    assert_eq!((second.stats().compiled, second.stats().from_cache), (0, 2));
    second.hooks()[1]
        .invoke(&crate::support::after_login())
        .await
        .expect("a cached hook runs");

    // A damaged artifact is discarded and recompiled, never trusted. (Artifacts are mmapped:
    // they are only ever replaced by rename, never rewritten in place while a host runs.)
    drop((first, second));
    // The one directory (the engine's); the key file sits beside it.
    let engine_dir = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    for artifact in std::fs::read_dir(&engine_dir).unwrap() {
        std::fs::write(artifact.unwrap().path(), b"garbage").unwrap();
    }
    let third = HookHost::load(&settings).await.unwrap();
    assert_eq!((third.stats().compiled, third.stats().from_cache), (2, 0));
}

#[tokio::test]
async fn a_missing_directory_is_a_problem_not_an_empty_host() {
    let settings = hookauth::hooks::HookSettings::new("/nonexistent/hooks");
    let err = HookHost::load(&settings).await.err().unwrap();
    assert!(matches!(err.problems()[0].kind, ProblemKind::Unreadable(_)));
}

#[tokio::test]
async fn the_annotated_example_hooks_toml_loads_with_the_example_hooks() {
    let example = std::fs::read_to_string(
        std::path::Path::new(crate::support::CRATE_DIR).join("guest-examples/hooks.toml"),
    )
    .unwrap();
    let dir = HookDir::new()
        .hook("10-audit", &guest("audit-log"))
        .hook("20-welcome", &guest("welcome-email"))
        .env("MAILER_API_KEY", "k")
        .manifest(&example);
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let welcome = &host.hooks()[1];
    assert_eq!(welcome.name(), "20-welcome");
    assert_eq!(welcome.limits().timeout, std::time::Duration::from_secs(2));
    assert_eq!(host.hooks()[0].limits().fuel, 10_000_000);
}

#[tokio::test]
async fn a_hook_that_traps_in_register_is_refused() {
    let dir = HookDir::new().hook("broken", &fixture("register-traps"));
    let found = problems(HookHost::load(&dir.settings()).await.err().unwrap());
    assert_eq!(
        found,
        [(
            "broken.wasm".to_owned(),
            ProblemKind::Register("panicked (unreachable executed)".into())
        )]
    );
}

/// The engine is built without GC, exceptions and threads (Cargo.toml: fewer wasmtime
/// features, a smaller attack surface): a component that needs one is refused at load with
/// wasmtime's reason, never loaded half-working.
#[tokio::test]
async fn components_using_proposals_the_engine_leaves_out_are_refused() {
    let component =
        |core: &str| wat::parse_str(format!("(component (core module {core}))")).unwrap();
    let dir = HookDir::new()
        .hook("10-gc", &component("(type (struct (field i32)))"))
        .hook("20-threads", &component("(memory 1 1 shared)"))
        .hook("30-exceptions", &component("(tag)"));
    let err = HookHost::load(&dir.settings())
        .await
        .err()
        .expect("refused");
    let found = problems(err);
    for file in ["10-gc.wasm", "20-threads.wasm", "30-exceptions.wasm"] {
        let kind = found
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, k)| k)
            .unwrap_or_else(|| panic!("{file} missing from {found:#?}"));
        assert!(matches!(kind, ProblemKind::Compile(_)), "{file}: {kind:?}");
    }
}
