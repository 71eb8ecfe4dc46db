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

The CMS values are found in the file's bytes rather than through a PDF parser, which
tokenises each /Contents hex string in Python (about 30 ms a signature): a signature's
/Contents is always a hex string in the file itself, outside any object stream, as its
/ByteRange leaves it out. Revisions are appended, so the last value in the file is the
newest. A hex /Contents that is no CMS (an annotation's text) is passed over.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from asn1crypto import cms

from kyso.errors import InvalidRequest
from kyso.signer.timestamp.client import token_signer_certificate

log = logging.getLogger(__name__)

_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f\s]{64,})>")


def parse_deadline(text: str) -> datetime:
    """A date (``YYYY-MM-DD``) or ISO 8601 time asked for by a caller, UTC unless it says.

    Raises :class:`InvalidRequest` for anything else."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        shown = text if len(text) <= 40 else f"{text[:40]}..."
        raise InvalidRequest(
            f"give a date (YYYY-MM-DD) or an ISO 8601 time, not {shown!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def extend_before(pdf: bytes) -> datetime | None:
    """The moment before which ``pdf`` must be extended again; None if it holds no signature."""
    last_stamp: datetime | None = None
    signer_ends: list[datetime] = []
    for match in _CONTENTS.finditer(pdf):
        found = _signer_end(match[1])
        if found is None:
            continue
        is_timestamp, end = found
        if is_timestamp:
            last_stamp = end  # the newest document timestamp so far
        else:
            signer_ends.append(end)
    if last_stamp is not None:
        return last_stamp
    return min(signer_ends, default=None)


def _signer_end(hex_digits: bytes) -> tuple[bool, datetime] | None:
    """(is a document timestamp, end of its signer's certificate) of one /Contents value."""
    try:
        der = bytes.fromhex(re.sub(rb"\s", b"", hex_digits).decode("ascii"))
        info = cms.ContentInfo.load(der, strict=False)  # the zeros padding it are left over
        if info["content_type"].native != "signed_data":
            return None
        is_timestamp = info["content"]["encap_content_info"]["content_type"].native == "tst_info"
        cert = token_signer_certificate(info)
    except Exception as exc:  # an annotation's hex text, or a damaged value
        log.debug("a /Contents value is not a usable CMS: %r", exc)
        return None
    return (is_timestamp, cert.not_valid_after) if cert is not None else None
