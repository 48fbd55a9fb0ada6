"""Checks a Compose file (docker-compose.yml, docker-compose.cluster.yml) and deploy/Dockerfile
without a Docker engine.

    python3 check_compose.py [--self-test] [--cluster] --settings REFERENCE COMPOSE_FILE DOCKERFILE SCHEMA_JSON

REFERENCE is what `auditlog config --defaults` prints (check.sh runs the binary).

1. The file, with YAML anchors, merge keys and `extends` resolved (compose_load.py), validates
   against the Compose Specification's JSON schema (the copy vendored by check-jsonschema).
   check-jsonschema's own CLI (run by check.sh) does not resolve `<<:` merge keys, so what
   services take from an anchor or another file is only validated here.
2. Every `$` is valid Compose interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
   `${VAR:?error}`, ...): Compose rejects the file otherwise.
3. The project's rules for this file (see README.md, "With Docker"): one service builds the
   auditlog image and the others reuse it without pulling; host ports on 127.0.0.1 only and
   clear of the local stack's; no default for the admin token or the ClickHouse password;
   pinned images; Kafka data on a volume; healthchecks on /health/ready; a one-shot seed.
4. The Dockerfile: pinned base images, a dependency layer, a stripped release binary.
5. Every AUDITLOG_* variable of the auditlog services is a setting of the binary, with a value
   of the setting's type (settings_rules.py).
6. With --cluster: the Keeper and ClickHouse server services and the XML files they mount
   (cluster_rules.py).

`--self-test` also checks that each rule rejects a file that breaks it.
Exit 0 when everything holds; otherwise every problem is printed, one per line.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys

import jsonschema

import cluster_rules
import compose_load
import settings_rules

# Ports of the repository's own stacks (deploy/local/stack.sh): dev and test profiles, the
# fault-injection suite's (tests/faults/run.sh), the README test's (tests/readme.sh) and the
# cluster profile's (ZooKeeper, the second server's HTTP, native and interserver ports).
LOCAL_STACK_PORTS = {8123, 9000, 9092, 8080, 8081, 18123, 19000, 19092, 18080, 18081,
                     28123, 29000, 29092, 28080, 28081, 28082, 26123, 27000, 27092, 26080, 26081,
                     22181, 28124, 29001, 29009, 29010}
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
        return settings_rules.environment(services.get(n, {}))

    servers = [n for n, s in services.items() if str(s.get("image", "")).startswith(cluster_rules.SERVER_IMAGE)]
    if not servers:
        out.append(f"no {cluster_rules.SERVER_IMAGE}<version> service")
    for n, var in [("api", "AUDITLOG_API__ADMIN_TOKEN"), ("api", "AUDITLOG_CLICKHOUSE__PASSWORD")] + \
            [(n, "CLICKHOUSE_PASSWORD") for n in servers]:
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


class Inputs:
    """What one check reads: the merged file, the Dockerfile, the schema, the binary's settings
    reference and (cluster) the XML files the ClickHouse services mount."""

    def __init__(self, dockerfile: str, schema: dict, settings: dict, cluster: bool, configs: dict[str, str]):
        self.dockerfile, self.schema, self.settings = dockerfile, schema, settings
        self.cluster, self.configs = cluster, configs


def check(doc: dict, inputs: Inputs, configs: dict[str, str] | None = None) -> list[str]:
    dockerfile, schema = inputs.dockerfile, inputs.schema
    problems = []
    validator = jsonschema.validators.validator_for(schema)(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(map(str, e.absolute_path)) or "(top)"
        problems.append(f"schema: {path}: {e.message}")
    problems += interpolation_problems(doc, "")
    problems += rule_problems(doc)
    problems += dockerfile_problems(dockerfile)
    problems += settings_rules.problems(doc, inputs.settings, AUDITLOG_IMAGE)
    if inputs.cluster:
        problems += cluster_rules.problems(doc, inputs.configs if configs is None else configs, AUDITLOG_IMAGE)
    return problems


def self_test(doc: dict, inputs: Inputs) -> list[str]:
    """Each rule must reject a file that breaks it: a checker that cannot fail proves nothing."""
    dockerfile = inputs.dockerfile

    def broken(edit):
        d = copy.deepcopy(doc)
        edit(d)
        return d

    s = lambda d: d["services"]  # noqa: E731
    server = next(n for n, v in doc["services"].items() if str(v.get("image", "")).startswith(cluster_rules.SERVER_IMAGE))
    cases = {
        "a second service building the image": broken(lambda d: s(d)["api"].update(build={"context": "."})),
        "a reused image that would be pulled": broken(lambda d: s(d)["consumer"].pop("pull_policy")),
        "a port on all interfaces": broken(lambda d: s(d)["api"].update(ports=["38080:8080"])),
        "a port of the local stack": broken(lambda d: s(d)["api"].update(ports=["127.0.0.1:8080:8080"])),
        "a default admin token": broken(lambda d: s(d)["api"]["environment"].update(
            AUDITLOG_API__ADMIN_TOKEN="${ADMIN_TOKEN:-change-me}")),
        "a hard-coded ClickHouse password": broken(lambda d: s(d)[server]["environment"].update(
            CLICKHOUSE_PASSWORD="auditlog")),
        "an unpinned image": broken(lambda d: s(d)["kafka"].update(image="apache/kafka:latest")),
        "Kafka data in the container": broken(lambda d: s(d)["kafka"].pop("volumes")),
        "a healthcheck on /health": broken(lambda d: s(d)["api"]["healthcheck"].update(
            test=["CMD", "curl", "-fsS", "http://127.0.0.1:8080/health"])),
        "no seed": broken(lambda d: s(d).pop("seed")),
        "an invalid interpolation": broken(lambda d: s(d)["seed"].update(command=["echo $(date)"])),
        "a schema violation": broken(lambda d: s(d)["api"].update(restart_policy="always")),
        "a setting the binary does not have": broken(lambda d: s(d)["consumer"]["environment"].update(
            AUDITLOG_CLICKHOUSE__URLS="http://clickhouse:8123")),
        "a number setting given a word": broken(lambda d: s(d)["consumer"]["environment"].update(
            AUDITLOG_CONSUMER__BATCH_MAX_ROWS="many")),
    }
    if inputs.cluster:
        cases.update({
            "an even number of Keeper nodes": broken(lambda d: s(d).pop("keeper3")),
            "two Keeper nodes with one id": broken(lambda d: s(d)["keeper3"]["environment"].update(KEEPER_SERVER_ID=2)),
            "a failover list that is not a list": broken(lambda d: s(d)["api"]["environment"].update(
                AUDITLOG_CLICKHOUSE__FAILOVER_URLS="http://clickhouse2:8123")),
            "a replica the API cannot fail over to": broken(lambda d: s(d)["api"]["environment"].update(
                AUDITLOG_CLICKHOUSE__FAILOVER_URLS="[]")),
            "a cluster name not in remote_servers": broken(lambda d: s(d)["consumer"]["environment"].update(
                AUDITLOG_CLICKHOUSE__CLUSTER="other")),
            "migrate not waiting for every server": broken(lambda d: s(d)["migrate"]["depends_on"].popitem()),
            "a server not waiting for Keeper": broken(lambda d: s(d)[server].pop("depends_on")),
            "a server without its config": broken(lambda d: s(d)[server].update(volumes=[])),
        })
    out = []
    for name, bad in cases.items():
        if not check(bad, inputs):
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
    if inputs.cluster:
        out += _xml_self_test(doc, inputs)
    return out


# (file name, what it breaks, text to find, replacement): each must be rejected.
XML_CASES = [
    ("clickhouse2.xml", "a replica macro used twice", "<replica>ch2</replica>", "<replica>ch1</replica>"),
    ("clickhouse2.xml", "no macros", "<macros>", "<not_macros>"),
    ("clickhouse1.xml", "an interserver host the other replica cannot reach",
     "<interserver_http_host>clickhouse1<", "<interserver_http_host>127.0.0.1<"),
    ("cluster.xml", "no Distributed send pool", "<background_distributed_schedule_pool_size>4<",
     "<background_distributed_schedule_pool_size>0<"),
    ("cluster.xml", "no ON CLUSTER DDL queue", "<distributed_ddl>", "<not_distributed_ddl>"),
    ("cluster.xml", "a Keeper node that is no service", "<host>keeper3</host>", "<host>keeper9</host>"),
    ("cluster.xml", "replication through the Distributed table", "<internal_replication>true<",
     "<internal_replication>false<"),
    ("cluster.xml", "a replica missing from remote_servers", "<host>clickhouse2</host>", "<host>clickhouse9</host>"),
    ("cluster.xml", "a cluster of another name", "<auditlog>", "<other>"),
    ("cluster.xml", "malformed XML", "</clickhouse>", ""),
    ("keeper.xml", "a Raft peer that is no service", "<hostname>keeper2</hostname>", "<hostname>keeper9</hostname>"),
    ("keeper.xml", "a Keeper id from a variable no node sets", 'from_env="KEEPER_SERVER_ID"', 'from_env="KEEPER_ID"'),
    ("keeper.xml", "no snapshot path", "<snapshot_storage_path>", "<not_snapshot_storage_path>"),
]


def _xml_self_test(doc: dict, inputs: Inputs) -> list[str]:
    out = []
    for file, name, old, new in XML_CASES:
        src = next((k for k in inputs.configs if os.path.basename(k) == file), None)
        if src is None or old not in inputs.configs[src]:
            out.append(f"self-test: could not build the case {name!r} ({file} changed?)")
            continue
        configs = dict(inputs.configs, **{src: inputs.configs[src].replace(old, new)})
        if not check(doc, inputs, configs):
            out.append(f"self-test: {name} ({file}) was not rejected")
    return out


def main(argv: list[str]) -> int:
    flags = {a for a in argv if a in ("--self-test", "--cluster")}
    args = [a for a in argv if a not in flags]
    if len(args) != 5 or args[0] != "--settings":
        print(__doc__.splitlines()[3].strip(), file=sys.stderr)
        return 2
    _, settings_path, compose_path, dockerfile_path, schema_path = args
    doc = compose_load.load(compose_path)
    with open(dockerfile_path, encoding="utf-8") as f:
        dockerfile = f.read()
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(settings_path, encoding="utf-8") as f:
        settings = settings_rules.reference(f.read())
    if not settings:
        print(f"{settings_path}: no `# env:` lines (not the output of `auditlog config --defaults`?)")
        return 1
    cluster = "--cluster" in flags
    configs = cluster_rules.read_configs(doc, os.path.dirname(os.path.abspath(compose_path))) if cluster else {}
    inputs = Inputs(dockerfile, schema, settings, cluster, configs)
    # x- extension fields hold anchors only; the merged services are what gets validated.
    problems = check(doc, inputs)
    if "--self-test" in flags:
        problems += self_test(doc, inputs)
    for p in problems:
        print(p)
    if not problems:
        what = f"{compose_path} (merged)" + (f", {', '.join(sorted(configs))}" if configs else "")
        print(f"ok: {what} and {dockerfile_path} follow the Compose schema, the binary's settings and the project's rules"
              + (" (self-test passed)" if "--self-test" in flags else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
