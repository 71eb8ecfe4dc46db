"""The verifier's tree: chunk roots from the helper process, or here when it fails."""

from __future__ import annotations

import hashlib

import pytest

from kyso.audit.merkle import MemoryTree, tree_root
from kyso.audit.offline.merkle_worker import serve
from kyso.audit.offline.spilled_tree import CHUNK, SpilledTree

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


def test_leaves_adopted_from_files_with_some_roots_known_give_the_same_tree(reference, tmp_path):
    # Pieces as the parallel verifier stitches them: unaligned, each from its own file at an
    # offset, with the roots of the chunks a worker completed; the others computed here.
    cuts = [0, 100, 3 * CHUNK, 3 * CHUNK + 1, 4 * CHUNK + 200, len(LEAVES)]
    roots = {c: MemoryTree(LEAVES[c * CHUNK : (c + 1) * CHUNK]).root() for c in (0, 3)}
    with SpilledTree(helper_after=None) as tree:
        for begin, end in zip(cuts, cuts[1:], strict=False):
            with (tmp_path / f"{begin}.leaves").open("w+b") as source:
                source.write(b"junk of another piece" + b"".join(LEAVES[begin:end]))
                tree.adopt(source, 21, end - begin, roots)
        assert tree.size == len(LEAVES)
        for size in (1, 99, CHUNK, 3 * CHUNK + 1, 4 * CHUNK + 200, len(LEAVES)):
            assert tree_root(tree, size) == reference.root(size)
        tree.extend([hashlib.sha256(b"one more").digest()] * (CHUNK - 77))
        assert (
            tree_root(tree, tree.size)
            == MemoryTree(LEAVES + [hashlib.sha256(b"one more").digest()] * (CHUNK - 77)).root()
        )


def test_a_leaf_file_shorter_than_its_count_is_refused(tmp_path):
    with SpilledTree() as tree, (tmp_path / "short").open("w+b") as source:
        source.write(b"".join(LEAVES[:10]))
        with pytest.raises(ValueError, match="shorter"):
            tree.adopt(source, 0, 11, {})
