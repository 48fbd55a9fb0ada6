#!/usr/bin/env bash
# The README's commands, run as written: every fenced ```sh block of README.md, in order, against
# a dev-like stack of its own (the dev profile: consumer, API, demo data) on separate ports and a
# separate data directory, so neither the dev stack nor the test stack is touched.
#
#   tests/readme.sh                   # called by tests/run.sh after the Rust tests (RUN_README=0 skips)
#
# A block is skipped only when the line before it says why: <!-- readme-test: skip (reason) -->.
# Each block runs with `bash -euo pipefail` from the repository root and must exit 0. Then:
#   - an event piped into `auditlog emit` as JSON must show up in the demo workspace, through
#     the API with the demo token (by its description) and in ClickHouse;
#   - `auditlog emit --synthetic N` must add N events to ClickHouse.
#
# How the commands are bridged to this stack (printed as they are applied):
#   - the dev defaults in the text are rewritten: ports 8123/9000/9092/8080/8081 to this stack's,
#     `.data/dev` to this stack's data directory, `target/release/auditlog` to the debug binary
#     that tests/run.sh has just built (README's `stack.sh up` builds the release binary; the
#     suite shares the debug build instead of compiling the workspace twice);
#   - STACK_* variables make `deploy/local/stack.sh` use this stack (and the debug binary:
#     STACK_AUDITLOG_BIN), and AUDITLOG_KAFKA__BROKERS / AUDITLOG_CLICKHOUSE__URL point a bare
#     `auditlog` command, which relies on the dev defaults, at this stack.
#
# It starts the stack from an empty data directory (unless that stack is already running, which
# it then leaves running) and stops it at the end, even on failure. Takes about a minute.
#
# Environment: README_FILE (default README.md), README_STACK_DIR (default .data/readme), README_PORT_BASE (default 26000: ports
# 26123, 27000, 27092, 26080, 26081, clear of the dev 8xxx, test 18xxx, fault-injection 28xxx and
# docker-compose 38xxx ports), AUDITLOG_BIN (default target/debug/auditlog).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$SECONDS
say() { printf '[readme %3ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() { say "FAIL: $*"; exit 1; }

# README commands that start the test suite would start this script again, and so on.
[[ -z "${README_TEST_ACTIVE:-}" ]] || fail "started from inside a README block: a README block runs the test suite without a skip marker"
export README_TEST_ACTIVE=1
README=${README_FILE:-$ROOT/README.md}

BIN=${AUDITLOG_BIN:-$ROOT/target/debug/auditlog}
[[ -x "$BIN" ]] || fail "$BIN not found: build it first (cargo build -p auditlog)"
BIN_REL=${BIN#"$ROOT"/}
BASE=${README_PORT_BASE:-26000}
DATA_REL=${README_STACK_DIR:-.data/readme}
DATA_REL=${DATA_REL#"$ROOT"/}

export STACK_PROFILE=dev
export STACK_DATA_DIR="$ROOT/$DATA_REL"
export STACK_CH_HTTP_PORT=$((BASE + 123)) STACK_CH_TCP_PORT=$((BASE + 1000))
export STACK_KAFKA_PORT=$((BASE + 1092)) STACK_API_PORT=$((BASE + 80)) STACK_CONSUMER_PORT=$((BASE + 81))
export STACK_AUDITLOG_BIN="$BIN"
# A bare `auditlog` command in the README relies on the dev defaults (127.0.0.1:9092, :8123).
for v in $(compgen -e); do [[ $v == AUDITLOG_* ]] && unset "$v"; done
export AUDITLOG_KAFKA__BROKERS="127.0.0.1:$STACK_KAFKA_PORT"
export AUDITLOG_CLICKHOUSE__URL="http://127.0.0.1:$STACK_CH_HTTP_PORT"
STACK="$ROOT/deploy/local/stack.sh"
CH="http://127.0.0.1:$STACK_CH_HTTP_PORT"
API="http://127.0.0.1:$STACK_API_PORT"

WORK=$(mktemp -d)
OWN_STACK=1
if "$STACK" status >/dev/null 2>&1; then
    OWN_STACK=0
    say "the README stack ($DATA_REL) is already running: using it, and leaving it running"
else
    # From nothing, like a newcomer: the first `up` seeds the demo data.
    "$STACK" down >/dev/null 2>&1 || true
    rm -rf "$STACK_DATA_DIR"
fi
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    ((rc == 0)) || say "FAILED (exit $rc); the README stack's logs: $STACK_DATA_DIR/logs/"
    if ((OWN_STACK)); then
        say "stopping the README stack"
        "$STACK" down >"$WORK/down.log" 2>&1 || cat "$WORK/down.log"
        ((rc == 0)) && rm -rf "$STACK_DATA_DIR"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the blocks, with the substitutions applied
python3 - "$README" "$WORK" "$BASE" "$DATA_REL" "$BIN_REL" <<'EOF'
import re, sys
readme, work, base, data, binary = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
subs = [
    ("127.0.0.1:8123", f"127.0.0.1:{base + 123}"),
    ("127.0.0.1:9000", f"127.0.0.1:{base + 1000}"),
    ("127.0.0.1:9092", f"127.0.0.1:{base + 1092}"),
    ("127.0.0.1:8080", f"127.0.0.1:{base + 80}"),
    ("127.0.0.1:8081", f"127.0.0.1:{base + 81}"),
    (".data/dev", data),
    ("target/release/auditlog", binary),
]
lines = open(readme, encoding="utf-8").read().split("\n")
blocks, i, skip = [], 0, None
while i < len(lines):
    line = lines[i]
    m = re.match(r"\s*<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->\s*$", line)
    if m:
        skip = m.group(1)
        i += 1
        continue
    fence = re.match(r"(\s*)```(\S*)\s*$", line)
    if fence:
        indent, lang = fence.group(1), fence.group(2)
        body, j = [], i + 1
        while j < len(lines) and not re.match(r"\s*```\s*$", lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if lang == "sh":
            blocks.append((i + 1, "\n".join(body), skip))
        i, skip = j + 1, None
        continue
    if line.strip():
        skip = None  # a skip marker applies to the block right after it only
    i += 1
bad = [ln for ln, text, skip in blocks if not skip and re.search(r"(^|[\s;&|(])tests/(run|readme)\.sh\b", text, re.M)]
if bad:
    sys.exit(f"README.md:{bad[0]}: a block runs the test suite itself: mark it with <!-- readme-test: skip (reason) -->")
with open(f"{work}/manifest", "w") as manifest:
    for n, (lineno, text, skip) in enumerate(blocks):
        applied = text
        for a, b in subs:
            applied = applied.replace(a, b)
        with open(f"{work}/{n:02d}.sh", "w") as f:
            f.write(applied + "\n")
        with open(f"{work}/{n:02d}.orig", "w") as f:
            f.write(text + "\n")
        manifest.write(f"{n:02d}\t{lineno}\t{skip or ''}\n")
EOF
[[ -s "$WORK/manifest" ]] || fail "README.md has no sh blocks"

ch() { curl -fsS --max-time 10 "$CH/" --data-binary "$1"; }
written_since() { ch "SELECT count() FROM auditlog.events WHERE inserted_at >= toDateTime64('$1', 3, 'UTC')" 2>/dev/null || echo 0; }

# Waits (60 s at most) until the API shows an event with this description in the demo workspace.
expect_in_demo_workspace() {
    local description=$1 token ws q deadline=$((SECONDS + 60))
    token=$(<"$STACK_DATA_DIR/demo-token") ws=$(<"$STACK_DATA_DIR/demo-workspace")
    q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$description")
    until curl -fsS -H "Authorization: Bearer $token" "$API/v1/events?q=$q&limit=5" 2>/dev/null \
        | python3 -c 'import json, sys; d = sys.argv[1]; sys.exit(0 if any(e.get("description") == d for e in json.load(sys.stdin)["data"]) else 1)' "$description"; do
        ((SECONDS < deadline)) || fail "\"$description\" did not show up in the demo workspace $ws through the API within 60 s"
        sleep 1
    done
    local n wq
    wq=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$ws")
    n=$(curl -fsS --max-time 10 "$CH/?param_ws=$wq&param_d=$q" --data-binary \
        "SELECT count() FROM auditlog.events WHERE workspace_id = {ws:String} AND description = {d:String}")
    ((n >= 1)) || fail "\"$description\" is in the API but not in ClickHouse for $ws"
    say "  ok: \"$description\" is in the demo workspace $ws (API and ClickHouse)"
}

ran=0 skipped=0
while IFS=$'\t' read -r n lineno skip; do
    if [[ -n "$skip" ]]; then
        say "README.md:$lineno: skipped ($skip)"
        skipped=$((skipped + 1))
        continue
    fi
    say "README.md:$lineno: running"
    sed 's/^/    $ /' "$WORK/$n.orig"
    if ! cmp -s "$WORK/$n.orig" "$WORK/$n.sh"; then
        echo "  as run here (this stack's ports, data dir and binary):"
        sed 's/^/    $ /' "$WORK/$n.sh"
    fi
    # Rows the consumer writes from now on (other rows may expire meanwhile: a count of the
    # whole table would not tell).
    since=$(ch "SELECT toString(now64(3, 'UTC'))" 2>/dev/null || echo "1970-01-01 00:00:00.000")
    # As a newcomer's shell would run it: no RUST_BACKTRACE from tests/run.sh.
    if ! timeout 900 env -u RUST_BACKTRACE bash -euo pipefail "$WORK/$n.sh" >"$WORK/$n.out" 2>&1; then
        if (($(wc -l <"$WORK/$n.out") > 50)); then
            { head -n 25 "$WORK/$n.out"; echo "[...]"; tail -n 25 "$WORK/$n.out"; } | sed 's/^/    | /'
        else
            sed 's/^/    | /' "$WORK/$n.out"
        fi
        fail "README.md:$lineno: the block exited non-zero (output above)"
    fi
    tail -n 8 "$WORK/$n.out" | sed 's/^/    | /'
    [[ ! -s "$WORK/$n.out" || -z "$(tail -c 1 "$WORK/$n.out")" ]] || echo  # output without a final newline
    ran=$((ran + 1))
    # What the commands claim to do, checked.
    while IFS= read -r d; do
        [[ -n "$d" ]] && expect_in_demo_workspace "$d"
    done < <(grep -F 'auditlog emit' "$WORK/$n.sh" >/dev/null && grep -oE '"description":"[^"]+"' "$WORK/$n.sh" | sed 's/^"description":"//; s/"$//' || true)
    synthetic=$({ grep -oE 'auditlog emit --synthetic [0-9]+' "$WORK/$n.sh" || true; } | awk '{s += $4} END {print s + 0}')
    if ((synthetic > 0)); then
        deadline=$((SECONDS + 90))
        until (($(written_since "$since") >= synthetic)); do
            ((SECONDS < deadline)) || fail "README.md:$lineno: emit --synthetic $synthetic: only $(written_since "$since") new events in ClickHouse after 90 s"
            sleep 1
        done
        say "  ok: $synthetic synthetic events landed in ClickHouse"
    fi
done <"$WORK/manifest"

((ran > 0)) || fail "no README block ran"
# The demo data the dashboard opens on spans weeks, not a minute.
span=$(ch "SELECT dateDiff('day', min(time), max(time)) FROM auditlog.events WHERE workspace_id = '$(<"$STACK_DATA_DIR/demo-workspace")'")
((span >= 14)) || fail "the demo workspace's events span only $span days"
say "ok: $ran README blocks ran as written, $skipped skipped with a reason; demo data spans $span days"
