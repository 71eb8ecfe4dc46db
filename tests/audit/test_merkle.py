"""RFC 9162 Merkle trees (kyso.audit.merkle): published vectors and an independent model.

The vectors are transparency-dev/merkle's inclusion/ and consistency/ cases. Its
subtreeinclusion/ and subtreeconsistency/ folders are for proofs about arbitrary subtrees
[start, end) of a tree (the "subtree" proofs of newer drafts), an API RFC 9162 and kyso
do not have, so they are neither kept in tests/data nor run here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import support

from kyso.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    nodes_completed_by,
    nodes_needed,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_from_leaves,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from kyso.audit.offline.spilled_tree import CHUNK, SpilledTree

VECTORS = support.VECTORS / "merkle"
MAX_SIZE = 70


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(case: dict) -> list[bytes]:
    return [_b64(item) for item in case["proof"] or []]


# --- an independent model, straight from RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 -------------


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    if m == len(leaves):
        return [] if whole else [mth(leaves)]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


LEAVES = [leaf_hash(b"entry %d" % i) for i in range(MAX_SIZE)]


class CountingSource:
    """A node source that refuses incomplete or out-of-tree subtrees and counts reads."""

    def __init__(self, tree: MemoryTree, tree_size: int) -> None:
        self.tree, self.tree_size, self.reads = tree, tree_size, 0

    def node(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.tree_size, "asked for a subtree outside the tree"
        self.reads += 1
        return self.tree.node(level, index)


class Prefetched:
    """A node source answering from nodes fetched beforehand, as a database store would."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree(LEAVES)


# --- published vectors --------------------------------------------------------------------


def test_the_published_vector_folders_are_all_there():
    assert len(_vectors("inclusion")) == 98
    assert len(_vectors("consistency")) == 98


@pytest.mark.parametrize(
    "case_path", _vectors("inclusion"), ids=lambda p: str(p.relative_to(VECTORS))
)
def test_each_published_inclusion_vector_verifies_or_fails_as_it_says(case_path):
    case = json.loads(case_path.read_text())
    ok = verify_inclusion(
        _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"])
    )
    assert ok is not case["wantErr"], case["desc"]


@pytest.mark.parametrize(
    "case_path", _vectors("consistency"), ids=lambda p: str(p.relative_to(VECTORS))
)
def test_each_published_consistency_vector_verifies_or_fails_as_it_says(case_path):
    case = json.loads(case_path.read_text())
    ok = verify_consistency(
        case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case)
    )
    assert ok is not case["wantErr"], case["desc"]


# --- against the model --------------------------------------------------------------------


def test_roots_equal_the_rfc_definition_for_every_size(tree):
    for size in range(MAX_SIZE + 1):
        assert tree_root(tree, size) == mth(LEAVES[:size])
        assert root_from_leaves(LEAVES[:size]) == mth(LEAVES[:size])


def test_the_empty_tree_root_is_the_hash_of_nothing():
    assert (
        EMPTY_ROOT == hashlib.sha256(b"").digest() == MemoryTree().root() == CompactRange().root()
    )


def test_inclusion_proofs_equal_the_rfc_definition_and_verify(tree):
    for size in range(1, MAX_SIZE + 1):
        root = mth(LEAVES[:size])
        for index in range(size):
            source = CountingSource(tree, size)
            proof = inclusion_proof(source, index, size)
            assert proof == path(index, LEAVES[:size]), (index, size)
            assert root_from_inclusion_proof(LEAVES[index], index, size, proof) == root
            assert verify_inclusion(LEAVES[index], index, size, proof, root)
            if size > 1:
                assert not verify_inclusion(LEAVES[(index + 1) % size], index, size, proof, root)


def test_consistency_proofs_equal_the_rfc_definition_and_verify(tree):
    for second in range(1, MAX_SIZE + 1):
        second_root = mth(LEAVES[:second])
        for first in range(1, second + 1):
            first_root = mth(LEAVES[:first])
            proof = consistency_proof(CountingSource(tree, second), first, second)
            assert proof == subproof(first, LEAVES[:second], True), (first, second)
            assert verify_consistency(first, second, first_root, second_root, proof)
            if first < second:
                assert root_from_consistency_proof(first, second, first_root, proof) == (
                    first_root,
                    second_root,
                )
                assert not verify_consistency(first, second, second_root, first_root, proof)


def test_proofs_read_only_logarithmically_many_nodes(tree):
    size = MAX_SIZE
    for index in range(size):
        source = CountingSource(tree, size)
        inclusion_proof(source, index, size)
        assert source.reads <= 2 * size.bit_length()
    for first in range(1, size):
        source = CountingSource(tree, size)
        consistency_proof(source, first, size)
        assert source.reads <= 3 * size.bit_length()


def test_a_store_can_learn_beforehand_which_nodes_a_proof_reads(tree):
    for compute, args in (
        (tree_root, (45,)),
        (inclusion_proof, (17, 45)),
        (consistency_proof, (13, 45)),
    ):
        needed = nodes_needed(compute, *args)
        prefetched = Prefetched({node: tree.node(*node) for node in needed})
        assert compute(prefetched, *args) == compute(tree, *args)
        assert all((index + 1) << level <= 45 for level, index in needed)


def test_proofs_can_be_made_from_the_leaf_list_directly():
    assert inclusion_proof(LEAVES[:13], 5, 13) == path(5, LEAVES[:13])
    assert consistency_proof(LEAVES[:13], 6, 13) == subproof(6, LEAVES[:13], True)


def test_a_tampered_inclusion_proof_fails(tree):
    proof = inclusion_proof(tree, 9, 50)
    root = tree_root(tree, 50)
    for position in range(len(proof)):
        bad = list(proof)
        bad[position] = bytes([bad[position][0] ^ 1]) + bad[position][1:]
        assert not verify_inclusion(LEAVES[9], 9, 50, bad, root)
    assert not verify_inclusion(LEAVES[9], 9, 50, proof[:-1], root)
    assert not verify_inclusion(LEAVES[9], 9, 50, proof + [root], root)
    assert not verify_inclusion(LEAVES[9], 10, 50, proof, root)
    assert not verify_inclusion(LEAVES[9], 9, 200, proof, root)
    assert not verify_inclusion(LEAVES[9][:31], 9, 50, proof, root)


def test_proofs_for_impossible_sizes_are_refused(tree):
    for index, size in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(ValueError):
            inclusion_proof(tree, index, size)
    for first, second in ((0, 5), (6, 5), (-1, 5)):
        with pytest.raises(ValueError):
            consistency_proof(tree, first, second)
    assert consistency_proof(tree, 7, 7) == []


def test_consistency_from_the_empty_tree_is_not_accepted():
    assert not verify_consistency(0, 5, EMPTY_ROOT, mth(LEAVES[:5]), [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])


# --- incremental structures ---------------------------------------------------------------


def test_appending_completes_exactly_the_nodes_the_docstring_names():
    tree = MemoryTree()
    for i, leaf in enumerate(LEAVES):
        completed = nodes_completed_by(tree, i, leaf)
        expected = [
            (level, (i + 1) // 2**level - 1) for level in range(8) if (i + 1) % 2**level == 0
        ]
        assert [(level, index) for level, index, _ in completed] == expected
        tree.append(leaf)
        for level, index, digest in completed:
            assert digest == mth(LEAVES[index << level : (index + 1) << level])


def test_the_compact_range_gives_the_root_at_every_size_in_logarithmic_memory():
    frontier = CompactRange()
    for size, leaf in enumerate(LEAVES, 1):
        frontier.append(leaf)
        assert frontier.root() == mth(LEAVES[:size])
        assert len(frontier.hashes) == bin(size).count("1")
        for level, index, digest in frontier.tiles():
            assert digest == mth(LEAVES[index << level : (index + 1) << level])


def test_the_spilled_tree_answers_every_node_and_root_like_the_memory_tree():
    leaves = [leaf_hash(b"spilled %d" % i) for i in range(3 * CHUNK + 37)]
    memory = MemoryTree(leaves)
    with SpilledTree() as spilled:
        spilled.extend(leaves[:100])
        for leaf in leaves[100:]:
            spilled.pending.append(leaf)
            if len(spilled.pending) >= CHUNK:
                spilled.flush()
        assert spilled.size == len(leaves)
        for size in (1, 255, 256, 257, 512, 700, len(leaves)):
            assert tree_root(spilled, size) == tree_root(memory, size)
        for level in range(len(memory.levels)):
            for index, digest in enumerate(memory.levels[level]):
                assert spilled.node(level, index) == digest
        with pytest.raises(IndexError):
            spilled.node(8, 3)
        assert inclusion_proof(spilled, 600, len(leaves)) == inclusion_proof(
            memory, 600, len(leaves)
        )
