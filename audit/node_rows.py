"""Reading Merkle nodes from the ``merkle_nodes`` table, as a proof or an append needs them.

Node (level, idx) is the hash of the perfect subtree of leaves
[idx * 2**level, (idx + 1) * 2**level); rows are written with the entry that completes
them and never change. Which nodes a root, a proof or an append reads depends only on
sizes, so each reads all of them in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, select, tuple_

from kyso.audit.merkle import nodes_completed_by
from kyso.db import merkle_nodes

_READ_NODES = select(merkle_nodes.c.level, merkle_nodes.c.idx, merkle_nodes.c.hash).where(
    tuple_(merkle_nodes.c.level, merkle_nodes.c.idx).in_(bindparam("keys", expanding=True))
)


class _FetchedNodes:
    """A NodeSource over the nodes fetched by one query; a missing node is a broken store."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes

    def node(self, level: int, index: int) -> bytes:
        try:
            return self.nodes[(level, index)]
        except KeyError:
            raise LookupError(f"merkle_nodes has no row for level {level}, index {index}") from None


def fetch_nodes(conn: Connection, wanted: Iterable[tuple[int, int]]) -> _FetchedNodes:
    """The merkle_nodes rows ``wanted`` (level, idx), read in one query."""
    keys = sorted(set(wanted))
    if not keys:
        return _FetchedNodes({})
    rows = conn.execute(_READ_NODES, {"keys": keys})
    return _FetchedNodes({(r.level, r.idx): bytes(r.hash) for r in rows})


def left_siblings(seq: int) -> list[tuple[int, int]]:
    """The nodes appending leaf ``seq`` merges with: one per trailing 1-bit of ``seq``."""
    wanted, level = [], 0
    while seq >> level & 1:
        wanted.append((level, (seq >> level) - 1))
        level += 1
    return wanted


def nodes_completed_by_leaves(
    conn: Connection, size: int, leaves: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) nodes that appending ``leaves`` to a tree of ``size`` leaves
    completes, in order: the left siblings already stored are read in one query, those the
    new leaves complete themselves are taken from this computation."""
    stored = {
        sibling
        for seq in range(size, size + len(leaves))
        for sibling in left_siblings(seq)
        if (sibling[1] + 1) << sibling[0] <= size  # complete before the first new leaf
    }
    source = fetch_nodes(conn, stored)
    completed: list[tuple[int, int, bytes]] = []
    for offset, leaf in enumerate(leaves):
        for level, index, digest in nodes_completed_by(source, size + offset, leaf):
            source.nodes[(level, index)] = digest
            completed.append((level, index, digest))
    return completed
