#!/usr/bin/env bash
# What a trivial gate adds over HTTP: register and login p50/p99 at concurrency 1, and refresh
# at concurrency 1 and 32, on SQLite with hookauth's default argon2 parameters, without gates
# and with one trivial Rust gate (tests/fixtures/gate-probe) serving every decision point, in one
# session (so the ratio is measured under the same machine noise). Both variants also run the
# trivial after-event hook guest-examples/rust/minimal: on this VM a server with no hook at
# all logs in ~40 % *slower* (27 vs 16 ms p50), apparently because its vCPUs idle between
# requests, which would make any gate look like a speed-up.
#
# usage: benches/load/gates.sh [DURATION] [ROUNDS]     (default 10s, 2 rounds)
# Rounds alternate the variants (none, gate, none, gate, ...) so drift in machine load hits
# both alike.
# BENCH_BIN=PATH runs that binary instead of building this tree.
set -euo pipefail
DURATION="${1:-10s}"
ROUNDS="${2:-2}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/target/bench-load/gates}"
PORT="${PORT:-8793}"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
cargo build --release --quiet --target wasm32-wasip2 --target-dir "$ROOT/target/gate-probe" \
  --manifest-path "$ROOT/tests/fixtures/gate-probe/Cargo.toml"
PROBE="$ROOT/target/gate-probe/wasm32-wasip2/release/gate_probe.wasm"
cargo build --release --quiet --target wasm32-wasip2 --target-dir "$ROOT/target/guest-examples" \
  --manifest-path "$ROOT/guest-examples/rust/Cargo.toml"
MINIMAL="$ROOT/target/guest-examples/wasm32-wasip2/release/minimal.wasm"
BIN="${BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/hookauth"
fi
export HOOKAUTH_RATE_LIMIT__ENABLED=false HOOKAUTH_LOG=warn
export HOOKAUTH_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789"
export API_PREFIX=/api/v1/auth BENCH_EMAIL=bench@example.com BENCH_PASSWORD=load-test-secret-123
BASE="http://127.0.0.1:$PORT"
BODY="{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

for round in $(seq 1 "$ROUNDS"); do
for variant in none gate; do
  SCRATCH="$(mktemp -d)"
  mkdir "$SCRATCH/hooks"
  cp "$MINIMAL" "$SCRATCH/hooks/10-minimal.wasm"
  if [ "$variant" = gate ]; then
    cp "$PROBE" "$SCRATCH/hooks/20-probe.wasm"
  fi
  HOOKAUTH_DATABASE_URL="sqlite://$SCRATCH/bench.db" "$BIN" serve \
    --bind "127.0.0.1:$PORT" --hooks "$SCRATCH/hooks" > "$SCRATCH/server.log" 2>&1 &
  SERVER=$!
  # Ready, not just listening: until hooks are loaded the gated routes answer 503.
  for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf -XPOST "$BASE$API_PREFIX/register" -H 'content-type: application/json' -d "$BODY" >/dev/null
  export REFRESH_TOKENS_FILE="$SCRATCH/refresh-tokens.txt"
  : > "$REFRESH_TOKENS_FILE"
  for _ in $(seq 1 32); do
    curl -sf -XPOST "$BASE$API_PREFIX/login" -H 'content-type: application/json' -d "$BODY" |
      json_field refresh_token >> "$REFRESH_TOKENS_FILE"
  done
  echo "== round $round: $variant" >&2
  wrk --latency --timeout 30s -d "$DURATION" -t1 -c1 -s "$HERE/register.lua" "$BASE" > "$OUT/register-c1-$variant-$round.txt"
  wrk --latency --timeout 30s -d "$DURATION" -t1 -c1 -s "$HERE/login.lua" "$BASE" > "$OUT/login-c1-$variant-$round.txt"
  wrk --latency --timeout 30s -d "$DURATION" -t1 -c1 -s "$HERE/refresh.lua" "$BASE" > "$OUT/refresh-c1-$variant-$round.txt"
  # Fresh tokens: the c1 run rotated the first one.
  : > "$REFRESH_TOKENS_FILE"
  for _ in $(seq 1 32); do
    curl -sf -XPOST "$BASE$API_PREFIX/login" -H 'content-type: application/json' -d "$BODY" |
      json_field refresh_token >> "$REFRESH_TOKENS_FILE"
  done
  wrk --latency --timeout 30s -d "$DURATION" -t32 -c32 -s "$HERE/refresh.lua" "$BASE" > "$OUT/refresh-c32-$variant-$round.txt"
  kill $SERVER; wait $SERVER 2>/dev/null || true
  rm -rf "$SCRATCH"
done
done
python3 "$HERE/summarize.py" "$OUT"
