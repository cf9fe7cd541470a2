#!/usr/bin/env bash
# Builds the role-by-domain gate:  ./build.sh [OUT.wasm]   (default: role-by-domain.wasm)
#
# gate.js -> component for the `gate-hook` world of wit/v0.2.0, with jco's QuickJS backend.
# No HTTP shim (unlike ../build.sh): the gate makes no requests. Needs node and `npm ci` in
# guest-examples/js (scripts/install-guest-toolchains does it).
set -euo pipefail
cd "$(dirname "$0")"
out=$(realpath -m "${1:-role-by-domain.wasm}")

# --backend-qjs-disable-async: the host runs WASI 0.2 components without component-model
# async, which componentize-qjs's default runtime uses.
node ../node_modules/.bin/jco componentize gate.js --wit ../../../wit/v0.2.0 \
    --world-name gate-hook --backend qjs --backend-qjs-disable-async -o "$out"
echo "built $out ($(wc -c <"$out") bytes)"
