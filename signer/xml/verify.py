"""Verification of the XML Signatures in a record, as the report of SPEC section 5.

Every ``ds:Signature`` element of the document is one signature of the report. Its
structure is read first (:mod:`kyso.signer.xml.inspect`); the cryptography is libxmlsec1's
(python-xmlsec): the key is the signer certificate's, set before verification so that
``KeyInfo`` is never followed, the references are resolved to the elements kyso found (Ids
unique), and only the enveloped-signature transform, the C14N 1.0 forms and SHA-2 digests
are enabled. What the signature covers is then said as it is (:mod:`kyso.signer.xml.coverage`).

Decisions (ETSI EN 319 102-1 names), in this order:

- a structure kyso does not accept (see :mod:`~kyso.signer.xml.inspect`):
  ``TOTAL_FAILED``/``FORMAT_FAILURE``; SHA-1 or MD5: ``INDETERMINATE``/
  ``CRYPTO_CONSTRAINTS_FAILURE``; no certificate, or none that the signed
  ``SigningCertificateV2`` names: ``INDETERMINATE``/``NO_SIGNING_CERTIFICATE_FOUND``;
- libxmlsec1 rejects the signature: ``TOTAL_FAILED``/``HASH_FAILURE`` when the signature
  value is right for the ``SignedInfo`` (so a reference's digest is not: the content
  changed), else ``SIG_CRYPTO_FAILURE``;
- an unsigned look-alike of a signed element (signature wrapping):
  ``TOTAL_FAILED``/``FORMAT_FAILURE``;
- a ``SignatureTimeStamp`` that cannot be read: ``TOTAL_FAILED``/``FORMAT_FAILURE``;
- then the chain, revocation and timestamp (:func:`~kyso.signer.verify.common.judge_signer`).

``document_sha256`` is the SHA-256 of the bytes received, and ``registered`` is found only
when kyso's log holds this exact file (the SHA-256 of a signed output it returned, as for a
PDF): a record changed after signing, or signed elsewhere, is never shown as logged. ``id``
is the SHA-256 of the signature value (its bytes, not their base64). ``field`` and
``modifications`` are ``null``; ``coverage`` is ``ENTIRE_FILE`` or ``PARTIAL`` (and then
``message`` says what is covered).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import replace
from datetime import datetime

import xmlsec
from asn1crypto import cms, x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus

from kyso.formats import ecdsa_raw_to_der
from kyso.signer.verify import report as r
from kyso.signer.verify.common import (
    KnownData,
    Verdict,
    assess_signer,
    chain_names,
    failed,
    judge_signer,
)
from kyso.signer.verify.common import validation_context as make_context
from kyso.signer.verify.report import (
    Registered,
    Report,
    SignatureReport,
    SignerInfo,
    TimestampInfo,
    VerifySettings,
)
from kyso.signer.xml import dsig
from kyso.signer.xml.coverage import assess_coverage
from kyso.signer.xml.dsig import ds, xades
from kyso.signer.xml.inspect import (
    Problem,
    SignatureParts,
    check_key_size,
    ids_of,
    read_signature,
    signing_certificate,
    signing_time,
)
from kyso.signer.xml.parse import check_libxml2, parse_xml

__all__ = ["async_verify_xml", "verify_xml"]

_REFERENCE_TRANSFORMS = (
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformInclC14N,
    xmlsec.constants.TransformInclC14NWithComments,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformSha384,
    xmlsec.constants.TransformSha512,
)
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


def verify_xml(data: bytes, settings: VerifySettings, registered: Registered | None = None) -> Report:
    """Verify an XML record; see :func:`async_verify_xml`.

    Runs its own event loop: do not call it from a coroutine (use ``async_verify_xml``)."""
    return asyncio.run(async_verify_xml(data, settings, registered))


async def async_verify_xml(
    data: bytes, settings: VerifySettings, registered: Registered | None = None
) -> Report:
    """The validation report of every XML Signature in ``data`` (hostile or malformed XML:
    :class:`~kyso.errors.InvalidXml`)."""
    settings = settings.for_one_run()  # one allowance of fetches for the whole document
    check_libxml2()
    tree = parse_xml(data)
    ids = ids_of(tree)
    document_sha256 = hashlib.sha256(data).hexdigest()
    # kyso signs only records without a signature, so a file it returned holds one: its own.
    logged = registered([document_sha256]) if registered is not None else None
    reports = []
    for element in list(tree.getroot().iter(ds("Signature"))):
        report = await _verify_one(element, tree, ids, settings)
        reports.append(replace(report, registered=logged) if logged else report)
    return Report(document_sha256, tuple(reports))


def _unreadable(element: etree._Element, problem: Problem, signer: x509.Certificate | None) -> SignatureReport:
    value = "".join((element.findtext(ds("SignatureValue")) or "").split())
    try:
        ident = hashlib.sha256(base64.b64decode(value, validate=True)).hexdigest()
    except (binascii.Error, ValueError):
        ident = ""
    return SignatureReport(
        id=ident, field=None, indication=problem.indication, sub_indication=problem.sub_indication,
        intact=False, trusted=False, signer=SignerInfo.of(signer) if signer else None,
        signing_time=None, timestamp=None, level="B-B", coverage="PARTIAL", modifications=None,
        revocation="unknown", message=problem.message,
    )  # fmt: skip


async def _verify_one(
    element: etree._Element, tree: etree._ElementTree, ids: dict, settings: VerifySettings
) -> SignatureReport:
    cert: x509.Certificate | None = None
    try:
        parts = read_signature(element, tree, ids)
        cert = signing_certificate(parts)
        check_key_size(cert)
    except Problem as problem:
        return _unreadable(element, problem, cert)
    verdict = _crypto_verdict(parts, cert)
    intact = verdict is None
    coverage = assess_coverage(parts, tree)
    if verdict is None and coverage.wrapping:
        verdict = failed(r.FORMAT_FAILURE, coverage.wrapping)
    timestamp, ts_problem = await _timestamp(parts, settings)
    if verdict is None and ts_problem:
        verdict = failed(r.FORMAT_FAILURE, ts_problem)
    claimed = signing_time(parts)
    others = [c for c in parts.certificates if c.dump() != cert.dump()]
    known = KnownData.of(settings, others)
    chain = await assess_signer(cert, settings, known, timestamp)
    if verdict is None:
        verdict = judge_signer(chain, cert, timestamp, claimed, settings)
    message = verdict.message
    if coverage.message and verdict.indication != r.TOTAL_FAILED:
        message = f"{message}; {coverage.message}" if message else coverage.message
    proven = timestamp.time if timestamp and timestamp.valid else None
    return SignatureReport(
        id=parts.id, field=None, indication=verdict.indication, sub_indication=verdict.sub_indication,
        intact=intact, trusted=chain.trusted, signer=SignerInfo.of(cert), signing_time=proven or claimed,
        timestamp=timestamp, level="B-T" if parts.timestamps else "B-B", coverage=coverage.coverage,
        modifications=None, revocation=chain.revocation, message=message,
        chain=chain_names(chain, cert, known.certs, settings.trust_roots),
    )  # fmt: skip


def _crypto_verdict(parts: SignatureParts, cert: x509.Certificate) -> Verdict | None:
    """libxmlsec1's verdict on the signature with the signer certificate's key; ``None``
    when it verifies."""
    ctx = xmlsec.SignatureContext()
    try:
        ctx.key = xmlsec.Key.from_memory(cert.dump(), xmlsec.constants.KeyDataFormatCertDer)
    except xmlsec.Error:
        return failed(r.FORMAT_FAILURE, "the signer certificate's key cannot be used for XML signatures")
    for transform in _REFERENCE_TRANSFORMS:
        ctx.enable_reference_transform(transform)
    for ref in parts.references:
        if not ref.whole_document:
            attribute = next(a for a in ("Id", "ID", "id") if ref.target.get(a) == ref.uri[1:])
            ctx.register_id(ref.target, attribute)
    try:
        ctx.verify(parts.element)
        return None
    except xmlsec.Error:
        pass
    if _value_verifies(parts, cert):
        return failed(r.HASH_FAILURE, "the document (or a signed element) changed after signing: a digest does not match")
    return failed(r.SIG_CRYPTO_FAILURE, "the signature value does not verify with the signer certificate's key")


def _value_verifies(parts: SignatureParts, cert: x509.Certificate) -> bool:
    """Whether the signature value is right for the canonical ``SignedInfo`` (to tell a
    changed document from a broken signature once libxmlsec1 has refused it)."""
    data = dsig.canonicalize(parts.signed_info, parts.c14n_method)
    method = parts.signature_method
    algorithm = _HASHES[next(h for h in _HASHES if h in method)]()
    key = serialization.load_der_public_key(cert.public_key.dump())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(ecdsa_raw_to_der(parts.value), data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = padding.PKCS1v15()
            if "MGF1" in method:
                pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            key.verify(parts.value, data, pad, algorithm)
        else:
            return False
    except (CryptoInvalidSignature, ValueError):
        return False
    return True


async def _timestamp(parts: SignatureParts, settings: VerifySettings) -> tuple[TimestampInfo | None, str | None]:
    """The first ``SignatureTimeStamp``, and what is wrong with it if it cannot be read."""
    if not parts.timestamps:
        return None, None
    stamp = parts.timestamps[0]
    method = stamp.find(ds("CanonicalizationMethod"))
    algorithm = method.get("Algorithm") if method is not None else dsig.C14N
    if algorithm not in dsig.CANONICALIZATIONS:
        return None, f"the SignatureTimeStamp canonicalization {algorithm} is not accepted"
    try:
        token_der = base64.b64decode("".join((stamp.findtext(xades("EncapsulatedTimeStamp")) or "").split()), validate=True)
        signed_data = cms.ContentInfo.load(token_der)["content"]
    except (binascii.Error, ValueError) as exc:
        return None, f"the SignatureTimeStamp is not a base64 RFC 3161 token: {exc}"
    covered = dsig.canonicalize(parts.element.find(ds("SignatureValue")), algorithm)
    context = make_context(settings, KnownData.of(settings), require_revocation=False)
    try:
        kwargs = await validate_tst_signed_data(signed_data, context, lambda algo: hashlib.new(algo, covered).digest())
        status = TimestampSignatureStatus(**kwargs)
    except Exception as exc:  # asn1crypto and pyHanko raise many kinds on a hostile token
        return None, f"the SignatureTimeStamp is not a valid RFC 3161 token: {exc}"
    finally:
        await context.aclose()
    valid = bool(status.intact and status.valid and status.trusted)
    time: datetime = status.timestamp
    return TimestampInfo(time, status.signing_cert.subject.human_friendly, valid), None
