"""PAdES baseline signatures (ETSI EN 319 142-1) on PDFs, with pyHanko.

``B-B`` is CMS with the signer's chain; ``B-T`` adds a signature timestamp; ``B-LT``
adds validation data in the DSS; ``B-LTA`` adds a document timestamp on top.
A PDF that already carries signatures gets one more in an incremental update, so the
earlier ones stay valid.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import cast

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.pdf_embedded import read_certification_data
from pyhanko_certvalidator import ValidationContext

from kyso.errors import EncryptedPdf, InvalidPdf, InvalidRequest, TsaUnavailable
from kyso.keystore.base import SigningKey
from kyso.signer.bounds import DEFAULT_BOUNDS, OverLimit, PdfBounds
from kyso.signer.cms import KeystoreSigner

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


@dataclass(frozen=True)
class PdfSignOptions:
    """What the caller asks of one PDF signature."""

    level: str = "B-T"
    reason: str | None = None
    location: str | None = None
    field: str | None = None
    certify: bool = False
    visible: bool = False
    page: int = 1
    box: tuple[float, float, float, float] | None = None
    repair: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InvalidRequest(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if self.visible and self.box is None:
            raise InvalidRequest("a visible signature needs box=x1,y1,x2,y2 (PDF points)")
        if self.page < 1:
            raise InvalidRequest("page is 1-based")


@dataclass(frozen=True)
class SignedPdf:
    pdf: bytes
    field: str
    sha256: str
    repaired: bool = False  # the input's broken structure was rebuilt before signing


# What pyHanko raises on hostile or damaged input (found by fuzzing): all mean "not a readable PDF".
_READ_ERRORS = (
    PdfError, ValueError, KeyError, TypeError, IndexError, AssertionError,
    AttributeError, OverflowError, RecursionError, zlib.error,
)


_ENCRYPTED = (
    "the PDF is encrypted (it has an /Encrypt dictionary, even if its user password is empty); "
    "remove the encryption before signing a record"
)


def check_pdf_envelope(data: bytes) -> None:
    """Refuse what is not a PDF or was cut off in transfer."""
    if b"%PDF-" not in data[:1024]:
        raise InvalidPdf("the body is not a PDF (no %PDF- header)")
    if b"%%EOF" not in data[-2048:]:
        raise InvalidPdf("the PDF is truncated (no %%EOF marker at its end)")


def load_pdf(
    data: bytes, repair: bool = False, bounds: PdfBounds = DEFAULT_BOUNDS
) -> tuple[bytes, PdfFileReader, bool]:
    """Parse a PDF for signing: ``(bytes to sign, reader, repaired)``.

    A file whose structure cannot be read is refused, or, when the caller allows it
    (``repair``), rebuilt first. Rebuilding is never silent: a signer attests to what
    it signs, so the caller must accept that the signed file is the rebuilt one. Nothing
    is rebuilt, not even on trial, unless the caller asks: the rebuild inflates what the
    file holds, and runs apart, in a child process with limits."""
    check_pdf_envelope(data)
    try:
        return data, open_pdf(data, bounds), False
    except (EncryptedPdf, OverLimit):
        raise
    except InvalidPdf as exc:
        if not repair:
            raise InvalidPdf(
                f"{exc.detail}. If the file is damaged, send it again with repair=true to have "
                "kyso rebuild its structure, when that loses nothing, and sign the rebuilt file"
            ) from None
    from kyso.signer.repair.isolated import repair_in_child

    # The rebuild refuses, naming what was lost, a file that cannot be rebuilt whole.
    fixed = repair_in_child(data, bounds)
    return fixed, open_pdf(fixed, bounds), True


def open_pdf(data: bytes, bounds: PdfBounds = DEFAULT_BOUNDS) -> PdfFileReader:
    """Parse a PDF as it is, refusing what cannot be read, is encrypted, or is over
    ``bounds`` (objects, inflated bytes, signature fields)."""
    bounds.check_bytes(data)
    try:
        reader = PdfFileReader(BytesIO(data), strict=False, decode_limits=bounds.decode_limits())
        trailer = reader.trailer
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except _READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF cannot be read: {exc}") from None
    if "/Encrypt" in trailer:
        raise EncryptedPdf(_ENCRYPTED)
    bounds.check_reader(reader)
    try:
        reader.root["/Pages"]
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except _READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF has no readable page tree: {exc}") from None
    try:
        bounds.check_fields(reader)
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except _READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF's signature fields cannot be read: {exc}") from None
    return reader


def signature_fields(reader: PdfFileReader, filled_status: bool | None = None) -> list:
    """The signature fields, ``(name, value, field reference)``, as pyHanko enumerates
    them; a form tree that cannot be walked (a field that is its own kid) is InvalidPdf."""
    try:
        return list(fields.enumerate_sig_fields(reader, filled_status=filled_status))
    except _READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF's form fields cannot be read: {exc}") from None


def field_text(name: object) -> str:
    """A field name as text: pyHanko hands over a byte string for a name that does not
    decode as a PDF text string (a NUL byte, say); it is read as Latin-1 then."""
    if isinstance(name, bytes):
        return name.decode("latin-1")
    return str(name)


def free_field_name(reader: PdfFileReader) -> str:
    """The first ``SignatureN`` not used by any field of the document."""
    used = {name for name, _, _ in signature_fields(reader)}
    n = 1
    while f"Signature{n}" in used:
        n += 1
    return f"Signature{n}"


def _field_state(reader: PdfFileReader, name: str) -> bool | None:
    """True if the field exists and is signed, False if empty, None if absent."""
    for fname, value, _ in signature_fields(reader):
        if fname == name:
            return value is not None
    return None


async def async_sign_pdf(
    data: bytes,
    key: SigningKey,
    options: PdfSignOptions,
    timestamper: TimeStamper | None,
    validation_context: ValidationContext | None = None,
    stamp_font: Path | None = None,
    bounds: PdfBounds = DEFAULT_BOUNDS,
) -> SignedPdf:
    """Sign ``data`` at ``options.level``; the timestamper is needed from ``B-T`` on and
    the validation context (trust + revocation sources) from ``B-LT`` on.

    ``B-LT`` and ``B-LTA`` are a ``B-T`` signature extended by :mod:`kyso.signer.ltv`, so
    that the DSS holds the validation data of the timestamp the TSA really returned. The
    space reserved for the CMS is pyHanko's estimate from a dry run with the signer's whole
    chain and a real timestamp token, plus half again (revocation data goes into the DSS,
    not into the CMS, in PAdES). A visible stamp is drawn in ``stamp_font`` (default: the
    first installed font of :data:`kyso.signer.stamp.FONT_CANDIDATES`)."""
    level = options.level
    if level != "B-B" and timestamper is None:
        raise TsaUnavailable(f"{level} needs a timestamp authority, and none is configured")
    if level in ("B-LT", "B-LTA") and validation_context is None:
        raise ValueError(f"{level} needs a validation context (trust anchors and revocation sources)")
    data, reader, repaired = load_pdf(data, options.repair, bounds)
    field = options.field or free_field_name(reader)
    state = _field_state(reader, field)
    if options.field and state:
        raise InvalidRequest(f"signature field {field!r} is already signed")
    if options.certify and signature_fields(reader, filled_status=True):
        raise InvalidRequest("certify is only possible on the first signature of a document")
    _check_certification(reader, options.visible and state is None)
    if options.visible and state is None:
        _check_page(reader, options.page)
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        md_algorithm="sha256",
        reason=options.reason,
        location=options.location,
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=options.certify,
        docmdp_permissions=MDPPerm.FILL_FORMS,
    )
    field_spec = None
    if state is None:
        # PDF coordinates are reals; pyHanko annotates them as ints but takes any number.
        box = cast(tuple[int, int, int, int], options.box) if options.visible else None
        field_spec = SigFieldSpec(sig_field_name=field, on_page=options.page - 1, box=box)
    stamp_style = None
    if options.visible:
        from kyso.signer.stamp import StampText, find_font
        from kyso.signer.stamp import stamp_style as kyso_stamp
        from kyso.trust.policy import subject_name

        assert options.box is not None  # PdfSignOptions requires it with visible
        said = StampText(
            subject_name(key.info.certificate), datetime.now(UTC), options.location, options.reason
        )
        stamp_style = kyso_stamp(stamp_font or find_font(), said, options.box)
    pdf_signer = signers.PdfSigner(
        meta,
        KeystoreSigner(key),
        timestamper=timestamper if level != "B-B" else None,
        new_field_spec=field_spec,
        stamp_style=stamp_style,
    )
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False, decode_limits=bounds.decode_limits())
        out = BytesIO()
        await pdf_signer.async_sign_pdf(writer, output=out)
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except _READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF cannot be signed: {exc}") from None
    signed = out.getvalue()
    if level in ("B-LT", "B-LTA"):
        from kyso.signer.ltv import async_extend_pdf

        assert validation_context is not None
        signed = (await async_extend_pdf(signed, level, timestamper, validation_context)).pdf
    return SignedPdf(pdf=signed, field=field, sha256=hashlib.sha256(signed).hexdigest(), repaired=repaired)


def _check_certification(reader: PdfFileReader, new_visible_field: bool) -> None:
    """Refuse a signature that would break the document's certification (DocMDP): none is
    allowed under P=1; under P=2 (form filling and signing) no new visible field, which
    pyHanko's difference analysis (and so kyso's report) counts as a forbidden change."""
    try:
        certification = read_certification_data(reader)
    except _READ_ERRORS:
        return  # an unreadable /Perms is the validator's finding, not a reason to refuse
    if certification is None:
        return
    if certification.permission == MDPPerm.NO_CHANGES:
        raise InvalidRequest(
            "the document is certified with no changes allowed (DocMDP P=1): another "
            "signature would invalidate its certification"
        )
    if new_visible_field and certification.permission == MDPPerm.FILL_FORMS:
        raise InvalidRequest(
            "the document is certified for form filling and signing only (DocMDP P=2): a new "
            "visible signature field would invalidate its certification. Sign without "
            "visible=true, or into an empty signature field made before it was certified "
            "(field=NAME)"
        )


def _check_page(reader: PdfFileReader, page: int) -> None:
    """Refuse a stamp on a page the document does not have."""
    try:
        count = int(reader.root["/Pages"]["/Count"])
    except _READ_ERRORS:
        return  # pyHanko finds the page itself, or says why it cannot
    if page > count:
        raise InvalidRequest(f"page {page} does not exist: the PDF has {count} page(s)")
