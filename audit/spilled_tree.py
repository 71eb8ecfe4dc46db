"""A Merkle node source for a log read once, front to back, of any length.

The offline verifier streams an export and only learns the checkpoints' tree sizes at the
end (they follow the entries). To answer a root at any size without keeping the whole
log, :class:`SpilledTree` writes the leaf hashes to a temporary file (32 bytes each) and
keeps in memory only the perfect subtrees of 256 leaves and up: about n/4 bytes. A root
then costs O(log n) memory reads plus at most 255 leaves read back from the file.
"""

from __future__ import annotations

import tempfile

from kyso.audit.merkle import node_hash, perfect_root

CHUNK_LEVEL = 8
CHUNK = 1 << CHUNK_LEVEL
_HASH = 32


class SpilledTree:
    """A :class:`~kyso.audit.merkle.NodeSource` built by appending leaf hashes in order.

    Append with :meth:`extend`, or by ``tree.pending.append(leaf)`` followed by
    :meth:`flush` whenever ``pending`` holds :data:`CHUNK` leaves or more (the verifier's
    line-by-line loop does that; a method call per leaf costs more than hashing it).
    Close it to drop the temporary file.
    """

    def __init__(self) -> None:
        self.pending: list[bytes] = []  # leaves of the chunk being filled
        self._chunks = 0
        self._upper: list[bytearray] = []  # _upper[k]: level CHUNK_LEVEL + k, 32 bytes a node
        self._file = tempfile.TemporaryFile(prefix="kyso-leaves-")

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._chunks * CHUNK + len(self.pending)

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes in order."""
        self.pending.extend(leaves)
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Spill every full chunk in ``pending`` and record the upper nodes each completes."""
        while len(self.pending) >= CHUNK:
            chunk = self.pending[:CHUNK]
            del self.pending[:CHUNK]  # in place: callers keep a reference to this list
            self._file.seek(0, 2)  # reads may have moved the position
            self._file.write(b"".join(chunk))
            self._add_chunk_root(perfect_root(chunk))

    def _add_chunk_root(self, digest: bytes) -> None:
        """Record a chunk's root (level CHUNK_LEVEL) and the upper nodes it completes."""
        level, index = 0, self._chunks
        self._chunks += 1
        while True:
            if level == len(self._upper):
                self._upper.append(bytearray())
            row = self._upper[level]
            row += digest
            if not index & 1:
                break
            digest = node_hash(bytes(row[-2 * _HASH : -_HASH]), digest)
            level, index = level + 1, index >> 1

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree (level, index); ``IndexError`` if not complete."""
        if index < 0 or (index + 1) << level > self.size:
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        if level >= CHUNK_LEVEL:
            row = self._upper[level - CHUNK_LEVEL]
            return bytes(row[index * _HASH : (index + 1) * _HASH])
        leaves = self._leaves(index << level, 1 << level)
        return leaves[0] if level == 0 else perfect_root(leaves)

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self.node(0, index)

    def close(self) -> None:
        """Delete the temporary file."""
        self._file.close()

    def __enter__(self) -> SpilledTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _leaves(self, start: int, count: int) -> list[bytes]:
        """``count`` leaf hashes from ``start``, all in one chunk (count <= CHUNK, aligned)."""
        spilled = self._chunks * CHUNK
        if start >= spilled:
            return self.pending[start - spilled : start - spilled + count]
        self._file.flush()
        self._file.seek(start * _HASH)
        data = self._file.read(count * _HASH)
        return [data[i : i + _HASH] for i in range(0, len(data), _HASH)]
