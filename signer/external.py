"""Two-step signing: prepare here, sign on a clinician's token elsewhere, finish here.

PDF (pyHanko's "interrupted signing"): preparing writes the signature placeholder into an
incremental update and computes the CMS signed attributes; the token signs their DER. What
is kept between the steps is plain data that survives storage: the prepared PDF, the signed
attributes (DER), the document digest and the two numbers of the reserved ``/Contents``
region. pyHanko's post-sign objects are never kept (asn1crypto objects break when unpickled).
Finishing wraps the returned signature in CMS, adds the signature timestamp for ``B-T``,
and writes the CMS into the placeholder.

JSON: the data to sign is the JWS signing input ``ASCII(protected) '.' payload``, with the
clinician's chain in ``x5c``; finishing assembles the flattened JWS (and its ``sigTst``).

pyHanko's ExternalSigner does not check the signature it is given:
:func:`kyso.signer.algorithms.check_signature` must pass before anything is finished, and
:func:`kyso.trust.policy.check_signer_path` before anything is prepared.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, x509
from cryptography import x509 as cx509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from kyso.errors import (
    InvalidPdf,
)
from kyso.keystore.base import KeyInfo
from kyso.signer.algorithms import Algorithm, cms_mechanism
from kyso.signer.bounds import DEFAULT_BOUNDS, PdfBounds
from kyso.signer.jades import PreparedJws, SignedJson, finish_jws, jws_signature_value, prepare_jws
from kyso.signer.pades import SignedPdf, free_field_name, load_pdf
from kyso.signer.timestamp.client import TimestampClient

# Room kept in /Contents for the signature timestamp token (DER bytes): a token with its
# TSA certificate and two RSA-4096 issuers is about 8 KB.
TIMESTAMP_ALLOWANCE = 16384
# Room for the signature value in the estimate (RSA-4096; DER ECDSA is far smaller).
SIGNATURE_ALLOWANCE = 512


# -- the signer's certificate ---------------------------------------------------

KEY_COLUMN_MAX = 200  # the record registry's key column


def signer_label(certificate: x509.Certificate) -> str:
    """The certificate's subject as RFC 4514 text (``CN=...,O=...``), or ``sha256:<hex>`` of
    the certificate when the subject is too long for the registry's key column."""
    subject = cx509.load_der_x509_certificate(certificate.dump()).subject.rfc4514_string()
    if len(subject) <= KEY_COLUMN_MAX:
        return subject
    return f"sha256:{hashlib.sha256(certificate.dump()).hexdigest()}"


def signer_kid(certificate: x509.Certificate) -> str:
    """The JWS ``kid`` of a clinician's signature: the certificate's common name."""
    names = certificate.subject.native
    common_name = names.get("common_name") if isinstance(names, dict) else None
    if isinstance(common_name, list):
        common_name = common_name[0] if common_name else None
    return common_name or "clinician"


# -- PDF ---------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedPdf:
    """A PDF ready for its signature: what the token signs and where the CMS goes."""

    pdf: bytes  # the document with the empty signature placeholder
    signed_attrs: bytes  # DER of the CMS signed attributes: the data to sign
    document_digest: bytes  # SHA-256 over the /ByteRange
    region: tuple[int, int]  # start and end of the reserved /Contents region
    field: str

    def to_state(self) -> dict[str, Any]:
        return {
            "pdf": _b64(self.pdf),
            "signed_attrs": _b64(self.signed_attrs),
            "document_digest": _b64(self.document_digest),
            "region": list(self.region),
            "field": self.field,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PreparedPdf:
        start, end = state["region"]
        return cls(
            pdf=_unb64(state["pdf"]),
            signed_attrs=_unb64(state["signed_attrs"]),
            document_digest=_unb64(state["document_digest"]),
            region=(int(start), int(end)),
            field=state["field"],
        )


def _external_signer(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    algorithm: Algorithm,
    value: bytes,
) -> signers.ExternalSigner:
    return signers.ExternalSigner(
        signing_cert=certificate,
        # pyHanko adds the signing certificate itself; listing it twice makes NSS reject the CMS.
        cert_registry=SimpleCertificateStore.from_certs(
            [c for c in chain if c.self_signed == "no"]
        ),
        signature_value=value,
        signature_mechanism=cms_mechanism(algorithm),
        embed_roots=False,
    )


class PdfPreparation:
    """What preparing PDFs for one signer computes once, however many PDFs a session holds:
    the room the CMS needs (a dry run of pyHanko's signer, about 9 ms) and the signed
    attributes, of which only the document digest differs between documents (pyHanko builds
    them in about 6 ms; a copy with another digest costs a fraction of one)."""

    def __init__(
        self,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        algorithm: Algorithm,
        level: str,
    ) -> None:
        self.signer = _external_signer(certificate, chain, algorithm, bytes(SIGNATURE_ALLOWANCE))
        self.level = level
        self._room: int | None = None
        self._attrs: cms.CMSAttributes | None = None

    async def room(self) -> int:
        if self._room is None:
            estimate = await self.signer.async_sign(bytes(32), "sha256", dry_run=True, use_pades=True)
            self._room = len(estimate.dump()) + (TIMESTAMP_ALLOWANCE if self.level == "B-T" else 0)
        return self._room

    async def signed_attrs(self, document_digest: bytes) -> bytes:
        """DER of the CMS signed attributes over ``document_digest`` (PAdES: content type,
        message digest, signing certificate v2; no signing time)."""
        if self._attrs is None:
            made = await self.signer.signed_attrs(document_digest, "sha256", use_pades=True)
            der = made.dump()
            self._attrs = cms.CMSAttributes.load(der)  # parsed: its parts keep their bytes
            return der
        digest = cms.CMSAttribute({"type": "message_digest", "values": [document_digest]})
        return cms.CMSAttributes(
            [digest if a["type"].native == "message_digest" else a for a in self._attrs]
        ).dump()


async def prepare_pdf(
    data: bytes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    algorithm: Algorithm,
    level: str,
    reason: str | None = None,
    location: str | None = None,
    bounds: PdfBounds = DEFAULT_BOUNDS,
    preparation: PdfPreparation | None = None,
) -> PreparedPdf:
    """Write the placeholder of a PAdES ``level`` (B-B or B-T) signature and compute the
    signed attributes the token must sign. A ``preparation`` for the same signer, algorithm
    and level is shared by the PDFs of one session."""
    data, reader, _ = load_pdf(data, bounds=bounds)
    field = free_field_name(reader)
    preparation = preparation or PdfPreparation(certificate, chain, algorithm, level)
    ext = preparation.signer
    room = await preparation.room()
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    pdf_signer = signers.PdfSigner(
        meta, ext, new_field_spec=fields.SigFieldSpec(sig_field_name=field)
    )
    output = BytesIO()
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False, decode_limits=bounds.decode_limits())
        prepared, _, _ = await pdf_signer.async_digest_doc_for_signing(
            writer, bytes_reserved=2 * room, output=output
        )
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AssertionError) as exc:
        raise InvalidPdf(f"the PDF cannot be prepared for signing: {exc}") from None
    return PreparedPdf(
        pdf=output.getvalue(),
        signed_attrs=await preparation.signed_attrs(prepared.document_digest),
        document_digest=prepared.document_digest,
        region=(prepared.reserved_region_start, prepared.reserved_region_end),
        field=field,
    )


async def finish_pdf(
    prepared: PreparedPdf,
    signature: bytes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    algorithm: Algorithm,
    timestamper: TimeStamper | None,
) -> SignedPdf:
    """Embed a checked ``signature`` (ECDSA as DER) of the signed attributes; with a
    timestamper, add the signature timestamp (B-T)."""
    ext = _external_signer(certificate, chain, algorithm, signature)
    signed_attrs = cms.CMSAttributes.load(prepared.signed_attrs)
    signature_cms = await ext.async_sign_prescribed_attributes(
        "sha256", signed_attrs, timestamper=timestamper
    )
    output = BytesIO(prepared.pdf)
    digest = PreparedByteRangeDigest(prepared.document_digest, *prepared.region)
    await PdfTBSDocument.async_finish_signing(output, digest, signature_cms)
    signed = output.getvalue()
    return SignedPdf(pdf=signed, field=prepared.field, sha256=hashlib.sha256(signed).hexdigest())


# -- JSON --------------------------------------------------------------------


def prepare_json(
    payload: Any,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    kid: str,
    algorithm: Algorithm,
    signing_time: datetime | None = None,
) -> PreparedJws:
    """The JWS up to its signature, with the clinician's chain in ``x5c`` (root left out)."""
    info = KeyInfo(
        alias=kid,
        kind="pkcs11",
        certificate=certificate,
        chain=tuple(chain),
        rsa_scheme="pkcs1v15" if algorithm.scheme == "pkcs1v15" else "pss",
    )
    return prepare_jws(payload, info, signing_time)


def finish_json(
    prepared: PreparedJws, signature: bytes, timestamper: TimestampClient | None
) -> SignedJson:
    """The flattened JWS with a checked ``signature`` (ECDSA raw or DER); with a
    timestamper, the JAdES ``sigTst`` (B-T)."""
    value = jws_signature_value(signature, prepared.alg)
    jws = finish_jws(prepared, value, detached=False, timestamper=timestamper)
    return SignedJson(jws=jws, payload_sha256=prepared.payload_sha256)


def prepared_jws_state(prepared: PreparedJws) -> dict[str, str]:
    return {
        "protected": prepared.protected_b64,
        "payload": prepared.payload_b64,
        "payload_sha256": prepared.payload_sha256,
        "alg": prepared.alg,
    }


def prepared_jws_from_state(state: dict[str, str]) -> PreparedJws:
    return PreparedJws(
        protected_b64=state["protected"],
        payload_b64=state["payload"],
        payload_sha256=state["payload_sha256"],
        alg=state["alg"],
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
