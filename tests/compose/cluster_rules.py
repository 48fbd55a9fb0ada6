"""The rules of docker-compose.cluster.yml and its ClickHouse XML files (deploy/compose/cluster/).

Keeper: an odd number of `clickhouse/clickhouse-keeper` nodes (Raft needs a majority), each
mounting a keeper_config.xml that parses and has tcp_port, server_id (literal or from a variable
the node sets), the log and snapshot paths and a raft_configuration naming exactly the Keeper
services, each id once.

Servers: at least two `clickhouse/clickhouse-server` services; the XML files each mounts into
config.d/ parse and together give: `macros` (shard, replica; the replica unique across the
cluster), `remote_servers` holding the cluster the auditlog services name
(AUDITLOG_CLICKHOUSE__CLUSTER) with internal_replication on every shard and every server as one
replica, `zookeeper` nodes that are the Keeper services on their port, `distributed_ddl` with a
path, `background_distributed_schedule_pool_size` above 0, `interserver_http_port` and an
`interserver_http_host` that is the server's own name on the compose network. Every `from_env`
names a variable the service sets. Servers wait for healthy Keepers.

The auditlog services: AUDITLOG_CLICKHOUSE__URL and AUDITLOG_CLICKHOUSE__FAILOVER_URLS together
name every server, each once; `migrate` waits for every server to be healthy (ON CLUSTER DDL
needs them all).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from settings_rules import environment

KEEPER_IMAGE = "clickhouse/clickhouse-keeper:"
SERVER_IMAGE = "clickhouse/clickhouse-server:"
KEEPER_CONFIG = "/etc/clickhouse-keeper/keeper_config.xml"
SERVER_CONFIG_D = "/etc/clickhouse-server/config.d/"


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host path as written, container path) of each bind mount of files from the repository."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append((str(v.get("source", "")), str(v.get("target", ""))))
            continue
        parts = str(v).split(":")
        if len(parts) >= 2 and parts[0].startswith((".", "/")):
            out.append((parts[0], parts[1]))
    return out


def config_paths(doc: dict) -> set[str]:
    """The host paths of the XML files the Keeper and server services mount."""
    return {src for s in (doc.get("services") or {}).values()
            if str(s.get("image", "")).startswith((KEEPER_IMAGE, SERVER_IMAGE))
            for src, _ in bind_mounts(s) if src.endswith(".xml")}


def read_configs(doc: dict, root: str) -> dict[str, str]:
    """{host path as written: text} of the mounted XML files ('' when missing)."""
    out = {}
    for src in sorted(config_paths(doc)):
        path = os.path.join(root, src)
        out[src] = open(path, encoding="utf-8").read() if os.path.isfile(path) else ""
    return out


def _parse(src: str, configs: dict[str, str], problems: list[str]) -> ET.Element | None:
    text = configs.get(src, "")
    if not text:
        problems.append(f"{src}: missing (mounted by the compose file)")
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        problems.append(f"{src}: not well-formed XML: {e}")
        return None
    if root.tag != "clickhouse":
        problems.append(f"{src}: the top element must be <clickhouse>, not <{root.tag}>")
    return root


def _value(el: ET.Element | None, env: dict[str, str]) -> str | None:
    """An element's value: its text, or the variable its `from_env` names (None when unset)."""
    if el is None:
        return None
    if "from_env" in el.attrib:
        return env.get(el.attrib["from_env"])
    return (el.text or "").strip()


def _from_env_problems(where: str, roots: list[ET.Element], env: dict[str, str]) -> list[str]:
    return [f"{where}: <{el.tag} from_env=\"{el.attrib['from_env']}\"> but the service does not set it"
            for r in roots for el in r.iter() if "from_env" in el.attrib and el.attrib["from_env"] not in env]


def _healthy_deps(service: dict) -> set[str]:
    deps = service.get("depends_on") or {}
    if not isinstance(deps, dict):
        return set()
    return {n for n, d in deps.items() if isinstance(d, dict) and d.get("condition") == "service_healthy"}


def keeper_problems(keepers: dict[str, dict], configs: dict[str, str]) -> tuple[list[str], set[str]]:
    """Problems of the Keeper nodes, and the client ports they listen on."""
    out: list[str] = []
    ports: set[str] = set()
    if not keepers:
        return [f"no {KEEPER_IMAGE}<version> service (ClickHouse Keeper)"], ports
    if len(keepers) % 2 == 0:
        out.append(f"{len(keepers)} Keeper nodes: use an odd number (3 survive one down; an even one adds nothing)")
    ids: dict[str, str] = {}
    for name, s in keepers.items():
        env = environment(s)
        srcs = [src for src, tgt in bind_mounts(s) if tgt == KEEPER_CONFIG]
        if not srcs:
            out.append(f"services.{name}: must mount its config at {KEEPER_CONFIG}")
            continue
        root = _parse(srcs[0], configs, out)
        if root is None:
            continue
        out += _from_env_problems(f"services.{name} ({srcs[0]})", [root], env)
        ks = root.find("keeper_server")
        if ks is None:
            out.append(f"{srcs[0]}: no <keeper_server>")
            continue
        for tag in ("tcp_port", "server_id", "log_storage_path", "snapshot_storage_path"):
            if not _value(ks.find(tag), env):
                out.append(f"{srcs[0]}: <keeper_server><{tag}> missing or empty (for {name})")
        ports.add(_value(ks.find("tcp_port"), env) or "")
        raft = {(_value(sv.find("id"), env) or ""): (_value(sv.find("hostname"), env) or "")
                for sv in ks.findall("raft_configuration/server")}
        if set(raft.values()) != set(keepers):
            out.append(f"{srcs[0]}: raft_configuration names {sorted(raft.values())}, the Keeper services are {sorted(keepers)}")
        sid = _value(ks.find("server_id"), env) or ""
        if raft.get(sid) not in (name, s.get("hostname")):
            out.append(f"services.{name}: server_id {sid!r} is {raft.get(sid)!r} in raft_configuration, not this node")
        if sid in ids:
            out.append(f"services.{name}: server_id {sid!r} is also {ids[sid]}'s")
        ids[sid] = name
    return out, ports


def server_problems(servers: dict[str, dict], keepers: dict[str, dict], keeper_ports: set[str],
                    configs: dict[str, str], cluster: str) -> list[str]:
    out: list[str] = []
    if len(servers) < 2:
        out.append(f"{len(servers)} {SERVER_IMAGE}<version> service(s): a cluster needs two replicas or more")
    replicas: dict[str, str] = {}
    members: dict[str, list[tuple[int, str]]] = {}  # server -> [(shard index, shard macro)]
    for name, s in servers.items():
        env = environment(s)
        srcs = [src for src, tgt in bind_mounts(s) if tgt.startswith(SERVER_CONFIG_D)]
        roots = [r for r in (_parse(src, configs, out) for src in srcs) if r is not None]
        where = f"services.{name}"
        out += _from_env_problems(where, roots, env)

        def find(path):
            return next((el for r in roots for el in [r.find(path)] if el is not None), None)

        shard, replica = _value(find("macros/shard"), env), _value(find("macros/replica"), env)
        if not shard or not replica:
            out.append(f"{where}: its config.d files need <macros> with <shard> and <replica>")
        elif replica in replicas:
            out.append(f"{where}: replica macro {replica!r} is also {replicas[replica]}'s (must be unique in the cluster)")
        else:
            replicas[replica] = name
        cl = find(f"remote_servers/{cluster}") if cluster else None
        if cl is None:
            out.append(f"{where}: no <remote_servers><{cluster or '?'}> (the cluster AUDITLOG_CLICKHOUSE__CLUSTER names)")
        else:
            for i, sh in enumerate(cl.findall("shard")):
                if _value(sh.find("internal_replication"), env) != "true":
                    out.append(f"{where}: remote_servers {cluster} shard {i + 1} needs <internal_replication>true</internal_replication>")
                for rep in sh.findall("replica"):
                    members.setdefault(_value(rep.find("host"), env) or "", []).append((i, shard or ""))
        nodes = [(_value(n.find("host"), env), _value(n.find("port"), env)) for r in roots for n in r.findall("zookeeper/node")]
        if not nodes:
            out.append(f"{where}: no <zookeeper><node> (the Keeper nodes)")
        for host, port in nodes:
            if host not in keepers or port not in keeper_ports:
                out.append(f"{where}: zookeeper node {host}:{port} is not a Keeper service on its tcp_port")
        if not _value(find("distributed_ddl/path"), env):
            out.append(f"{where}: <distributed_ddl><path> missing (ON CLUSTER DDL)")
        pool = _value(find("background_distributed_schedule_pool_size"), env) or ""
        if not pool.isdigit() or int(pool) < 1:
            out.append(f"{where}: <background_distributed_schedule_pool_size> must be set above 0 (is {pool or 'unset'})")
        if not _value(find("interserver_http_port"), env):
            out.append(f"{where}: <interserver_http_port> missing (replicas fetch parts over it)")
        host = _value(find("interserver_http_host"), env)
        if host not in (name, s.get("hostname")):
            out.append(f"{where}: <interserver_http_host> is {host!r}, not its name on the compose network")
        missing = set(keepers) - _healthy_deps(s)
        if missing:
            out.append(f"{where}: must depend on healthy Keeper nodes ({sorted(missing)})")
    # Cluster membership, from the first server's view (the others are checked to agree).
    for name in servers:
        if len(members.get(name, [])) != len(servers):
            out.append(f"remote_servers {cluster}: {name} must be one replica in every server's view "
                       f"(found {len(members.get(name, []))} times in {len(servers)} configs)")
    for host in members:
        if host not in servers:
            out.append(f"remote_servers {cluster}: replica host {host!r} is not a ClickHouse service")
    by_index: dict[int, set[str]] = {}
    for entries in members.values():
        for i, macro in entries:
            by_index.setdefault(i, set()).add(macro)
    for i, macros in by_index.items():
        if len(macros) > 1:
            out.append(f"remote_servers {cluster}: the replicas of shard {i + 1} have different shard macros {sorted(macros)}")
    return out


def client_problems(doc: dict, servers: dict[str, dict], image: str) -> list[str]:
    out = []
    services = doc.get("services") or {}
    for name, s in services.items():
        if s.get("image") != image:
            continue
        env = environment(s)
        hosts = [urlsplit(env.get("AUDITLOG_CLICKHOUSE__URL", "")).hostname]
        try:
            failover = json.loads(env.get("AUDITLOG_CLICKHOUSE__FAILOVER_URLS", "[]"))
        except ValueError:
            failover = None
        if not isinstance(failover, list):
            out.append(f"services.{name}: AUDITLOG_CLICKHOUSE__FAILOVER_URLS must be a JSON list of URLs")
            failover = []
        hosts += [urlsplit(str(u)).hostname for u in failover]
        if sorted(map(str, hosts)) != sorted(servers):
            out.append(f"services.{name}: AUDITLOG_CLICKHOUSE__URL and __FAILOVER_URLS reach {hosts}, "
                       f"must reach every server once: {sorted(servers)}")
    missing = set(servers) - _healthy_deps(services.get("migrate", {}))
    if missing:
        out.append(f"services.migrate: must wait for every ClickHouse server to be healthy ({sorted(missing)})")
    return out


def problems(doc: dict, configs: dict[str, str], image: str) -> list[str]:
    services = doc.get("services") or {}
    keepers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith(KEEPER_IMAGE)}
    servers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith(SERVER_IMAGE)}
    clusters = {environment(s).get("AUDITLOG_CLICKHOUSE__CLUSTER", "")
                for s in services.values() if s.get("image") == image}
    out = []
    if len(clusters) != 1 or "" in clusters:
        out.append(f"the auditlog services must all set one AUDITLOG_CLICKHOUSE__CLUSTER (found {sorted(clusters)})")
    cluster = sorted(clusters)[0] if clusters else ""
    found, ports = keeper_problems(keepers, configs)
    out += found
    out += server_problems(servers, keepers, ports, configs, cluster)
    out += client_problems(doc, servers, image)
    return out
