#!/usr/bin/env bash
# Checks the Compose files (docker-compose.yml, docker-compose.cluster.yml) and deploy/Dockerfile
# without a Docker engine (none runs in CI):
#   1. check-jsonschema (PyPI) validates each file against the Compose Specification's JSON
#      schema it vendors (`--builtin-schema vendor.compose-spec`);
#   2. check_compose.py validates each file again with its YAML merge keys and `extends`
#      resolved (which the CLI does not do), checks every `$` is valid Compose interpolation,
#      and checks the project's rules (one image build reused, loopback ports clear of the local
#      stack, required secrets, pinned images, Kafka volume, /health/ready healthchecks, a seed),
#      the Dockerfile (pinned bases, dependency layer, stripped binary) and that every AUDITLOG_*
#      variable is a setting of the binary (`auditlog config --defaults`); for the cluster file
#      also the Keeper and ClickHouse services and the XML files in deploy/compose/cluster/
#      (cluster_rules.py); `--self-test` proves each rule rejects a file that breaks it.
# Needs the built binary: AUDITLOG_BIN (default target/debug/auditlog; tests/run.sh builds it).
# Installs the pinned checker from PyPI into ~/.cache/auditlog on first use (about 5 s).
# Called by tests/run.sh (RUN_COMPOSE=0 skips it); runs alone in a few seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHECK_JSONSCHEMA_VERSION=0.39.0
PYYAML_VERSION=6.0.3
CACHE_DIR=${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auditlog}
LIB="$CACHE_DIR/compose-check-$CHECK_JSONSCHEMA_VERSION-pyyaml-$PYYAML_VERSION"

if [[ ! -f "$LIB/.complete" ]]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "==> installing python3-pip (Debian package)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip >/dev/null
        else
            echo "tests/compose/check.sh: needs pip (apt-get install python3-pip)" >&2
            exit 1
        fi
    fi
    echo "==> installing check-jsonschema $CHECK_JSONSCHEMA_VERSION and PyYAML $PYYAML_VERSION from PyPI into $LIB"
    rm -rf "$LIB.tmp"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
        --root-user-action=ignore --target "$LIB.tmp" \
        "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" "pyyaml==$PYYAML_VERSION"
    rm -rf "$LIB"
    mv "$LIB.tmp" "$LIB"
    touch "$LIB/.complete"
fi
export PYTHONPATH="$LIB"
SCHEMA="$LIB/check_jsonschema/builtin_schemas/vendor/compose-spec.json"
[[ -f "$SCHEMA" ]] || { echo "tests/compose/check.sh: $SCHEMA missing from check-jsonschema" >&2; exit 1; }

cd "$ROOT"
BIN=${AUDITLOG_BIN:-$ROOT/target/debug/auditlog}
[[ -x "$BIN" ]] || { echo "tests/compose/check.sh: no auditlog binary at $BIN (cargo build -p auditlog, or set AUDITLOG_BIN)" >&2; exit 1; }
SETTINGS=$(mktemp)
trap 'rm -f "$SETTINGS"' EXIT
"$BIN" config --defaults >"$SETTINGS"

for file in docker-compose.yml docker-compose.cluster.yml; do
    echo "==> check-jsonschema --builtin-schema vendor.compose-spec $file"
    python3 -m check_jsonschema --builtin-schema vendor.compose-spec "$file"
done
echo "==> tests/compose/check_compose.py --self-test docker-compose.yml (merged file, interpolation, project rules, settings, Dockerfile)"
python3 tests/compose/check_compose.py --self-test --settings "$SETTINGS" docker-compose.yml deploy/Dockerfile "$SCHEMA"
echo "==> tests/compose/check_compose.py --self-test --cluster docker-compose.cluster.yml (the same, plus Keeper, servers and their XML)"
python3 tests/compose/check_compose.py --self-test --cluster --settings "$SETTINGS" docker-compose.cluster.yml deploy/Dockerfile "$SCHEMA"
