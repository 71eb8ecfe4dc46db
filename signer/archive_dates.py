"""When a signed PDF must be extended again to stay verifiable: its ``extend_before`` date.

A signature can be validated after its certificates expire only through proof that it
existed before, timestamps, whose own certificates expire in turn (ETSI EN 319 102-1).
So an archive must extend a record (``POST /api/v1/extend/pdf?level=B-LTA``) before:

- with document timestamps, the end of the certificate of the TSA that made the last
  one (a fresh archive timestamp then covers everything before it);
- without, the end of the earliest signer certificate: after it, revocation data for that
  signer can no longer be gathered, and a B-B or B-T signature cannot be extended.

The date is a deadline, not a schedule: extend well before it, and sooner when the
algorithms of the last timestamp are announced to weaken.
"""

from __future__ import annotations

import logging
from datetime import datetime
from io import BytesIO

from pyhanko.pdf_utils.reader import PdfFileReader

log = logging.getLogger(__name__)


def extend_before(pdf: bytes) -> datetime | None:
    """The moment before which ``pdf`` must be extended again; None if it holds no signature."""
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        stamps = sorted(reader.embedded_timestamp_signatures, key=lambda s: s.signed_revision)
        if stamps:
            return stamps[-1].signer_cert.not_valid_after
        ends = [s.signer_cert.not_valid_after for s in reader.embedded_regular_signatures]
    except Exception as exc:  # what kyso just signed parses; a date is never worth a failure
        log.warning("no extend_before date for a signed PDF: %r", exc)
        return None
    return min(ends, default=None)
