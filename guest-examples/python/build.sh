#!/usr/bin/env bash
# Builds the Python analytics hook:  ./build.sh [OUT.wasm]   (default: analytics.wasm)
# Needs .venv with componentize-py 0.25.1 (scripts/install-guest-toolchains makes it).
set -euo pipefail
cd "$(dirname "$0")"
out=$(realpath -m "${1:-analytics.wasm}")
# --stub-wasi: the component imports no WASI at all (CPython would otherwise import
# wasi:sockets, which the host refuses). The app module name must differ from the world name.
.venv/bin/componentize-py -d ../../wit/v0.1.0 -w hook componentize --stub-wasi analytics -o "$out"
