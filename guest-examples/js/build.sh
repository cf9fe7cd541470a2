#!/usr/bin/env bash
# Builds the JavaScript email hook:
#
#   ./build.sh [qjs|spidermonkey] [OUT.wasm]      (default: qjs, hook.wasm)
#
# 1. http-shim/ (Rust, wasm32-wasip2): hookauth:email-js/http over wasi:http;
# 2. hook.js -> component, with jco's QuickJS backend (default) or componentize-js (SpiderMonkey);
# 3. wasm-tools compose: plug the shim into the hook's `http` import.
# Needs node + `npm ci`, cargo with the wasm32-wasip2 target, and wasm-tools
# (scripts/install-guest-toolchains installs them).
set -euo pipefail
cd "$(dirname "$0")"
engine=${1:-qjs}
out=$(realpath -m "${2:-hook.wasm}")
mkdir -p build

cargo build --quiet --locked --release --target wasm32-wasip2 \
    --manifest-path http-shim/Cargo.toml --target-dir build/shim-target
# compose names the instance after the file, which must be kebab-case.
shim=build/http-shim.wasm
cp build/shim-target/wasm32-wasip2/release/http_shim.wasm "$shim"

case $engine in
    qjs)
        # --backend-qjs-disable-async: the host runs WASI 0.2 components without
        # component-model async, which componentize-qjs's default runtime uses.
        node node_modules/.bin/jco componentize hook.js --wit wit --world-name email-hook \
            --backend qjs --backend-qjs-disable-async -o build/hook-qjs.unplugged.wasm ;;
    spidermonkey)
        # Called directly: jco's own StarlingMonkey path fails in jco 1.35.0. `-d http
        # fetch-event`: no fetch() and no incoming-handler export (HTTP goes through the shim).
        node node_modules/@bytecodealliance/componentize-js/src/cli.js hook.js --wit wit \
            --world-name email-hook -d http fetch-event -o build/hook-spidermonkey.unplugged.wasm ;;
    *) echo "usage: $0 [qjs|spidermonkey] [OUT.wasm]" >&2; exit 2 ;;
esac

wasm-tools compose "build/hook-$engine.unplugged.wasm" -d "$shim" -o "$out"
echo "built $out ($(wc -c <"$out") bytes)"
