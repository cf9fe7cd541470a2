#!/usr/bin/env bash
# Builds a Python hook:  ./build.sh [analytics|collector] [OUT.wasm]   (default: analytics,
# OUT = HOOK.wasm). Needs .venv with componentize-py 0.25.1 (scripts/install-guest-toolchains
# makes it). The app module name must differ from the world name.
set -euo pipefail
cd "$(dirname "$0")"
hook=${1:-analytics}
out=$(realpath -m "${2:-$hook.wasm}")
case $hook in
    analytics)
        # --stub-wasi: the component imports no WASI at all; it needs none.
        .venv/bin/componentize-py -d ../../wit/v0.1.0 -w hook componentize --stub-wasi \
            analytics -o "$out" ;;
    collector)
        # Real WASI: wasi:http for the POST. CPython also brings wasi:sockets, which the host
        # links inert (every address refused), so allowed_hosts stays the only way out.
        .venv/bin/componentize-py -d wit -w collector-hook componentize collector -o "$out" ;;
    *) echo "usage: $0 [analytics|collector] [OUT.wasm]" >&2; exit 2 ;;
esac
echo "built $out ($(wc -c <"$out") bytes)"
