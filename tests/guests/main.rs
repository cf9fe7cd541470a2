//! The non-Rust guest examples of guest-examples/ (JavaScript on QuickJS and on SpiderMonkey,
//! Python, C), each built by this test run with its real toolchain and run through `HookHost`
//! from a hooks directory with a `hooks.toml`, the way an operator deploys them.
//!
//! Slow by nature: building the JS (SpiderMonkey) and Python components takes 10-20 s each, and
//! compiling them in the host several seconds more. Each guest is built once per run.
//! A missing toolchain fails the test: run scripts/install-guest-toolchains.

mod build;
// Shared with tests/hooks and tests/it; this suite uses the sink, not the Rust/WAT builders.
#[allow(dead_code)]
#[path = "../common/shared.rs"]
mod shared;
mod support;

mod c;
mod javascript;
mod python;
