#!/usr/bin/env bash
# Event delivery, this build against the old one-at-a-time dispatcher (commit 484080c), in one
# session, loopback only: events/s to the real welcome-email Wasm hook calling an API that
# answers in 50 ms; p99 commit→handled lag of a healthy tenant while another tenant's hook
# sleeps to its 1 s deadline on every event; RSS with a 100,000-event backlog; register/login
# latency with the hook delivering. See benches/delivery.rs for each scenario.
#
# usage: benches/load/delivery.sh [OLD_TREE]    (default /work/old-dispatcher)
#   OLD_TREE is created with `git worktree add --detach OLD_TREE 484080c` if missing; this file's
#   bench is copied into it (the library API it uses is the same in both).
#   PROFILE=release for release builds (default: dev, whose dependencies are opt-level 2).
#   DELIVERY_BENCH_ONLY=throughput,lag,backlog,flows picks scenarios.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OLD="${1:-/work/old-dispatcher}"
PROFILE="${PROFILE:-dev}"
if [ ! -d "$OLD" ]; then git -C "$ROOT" worktree add --detach "$OLD" 484080c; fi
bash "$ROOT/scripts/example-hooks" "$ROOT/target/bench-load/example-hooks" >/dev/null
export DELIVERY_BENCH_WELCOME="$ROOT/target/bench-load/example-hooks/20-welcome.wasm"
export HOOKAUTH_LOG=error RUST_LOG=error
export DELIVERY_BENCH_EVENTS="${DELIVERY_BENCH_EVENTS:-1000}"
# Each tree builds in its own target directory: cargo hashes a path package relative to its
# workspace, so two trees sharing one would overwrite (and run) each other's builds.
unset CARGO_TARGET_DIR

cp "$ROOT/benches/delivery.rs" "$OLD/benches/delivery.rs"
grep -q 'name = "delivery"' "$OLD/Cargo.toml" ||
  printf '\n[[bench]]\nname = "delivery"\nharness = false\n' >> "$OLD/Cargo.toml"

for tree in "$OLD" "$ROOT"; do
  # The old dispatcher has no circuit breaker to switch off.
  label="new"; breaker_off=1
  if [ "$tree" = "$OLD" ]; then label="old (484080c)"; breaker_off=; fi
  echo "== $label: building ($PROFILE)" >&2
  (cd "$tree" && DELIVERY_BENCH_LABEL="$label" DELIVERY_BENCH_NO_BREAKER="$breaker_off" \
    cargo bench --profile "$PROFILE" --bench delivery)
done
