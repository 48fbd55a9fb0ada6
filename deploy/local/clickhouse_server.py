#!/usr/bin/env python3
"""Run a real ClickHouse server from the chdb 3.7.2 shared library (ClickHouse 25.8).

Usage: clickhouse_server.py LIBRARY CONFIG_XML

LIBRARY is the unpacked `chdb/_chdb.abi3.so` (with `chdb.libs/` beside its directory, as in
the wheel). The library exports `int mainEntryClickHouseServer(int, char **)`; calling it turns
this process into an ordinary clickhouse-server, so this PID is the server's PID. The stack
sets CLICKHOUSE_WATCHDOG_ENABLE=0 (no forked watchdog), so SIGTERM stops the server cleanly.
Started by deploy/local/stack.sh; not meant to be run by hand.
"""

import ctypes
import os
import sys

ENTRY = "_Z25mainEntryClickHouseServeriPPc"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    library, config = sys.argv[1], os.path.abspath(sys.argv[2])
    if not os.path.isfile(library):
        print(f"clickhouse_server.py: no library at {library}", file=sys.stderr)
        return 2
    if not os.path.isfile(config):
        print(f"clickhouse_server.py: no config at {config}", file=sys.stderr)
        return 2
    # Without this, clickhouse-server forks a watchdog and the server runs in the child.
    os.environ["CLICKHOUSE_WATCHDOG_ENABLE"] = "0"
    lib = ctypes.CDLL(library, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    entry = getattr(lib, ENTRY)
    entry.restype = ctypes.c_int
    entry.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    args = [b"clickhouse-server", f"--config-file={config}".encode()]
    argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
    sys.stdout.flush()
    sys.stderr.flush()
    rc = entry(len(args), argv)
    # Skip Python's interpreter teardown: the server has already shut itself down.
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
