"""Entry lines taken into the hash chain: by their bytes when canonical, else by their content.

SPEC 7 defines an entry's hash over its JCS (RFC 8785) form, not over whatever bytes an
export line holds. A line that was re-serialized after the export (keys in another order,
spaces, other escapes, as ``jq`` or ``json.dumps`` write it) still verifies: its content is
parsed strictly (:func:`kyso.formats.parse_json_strict`) and the hash of its canonical form
must be what the next entry's ``prev_hash`` (or a checkpoint) commits to. Such lines are
counted, so that the report can say the file is not the bytes the log wrote.

Canonical lines keep the fast path of :mod:`kyso.audit.offline.chain_lines`: hashed as they
stand, their ``seq`` and ``prev_hash`` read in place. That is sound for a line the next
line links to: the next ``prev_hash`` commits to exactly those bytes. The last line taken
has nothing after it yet, so it stays *tentative*, its leaf held back (``tail``), until a
later line links to its bytes, or does not: then the line is parsed, and if it is not
canonical its hash becomes that of its canonical form (:meth:`LineChain.resolve`).
Every leaf :meth:`LineChain.take` hands out is therefore the entry hash SPEC 7 defines.
"""

from __future__ import annotations

import binascii
from typing import Any

from kyso.audit.entry import GENESIS_PREV_HASH, line_hash
from kyso.audit.offline.chain_lines import check_batch, link_of
from kyso.errors import InvalidJson
from kyso.formats import canonical_json, parse_json_strict


class LineChain:
    """The chain after ``count`` entries; :meth:`take` appends lines that continue it.

    ``prev_hex`` is the entry hash of seq ``count - 1`` (64 hex digits, bytes), ``prev2_hex``
    that of seq ``count - 2``, ``last_line`` the line of seq ``count - 1``. ``tentative``
    says that line was taken by its bytes and nothing has committed to them yet.
    ``reserialized`` counts the lines taken by their content, ``first_reserialized`` is
    the seq of the first.
    """

    def __init__(
        self,
        count: int = 0,
        prev_hex: bytes = GENESIS_PREV_HASH.encode(),
        prev2_hex: bytes = b"",
        last_line: bytes = b"",
        *,
        tentative: bool = False,
        reserialized: int = 0,
        first_reserialized: int | None = None,
    ) -> None:
        self.count, self.prev_hex, self.prev2_hex = count, prev_hex, prev2_hex
        self.last_line, self.tentative = last_line, tentative
        self.reserialized, self.first_reserialized = reserialized, first_reserialized
        self.tail: bytes | None = None  # leaf of last_line, not handed out yet

    def take(self, lines: list[bytes]) -> tuple[list[bytes], int]:
        """Take lines (without newlines) from the start of ``lines`` while each continues
        the chain. Returns the leaves now final, in order, and how many lines were taken;
        the last line's leaf stays back until a later line or :meth:`finish` settles it."""
        if len(lines) > 1:
            try:
                checked = check_batch(lines, self.count, self.prev_hex)
            except TypeError:  # not bytes: the caller converts each line
                checked = None
            if checked is not None:  # every line links to the one before: one C call each
                leaves, hexes = checked
                last = leaves.pop()
                if self.tail is not None:
                    leaves.insert(0, self.tail)
                self.prev2_hex = hexes[-128:-64]
                self.prev_hex, self.last_line, self.tail = hexes[-64:], lines[-1], last
                self.count += len(lines)
                self.tentative = True
                return leaves, len(lines)
        out: list[bytes] = []
        for taken, line in enumerate(lines):
            if not self._step(line, out):
                return out, taken
        return out, len(lines)

    def accept(self, line: bytes, digest: bytes, reserialized: bool) -> list[bytes]:
        """Append a line checked in full elsewhere, with its entry hash; the leaves now final."""
        out: list[bytes] = []
        if reserialized:
            self._count_reserialized(self.count)
        self._push(out, line, digest, binascii.hexlify(digest), tentative=False)
        return out

    def resolve(self) -> str | None:
        """Settle a tentative last line by its content: why it cannot be, or None.

        A canonical line keeps its hash; another one takes the hash of its canonical form
        (and is counted as re-serialized)."""
        if not self.tentative:
            return None
        try:
            canonical = canonical_json(parse_json_strict(self.last_line))
        except InvalidJson as exc:
            return exc.detail
        if canonical != self.last_line:
            if self.tail is None:  # its leaf is out already: it must stand as it is
                return "its line is not canonical, and its hash was already used"
            self.tail = line_hash(canonical)
            self.prev_hex = binascii.hexlify(self.tail)
            self._count_reserialized(self.count - 1)
        self.tentative = False
        return None

    def finish(self) -> list[bytes]:
        """The leaf held back, if any: the caller has nothing more to give."""
        tail, self.tail = self.tail, None
        return [] if tail is None else [tail]

    def _step(self, line: Any, out: list[bytes]) -> bool:
        """Take one line, by its bytes or by its content; False if it does not continue."""
        if line.__class__ is not bytes:
            return False
        checked = check_batch([line], self.count, self.prev_hex)
        if checked is not None:
            self._push(out, line, checked[0][0], checked[1], tentative=True)
            return True
        link = content_link(line)
        if link is None:
            return False
        seq, prev, entry = link
        if prev != self.prev_hex and self.tentative and self.resolve() is not None:
            return False
        if seq != self.count or prev != self.prev_hex:
            return False
        try:
            canonical = canonical_json(entry)
        except InvalidJson:
            return False
        digest = line_hash(canonical)
        if canonical != line:
            self._count_reserialized(self.count)
        self._push(out, line, digest, binascii.hexlify(digest), tentative=False)
        return True

    def _push(
        self, out: list[bytes], line: bytes, digest: bytes, hex_: bytes, tentative: bool
    ) -> None:
        if self.tail is not None:
            out.append(self.tail)
        self.prev2_hex, self.prev_hex = self.prev_hex, hex_
        self.last_line, self.tail, self.tentative = line, digest, tentative
        self.count += 1

    def _count_reserialized(self, seq: int) -> None:
        self.reserialized += 1
        if self.first_reserialized is None:
            self.first_reserialized = seq


def content_link(line: bytes) -> tuple[int, bytes, dict[str, Any]] | None:
    """The seq, prev_hash (bytes) and parsed entry of a line read as strict JSON; None if
    it is not an object with an integer seq and a string prev_hash."""
    try:
        entry = parse_json_strict(line)
    except InvalidJson:
        return None
    if not isinstance(entry, dict):
        return None
    seq, prev = entry.get("seq"), entry.get("prev_hash")
    if seq.__class__ is not int or not isinstance(prev, str) or not prev.isascii():
        return None
    return seq, prev.encode(), entry


def first_link(line: bytes) -> tuple[int, bytes] | None:
    """The seq and prev_hash of a line, read in place if canonical, else by its content."""
    if (link := link_of(line)) is not None:
        return link
    found = content_link(line)
    return None if found is None else found[:2]


def reserialized_note(count: int, first_seq: int | None) -> str:
    """The report's note on lines that verified by their content, not their bytes."""
    lines = "1 entry line" if count == 1 else f"{count} entry lines"
    return (
        f"{lines} (the first: seq {first_seq}) are not the canonical RFC 8785 bytes the log "
        "hashed: re-serialized (key order, spaces or escapes), their content was verified "
        "through its canonical form"
    )
