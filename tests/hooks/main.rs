//! The Wasm hook host, end to end: real components (hostile WAT fixtures and the Rust guests in
//! guest-examples/, built once per run) loaded through `HookHost`.

#[path = "../common/hook_support.rs"]
mod hook_support;
#[path = "../common/process.rs"]
mod process;
#[path = "../common/shared.rs"]
mod shared;
mod support;

mod allow_list;
mod cache_files;
mod capacity;
mod compile_limits;
mod gates;
mod guests;
mod hostile;
mod loading;
mod sandbox_caps;
mod server;
