"""Adds the index Tansu 0.6.0's SQLite schema lacks: header (topition, offset_id).

Tansu reads each fetched record's headers with `header_fetch.sql`, a lookup by
(topition, offset_id) in the `header` table, which has no index on those columns: every
record fetched scans every header ever written. With a few tens of thousands of messages
(three headers each) a fetch of 1 MB takes seconds, and because Tansu's storage serves the
group coordinator too, heartbeats go unanswered meanwhile: consumers time out of their group
again and again. With the index a lookup is a B-tree search.

Usage: python3 tansu_index.py PATH/TO/tansu.db [WAIT_SECONDS]
Waits (at most WAIT_SECONDS, default 30) for Tansu to have created its schema, then creates
the index if it is missing. Safe to run while the broker runs and to run again.
"""

import sqlite3
import sys
import time

INDEX = "CREATE INDEX IF NOT EXISTS header_topition_offset_id ON header (topition, offset_id)"


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    path = sys.argv[1]
    deadline = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) == 3 else 30.0)
    last = "the broker has not created its schema yet"
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(path, timeout=30) as db:
                has_table = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'header'"
                ).fetchone()
                if has_table:
                    db.execute(INDEX)
                    return 0
        except sqlite3.Error as e:
            last = str(e)
        time.sleep(0.2)
    print(f"tansu_index: {path}: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
