"""The verifier's tree: chunk roots from the helper process, or here when it fails."""

from __future__ import annotations

import hashlib

import pytest

from kyso.audit.merkle import MemoryTree, tree_root
from kyso.audit.merkle_worker import serve
from kyso.audit.spilled_tree import CHUNK, SpilledTree

LEAVES = [hashlib.sha256(b"%d" % i).digest() for i in range(5 * CHUNK + 77)]


@pytest.fixture(scope="module")
def reference() -> MemoryTree:
    return MemoryTree(LEAVES)


@pytest.mark.parametrize(
    "helper_after",
    [None, 0, CHUNK, 3 * CHUNK],
    ids=["in-process", "from-start", "after-1", "after-3"],
)
def test_roots_are_the_same_with_and_without_the_helper(reference, helper_after):
    with SpilledTree(helper_after=helper_after) as tree:
        for start in range(0, len(LEAVES), 100):
            tree.extend(LEAVES[start : start + 100])
        for size in (1, CHUNK, 2 * CHUNK + 1, 4 * CHUNK, len(LEAVES)):
            assert tree_root(tree, size) == reference.root(size)


def test_a_helper_that_dies_leaves_its_roots_to_the_verifier(reference):
    with SpilledTree(helper_after=0) as tree:
        tree.extend(LEAVES[: 2 * CHUNK])
        assert tree._helper is not None
        tree._helper.process.kill()
        tree.extend(LEAVES[2 * CHUNK :])
        assert tree_root(tree, len(LEAVES)) == reference.root()


def test_the_worker_turns_whole_chunks_into_roots_and_keeps_the_rest():
    data = b"".join(LEAVES[: 2 * CHUNK + 5])
    pieces = [data[:5000], data[5000:]]
    out: list[bytes] = []
    serve(lambda _n: pieces.pop(0) if pieces else b"", out.append)
    roots = b"".join(out)
    assert roots == MemoryTree(LEAVES[:CHUNK]).root() + MemoryTree(LEAVES[CHUNK : 2 * CHUNK]).root()
