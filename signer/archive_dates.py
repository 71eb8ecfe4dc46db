"""When a signed PDF must be extended again to stay verifiable: its ``extend_before`` date.

A signature can be validated after its certificates expire only through proof that it
existed before, timestamps, whose own certificates expire in turn (ETSI EN 319 102-1).
So an archive must extend a record (``POST /api/v1/extend/pdf?level=B-LTA``) before:

- the end of the certificate of the TSA that made the last document timestamp (a fresh
  archive timestamp then covers everything before it);
- and the end of the certificate of every signer whose signature came after it (or of
  every signer, without document timestamps): after it, revocation data for that signer
  can no longer be gathered, and its signature can no longer be protected.

The date is a deadline, not a schedule: extend well before it, and sooner when the
algorithms of the last timestamp are announced to weaken.

The date comes only from what was validated: the signature fields of the document's form
(not any ``/Contents`` string in the file: an unreferenced or forged value says nothing),
each value read at the place its ``/ByteRange`` leaves out, and counted only when its CMS
is intact over that byte range, its signature value verifies and its signer certificate
chains to a trust anchor (at the time it claims, without revocation: the deadline is about
expiry). A document timestamp must also carry the imprint of those bytes.

Reading a signature dictionary through pyHanko tokenises its ``/Contents`` in Python
(about 15 ms a signature), so the dictionary is read here from the file's bytes at the
offset the cross-reference table gives (a signature dictionary carries its value in the
file itself); one in an object stream is read through pyHanko.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO

from asn1crypto import cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.generic_cms import (
    cms_basic_validation,
    extract_self_reported_ts,
    validate_tst_signed_data,
)
from pyhanko.sign.validation.status import SignatureStatus, TimestampSignatureStatus

from kyso.errors import InvalidRequest
from kyso.trust.policy import SIGNER_KEY_USAGE
from kyso.trust.store import TrustStore

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class SignatureValue:
    """A signature field's value: its byte range and the CMS (DER) in the range's gap."""

    field: str
    byte_range: tuple[int, int, int, int]
    cms: bytes

    @property
    def end(self) -> int:
        """Where the signed bytes end: the revision the value belongs to."""
        return self.byte_range[2] + self.byte_range[3]

    def digest(self, pdf: bytes, algorithm: str) -> bytes:
        start1, length1, start2, length2 = self.byte_range
        h = hashlib.new(algorithm)
        h.update(memoryview(pdf)[start1 : start1 + length1])
        h.update(memoryview(pdf)[start2 : start2 + length2])
        return h.digest()


@dataclass(frozen=True)
class Validated:
    """A signature or document timestamp that validated, and when its signer's certificate
    ends."""

    field: str
    timestamp: bool
    end: int
    not_after: datetime


def extend_before(pdf: bytes, trust: TrustStore) -> datetime | None:
    """The moment before which ``pdf`` must be extended again; None if it holds no
    signature that validates. Runs its own event loop."""
    return asyncio.run(async_extend_before(pdf, trust))


async def async_extend_before(pdf: bytes, trust: TrustStore) -> datetime | None:
    """:func:`extend_before`, from a coroutine."""
    found = [v for v in [await validate_value(pdf, v, trust) for v in signature_values(pdf)] if v]
    return deadline(found)


def deadline(found: list[Validated]) -> datetime | None:
    """The last document timestamp's certificate end, or earlier the end of any signer
    certificate whose signature it does not cover."""
    stamps = [v for v in found if v.timestamp]
    last = max(stamps, key=lambda v: v.end, default=None)
    uncovered = [v.not_after for v in found if not v.timestamp and (last is None or v.end > last.end)]
    ends = uncovered + ([last.not_after] if last is not None else [])
    return min(ends, default=None)


# -- the values, from the form's signature fields ----------------------------------------


def signature_values(pdf: bytes) -> list[SignatureValue]:
    """The values of the filled signature fields of the form; a value that cannot be read
    (no byte range, a gap that is not a hex string) is left out."""
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        found = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:  # a file kyso cannot read has no date it can vouch for
        log.info("no signature fields readable: %r", exc)
        return []
    values = []
    for name, value, _ in found:
        try:
            byte_range, contents = _locate(pdf, reader, value)
            values.append(SignatureValue(str(name), byte_range, _gap(pdf, byte_range, contents)))
        except Exception as exc:  # hostile dictionaries fail in many ways: not a value
            log.info("signature field %r has no readable value: %r", name, exc)
    return values


def _locate(
    pdf: bytes, reader: PdfFileReader, value: object
) -> tuple[tuple[int, int, int, int], tuple[int, int] | None]:
    """The byte range of a signature dictionary, and where its /Contents lies in the file
    (None when the dictionary was not read from the file's bytes)."""
    if isinstance(value, generic.IndirectObject):
        offset = reader.xrefs[value.reference]
        if isinstance(offset, int):
            entries = read_dictionary(pdf, offset)
            numbers = re.findall(rb"-?\d+", pdf[slice(*entries[b"/ByteRange"])])
            return _four(int(n) for n in numbers), entries[b"/Contents"]
    sig = value.get_object() if isinstance(value, generic.IndirectObject) else value
    return _four(int(n) for n in sig["/ByteRange"]), None  # type: ignore[index]


def _four(numbers) -> tuple[int, int, int, int]:
    values = tuple(numbers)
    if len(values) != 4:
        raise ValueError("a /ByteRange has four numbers")
    return values  # type: ignore[return-value]


def _gap(pdf: bytes, byte_range: tuple[int, int, int, int], contents: tuple[int, int] | None) -> bytes:
    """The CMS the byte range leaves out: exactly the dictionary's /Contents hex string."""
    start1, length1, start2, length2 = byte_range
    if start1 != 0 or length1 < 0 or length2 < 0 or not length1 < start2 <= start2 + length2 <= len(pdf):
        raise ValueError(f"the byte range {list(byte_range)} does not fit the file")
    if contents is not None and contents != (length1, start2):
        raise ValueError("the byte range does not leave out exactly the /Contents value")
    if pdf[length1 : length1 + 1] != b"<" or pdf[start2 - 1 : start2] != b">":
        raise ValueError("the byte range does not leave out a hex string")
    return bytes.fromhex(pdf[length1 + 1 : start2 - 1].decode("ascii"))


# A minimal reader of the one dictionary at an object's offset: names, numbers, references,
# strings, arrays and dictionaries, with hex strings skipped by search, not char by char.
_HEAD = re.compile(rb"\s*\d+\s+\d+\s+obj\s*<<")
_SPACE = re.compile(rb"(?:\s|%[^\r\n]*)*")
_NAME = re.compile(rb"/[^\s()<>\[\]{}/%]*")
_REF = re.compile(rb"\d+\s+\d+\s+R(?![^\s()<>\[\]{}/%])")
_TOKEN = re.compile(rb"[^\s()<>\[\]{}/%]+")
_PAREN = re.compile(rb"[()\\]")
MAX_DEPTH = 16


def read_dictionary(pdf: bytes, offset: int) -> dict[bytes, tuple[int, int]]:
    """The entries of the dictionary object at ``offset``: name -> (start, end) of its value."""
    head = _HEAD.match(pdf, offset)
    if head is None:
        raise ValueError("no dictionary object at its cross-reference offset")
    entries: dict[bytes, tuple[int, int]] = {}
    pos = head.end()
    while True:
        pos = _SPACE.match(pdf, pos).end()  # type: ignore[union-attr]
        if pdf.startswith(b">>", pos):
            return entries
        name = _NAME.match(pdf, pos)
        if name is None:
            raise ValueError("a dictionary key is not a name")
        start = _SPACE.match(pdf, name.end()).end()  # type: ignore[union-attr]
        pos = _value_end(pdf, start, 0)
        entries.setdefault(name.group(), (start, pos))


def _value_end(pdf: bytes, pos: int, depth: int) -> int:
    """Where the PDF object starting at ``pos`` ends."""
    if depth > MAX_DEPTH:
        raise ValueError("objects nested too deep")
    if pdf.startswith(b"<<", pos):
        return _container_end(pdf, pos + 2, b">>", depth)
    if pdf.startswith(b"[", pos):
        return _container_end(pdf, pos + 1, b"]", depth)
    if pdf.startswith(b"<", pos):
        return pdf.index(b">", pos) + 1
    if pdf.startswith(b"(", pos):
        return _literal_end(pdf, pos + 1)
    for pattern in (_NAME, _REF, _TOKEN):
        match = pattern.match(pdf, pos)
        if match is not None and match.end() > pos:
            return match.end()
    raise ValueError(f"unexpected byte at {pos}")


def _container_end(pdf: bytes, pos: int, close: bytes, depth: int) -> int:
    while True:
        pos = _SPACE.match(pdf, pos).end()  # type: ignore[union-attr]
        if pdf.startswith(close, pos):
            return pos + len(close)
        if pos >= len(pdf):
            raise ValueError("unterminated array or dictionary")
        pos = _value_end(pdf, pos, depth + 1)


def _literal_end(pdf: bytes, pos: int) -> int:
    """The end of a literal string whose body starts at ``pos`` (balanced parentheses)."""
    depth = 1
    while True:
        match = _PAREN.search(pdf, pos)
        if match is None:
            raise ValueError("unterminated string")
        pos = match.end()
        if match.group() == b"\\":
            pos += 1
        elif match.group() == b"(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


# -- validation ---------------------------------------------------------------------------


async def validate_value(pdf: bytes, value: SignatureValue, trust: TrustStore) -> Validated | None:
    """The value as :class:`Validated` if it is a sound signature or document timestamp
    over its byte range from a signer that chains to a trust anchor; else None."""
    return await validate_cms(
        value.field, value.cms, value.end, lambda algorithm: value.digest(pdf, algorithm), trust
    )


async def async_own_deadline(
    field: str, contents: bytes, end: int, sha256_digest: bytes, trust: TrustStore
) -> datetime | None:
    """:func:`async_extend_before` of a PDF whose one filled signature field is the one just
    made: its ``/Contents`` value as written, its signed bytes' end and their SHA-256 (the
    only digest kyso signs with). The same validation, without reading the file again."""

    def digest(algorithm: str) -> bytes:
        if algorithm != "sha256":
            raise ValueError(f"the signature was made over SHA-256, not {algorithm}")
        return sha256_digest

    found = await validate_cms(field, contents, end, digest, trust)
    return deadline([found] if found else [])


async def validate_cms(
    field: str, contents: bytes, end: int, digest: Callable[[str], bytes], trust: TrustStore
) -> Validated | None:
    """A signature field's value (``contents``, the CMS, maybe zero-padded) as
    :class:`Validated`, given the digest of its signed bytes by algorithm; else None."""
    try:
        signed = cms.ContentInfo.load(contents, strict=False)["content"]
        if signed["encap_content_info"]["content_type"].native == "tst_info":
            return await _timestamp(field, end, digest, signed, trust)
        return await _signature(field, end, digest, signed, trust)
    except Exception as exc:  # asn1crypto and pyHanko raise many kinds on hostile values
        log.info("signature field %r does not validate: %r", field, exc)
        return None


def _certificates(signed: cms.SignedData) -> list:
    return [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]


async def _timestamp(
    field: str, end: int, digest: Callable[[str], bytes], signed: cms.SignedData, trust: TrustStore
) -> Validated | None:
    tst_info = signed["encap_content_info"]["content"].parsed
    context = trust.path_context(_certificates(signed), tst_info["gen_time"].native)
    try:
        kwargs = await validate_tst_signed_data(signed, context, digest)
    finally:
        await context.aclose()
    status = TimestampSignatureStatus(**kwargs)
    if not (status.intact and status.valid and status.trusted):
        return None
    return Validated(field, True, end, status.signing_cert.not_valid_after)


async def _signature(
    field: str, end: int, digest: Callable[[str], bytes], signed: cms.SignedData, trust: TrustStore
) -> Validated | None:
    signer_info = signed["signer_infos"][0]
    algorithm = signer_info["digest_algorithm"]["algorithm"].native
    claimed = extract_self_reported_ts(signer_info)
    context = trust.path_context(_certificates(signed), claimed)
    try:
        # Not async_validate_cms_signature: it rebuilds the key usage constraints and
        # would then require an extended key usage extension of every signer.
        kwargs = await cms_basic_validation(
            signed,
            raw_digest=digest(algorithm),
            validation_context=context,
            key_usage_settings=SIGNER_KEY_USAGE,
        )
    finally:
        await context.aclose()
    status = SignatureStatus(**kwargs)
    if not (status.intact and status.valid and status.trusted):
        return None
    return Validated(field, False, end, status.signing_cert.not_valid_after)
