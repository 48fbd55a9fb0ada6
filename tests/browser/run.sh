#!/usr/bin/env bash
# Browser tests of the dashboard: headless Chromium (Debian's package) driven by playwright-core,
# against a real `auditlog serve` on the test stack. Called by tests/run.sh after the Rust tests,
# with the test stack running. Installs what is missing (Chromium via apt as root, npm packages
# from the lockfile), then runs dashboard.test.mjs, which seeds its own database, starts and stops
# its own server, saves screenshots to tests/browser/artifacts/ and ends with `N passed, M failed`.
#
# Environment: TEST_CLICKHOUSE_URL (default http://127.0.0.1:18123), AUDITLOG_BIN (default
# target/debug/auditlog), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export AUDITLOG_BIN=${AUDITLOG_BIN:-$ROOT/target/debug/auditlog}
export TEST_CLICKHOUSE_URL=${TEST_CLICKHOUSE_URL:-http://127.0.0.1:18123}

apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/browser/run.sh: missing $*; install it (apt-get install $*) or run as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "$@"
}

if [[ ! -x $CHROMIUM ]]; then
    echo "==> installing Chromium (Debian package)"
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "==> installing Node.js and npm (Debian packages)"
    apt_install nodejs npm
fi
if [[ ! -x $AUDITLOG_BIN ]]; then
    echo "tests/browser/run.sh: $AUDITLOG_BIN not found; build it first (cargo build -p auditlog)" >&2
    exit 1
fi

cd "$HERE"
# Reinstall only when the lockfile changed since the last install (npm ci wipes node_modules).
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
    echo "==> npm ci (playwright-core from package-lock.json)"
    npm ci --no-audit --no-fund --ignore-scripts
    cp package-lock.json node_modules/.installed-lock
fi

echo "==> dashboard browser tests (Chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1))"
exec node dashboard.test.mjs
