#!/usr/bin/env bash
# The local stack: a real ClickHouse 25.8 server and a real Kafka-protocol broker (Tansu) on
# loopback, the topics and the schema, and (dev profile) the consumer, the API/dashboard and
# demo data. See docs/local-stack.md for every command and variable.
#
#   deploy/local/stack.sh up|down|status|env
#   deploy/local/stack.sh start|stop|restart clickhouse|broker|consumer|api
#   STACK_PROFILE=test deploy/local/stack.sh up     # infrastructure only, test ports
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/local"

CHDB_VERSION=3.7.2
TANSU_VERSION=0.6.0
T0=$SECONDS

# ---------------------------------------------------------------------------------------------
# Settings: profile defaults, each overridable by a STACK_* variable.
# ---------------------------------------------------------------------------------------------
PROFILE=${STACK_PROFILE:-dev}
case "$PROFILE" in
    dev) d_http=8123 d_tcp=9000 d_kafka=9092 d_api=8080 d_consumer=8081 d_apps=1 ;;
    test) d_http=18123 d_tcp=19000 d_kafka=19092 d_api=18080 d_consumer=18081 d_apps=0 ;;
    *) echo "stack.sh: STACK_PROFILE must be dev or test, not '$PROFILE'" >&2; exit 2 ;;
esac
CH_HTTP_PORT=${STACK_CH_HTTP_PORT:-$d_http}
CH_TCP_PORT=${STACK_CH_TCP_PORT:-$d_tcp}
KAFKA_PORT=${STACK_KAFKA_PORT:-$d_kafka}
API_PORT=${STACK_API_PORT:-$d_api}
CONSUMER_PORT=${STACK_CONSUMER_PORT:-$d_consumer}
DATA_DIR=${STACK_DATA_DIR:-.data/$PROFILE}
[[ "$DATA_DIR" = /* ]] || DATA_DIR="$ROOT/$DATA_DIR"
APPS=${STACK_APPS:-$d_apps}
SEED=${STACK_SEED:-$d_apps}
DATABASE=${STACK_DATABASE:-auditlog}
TOPIC=${STACK_TOPIC:-audit-events}
DLQ_TOPIC=${STACK_DLQ_TOPIC:-audit-events-dlq}
PARTITIONS=${STACK_PARTITIONS:-6}
TIMEOUT=${STACK_TIMEOUT:-60}
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-20}
CH_MEMORY_RATIO=${STACK_CH_MEMORY_RATIO:-0.25}
CACHE_DIR=${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog}
CHDB_DIR="$CACHE_DIR/chdb-$CHDB_VERSION"
CHDB_LIB="$CHDB_DIR/chdb/_chdb.abi3.so"
if [[ -n "${STACK_AUDITLOG_BIN:-}" ]]; then
    BIN=$STACK_AUDITLOG_BIN
elif [[ "$PROFILE" = dev ]]; then
    BIN="$ROOT/target/release/auditlog"
else
    BIN="$ROOT/target/debug/auditlog"
fi

RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
# Every process the stack starts carries this in its environment: that is how `down`, `stop`
# and a second `up` recognise their own PIDs (a recycled PID never matches).
INSTANCE="STACK_INSTANCE=$DATA_DIR"

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
log() { printf '[stack %s %4ds] %s\n' "$PROFILE" $((SECONDS - T0)) "$*"; }
warn() { printf '[stack %s %4ds] WARNING: %s\n' "$PROFILE" $((SECONDS - T0)) "$*" >&2; }
die() { printf '[stack %s %4ds] ERROR: %s\n' "$PROFILE" $((SECONDS - T0)) "$*" >&2; exit 1; }

# Prints the last lines of the given log files (those that exist).
show_logs() {
    local f
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        echo "---- last lines of $f ----" >&2
        tail -n 30 "$f" >&2
        echo "----" >&2
    done
}

# ---------------------------------------------------------------------------------------------
# Processes: PID files, ownership, ports
# ---------------------------------------------------------------------------------------------
pid_file() { echo "$RUN_DIR/$1.pid"; }

# True when PID is alive (not a zombie) and was started by this stack instance.
is_ours() {
    local pid=$1 state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/environ" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ "$state" != Z ]] || return 1
    { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "$INSTANCE"
}

# Whether PID is a live process (not a zombie). Once a PID is known to be ours, this is the
# check to watch it with: `is_ours` reads /proc/PID/environ, which is briefly unreadable while
# the process execs (spawn's `setsid` execs the component), and a starting component must not
# be taken for a dead one then (it would keep running, untracked).
alive() {
    local pid=$1 stat
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat%% *}" != Z ]]
}

# Prints the PID of a running component of this stack; removes a stale PID file.
running_pid() {
    local f pid
    f=$(pid_file "$1")
    [[ -f "$f" ]] || return 1
    pid=$(<"$f")
    if is_ours "$pid"; then
        echo "$pid"
        return 0
    fi
    rm -f "$f"
    return 1
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Fails with the port named when it is already taken by something that is not ours.
require_free_port() {
    local port=$1 what=$2 holder=""
    if port_open "$port"; then
        if command -v ss >/dev/null; then
            holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 3 || true)
        fi
        die "port $port ($what) is already in use by another process${holder:+:
$holder}
Stop that process or choose another port (see docs/local-stack.md: STACK_*_PORT)."
    fi
}

# Starts "$@" detached (own session, stdin closed, output to LOGFILE), records its PID.
spawn() {
    local comp=$1 logfile=$2
    shift 2
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    # Not a process-group leader (no job control here), so setsid execs without forking and
    # $! is the component's own PID.
    (
        cd "$DATA_DIR"
        export STACK_INSTANCE="$DATA_DIR"
        # Close the lock descriptors: a long-lived child must not hold the stack's locks.
        exec 8>&- 9>&-
        exec setsid "$@" </dev/null >>"$logfile" 2>&1
    ) &
    local pid=$! i
    echo "$pid" >"$(pid_file "$comp")"
    # /proc/PID/environ shows STACK_INSTANCE only once the child has exec'd: wait for that, so
    # a check right after spawning never mistakes a starting component for a dead one.
    for ((i = 0; i < 200; i++)); do
        is_ours "$pid" && return 0
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
}

# Waits until CHECK succeeds; fails with the component's logs when it exits or times out.
wait_healthy() {
    local comp=$1 check=$2 pid=$3
    shift 3
    local deadline=$((SECONDS + TIMEOUT))
    until $check; do
        if ! alive "$pid"; then
            rm -f "$(pid_file "$comp")"
            show_logs "$@"
            die "$comp exited during startup (logs above; full logs in $LOG_DIR)"
        fi
        if ((SECONDS >= deadline)); then
            show_logs "$@"
            die "$comp did not become healthy within ${TIMEOUT}s (STACK_TIMEOUT); it is still running as PID $pid (logs above)"
        fi
        sleep 0.2
    done
}

# SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL. Only ever a PID this stack started.
stop_component() {
    local comp=$1 pid deadline
    if ! pid=$(running_pid "$comp"); then
        log "$comp: not running"
        return 0
    fi
    log "$comp: stopping PID $pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            warn "$comp: PID $pid still running after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.2
    done
    while alive "$pid"; do sleep 0.1; done
    rm -f "$(pid_file "$comp")"
    log "$comp: stopped"
}

http_get() {
    curl -fsS --max-time 5 "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Installation (once per machine, cached outside the repository)
# ---------------------------------------------------------------------------------------------
with_install_lock() {
    mkdir -p "$CACHE_DIR"
    (
        flock -w 1800 9 || die "timed out waiting for another install ($CACHE_DIR/install.lock)"
        "$@"
    ) 9>"$CACHE_DIR/install.lock"
}

install_chdb() {
    [[ -f "$CHDB_LIB" ]] && return 0
    local dl="$CACHE_DIR/chdb-dl" wheel
    mkdir -p "$dl"
    wheel=$(ls "$dl"/chdb-"$CHDB_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [[ -z "$wheel" ]]; then
        log "clickhouse: downloading the chdb $CHDB_VERSION wheel (ClickHouse 25.8, 179 MB) from PyPI into $dl"
        if python3 -m pip --version >/dev/null 2>&1; then
            python3 -m pip download --no-deps --only-binary=:all: --progress-bar on \
                --platform manylinux2014_x86_64 --python-version 3.8 --implementation cp --abi abi3 \
                "chdb==$CHDB_VERSION" -d "$dl"
        else
            python3 "$HERE/fetch_wheel.py" chdb "$CHDB_VERSION" "$dl"
        fi
        wheel=$(ls "$dl"/chdb-"$CHDB_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
        [[ -n "$wheel" ]] || die "the chdb $CHDB_VERSION wheel did not download into $dl"
    fi
    log "clickhouse: unpacking the server library (825 MB) into $CHDB_DIR"
    local tmp="$CHDB_DIR.tmp.$$"
    rm -rf "$tmp"
    python3 - "$wheel" "$tmp" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist()
             if n == "chdb/_chdb.abi3.so" or (n.startswith("chdb.libs/") and not n.endswith("/"))]
    if "chdb/_chdb.abi3.so" not in names:
        sys.exit(f"{wheel} has no chdb/_chdb.abi3.so")
    for n in names:
        z.extract(n, dest)
EOF
    rm -rf "$CHDB_DIR"
    mv "$tmp" "$CHDB_DIR"
    log "clickhouse: library ready"
}

tansu_bin() {
    if [[ -n "${STACK_TANSU_BIN:-}" ]]; then
        echo "$STACK_TANSU_BIN"
    elif command -v tansu >/dev/null; then
        command -v tansu
    else
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    fi
}

tansu_ok() {
    local bin
    bin=$(tansu_bin)
    [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -qF "$TANSU_VERSION"
}

# Turns cargo's output into a progress line at least every 30 s (the last crates and the link
# take minutes with no output of their own), never cargo's raw lines: only real errors
# (`error:` / `error[E...]` lines and what follows them) are shown as they come.
tansu_progress() {
    local started=$1 n=0 downloaded=0 line status last=$SECONDS latest="" in_error=0
    while :; do
        IFS= read -r -t 30 line
        status=$?
        if ((status > 128)); then
            if ((n == 0)); then
                log "broker: build $((SECONDS - started))s, fetching sources ($downloaded crates downloaded so far)"
            else
                log "broker: build $((SECONDS - started))s, $n crates compiled, still working (latest: $latest; the last crates and the link take several minutes)"
            fi
            last=$SECONDS
            continue
        fi
        ((status == 0)) || [[ -n "$line" ]] || break
        line=${line#"${line%%[![:space:]]*}"}
        case "$line" in
            error:*|error\[*) in_error=1; log "broker: $line"; continue ;;
            Downloaded\ *) downloaded=$((downloaded + 1)); in_error=0; continue ;;
            Compiling\ *)
                in_error=0
                ((n == 0 && downloaded > 0)) && log "broker: downloaded $downloaded crates; compiling"
                n=$((n + 1))
                latest=${line#Compiling }
                latest=${latest%% (*}
                ;;
            Finished\ *|Installed\ *|Replaced\ *) in_error=0; log "broker: $line"; continue ;;
            *) ((in_error)) && log "broker:   $line"; continue ;;
        esac
        if ((SECONDS - last >= 30 || n % 50 == 0)); then
            log "broker: build $((SECONDS - started))s, $n crates compiled (latest: $latest)"
            last=$SECONDS
        fi
    done
}

install_tansu() {
    tansu_ok && return 0
    # Another cargo install of tansu already running (another stack, a bootstrap script):
    # wait for it rather than compiling twice on two cores.
    local other
    other=$(pgrep -f "cargo install tansu" | head -n 1 || true)
    if [[ -n "$other" ]]; then
        log "broker: a Tansu build is already running (PID $other); waiting for it"
        while kill -0 "$other" 2>/dev/null; do
            sleep 15
            log "broker: still waiting for the Tansu build (PID $other)"
        done
        tansu_ok && return 0
    fi
    command -v cargo >/dev/null || die "cargo is needed to build the Tansu broker (install Rust: https://rustup.rs)"
    log "broker: building Tansu $TANSU_VERSION from crates.io (once per machine: about 15 min on 2 cores, the longest step of a first run)"
    log "broker: cargo install tansu@$TANSU_VERSION --locked --features dynostore,libsql (full output: $CACHE_DIR/tansu-install.log)"
    local started=$SECONDS
    set +e
    cargo install "tansu@$TANSU_VERSION" --locked --features dynostore,libsql 2>&1 \
        | tee "$CACHE_DIR/tansu-install.log" \
        | tansu_progress "$started"
    local rc=${PIPESTATUS[0]}
    set -e
    ((rc == 0)) || { show_logs "$CACHE_DIR/tansu-install.log"; die "building Tansu failed (exit $rc)"; }
    hash -r
    tansu_ok || die "Tansu installed but $(tansu_bin) --version does not report $TANSU_VERSION"
    log "broker: Tansu installed in $((SECONDS - started))s: $(tansu_bin)"
}

# ---------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------
ch_healthy() {
    [[ "$(http_get "http://127.0.0.1:$CH_HTTP_PORT/ping")" == "Ok." ]] && port_open "$CH_TCP_PORT"
}

render() {
    sed -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@HTTP_PORT@|$CH_HTTP_PORT|g" \
        -e "s|@TCP_PORT@|$CH_TCP_PORT|g" -e "s|@MEMORY_RATIO@|$CH_MEMORY_RATIO|g" "$1" >"$2"
}

start_clickhouse() {
    local pid
    if pid=$(running_pid clickhouse); then
        log "clickhouse: already running (PID $pid)"
        wait_healthy clickhouse ch_healthy "$pid" "$LOG_DIR/clickhouse-server.err.log" "$LOG_DIR/clickhouse.out"
        return 0
    fi
    with_install_lock install_chdb
    require_free_port "$CH_HTTP_PORT" "ClickHouse HTTP, STACK_CH_HTTP_PORT"
    require_free_port "$CH_TCP_PORT" "ClickHouse native, STACK_CH_TCP_PORT"
    local d="$DATA_DIR/clickhouse"
    mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/user_scripts" \
        "$d/user_defined" "$d/access" "$LOG_DIR"
    render "$HERE/clickhouse-config.xml.in" "$d/config.xml"
    render "$HERE/clickhouse-users.xml.in" "$d/users.xml"
    log "clickhouse: starting ClickHouse 25.8 on HTTP $CH_HTTP_PORT, native $CH_TCP_PORT (data $d)"
    spawn clickhouse "$LOG_DIR/clickhouse.out" \
        env CLICKHOUSE_WATCHDOG_ENABLE=0 python3 "$HERE/clickhouse_server.py" "$CHDB_LIB" "$d/config.xml"
    pid=$(<"$(pid_file clickhouse)")
    wait_healthy clickhouse ch_healthy "$pid" "$LOG_DIR/clickhouse-server.err.log" "$LOG_DIR/clickhouse.out"
    log "clickhouse: healthy (PID $pid, version $(http_get "http://127.0.0.1:$CH_HTTP_PORT/?query=SELECT%20version()"))"
}

broker_healthy() {
    port_open "$KAFKA_PORT"
}

start_broker() {
    local pid
    if pid=$(running_pid broker); then
        log "broker: already running (PID $pid)"
        wait_healthy broker broker_healthy "$pid" "$LOG_DIR/tansu.log"
        return 0
    fi
    with_install_lock install_tansu
    require_free_port "$KAFKA_PORT" "Kafka broker, STACK_KAFKA_PORT"
    mkdir -p "$DATA_DIR/tansu"
    log "broker: starting Tansu $TANSU_VERSION on $KAFKA_PORT (sqlite storage $DATA_DIR/tansu/tansu.db)"
    spawn broker "$LOG_DIR/tansu.log" \
        "$(tansu_bin)" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine "sqlite://tansu/tansu.db"
    pid=$(<"$(pid_file broker)")
    wait_healthy broker broker_healthy "$pid" "$LOG_DIR/tansu.log"
    # Tansu 0.6.0 has no index for its per-record header lookup: without this one, fetches
    # slow down with every message stored and starve the group coordinator (see the script).
    python3 "$HERE/tansu_index.py" "$DATA_DIR/tansu/tansu.db" ||
        die "broker: could not add the header index to $DATA_DIR/tansu/tansu.db"
    log "broker: healthy (PID $pid)"
}

create_topic() {
    local name=$1 partitions=$2 out
    if out=$("$(tansu_bin)" topic create "$name" --broker "tcp://127.0.0.1:$KAFKA_PORT" \
        --partitions "$partitions" 2>&1); then
        log "topics: created $name ($partitions partitions)"
    elif grep -qiE 'already.?exists' <<<"$out"; then
        log "topics: $name exists"
    else
        echo "$out" >&2
        die "creating topic $name on 127.0.0.1:$KAFKA_PORT failed"
    fi
}

# Configuration for the auditlog binary (only AUDITLOG_<SECTION>__<FIELD> variables it knows).
app_env() {
    local admin_file="$DATA_DIR/admin-token"
    if [[ ! -s "$admin_file" ]]; then
        mkdir -p "$DATA_DIR"
        (umask 077 && python3 -c 'import secrets; print("adm_" + secrets.token_hex(24))' >"$admin_file")
    fi
    export AUDITLOG_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
    export AUDITLOG_KAFKA__TOPIC="$TOPIC"
    export AUDITLOG_KAFKA__DLQ_TOPIC="$DLQ_TOPIC"
    export AUDITLOG_CLICKHOUSE__URL="http://127.0.0.1:$CH_HTTP_PORT"
    export AUDITLOG_CLICKHOUSE__DATABASE="$DATABASE"
    export AUDITLOG_API__LISTEN="127.0.0.1:$API_PORT"
    AUDITLOG_API__ADMIN_TOKEN=$(<"$admin_file")
    export AUDITLOG_API__ADMIN_TOKEN
    export AUDITLOG_CONSUMER__METRICS_LISTEN="127.0.0.1:$CONSUMER_PORT"
}

build_binary() {
    [[ -n "${STACK_AUDITLOG_BIN:-}" ]] && return 0
    if [[ "$PROFILE" = dev ]]; then
        log "auditlog: cargo build --release -p auditlog (first build takes a few minutes)"
        (cd "$ROOT" && cargo build --release -p auditlog) || die "building auditlog failed"
    fi
}

migrate() {
    if [[ ! -x "$BIN" ]]; then
        warn "schema: $BIN not built; skipping 'auditlog migrate' (tests/run.sh builds it; or set STACK_AUDITLOG_BIN)"
        return 0
    fi
    app_env
    local out
    if out=$("$BIN" migrate 2>&1); then
        log "schema: auditlog migrate applied to database $DATABASE"
    else
        echo "$out" >&2
        local msg="auditlog migrate ($BIN) failed against http://127.0.0.1:$CH_HTTP_PORT (database $DATABASE)"
        # The test profile's tests use databases of their own: keep the infrastructure up.
        [[ "$PROFILE" = test ]] && { warn "$msg"; return 0; }
        die "$msg"
    fi
}

APP_PROBLEMS=()

# Starts `auditlog consume` or `auditlog serve`; a subcommand that is not built yet is reported.
start_app() {
    local comp=$1 sub=$2 port=$3 pid
    local url="http://127.0.0.1:$port/health" logfile="$LOG_DIR/$comp.log"
    if pid=$(running_pid "$comp"); then
        log "$comp: already running (PID $pid)"
        return 0
    fi
    [[ -x "$BIN" ]] || die "$BIN not found (build it: cargo build --release -p auditlog)"
    require_free_port "$port" "$comp, STACK_${comp^^}_PORT"
    app_env
    log "$comp: starting auditlog $sub (health $url)"
    : >"$logfile"
    spawn "$comp" "$logfile" "$BIN" "$sub"
    pid=$(<"$(pid_file "$comp")")
    local deadline=$((SECONDS + TIMEOUT))
    until [[ -n "$(http_get "$url")" ]]; do
        if ! alive "$pid"; then
            rm -f "$(pid_file "$comp")"
            if grep -q "not built yet" "$logfile"; then
                warn "$comp: 'auditlog $sub' is not built yet; $comp not started"
            else
                show_logs "$logfile"
                warn "$comp: 'auditlog $sub' exited during startup (log above: $logfile)"
            fi
            APP_PROBLEMS+=("$comp")
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_logs "$logfile"
            warn "$comp: no answer from $url within ${TIMEOUT}s; still running as PID $pid"
            APP_PROBLEMS+=("$comp")
            return 0
        fi
        sleep 0.3
    done
    log "$comp: healthy (PID $pid)"
}

# Runs an auditlog subcommand for seeding; prints its stdout; false (with its output) on failure.
run_app() {
    local out
    if out=$("$BIN" "$@" 2>"$LOG_DIR/seed.err"); then
        printf '%s' "$out"
        return 0
    fi
    if grep -q "not built yet" "$LOG_DIR/seed.err"; then
        warn "seed: 'auditlog $*' is not built yet"
    else
        show_logs "$LOG_DIR/seed.err"
        warn "seed: 'auditlog $*' failed"
    fi
    return 1
}

ch_query() {
    curl -fsS --max-time 10 "http://127.0.0.1:$CH_HTTP_PORT/" --data-binary "$1" 2>/dev/null
}

# Waits until ClickHouse holds at least N events (the consumer landed them: the pipeline works
# end to end); prints the count.
wait_rows() {
    local want=$1 deadline=$((SECONDS + TIMEOUT)) rows=0
    while ((SECONDS < deadline)); do
        rows=$(ch_query "SELECT count() FROM $DATABASE.events" || echo 0)
        ((rows >= want)) && break
        sleep 1
    done
    echo "$rows"
}

# Seeds once per data dir: synthetic events spread over the last SEED_DAYS days, plans for the
# seeded workspaces, then a token for the busiest one (so the dashboard opens on a populated
# audit log whose time-range picker and retention notice have weeks of history to show).
#
# Events older than a workspace's retention are deleted by TTL as soon as they are written, so
# the plans come first: a small recent batch (same generator seed, so the same 20 workspaces)
# names the workspaces, each gets a plan keeping more than SEED_DAYS, the consumer re-reads
# plans (consumer.plans_refresh, 10 s), and only then the weeks of history are emitted. The
# second-busiest workspace is moved to Free afterwards: its history beyond 7 days then expires,
# as on a real Free workspace.
SEED_EVENTS=${STACK_SEED_EVENTS:-5000}
SEED_DAYS=${STACK_SEED_DAYS:-30}
seed() {
    app_env
    local ws_file="$DATA_DIR/demo-workspace" token_file="$DATA_DIR/demo-token"
    if [[ ! -f "$DATA_DIR/seeded" ]]; then
        local ws ok=1 probe=200
        log "seed: naming the 20 demo workspaces ($probe recent synthetic events)"
        if ! run_app emit --synthetic "$probe" --workspaces 20 >/dev/null; then
            APP_PROBLEMS+=("emit")
            return 0
        fi
        log "seed: $(wait_rows "$probe") events visible in ClickHouse"
        for ws in $(ch_query "SELECT DISTINCT workspace_id FROM $DATABASE.events ORDER BY workspace_id" || true); do
            run_app plan set "$ws" pro >/dev/null || ok=0
        done
        ((ok)) || { APP_PROBLEMS+=("plan"); return 0; }
        log "seed: every demo workspace on Pro (90 days) for now; waiting 11 s for the consumer to read the plans"
        sleep 11
        log "seed: emitting $SEED_EVENTS synthetic events over the last $SEED_DAYS days across 20 workspaces"
        if ! run_app emit --synthetic "$SEED_EVENTS" --workspaces 20 --days "$SEED_DAYS" >/dev/null; then
            APP_PROBLEMS+=("emit")
            return 0
        fi
        log "seed: $(wait_rows $((probe + SEED_EVENTS))) events visible in ClickHouse"
        local plans=("pro" "free" "enterprise --days 365" "enterprise --unlimited") i=0
        for ws in $(ch_query "SELECT workspace_id FROM $DATABASE.events GROUP BY workspace_id ORDER BY count() DESC, workspace_id LIMIT 4" || true); do
            ((i == 0)) && echo "$ws" >"$ws_file"
            # shellcheck disable=SC2086 # the plan string carries its flags
            run_app plan set "$ws" ${plans[i]} >/dev/null || ok=0
            log "seed: plan of $ws: ${plans[i]}"
            i=$((i + 1))
        done
        ((ok)) || APP_PROBLEMS+=("plan")
        date -u +%FT%TZ >"$DATA_DIR/seeded"
    else
        log "seed: demo events already seeded (remove $DATA_DIR/seeded to seed again)"
    fi
    [[ -s "$ws_file" ]] || echo demo >"$ws_file"
    if [[ ! -s "$token_file" ]]; then
        local out
        if out=$(run_app token create "$(<"$ws_file")" --name "local stack demo"); then
            # `token create` prints only the secret on stdout.
            (umask 077 && tail -n 1 <<<"$out" >"$token_file")
            log "seed: created a token for workspace $(<"$ws_file")"
        else
            APP_PROBLEMS+=("token")
        fi
    fi
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
with_stack_lock() {
    mkdir -p "$RUN_DIR"
    exec 8>"$RUN_DIR/stack.lock"
    flock -w 1800 8 || die "another stack.sh is working on $DATA_DIR and did not finish within 30 min"
}

create_topics() {
    create_topic "$TOPIC" "$PARTITIONS"
    create_topic "$DLQ_TOPIC" 1
}

# Every port a component that is not running yet will need must be free: fail before starting
# anything rather than leave half a stack behind.
preflight_ports() {
    running_pid clickhouse >/dev/null || {
        require_free_port "$CH_HTTP_PORT" "ClickHouse HTTP, STACK_CH_HTTP_PORT"
        require_free_port "$CH_TCP_PORT" "ClickHouse native, STACK_CH_TCP_PORT"
    }
    running_pid broker >/dev/null || require_free_port "$KAFKA_PORT" "Kafka broker, STACK_KAFKA_PORT"
    if ((APPS)); then
        running_pid consumer >/dev/null || require_free_port "$CONSUMER_PORT" "consumer, STACK_CONSUMER_PORT"
        running_pid api >/dev/null || require_free_port "$API_PORT" "api, STACK_API_PORT"
    fi
}

cmd_up() {
    log "up: data $DATA_DIR; ClickHouse HTTP $CH_HTTP_PORT native $CH_TCP_PORT; broker $KAFKA_PORT$( ((APPS)) && echo "; API $API_PORT; consumer $CONSUMER_PORT")"
    with_stack_lock
    preflight_ports
    start_clickhouse
    start_broker
    create_topics
    ((APPS)) && build_binary
    migrate
    if ((APPS)); then
        start_app consumer consume "$CONSUMER_PORT"
        start_app api serve "$API_PORT"
        ((SEED)) && seed
    fi
    log "up: done in $((SECONDS - T0))s"
    echo
    echo "  ClickHouse  http://127.0.0.1:$CH_HTTP_PORT  (native 127.0.0.1:$CH_TCP_PORT, database $DATABASE)"
    echo "  Kafka       127.0.0.1:$KAFKA_PORT  (topics $TOPIC x$PARTITIONS, $DLQ_TOPIC)"
    if ((APPS)); then
        echo "  Dashboard   http://127.0.0.1:$API_PORT/"
        [[ -s "$DATA_DIR/demo-token" ]] && echo "  Demo token  $(<"$DATA_DIR/demo-token")   (workspace $(cat "$DATA_DIR/demo-workspace" 2>/dev/null); paste it into the dashboard)"
        echo "  Admin token $DATA_DIR/admin-token"
        echo "  Consumer    http://127.0.0.1:$CONSUMER_PORT/metrics"
    fi
    echo "  Logs        $LOG_DIR/"
    echo
    if ((${#APP_PROBLEMS[@]})); then
        warn "not ready: ${APP_PROBLEMS[*]} (see the warnings above); the infrastructure is up"
        exit 1
    fi
}

cmd_down() {
    with_stack_lock
    local c
    for c in api consumer broker clickhouse; do
        stop_component "$c"
    done
    log "down: done (data kept in $DATA_DIR)"
}

component() {
    case "$1" in
        clickhouse|ch) echo clickhouse ;;
        broker|kafka|tansu) echo broker ;;
        consumer) echo consumer ;;
        api|serve) echo api ;;
        *) die "unknown component '$1' (clickhouse, broker, consumer, api)" ;;
    esac
}

cmd_start() {
    local c
    c=$(component "$1")
    with_stack_lock
    case "$c" in
        clickhouse) start_clickhouse ;;
        broker) start_broker ;;
        consumer) start_app consumer consume "$CONSUMER_PORT" ;;
        api) start_app api serve "$API_PORT" ;;
    esac
    ((${#APP_PROBLEMS[@]} == 0)) || exit 1
}

cmd_stop() {
    local c
    c=$(component "$1")
    with_stack_lock
    stop_component "$c"
}

status_line() {
    local comp=$1 ports=$2 check=$3 pid health
    if pid=$(running_pid "$comp"); then
        if $check; then health=healthy; else health=UNHEALTHY; STATUS_RC=1; fi
    else
        pid=- health=stopped
        [[ "$4" = required ]] && STATUS_RC=1
    fi
    printf '%-11s %-8s %-22s %s\n' "$comp" "$pid" "$ports" "$health"
}

consumer_healthy() { [[ -n "$(http_get "http://127.0.0.1:$CONSUMER_PORT/health")" ]]; }
api_healthy() { [[ -n "$(http_get "http://127.0.0.1:$API_PORT/health")" ]]; }

cmd_status() {
    STATUS_RC=0
    echo "profile $PROFILE, data $DATA_DIR"
    printf '%-11s %-8s %-22s %s\n' COMPONENT PID PORT HEALTH
    status_line clickhouse "$CH_HTTP_PORT (native $CH_TCP_PORT)" ch_healthy required
    status_line broker "$KAFKA_PORT" broker_healthy required
    local need=optional
    ((APPS)) && need=required
    status_line consumer "$CONSUMER_PORT" consumer_healthy "$need"
    status_line api "$API_PORT" api_healthy "$need"
    return "$STATUS_RC"
}

# Shell exports for tests and tools: eval "$(STACK_PROFILE=test deploy/local/stack.sh env)"
cmd_env() {
    cat <<EOF
export STACK_PROFILE=$PROFILE
export STACK_DATA_DIR=$DATA_DIR
export STACK_CH_HTTP_PORT=$CH_HTTP_PORT
export STACK_CH_TCP_PORT=$CH_TCP_PORT
export STACK_KAFKA_PORT=$KAFKA_PORT
export STACK_API_PORT=$API_PORT
export STACK_CONSUMER_PORT=$CONSUMER_PORT
export TEST_CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP_PORT
export TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export TEST_STACK_DIR=$DATA_DIR
export TEST_STACK_SCRIPT=$HERE/stack.sh
EOF
}

usage() {
    cat <<'EOF'
usage: deploy/local/stack.sh COMMAND

  up                      start everything (idempotent): ClickHouse, broker, topics, schema;
                          dev profile also: consumer, API/dashboard, demo token and events
  down                    stop every process this stack started (SIGTERM, then SIGKILL)
  status                  each component's PID, port and health (exit 1 if one is down)
  start COMPONENT         start one component (clickhouse, broker, consumer, api)
  stop COMPONENT          stop one component
  restart COMPONENT       stop then start one component
  env                     print shell exports describing this stack (for tests)

Profiles: STACK_PROFILE=dev (default; ports 8123/9000/9092/8080/8081, data .data/dev) or
STACK_PROFILE=test (18123/19000/19092/18080/18081, data .data/test, infrastructure only).
Overrides: STACK_CH_HTTP_PORT STACK_CH_TCP_PORT STACK_KAFKA_PORT STACK_API_PORT
STACK_CONSUMER_PORT STACK_DATA_DIR STACK_APPS STACK_SEED STACK_TIMEOUT STACK_STOP_TIMEOUT
(see docs/local-stack.md for all of them).
EOF
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    start) [[ $# -eq 2 ]] || { usage >&2; exit 2; }; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || { usage >&2; exit 2; }; cmd_stop "$2" ;;
    restart) [[ $# -eq 2 ]] || { usage >&2; exit 2; }; cmd_stop "$2"; exec 8>&-; cmd_start "$2" ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
