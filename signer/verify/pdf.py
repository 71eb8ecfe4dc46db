"""Verification of the signatures in a PDF (PAdES), as the report of SPEC section 5.

pyHanko's classic validation (``async_validate_pdf_signature``) gives, per signature, the
integrity of the signed bytes, the signature value, the coverage of the byte range, the
difference analysis of later revisions and the signature timestamp. The signer's chain and
its revocation status are judged by :mod:`kyso.signer.verify.common`, as for JSON. An
expired signer certificate gets a second chance with pyHanko's ``ades_lta_validation`` when
document timestamps cover the signature (B-LTA), then as of its valid signature timestamp
with the DSS's revocation data (B-LT, ETSI EN 319 102-1 5.5).

Decisions, in this order (ETSI EN 319 102-1 names):

- the signed bytes do not match the signed digest: ``TOTAL_FAILED``/``HASH_FAILURE``;
- the signature value does not verify: ``TOTAL_FAILED``/``SIG_CRYPTO_FAILURE``;
- the byte range does not cover its revision (``coverage: PARTIAL``), a later revision
  changes more than form filling, annotations or validation data (``modifications:
  OTHER``), or more than a certification signature's DocMDP allows:
  ``TOTAL_FAILED``/``FORMAT_FAILURE``, as EU DSS reports a failed PDF modification check;
- then the chain, revocation and timestamp (:func:`~kyso.signer.verify.common.judge_signer`).

A signature that pyHanko cannot process at all (broken CMS, unknown SubFilter, ...) is
``TOTAL_FAILED``/``FORMAT_FAILURE`` with a ``message``; hostile input raises nothing but
:class:`~kyso.errors.InvalidPdf` or :class:`~kyso.errors.EncryptedPdf` for the whole file.
Document timestamps are not reported as signatures; a valid one covering a signature's DSS
data makes that signature ``B-LTA``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel

from kyso.errors import InvalidPdf, KysoError
from kyso.signer.bounds import PdfBounds
from kyso.signer.pades import check_pdf_envelope, field_text, open_pdf
from kyso.signer.verify import report as r
from kyso.signer.verify.common import (
    SIGNER_KEY_USAGE,
    KnownData,
    Verdict,
    assess_signer,
    certs_below_anchor,
    chain_names,
    failed,
    judge_signer,
    validation_context,
    weak_algorithm,
)
from kyso.signer.verify.dss import DssData, has_revinfo_for, lt_rescue, lta_rescue, read_dss
from kyso.signer.verify.logged import pdf_registrations, revision_candidates
from kyso.signer.verify.report import (
    Registered,
    Report,
    SignatureReport,
    SignerInfo,
    TimestampInfo,
    VerifySettings,
)

__all__ = ["VerifySettings", "async_verify_pdf", "revision_candidates", "verify_pdf"]

log = logging.getLogger(__name__)

_MODIFICATIONS = {
    ModificationLevel.NONE: "NONE",
    ModificationLevel.LTA_UPDATES: "NONE",  # DSS and document timestamps change nothing signed
    ModificationLevel.FORM_FILLING: "FORM_FILLING",
    ModificationLevel.ANNOTATIONS: "ANNOTATIONS",
}


def verify_pdf(
    data: bytes, settings: VerifySettings, registered: Registered | None = None
) -> Report:
    """Verify every signature of a PDF; see :func:`async_verify_pdf`.

    Runs its own event loop: do not call it from a coroutine (use ``async_verify_pdf``)."""
    return asyncio.run(async_verify_pdf(data, settings, registered))


async def async_verify_pdf(
    data: bytes, settings: VerifySettings, registered: Registered | None = None
) -> Report:
    """The validation report of ``data``. Raises only InvalidPdf and EncryptedPdf.

    ``registered``, when given, looks the file up in kyso's log: only when the log holds the
    whole file is each signature given the entry of its own output
    (:mod:`kyso.signer.verify.logged`)."""
    settings = settings.for_one_run()
    reader = _open(data, settings.pdf_bounds)
    signatures, doc_timestamps = _collect(reader)
    dss = read_dss(reader)
    covering = [await _doc_timestamp(ts, settings) for ts in doc_timestamps]
    reports: list[SignatureReport] = []
    seen_ids: set[str] = set()
    for name, emb in signatures:
        report = await _verify_signature(name, emb, settings, dss, covering)
        reports.append(replace(report, id=_unique(report.id, seen_ids)))
    if registered is not None and reports:
        ends = [_signed_end(emb, len(data)) for _, emb in signatures]
        found = pdf_registrations(data, ends, registered)
        reports = [replace(rep, registered=entry) for rep, entry in zip(reports, found, strict=True)]
    return Report(hashlib.sha256(data).hexdigest(), tuple(reports))


def _open(data: bytes, bounds: PdfBounds) -> PdfFileReader:
    """Parse the PDF as :func:`kyso.signer.pades.open_pdf` does; anything else its parser
    raises on a damaged file (zlib errors, ...) is an InvalidPdf too."""
    check_pdf_envelope(data)
    try:
        return open_pdf(data, bounds)
    except KysoError:
        raise
    except Exception as exc:
        raise InvalidPdf(f"the PDF cannot be read: {exc.__class__.__name__}: {exc}") from None


_Found = tuple[str, EmbeddedPdfSignature | Exception]


def _collect(reader: PdfFileReader) -> tuple[list[_Found], list[EmbeddedPdfSignature]]:
    """The filled signature fields, ``(name, EmbeddedPdfSignature or the error that kept
    it from being read)`` in revision order, and the document timestamps apart."""
    signatures: list[_Found] = []
    timestamps: list[EmbeddedPdfSignature] = []
    try:
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:  # the AcroForm of a hostile file can break the reader anywhere
        raise InvalidPdf(f"the PDF's signature fields cannot be read: {exc}") from None
    for raw_name, sig_obj, sig_field in fields:
        name = field_text(raw_name)
        is_timestamp = False
        try:
            is_timestamp = sig_obj.get_object().get("/Type") == "/DocTimeStamp"
            emb = EmbeddedPdfSignature(reader, sig_field, name)
        except Exception as exc:  # a broken document timestamp only covers nothing
            log.info("unreadable signature %r: %s", name, exc)
            if not is_timestamp:
                signatures.append((name, exc))
            continue
        if is_timestamp:
            timestamps.append(emb)
        else:
            signatures.append((name, emb))
    signatures.sort(
        key=lambda item: (
            item[1].signed_revision if isinstance(item[1], EmbeddedPdfSignature) else -1
        )
    )
    return signatures, timestamps


@dataclass(frozen=True)
class _DocTimestamp:
    revision: int
    valid: bool
    dss: DssData  # the DSS as it stood in the revision the timestamp covers


async def _doc_timestamp(emb: EmbeddedPdfSignature, settings: VerifySettings) -> _DocTimestamp:
    """Whether a document timestamp is sound and trusted, and the DSS it covers."""
    context = validation_context(
        settings, KnownData.of(settings), require_revocation=False
    )
    try:
        status = await async_validate_pdf_timestamp(emb, validation_context=context)
        valid = bool(status.intact and status.valid and status.trusted)
        covered = read_dss(emb.reader.get_historical_resolver(emb.signed_revision))
    except Exception as exc:  # a broken timestamp only covers nothing
        log.info("document timestamp %r not usable: %s", emb.field_name, exc)
        return _DocTimestamp(-1, False, DssData())
    finally:
        await context.aclose()
    return _DocTimestamp(emb.signed_revision, valid, covered)


async def _verify_signature(
    name: str,
    emb: EmbeddedPdfSignature | Exception,
    settings: VerifySettings,
    dss: DssData,
    doc_timestamps: list[_DocTimestamp],
) -> SignatureReport:
    """The report on one signature; what keeps it from being validated is a FORMAT_FAILURE
    (or the sub-indication pyHanko names), never an exception."""
    if isinstance(emb, Exception):
        return _unreadable(name, None, f"the signature cannot be read: {emb}")
    try:
        return await _validate(name, emb, settings, dss, doc_timestamps)
    except SignatureValidationError as exc:
        named = exc.ades_subindication
        if named is None or named.status == AdESStatus.FAILED:
            sub = named.standard_name if named else r.FORMAT_FAILURE
            return _unreadable(name, _signer_or_none(emb), exc.failure_message, sub)
        return _unreadable(
            name, _signer_or_none(emb), exc.failure_message, named.standard_name, r.INDETERMINATE
        )
    except Exception as exc:  # parsers of hostile CMS and certificates raise many kinds
        log.info("signature %r cannot be validated: %r", name, exc)
        return _unreadable(name, _signer_or_none(emb), f"the signature cannot be validated: {exc}")


async def _validate(
    name: str,
    emb: EmbeddedPdfSignature,
    settings: VerifySettings,
    dss: DssData,
    doc_timestamps: list[_DocTimestamp],
) -> SignatureReport:
    known = _known(emb, settings, dss)
    context = validation_context(settings, known, require_revocation=False)
    try:
        status = await async_validate_pdf_signature(
            emb, signer_validation_context=context, key_usage_settings=SIGNER_KEY_USAGE
        )
    finally:
        await context.aclose()
    return await _report(name, emb, status, settings, known, dss, doc_timestamps)


def _known(emb: EmbeddedPdfSignature, settings: VerifySettings, dss: DssData) -> KnownData:
    try:
        embedded = list(emb.other_embedded_certs)
    except Exception:  # a broken certificate set is reported by the validation itself
        embedded = []
    return KnownData.of(settings, (*embedded, *dss.certs), dss.crls, dss.ocsps)


async def _report(
    name: str,
    emb: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    settings: VerifySettings,
    known: KnownData,
    dss: DssData,
    doc_timestamps: list[_DocTimestamp],
) -> SignatureReport:
    """Turn pyHanko's status and kyso's chain assessment into the report."""
    cert: x509.Certificate = status.signing_cert
    timestamp = _timestamp(status)
    coverage = _coverage(status.coverage)
    analysed = status.modification_level  # None: not analysed, so nothing is confirmed
    modifications = _MODIFICATIONS.get(analysed, "OTHER") if analysed is not None else "OTHER"
    chain = await assess_signer(cert, settings, known, timestamp)
    later = [ts for ts in doc_timestamps if ts.valid and ts.revision > emb.signed_revision]
    if chain.problem == r.OUT_OF_BOUNDS_NO_POE and later:
        chain = await lta_rescue(emb, settings, SIGNER_KEY_USAGE) or chain
    if chain.problem == r.OUT_OF_BOUNDS_NO_POE:
        chain = await lt_rescue(cert, settings, dss, known.certs, timestamp) or chain
    verdict = _integrity_verdict(status, coverage, modifications) or weak_algorithm(
        cert, status.md_algorithm, status.pkcs7_signature_mechanism
    )
    if verdict is None:
        verdict = judge_signer(chain, cert, timestamp, status.signer_reported_dt, settings)
    proven = timestamp.time if timestamp is not None and timestamp.valid else None
    return SignatureReport(
        id=name,
        field=name,
        indication=verdict.indication,
        sub_indication=verdict.sub_indication,
        intact=bool(status.intact),
        trusted=chain.trusted,
        signer=SignerInfo.of(cert),
        signing_time=proven or status.signer_reported_dt,
        timestamp=timestamp,
        level=_level(timestamp, certs_below_anchor(chain, cert), dss, later),
        coverage=coverage,
        modifications=modifications,
        revocation=chain.revocation,
        message=verdict.message,
        chain=chain_names(chain, cert, known.certs, settings.trust_roots),
    )


def _integrity_verdict(
    status: PdfSignatureStatus, coverage: str, modifications: str
) -> Verdict | None:
    """A failure of the signed bytes, the signature value or what changed after signing."""
    if not status.intact:
        return failed(r.HASH_FAILURE, "the signed bytes of the PDF do not match the signature")
    if not status.valid:
        return failed(
            r.SIG_CRYPTO_FAILURE, "the signature value does not verify with the signer's key"
        )
    if coverage == "PARTIAL":
        return failed(
            r.FORMAT_FAILURE, "the signature's byte range does not cover its whole revision"
        )
    if modifications == "OTHER":
        why = status.diff_result if isinstance(status.diff_result, Exception) else None
        detail = f": {why}" if why else ""
        return failed(r.FORMAT_FAILURE, f"the document was changed after signing{detail}")
    if status.docmdp_ok is False:
        return failed(
            r.FORMAT_FAILURE,
            "the changes after signing exceed what the certification (DocMDP) allows",
        )
    return None


def _timestamp(status: PdfSignatureStatus) -> TimestampInfo | None:
    ts = status.timestamp_validity
    if ts is None:
        return None
    valid = bool(ts.intact and ts.valid and ts.trusted)
    return TimestampInfo(time=ts.timestamp, tsa=ts.signing_cert.subject.human_friendly, valid=valid)


def _coverage(level: SignatureCoverageLevel | None) -> str:
    if level == SignatureCoverageLevel.ENTIRE_FILE:
        return "ENTIRE_FILE"
    if level == SignatureCoverageLevel.ENTIRE_REVISION:
        return "ENTIRE_REVISION"
    return "PARTIAL"


def _level(
    timestamp: TimestampInfo | None,
    chain_certs: Iterable[x509.Certificate],
    dss: DssData,
    later: list[_DocTimestamp],
) -> str:
    """B-B without a signature timestamp; B-T with one; B-LT when the DSS also holds
    revocation data for every certificate of the chain; B-LTA when a valid document
    timestamp covers that data."""
    if timestamp is None:
        return "B-B"
    if not has_revinfo_for(dss, chain_certs):
        return "B-T"
    if any(has_revinfo_for(ts.dss, chain_certs) for ts in later):
        return "B-LTA"
    return "B-LT"


def _signer_or_none(emb: EmbeddedPdfSignature) -> SignerInfo | None:
    try:
        return SignerInfo.of(emb.signer_cert)
    except Exception:
        return None


def _unreadable(
    name: str,
    signer: SignerInfo | None,
    message: str,
    sub: str = r.FORMAT_FAILURE,
    indication: str = r.TOTAL_FAILED,
) -> SignatureReport:
    """The report on a signature that could not be validated at all."""
    return SignatureReport(
        id=name, field=name, indication=indication, sub_indication=sub, intact=False, trusted=False,
        signer=signer, signing_time=None, timestamp=None, level="B-B", coverage="PARTIAL",
        modifications="OTHER", revocation="unknown", message=message,
    )  # fmt: skip


def _unique(ident: str, seen: set[str]) -> str:
    n, candidate = 1, ident
    while candidate in seen:
        n += 1
        candidate = f"{ident}#{n}"
    seen.add(candidate)
    return candidate


def _signed_end(emb: EmbeddedPdfSignature | Exception, size: int) -> int:
    """Where the signature's revision ends: the end of its byte range, within the file."""
    if not isinstance(emb, EmbeddedPdfSignature):
        return size
    try:
        start2, length2 = int(emb.byte_range[2]), int(emb.byte_range[3])
    except (IndexError, TypeError, ValueError):
        return size
    return min(max(start2 + length2, 0), size)
