//! `hookauth hooks new NAME [--kind gate] --lang rust|js|python`: the project it writes builds
//! with the commands its README gives, passes `hooks check`, and, deployed into a server's hooks
//! directory with its own hooks.toml entry, fires on a real registration and login (an
//! after-event hook) or decides them (a gate: refuses a blocked domain's registration, adds its
//! claim to the access token).
//! This is the five-minute walk-through of docs/hooks-languages.md, run on every test run.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::server::{PASSWORD, Server, hookauth};
use crate::support::{
    CRATE_DIR, example_dir, require_command, require_tool, require_wasip2_target, run,
};

/// Runs `hookauth hooks new NAME [--kind KIND] --lang LANG` in a fresh directory (no `--kind`
/// for `event`: it is the default); returns it and the project.
fn hooks_new(name: &str, kind: &str, lang: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let mut cmd = hookauth(work.path());
    cmd.args(["hooks", "new", name]);
    if kind != "event" {
        cmd.args(["--kind", kind]);
    }
    let out = cmd
        .args(["--lang", lang])
        // The author tools need no server configuration.
        .env_remove("HOOKAUTH_SECRET_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hooks new failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = work.path().join(name);
    let files: &[&str] = match kind {
        "event" => &["README.md", "hooks.toml", "wit/hooks.wit"],
        _ => &[
            "README.md",
            "hooks.toml",
            "wit/gate.wit",
            "wit/deps/hookauth-hooks/hooks.wit",
        ],
    };
    for file in files {
        assert!(project.join(file).is_file(), "{file} missing: {stdout}");
        assert!(stdout.contains(file), "{file} not listed: {stdout}");
    }
    (work, project)
}

/// The README's `cargo build --release`; only the target directory is the test run's, so
/// wit-bindgen is compiled once, not on every run. Returns the component.
fn build_rust(project: &Path, name: &str) -> PathBuf {
    require_wasip2_target("Rust");
    let target = Path::new(CRATE_DIR).join("target/scaffold-rust");
    run(
        "building the scaffolded Rust hook",
        Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .current_dir(project)
            .args(["build", "--release"])
            .env("CARGO_TARGET_DIR", &target),
    );
    target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ))
}

/// The README's `npm install && npm run build`. Returns the component.
fn build_js(project: &Path, name: &str) -> PathBuf {
    require_command("JavaScript", "node", "--version");
    require_command("JavaScript", "npm", "--version");
    // --prefer-offline: the packages are the ones scripts/install-guest-toolchains put in npm's
    // cache for guest-examples/js.
    run(
        "npm install in the scaffolded JS hook",
        Command::new("npm").current_dir(project).args([
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
        ]),
    );
    run(
        "building the scaffolded JS hook",
        Command::new("npm")
            .current_dir(project)
            .args(["run", "build"]),
    );
    project.join(format!("{name}.wasm"))
}

/// The README's `pip install -r requirements.txt` gives the componentize-py version the
/// install script pins for guest-examples/python; the test uses that one. Returns the component.
fn build_python(project: &Path, name: &str) -> PathBuf {
    let tool = example_dir("python").join(".venv/bin/componentize-py");
    require_tool(
        "Python",
        &tool,
        "componentize-py in guest-examples/python/.venv",
    );
    let pinned = std::fs::read_to_string(project.join("requirements.txt")).unwrap();
    let version = run_output(Command::new(&tool).arg("--version"));
    assert!(
        pinned.contains(&format!(
            "componentize-py=={}",
            version.split_whitespace().nth(1).unwrap()
        )),
        "requirements.txt ({pinned}) pins another componentize-py than the installed {version}"
    );
    run(
        "building the scaffolded Python hook",
        Command::new("./build.sh")
            .current_dir(project)
            .env("COMPONENTIZE_PY", &tool),
    );
    project.join(format!("{name}.wasm"))
}

/// `hooks check` against the project's own hooks.toml entry; returns its report.
fn check_report(wasm: &Path, project: &Path, name: &str) -> Value {
    let out = hookauth(project)
        .args(["hooks", "check"])
        .arg(wasm)
        .args(["--manifest", "hooks.toml", "--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hooks check refused the scaffolded hook:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hook"], name);
    report
}

/// `hooks check`: valid, subscribed to what the template subscribes to.
fn check(wasm: &Path, project: &Path, name: &str) {
    let report = check_report(wasm, project, name);
    assert_eq!(report["wit"], "hookauth:hooks/handler@0.1.0", "{report}");
    assert_eq!(
        report["events"],
        json!(["after_register", "after_login"]),
        "{report}"
    );
}

/// The gate exports `hookauth:hooks/gate@0.2.0` and no `handler`, as `wasm-tools component
/// wit` reads it (the JS and Python engines export functions of their own too); `hooks check`
/// loads it as a gate serving what the template serves, with the project's hooks.toml entry.
fn check_gate(wasm: &Path, project: &Path, name: &str) {
    require_command("WebAssembly", "wasm-tools", "--version");
    let wit = run_output(
        Command::new("wasm-tools")
            .args(["component", "wit"])
            .arg(wasm),
    );
    let exports: Vec<&str> = wit
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("export hookauth:"))
        .collect();
    assert_eq!(exports, ["export hookauth:hooks/gate@0.2.0;"], "{wit}");

    let report = check_report(wasm, project, name);
    assert_eq!(report["gate"], "hookauth:hooks/gate@0.2.0", "{report}");
    assert_eq!(
        report["decision_points"],
        json!(["before_register", "before_login", "token_claims"]),
        "{report}"
    );
    assert_eq!(report["on_error"], "deny", "{report}");
}

/// Deploys the built hook as `NAME.wasm` with the project's hooks.toml, starts the server,
/// registers and logs in a user, and waits for the hook's two log lines.
async fn deploy_and_fire(wasm: &Path, project: &Path, name: &str) {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::copy(wasm, hooks.path().join(format!("{name}.wasm"))).unwrap();
    std::fs::copy(project.join("hooks.toml"), hooks.path().join("hooks.toml")).unwrap();
    let server = Server::start(hooks.path(), &[]);

    let email = format!("{name}@example.com");
    server.register(&email).await;
    let access = server.login(&email).await;
    let user_id = server.me(&access).await;
    let line = server
        .wait_for_line(&[&format!("{name}: user registered"), &user_id])
        .await;
    assert!(line.contains(&format!("hook=\"{name}\"")), "{line}");
    assert!(line.contains("event=\"after_register\""), "{line}");
    server
        .wait_for_line(&[&format!("{name}: user logged in"), &user_id])
        .await;
    assert_no_warnings(&server, name);
}

/// Deploys the built gate as `NAME.wasm` with the project's hooks.toml plus a
/// `blocked_domains` config, starts the server, and checks the gate decides: a registration
/// from the blocked domain is refused (403 `denied_by_hook`, the gate's message and code)
/// and logged by the gate; any other registers, logs in, and gets the gate's claim.
async fn deploy_and_decide(wasm: &Path, project: &Path, name: &str) {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::copy(wasm, hooks.path().join(format!("{name}.wasm"))).unwrap();
    let mut manifest = std::fs::read_to_string(project.join("hooks.toml")).unwrap();
    manifest.push_str(&format!(
        "\n[hooks.{name}.config]\nblocked_domains = \"junk.example, spam.example.com\"\n"
    ));
    std::fs::write(hooks.path().join("hooks.toml"), manifest).unwrap();
    let server = Server::start(hooks.path(), &[]);

    let (status, body) = server
        .post(
            "/register",
            None,
            json!({"email": "Eve@Spam.Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 403, "{body}\n{}", server.log());
    assert_eq!(body["code"], "denied_by_hook", "{body}");
    assert_eq!(body["hook_code"], "blocked_domain", "{body}");
    assert_eq!(
        body["detail"], "registrations from this email domain are not accepted",
        "{body}"
    );
    server
        .wait_for_line(&[&format!("{name}: registration refused"), "spam.example.com"])
        .await;

    let email = format!("{name}@example.com");
    server.register(&email).await;
    let access = server.login(&email).await;
    let payload = access.split('.').nth(1).expect("a JWT has three parts");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["extra"]["hook"], name, "{claims}");
    assert_no_warnings(&server, name);
}

/// The hook logged no warning or error, and the server none about it.
fn assert_no_warnings(server: &Server, name: &str) {
    let log = server.log();
    let hook_field = format!("hook=\"{name}\"");
    assert!(
        !log.lines()
            .any(|l| l.contains(&hook_field) && (l.contains("WARN") || l.contains("ERROR"))),
        "{log}"
    );
}

#[tokio::test]
async fn rust_scaffold_builds_as_is_and_fires_on_registration() {
    let name = "greet-rust";
    let (_work, project) = hooks_new(name, "event", "rust");
    let wasm = build_rust(&project, name);
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
}

#[tokio::test]
async fn js_scaffold_builds_as_is_and_fires_on_registration() {
    let name = "greet-js";
    let (_work, project) = hooks_new(name, "event", "js");
    let wasm = build_js(&project, name);
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
}

#[tokio::test]
async fn python_scaffold_builds_as_is_and_fires_on_registration() {
    let name = "greet-python";
    let (_work, project) = hooks_new(name, "event", "python");
    let wasm = build_python(&project, name);
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
}

#[tokio::test]
async fn rust_gate_scaffold_builds_as_is_and_refuses_a_blocked_domain() {
    let name = "gate-rust";
    let (_work, project) = hooks_new(name, "gate", "rust");
    let wasm = build_rust(&project, name);
    check_gate(&wasm, &project, name);
    deploy_and_decide(&wasm, &project, name).await;
}

#[tokio::test]
async fn js_gate_scaffold_builds_as_is_and_refuses_a_blocked_domain() {
    let name = "gate-js";
    let (_work, project) = hooks_new(name, "gate", "js");
    let wasm = build_js(&project, name);
    check_gate(&wasm, &project, name);
    deploy_and_decide(&wasm, &project, name).await;
}

#[tokio::test]
async fn python_gate_scaffold_builds_as_is_and_refuses_a_blocked_domain() {
    let name = "gate-python";
    let (_work, project) = hooks_new(name, "gate", "python");
    let wasm = build_python(&project, name);
    check_gate(&wasm, &project, name);
    deploy_and_decide(&wasm, &project, name).await;
}

#[test]
fn hooks_new_refuses_bad_names_and_existing_projects() {
    let work = tempfile::tempdir().unwrap();
    let out = hookauth(work.path())
        .args(["hooks", "new", "Bad_Name", "--lang", "rust"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid hook name \"Bad_Name\""),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);

    std::fs::create_dir(work.path().join("taken")).unwrap();
    std::fs::write(work.path().join("taken/notes.txt"), "mine").unwrap();
    let out = hookauth(work.path())
        .args(["hooks", "new", "taken", "--lang", "js"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists and is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(work.path().join("taken"))
            .unwrap()
            .count(),
        1
    );

    let out = hookauth(work.path())
        .args(["hooks", "new", "greet", "--lang", "cobol"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rust") && stderr.contains("python"),
        "{stderr}"
    );

    let out = hookauth(work.path())
        .args([
            "hooks", "new", "greet", "--kind", "blocking", "--lang", "rust",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("event") && stderr.contains("gate"),
        "{stderr}"
    );
    assert!(!work.path().join("greet").exists());
}

fn run_output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
