#!/usr/bin/env bash
# Checks docker-compose.yml and deploy/Dockerfile without a Docker engine (none runs in CI):
#   1. check-jsonschema (PyPI) validates docker-compose.yml against the Compose Specification's
#      JSON schema it vendors (`--builtin-schema vendor.compose-spec`);
#   2. check_compose.py validates the file again with its YAML merge keys resolved (which the
#      CLI does not do), checks every `$` is valid Compose interpolation, and checks the
#      project's rules (one image build reused, loopback ports clear of the local stack,
#      required secrets, pinned images, Kafka volume, /health/ready healthchecks, a seed) and
#      the Dockerfile (pinned bases, dependency layer, stripped binary); `--self-test` proves
#      each rule rejects a file that breaks it.
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
echo "==> check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml"
python3 -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
echo "==> tests/compose/check_compose.py --self-test (merged file, interpolation, project rules, Dockerfile)"
python3 tests/compose/check_compose.py --self-test docker-compose.yml deploy/Dockerfile "$SCHEMA"
