//! `hookauth hooks new NAME --lang rust|js|python`: the project it writes builds with the
//! commands its README gives, passes `hooks check`, and, deployed into a server's hooks
//! directory with its own hooks.toml entry, fires on a real registration and login.
//! This is the five-minute walk-through of docs/hooks-languages.md, run on every test run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::server::{Server, hookauth};
use crate::support::{
    CRATE_DIR, example_dir, require_command, require_tool, require_wasip2_target, run,
};

/// Runs `hookauth hooks new NAME --lang LANG` in a fresh directory; returns it and the project.
fn hooks_new(name: &str, lang: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let out = hookauth(work.path())
        .args(["hooks", "new", name, "--lang", lang])
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
    for file in ["README.md", "hooks.toml", "wit/hooks.wit"] {
        assert!(project.join(file).is_file(), "{file} missing: {stdout}");
        assert!(stdout.contains(file), "{file} not listed: {stdout}");
    }
    (work, project)
}

/// `hooks check` against the project's own hooks.toml entry: valid, subscribed to what the
/// template subscribes to.
fn check(wasm: &Path, project: &Path, name: &str) {
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
    assert_eq!(report["wit"], "hookauth:hooks/handler@0.1.0", "{report}");
    assert_eq!(
        report["events"],
        serde_json::json!(["after_register", "after_login"]),
        "{report}"
    );
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
    let (_work, project) = hooks_new(name, "rust");
    require_wasip2_target("Rust");
    // The README's `cargo build --release`; only the target directory is the test run's, so
    // wit-bindgen is compiled once, not on every run.
    let target = Path::new(CRATE_DIR).join("target/scaffold-rust");
    run(
        "building the scaffolded Rust hook",
        Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .current_dir(&project)
            .args(["build", "--release"])
            .env("CARGO_TARGET_DIR", &target),
    );
    let wasm = target.join("wasm32-wasip2/release/greet_rust.wasm");
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
}

#[tokio::test]
async fn js_scaffold_builds_as_is_and_fires_on_registration() {
    let name = "greet-js";
    let (_work, project) = hooks_new(name, "js");
    require_command("JavaScript", "node", "--version");
    require_command("JavaScript", "npm", "--version");
    // The README's `npm install && npm run build`. --prefer-offline: the packages are the ones
    // scripts/install-guest-toolchains put in npm's cache for guest-examples/js.
    run(
        "npm install in the scaffolded JS hook",
        Command::new("npm").current_dir(&project).args([
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
        ]),
    );
    run(
        "building the scaffolded JS hook",
        Command::new("npm")
            .current_dir(&project)
            .args(["run", "build"]),
    );
    let wasm = project.join("greet-js.wasm");
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
}

#[tokio::test]
async fn python_scaffold_builds_as_is_and_fires_on_registration() {
    let name = "greet-python";
    let (_work, project) = hooks_new(name, "python");
    // The README's `pip install -r requirements.txt` gives the componentize-py version the
    // install script pins for guest-examples/python; the test uses that one.
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
            .current_dir(&project)
            .env("COMPONENTIZE_PY", &tool),
    );
    let wasm = project.join("greet-python.wasm");
    check(&wasm, &project, name);
    deploy_and_fire(&wasm, &project, name).await;
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
}

fn run_output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
