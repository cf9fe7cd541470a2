//! What the server trusts on disk: the compile cache (authenticated artifacts, private
//! directories, no symlinks followed) and the files of the hooks directory (no FIFOs, no
//! unbounded reads, no server secrets handed to hooks).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hookauth::hooks::cache::{CacheError, CompileCache, default_dir_from, tmp_name};
use hookauth::hooks::compile::CompileError;
use hookauth::hooks::{FailureKind, HookHost, HookSettings, ProblemKind};
use sha2::{Digest, Sha256};

use crate::support::{HookDir, after_register, fixture};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `<engine key>/` directory under a cache root.
fn engine_dir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn cached(settings: &HookSettings, root: &Path) -> HookSettings {
    let mut s = settings.clone();
    s.cache_dir = Some(root.to_owned());
    s
}

fn stats(host: &HookHost) -> (usize, usize) {
    (host.stats().compiled, host.stats().from_cache)
}

#[tokio::test]
async fn swapped_artifacts_are_recompiled_and_each_hook_runs_its_own_code() {
    let ok = fixture("log-ok");
    let err = fixture("guest-error");
    let dir = HookDir::new().hook("10-ok", &ok).hook("20-err", &err);
    let root = tempfile::tempdir().unwrap();
    let settings = cached(&dir.settings(), root.path());
    let first = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&first), (2, 0));
    drop(first);

    // Each artifact under the other's name.
    let engine = engine_dir(root.path());
    let (a, b) = (
        engine.join(format!("{}.cwasm", sha256(&ok))),
        engine.join(format!("{}.cwasm", sha256(&err))),
    );
    let tmp = engine.join("swap");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();

    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (2, 0), "swapped artifacts must not be loaded");
    let hooks = host.hooks();
    assert_eq!(hooks[0].name(), "10-ok");
    hooks[0]
        .invoke(&after_register())
        .await
        .expect("10-ok runs its own code");
    let failure = hooks[1].invoke(&after_register()).await.unwrap_err();
    assert!(
        matches!(failure.kind, FailureKind::GuestError(_)),
        "{failure:?}"
    );
    // Rewritten with authentic artifacts: the next start loads them.
    drop(host);
    let again = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&again), (0, 2));
}

#[tokio::test]
async fn an_artifact_with_overwritten_code_is_recompiled_not_run() {
    let ok = fixture("log-ok");
    let dir = HookDir::new().hook("10-ok", &ok);
    let root = tempfile::tempdir().unwrap();
    let settings = cached(&dir.settings(), root.path());
    drop(HookHost::load(&settings).await.unwrap());

    let artifact = engine_dir(root.path()).join(format!("{}.cwasm", sha256(&ok)));
    let mut bytes = std::fs::read(&artifact).unwrap();
    // int3 over the middle of the file, where the code is: loaded, it would trap the process.
    let mid = bytes.len() / 2;
    let end = (mid + 4096).min(bytes.len());
    bytes[mid..end].fill(0xcc);
    std::fs::write(&artifact, &bytes).unwrap();

    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (1, 0));
    host.hooks()[0].invoke(&after_register()).await.unwrap();
}

#[tokio::test]
async fn artifacts_not_written_by_this_server_are_discarded() {
    let ok = fixture("log-ok");
    let dir = HookDir::new().hook("10-ok", &ok);
    let root = tempfile::tempdir().unwrap();
    let settings = cached(&dir.settings(), root.path());
    drop(HookHost::load(&settings).await.unwrap());
    let artifact = engine_dir(root.path()).join(format!("{}.cwasm", sha256(&ok)));

    // A bare wasmtime artifact of the right component (what the old cache stored): no tag.
    let engine = hookauth::hooks::engine::build_engine(4).unwrap();
    let bare = engine.precompile_component(&ok).unwrap();
    std::fs::write(&artifact, &bare).unwrap();
    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (1, 0));
    drop(host);

    // An authentic artifact made with another key (another server, or the key changed).
    let other_key = hookauth::hooks::cache::CacheKey::from_server_secret(b"another server's key!");
    let mut other = settings.clone();
    other.cache_key = Some(other_key);
    let host = HookHost::load(&other).await.unwrap();
    assert_eq!(
        stats(&host),
        (1, 0),
        "the key-file key's artifact is foreign"
    );
    drop(host);
    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(
        stats(&host),
        (1, 0),
        "and the other key's is foreign to this one"
    );
}

#[tokio::test]
async fn a_symlink_planted_at_the_temporary_name_is_not_followed() {
    let ok = fixture("log-ok");
    let sha = sha256(&ok);
    let dir = HookDir::new().hook("10-ok", &ok);
    let root = tempfile::tempdir().unwrap();
    let settings = cached(&dir.settings(), root.path());
    drop(HookHost::load(&settings).await.unwrap());
    let engine = engine_dir(root.path());
    let artifact = engine.join(format!("{sha}.cwasm"));
    std::fs::remove_file(&artifact).unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // The temporary names of this writer, and the one the old cache used.
    let planted = [
        engine.join(tmp_name(&sha, 0)),
        engine.join(format!("{sha}.tmp{}", std::process::id())),
    ];
    for link in &planted {
        std::os::unix::fs::symlink(&victim, link).unwrap();
    }

    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (1, 0));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for link in &planted {
        assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
    }
    let meta = std::fs::symlink_metadata(&artifact).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(host);
    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (0, 1));

    // A symlink under the artifact's own name is not followed either: discarded, recompiled.
    drop(host);
    std::fs::remove_file(&artifact).unwrap();
    std::os::unix::fs::symlink(&victim, &artifact).unwrap();
    let host = HookHost::load(&settings).await.unwrap();
    assert_eq!(stats(&host), (1, 0));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[tokio::test]
async fn cache_directories_are_private_and_unsafe_ones_are_refused() {
    let engine = hookauth::hooks::engine::build_engine(4).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("cache");
    CompileCache::open(&root, &engine, None).unwrap();
    assert_eq!(
        std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(engine_dir(&root))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let key = std::fs::metadata(root.join(hookauth::hooks::cache::KEY_FILE)).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    // World-writable.
    let open = parent.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = CompileCache::open(&open, &engine, None)
        .err()
        .expect("refused");
    assert!(matches!(err, CacheError::Unsafe { .. }), "{err}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );

    // Owned by another user (the tests run as root in CI; elsewhere chown is not allowed and
    // this part cannot be set up).
    let foreign = parent.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).is_ok() {
        let err = CompileCache::open(&foreign, &engine, None)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    }

    // A hooks load with the unsafe directory compiles and writes nothing there.
    let dir = HookDir::new().hook("10-ok", &fixture("log-ok"));
    let settings = cached(&dir.settings(), &open);
    for _ in 0..2 {
        let host = HookHost::load(&settings).await.unwrap();
        assert_eq!(stats(&host), (1, 0));
    }
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn the_default_cache_is_the_users_cache_directory() {
    assert_eq!(
        default_dir_from(Some("/var/cache/x".into()), Some("/home/a".into())),
        Some(PathBuf::from("/var/cache/x/hookauth"))
    );
    assert_eq!(
        default_dir_from(None, Some("/home/a".into())),
        Some(PathBuf::from("/home/a/.cache/hookauth"))
    );
    assert_eq!(
        default_dir_from(Some("relative".into()), Some("/home/a".into())),
        Some(PathBuf::from("/home/a/.cache/hookauth"))
    );
    assert_eq!(default_dir_from(None, None), None);
}

// ---- the hooks directory ----

async fn load_problems(settings: &HookSettings) -> Vec<(String, ProblemKind)> {
    HookHost::load(settings)
        .await
        .err()
        .expect("refused")
        .problems()
        .iter()
        .map(|p| (p.file.clone(), p.kind.clone()))
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

#[tokio::test]
async fn a_fifo_hooks_toml_is_refused_without_blocking() {
    // Read naively, a FIFO named hooks.toml blocks the start forever.
    let dir = HookDir::new().hook("10-ok", &fixture("log-ok"));
    mkfifo(&dir.dir.path().join("hooks.toml"));
    let found = load_problems(&dir.settings()).await;
    assert!(
        matches!(&found[..], [(f, ProblemKind::Manifest(m))]
            if f == "hooks.toml" && m.contains("not a regular file")),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_huge_wasm_file_is_refused_unread() {
    // Sparse: 64 GiB that take no disk, and would take 64 GiB of memory if read whole.
    let dir = HookDir::new().hook("10-ok", &fixture("log-ok"));
    let huge = std::fs::File::create(dir.dir.path().join("20-huge.wasm")).unwrap();
    huge.set_len(64 << 30).unwrap();
    let found = load_problems(&dir.settings()).await;
    assert!(
        matches!(&found[..], [(f, ProblemKind::CompileLimit(CompileError::TooLarge { size, .. }))]
            if f == "20-huge.wasm" && *size == 64 << 30),
        "{found:?}"
    );
}

#[tokio::test]
async fn an_oversized_hooks_toml_is_refused_unread() {
    let mut toml = String::from("[hooks.10-ok]\nconfig = { a = \"");
    toml.push_str(&"x".repeat((hookauth::hooks::manifest::MAX_MANIFEST_FILE_BYTES as usize) + 1));
    toml.push_str("\" }\n");
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .manifest(&toml);
    let found = load_problems(&dir.settings()).await;
    assert!(
        found.iter().any(|(f, k)| f == "hooks.toml"
            && matches!(k, ProblemKind::Manifest(m) if m.contains("larger than"))),
        "{found:?}"
    );
}

#[tokio::test]
async fn hooks_toml_cannot_hand_a_hook_the_servers_own_variables() {
    for var in ["HOOKAUTH_SECRET_KEY", "HOOKAUTH_DATABASE_URL"] {
        let dir = HookDir::new()
            .hook("10-ok", &fixture("log-ok"))
            .manifest(&format!("[hooks.10-ok.secrets]\nk = \"{var}\"\n"))
            .env(var, "the-server-secret-0123456789abcdef");
        let found = load_problems(&dir.settings()).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            matches!(&found[0].1, ProblemKind::SecretVariableRefused { key, var: v, reason }
                if key == "k" && v == var && reason.contains("HOOKAUTH_")),
            "{found:?}"
        );
        // Not even when the operator's allow list names them.
        let mut settings = dir.settings();
        settings.secret_env_allow = vec!["HOOKAUTH_*".into(), "*".into()];
        let found = load_problems(&settings).await;
        assert!(
            matches!(&found[0].1, ProblemKind::SecretVariableRefused { .. }),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn hook_secrets_come_only_from_variables_the_operator_allows() {
    let dir = HookDir::new()
        .hook("10-ok", &fixture("log-ok"))
        .manifest("[hooks.10-ok.secrets]\nk = \"MAILER_KEY\"\n")
        .env("MAILER_KEY", "value")
        .env("HOOK_MAILER_KEY", "value");
    // The default allows any variable outside HOOKAUTH_.
    HookHost::load(&dir.settings()).await.unwrap();

    let mut settings = dir.settings();
    settings.secret_env_allow = vec!["HOOK_*".into()];
    let found = load_problems(&settings).await;
    assert!(
        matches!(&found[..], [(_, ProblemKind::SecretVariableRefused { var, reason, .. })]
            if var == "MAILER_KEY" && reason.contains("secret_env_allow")),
        "{found:?}"
    );
    let dir = dir.manifest("[hooks.10-ok.secrets]\nk = \"HOOK_MAILER_KEY\"\n");
    let mut settings = dir.settings();
    settings.secret_env_allow = vec!["HOOK_*".into()];
    HookHost::load(&settings).await.unwrap();
}
