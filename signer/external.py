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

pyHanko's ExternalSigner does not check the signature it is given: :func:`check_signature`
must pass before anything is finished. :func:`check_signer_chain` refuses, before anything is
prepared, a signer certificate that cannot sign now.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from asn1crypto import algos, cms, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import ExpiredError, NotYetValidError, PathError, ValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from kyso.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    InvalidPdf,
    InvalidRequest,
    InvalidSignature,
)
from kyso.keystore.base import KeyInfo, Scheme
from kyso.signer.jades import PreparedJws, SignedJson, finish_jws, jws_signature_value, prepare_jws
from kyso.signer.pades import SignedPdf, free_field_name, load_pdf
from kyso.signer.timestamp.client import TimestampClient

# Room kept in /Contents for the signature timestamp token (DER bytes): a token with its
# TSA certificate and two RSA-4096 issuers is about 8 KB.
TIMESTAMP_ALLOWANCE = 16384
# Room for the signature value in the estimate (RSA-4096; DER ECDSA is far smaller).
SIGNATURE_ALLOWANCE = 512


@dataclass(frozen=True)
class Algorithm:
    """A signature algorithm a clinician's token is asked to use, by its session name."""

    name: str
    scheme: Scheme  # the keystore's name, as kyso.keystore.pkcs11.sign_many takes it
    jws_alg: str


PKCS1V15 = Algorithm("RSASSA-PKCS1-v1_5-SHA256", "pkcs1v15", "RS256")
PSS = Algorithm("RSASSA-PSS-SHA256", "pss", "PS256")  # MGF1-SHA-256, salt length 32
ECDSA = Algorithm("ECDSA-SHA256", "ecdsa", "ES256")  # raw r||s or DER, P-256
ALGORITHMS = {a.name: a for a in (PKCS1V15, PSS, ECDSA)}


def algorithm_for(certificate: x509.Certificate, rsa_scheme: str = "pkcs1v15") -> Algorithm:
    """The algorithm for the certificate's key: RSA with ``rsa_scheme``, or ECDSA on P-256."""
    public_key = certificate.public_key
    if public_key.algorithm == "rsa":
        if rsa_scheme not in ("pkcs1v15", "pss"):
            raise InvalidRequest(f"rsa_scheme must be 'pkcs1v15' or 'pss', not {rsa_scheme!r}")
        return PKCS1V15 if rsa_scheme == "pkcs1v15" else PSS
    if public_key.algorithm == "ec" and public_key.curve[1] == "secp256r1":
        return ECDSA
    raise InvalidRequest("the signer's key must be RSA or ECDSA P-256")


def _cms_mechanism(algorithm: Algorithm) -> algos.SignedDigestAlgorithm:
    if algorithm is PSS:
        params = algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": "sha256"},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                "salt_length": 32,
            }
        )
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    name = "sha256_ecdsa" if algorithm is ECDSA else "sha256_rsa"
    return algos.SignedDigestAlgorithm({"algorithm": name})


def check_signature(
    certificate: x509.Certificate, data: bytes, signature: bytes, algorithm: Algorithm
) -> bytes:
    """Verify ``signature`` over ``data`` with the certificate's public key; return it as CMS
    carries it (ECDSA as DER, whether it came raw ``r||s`` or DER). Raises InvalidSignature."""
    public_key = serialization.load_der_public_key(certificate.public_key.dump())
    try:
        if algorithm is ECDSA:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            der = _ecdsa_der(signature, (public_key.curve.key_size + 7) // 8)
            public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return der
        assert isinstance(public_key, rsa.RSAPublicKey)
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if algorithm is PSS:
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public_key.verify(signature, data, pad, hashes.SHA256())
        return signature
    except (CryptoInvalidSignature, ValueError):
        raise InvalidSignature(
            f"the signature is not a valid {algorithm.name} signature by the session's certificate"
        ) from None


def _ecdsa_der(signature: bytes, size: int) -> bytes:
    """An ECDSA value as canonical DER: raw ``r||s`` (as PKCS#11 returns it) or DER."""
    if len(signature) == 2 * size:
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    else:
        r, s = decode_dss_signature(signature)  # ValueError if it is not DER either
    return encode_dss_signature(r, s)


# -- the signer's certificate ---------------------------------------------------

KEY_COLUMN_MAX = 200  # the record registry's key column


def check_signer_chain(
    leaf: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    trust_roots: Sequence[bytes],
    moment: datetime | None = None,
) -> None:
    """Refuse a signer certificate that is not valid at ``moment`` (now), not meant for
    signing, or not leading through ``issuers`` to one of ``trust_roots`` (DER). Revocation
    is the caller's to check."""
    moment = moment or datetime.now(UTC)
    who = signer_label(leaf)
    if moment < leaf.not_valid_before:
        raise CertificateNotYetValid(
            f"the certificate of {who} is valid only from {leaf.not_valid_before:%Y-%m-%d}"
        )
    if moment > leaf.not_valid_after:
        raise CertificateExpired(
            f"the certificate of {who} expired on {leaf.not_valid_after:%Y-%m-%d}"
        )
    usages = set(leaf.key_usage_value.native) if leaf.key_usage_value is not None else None
    if usages is not None and not usages & {"digital_signature", "non_repudiation"}:
        raise InvalidRequest(
            f"the certificate of {who} is not for signing (key usage {sorted(usages)})"
        )
    # Roots come as DER and are parsed here: asn1crypto objects parse lazily and are not
    # thread-safe, so certificates shared between request threads are never handed over.
    roots = [x509.Certificate.load(der) for der in trust_roots]
    context = ValidationContext(
        trust_roots=roots, other_certs=list(issuers), moment=moment, allow_fetching=False
    )
    validator = CertificateValidator(
        leaf, intermediate_certs=list(issuers), validation_context=context
    )
    try:
        asyncio.run(validator.async_validate_path())
    except ExpiredError:
        raise CertificateExpired(f"a certificate in the chain of {who} has expired") from None
    except NotYetValidError:
        raise CertificateNotYetValid(
            f"a certificate in the chain of {who} is not valid yet"
        ) from None
    except (ValidationError, PathError):
        raise InvalidRequest(
            f"the certificate chain of {who} does not lead to a trusted root; send the signer's "
            "certificate first, then its issuing CA certificates"
        ) from None


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
        signature_mechanism=_cms_mechanism(algorithm),
        embed_roots=False,
    )


async def prepare_pdf(
    data: bytes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    algorithm: Algorithm,
    level: str,
    reason: str | None = None,
    location: str | None = None,
) -> PreparedPdf:
    """Write the placeholder of a PAdES ``level`` (B-B or B-T) signature and compute the
    signed attributes the token must sign."""
    data, reader, _ = load_pdf(data)
    field = free_field_name(reader)
    ext = _external_signer(certificate, chain, algorithm, bytes(SIGNATURE_ALLOWANCE))
    estimate = await ext.async_sign(bytes(32), "sha256", dry_run=True, use_pades=True)
    room = len(estimate.dump()) + (TIMESTAMP_ALLOWANCE if level == "B-T" else 0)
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
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
        prepared, _, _ = await pdf_signer.async_digest_doc_for_signing(
            writer, bytes_reserved=2 * room, output=output
        )
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AssertionError) as exc:
        raise InvalidPdf(f"the PDF cannot be prepared for signing: {exc}") from None
    attrs = await ext.signed_attrs(prepared.document_digest, "sha256", use_pades=True)
    return PreparedPdf(
        pdf=output.getvalue(),
        signed_attrs=attrs.dump(),
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
        jws_alg=algorithm.jws_alg,
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
