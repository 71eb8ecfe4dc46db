"""Group commit: appends that arrive together share one transaction, on SQLite and PostgreSQL.

A first append is held inside its transaction (its own writes wait on a gate) while others
queue behind it; once let go, the next leader takes all of them into one transaction. So
each test knows which appends shared a commit, and checks what that commit holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select

from kyso.audit.offline.verify import verify_export
from kyso.audit.store import AppendedEntry, AuditLog, EntryDraft, register_signature
from kyso.db import Database, audit_entries, create_schema, open_database, signatures


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'kyso.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    opened = open_database(url)
    create_schema(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def commits(db: Database) -> list[int]:
    """One item per write transaction committed from now on."""
    counted: list[int] = []
    event.listen(db.writer, "commit", lambda _conn: counted.append(1))
    return counted


def draft(record_id: str) -> EntryDraft:
    return EntryDraft(
        action="sign.json", actor="his", record_id=record_id, document_sha256="ab" * 32, signature_sha256="cd" * 32
    )


def register(conn: Connection, entries: list[AppendedEntry]) -> None:
    for entry in entries:
        register_signature(conn, entry, "json", "B-B")


class Held:
    """An append whose transaction stays open until :meth:`release`, and appends queued
    behind it one by one (in a known order)."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.gate, self.inside = threading.Event(), threading.Event()
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[str, Any] = {}

        def hold(conn: Connection, entries: list[AppendedEntry]) -> None:
            self.inside.set()
            assert self.gate.wait(30)

        self.queue("held", [draft("held")], hold)
        assert self.inside.wait(30)

    def queue(
        self,
        name: str,
        drafts: list[EntryDraft],
        write: Callable[[Connection, list[AppendedEntry]], None] = register,
    ) -> None:
        """Start an append in a thread of its own; return once it waits in the queue."""
        waiting = self.log.waiting_appends()

        def run() -> None:
            try:
                self.outcomes[name] = self.log.append_many(drafts, write)
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        if name != "held":
            deadline = time.monotonic() + 30
            while self.log.waiting_appends() == waiting:
                assert time.monotonic() < deadline, "the append did not queue"
                time.sleep(0.005)

    def release(self) -> dict[str, Any]:
        self.gate.set()
        for thread in self.threads:
            thread.join(60)
        return self.outcomes


def stored(db: Database) -> tuple[list[str | None], list[str | None]]:
    """The record ids of the entries, and of the registry rows, in seq order."""
    with db.reader.connect() as conn:
        entries = conn.execute(select(audit_entries.c.record_id).order_by(audit_entries.c.seq))
        rows = conn.execute(select(signatures.c.record_id).order_by(signatures.c.audit_seq))
        return [r for (r,) in entries], [r for (r,) in rows]


def one_chain(log: AuditLog) -> bool:
    report = verify_export(log.export_lines())
    with log.db.reader.connect() as conn:
        seqs = [s for (s,) in conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq))]
    return report.ok and seqs == list(range(log.size()))


def test_appends_queued_together_share_one_transaction_and_make_one_chain(
    db: Database, commits: list[int]
) -> None:
    log = AuditLog(db)
    held = Held(log)
    for n in range(20):
        held.queue(f"r{n}", [draft(f"r{n}")])
    outcomes = held.release()
    assert all(isinstance(o, list) for o in outcomes.values()), outcomes
    assert len(commits) == 2  # the held append, then the twenty queued behind it
    assert [outcomes[f"r{n}"][0].seq for n in range(20)] == list(range(1, 21))
    assert stored(db)[1] == [f"r{n}" for n in range(20)]  # each one's writes committed
    assert log.size() == 21 and one_chain(log)


def test_many_threads_at_once_make_one_chain_with_fewer_commits_than_appends(
    db: Database, commits: list[int]
) -> None:
    log = AuditLog(db)
    threads, each = 12, 15
    seqs: list[int] = []
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        for n in range(each):
            seqs.append(log.append(draft(f"t{t}/{n}"), lambda conn, e: register(conn, [e])).seq)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert sorted(seqs) == list(range(threads * each))
    assert len(commits) <= threads * each
    assert one_chain(log)
    entries, rows = stored(db)
    assert entries == rows  # every entry's registry row, under its own seq


def test_a_caller_whose_writes_fail_gets_its_error_and_leaves_no_trace(db: Database) -> None:
    log = AuditLog(db)
    held = Held(log)

    def fail(conn: Connection, entries: list[AppendedEntry]) -> None:
        register(conn, entries)  # written, then undone
        raise LookupError("refused")

    held.queue("before", [draft("before")])
    held.queue("failing", [draft("failing"), draft("failing")], fail)
    held.queue("after", [draft("after")])
    outcomes = held.release()
    assert isinstance(outcomes["failing"], LookupError)
    assert [e.seq for e in outcomes["before"]] == [1]
    assert [e.seq for e in outcomes["after"]] == [2]  # no gap where the failed ones were
    assert stored(db) == (["held", "before", "after"], ["before", "after"])
    assert one_chain(log)


def test_a_failed_commit_reaches_every_caller_of_the_transaction(db: Database) -> None:
    log = AuditLog(db)
    held = Held(log)
    for name in ("a", "b", "c"):
        held.queue(name, [draft(name)])

    def refuse(_conn: Any) -> None:
        # The held append's commit goes through; the next one (a, b and c together) fails.
        # Listening before the gate opens: the next leader may commit the instant it does.
        seen.append(1)
        if len(seen) == 2:
            raise OSError("disk full")

    seen: list[int] = []
    event.listen(db.writer, "commit", refuse)
    outcomes = held.release()
    assert len(seen) == 2, "a, b and c should have shared one commit after the held one"
    assert all(isinstance(outcomes[name], OSError) for name in ("a", "b", "c"))
    assert stored(db)[0] == ["held"]
    log.append(draft("later"))  # the log goes on from where it was
    assert stored(db)[0] == ["held", "later"] and one_chain(log)


def test_a_callers_entries_stay_consecutive_and_in_order(db: Database) -> None:
    log = AuditLog(db)
    held = Held(log)
    for name in ("a", "b", "c"):
        held.queue(name, [draft(f"{name}{n}") for n in range(4)])
    outcomes = held.release()
    for name in ("a", "b", "c"):
        entries = outcomes[name]
        assert [e.entry.record_id for e in entries] == [f"{name}{n}" for n in range(4)]
        assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 4))
    assert one_chain(log)


def test_writes_that_append_to_the_same_log_are_refused(db: Database) -> None:
    log = AuditLog(db)
    with pytest.raises(RuntimeError, match="cannot submit"):
        log.append(draft("outer"), lambda conn, e: log.append(draft("inner")) and None)
    assert log.size() == 0


def test_sqlite_writers_queue_on_a_lock_file_beside_the_database(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'kyso.sqlite3'}")
    create_schema(db)
    AuditLog(db).append(draft("one"))
    assert (tmp_path / "kyso.sqlite3.lock").exists()
    db.dispose()
    with db.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_entries)).scalar_one() == 1
