#!/usr/bin/env bash
# Builds the claims gate:  ./build.sh [OUT.wasm]   (default: claims.wasm)
#
# componentize-py for the `claims-gate` world of wit/world.wit (wit/v0.2.0's `gate-hook` plus
# wasi:http/outgoing-handler), without --stub-wasi: the GET needs real WASI. Needs ../.venv with
# componentize-py 0.25.1 (scripts/install-guest-toolchains makes it).
set -euo pipefail
cd "$(dirname "$0")"
out=$(realpath -m "${1:-claims.wasm}")
../.venv/bin/componentize-py -d wit -w claims-gate componentize claims -o "$out"
echo "built $out ($(wc -c <"$out") bytes)"
