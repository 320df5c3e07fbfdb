"""What the register's full damage check (register/db.py integrity_problem: PRAGMA quick_check, run
at the daemon's start and by verify) costs on a large register: wall and CPU time.

    .venv/bin/python bench/register_quick_check.py [ROWS]
"""

from __future__ import annotations

import os
import resource
import sqlite3
import sys
import tempfile
import time


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "register.sqlite3")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE documents(id INTEGER PRIMARY KEY, agenda TEXT UNIQUE, sha256 TEXT UNIQUE, "
                    "name TEXT, received_at TEXT)")
        con.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                        ((i, f"{i:06d}/M/2026", os.urandom(32).hex(), f"surat nomor {i} dari kantor.pdf",
                          "2026-12-01T00:00:00") for i in range(rows)))
        con.commit()
        con.close()
        print(f"{rows} rows, {os.path.getsize(path) / 1e6:.1f} MB")
        for _ in range(3):
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            con = sqlite3.connect(path)
            assert con.execute("PRAGMA quick_check(3)").fetchall() == [("ok",)]
            con.close()
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            print(f"quick_check: wall {time.perf_counter() - start:.3f} s, CPU {cpu:.3f} s")


if __name__ == "__main__":
    main()
