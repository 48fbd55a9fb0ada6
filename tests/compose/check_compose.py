"""Checks docker-compose.yml and deploy/Dockerfile without a Docker engine.

    python3 check_compose.py COMPOSE_FILE DOCKERFILE SCHEMA_JSON

1. The file, with YAML anchors and merge keys resolved (PyYAML), validates against the Compose
   Specification's JSON schema (the copy vendored by check-jsonschema). check-jsonschema's own
   CLI (run by check.sh) does not resolve `<<:` merge keys, so what services take from an
   anchor is only validated here.
2. Every `$` is valid Compose interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
   `${VAR:?error}`, ...): Compose rejects the file otherwise.
3. The project's rules for this file (see README.md, "With Docker"): one service builds the
   auditlog image and the others reuse it without pulling; host ports on 127.0.0.1 only and
   clear of the local stack's; no default for the admin token or the ClickHouse password;
   pinned images; Kafka data on a volume; healthchecks on /health/ready; a one-shot seed.
4. The Dockerfile: pinned base images, a dependency layer, a stripped release binary.

`--self-test` also checks that each rule rejects a file that breaks it.
Exit 0 when everything holds; otherwise every problem is printed, one per line.
"""

from __future__ import annotations

import copy
import json
import re
import sys

import jsonschema
import yaml

# Ports of the repository's own stacks (deploy/local/stack.sh): dev and test profiles, the
# fault-injection suite's (tests/faults/run.sh) and the README test's (tests/readme.sh).
LOCAL_STACK_PORTS = {8123, 9000, 9092, 8080, 8081, 18123, 19000, 19092, 18080, 18081,
                     28123, 29000, 29092, 28080, 28081, 28082, 26123, 27000, 27092, 26080, 26081}
AUDITLOG_IMAGE = "auditlog:local"

# Compose interpolation (compose-spec interpolation.md): `$$` is a literal `$`; otherwise `$`
# starts `NAME` or `{NAME}` / `{NAME<op>text}` with op one of :- - :? ? :+ +.
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
TOKEN = re.compile(r"\$(\$|" + NAME + r"|\{" + NAME + r"(?:(?::?[-?+])[^}]*)?\})")


def interpolation_problems(value, where: str) -> list[str]:
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += interpolation_problems(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += interpolation_problems(v, f"{where}[{i}]")
    elif isinstance(value, str):
        i = 0
        while True:
            i = value.find("$", i)
            if i < 0:
                break
            m = TOKEN.match(value, i)
            if not m:
                out.append(f"{where}: invalid interpolation at {value[i:i + 20]!r} (write $$ for a literal $)")
                i += 1
            else:
                i = m.end()
    return out


def host_ports(service: dict) -> list[tuple[str, str]]:
    """(host_ip, host_port) of each published port; host_ip '' when not given."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.append((str(p.get("host_ip", "")), str(p.get("published", ""))))
            continue
        parts = str(p).split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1]))
        elif len(parts) == 2:
            out.append(("", parts[0]))
        else:
            out.append(("", ""))  # container port only: Docker picks a host port on 0.0.0.0
    return out


def rule_problems(doc: dict) -> list[str]:
    out = []
    services = doc.get("services", {})
    volumes = doc.get("volumes") or {}

    # One build of the auditlog image, reused.
    users = {n: s for n, s in services.items() if s.get("image") == AUDITLOG_IMAGE or "build" in s}
    builders = [n for n, s in users.items() if "build" in s]
    if len(builders) != 1:
        out.append(f"exactly one service must build {AUDITLOG_IMAGE}, found {builders or 'none'}")
    for n, s in users.items():
        if s.get("image") != AUDITLOG_IMAGE:
            out.append(f"services.{n}: builds without image: {AUDITLOG_IMAGE}")
        if "build" not in s and s.get("pull_policy") != "never":
            out.append(f"services.{n}: uses the locally built {AUDITLOG_IMAGE}: needs pull_policy: never")
    for n in ("migrate", "consumer", "api", "seed"):
        if n not in users:
            out.append(f"services.{n}: missing or not running {AUDITLOG_IMAGE}")

    # Ports: loopback only, clear of the local stack.
    for n, s in services.items():
        for ip, port in host_ports(s):
            if ip != "127.0.0.1":
                out.append(f"services.{n}.ports: {port or '?'} must be bound to 127.0.0.1, not {ip or 'all interfaces'}")
            if port.isdigit() and int(port) in LOCAL_STACK_PORTS:
                out.append(f"services.{n}.ports: host port {port} is taken by the local stack")

    # Secrets: required, never a default.
    def env_of(n):
        env = services.get(n, {}).get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        return env

    for n, var in [("api", "AUDITLOG_API__ADMIN_TOKEN"), ("api", "AUDITLOG_CLICKHOUSE__PASSWORD"),
                   ("clickhouse", "CLICKHOUSE_PASSWORD")]:
        v = str(env_of(n).get(var, ""))
        if not re.fullmatch(r"\$\{" + NAME + r":\?[^}]*\}", v):
            out.append(f"services.{n}.environment.{var}: must be ${{VAR:?message}} (required, no default), not {v!r}")

    # Images pinned to a full version.
    for n, s in services.items():
        img = s.get("image", "")
        if img == AUDITLOG_IMAGE:
            continue
        if not re.search(r":\d+\.\d+\.\d+(\.\d+)?(@sha256:[0-9a-f]{64})?$", img):
            out.append(f"services.{n}.image: {img!r} is not pinned to a full version (x.y.z)")

    # Kafka keeps its data on a volume, in the directory it is configured to use.
    kafka = services.get("kafka", {})
    log_dirs = str(env_of("kafka").get("KAFKA_LOG_DIRS", ""))
    mounts = [str(v).split(":") for v in kafka.get("volumes", [])]
    if not log_dirs or not any(len(m) >= 2 and m[0] in volumes and m[1] == log_dirs for m in mounts):
        out.append(f"services.kafka: KAFKA_LOG_DIRS ({log_dirs or 'unset'}) must be a named volume")

    # Healthchecks on the readiness endpoints.
    for n, port in (("consumer", "8081"), ("api", "8080")):
        test = " ".join(map(str, (services.get(n, {}).get("healthcheck") or {}).get("test", [])))
        if f":{port}/health/ready" not in test:
            out.append(f"services.{n}.healthcheck: must check GET :{port}/health/ready, not {test!r}")

    # Demo data once the pipeline is up.
    seed = services.get("seed", {})
    cmd = json.dumps(seed.get("command", "")) + json.dumps(seed.get("entrypoint", ""))
    if "emit --synthetic" not in cmd or "--days" not in cmd:
        out.append("services.seed: must emit synthetic events over days (auditlog emit --synthetic N --days D)")
    deps = seed.get("depends_on") or {}
    if not isinstance(deps, dict) or deps.get("consumer", {}).get("condition") != "service_healthy":
        out.append("services.seed: must wait for the consumer to be healthy")
    if seed.get("restart", "no") != "no":
        out.append("services.seed: must be one-shot (restart: \"no\")")
    return out


def dockerfile_problems(text: str) -> list[str]:
    out = []
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))
    for image in froms:
        if image in stages:
            continue
        if not re.search(r":\d+\.\d+(\.\d+)?[-\w.]*(@sha256:[0-9a-f]{64})?$", image):
            out.append(f"Dockerfile: base image {image!r} is not pinned to a version")
    if "cargo chef cook" not in text:
        out.append("Dockerfile: no dependency layer (cargo chef cook) before the sources are copied")
    elif text.index("cargo chef cook") > text.rindex("COPY . ."):
        out.append("Dockerfile: the dependency layer must come before COPY . . of the build stage")
    for needle in ("CARGO_PROFILE_RELEASE_DEBUG=0", "CARGO_PROFILE_RELEASE_STRIP=symbols"):
        if needle not in text:
            out.append(f"Dockerfile: the release binary must be built with {needle}")
    return out


def check(doc: dict, dockerfile: str, schema: dict) -> list[str]:
    problems = []
    validator = jsonschema.validators.validator_for(schema)(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(map(str, e.absolute_path)) or "(top)"
        problems.append(f"schema: {path}: {e.message}")
    problems += interpolation_problems(doc, "")
    problems += rule_problems(doc)
    problems += dockerfile_problems(dockerfile)
    return problems


def self_test(doc: dict, dockerfile: str, schema: dict) -> list[str]:
    """Each rule must reject a file that breaks it: a checker that cannot fail proves nothing."""
    def broken(edit):
        d = copy.deepcopy(doc)
        edit(d)
        return d

    s = lambda d: d["services"]  # noqa: E731
    cases = {
        "a second service building the image": broken(lambda d: s(d)["api"].update(build={"context": "."})),
        "a reused image that would be pulled": broken(lambda d: s(d)["consumer"].pop("pull_policy")),
        "a port on all interfaces": broken(lambda d: s(d)["api"].update(ports=["38080:8080"])),
        "a port of the local stack": broken(lambda d: s(d)["clickhouse"].update(ports=["127.0.0.1:8123:8123"])),
        "a default admin token": broken(lambda d: s(d)["api"]["environment"].update(
            AUDITLOG_API__ADMIN_TOKEN="${ADMIN_TOKEN:-change-me}")),
        "a hard-coded ClickHouse password": broken(lambda d: s(d)["clickhouse"]["environment"].update(
            CLICKHOUSE_PASSWORD="auditlog")),
        "an unpinned image": broken(lambda d: s(d)["kafka"].update(image="apache/kafka:latest")),
        "Kafka data in the container": broken(lambda d: s(d)["kafka"].pop("volumes")),
        "a healthcheck on /health": broken(lambda d: s(d)["api"]["healthcheck"].update(
            test=["CMD", "curl", "-fsS", "http://127.0.0.1:8080/health"])),
        "no seed": broken(lambda d: s(d).pop("seed")),
        "an invalid interpolation": broken(lambda d: s(d)["seed"].update(command=["echo $(date)"])),
        "a schema violation": broken(lambda d: s(d)["api"].update(restart_policy="always")),
    }
    out = []
    for name, bad in cases.items():
        if not check(bad, dockerfile, schema):
            out.append(f"self-test: {name} was not rejected")
    for name, text in {
        "an unpinned base image": dockerfile.replace("FROM debian:12.12-slim", "FROM debian:bookworm-slim"),
        "no dependency layer": dockerfile.replace("cargo chef cook", "true"),
        "an unstripped binary": dockerfile.replace("CARGO_PROFILE_RELEASE_STRIP=symbols", ""),
    }.items():
        if text == dockerfile:
            out.append(f"self-test: could not build the case {name!r} (the Dockerfile changed?)")
        elif not dockerfile_problems(text):
            out.append(f"self-test: {name} was not rejected")
    return out


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--self-test"]
    compose_path, dockerfile_path, schema_path = args
    with open(compose_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(dockerfile_path, encoding="utf-8") as f:
        dockerfile = f.read()
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    # x- extension fields hold anchors only; the merged services are what gets validated.
    problems = check(doc, dockerfile, schema)
    if "--self-test" in argv:
        problems += self_test(doc, dockerfile, schema)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {compose_path} (merged) and {dockerfile_path} follow the Compose schema and the project's rules"
              + (" (self-test passed)" if "--self-test" in argv else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
