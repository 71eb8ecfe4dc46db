"""Export lines checked as a chain without parsing them: the verifier's fast path.

A canonical entry line (RFC 8785) sorts its members: action, actor, detail,
document_sha256, key, outcome, prev_hash, record_id, seq, signature_sha256, time. No
object follows prev_hash, so the last ``,"prev_hash":"`` of a line is the top-level one;
only record_id lies between prev_hash and seq, so ``,"seq":N,`` after it is the whole seq
member; and as '"' inside a string is always escaped, neither pattern can occur inside a
string.

Reading these two members in place is sound because the next entry's ``prev_hash`` (or a
checkpoint root) commits to the hash of the line: a line that something later commits to
is exactly what the log hashed. A line that does not fit is read by its content
(:mod:`kyso.audit.offline.line_chain`: a re-serialized line) or goes to the slow path of
:mod:`kyso.audit.offline.export_scan`, which parses the line and explains the problem.
"""

from __future__ import annotations

import binascii
import hashlib

PREV = b',"prev_hash":"'
SEQ = b',"seq":'
# prev_hash's 64 digits start right after PREV and end 78 bytes after its comma.
_DIGITS, _END = len(PREV), len(PREV) + 64
_LEAF_PREFIX = hashlib.sha256(b"\x00")


def link_of(line: bytes) -> tuple[int, bytes] | None:
    """The seq and prev_hash (64 hex digits, as bytes) a canonical entry line carries."""
    j = line.rfind(PREV)
    k = line.find(SEQ, j + _END) if j > 0 else -1
    if k < 0:
        return None
    digits = line[k + len(SEQ) : line.find(b",", k + len(SEQ))]
    if not digits.isdigit() or digits[:1] == b"0" and len(digits) > 1:
        return None
    return int(digits), line[j + _DIGITS : j + _END]


def check_batch(lines: list[bytes], seq: int, prev_hex: bytes) -> tuple[list[bytes], bytes] | None:
    """The leaf hashes of ``lines`` (without newlines), and the same as hex (64 digits a
    line, joined), if the first line carries ``seq`` and links to ``prev_hex`` and each
    next one carries the next seq and links to the line before; otherwise None.

    A batch at a time: a handful of C calls over lists beats Python steps per line.
    """
    if not lines:
        return None
    starts = [line.rfind(PREV) for line in lines]
    if min(starts) <= 0:
        return None
    links = b"".join([line[j + _DIGITS : j + _END] for line, j in zip(lines, starts, strict=True)])
    digests: list[bytes] = []
    keep, start = digests.append, _LEAF_PREFIX.copy  # cheaper than b"\x00" + line
    for line in lines:
        h = start()
        h.update(line)
        keep(h.digest())
    hexes = binascii.hexlify(b"".join(digests))  # one call for the batch
    if links != prev_hex + hexes[:-64]:
        return None
    wanted = [b',"seq":%d,' % n for n in range(seq, seq + len(lines))]
    found = [line.find(w, j + _END) for line, w, j in zip(lines, wanted, starts, strict=True)]
    if min(found) <= 0:
        return None
    return digests, hexes
