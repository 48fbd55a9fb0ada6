"""Checks every `AUDITLOG_*` variable a Compose file gives the auditlog services against the
binary's own settings: the reference `auditlog config --defaults` prints (generated from the
config structs), where each setting is preceded by `# env: AUDITLOG_<SECTION>__<KEY>` and
followed by its default (`key = value`, or `# key = (unset)`).

A name the reference does not list is a typo or a setting that does not exist (the binary would
ignore it or refuse to start); a value that cannot be of the default's type (a list, a number,
a boolean) would be refused at start. Values taken from the shell (`${VAR...}`) are not typed.
"""

from __future__ import annotations

import json
import re
import tomllib

ENV_LINE = re.compile(r"#\s*env:\s*(AUDITLOG_[A-Z0-9_]+)\s*$")
UNSET = object()  # a setting whose default is none (`# key = (unset)`)
NOT_SETTINGS = {"AUDITLOG_CONFIG"}  # the config file's path (`--config`), read by the binary itself


def reference(text: str) -> dict[str, object]:
    """{env name: default value} read from `auditlog config --defaults`."""
    lines = text.splitlines()
    out: dict[str, object] = {}
    for i, line in enumerate(lines):
        m = ENV_LINE.fullmatch(line.strip())
        if not m:
            continue
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        try:
            value = next(iter(tomllib.loads(following).values())) if following and not following.startswith("#") else UNSET
        except (tomllib.TOMLDecodeError, StopIteration):
            value = UNSET
        out[m.group(1)] = value
    return out


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _type_problem(value: str, default: object) -> str | None:
    if "${" in value or default is UNSET or isinstance(default, str):
        return None
    if isinstance(default, bool):
        return None if value in ("true", "false") else "must be true or false"
    if isinstance(default, int):
        return None if re.fullmatch(r"-?\d+", value) else "must be a whole number"
    if isinstance(default, float):
        return None if re.fullmatch(r"-?\d+(\.\d+)?", value) else "must be a number"
    if isinstance(default, list):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        return None if isinstance(parsed, list) else "must be a list, e.g. '[\"http://host:8123\"]'"
    return None


def problems(doc: dict, settings: dict[str, object], image: str) -> list[str]:
    """Every AUDITLOG_* variable of the services running `image` that is not a real setting."""
    out = []
    for name, service in (doc.get("services") or {}).items():
        if service.get("image") != image:
            continue
        for var, value in environment(service).items():
            if not var.startswith("AUDITLOG_") or var in NOT_SETTINGS:
                continue
            if var not in settings:
                out.append(f"services.{name}.environment.{var}: not a setting of the auditlog binary "
                           "(see `auditlog config --defaults`)")
                continue
            why = _type_problem(value, settings[var])
            if why:
                out.append(f"services.{name}.environment.{var}: {value!r} {why}")
    return out
