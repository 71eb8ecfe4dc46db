"""One byte range of an export checked on its own.

The parallel pass of the verifier (:mod:`kyso.audit.offline.parallel_scan`) cuts a long export
file at line boundaries into one range per core. Each range is checked by
:func:`scan_range`: the lines link to each other and carry consecutive seqs, starting from
whatever seq and prev_hash the range's first line carries (the stitching checks that
against the range before). It hashes every line, writes the leaf hashes to a file of
their own, and computes the roots of the 256-leaf chunks that lie wholly in the range
(nearly all of the Merkle tree's hashing), assuming the first line's seq is its leaf
index, which the stitching confirms. Lines are taken as the line-by-line scan takes them
(:class:`kyso.audit.offline.line_chain.LineChain`: canonical ones by their bytes,
re-serialized ones by their content). It stops at the first line that does not fit and
says where; the line-by-line scan takes over there.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kyso.audit.merkle import perfect_root
from kyso.audit.offline.chain_lines import check_batch
from kyso.audit.offline.line_chain import LineChain, first_link

CHUNK = 256  # leaves per chunk root, as kyso.audit.offline.spilled_tree.CHUNK
BLOCK = 1 << 20
PROGRESS_EVERY = 1 << 14
# Every entry line is longer than this many bytes (prev_hash alone has 64 digits), so the
# seq of a line that starts at byte offset b is at most b // MIN_LINE in a valid export.
MIN_LINE = 64


@dataclass
class RangeResult:
    """What :func:`scan_range` found: ``count`` lines taken from the range's start."""

    first_seq: int = -1
    first_prev: bytes = b""  # the prev_hash of the first line taken
    count: int = 0
    stop: int | None = None  # offset of the first line not taken; None: the whole range
    last_line: bytes = b""  # the last line taken
    prev_hex: bytes = b""  # its entry hash
    prev2_hex: bytes = b""  # the entry hash of the line before it, if taken here
    first_chunk: int = 0  # the chunk index of roots[0:32]
    roots: bytes = b""  # roots of the chunks wholly among the lines taken, in order
    tentative: bool = False  # last_line stands by its bytes, unchecked (it did not parse)
    reserialized: int = 0  # lines taken by their content
    first_reserialized: int | None = None  # the seq of the first

    def to_json(self) -> str:
        return json.dumps(
            {
                "first_seq": self.first_seq,
                "first_prev": self.first_prev.decode(),
                "count": self.count,
                "stop": self.stop,
                "last_line": base64.b64encode(self.last_line).decode(),
                "prev_hex": self.prev_hex.decode(),
                "prev2_hex": self.prev2_hex.decode(),
                "first_chunk": self.first_chunk,
                "roots": self.roots.hex(),
                "tentative": self.tentative,
                "reserialized": self.reserialized,
                "first_reserialized": self.first_reserialized,
            }
        )

    @classmethod
    def from_json(cls, text: bytes | str) -> RangeResult:
        value = json.loads(text)
        return cls(
            first_seq=int(value["first_seq"]),
            first_prev=value["first_prev"].encode(),
            count=int(value["count"]),
            stop=value["stop"],
            last_line=base64.b64decode(value["last_line"]),
            prev_hex=value["prev_hex"].encode(),
            prev2_hex=value["prev2_hex"].encode(),
            first_chunk=int(value["first_chunk"]),
            roots=bytes.fromhex(value["roots"]),
            tentative=bool(value["tentative"]),
            reserialized=int(value["reserialized"]),
            first_reserialized=value["first_reserialized"],
        )


def scan_range(
    fd: int,
    start: int,
    end: int,
    write_leaves: Callable[[bytes], object],
    progress: Callable[[int], None] | None = None,
) -> RangeResult:
    """Check bytes [start, end) of ``fd`` (``start`` at a line's beginning) as a chain."""
    result = RangeResult()
    chain, chunks, reported = LineChain(), _ChunkRoots(0), 0

    def keep(leaves: list[bytes]) -> None:
        if leaves:
            write_leaves(b"".join(leaves))
            chunks.extend(leaves)

    for offset, lines in _lines(fd, start, end):
        if result.first_seq < 0:
            link = first_link(lines[0])
            if link is None or link[0] > offset // MIN_LINE:
                result.stop = offset
                return result
            result.first_seq, result.first_prev = link
            chain = LineChain(*link)
            chunks = _ChunkRoots(link[0])
            result.first_chunk = chunks.first_chunk
        leaves, taken = chain.take(lines)
        keep(leaves)
        if taken < len(lines):
            result.stop = offset + sum(len(line) + 1 for line in lines[:taken])
            break
        count = chain.count - result.first_seq
        if progress and count >= reported + PROGRESS_EVERY:
            reported = count
            progress(reported)
    if result.first_seq >= 0:
        _settle_last(fd, end, chain, result.stop is None)
        keep(chain.finish())
        result.count = chain.count - result.first_seq
        if result.count:
            result.prev_hex, result.prev2_hex = chain.prev_hex, chain.prev2_hex
            result.last_line, result.tentative = chain.last_line, chain.tentative
        result.reserialized, result.first_reserialized = (
            chain.reserialized,
            chain.first_reserialized,
        )
    if result.stop is None and chunks.pending and result.count:
        # Finish the last chunk with the lines that follow: the next piece holds them, and
        # its stitching confirms the alignment. Hashing them is cheaper here than in the
        # process that stitches, where nothing runs beside it. Only lines that each link
        # to the bytes of the one before (and one more line after them, to commit to the
        # last) have their bytes' hash for leaf; otherwise the stitching computes the root.
        wanted = CHUNK - len(chunks.pending)
        following = _next_lines(fd, end, wanted + 1)
        checked = check_batch(following, chain.count, chain.prev_hex)
        if checked is not None and len(following) == wanted + 1:
            chunks.extend(checked[0][:wanted])
    result.roots = b"".join(chunks.roots)
    return result


def _settle_last(fd: int, end: int, chain: LineChain, whole: bool) -> None:
    """Settle the range's tentative last line as the line-by-line scan would: its bytes stand
    if the line after the range links to them, else its content does."""
    if not chain.tentative:
        return
    if whole:
        following = _next_lines(fd, end, 1)
        link = first_link(following[0]) if following else None
        if link is not None and link == (chain.count, chain.prev_hex):
            chain.tentative = False
            return
    chain.resolve()


class _ChunkRoots:
    """Roots of the 256-leaf chunks, for leaves appended from global index ``first``."""

    def __init__(self, first: int) -> None:
        self.skip = -first % CHUNK  # leaves of a chunk that began in the range before
        self.first_chunk = (first + self.skip) // CHUNK
        self.pending: list[bytes] = []
        self.roots: list[bytes] = []

    def extend(self, leaves: list[bytes]) -> None:
        if self.skip:
            dropped = min(self.skip, len(leaves))
            leaves, self.skip = leaves[dropped:], self.skip - dropped
        pending = self.pending
        pending.extend(leaves)
        whole = len(pending) - len(pending) % CHUNK
        for begin in range(0, whole, CHUNK):
            self.roots.append(perfect_root(pending[begin : begin + CHUNK]))
        del pending[:whole]


def _next_lines(fd: int, start: int, count: int) -> list[bytes]:
    """Up to ``count`` lines (without newlines) from ``start`` on."""
    lines: list[bytes] = []
    for _, block in _lines(fd, start, os.fstat(fd).st_size, (count + 1) * 512):
        lines += block
        if len(lines) >= count:
            break
    return lines[:count]


def _lines(fd: int, start: int, end: int, block: int = BLOCK) -> Iterator[tuple[int, list[bytes]]]:
    """(offset of the first line, lines without newlines), about a block at a time."""
    position, rest, offset = start, b"", start
    while position < end:
        data = os.pread(fd, min(block, end - position), position)
        if not data:
            break
        position += len(data)
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        if lines:
            yield offset, lines
            offset += sum(map(len, lines)) + len(lines)
    if rest:
        yield offset, [rest]
