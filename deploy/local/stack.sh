#!/usr/bin/env bash
# The local stack: a real ClickHouse 25.8 server and a real Kafka-protocol broker (Tansu) on
# loopback, the topics and the schema, and (dev profile) the consumer, the API/dashboard and
# demo data. See docs/local-stack.md for every command and variable.
#
#   deploy/local/stack.sh up|down|status|env
#   deploy/local/stack.sh start|stop|restart clickhouse|broker|consumer|api
#   STACK_PROFILE=test deploy/local/stack.sh up     # infrastructure only, test ports
#
# A thin shim: the supervisor is the `auditlog-stack` binary (tools/stack, also the library the
# test kit and the fault suite call). This builds it when a source of it changed, then runs it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TARGET" = /* ]] || TARGET="$PWD/$TARGET"
BIN="$TARGET/debug/auditlog-stack"

# Fresh when built after every source of the tool (no cargo run at all then: `env` and
# `status` stay instant).
fresh() {
    [[ -x "$BIN" ]] && [[ -z "$(find "$ROOT/tools/stack" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
        -newer "$BIN" -print -quit 2>/dev/null)" ]]
}

if ! fresh; then
    command -v cargo >/dev/null || {
        echo "stack.sh: cargo is needed to build the stack tool (install Rust: https://rustup.rs)" >&2
        exit 1
    }
    echo "[stack] building the stack tool: cargo build -p auditlog-stack (first run: a few minutes)" >&2
    # In the background, with a line at least every 20 s (a long crate prints nothing for a
    # while); cargo's own lines go to stderr, so `env` output stays clean.
    (cd "$ROOT" && exec cargo build -p auditlog-stack) &
    build=$!
    trap 'kill "$build" 2>/dev/null || true' INT TERM EXIT
    started=$SECONDS last=$SECONDS
    while kill -0 "$build" 2>/dev/null; do
        sleep 1
        if ((SECONDS - last >= 20)); then
            echo "[stack] still building the stack tool ($((SECONDS - started))s)" >&2
            last=$SECONDS
        fi
    done
    wait "$build" || { echo "stack.sh: building the stack tool failed (output above)" >&2; exit 1; }
    trap - INT TERM EXIT
    touch "$BIN"
fi
STACK_ROOT=$ROOT exec "$BIN" "$@"
