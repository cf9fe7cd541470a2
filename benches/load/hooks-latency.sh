#!/usr/bin/env bash
# Do after-event hooks add latency to the flows that fire them? Register and login p50/p99 at
# concurrency 1, on SQLite with hookauth's default argon2 parameters, with 0 and with 5 hooks
# (the audit-log example, which logs every event), in one session.
#
# usage: benches/load/hooks-latency.sh [DURATION]     (default 10s)
set -euo pipefail
DURATION="${1:-10s}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/target/bench-load/hooks-latency}"
PORT="${PORT:-8792}"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
bash "$ROOT/scripts/example-hooks" "$ROOT/target/bench-load/example-hooks" >/dev/null
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
export HOOKAUTH_RATE_LIMIT__ENABLED=false HOOKAUTH_LOG=warn
export HOOKAUTH_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789"
export API_PREFIX=/api/v1/auth BENCH_EMAIL=bench@example.com BENCH_PASSWORD=load-test-secret-123
BASE="http://127.0.0.1:$PORT"

for hooks in 0 5; do
  SCRATCH="$(mktemp -d)"
  mkdir "$SCRATCH/hooks"
  for i in $(seq 1 "$hooks"); do
    cp "$ROOT/target/bench-load/example-hooks/10-audit.wasm" "$SCRATCH/hooks/1$i-audit.wasm"
  done
  HOOKAUTH_DATABASE_URL="sqlite://$SCRATCH/bench.db" "$ROOT/target/release/hookauth" serve \
    --bind "127.0.0.1:$PORT" --hooks "$SCRATCH/hooks" > "$SCRATCH/server.log" 2>&1 &
  SERVER=$!
  # Ready, not just listening: until hooks are loaded the gated routes answer 503.
  for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf -XPOST "$BASE$API_PREFIX/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}" >/dev/null
  echo "== $hooks hooks" >&2
  wrk --latency --timeout 30s -d "$DURATION" -t1 -c1 -s "$HERE/register.lua" "$BASE" > "$OUT/register-hooks$hooks.txt"
  wrk --latency --timeout 30s -d "$DURATION" -t1 -c1 -s "$HERE/login.lua" "$BASE" > "$OUT/login-hooks$hooks.txt"
  kill $SERVER; wait $SERVER 2>/dev/null || true
  rm -rf "$SCRATCH"
done
python3 "$HERE/summarize.py" "$OUT"
