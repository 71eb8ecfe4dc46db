"""Whether kyso's own log holds the very file being verified (the ``registered`` member).

A report that shows a log entry reassures its reader that kyso made this record. It must
therefore only show one when the log holds *this exact file*: a PDF whose SHA-256 equals a
signed output kyso returned (``signature_sha256`` of a signing or extension entry), or a JWS
whose signature member kyso returned and whose signature still verifies over the payload
shown. A PDF changed after kyso signed it (an incremental update appended, so that its first
revision is still byte for byte kyso's output) is *not* in the log, and no signature in it
is shown as registered, whatever entry its earlier revision has.

Within a file the log holds, each signature is shown with the entry of the output that
first carried it: the prefix of the file that ends its revision, or a later one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kyso.signer.verify.report import Registered

_EOF = re.compile(rb"%%EOF(\r\n|\r|\n)?")


def pdf_registrations(
    data: bytes, signed_ends: Sequence[int], registered: Registered
) -> list[Mapping[str, Any] | None]:
    """The log entry of each signature (by where its revision ends), all ``None`` unless
    the log holds the whole file ``data``."""
    if registered([hashlib.sha256(data).hexdigest()]) is None:
        return [None] * len(signed_ends)
    return [registered(revision_candidates(data, end)) for end in signed_ends]


def revision_candidates(data: bytes, signed_end: int) -> list[str]:
    """SHA-256 (hex) of every prefix of ``data`` that may be a whole file kyso returned,
    from the signature's revision on: the prefix ending at ``signed_end``, every prefix
    ending after a ``%%EOF`` marker (with and without its end-of-line) beyond it, and the
    whole file; in file order, without repeats. Hashed in one pass."""
    cuts = {signed_end, len(data)}
    for match in _EOF.finditer(data, max(signed_end - 8, 0)):
        cuts.update(end for end in (match.start() + 5, match.end()) if end >= signed_end)
    digests, hasher, position, view = [], hashlib.sha256(), 0, memoryview(data)
    for cut in sorted(cuts):
        hasher.update(view[position:cut])
        position = cut
        digests.append(hasher.copy().hexdigest())
    return list(dict.fromkeys(digests))
