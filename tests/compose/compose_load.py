"""Loads a Compose file the way Compose reads it, as far as the checks need: YAML anchors and
merge keys resolved (PyYAML), and each service's `extends: {file, service}` replaced by the
referenced service merged with the local definition (Compose's merge rules, simplified:
mappings merge key by key with the local value winning; sequences such as `ports` and `volumes`
are appended, without duplicates; a scalar or sequence the local service sets replaces nothing
else). The checks then see the services as `docker compose config` would print them.
"""

from __future__ import annotations

import copy
import os

import yaml


def merge(base, local):
    """`local` over `base`: mappings recursively, sequences appended, scalars replaced."""
    if isinstance(base, dict) and isinstance(local, dict):
        out = dict(base)
        for k, v in local.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(local, list):
        return base + [v for v in local if v not in base]
    return local


def resolve_extends(doc: dict, directory: str, seen: tuple[str, ...] = ()) -> dict:
    """`doc` with every `extends` replaced by the referenced service (paths relative to `directory`)."""
    doc = copy.deepcopy(doc)
    for name, service in (doc.get("services") or {}).items():
        ext = service.pop("extends", None) if isinstance(service, dict) else None
        if ext is None:
            continue
        if isinstance(ext, str):
            ext = {"service": ext}
        path = os.path.normpath(os.path.join(directory, ext["file"])) if "file" in ext else None
        if path in seen:
            raise ValueError(f"services.{name}.extends: {path} extends itself")
        if path is None:
            other = doc
        else:
            with open(path, encoding="utf-8") as f:
                other = resolve_extends(yaml.safe_load(f), os.path.dirname(path), seen + (path,))
        base = (other.get("services") or {}).get(ext["service"])
        if base is None:
            raise ValueError(f"services.{name}.extends: no service {ext['service']!r} in {path or 'this file'}")
        doc["services"][name] = merge(copy.deepcopy(base), service)
    return doc


def load(path: str) -> dict:
    """The Compose file at `path`, merge keys and `extends` resolved."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return resolve_extends(doc, os.path.dirname(os.path.abspath(path)))
