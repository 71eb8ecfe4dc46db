"""A Merkle node source for a log read once, front to back, of any length.

The offline verifier streams an export and only learns the checkpoints' tree sizes at the
end (they follow the entries). To answer a root at any size without keeping the whole
log, :class:`SpilledTree` writes the leaf hashes to a temporary file (32 bytes each) and
keeps in memory only the perfect subtrees of 256 leaves and up: about n/4 bytes. A root
then costs O(log n) memory reads plus at most 255 leaves read back from the file.

The roots of the 256-leaf chunks are nearly all the hashing a tree costs (255 interior
hashes per chunk, as many SHA-256 calls as the leaves themselves). On a long log they are
computed where the leaves are: by the processes that read pieces of an export file
(:mod:`kyso.audit.offline.parallel_scan`), which hand them over with the leaves
(:meth:`SpilledTree.adopt`); or, for lines read in one process, by a helper process
(:mod:`kyso.audit.offline.merkle_worker`) on another core while the verifier goes on reading,
collected before the first node is asked for. If the helper cannot start or fails, they
are computed here from the spilled leaves.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from typing import IO

from kyso.audit.merkle import node_hash, perfect_root

CHUNK_LEVEL = 8
CHUNK = 1 << CHUNK_LEVEL
_HASH = 32
# Start the helper once this many leaves were seen: below, its start-up costs more than it saves.
HELPER_AFTER = 1 << 15
_ADOPT_BLOCK = 1 << 16  # leaves read at a time by adopt()


class SpilledTree:
    """A :class:`~kyso.audit.merkle.NodeSource` built by appending leaf hashes in order.

    Append with :meth:`extend`, or by ``tree.pending.append(leaf)`` followed by
    :meth:`flush` whenever ``pending`` holds :data:`CHUNK` leaves or more (the verifier's
    line-by-line loop does that; a method call per leaf costs more than hashing it).
    Close it to drop the temporary file (and stop the helper).
    """

    def __init__(self, helper_after: int | None = HELPER_AFTER) -> None:
        self.pending: list[bytes] = []  # leaves of the chunk being filled
        self._chunks = 0  # chunks spilled to the file
        self._rooted = 0  # chunks whose roots are in _upper
        self._upper: list[bytearray] = []  # _upper[k]: level CHUNK_LEVEL + k, 32 bytes a node
        self._file = tempfile.TemporaryFile(prefix="kyso-leaves-")
        use_helper = helper_after is not None and (os.cpu_count() or 1) > 1
        self._helper_after = helper_after if use_helper else None
        self._helper: _RootHelper | None = None

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
        """Spill every full chunk in ``pending``; its root is computed here or by the helper."""
        while len(self.pending) >= CHUNK:
            chunk = self.pending[:CHUNK]
            del self.pending[:CHUNK]  # in place: callers keep a reference to this list
            data = self._spill(chunk)
            if self._helper is None and self._helper_after is not None:
                if self._chunks * CHUNK >= self._helper_after:
                    self._helper_after = None  # one attempt
                    self._helper = _RootHelper.start()
            if self._helper is not None:
                self._helper.send(data)
            else:
                self._add_chunk_root(perfect_root(chunk))

    def adopt(self, source: IO[bytes], offset: int, count: int, roots: Mapping[int, bytes]) -> None:
        """Append ``count`` leaf hashes read from ``source`` at ``offset`` (32 bytes each).

        ``roots`` holds the roots of the chunks they complete, by chunk index, where they
        are known already (a range worker computed them); the others are computed here.
        """
        if self._rooted < self._chunks:
            self._collect()  # roots are added in order
        source.seek(offset)
        while count:
            # First complete a chunk that began before; then whole blocks of chunks.
            taken = min(count, CHUNK - len(self.pending) if self.pending else _ADOPT_BLOCK)
            data = source.read(taken * _HASH)
            if len(data) != taken * _HASH:
                raise ValueError("the leaf file is shorter than its count")
            count -= taken
            if self.pending or taken < CHUNK:
                self.pending.extend(data[i : i + _HASH] for i in range(0, len(data), _HASH))
                if len(self.pending) == CHUNK:
                    root = roots.get(self._chunks)
                    self._spill(self.pending)
                    self._add_chunk_root(root if root is not None else perfect_root(self.pending))
                    del self.pending[:]  # in place: callers keep a reference to this list
                continue
            whole = taken - taken % CHUNK
            self._file.seek(0, 2)
            self._file.write(data[: whole * _HASH])
            for begin in range(0, whole * _HASH, CHUNK * _HASH):
                root = roots.get(self._chunks)
                if root is None:
                    chunk = data[begin : begin + CHUNK * _HASH]
                    root = perfect_root([chunk[i : i + _HASH] for i in range(0, len(chunk), _HASH)])
                self._chunks += 1
                self._add_chunk_root(root)
            self.pending.extend(data[i : i + _HASH] for i in range(whole * _HASH, len(data), _HASH))

    def _spill(self, chunk: list[bytes]) -> bytes:
        """Write a chunk's leaves to the file; the bytes written."""
        data = b"".join(chunk)
        self._file.seek(0, 2)  # reads may have moved the position
        self._file.write(data)
        self._chunks += 1
        return data

    def _add_chunk_root(self, digest: bytes) -> None:
        """Record a chunk's root (level CHUNK_LEVEL) and the upper nodes it completes."""
        level, index = 0, self._rooted
        self._rooted += 1
        while True:
            if level == len(self._upper):
                self._upper.append(bytearray())
            row = self._upper[level]
            row += digest
            if not index & 1:
                break
            digest = node_hash(bytes(row[-2 * _HASH : -_HASH]), digest)
            level, index = level + 1, index >> 1

    def _collect(self) -> None:
        """Add the roots the helper computed; compute here any it did not deliver."""
        helper, self._helper = self._helper, None
        roots = helper.finish() if helper is not None else b""
        for start in range(0, len(roots) - len(roots) % _HASH, _HASH):
            if self._rooted == self._chunks:
                break
            self._add_chunk_root(roots[start : start + _HASH])
        while self._rooted < self._chunks:
            self._add_chunk_root(perfect_root(self._leaves(self._rooted * CHUNK, CHUNK)))

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree (level, index); ``IndexError`` if not complete."""
        if index < 0 or (index + 1) << level > self.size:
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        if level >= CHUNK_LEVEL:
            if self._rooted < self._chunks:
                self._collect()
            row = self._upper[level - CHUNK_LEVEL]
            return bytes(row[index * _HASH : (index + 1) * _HASH])
        leaves = self._leaves(index << level, 1 << level)
        return leaves[0] if level == 0 else perfect_root(leaves)

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self.node(0, index)

    def close(self) -> None:
        """Delete the temporary file and stop the helper."""
        if self._helper is not None:
            self._helper.kill()
            self._helper = None
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


class _RootHelper:
    """The helper process, fed and read by two threads so that the verifier never waits."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.roots = bytearray()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._writer.start()
        self._reader.start()

    @classmethod
    def start(cls) -> _RootHelper | None:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "kyso.audit.offline.merkle_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None
        return cls(process)

    def send(self, data: bytes) -> None:
        self.outbox.put(data)

    def finish(self) -> bytes:
        """Every root computed, once the helper has read all it was sent."""
        self.outbox.put(None)
        self._writer.join()
        self._reader.join()
        self.process.wait()
        return bytes(self.roots)

    def kill(self) -> None:
        self.outbox.put(None)
        self.process.kill()
        self.process.wait()

    def _write(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while (data := self.outbox.get()) is not None:
                batch = [data]
                while len(batch) < 64:  # write what has queued up at once
                    try:
                        more = self.outbox.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self.outbox.put(None)
                        break
                    batch.append(more)
                stdin.write(b"".join(batch))
            stdin.close()
        except OSError:  # the helper died: its missing roots are computed in-process
            pass

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while data := stdout.read1(1 << 16):  # type: ignore[attr-defined]
            self.roots += data
