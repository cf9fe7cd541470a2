#!/usr/bin/env bash
# Import throughput: `hookauth import users --jsonl` of N users (each with a bcrypt hash, a role,
# a profile field and an OAuth link) into a fresh database, then the same file again (everything
# already there). SQLite by default; PostgreSQL with HOOKAUTH_BENCH_POSTGRES_URL (a server URL;
# a fresh database is created on it).
#
# usage: bash benches/load/import.sh [N]      (BIN=path/to/hookauth; default target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-20000}"
BIN="${BIN:-target/release/hookauth}"
[ -x "$BIN" ] || cargo build --release --locked
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$N" >"$work/users.jsonl" <<'PY'
import json, sys
# A real bcrypt hash (cost 4, made by Python's bcrypt): the import only checks that it is usable.
h = "$2b$04$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MG"
print(json.dumps({"role": "member", "permissions": ["posts:read"]}))
for i in range(int(sys.argv[1])):
    print(json.dumps({"email": f"user{i}@example.com", "password_hash": h, "roles": ["member"],
                      "profile": {"display_name": f"User {i}"},
                      "oauth_accounts": [{"provider": "github", "provider_user_id": str(i)}]}))
PY
if [ -n "${HOOKAUTH_BENCH_POSTGRES_URL:-}" ]; then
    db="hookauth_import_bench_$$"
    psql "$HOOKAUTH_BENCH_POSTGRES_URL" -qc "CREATE DATABASE $db"
    trap 'psql "$HOOKAUTH_BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db"; rm -rf "$work"' EXIT
    export HOOKAUTH_DATABASE_URL="${HOOKAUTH_BENCH_POSTGRES_URL%/*}/$db"
    # Every HOOKAUTH_* variable is configuration to the server, and this one is not.
    bench_server="$HOOKAUTH_BENCH_POSTGRES_URL"
    unset HOOKAUTH_BENCH_POSTGRES_URL
    trap 'psql "$bench_server" -qc "DROP DATABASE IF EXISTS $db"; rm -rf "$work"' EXIT
else
    export HOOKAUTH_DATABASE_URL="sqlite://$work/hookauth.db"
fi
export HOOKAUTH_SECRET_KEY=import-bench-secret-0123456789abcdef0123 HOOKAUTH_LOG=warn
export HOOKAUTH_PROFILE_FIELDS__DISPLAY_NAME=string
"$BIN" migrate
for run in first again; do
    start=$(date +%s.%N)
    "$BIN" import users --jsonl "$work/users.jsonl" --json >"$work/report.json"
    end=$(date +%s.%N)
    python3 - "$run" "$N" "$start" "$end" "$work/report.json" <<'PY'
import json, sys
run, n, start, end, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
r = json.load(open(path))
secs = end - start
print(f"{run}: {n} users in {secs:.2f} s ({n / secs:,.0f} users/s): imported {r['imported']}, skipped {r['skipped']}")
PY
done
