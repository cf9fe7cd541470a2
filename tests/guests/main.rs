//! The non-Rust guest examples of guest-examples/ (JavaScript on QuickJS and on SpiderMonkey,
//! Python, C), each built by this test run with its real toolchain and run through `HookHost`
//! from a hooks directory with a `hooks.toml`, then all deployed in the real server and driven
//! over HTTP; the gate examples (Rust, JavaScript, Python), deployed and driven the same way;
//! and the projects `hookauth hooks new` scaffolds, built and deployed the same way.
//!
//! Slow by nature: building the JS (SpiderMonkey) and Python components takes 10-20 s each, and
//! compiling them in the host several seconds more. Each guest is built once per run.
//! A missing toolchain fails the test: run scripts/install-guest-toolchains.

mod build;
#[path = "../common/hook_support.rs"]
mod hook_support;
#[path = "../common/oauth_provider.rs"]
mod oauth_provider;
#[path = "../common/process.rs"]
mod process;
mod server;
#[path = "../common/shared.rs"]
mod shared;
mod support;

mod c;
mod deployed;
mod gates;
mod javascript;
mod oauth;
mod python;
mod scaffold;
