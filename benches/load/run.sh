#!/usr/bin/env bash
# Load test of a running hookauth (release build): GET /me, POST /refresh and POST /login at
# concurrency 1 and 32, with wrk, exactly as fastapi-fullauth's baseline was measured.
#
# usage: benches/load/run.sh sqlite|postgres [DURATION]      (default 10s)
#   postgres uses $HOOKAUTH_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   and creates a fresh database in it.
# BENCH_BIN=PATH runs that binary instead of building this tree.
# Needs wrk (apt-get install wrk), curl and python3. Results: $BENCH_OUT (default
# target/bench-load/<backend>), then a table on stdout.
set -euo pipefail
BACKEND="${1:?usage: run.sh sqlite|postgres [DURATION]}"
DURATION="${2:-10s}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/target/bench-load/$BACKEND}"
SCRATCH="$(mktemp -d)"
PORT="${PORT:-8791}"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

case "$BACKEND" in
  sqlite) export HOOKAUTH_DATABASE_URL="sqlite://$SCRATCH/bench.db" ;;
  postgres)
    PG="${HOOKAUTH_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    DB="hookauth_bench_$$"
    psql "$PG" -qc "CREATE DATABASE $DB"
    export HOOKAUTH_DATABASE_URL="${PG%/*}/$DB" ;;
  *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
esac

# Like the peer's baseline: rate limits off (one client IP would only measure 429s), everything
# else default, and argon2id with the peer's parameters (argon2-cffi defaults) for a like-for-like
# login comparison.
export HOOKAUTH_RATE_LIMIT__ENABLED=false
export HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB=65536
export HOOKAUTH_PASSWORD__ARGON2_ITERATIONS=3
export HOOKAUTH_PASSWORD__ARGON2_PARALLELISM=4
export HOOKAUTH_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789"
export HOOKAUTH_LOG=warn
export API_PREFIX=/api/v1/auth BENCH_EMAIL=bench@example.com BENCH_PASSWORD=load-test-secret-123
BASE="http://127.0.0.1:$PORT"

# BENCH_BIN: a prebuilt binary (e.g. an older build, for a same-session comparison).
BIN="${BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/hookauth"
fi
"$BIN" serve --bind "127.0.0.1:$PORT" > "$SCRATCH/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
# Ready, not just listening: until hooks are loaded the gated routes answer 503.
for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done

BODY="{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
curl -sf -XPOST "$BASE$API_PREFIX/register" -H 'content-type: application/json' -d "$BODY" >/dev/null
ACCESS=$(curl -sf -XPOST "$BASE$API_PREFIX/login" -H 'content-type: application/json' -d "$BODY" | json_field access_token)
export REFRESH_TOKENS_FILE="$SCRATCH/refresh-tokens.txt"
make_refresh_tokens() {  # $1 logins, each its own session
  : > "$REFRESH_TOKENS_FILE"
  for _ in $(seq 1 "$1"); do
    curl -sf -XPOST "$BASE$API_PREFIX/login" -H 'content-type: application/json' -d "$BODY" |
      json_field refresh_token >> "$REFRESH_TOKENS_FILE"
  done
}
run() {  # name, then wrk arguments
  local name="$1"; shift
  echo "== $name" >&2
  wrk --latency --timeout 30s -d "$DURATION" "$@" > "$OUT/$name.txt"
  sleep 1
}

run me-c1  -t1 -c1  -H "Authorization: Bearer $ACCESS" "$BASE$API_PREFIX/me"
run me-c32 -t2 -c32 -H "Authorization: Bearer $ACCESS" "$BASE$API_PREFIX/me"
make_refresh_tokens 1
run refresh-c1  -t1  -c1  -s "$HERE/refresh.lua" "$BASE"
make_refresh_tokens 32
run refresh-c32 -t32 -c32 -s "$HERE/refresh.lua" "$BASE"
run login-c1  -t1 -c1  -s "$HERE/login.lua" "$BASE"
run login-c32 -t2 -c32 -s "$HERE/login.lua" "$BASE"

python3 "$HERE/summarize.py" "$OUT"
if [ "$BACKEND" = postgres ]; then
  kill $SERVER; wait $SERVER 2>/dev/null || true
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB" || true
fi
