//! Builds each language's example exactly as its README says, once per test run, into
//! target/guest-languages/. A missing toolchain fails the test with a message naming
//! scripts/install-guest-toolchains: nothing is skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{
    example_dir, out_dir, read, require_command, require_tool, require_wasip2_target, run,
};

/// A built component.
pub struct Built {
    pub bytes: Vec<u8>,
    /// Wall time of the build command (read by benches/guest_languages.rs).
    #[allow(dead_code, reason = "read by benches/guest_languages.rs only")]
    pub took: Duration,
}

fn once(
    cell: &'static OnceLock<Built>,
    build: impl FnOnce() -> (PathBuf, Duration),
) -> &'static Built {
    cell.get_or_init(|| {
        let (file, took) = build();
        let bytes = read(&file);
        Built { bytes, took }
    })
}

fn js(engine: &str) -> (PathBuf, Duration) {
    let dir = example_dir("js");
    require_command("JavaScript", "node", "--version");
    require_command("JavaScript", "wasm-tools", "--version");
    // build.sh compiles the Rust HTTP shim for wasm32-wasip2.
    require_wasip2_target("JavaScript");
    require_tool(
        "JavaScript",
        &dir.join("node_modules/.bin/jco"),
        "npm packages of guest-examples/js",
    );
    let out = out_dir().join(format!("email-js-{engine}.wasm"));
    let took = run(
        &format!("building guest-examples/js for {engine}"),
        Command::new("bash")
            .current_dir(&dir)
            .args(["build.sh", engine])
            .arg(&out),
    );
    (out, took)
}

/// guest-examples/js with jco's QuickJS backend (`./build.sh qjs`).
pub fn js_quickjs() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || js("qjs"))
}

/// The same source with componentize-js (SpiderMonkey), called directly
/// (`./build.sh spidermonkey`).
pub fn js_spidermonkey() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || js("spidermonkey"))
}

/// guest-examples/js/role-by-domain, the gate, with jco's QuickJS backend (its `./build.sh`).
pub fn js_role_by_domain() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || {
        require_command("JavaScript", "node", "--version");
        require_tool(
            "JavaScript",
            &example_dir("js").join("node_modules/.bin/jco"),
            "npm packages of guest-examples/js",
        );
        let out = out_dir().join("role-by-domain-js.wasm");
        let took = run(
            "building guest-examples/js/role-by-domain",
            Command::new("bash")
                .current_dir(example_dir("js").join("role-by-domain"))
                .arg("build.sh")
                .arg(&out),
        );
        (out, took)
    })
}

fn python_build(hook: &str) -> (PathBuf, Duration) {
    let dir = example_dir("python");
    require_python(&dir);
    let out = out_dir().join(format!("{hook}-py.wasm"));
    let took = run(
        &format!("building guest-examples/python ({hook})"),
        Command::new("bash")
            .current_dir(&dir)
            .args(["build.sh", hook])
            .arg(&out),
    );
    (out, took)
}

fn require_python(example: &std::path::Path) {
    require_tool(
        "Python",
        &example.join(".venv/bin/componentize-py"),
        "componentize-py in guest-examples/python/.venv",
    );
}

/// guest-examples/python's analytics hook with componentize-py (`./build.sh analytics`).
pub fn python() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || python_build("analytics"))
}

/// guest-examples/python's collector hook, outbound HTTP (`./build.sh collector`).
pub fn python_collector() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || python_build("collector"))
}

/// guest-examples/python/claims, the token-claims gate (its `./build.sh`).
pub fn python_claims() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || {
        let example = example_dir("python");
        require_python(&example);
        let out = out_dir().join("claims-py.wasm");
        let took = run(
            "building guest-examples/python/claims",
            Command::new("bash")
                .current_dir(example.join("claims"))
                .arg("build.sh")
                .arg(&out),
        );
        (out, took)
    })
}

/// tests/fixtures/hooks/python/raw_socket.py, the hostile guest trying raw sockets: the `hook`
/// world without --stub-wasi, so it imports wasi:sockets like any CPython component.
pub fn python_raw_socket() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || {
        let example = example_dir("python");
        require_python(&example);
        let fixture =
            std::path::Path::new(crate::support::CRATE_DIR).join("tests/fixtures/hooks/python");
        let out = out_dir().join("raw-socket-py.wasm");
        let took = run(
            "building tests/fixtures/hooks/python/raw_socket.py",
            Command::new(example.join(".venv/bin/componentize-py"))
                .current_dir(&fixture)
                .args(["-d", "../../../../wit/v0.1.0", "-w", "hook", "componentize"])
                .args(["raw_socket", "-o"])
                .arg(&out),
        );
        (out, took)
    })
}

/// guest-examples/c with its Makefile (`make`).
pub fn c() -> &'static Built {
    static CELL: OnceLock<Built> = OnceLock::new();
    once(&CELL, || {
        require_command("C", "clang-19", "--version");
        require_command("C", "wit-bindgen", "--version");
        require_command("C", "wasm-tools", "--version");
        require_tool(
            "C",
            std::path::Path::new("/usr/lib/wasm32-wasi/libc.a"),
            "Debian's wasi-libc",
        );
        let build = out_dir().join("c");
        let took = run(
            "building guest-examples/c",
            Command::new("make")
                .current_dir(example_dir("c"))
                .arg(format!("BUILD={}", build.display())),
        );
        (build.join("audit.wasm"), took)
    })
}
