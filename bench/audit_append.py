"""Audit log appends per second, SQLite and PostgreSQL, against a bare SQLAlchemy insert loop.

    python bench/audit_append.py [--appends 2000] [--processes 4]

For each database, in the same run:

- one writer: ``AuditLog.append`` (lock the head row, hash the entry, insert it and the
  Merkle nodes it completes, move the head, commit) against a bare loop inserting one row
  per transaction into a table of the same width, on the same engine (SQLite WAL with
  ``synchronous=FULL``; PostgreSQL with its defaults, fsync on);
- several writer processes appending at once, then a check that they wrote one chain.

PostgreSQL is a throw-away server started here (tests/pg.py). Results go to the section
"Audit log appends" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, insert, select

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from pg import PostgresServer  # noqa: E402
from report import write_section  # noqa: E402

from kyso.audit.offline.verify import verify_export  # noqa: E402
from kyso.audit.store import AuditLog, EntryDraft  # noqa: E402
from kyso.db import create_schema, open_database  # noqa: E402

DRAFT = EntryDraft(
    action="sign.json",
    actor="his-main",
    key="lab-seal",
    record_id="encounter/123/discharge",
    document_sha256="ab" * 32,
    signature_sha256="cd" * 32,
    detail={"level": "B-T", "detached": False},
)

bare_table = Table(
    "bench_rows",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("entry_hash", String(64), nullable=False),
    Column("canonical", Text, nullable=False),
)

# argv: URL, then a number of appends or a duration ("8s"). Says "ready", waits for a line
# on stdin (all start together), prints how many it made.
WRITER = """
import sys, time
from kyso.audit.store import AuditLog, EntryDraft
from kyso.db import open_database
log = AuditLog(open_database(sys.argv[1]))
log.size()  # connected
print("ready", flush=True)
sys.stdin.readline()  # start together
limit, n = sys.argv[2], 0
deadline = time.monotonic() + float(limit[:-1]) if limit.endswith("s") else None
while n < (int(limit) if deadline is None else 1 << 62):
    if deadline is not None and time.monotonic() >= deadline:
        break
    log.append(EntryDraft(action="sign.json", actor="bench", document_sha256="ab" * 32))
    n += 1
print(n, flush=True)
"""

# The same number of durable one-row transactions, without the log: the bare ceiling.
BARE_WRITER = """
import sys
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert
from kyso.db import open_database
table = Table("bench_rows", MetaData(), Column("id", Integer, primary_key=True, autoincrement=False),
              Column("entry_hash", String(64), nullable=False), Column("canonical", Text, nullable=False))
import time
db = open_database(sys.argv[1])
first, line = int(sys.argv[3]), "x" * 420
with db.writer.connect():
    pass
print("ready", flush=True)
sys.stdin.readline()
limit, n = sys.argv[2], 0
deadline = time.monotonic() + float(limit[:-1]) if limit.endswith("s") else None
while n < (int(limit) if deadline is None else 1 << 62):
    if deadline is not None and time.monotonic() >= deadline:
        break
    with db.writer.begin() as conn:
        conn.execute(insert(table).values(id=first + n, entry_hash="ef" * 32, canonical=line))
    n += 1
print(n, flush=True)
"""


def single_writer(url: str, n: int) -> tuple[float, float]:
    """(audit appends/s, bare inserts/s) with one writer."""
    db = open_database(url)
    try:
        create_schema(db)
        bare_table.create(db.writer, checkfirst=True)
        log = AuditLog(db)
        log.append(DRAFT)  # warm up: connections, first statements
        start = time.perf_counter()
        for _ in range(n):
            log.append(DRAFT)
        ours = n / (time.perf_counter() - start)
        line = "x" * 420  # about the size of an entry's canonical text
        start = time.perf_counter()
        for i in range(n):
            with db.writer.begin() as conn:
                conn.execute(insert(bare_table).values(id=i, entry_hash="ef" * 32, canonical=line))
        bare = n / (time.perf_counter() - start)
        return ours, bare
    finally:
        db.dispose()


def start_together(
    script: str, args: list[list[str]], during: Callable[[list[int]], object] | None = None
) -> tuple[float, int]:
    """Run ``script`` in one process per argument list, all started at once once each has
    said it is ready; the seconds until the last ends, and the sum of what they printed
    (how many each made). ``during`` gets their pids, in a thread of its own, as they start."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *more],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for more in args
    ]
    for w in writers:  # every writer imported and connected
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for w in writers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    watcher = threading.Thread(target=during, args=([w.pid for w in writers],), daemon=True)
    if during is not None:
        watcher.start()
    made = 0
    for w in writers:
        assert w.stdout is not None
        made += int(w.stdout.read().strip() or 0)
        if w.wait() != 0:
            raise RuntimeError(f"a writer failed with exit code {w.returncode}")
    elapsed = time.perf_counter() - start
    if during is not None:
        watcher.join()
    return elapsed, made


def many_writers(
    url: str, processes: int, each: int | str, during: Callable[[list[int]], object] | None = None
) -> tuple[float, bool]:
    """(appends/s over all processes, whether the log is one verifying chain). ``each``:
    appends per process, or a duration for all ("8s")."""
    db = open_database(url)
    create_schema(db)
    before = AuditLog(db).size()
    elapsed, made = start_together(WRITER, [[url, str(each)]] * processes, during)
    log = AuditLog(db)
    one_chain = log.size() == before + made and verify_export(log.export_lines()).ok
    db.dispose()
    return made / elapsed, one_chain


def many_bare_writers(url: str, processes: int, each: int | str) -> float:
    """Durable one-row inserts/s over ``processes`` writers at once, without the log."""
    db = open_database(url)
    bare_table.create(db.writer, checkfirst=True)
    with db.writer.begin() as conn:
        first = conn.execute(select(func.coalesce(func.max(bare_table.c.id), 0))).scalar_one() + 1
    db.dispose()
    args = [[url, str(each), str(first + i * 10_000_000)] for i in range(processes)]
    elapsed, made = start_together(BARE_WRITER, args)
    return made / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg:
        for name, url in (
            ("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/bench.sqlite3"),
            ("PostgreSQL 15 (fsync on)", pg.create_database()),
        ):
            ours, bare = single_writer(url, args.appends)
            each = args.appends // args.processes
            together, one_chain = many_writers(url, args.processes, each)
            rows.append((name, ours, bare, together, one_chain))
            print(
                f"{name}: {ours:.0f}/s, bare {bare:.0f}/s, {args.processes} processes {together:.0f}/s, one chain: {one_chain}"
            )
    table = [
        "| database | audit appends/s, 1 writer | bare insert loop/s, same run | ratio | "
        f"{args.processes} writer processes, appends/s | one chain |",
        "|---|---|---|---|---|---|",
    ]
    for name, ours, bare, together, one_chain in rows:
        table.append(
            f"| {name} | {ours:.0f} | {bare:.0f} | {ours / bare:.2f} | {together:.0f} | {'yes' if one_chain else 'NO'} |"
        )
    body = "\n".join(
        [
            f"{args.appends} appends per row; one commit per append (durable before acknowledged). "
            "`python bench/audit_append.py`.",
            "",
            *table,
            "",
            "An append is one transaction: lock the head row (SQLite `BEGIN IMMEDIATE`, PostgreSQL "
            "`SELECT ... FOR UPDATE`), hash the entry (RFC 8785 + SHA-256), insert it and the Merkle "
            "nodes it completes (one query reads the left siblings), move the head, commit. The bare "
            "loop inserts one row of the same width per transaction on the same engine. With several "
            "writers the head lock serialises appends; each process waits for the previous commit.",
        ]
    )
    write_section("Audit log appends", body)


if __name__ == "__main__":
    main()
