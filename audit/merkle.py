"""RFC 9162 section 2.1 Merkle trees over leaf hashes: roots, proofs and their verification.

The leaves here are already leaf hashes (an audit entry's hash is SHA-256(0x00 || JCS)), so
nothing in this module sees entry bytes. Interior nodes are SHA-256(0x01 || left || right).

Every node of an RFC 9162 tree is either a *perfect* subtree (2**level leaves starting at
a multiple of 2**level) or lies on the tree's right edge, and a right-edge node is the
right-to-left fold of the few perfect subtrees that tile it. So roots and proofs need only
one primitive, :class:`NodeSource` ``node(level, index)``, and read O(log n) nodes each:
nothing has to hold or read the whole log to answer a proof.

Keeping perfect-subtree hashes as leaves are appended (a database table, :class:`MemoryTree`):
when leaf ``i`` is appended, for each level ``l >= 1`` with ``(i + 1) % 2**l == 0`` the node
``(l, (i + 1) // 2**l - 1)`` becomes complete, and its hash is
``H(0x01 || node(l-1, 2*j) || node(l-1, 2*j+1))`` for ``j = (i + 1) // 2**l - 1``.
:func:`nodes_completed_by` returns exactly those rows, lowest level first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

# MTH({}) = SHA-256 of the empty string (RFC 9162 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32
_NODE_PREFIX = hashlib.sha256(b"\x01")


class NodeSource(Protocol):
    """Where proofs read perfect-subtree hashes from."""

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of leaves [index * 2**level, (index + 1) * 2**level).

        Only complete subtrees are asked for; level 0 is the leaf hashes themselves.
        """
        ...


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree given its 2**k node hashes of one level, left to right."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError("perfect_root needs a power-of-two number of hashes")
    # Copying a state that has hashed 0x01 costs less than building b"\x01" + left + right
    # (the verifier spends as long here as on hashing the entries themselves).
    start = _NODE_PREFIX.copy
    while len(level) > 1:
        upper: list[bytes] = []
        keep = upper.append
        pairs = iter(level)
        for left in pairs:
            h = start()
            h.update(left)
            h.update(next(pairs))
            keep(h.digest())
        level = upper
    return level[0]


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) of the perfect subtrees tiling leaves [begin, end), largest first.

    This is how RFC 9162 splits a range that starts on a boundary of its own size (the
    whole tree, or a right-edge node): one subtree per set bit of ``end - begin``.
    """
    tiles = []
    position = begin
    for level in reversed(range((end - begin).bit_length())):
        if (end - begin) >> level & 1:
            if position % (1 << level):
                raise ValueError(f"range [{begin}, {end}) is not aligned to an RFC 9162 subtree")
            tiles.append((level, position >> level))
            position += 1 << level
    return tiles


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """H(h0, H(h1, ... H(h[n-2], h[n-1]))): the root over adjacent perfect subtrees."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def range_root(source: NodeSource, begin: int, end: int) -> bytes:
    """MTH of leaves [begin, end), for a range that is a node of some RFC 9162 tree."""
    if end <= begin:
        raise ValueError(f"empty or inverted leaf range [{begin}, {end})")
    return fold_right([source.node(level, index) for level, index in perfect_subtrees(begin, end)])


def tree_root(source: NodeSource, tree_size: int) -> bytes:
    """MTH of the first ``tree_size`` leaves; the empty tree's root is SHA-256("")."""
    if tree_size < 0:
        raise ValueError("tree_size must not be negative")
    return EMPTY_ROOT if tree_size == 0 else range_root(source, 0, tree_size)


def inclusion_proof(
    source: NodeSource | Sequence[bytes], index: int, tree_size: int
) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:tree_size]): audit path from the leaf up to the root.

    ``source`` is a :class:`NodeSource`, or simply the list of leaf hashes.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is not in a tree of size {tree_size}")
    nodes = _as_source(source)
    path = []
    begin, end = 0, tree_size
    # Walk down from the root; the sibling of every node on the way is one proof entry.
    while end - begin > 1:
        middle = begin + split_point(end - begin)
        if index < middle:
            path.append(range_root(nodes, middle, end))
            end = middle
        else:
            path.append(range_root(nodes, begin, middle))
            begin = middle
    return path[::-1]


def consistency_proof(source: NodeSource | Sequence[bytes], first: int, second: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(first, D[0:second]) for 0 < first <= second.

    Empty when ``first == second``. ``source`` is a :class:`NodeSource` or the leaf hashes.
    """
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from tree size {first} to {second}")
    nodes = _as_source(source)
    proof = []
    begin, end, known = 0, second, True  # known: the subtree is one the old tree had whole
    while True:
        if first - begin == end - begin:
            if not known:
                proof.append(range_root(nodes, begin, end))
            break
        middle = begin + split_point(end - begin)
        if first <= middle:
            proof.append(range_root(nodes, middle, end))
            end = middle
        else:
            proof.append(range_root(nodes, begin, middle))
            begin, known = middle, False
    return proof[::-1]


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162 2.1.3.2 steps 1-4).

    Raises ``ValueError`` when the proof has the wrong length for the index and size, or
    the leaf or a proof node is not a 32-byte hash.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is not in a tree of size {tree_size}")
    _check_hashes([leaf, *proof])
    fn, sn, root = index, tree_size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ValueError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = node_hash(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("inclusion proof is shorter than the tree is deep")
    return root


def root_from_consistency_proof(
    first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The (first, second) roots that ``proof`` implies (RFC 9162 2.1.4.2 steps 1-6).

    For 0 < first < second. The caller compares the pair with the roots it holds. Raises
    ``ValueError`` when the sizes are out of range or the proof has the wrong length.
    """
    if not 0 < first < second:
        raise ValueError(f"no consistency proof from tree size {first} to {second}")
    if not proof:
        raise ValueError("consistency proof is empty")
    _check_hashes(proof)
    path = list(proof)
    if first & (first - 1) == 0:  # first is a power of two: its root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("consistency proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("consistency proof is shorter than the trees need")
    return fr, sr


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows ``leaf`` at ``index`` in the tree of ``tree_size`` with ``root``."""
    try:
        return root_from_inclusion_proof(leaf, index, tree_size, proof) == root
    except ValueError:
        return False


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows the tree of size ``first`` is a prefix of that of ``second``.

    Equal sizes need an empty proof and equal roots. A proof from the empty tree is refused:
    RFC 9162 defines proofs only for 0 < first, and the empty tree proves nothing.
    """
    if first == second:
        return first > 0 and not proof and first_root == second_root
    try:
        return root_from_consistency_proof(first, second, first_root, proof) == (
            first_root,
            second_root,
        )
    except ValueError:
        return False


def nodes_completed_by(source: NodeSource, index: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) nodes that appending ``leaf`` at ``index`` completes.

    The leaf itself (level 0) first, then one node per level while the new node is a right
    child; each left sibling is read from ``source``, which must already hold it.
    """
    completed = [(0, index, leaf)]
    level, position, digest = 0, index, leaf
    while position & 1:
        digest = node_hash(source.node(level, position - 1), digest)
        level, position = level + 1, position >> 1
        completed.append((level, position, digest))
    return completed


def nodes_needed(compute: Callable[..., object], *args: int) -> list[tuple[int, int]]:
    """The (level, index) nodes ``compute(source, *args)`` reads, in order, without reading any.

    ``compute`` is :func:`tree_root`, :func:`inclusion_proof` or :func:`consistency_proof`.
    Their steps depend on the sizes only, never on hash values, so a database store can
    fetch every node a proof needs in one query and then answer from a dict.
    """
    recorder = _RecordingSource()
    compute(recorder, *args)
    return recorder.asked


class _RecordingSource:
    """A NodeSource that notes which nodes are asked for and answers with zeros."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def node(self, level: int, index: int) -> bytes:
        self.asked.append((level, index))
        return bytes(HASH_SIZE)


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over the given leaf hashes, in O(log n) memory."""
    frontier = CompactRange()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


class MemoryTree:
    """Every level of the tree in memory: a :class:`NodeSource` for tests and small logs."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash and every perfect subtree it completes."""
        for level, index, digest in nodes_completed_by(self, self.size, leaf):
            if level == len(self.levels):
                self.levels.append([])
            assert len(self.levels[level]) == index
            self.levels[level].append(digest)

    def node(self, level: int, index: int) -> bytes:
        """See :meth:`NodeSource.node`; ``IndexError`` for a subtree not yet complete."""
        if level >= len(self.levels) or not 0 <= index < len(self.levels[level]):
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        return self.levels[level][index]

    def root(self, tree_size: int | None = None) -> bytes:
        """Root of the first ``tree_size`` leaves (all of them by default)."""
        return tree_root(self, self.size if tree_size is None else tree_size)


class CompactRange:
    """The append-only frontier of a tree: one perfect-subtree hash per set bit of its size.

    Enough to compute the root after every append in O(log n) memory, which is what a
    verifier streaming the log needs to check checkpoints as it passes their sizes.
    """

    def __init__(self) -> None:
        self.size = 0
        self.hashes: list[bytes] = []  # largest (leftmost) subtree first

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash, merging the subtrees it completes."""
        digest, size = leaf, self.size
        while size & 1:
            digest = node_hash(self.hashes.pop(), digest)
            size >>= 1
        self.hashes.append(digest)
        self.size += 1

    def root(self) -> bytes:
        """MTH of all leaves appended so far."""
        return fold_right(self.hashes) if self.hashes else EMPTY_ROOT

    def tiles(self) -> list[tuple[int, int, bytes]]:
        """The frontier as (level, index, hash) nodes, largest first."""
        tiles = perfect_subtrees(0, self.size)
        return [
            (level, index, digest)
            for (level, index), digest in zip(tiles, self.hashes, strict=True)
        ]


def _check_hashes(hashes: Sequence[bytes]) -> None:
    """Refuse anything but 32-byte hashes in a proof."""
    if any(len(digest) != HASH_SIZE for digest in hashes):
        raise ValueError(f"proof hashes must be {HASH_SIZE} bytes")


def _as_source(source: NodeSource | Sequence[bytes]) -> NodeSource:
    """A NodeSource for a list of leaf hashes, or the source itself."""
    if hasattr(source, "node"):
        return source  # type: ignore[return-value]
    return MemoryTree(source)  # type: ignore[arg-type]
