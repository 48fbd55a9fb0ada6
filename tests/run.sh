#!/usr/bin/env bash
# The test command. From nothing: installs what is missing, starts the TEST stack (ClickHouse +
# broker on the test ports and data dir, never the dev stack's), builds the workspace, runs every
# test suite, and stops the stack it started even when tests fail or are interrupted.
# Exit code: 0 when every suite passed.
#
#   tests/run.sh                    # everything
#   tests/run.sh -p auditlog-e2e    # extra arguments go to `cargo nextest run` / `cargo test`
#
# Environment: the STACK_* variables of deploy/local/stack.sh (ports, STACK_DATA_DIR) choose where
# the test stack runs; RUN_BROWSER=0 skips the browser suite, RUN_COMPOSE=0 the Docker files check,
# RUN_README=0 the README commands (tests/readme.sh). See docs/local-stack.md.
#
# RUN_FAULTS=0 skips the short fault-injection suite (tests/faults/run.sh --short).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$SECONDS
export STACK_PROFILE=test
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-$([[ -t 1 ]] && echo auto || echo never)}
STACK="$ROOT/deploy/local/stack.sh"

say() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)) "$*"; }

# ---------------------------------------------------------------------------------------------
# 1. System packages (Debian): only what is missing; needs root.
# ---------------------------------------------------------------------------------------------
need_pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
need curl curl
need python3 python3
need setsid util-linux
need flock util-linux
need cc build-essential
need make build-essential
need perl perl
need pkg-config pkg-config
# The cluster tests' coordinator (PrivateCluster): Apache ZooKeeper run from its jar with Java.
# libzookeeper-java is the jar and its libraries (what the `zookeeper` package depends on,
# without the Debian service and the desktop JRE it pulls in).
[[ -f /usr/share/java/zookeeper.jar ]] || need_pkgs+=(libzookeeper-java)
need java default-jre-headless
# The transactional outbox's databases (issue 19): each test starts its own private server
# from these binaries (auditlog_testkit::sql), on a free loopback port in a temporary dir.
[[ -x /usr/lib/postgresql/15/bin/postgres || -n "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]] || need_pkgs+=(postgresql)
need mariadbd mariadb-server
# The HTTP ingest's Go example is compiled by its test (docs/ingest.md).
need go golang-go
if [[ -x tests/browser/run.sh && "${RUN_BROWSER:-1}" != 0 ]]; then
    if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
        need_pkgs+=(chromium)
    fi
    need node nodejs
    need npm npm
fi
if ((${#need_pkgs[@]})); then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    say "installing system packages: ${need_pkgs[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/run.sh: missing packages ${need_pkgs[*]}; run as root or install them (apt-get install ${need_pkgs[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found (install Rust: https://rustup.rs)" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 2. The test stack. Stopped on exit, unless it was already running before we started
#    (then it belongs to someone else and stays up).
# ---------------------------------------------------------------------------------------------
# The stack tool first, with its build progress shown (the status check below is silent).
"$STACK" env >/dev/null
OWN_STACK=1
if "$STACK" status >/dev/null 2>&1; then
    OWN_STACK=0
fi
# Long steps run in the background so a signal interrupts `wait` at once (bash defers traps
# while a foreground child runs); the trap then stops that child and the stack.
CHILD=
run() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=
    return "$rc"
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$CHILD" ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    if ((OWN_STACK)); then
        say "stopping the test stack"
        "$STACK" down || true
    else
        say "leaving the test stack running (it was running before tests/run.sh started)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "tests/run.sh: interrupted" >&2; exit 130' INT TERM

say "starting the test stack (first run installs ClickHouse 25.8 and builds the Tansu broker, ~15 min on 2 cores)"
run "$STACK" up
eval "$("$STACK" env)"
export AUDITLOG_BIN="$ROOT/target/debug/auditlog"
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

# ---------------------------------------------------------------------------------------------
# 3. Build, schema, tests.
# ---------------------------------------------------------------------------------------------
say "building the workspace (cargo build --workspace --all-targets)"
run cargo build --workspace --all-targets

say "applying the schema to the test stack with the fresh binary"
run env STACK_AUDITLOG_BIN="$AUDITLOG_BIN" "$STACK" up

# The S3 destination's tests run a real S3-compatible server (moto's server mode, PyPI), one per
# test, started by auditlog_testkit::S3Server; installed here once per machine (~50 s) so no test
# pays for it.
say "installing the S3-compatible test server if missing (tests/s3/install-moto.sh)"
run tests/s3/install-moto.sh >/dev/null

failed=()
say "running the Rust tests"
if command -v cargo-nextest >/dev/null 2>&1; then
    run cargo nextest run --workspace --no-fail-fast "$@" || failed+=("cargo nextest")
else
    run cargo test --workspace --no-fail-fast "$@" || failed+=("cargo test")
fi

if [[ -x tests/compose/check.sh && "${RUN_COMPOSE:-1}" != 0 ]]; then
    say "checking the Compose files, their ClickHouse XML and deploy/Dockerfile (tests/compose/check.sh)"
    run tests/compose/check.sh || failed+=("tests/compose/check.sh")
fi
if [[ -x tests/readme.sh && "${RUN_README:-1}" != 0 ]]; then
    say "running the README's commands on a stack of their own (tests/readme.sh)"
    run tests/readme.sh || failed+=("tests/readme.sh")
fi
if [[ -x tests/browser/run.sh && "${RUN_BROWSER:-1}" != 0 ]]; then
    say "running the browser tests (tests/browser/run.sh)"
    run tests/browser/run.sh || failed+=("tests/browser/run.sh")
fi
if [[ -x tests/faults/run.sh && "${RUN_FAULTS:-1}" != 0 ]]; then
    say "running the fault-injection tests (tests/faults/run.sh --short)"
    run tests/faults/run.sh --short || failed+=("tests/faults/run.sh")
fi

if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}"
    exit 1
fi
say "all tests passed"
