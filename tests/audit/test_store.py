"""The audit store on SQLite and PostgreSQL: Merkle proofs from the database, checkpoints."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from support import make_config

from kyso.audit.checkpoint import checkpointer_for
from kyso.audit.merkle import (
    EMPTY_ROOT,
    verify_consistency,
    verify_inclusion,
)
from kyso.audit.offline.verify import verify_export
from kyso.audit.store import EntryDraft
from kyso.errors import InvalidRequest, NotFound
from kyso.service import Kyso

SIZE = 21  # odd, not a power of two: right-edge nodes at every level


def append(kyso, n: int) -> None:
    for i in range(n):
        kyso.audit.append(
            EntryDraft(
                action="sign.json",
                actor="his",
                document_sha256=hashlib.sha256(b"%d" % i).hexdigest(),
            )
        )


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 MTH, straight from its recursive definition: the independent reference."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def leaves_of(kyso) -> list[bytes]:
    """The leaf hashes recomputed from the exported entry lines, not from merkle_nodes."""
    lines = [line for line in kyso.audit.export_lines() if line.startswith(b'{"action"')]
    return [hashlib.sha256(b"\x00" + line.rstrip(b"\n")).digest() for line in lines]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def log(request, tmp_path_factory):
    """A service whose log holds SIZE entries, on each database (its checkpoints vary)."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database()
    kyso = Kyso.open(make_config(tmp_path_factory.mktemp("store"), database_url=url))
    append(kyso, SIZE)
    yield kyso
    kyso.close()


def test_inclusion_proofs_from_the_database_match_a_recomputation_and_verify(log):
    leaves = leaves_of(log)
    for tree_size in range(1, SIZE + 1):
        root = mth(leaves[:tree_size])
        for seq in range(tree_size):
            proof = log.audit.inclusion(seq, tree_size)
            assert (proof["leaf_index"], proof["tree_size"], proof["root_hash"]) == (
                seq,
                tree_size,
                root.hex(),
            )
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            assert verify_inclusion(leaves[seq], seq, tree_size, hashes, root)
            assert (
                not verify_inclusion(leaves[seq - 1], seq, tree_size, hashes, root)
                or tree_size == 1
            )


def test_consistency_proofs_from_the_database_match_a_recomputation_and_verify(log):
    leaves = leaves_of(log)
    for second in range(1, SIZE + 1):
        for first in range(1, second + 1):
            proof = log.audit.consistency(first, second)
            first_root, second_root = mth(leaves[:first]), mth(leaves[:second])
            assert (proof["first_root"], proof["second_root"]) == (
                first_root.hex(),
                second_root.hex(),
            )
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            assert verify_consistency(first, second, first_root, second_root, hashes)
            if first < second:
                assert not verify_consistency(first, second, second_root, second_root, hashes)


def test_sizes_default_to_the_log_size_now(log):
    assert log.audit.inclusion(3)["tree_size"] == SIZE
    assert log.audit.consistency(5)["second"] == SIZE
    assert log.audit.consistency(SIZE)["hashes"] == []
    assert log.audit.state(0).root_hash == EMPTY_ROOT


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda a: a.inclusion(SIZE, SIZE), InvalidRequest),
        (lambda a: a.inclusion(-1, 5), InvalidRequest),
        (lambda a: a.inclusion(0, 0), InvalidRequest),
        (lambda a: a.inclusion(0, SIZE + 1), NotFound),
        (lambda a: a.consistency(0, 5), InvalidRequest),
        (lambda a: a.consistency(6, 5), InvalidRequest),
        (lambda a: a.consistency(1, SIZE + 1), NotFound),
        (lambda a: a.state(SIZE + 1), NotFound),
    ],
)
def test_impossible_proofs_are_refused(log, call, error):
    with pytest.raises(error):
        call(log.audit)


def test_a_proof_reads_the_nodes_in_one_query_and_never_the_entries(open_kyso):
    kyso = open_kyso()
    append(kyso, 100)
    statements: list[str] = []
    event.listen(kyso.db.reader, "before_cursor_execute", lambda *a: statements.append(a[2]))
    kyso.audit.inclusion(37, 99)
    kyso.audit.consistency(13, 99)
    node_reads = [s for s in statements if "merkle_nodes" in s]
    assert len(node_reads) == 2  # one per proof
    assert not any("audit_entries" in s for s in statements)


def test_two_checkpoints_are_consistent(log):
    checkpointer = checkpointer_for(log)
    first = checkpointer.checkpoint(8)
    second = checkpointer.checkpoint()
    proof = log.audit.consistency(first["tree_size"], second["tree_size"])
    assert verify_consistency(
        8,
        SIZE,
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
        [bytes.fromhex(h) for h in proof["hashes"]],
    )
    assert first["chain_head"] == leaves_of(log)[7].hex()


def test_a_checkpoint_is_made_once_per_tree_size_even_by_two_checkpointers(log):
    one, two = checkpointer_for(log), checkpointer_for(log)
    made = one.checkpoint(10)
    assert two.checkpoint(10) == made
    # Made concurrently elsewhere: the store keeps the first and hands it back.
    other = dict(made, time="2030-01-01T00:00:00.000000Z")
    assert log.audit.add_checkpoint(other, datetime.now(UTC)) == made
    assert log.audit.checkpoint(10) == made


def test_the_export_holds_entries_then_checkpoints_and_verifies_against_the_dev_root(log, dev_root):
    checkpointer_for(log).checkpoint(5)
    checkpointer_for(log).checkpoint()
    lines = list(log.audit.export_lines())
    count = len(lines) - SIZE
    assert (
        count >= 2
        and [line.startswith(b'{"action"') for line in lines] == [True] * SIZE + [False] * count
    )
    report = verify_export(lines, trust=dev_root)
    assert report.ok and report.checkpoints_checked == count and report.notes == []


def test_an_export_is_the_log_as_it_stood_when_it_began(open_kyso, dev_root):
    kyso = open_kyso(checkpoint_every=1000, checkpoint_seconds=3600)
    append(kyso, 7)
    checkpointer_for(kyso).checkpoint()
    lines = kyso.audit.export_lines(batch=3)
    head = [next(lines) for _ in range(4)]
    append(kyso, 5)  # while the export streams: more entries, and a checkpoint of them
    checkpointer_for(kyso).checkpoint()
    exported = head + list(lines)
    report = verify_export(exported, trust=dev_root)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints_checked) == (7, 1)
    later = list(kyso.audit.export_lines())
    assert later[:7] == exported[:7] and verify_export(later, trust=dev_root).entries == 12


def test_checkpoints_are_due_every_n_entries_and_after_t_seconds(open_kyso):
    kyso = open_kyso(checkpoint_every=5, checkpoint_seconds=60)
    checkpointer = checkpointer_for(kyso)
    assert checkpointer.due() is None  # an empty log needs no checkpoint
    append(kyso, 12)
    assert checkpointer.due() == 10  # the last multiple, even when passed unnoticed
    checkpointer.run_due()
    assert checkpointer.due() is None
    append(kyso, 1)
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert checkpointer.due() is None and checkpointer.due(now=later) == 13
    append(kyso, 2)
    assert checkpointer.due() == 15


def test_the_current_checkpoint_is_made_on_demand_at_most_once_a_window(open_kyso):
    kyso = open_kyso(checkpoint_every=1000, checkpoint_seconds=3600)
    checkpointer = checkpointer_for(kyso)
    with pytest.raises(NotFound):
        checkpointer.current(10)  # an empty log: nothing to checkpoint
    append(kyso, 3)
    first = checkpointer.current(10)
    assert (first.document["tree_size"], first.behind, first.age_seconds) == (3, 0, 0.0)
    append(kyso, 2)
    within = checkpointer.current(10)
    assert (within.document, within.log_size, within.behind) == (first.document, 5, 2)
    later = datetime.now(UTC) + timedelta(seconds=11)
    after = checkpointer.current(10, now=later)
    assert (after.document["tree_size"], after.behind) == (5, 0)


def test_closing_makes_a_checkpoint_of_the_last_entry_once(open_kyso):
    kyso = open_kyso(checkpoint_every=1000, checkpoint_seconds=3600)
    checkpointer = checkpointer_for(kyso)
    append(kyso, 4)
    assert checkpointer.closing() == 4 and checkpointer.closing() == 4
    assert kyso.audit.latest_checkpoint_mark()[0] == 4
    lines = list(kyso.audit.export_lines(size=4))
    assert b'"tree_size":4' in lines[-1] and len(lines) == 5


def test_the_scheduler_thread_checkpoints_when_an_append_reaches_a_multiple(open_kyso):
    kyso = open_kyso(checkpoint_every=4, checkpoint_seconds=3600)
    checkpointer = checkpointer_for(kyso)
    checkpointer.start()
    try:
        append(kyso, 4)
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while kyso.audit.latest_checkpoint() is None and datetime.now(UTC) < deadline:
            pass
        assert kyso.audit.latest_checkpoint()["tree_size"] == 4
    finally:
        checkpointer.stop()


def test_a_row_edited_directly_in_sqlite_is_named_by_export_and_verify(
    open_kyso, tmp_path, dev_root
):
    kyso = open_kyso()
    append(kyso, 10)
    checkpointer_for(kyso).checkpoint()
    append(kyso, 5)
    with sqlite3.connect(tmp_path / "kyso.sqlite3") as conn:
        (text,) = conn.execute("SELECT canonical FROM audit_entries WHERE seq = 6").fetchone()
        conn.execute(
            "UPDATE audit_entries SET canonical = ? WHERE seq = 6",
            (text.replace('"actor":"his"', '"actor":"intruder"'),),
        )
    report = verify_export(kyso.audit.export_lines(), trust=dev_root)
    assert not report.ok and report.first_bad_seq == 6
    assert "entry seq 6" in report.problem
