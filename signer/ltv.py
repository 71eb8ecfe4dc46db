"""Long-term validation material for signed PDFs: PAdES B-LT and B-LTA, and their extension.

``B-LT`` adds, in one incremental update, the Document Security Store (DSS) entries a
validator needs years later without asking anyone: every certificate of the paths from the
signers and their timestamp authorities to the trust anchors, and the CRLs or OCSP responses
that say those certificates were not revoked. ``B-LTA`` puts a document timestamp (an
archive timestamp, RFC 3161 over the whole file) on top, in the same update as the DSS, so
the timestamp also covers that data.

The same code extends a document that was signed earlier (``POST /api/v1/extend/pdf``):
an archive calls it again before the certificates of the last archive timestamp expire (or
its algorithms weaken), and each call adds the validation data of everything so far,
including the previous archive timestamp, and a fresh archive timestamp over it all
(ETSI EN 319 142-1, 5.4: the "LTA chain").

Revocation data comes from the :class:`~pyhanko_certvalidator.ValidationContext` the caller
gives: see :mod:`kyso.trust.revocation`. A context in ``require`` mode makes missing data an
error (:class:`~kyso.errors.RevocationUnavailable`) instead of a silently weaker document.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from io import BytesIO

from asn1crypto import cms
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath

from kyso.errors import InvalidPdf, InvalidRequest, KysoError, RevocationUnavailable, TsaUnavailable
from kyso.signer.bounds import DEFAULT_BOUNDS, PdfBounds
from kyso.signer.pades import check_pdf_envelope, open_pdf

log = logging.getLogger(__name__)

EXTENSION_LEVELS = ("B-LT", "B-LTA")


@dataclass(frozen=True)
class ExtendedPdf:
    """A PDF with validation data (and, for B-LTA, a new archive timestamp)."""

    pdf: bytes
    sha256: str
    level: str
    signatures: tuple[str, ...]  # signature fields whose validation data is in the DSS
    archive_timestamp: str | None  # field of the document timestamp added (B-LTA)
    skipped: tuple[str, ...] = ()  # already protected by an archive timestamp, now expired


@dataclass(frozen=True)
class _Signed:
    """One CMS structure whose signer needs validation data, and what it is."""

    label: str
    signed_data: cms.SignedData
    revision: int


async def async_extend_pdf(
    data: bytes,
    level: str,
    timestamper: TimeStamper | None,
    context: ValidationContext,
    bounds: PdfBounds = DEFAULT_BOUNDS,
) -> ExtendedPdf:
    """``data`` with the validation data of all its signatures and document timestamps,
    plus an archive timestamp for ``B-LTA``.

    Raises InvalidRequest for a document that cannot reach ``level`` (no signature, a
    signature without a signature timestamp, a signer that does not chain to a trust
    anchor, a certificate that expired before anything protected it),
    RevocationUnavailable when a CRL or OCSP answer cannot be had, and TsaUnavailable."""
    if level not in EXTENSION_LEVELS:
        raise InvalidRequest(f"level must be B-LT or B-LTA, not {level!r}")
    if level == "B-LTA" and timestamper is None:
        raise TsaUnavailable("B-LTA needs a timestamp authority, and none is configured")
    check_pdf_envelope(data)
    reader = open_pdf(data, bounds)
    signatures, doc_timestamps = _embedded(reader)
    _require_timestamps(signatures)
    items = _to_validate(signatures, doc_timestamps)
    last_archive = max((ts.signed_revision for ts in doc_timestamps), default=-1)
    paths, skipped = await _collect(items, context, last_archive)
    if level == "B-LTA":
        assert timestamper is not None
        paths += await _tsa_paths(timestamper, context)

    archive = free_timestamp_name(reader) if level == "B-LTA" else None
    try:
        extended = await _write(data, paths, context, timestamper, archive, bounds)
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidPdf(f"the PDF cannot be extended: {exc}") from None
    return ExtendedPdf(
        pdf=extended,
        sha256=hashlib.sha256(extended).hexdigest(),
        level=level,
        signatures=tuple(emb.field_name for emb in signatures),
        archive_timestamp=archive,
        skipped=tuple(skipped),
    )


async def _write(
    data: bytes,
    paths: list[ValidationPath],
    context: ValidationContext,
    timestamper: TimeStamper | None,
    archive: str | None,
    bounds: PdfBounds,
) -> bytes:
    """One incremental update: the DSS with everything ``paths`` and ``context`` hold, and
    the archive timestamp in field ``archive`` when there is one (it then covers the DSS)."""
    writer = IncrementalPdfFileWriter(BytesIO(data), strict=False, decode_limits=bounds.decode_limits())
    # No VRI: PAdES baseline does not need it, and one DSS update serves every signature.
    DocumentSecurityStore.supply_dss_in_writer(
        writer, sig_contents=None, paths=paths, validation_context=context
    )
    out = BytesIO()
    if archive is None:
        writer.write(out)
    else:
        assert timestamper is not None
        await PdfTimeStamper(timestamper, field_name=archive).async_timestamp_pdf(
            writer, "sha256", output=out
        )
    return out.getvalue()


def free_timestamp_name(reader: PdfFileReader) -> str:
    """The first ``TimestampN`` not used by any field of the document."""
    used = {name for name, _, _ in fields.enumerate_sig_fields(reader, filled_status=None)}
    n = 1
    while f"Timestamp{n}" in used:
        n += 1
    return f"Timestamp{n}"


def _embedded(
    reader: PdfFileReader,
) -> tuple[list[EmbeddedPdfSignature], list[EmbeddedPdfSignature]]:
    """The signatures and the document timestamps, in signing order."""
    try:
        every = list(reader.embedded_signatures)
    except Exception as exc:  # hostile signature dictionaries break pyHanko in many ways
        raise InvalidPdf(f"the PDF's signatures cannot be read: {exc}") from None
    signatures = [e for e in every if e.sig_object_type == "/Sig"]
    timestamps = [e for e in every if e.sig_object_type == "/DocTimeStamp"]
    if not signatures:
        raise InvalidRequest("the PDF has no signature to extend")
    return signatures, timestamps


def _signature_timestamps(emb: EmbeddedPdfSignature) -> list[cms.SignedData]:
    return list(extract_tst_data_iter(emb.signer_info, signed=False))


def _require_timestamps(signatures: list[EmbeddedPdfSignature]) -> None:
    """B-LT builds on B-T: a signature without a signature timestamp cannot be extended
    (its CMS is covered by nothing that could hold one later)."""
    bare = [emb.field_name for emb in signatures if not _signature_timestamps(emb)]
    if bare:
        raise InvalidRequest(
            f"signature(s) {', '.join(bare)} have no signature timestamp (B-B); only B-T "
            "signatures can be extended to B-LT or B-LTA. Sign at B-T or higher"
        )


def _to_validate(
    signatures: list[EmbeddedPdfSignature], doc_timestamps: list[EmbeddedPdfSignature]
) -> list[_Signed]:
    """Every signer whose certificates need validation data: the signatures, their
    signature timestamps, and the archive timestamps so far."""
    items: list[_Signed] = []
    for emb in signatures:
        items.append(_Signed(f"signature {emb.field_name}", emb.signed_data, emb.signed_revision))
        for tst in _signature_timestamps(emb):
            items.append(_Signed(f"timestamp of {emb.field_name}", tst, emb.signed_revision))
    for emb in doc_timestamps:
        items.append(
            _Signed(f"archive timestamp {emb.field_name}", emb.signed_data, emb.signed_revision)
        )
    return items


async def _collect(
    items: list[_Signed], context: ValidationContext, last_archive: int
) -> tuple[list[ValidationPath], list[str]]:
    """Validation paths of every item (their revocation data lands in ``context``), and
    the items skipped because their certificate expired under an archive timestamp."""
    paths: list[ValidationPath] = []
    skipped: list[str] = []
    for item in items:
        try:
            path = await _path_of(item.signed_data, context)
        except ExpiredError as exc:
            if item.revision < last_archive:
                # Its validation data went into the DSS before the archive timestamp
                # that covers it; nothing newer can be had for an expired certificate.
                skipped.append(item.label)
                continue
            raise InvalidRequest(
                f"{item.label}: {exc.failure_msg} Nothing protects it: it should have been "
                "extended before its certificate expired"
            ) from None
        except RevokedError as exc:
            # The CRL or OCSP answer that says so is kept in the DSS: it is the evidence
            # a validator weighs against the signature timestamp.
            log.info("%s: certificate revoked: %s", item.label, exc.failure_msg)
            continue
        except KysoError:
            raise
        except Exception as exc:
            raise _as_kyso_error(item.label, exc) from None
        paths.append(path)
    return paths, skipped


async def _path_of(signed_data: cms.SignedData, context: ValidationContext) -> ValidationPath:
    """The validated path of a CMS signer to a trust anchor, revocation checked."""
    info = extract_certificate_info(signed_data)
    validator = CertificateValidator(
        info.signer_cert, intermediate_certs=info.other_certs, validation_context=context
    )
    return await validator.async_validate_path()


async def _tsa_paths(timestamper: TimeStamper, context: ValidationContext) -> list[ValidationPath]:
    """Validation paths of the TSA that will make the archive timestamp, so that its data
    sits in the revision the timestamp covers (pyHanko's "update before timestamp")."""
    try:
        return [path async for path in timestamper.validation_paths(context)]
    except KysoError:
        raise
    except Exception as exc:
        raise _as_kyso_error("the archive timestamp authority", exc) from None


def _as_kyso_error(label: str, exc: Exception) -> KysoError:
    if isinstance(exc, InsufficientRevinfoError):
        return RevocationUnavailable(
            f"{label}: no CRL or OCSP answer could be obtained ({exc.failure_msg}); "
            "try again when the revocation services answer"
        )
    if isinstance(exc, PathBuildingError):
        return InvalidRequest(
            f"{label}: its certificate does not chain to a configured trust anchor ({exc}); "
            "kyso can only gather validation data for certificates it trusts"
        )
    if isinstance(exc, ValidationError):
        return InvalidRequest(f"{label}: its certificate cannot be validated: {exc.failure_msg}")
    log.warning("%s: validation data could not be gathered: %r", label, exc)
    return InvalidPdf(f"{label}: the signature cannot be processed: {exc}")
