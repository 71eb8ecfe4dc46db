"""PAdES baseline signatures (ETSI EN 319 142-1) on PDFs, with pyHanko.

``B-B`` is CMS with the signer's chain; ``B-T`` adds a signature timestamp; ``B-LT``
adds validation data in the DSS; ``B-LTA`` adds a document timestamp on top.
A PDF that already carries signatures gets one more in an incremental update, so the
earlier ones stay valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, cast

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfPostSignatureDocument
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.pdf_embedded import read_certification_data
from pyhanko_certvalidator import ValidationContext

from kyso.errors import InvalidPdf, InvalidRequest, TsaUnavailable
from kyso.keystore.base import SigningKey
from kyso.signer.bounds import DEFAULT_BOUNDS, PdfBounds
from kyso.signer.cms import KeystoreSigner
from kyso.signer.pdf_input import (
    READ_ERRORS,
    check_pdf_envelope,
    field_text,
    load_pdf,
    load_pdf_stream,
    open_pdf,
    signature_fields,
)

__all__ = [  # also the reading of a PDF to sign, from kyso.signer.pdf_input
    "LEVELS", "PdfSignOptions", "SignedPdf", "SignedStream", "async_sign_pdf", "async_sign_pdf_stream",
    "check_pdf_envelope", "field_text", "free_field_name", "load_pdf", "open_pdf", "signature_fields",
]  # fmt: skip

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


@dataclass(frozen=True)
class SignedStream:
    """A signature written to an output stream (:func:`async_sign_pdf_stream`): what was
    signed where, and the CMS that was embedded, for whoever must judge it without
    reading the file again (:func:`kyso.signer.archive_dates.async_own_signature`)."""

    field: str
    sha256: str  # of the whole output
    size: int
    repaired: bool
    signed_before: bool  # the input already carried a filled signature field
    cms: bytes  # the /Contents value as written: the CMS (DER), zero-padded
    document_digest: bytes  # SHA-256 over the signature's byte range
    end: int  # where the signed bytes end: the output's size




@dataclass(frozen=True)
class _Fields:
    """What one walk of the form's signature fields tells a signature about to be made."""

    used: set[str]  # every field name
    signed: set[str]  # the filled ones

    @classmethod
    def of(cls, reader: PdfFileReader) -> _Fields:
        found = signature_fields(reader)
        return cls({name for name, _, _ in found}, {name for name, value, _ in found if value is not None})

    def free_name(self) -> str:
        """The first ``SignatureN`` not used by any field of the document."""
        n = 1
        while f"Signature{n}" in self.used:
            n += 1
        return f"Signature{n}"

    def state(self, name: str) -> bool | None:
        """True if the field exists and is signed, False if empty, None if absent."""
        return name in self.signed if name in self.used else None


def free_field_name(reader: PdfFileReader) -> str:
    """The first ``SignatureN`` not used by any field of the document."""
    return _Fields.of(reader).free_name()


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
    that the DSS holds the validation data of the timestamp the TSA really returned."""
    level = options.level
    if level in ("B-LT", "B-LTA") and validation_context is None:
        raise ValueError(f"{level} needs a validation context (trust anchors and revocation sources)")
    if level != "B-B" and timestamper is None:
        raise TsaUnavailable(f"{level} needs a timestamp authority, and none is configured")
    base = options if level in ("B-B", "B-T") else replace(options, level="B-T")
    out = BytesIO()
    made = await async_sign_pdf_stream(BytesIO(data), out, key, base, timestamper, stamp_font, bounds)
    signed = out.getvalue()
    if level in ("B-LT", "B-LTA"):
        from kyso.signer.ltv import async_extend_pdf

        assert validation_context is not None
        signed = (await async_extend_pdf(signed, level, timestamper, validation_context)).pdf
        return SignedPdf(signed, made.field, hashlib.sha256(signed).hexdigest(), made.repaired)
    return SignedPdf(pdf=signed, field=made.field, sha256=made.sha256, repaired=made.repaired)


async def async_sign_pdf_stream(
    source: BinaryIO,
    output: BinaryIO,
    key: SigningKey,
    options: PdfSignOptions,
    timestamper: TimeStamper | None,
    stamp_font: Path | None = None,
    bounds: PdfBounds = DEFAULT_BOUNDS,
) -> SignedStream:
    """Sign the PDF in ``source`` (seekable) at ``B-B`` or ``B-T`` into ``output`` (empty,
    readable, writable, seekable): with files, neither is ever held in memory whole.

    The space reserved for the CMS is pyHanko's estimate from a dry run with the signer's
    whole chain and, for ``B-T``, a real timestamp token, plus half again; it depends on
    nothing but the key and the timestamper, so it is made once for each (see
    :func:`_reserved`). A visible stamp is drawn in ``stamp_font`` (default: the first
    installed font of :data:`kyso.signer.stamp.FONT_CANDIDATES`)."""
    level = options.level
    if level not in ("B-B", "B-T"):
        raise ValueError(f"{level} is a B-T signature extended afterwards (kyso.signer.ltv)")
    if level != "B-B" and timestamper is None:
        raise TsaUnavailable(f"{level} needs a timestamp authority, and none is configured")
    source, reader, repaired = load_pdf_stream(source, options.repair, bounds)
    found = _Fields.of(reader)
    field = options.field or found.free_name()
    state = found.state(field)
    if options.field and state:
        raise InvalidRequest(f"signature field {field!r} is already signed")
    if options.certify and found.signed:
        raise InvalidRequest("certify is only possible on the first signature of a document")
    _check_certification(reader, options.visible and state is None)
    if options.visible and state is None:
        _check_page(reader, options.page)
    pdf_signer = signers.PdfSigner(
        _metadata(options, field),
        KeystoreSigner(key),
        timestamper=timestamper if level != "B-B" else None,
        new_field_spec=_field_spec(options, field) if state is None else None,
        stamp_style=_stamp_style(options, key, stamp_font) if options.visible else None,
    )
    try:
        writer = IncrementalPdfFileWriter.from_reader(reader)
        writer.IO_CHUNK_SIZE = _CHUNK  # the copy of the input: 4 kB at a time by default
        post, digest = await _sign(pdf_signer, writer, output, _reserved_key(key, pdf_signer))
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF cannot be signed: {exc}") from None
    size, sha256 = _hash_stream(output)
    return SignedStream(
        field=field, sha256=sha256, size=size, repaired=repaired, signed_before=bool(found.signed),
        cms=post.sig_contents, document_digest=digest, end=size,
    )  # fmt: skip


_CHUNK = 1 << 20
# The CMS space pyHanko estimated for a (key, timestamper): the estimate is a whole dry-run
# signature, a third of the cost of a small PDF's B-B signature, and always the same for them.
_RESERVED: dict[tuple[object, ...], int] = {}


def _reserved_key(key: SigningKey, pdf_signer: signers.PdfSigner) -> tuple[object, ...]:
    signer = pdf_signer.signer
    return (
        key.info.certificate.sha256, tuple(c.sha256 for c in key.info.chain), key.info.default_scheme,
        signer.embed_roots, pdf_signer.default_timestamper,
    )  # fmt: skip


async def _sign(
    pdf_signer: signers.PdfSigner, writer: IncrementalPdfFileWriter, output: BinaryIO, reserved_key: tuple
) -> tuple[PdfPostSignatureDocument, bytes]:
    """pyHanko's ``PdfSigner.async_sign_pdf``, step by step (its "interrupted signing"
    API): with the CMS space of an earlier estimate for the same key and timestamper, and
    returning what it embedded and the document digest it signed."""
    session = pdf_signer.init_signing_session(writer)
    validation_info = await session.perform_presign_validation(writer)
    reserved = _RESERVED.get(reserved_key)
    if reserved is None or validation_info is not None:
        reserved = await session.estimate_signature_container_size(validation_info, tight=False)
        if validation_info is None:
            if len(_RESERVED) > 64:
                _RESERVED.clear()
            _RESERVED[reserved_key] = reserved
    tbs = session.prepare_tbs_document(validation_info=validation_info, bytes_reserved=reserved)
    prepared, written = tbs.digest_tbs_document(output=output, chunk_size=_CHUNK)
    if written is not output:
        raise ValueError("the output must be readable, writable and seekable")
    post = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(
            signing_time=session.system_time,
            adobe_revinfo_attr=None if validation_info is None else validation_info.adobe_revinfo_attr,
            cades_signed_attrs=pdf_signer.signature_meta.cades_signed_attr_spec,
        ),
    )
    await post.post_signature_processing(output, chunk_size=_CHUNK)
    return post, prepared.document_digest


def _hash_stream(stream: BinaryIO) -> tuple[int, str]:
    """The size and SHA-256 of a stream's whole content, read in chunks."""
    digest, size = hashlib.sha256(), 0
    stream.seek(0)
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return size, digest.hexdigest()


def _metadata(options: PdfSignOptions, field: str) -> signers.PdfSignatureMetadata:
    return signers.PdfSignatureMetadata(
        field_name=field,
        md_algorithm="sha256",
        reason=options.reason,
        location=options.location,
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=options.certify,
        docmdp_permissions=MDPPerm.FILL_FORMS,
    )


def _field_spec(options: PdfSignOptions, field: str) -> SigFieldSpec:
    # PDF coordinates are reals; pyHanko annotates them as ints but takes any number.
    box = cast(tuple[int, int, int, int], options.box) if options.visible else None
    return SigFieldSpec(sig_field_name=field, on_page=options.page - 1, box=box)


def _stamp_style(options: PdfSignOptions, key: SigningKey, stamp_font: Path | None):  # noqa: ANN202
    from kyso.signer.stamp import StampText, find_font
    from kyso.signer.stamp import stamp_style as kyso_stamp
    from kyso.trust.policy import subject_name

    assert options.box is not None  # PdfSignOptions requires it with visible
    said = StampText(subject_name(key.info.certificate), datetime.now(UTC), options.location, options.reason)
    return kyso_stamp(stamp_font or find_font(), said, options.box)


def _check_certification(reader: PdfFileReader, new_visible_field: bool) -> None:
    """Refuse a signature that would break the document's certification (DocMDP): none is
    allowed under P=1; under P=2 (form filling and signing) no new visible field, which
    pyHanko's difference analysis (and so kyso's report) counts as a forbidden change."""
    try:
        certification = read_certification_data(reader)
    except READ_ERRORS:
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
    except READ_ERRORS:
        return  # pyHanko finds the page itself, or says why it cannot
    if page > count:
        raise InvalidRequest(f"page {page} does not exist: the PDF has {count} page(s)")
