#!/usr/bin/env bash
# Fault injection and soak suite: drives the whole pipeline (producers -> broker -> two
# `auditlog consume` -> ClickHouse -> `auditlog serve`) under load while breaking it, and accounts
# for every event. See docs/reliability.md.
#
#   tests/faults/run.sh --short          # CI form (about 6-7 min), run by tests/run.sh
#   tests/faults/run.sh                  # release form (about 30 min): writes RELIABILITY.md
#   tests/faults/run.sh --only soak      # one scenario; other flags: --seed N --rate N (--help)
#
# Runs its OWN ClickHouse + broker through the stack library (tools/stack, what
# deploy/local/stack.sh runs; ports 48123/49000/49092, API 48080, consumers 48081-48082, data
# .data/faults), so stopping ClickHouse or restarting the broker never disturbs the dev or test
# stacks. Stops that stack at the end.
#
# The auditlog binary: AUDITLOG_BIN (tests/run.sh exports it), else this script builds
# target/debug/auditlog (--short) or target/release/auditlog (release form).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

short=0
for a in "$@"; do
    [[ "$a" == --short ]] && short=1
done

if [[ -z "${AUDITLOG_BIN:-}" ]]; then
    if ((short)); then
        cargo build -p auditlog
        export AUDITLOG_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/auditlog"
    else
        cargo build --release -p auditlog
        export AUDITLOG_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/auditlog"
    fi
fi
cargo build -p auditlog-faults

args=("$@")
if ((short)); then
    # The CI run must not rewrite the committed RELIABILITY.md.
    has_report=0
    for a in "$@"; do [[ "$a" == --report* ]] && has_report=1; done
    ((has_report)) || args+=(--report .data/faults/RELIABILITY-short.md)
fi
export FAULTS_COMMAND="tests/faults/run.sh${*:+ $*}"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TARGET" = /* ]] || TARGET="$ROOT/$TARGET"
exec "$TARGET/debug/auditlog-faults" "${args[@]}"
