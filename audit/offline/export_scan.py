"""One pass over an audit export: the entry chain, then the checkpoint lines.

The fast path hashes each canonical entry line as it stands and reads its ``seq`` and
``prev_hash`` from their places, without parsing it (:mod:`kyso.audit.offline.chain_lines`,
which says why that is sound); a re-serialized line is taken by its content, through its
canonical form (:mod:`kyso.audit.offline.line_chain`). The last entry has nothing after it,
so it is parsed and checked in full. Any line that does not fit goes to the slow path,
which parses, shape-checks and re-canonicalises it and explains the problem.

A long export file has usually been read up to its first checkpoint line by the parallel
pass (:mod:`kyso.audit.offline.parallel_scan`); the scan then starts from the chain state that
pass returns.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from kyso.audit.entry import line_hash, validate_entry_shape
from kyso.audit.offline.checkpoint_verify import is_checkpoint
from kyso.audit.offline.line_chain import LineChain
from kyso.audit.offline.parallel_scan import ChainState
from kyso.audit.offline.spilled_tree import CHUNK, SpilledTree
from kyso.errors import InvalidJson
from kyso.formats import canonical_json, parse_json_strict

_START = b'{"action":"'
_PROGRESS_EVERY = 4096


@dataclass
class ChainProblem:
    """The first entry that breaks the chain: its seq (or None) and what happened."""

    seq: int | None
    text: str


class ExportScan:
    """Reads an export once; afterwards ``count`` entries verified, or ``problem`` set.

    ``chain`` holds where the chain stands (:class:`~kyso.audit.offline.line_chain.LineChain`),
    and how many lines were taken by their content.
    """

    def __init__(
        self,
        lines: Iterator[bytes | str],
        tree: SpilledTree,
        progress: Callable[[int], None] | None = None,
        full: bool = False,
        batches: Iterator[list[bytes]] | None = None,
        state: ChainState | None = None,
    ) -> None:
        """``lines`` are the export's lines; or ``batches`` (lists of lines without their
        newlines, :func:`file_batches`) and ``lines`` the same lines, flattened. ``state``
        is where an earlier pass left the chain, if the lines do not start at seq 0."""
        self.lines, self.tree, self.progress, self.full = lines, tree, progress, full
        self.batches = batches
        self.chain = LineChain()
        if state is not None:
            self.chain = LineChain(
                state.count,
                state.prev_hex,
                state.prev2_hex,
                state.last_line,
                tentative=state.tentative,
                reserialized=state.reserialized,
                first_reserialized=state.first_reserialized,
            )
        self.lineno = 0  # of the line being examined off the fast path
        self.skipped = 0  # blank lines among the entries
        self.problem: ChainProblem | None = None
        self.checkpoints: list[tuple[str, Any]] = []
        self.pushback: list[tuple[int, bytes]] = []  # lines read ahead to explain a problem

    @property
    def count(self) -> int:
        """Entries accepted; the next one must have this seq."""
        return self.chain.count

    @property
    def prev_hex(self) -> bytes:
        """The entry hash of seq count-1 (64 hex digits)."""
        return self.chain.prev_hex

    def run(self) -> None:
        """Read everything: entries, then checkpoints (also after a problem, to check them)."""
        stop = self._entries(self.lines) if self.full else self._batches()
        if stop is None:
            self.lineno = self.count + self.skipped
        if self.progress:
            self.progress(self.count)
        if self.problem is None and self.count:
            self._check_last_entry()
        else:
            self.chain.resolve()  # the leaves checkpoints are compared with: of the content
        self.tree.extend(self.chain.finish())
        self._checkpoint_lines(strict=self.problem is None and stop is True)

    def _batches(self) -> bool | None:
        """The fast path, a batch of lines at a time (one C call beats a Python step per line).

        Batches come from :func:`file_batches` (a binary file, newlines already gone) or
        :data:`CHUNK` lines of any other iterable. A batch that does not pass whole goes
        through :meth:`_entries` line by line.
        Returns None at the end, True at the first checkpoint line, False on a problem.
        """
        reported = 0
        batches, bare = self.batches, True
        if batches is None:
            source = cast(Iterator[bytes], self.lines)
            batches, bare = iter(lambda: list(itertools.islice(source, CHUNK)), []), False
        for batch in batches:
            if not batch:
                continue
            if batch[0].__class__ is str:  # a file opened as text
                batch = [_as_bytes(line) for line in batch]
            taken = self._take(batch if bare else _without_newlines(batch))
            if taken < len(batch):
                # Wrap the rest of the source itself: chains of chains slow every line.
                rest = itertools.chain.from_iterable(batches) if bare else self.lines
                self.lines = itertools.chain(batch[taken:], rest)
                left = len(batch) - taken
                if (stop := self._entries(itertools.islice(self.lines, left))) is not None:
                    return stop
            elif self.progress and self.count >= reported + _PROGRESS_EVERY:
                reported = self.count
                self.progress(reported)
        return None

    def _take(self, lines: list[bytes]) -> int:
        """Take lines (without newlines) from the start while they continue the chain; how many."""
        leaves, taken = self.chain.take(lines)
        self.tree.extend(leaves)
        return taken

    def _entries(self, lines: Iterator[Any]) -> bool | None:
        """The fast path line by line, and the slow path; returns as :meth:`_batches` does."""
        for raw in lines:
            line = raw if raw.__class__ is bytes else _as_bytes(raw)
            if line[-1:] == b"\n":
                line = line[:-1]
            if not self.full and self._take([line]):
                continue
            self.lineno = self.count + self.skipped + 1
            if (stop := self._slow(line)) is not None:
                return stop
        return None

    def _slow(self, line: bytes) -> bool | None:
        """A line off the fast path: None to go on, True at a checkpoint, False on a problem."""
        if not line.strip():
            self.skipped += 1
            return None
        try:
            value = parse_json_strict(line)
        except InvalidJson as exc:
            where = f"line {self.lineno}, where entry seq {self.count} belongs"
            return self._fail(self.count, f"{where}: not valid JSON ({exc.detail})")
        if is_checkpoint(value):
            self.checkpoints.append((f"checkpoint on export line {self.lineno}", value))
            return True
        if not isinstance(value, dict) or "seq" not in value:
            return self._fail(
                self.count, f"line {self.lineno}: neither an audit entry nor a checkpoint"
            )
        return None if self._accept(line, value) else False

    def _accept(self, line: bytes, entry: dict[str, Any]) -> bool:
        """Fully check one entry line against the chain; accept it or record the problem."""
        p, where = self.count, f"entry seq {self.count} (line {self.lineno})"
        if shape := validate_entry_shape(entry):
            return self._fail(p, f"{where}: " + "; ".join(shape))
        if not self.full and p > 0 and (problem := self._recheck_previous()):
            return self._fail(p - 1, problem)
        if entry["seq"] != p:
            return self._fail(*self._explain_seq(entry))
        if entry["prev_hash"].encode() != self.prev_hex:
            return self._fail(*self._explain_link(entry))
        try:
            canonical = canonical_json(entry)
        except InvalidJson as exc:
            return self._fail(p, f"{where}: {exc.detail}")
        self.tree.extend(self.chain.accept(line, line_hash(canonical), canonical != line))
        return True

    def _recheck_previous(self) -> str | None:
        """Check in full the entry before this one, which the fast path only hashed; a
        re-serialized one takes the hash of its canonical form."""
        p = self.count - 1
        try:
            previous = parse_json_strict(self.chain.last_line)
        except InvalidJson as exc:
            return f"entry seq {p}: not valid JSON ({exc.detail})"
        if shape := validate_entry_shape(previous):
            return f"entry seq {p}: " + "; ".join(shape)
        if (problem := self.chain.resolve()) is not None:
            return f"entry seq {p}: {problem}"
        return None

    def _explain_seq(self, entry: dict[str, Any]) -> tuple[int, str]:
        """Name what happened where seq p belongs but the entry carries another seq."""
        p, s = self.count, entry["seq"]
        if s < p:
            return (
                p,
                f"entry seq {s} appears again after seq {p - 1}, where seq {p} belongs (inserted or reordered)",
            )
        following = self._peek_entry()
        after = following.get("seq") if following else None
        if after == p:
            return p, f"entries seq {p} and seq {s} are out of order (reordered)"
        if after == p + 1 and entry["prev_hash"].encode() == self.prev_hex:
            return p, f"entry seq {p}: its seq member was changed to {s}"
        if after == p + 1:
            return p, f"entry seq {s} stands where seq {p} belongs (inserted or reordered)"
        missing = f"entry seq {p}" if s == p + 1 else f"entries seq {p} to {s - 1}"
        return p, f"{missing} missing (removed)"

    def _explain_link(self, entry: dict[str, Any]) -> tuple[int, str]:
        """Name the changed entry when seq p's prev_hash is not the entry hash of seq p-1."""
        p = self.count
        if p == 0:
            return (
                0,
                "entry seq 0: its prev_hash is not 64 zeros, as the first entry's must be (entry changed)",
            )
        if entry["prev_hash"].encode() == self.chain.prev2_hex:
            return p - 1, f"entry seq {p - 1} was inserted: entry seq {p} links to seq {p - 2}"
        following = self._peek_entry()
        if following is None:
            return p - 1, (
                f"entry seq {p - 1}: entry_hash does not match the prev_hash of seq {p}, the last "
                f"entry (entry seq {p - 1} changed, or the prev_hash of seq {p})"
            )
        if following.get("prev_hash") == self.prev_hex.decode():
            return p, (
                f"entry seq {p} does not belong here: entry seq {p + 1} links to seq {p - 1} "
                f"(inserted, or swapped with seq {p + 1})"
            )
        canonical = _canonical_or_none(entry)
        if canonical is None or following.get("prev_hash") != line_hash(canonical).hex():
            return p, (
                f"entry seq {p} changed: its prev_hash does not match entry seq {p - 1}, "
                f"and entry seq {p + 1} no longer links to it"
            )
        return (
            p - 1,
            f"entry seq {p - 1}: entry_hash does not match the prev_hash of seq {p} (entry changed)",
        )

    def _peek_entry(self) -> dict[str, Any] | None:
        """The next entry, read ahead (and kept for the checkpoint scan); None if not one."""
        for raw in self.lines:
            line = _as_bytes(raw).rstrip(b"\n")
            self.pushback.append((self.lineno + len(self.pushback) + 1, line))
            if not line.strip():
                continue
            try:
                value = parse_json_strict(line)
            except InvalidJson:
                return None
            return value if isinstance(value, dict) and isinstance(value.get("seq"), int) else None
        return None

    def _check_last_entry(self) -> None:
        """The last entry has nothing after it to commit to its bytes: check it in full."""
        p, where = self.count - 1, f"entry seq {self.count - 1} (the last)"
        try:
            entry = parse_json_strict(self.chain.last_line)
        except InvalidJson as exc:
            self._fail(p, f"{where}: not valid JSON ({exc.detail})")
            return
        if shape := validate_entry_shape(entry):
            self._fail(p, f"{where}: " + "; ".join(shape))
        elif (problem := self.chain.resolve()) is not None:
            self._fail(p, f"{where}: {problem}")

    def _checkpoint_lines(self, strict: bool) -> None:
        """Collect the checkpoint lines; when ``strict``, anything else there is a problem."""
        start = self.lineno + len(self.pushback)
        rest = ((start + i, raw) for i, raw in enumerate(self.lines, 1))
        for lineno, raw in itertools.chain(self.pushback, rest):
            line = _as_bytes(raw).rstrip(b"\n")
            if not line.strip() or (not strict and line.startswith(_START)):
                continue
            try:
                value = parse_json_strict(line)
            except InvalidJson as exc:
                if strict:
                    self._fail(
                        None, f"line {lineno}: not valid JSON among the checkpoints ({exc.detail})"
                    )
                    return
                continue
            if is_checkpoint(value):
                self.checkpoints.append((f"checkpoint on export line {lineno}", value))
            elif strict:
                text = f"line {lineno}: an entry or other line after the checkpoints (entries come first)"
                self._fail(self.count, text)
                return

    def _fail(self, seq: int | None, text: str) -> bool:
        self.problem = ChainProblem(seq, text)
        return False


def file_batches(file: BinaryIO, block: int = 1 << 20) -> Iterator[list[bytes]]:
    """The lines of a binary file, without newlines, a block (about 1 MB) at a time."""
    rest = b""
    while data := file.read(block):
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def trailing_checkpoints(file: BinaryIO, block: int = 1 << 16) -> list[tuple[str, Any]]:
    """The checkpoint lines at the end of an export file, read backwards, without moving
    the file's position: what the scan will find there when it gets to them."""
    fd, rest = file.fileno(), b""
    found: list[tuple[str, Any]] = []
    end = position = os.fstat(fd).st_size
    while position > 0:
        size = min(block, position)
        position -= size
        lines = (os.pread(fd, size, position) + rest).split(b"\n")
        rest = lines.pop(0) if position else b""
        for line in reversed(lines):
            if line.startswith(_START):
                return list(reversed(found))
            if not line.strip():
                continue
            try:
                value = parse_json_strict(line)
            except InvalidJson:
                return list(reversed(found))
            if is_checkpoint(value):
                found.append(("checkpoint near the end of the export", value))
            elif isinstance(value, dict) and "seq" in value:  # a re-serialized entry
                return list(reversed(found))
        if end - position > 1 << 26:  # not an export of entries then checkpoints
            break
    return list(reversed(found))


def _without_newlines(batch: list[bytes]) -> list[bytes]:
    return [line[:-1] if line[-1:] == b"\n" else line for line in batch]


def _canonical_or_none(entry: dict[str, Any]) -> bytes | None:
    try:
        return canonical_json(entry)
    except InvalidJson:
        return None


def _as_bytes(raw: bytes | str) -> bytes:
    return raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
