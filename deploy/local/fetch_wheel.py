#!/usr/bin/env python3
"""Download a manylinux x86-64 wheel from PyPI without pip: fetch_wheel.py NAME VERSION DIR.

Used by stack.sh when `python3 -m pip` is not available. Prints progress every 10 %.
"""

import hashlib
import json
import os
import sys
import urllib.request


def main() -> int:
    name, version, dest = sys.argv[1:4]
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/{version}/json", timeout=60) as r:
        meta = json.load(r)
    files = [
        f
        for f in meta["urls"]
        if f["packagetype"] == "bdist_wheel"
        and "manylinux" in f["filename"]
        and "x86_64" in f["filename"]
    ]
    if not files:
        sys.exit(f"no manylinux x86_64 wheel for {name}=={version} on PyPI")
    f = files[0]
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, f["filename"])
    part = target + ".part"
    sha = hashlib.sha256()
    total, done, shown = f["size"], 0, -1
    with urllib.request.urlopen(f["url"], timeout=60) as r, open(part, "wb") as out:
        while chunk := r.read(1 << 20):
            out.write(chunk)
            sha.update(chunk)
            done += len(chunk)
            pct = done * 100 // total
            if pct // 10 != shown:
                shown = pct // 10
                print(f"  {f['filename']}: {pct}% of {total >> 20} MB", flush=True)
    if sha.hexdigest() != f["digests"]["sha256"]:
        os.remove(part)
        sys.exit(f"{f['filename']}: sha256 mismatch")
    os.replace(part, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
