//! Helpers: where guests are built and the toolchain checks; hook directories, sample events,
//! log capture and the local HTTP sink are shared with tests/hooks (tests/common).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub use crate::hook_support::*;
pub use crate::shared::{CRATE_DIR, Sink};
pub const INSTALL: &str = "scripts/install-guest-toolchains";

/// Where the guests of this run are built (not in the source tree).
pub fn out_dir() -> PathBuf {
    let dir = Path::new(CRATE_DIR).join("target/guest-languages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn example_dir(lang: &str) -> PathBuf {
    Path::new(CRATE_DIR).join("guest-examples").join(lang)
}

/// Fails the test, naming the install script, when a tool the example needs is not there.
pub fn require_tool(lang: &str, path: &Path, what: &str) {
    assert!(
        path.exists(),
        "the {lang} guest toolchain is missing: {} not found ({what}).\n\
         Run `{INSTALL}` (CI's .ci/run does) to install every guest toolchain.",
        path.display()
    );
}

/// Fails the test, naming the install script, when a command is not on PATH or not runnable.
pub fn require_command(lang: &str, program: &str, version_arg: &str) {
    let ok = Command::new(program)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the {lang} guest toolchain is missing: `{program} {version_arg}` did not run.\n\
         Run `{INSTALL}` (CI's .ci/run does) to install every guest toolchain."
    );
}

/// Fails the test, naming the install script, when rustup's wasm32-wasip2 target is missing.
pub fn require_wasip2_target(lang: &str) {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    require_tool(
        lang,
        &PathBuf::from(sysroot).join("lib/rustlib/wasm32-wasip2"),
        "the Rust target wasm32-wasip2",
    );
}

/// Runs a build command; panics with its output when it fails. Returns how long it took.
pub fn run(what: &str, cmd: &mut Command) -> std::time::Duration {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({cmd:?}):\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

pub fn read(file: &Path) -> Vec<u8> {
    std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
