#!/usr/bin/env bash
# Installs the S3-compatible server of the S3 destination's tests, once per machine: moto's
# server mode (`moto[server]`, PyPI) pinned, with pip into the cache (no virtualenv needed),
# one directory per moto and Python version. Prints the directory (the PYTHONPATH to run
# `python3 -m moto.server` with). Called by tests/run.sh before the suites, and by
# `auditlog_testkit::S3Server::start()` when the directory is missing. About 50 s the first time.
set -euo pipefail

MOTO_VERSION=5.2.5
CACHE_DIR=${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog}
PY=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
LIB="$CACHE_DIR/moto-$MOTO_VERSION-py$PY"

if [[ ! -f "$LIB/.complete" ]]; then
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/moto.lock"
    flock 9
    if [[ ! -f "$LIB/.complete" ]]; then
        if ! python3 -m pip --version >/dev/null 2>&1; then
            if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
                echo "==> installing python3-pip (Debian package)" >&2
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip >&2
            else
                echo "tests/s3/install-moto.sh: needs pip (apt-get install python3-pip)" >&2
                exit 1
            fi
        fi
        echo "==> installing moto[server] $MOTO_VERSION from PyPI into $LIB" >&2
        rm -rf "$LIB.tmp"
        PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
            --root-user-action=ignore --target "$LIB.tmp" "moto[server]==$MOTO_VERSION" >&2
        rm -rf "$LIB"
        mv "$LIB.tmp" "$LIB"
        touch "$LIB/.complete"
    fi
fi
echo "$LIB"
