//! `write-preview1-adapter OUT.wasm`: writes wasmtime 48.0.8's WASI preview1 reactor adapter.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER as ADAPTER;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .expect("usage: write-preview1-adapter OUT.wasm");
    std::fs::write(&out, ADAPTER).unwrap_or_else(|e| panic!("{}: {e}", out.to_string_lossy()));
}
