"""The verifier's first pass over a long export file: pieces checked on every core.

Checking an entry costs two SHA-256 calls (its hash, and its share of the Merkle tree's
interior nodes), and in CPython each call costs about 1 µs of interpreter overhead however
short the input; on one core the verifier would take about twice as long as a plain loop
that only hashes the lines. So a long export file is cut at line boundaries into pieces,
checked by :func:`kyso.audit.offline.range_scan.scan_range` in this process and in forked worker
processes, which read the file themselves through the inherited descriptor and take the
next piece from a shared queue (a pipe) as they finish one, so that every core stays
busy to the end. The pieces are then stitched here in file order: each must start with
the seq and prev_hash that the one before ends with.

The pass stops at the first line that does not fit: the first checkpoint line of an
intact export, or a blank line, a damaged entry, a piece that does not follow. It returns
the chain state there, and the line-by-line scan (:class:`kyso.audit.offline.export_scan.ExportScan`)
takes over from that offset: it reads the checkpoints and explains any problem exactly as
if it had read everything itself.
"""

from __future__ import annotations

import os
import signal
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import IO, BinaryIO

from kyso.audit.entry import GENESIS_PREV_HASH
from kyso.audit.offline.range_scan import RangeResult, scan_range
from kyso.audit.offline.spilled_tree import SpilledTree

# Below this size, forking costs more than the other cores save.
MIN_BYTES = 8 << 20
MAX_WORKERS = 8
MIN_PIECE = 1 << 18  # the smallest piece, but for a last one
_FIND_NEWLINE = 1 << 16
_POLL_SECONDS = 0.25
_INDEX = struct.Struct("<I")
_MAX_PIECES = 4096  # 16 KB of indices: less than a pipe holds


@dataclass(frozen=True)
class ChainState:
    """The chain after ``count`` entries, where the line-by-line scan takes over."""

    count: int
    prev_hex: bytes  # entry hash of seq count-1 (64 hex digits)
    prev2_hex: bytes  # of seq count-2
    last_line: bytes  # the line of seq count-1
    offset: int  # byte offset of the next line in the file
    processes: int = 1  # that read the pieces
    tentative: bool = False  # last_line stands by its bytes, unchecked
    reserialized: int = 0  # lines taken by their content (kyso.audit.offline.line_chain)
    first_reserialized: int | None = None  # the seq of the first


@dataclass
class _Piece:
    """A piece's result and where its leaf hashes were written."""

    result: RangeResult
    leaves: IO[bytes]
    leaf_offset: int


def parallel_workers(file: BinaryIO, workers: int | None) -> int:
    """How many processes should check ``file``: below 2, read it line by line.

    ``workers`` None decides by the machine and the file: every core this process may use,
    for a regular file of at least :data:`MIN_BYTES`, when this process has no other
    thread (see :meth:`_Worker.fork`). A number asks for that many processes whatever the
    file's size and the threads: the caller knows its threads hold no lock a child needs.
    """
    try:
        fd = file.fileno()
        info = os.fstat(fd)
        size = info.st_size - file.tell()
    except (AttributeError, OSError, ValueError):
        return 0
    if not stat.S_ISREG(info.st_mode) or size <= 0:
        return 0
    if not hasattr(os, "fork"):
        return 0
    if workers is None:
        if size < MIN_BYTES or threading.active_count() > 1:
            return 0
        workers = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    return max(0, min(workers, MAX_WORKERS))


def scan_in_parallel(
    file: BinaryIO,
    workers: int,
    tree: SpilledTree,
    progress: Callable[[int], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> ChainState:
    """Check ``file`` from its current position with ``workers`` processes (this one and
    ``workers - 1`` forked ones); put the leaves of the entries taken into ``tree`` and
    return the chain state after them. ``meanwhile`` is work of this process's own to do
    while the forked ones start on the pieces."""
    fd, start = file.fileno(), file.tell()
    end = os.fstat(fd).st_size
    smallest = max(MIN_PIECE, (end - start) // _MAX_PIECES + 1)
    bounds = _cut(fd, start, end, workers, smallest)  # at most _MAX_PIECES: the queue fits its pipe
    with ExitStack() as stack:
        queue_read, queue_write = os.pipe()
        stack.callback(os.close, queue_read)
        with os.fdopen(queue_write, "wb") as queue:  # all indices now: nobody writes later
            queue.write(b"".join(_INDEX.pack(i) for i in range(len(bounds))))
        leaf_files = [
            stack.enter_context(tempfile.TemporaryFile(prefix="kyso-pieces-"))
            for _ in range(workers)
        ]
        children: list[_Worker] = []
        for leaf_file in leaf_files[1:]:
            try:
                children.append(_Worker.fork(fd, bounds, queue_read, leaf_file))
            except OSError:  # no more processes: this one takes what they would have
                break
            stack.callback(children[-1].stop)
        for child in children:  # threads only once every child is forked
            child.listen()

        pieces: dict[int, _Piece] = {}
        done = 0

        def report(count: int) -> None:
            if progress:
                progress(done + count + sum(c.progress for c in children))

        if meanwhile:
            meanwhile()
        while (index := _take(queue_read)) is not None:
            offset = leaf_files[0].tell()
            begin, stop = bounds[index]
            result = scan_range(fd, begin, stop, leaf_files[0].write, report)
            pieces[index] = _Piece(result, leaf_files[0], offset)
            done += result.count
        leaf_files[0].flush()
        for child in children:
            for index, (result, offset) in child.finish(lambda: report(0)).items():
                pieces[index] = _Piece(result, child.leaf_file, offset)
        return replace(_stitch(bounds, pieces, tree), processes=1 + len(children))


def _cut(fd: int, start: int, end: int, workers: int, smallest: int) -> list[tuple[int, int]]:
    """Pieces starting at a line's beginning, each a ``2 * workers``-th of what is left
    after the ones before (but at least ``smallest`` bytes): large pieces first, then
    smaller and smaller ones, so that all processes run out of work at about the same time
    while the number of pieces (each one costs a chunk root at its start) stays small."""
    cuts = [start]
    while (at := cuts[-1] + max(smallest, (end - cuts[-1]) // (2 * workers))) < end:
        while at < end:
            data = os.pread(fd, _FIND_NEWLINE, at)
            newline = data.find(b"\n")
            if newline >= 0 or not data:
                at = at + newline + 1 if newline >= 0 else end
                break
            at += len(data)
        if at >= end:
            break
        cuts.append(at)
    return list(zip(cuts, cuts[1:] + [end], strict=True))


def _take(queue: int) -> int | None:
    """The next piece's index from the queue; None when it is empty."""
    data = os.read(queue, _INDEX.size)  # a pipe hands out writes this small whole
    return _INDEX.unpack(data)[0] if len(data) == _INDEX.size else None


def _stitch(
    bounds: list[tuple[int, int]], pieces: dict[int, _Piece], tree: SpilledTree
) -> ChainState:
    """Take the pieces in file order while each follows the one before."""
    count, prev_hex, prev2_hex, last_line = 0, GENESIS_PREV_HASH.encode(), b"", b""
    offset, roots = bounds[0][0], dict[int, bytes]()
    tentative, reserialized, first_reserialized = False, 0, None
    for index, (begin, end) in enumerate(bounds):
        offset, piece = begin, pieces.get(index)
        if piece is None:
            break
        result = piece.result
        if not result.count or result.first_seq != count or result.first_prev != prev_hex:
            break
        # A piece's last root may be of a chunk the next piece completes: keep them all.
        roots.update(
            (result.first_chunk + i, result.roots[32 * i : 32 * i + 32])
            for i in range(len(result.roots) // 32)
        )
        tree.adopt(piece.leaves, piece.leaf_offset, result.count, roots)
        prev2_hex = result.prev2_hex if result.count > 1 else prev_hex
        count, prev_hex, last_line = count + result.count, result.prev_hex, result.last_line
        tentative, reserialized = result.tentative, reserialized + result.reserialized
        if first_reserialized is None:
            first_reserialized = result.first_reserialized
        offset = end if result.stop is None else result.stop
        if result.stop is not None:
            break
    return ChainState(
        count,
        prev_hex,
        prev2_hex,
        last_line,
        offset,
        tentative=tentative,
        reserialized=reserialized,
        first_reserialized=first_reserialized,
    )


class _Worker:
    """A forked process checking pieces, and the thread reading what it reports."""

    def __init__(self, pid: int, output: BinaryIO, leaf_file: IO[bytes]) -> None:
        self.pid, self.output, self.leaf_file = pid, output, leaf_file
        self.progress = 0
        self.results: dict[int, tuple[RangeResult, int]] = {}  # index: (result, leaf offset)
        self.status: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)

    @classmethod
    def fork(
        cls, fd: int, bounds: list[tuple[int, int]], queue: int, leaf_file: IO[bytes]
    ) -> _Worker:
        """Fork a child that checks pieces of ``fd`` taken from ``queue``. A child forked
        beside other threads inherits any lock one of them held at that moment, held for
        good; the child only reads, hashes and writes, but the automatic choice
        (:func:`parallel_workers`) forks only a process that has one thread."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report through the pipe, never return to the caller
            code = 1
            try:
                os.close(read_end)
                _child(fd, bounds, queue, leaf_file.fileno(), write_end)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb"), leaf_file)

    def listen(self) -> None:
        self._reader.start()

    def finish(self, tick: Callable[[], None]) -> dict[int, tuple[RangeResult, int]]:
        """The child's results once it has ended (none if it failed); ``tick`` while waiting."""
        while self._reader.is_alive():
            self._reader.join(_POLL_SECONDS)
            tick()
        self._wait()
        return self.results if self.status == 0 else {}

    def stop(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait()
        self.output.close()

    def _wait(self) -> None:
        if self.status is None:
            self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])

    def _read(self) -> None:
        for line in self.output:
            kind, _, value = line.partition(b" ")
            if kind == b"progress":
                self.progress = int(value)
            elif kind == b"result":
                index, offset, text = value.split(b" ", 2)
                self.results[int(index)] = (RangeResult.from_json(text), int(offset))


def _child(fd: int, bounds: list[tuple[int, int]], queue: int, leaves_fd: int, out: int) -> None:
    """A worker's whole life: check pieces until the queue is empty, reporting to ``out``."""

    def write_all(target: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(target, view) :]

    written = done = 0

    def keep(data: bytes) -> None:
        nonlocal written
        write_all(leaves_fd, data)
        written += len(data)

    def progress(count: int) -> None:
        write_all(out, b"progress %d\n" % (done + count))

    while (index := _take(queue)) is not None:
        offset = written
        result = scan_range(fd, *bounds[index], keep, progress)
        done += result.count
        write_all(out, b"result %d %d %s\n" % (index, offset, result.to_json().encode()))
