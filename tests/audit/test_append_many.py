"""AuditLog.append_many: several entries in one transaction, all of them or none."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select
from support import make_config

from kyso.audit.merkle import verify_inclusion
from kyso.audit.offline.verify import verify_export
from kyso.audit.store import AppendedEntry, EntryDraft
from kyso.db import audit_entries, merkle_nodes
from kyso.service import Kyso


@pytest.fixture
def kyso(tmp_path: Path) -> Iterator[Kyso]:
    service = Kyso.open(make_config(tmp_path))
    yield service
    service.close()


def drafts(n: int) -> list[EntryDraft]:
    return [
        EntryDraft(
            action="sign.pdf", actor="his", document_sha256=hashlib.sha256(b"%d" % i).hexdigest()
        )
        for i in range(n)
    ]


def rows(kyso: Kyso) -> tuple[int, int]:
    with kyso.db.reader.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(audit_entries)).scalar_one()
        nodes = conn.execute(select(func.count()).select_from(merkle_nodes)).scalar_one()
    return entries, nodes


def test_entries_appended_together_are_consecutive_and_chained_and_in_the_tree(kyso: Kyso) -> None:
    first = kyso.audit.append(drafts(1)[0])
    appended = kyso.audit.append_many(drafts(4))
    assert [a.seq for a in appended] == [1, 2, 3, 4]
    entries = kyso.audit.entries()
    assert [e["prev_hash"] for e in entries[1:]] == [a.entry_hash for a in [first, *appended[:-1]]]
    report = verify_export(kyso.audit.export_lines())
    assert report.ok and report.entries == 5
    proof = kyso.audit.inclusion(3)
    root = bytes.fromhex(proof["root_hash"])
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    assert verify_inclusion(bytes.fromhex(appended[2].entry_hash), 3, 5, hashes, root)


def test_what_the_caller_writes_sees_every_entry_and_a_failure_writes_nothing(kyso: Kyso) -> None:
    kyso.audit.append(drafts(1)[0])
    before = rows(kyso)
    seen: list[list[AppendedEntry]] = []

    def fail_after_seeing(conn: Connection, appended: list[AppendedEntry]) -> None:
        seen.append(appended)
        raise RuntimeError("the caller's own rows could not be written")

    with pytest.raises(RuntimeError):
        kyso.audit.append_many(drafts(3), fail_after_seeing)
    assert [a.seq for a in seen[0]] == [1, 2, 3]
    assert rows(kyso) == before and kyso.audit.size() == 1
    assert [a.seq for a in kyso.audit.append_many(drafts(2))] == [1, 2]


def test_nothing_to_append_is_an_error(kyso: Kyso) -> None:
    with pytest.raises(ValueError, match="nothing to append"):
        kyso.audit.append_many([])
