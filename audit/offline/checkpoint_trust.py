"""Is a checkpoint the log's own? Its signature, its timestamp and their certificates, offline.

A checkpoint (SPEC 7) carries what a verifier needs, so nothing is fetched:

- ``signature``: base64 of the log key's signature over the UTF-8 bytes of ``body``
  (SHA-256; RSA PKCS#1 v1.5, or ECDSA as DER or raw ``r||s``), checked with the key of
  the first certificate in ``certificate`` (PEM; further ones are its issuing CAs);
- ``timestamp_token``: base64 of an RFC 3161 token whose message imprint is SHA-256 of the
  signature bytes; its CMS signature is checked against the TSA certificate it carries,
  and its genTime must be the checkpoint's ``time`` (``time`` is outside the signed body,
  the token is what vouches for it);
- with trust anchors (``--trust``: the log key's certificate, or a root it chains to),
  the log key's certificate must chain to one of them and be valid at the genTime, and
  the TSA certificate must chain to one of them and carry the timeStamping usage. The
  paths are validated with pyhanko-certvalidator, without fetching revocation data.

Without anchors only the signatures are checked, against the certificates the checkpoint
carries; the verifier says so, as that proves consistency, not origin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from asn1crypto import cms, pem, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import load_der_x509_certificate
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, ValidationError

from kyso.audit.entry import format_time
from kyso.formats import ecdsa_as_der


class CheckpointTrust:
    """Trust anchors for checkpoint certificates, with the paths already validated cached.

    A path, once validated, holds for every moment inside the validity of all its
    certificates (revocation is not checked offline), so each distinct certificate is
    validated once rather than once per checkpoint.
    """

    def __init__(self, anchors: Iterable[Any] = ()) -> None:
        self.anchors = [_as_asn1(c) for c in anchors]
        self._windows: dict[tuple[bytes, str], tuple[datetime, datetime]] = {}
        # authenticity_problem's answers: (problem, log key subject, TSA subject) by checkpoint.
        self._answers: dict[tuple[Any, ...], tuple[str | None, str, str]] = {}
        # Who signed and who timestamped the checkpoints that passed: the auditor should know.
        self.signers: set[str] = set()
        self.tsas: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.anchors)

    def path_problem(
        self, cert: x509.Certificate, others: list[x509.Certificate], moment: datetime, usage: str
    ) -> str | None:
        """Why ``cert`` does not chain to an anchor for ``usage`` at ``moment``; None if it does."""
        key = (cert.sha256, usage)
        window = self._windows.get(key)
        if window is not None and window[0] <= moment <= window[1]:
            return None
        context = ValidationContext(
            trust_roots=self.anchors,
            other_certs=others,
            allow_fetching=False,
            revocation_mode="soft-fail",
            moment=moment,
        )
        validator = CertificateValidator(cert, validation_context=context)
        try:
            if usage == "time_stamping":
                path = asyncio.run(validator.async_validate_usage(set(), {"time_stamping"}))
            else:
                path = asyncio.run(validator.async_validate_usage({"digital_signature"}))
        except PathBuildingError:
            return "does not chain to a --trust certificate"
        except (PathValidationError, ValidationError) as exc:
            return f"is not valid at {format_time(moment)} under the --trust certificates: {exc}"
        certs = list(path.iter_certs(include_root=True))
        self._windows[key] = (
            max(c.not_valid_before for c in certs),
            min(c.not_valid_after for c in certs),
        )
        return None


def authenticity_problem(cp: dict[str, Any], trust: CheckpointTrust) -> str | None:
    """What is wrong with a checkpoint's signature, timestamp or certificates; None if nothing.

    The answer depends only on the members below, so ``trust`` keeps it: the verifier may
    ask ahead, while other processes still read the entries.
    """
    key = tuple(
        repr(cp.get(name))
        for name in ("body", "signature", "certificate", "timestamp_token", "time")
    )
    if (answer := trust._answers.get(key)) is None:
        answer = trust._answers[key] = _authenticity(cp, trust)
    problem, signer, tsa = answer
    if problem is None:
        trust.signers.add(signer)
        trust.tsas.add(tsa)
    return problem


def _authenticity(cp: dict[str, Any], trust: CheckpointTrust) -> tuple[str | None, str, str]:
    """(problem or None, the log key certificate's subject, the TSA certificate's subject)."""
    problem = _authenticity_problem(cp, trust)
    return (problem, "", "") if isinstance(problem, str) else (None, *problem)


def _authenticity_problem(cp: dict[str, Any], trust: CheckpointTrust) -> str | tuple[str, str]:
    """The problem, or the subjects of the log key and the TSA certificates if none."""
    try:
        signature = _b64("signature", cp.get("signature"))
        certs = list(_pem_certificates(cp.get("certificate")))
        token_der = _b64("timestamp_token", cp.get("timestamp_token"))
    except ValueError as exc:
        return str(exc)
    leaf = certs[0]
    if not _signature_holds(leaf, signature, cp["body"].encode("utf-8")):
        return "its signature does not verify with the log key certificate it carries"
    try:
        token, gen_time, tsa_cert, token_certs = _checked_token(token_der, signature)
    except ValueError as exc:
        return f"its timestamp_token {exc}"
    if cp.get("time") != format_time(gen_time):
        return f"its time {cp.get('time')!r} is not the genTime of its timestamp ({format_time(gen_time)})"
    if not leaf.not_valid_before <= gen_time <= leaf.not_valid_after:
        return f"the log key certificate was not valid at {format_time(gen_time)}, when it was timestamped"
    if trust:
        others = certs[1:] + token_certs
        if problem := trust.path_problem(leaf, others, gen_time, "signing"):
            return f"the log key certificate ({leaf.subject.human_friendly}) {problem}"
        if problem := trust.path_problem(tsa_cert, others, gen_time, "time_stamping"):
            return f"the TSA certificate ({tsa_cert.subject.human_friendly}) {problem}"
    return leaf.subject.human_friendly, tsa_cert.subject.human_friendly


def _checked_token(
    token_der: bytes, signature: bytes
) -> tuple[cms.ContentInfo, datetime, x509.Certificate, list[x509.Certificate]]:
    """Parse the token; check its imprint and CMS signature; (token, genTime, TSA cert, certs)."""
    from kyso.signer.timestamp.client import TokenMismatch, check_token_signature

    try:
        token = cms.ContentInfo.load(token_der)
        signed = token["content"]
        if token["content_type"].native != "signed_data" or (
            signed["encap_content_info"]["content_type"].native != "tst_info"
        ):
            raise ValueError("is not an RFC 3161 timestamp token")
        info = signed["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256":
            raise ValueError("does not use SHA-256 for its message imprint")
        if imprint["hashed_message"].native != hashlib.sha256(signature).digest():
            raise ValueError("is not over this signature (message imprint differs)")
        tsa_cert = check_token_signature(token)
        gen_time = info["gen_time"].native
        certs = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
    except TokenMismatch as exc:
        raise ValueError(f"does not verify: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"is malformed ({exc.__class__.__name__})") from None
    except ValueError as exc:
        if str(exc).startswith(("is ", "does ")):
            raise
        raise ValueError(f"is malformed ({exc})") from None
    return token, gen_time, tsa_cert, certs


def _signature_holds(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``cert``'s key's SHA-256 signature of ``data``."""
    public_key = load_der_x509_certificate(cert.dump()).public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(ecdsa_as_der(signature, (public_key.curve.key_size + 7) // 8), data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _b64(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"its {name} is missing (the checkpoint is not signed and timestamped)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"its {name} is not base64") from None


@functools.lru_cache(maxsize=32)  # every checkpoint of a log carries the same certificates
def _pem_certificates(value: Any) -> tuple[x509.Certificate, ...]:
    """The certificates of the ``certificate`` member: the log key's first."""
    if not isinstance(value, str) or not value:
        raise ValueError("its certificate is missing (the checkpoint is not signed)")
    data = value.encode("ascii", "replace")
    try:
        certs = [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
        for cert in certs:
            cert.native  # noqa: B018 - parse now, so a broken certificate fails here
    except (ValueError, TypeError):
        raise ValueError("its certificate is not PEM") from None
    if not certs:
        raise ValueError("its certificate is not PEM")
    return tuple(certs)


def _as_asn1(cert: Any) -> x509.Certificate:
    """An asn1crypto certificate from one of asn1crypto or cryptography."""
    if isinstance(cert, x509.Certificate):
        return cert
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.Certificate.load(cert.public_bytes(Encoding.DER))
