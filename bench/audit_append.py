"""Audit log appends per second, SQLite and PostgreSQL, against a bare SQLAlchemy insert loop.

    python bench/audit_append.py [--appends 2000] [--processes 16] [--workers 2] [--threads 8]

For each database, in the same run:

- one writer: ``AuditLog.append`` (lock the head row, hash the entry, insert it and the
  Merkle nodes it completes, move the head, commit) against a bare loop inserting one row
  per transaction into a table of the same width, on the same engine (SQLite WAL with
  ``synchronous=FULL``; PostgreSQL with its defaults, fsync on);
- 16 writers at once as the service has them, threads in a few worker processes
  (2 x 8), then a check that they wrote one chain;
- 16 single-threaded writer processes at once, then the same check.

PostgreSQL is a throw-away server started here (tests/pg.py). Results go to the section
"Audit log appends" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, event, func, insert, select

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

# argv: URL, a number of appends per thread or a duration ("8s"), and the number of threads
# appending at once in this process (as a gunicorn worker's threads do). Says "ready",
# waits for a line on stdin (all start together), prints how many it made.
WRITER = """
import sys, threading, time
from kyso.audit.store import AuditLog, EntryDraft
from kyso.db import open_database
log = AuditLog(open_database(sys.argv[1]))
log.size()  # connected
limit, threads = sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1
deadline = None
made = [0] * threads
go = threading.Event()
def write(i):
    go.wait()
    n = 0
    while n < (int(limit) if deadline is None else 1 << 62):
        if deadline is not None and time.monotonic() >= deadline:
            break
        log.append(EntryDraft(action="sign.json", actor="bench", document_sha256="ab" * 32))
        n += 1
    made[i] = n
workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
print("ready", flush=True)
sys.stdin.readline()  # start together
if limit.endswith("s"):
    deadline = time.monotonic() + float(limit[:-1])
go.set()
for w in workers:
    w.join()
print(sum(made), flush=True)
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
    url: str,
    processes: int,
    each: int | str,
    during: Callable[[list[int]], object] | None = None,
    threads: int = 1,
) -> tuple[float, bool]:
    """(appends/s over all processes, whether the log is one verifying chain). ``each``:
    appends per writer thread, or a duration for all ("8s"); ``threads``: writer threads
    per process."""
    db = open_database(url)
    create_schema(db)
    before = AuditLog(db).size()
    elapsed, made = start_together(WRITER, [[url, str(each), str(threads)]] * processes, during)
    log = AuditLog(db)
    one_chain = log.size() == before + made and verify_export(log.export_lines()).ok
    db.dispose()
    return made / elapsed, one_chain


def grouping(url: str, threads: int, seconds: float) -> tuple[float, float, float]:
    """Appends made by ``threads`` threads of this one process for ``seconds``: (appends/s,
    entries a commit, CPU microseconds of this process an append): how much group commit
    puts into each commit, and what an append costs with it."""
    db = open_database(url)
    create_schema(db)
    log = AuditLog(db)
    log.size()
    commits, made = [0], [0] * threads
    event.listen(db.writer, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    deadline = time.monotonic() + seconds

    def write(i: int) -> None:
        while time.monotonic() < deadline:
            log.append(DRAFT)
            made[i] += 1

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    cpu, start = time.process_time(), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.dispose()
    total = sum(made)
    return total / elapsed, total / max(1, commits[0]), cpu / total * 1e6


def grouping_apart(url: str, threads: int, seconds: float) -> tuple[float, float, float]:
    """:func:`grouping` in a fresh interpreter: this one's heap (a benchmark's data) would
    make every garbage collection of the appends' objects longer."""
    script = (
        "import json, sys; sys.path[:0] = sys.argv[1:3]; import audit_append; "
        "print(json.dumps(audit_append.grouping(sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(HERE), str(HERE.parent / "tests"), url, str(threads), str(seconds)],
        capture_output=True, text=True, check=True,
    )
    rate, per_commit, cpu = json.loads(done.stdout.splitlines()[-1])
    return rate, per_commit, cpu


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
    parser.add_argument("--processes", type=int, default=16, help="single-threaded writer processes")
    parser.add_argument("--workers", type=int, default=2, help="processes of the threaded shape")
    parser.add_argument("--threads", type=int, default=8, help="writer threads per worker")
    args = parser.parse_args()
    rows = []
    threaded = args.workers * args.threads
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg:
        for name, url in (
            ("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/bench.sqlite3"),
            ("PostgreSQL 15 (fsync on)", pg.create_database()),
        ):
            ours, bare = single_writer(url, args.appends)
            rate, chain = many_writers(url, args.workers, args.appends // threaded, threads=args.threads)
            solo, solo_chain = many_writers(url, args.processes, args.appends // args.processes)
            rows.append((name, ours, bare, rate, solo, chain and solo_chain))
            print(
                f"{name}: {ours:.0f}/s, bare {bare:.0f}/s, {args.workers} x {args.threads} threads "
                f"{rate:.0f}/s, {args.processes} processes {solo:.0f}/s, one chain: {chain and solo_chain}"
            )
    table = [
        "| database | audit appends/s, 1 writer | bare insert loop/s, same run | ratio | "
        f"{threaded} writers as {args.workers} processes x {args.threads} threads, appends/s | "
        f"{args.processes} single-threaded writer processes, appends/s | one chain |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, ours, bare, rate, solo, one_chain in rows:
        table.append(
            f"| {name} | {ours:.0f} | {bare:.0f} | {ours / bare:.2f} | {rate:.0f} | {solo:.0f} "
            f"| {'yes' if one_chain else 'NO'} |"
        )
    body = "\n".join(
        [
            f"{args.appends} appends per column; every append durable before it is acknowledged. "
            "`python bench/audit_append.py`.",
            "",
            *table,
            "",
            "Appends that arrive together in one process share one transaction and one commit "
            "(group commit, `kyso.audit.store`): lock the head row (SQLite `BEGIN IMMEDIATE`, "
            "PostgreSQL `SELECT ... FOR UPDATE`), hash the entries (RFC 8785 + SHA-256), insert "
            "them and the Merkle nodes they complete, move the head, commit once. The bare loop "
            "inserts one row of the same width per transaction on the same engine. The threaded "
            "shape is the service's: gunicorn workers (one per core by default) serving requests "
            "with threads. With single-threaded processes each process has one append in flight, "
            "so there is nothing to group: every append is its own commit and the rate stays "
            "below the bare one-row commit rate, whatever the log does.",
        ]
    )
    write_section("Audit log appends", body)


if __name__ == "__main__":
    main()
