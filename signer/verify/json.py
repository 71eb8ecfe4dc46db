"""Verification of a JWS / JAdES signature over a JSON record, as the report of SPEC section 5.

The JWS is the flattened JSON serialization that :mod:`kyso.signer.jades` produces (the
compact form is accepted too). Its signature is verified with joserfc, kyso's JOSE library,
with the public key of ``x5c[0]``; ``sigT`` is registered as an understood critical header.
The chain from ``x5c`` to the trust roots, its revocation status and the verdict are those
of :mod:`kyso.signer.verify.common`; a ``B-T`` signature's ``etsiU`` ``sigTst`` token must
have as message imprint the SHA-256 of the ASCII ``signature`` member and come from a TSA
with the timeStamping usage that chains to a trust root.

Decisions (ETSI EN 319 102-1 names), in this order:

- ``alg`` other than RS256, PS256, ES256, or an unencoded payload: ``TOTAL_FAILED``/
  ``FORMAT_FAILURE``;
- no ``x5c``, or ``x5t#S256`` not the thumbprint of ``x5c[0]``: ``INDETERMINATE``/
  ``NO_SIGNING_CERTIFICATE_FOUND`` (the signing certificate cannot be identified);
- the signature does not verify: ``TOTAL_FAILED``/``SIG_CRYPTO_FAILURE``. A JWS has no
  separate digest of its content, so a changed payload, a changed protected header and a
  corrupted signature value are one and the same failure, and kyso names it for what is
  checked: the signature value;
- a payload sent with an attached JWS that differs from the one inside it:
  ``TOTAL_FAILED``/``HASH_FAILURE``;
- ``sigT`` missing or not ``YYYY-MM-DDThh:mm:ssZ``, or an unreadable ``sigTst``:
  ``TOTAL_FAILED``/``FORMAT_FAILURE``;
- then the chain, revocation and timestamp (:func:`~kyso.signer.verify.common.judge_signer`).

A JWS that is not well-formed (not JSON, not an object, members missing or not base64url,
a protected header that is not a JSON object, ``x5c`` entries that are not certificates) is
refused with :class:`~kyso.errors.InvalidRequest` (or :class:`~kyso.errors.InvalidJson` for
text that is not JSON). ``document_sha256`` is the SHA-256 of the JCS bytes of the payload
(of the raw payload bytes if they are not JSON); ``id`` and the ``registered`` lookup use
the SHA-256 of the ASCII ``signature`` member, as the audit log does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, x509
from joserfc import jws as jose
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.registry import HeaderParameter
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus

from kyso.errors import InvalidJson, InvalidRequest
from kyso.formats import b64url, b64url_decode, canonical_json, parse_json_strict
from kyso.signer.verify import report as r
from kyso.signer.verify.common import (
    KnownData,
    Verdict,
    assess_signer,
    chain_names,
    failed,
    indeterminate,
    judge_signer,
    weak_algorithm,
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

__all__ = ["VerifySettings", "async_verify_json", "verify_json"]

ALGORITHMS = ("RS256", "PS256", "ES256")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SIG_T = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
MAX_HEADER_BYTES = 256 * 1024  # an x5c chain of a few certificates, base64 twice over
MAX_PAYLOAD_BYTES = 128 * 1024 * 1024
MAX_SIGNATURE_BYTES = 4096


def verify_json(
    jws: dict | str, payload: Any, settings: VerifySettings, registered: Registered | None = None
) -> Report:
    """Verify a JWS; see :func:`async_verify_json`.

    Runs its own event loop: do not call it from a coroutine (use ``async_verify_json``)."""
    return asyncio.run(async_verify_json(jws, payload, settings, registered))


async def async_verify_json(
    jws: dict | str, payload: Any, settings: VerifySettings, registered: Registered | None = None
) -> Report:
    """The validation report of a JWS (an object, or its JSON or compact text).

    ``payload`` is the JSON value the JWS signs, required when the JWS is detached (no
    ``payload`` member) and compared with the JWS's own otherwise; ``None`` means none was
    sent. ``registered``, when given, is called with ``[SHA-256 of the signature member]``
    once the signature verifies over the payload (:mod:`kyso.signer.verify.logged`)."""
    settings = settings.for_one_run()
    parsed = parse_jws(jws)
    payload_b64, document_sha256, mismatch = _payload(parsed, payload)
    certs = _x5c(parsed.protected)
    report = await _verify(parsed, payload_b64, mismatch, certs, settings)
    if registered is not None and report.intact:  # the log holds this JWS over this payload
        report = replace(report, registered=registered([report.id]))
    return Report(document_sha256, (report,))


@dataclass(frozen=True)
class ParsedJws:
    protected_b64: str
    protected: dict[str, Any]
    header: dict[str, Any] | None  # the unprotected header
    payload_b64: str | None  # None when detached
    signature_b64: str


def parse_jws(value: dict | str) -> ParsedJws:
    """Check the shape of a flattened (or compact) JWS; refuse what is malformed."""
    if isinstance(value, str):
        value = _jws_object_from_text(value)
    if not isinstance(value, dict):
        raise InvalidRequest(
            "the signature must be a JWS in flattened JSON serialization (an object)"
        )
    if "signatures" in value:
        raise InvalidRequest(
            "general JWS JSON serialization is not supported: send the flattened form"
        )
    protected_b64 = _b64_member(value, "protected")
    signature_b64 = _b64_member(value, "signature")
    payload_b64 = _b64_member(value, "payload") if "payload" in value else None
    header = value.get("header")
    if header is not None and not isinstance(header, dict):
        raise InvalidRequest("the JWS 'header' member must be a JSON object")
    try:
        protected = parse_json_strict(b64url_decode(protected_b64))
    except (InvalidJson, binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"the JWS protected header is not base64url JSON: {exc}") from None
    if not isinstance(protected, dict):
        raise InvalidRequest("the JWS protected header must be a JSON object")
    return ParsedJws(protected_b64, protected, header, payload_b64, signature_b64)


def _jws_object_from_text(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{") and stripped.count(".") == 2:
        protected, payload, signature = stripped.split(".")
        return {
            "protected": protected,
            "signature": signature,
            **({"payload": payload} if payload else {}),
        }
    return parse_json_strict(text)


def _b64_member(value: dict, name: str) -> str:
    member = value.get(name)
    if not isinstance(member, str) or not _B64URL.fullmatch(member) or len(member) % 4 == 1:
        raise InvalidRequest(f"the JWS member {name!r} must be a base64url string")
    if name != "payload" and not member:
        raise InvalidRequest(f"the JWS member {name!r} is empty")
    return member


def _payload(parsed: ParsedJws, payload: Any) -> tuple[str, str, bool]:
    """``(payload segment to verify, document_sha256, payload sent differs from the JWS's)``."""
    if parsed.payload_b64 is None:
        if payload is None:
            raise InvalidRequest(
                "the JWS is detached (it has no payload): send the payload with it"
            )
        jcs = canonical_json(payload)
        return b64url(jcs), hashlib.sha256(jcs).hexdigest(), False
    raw = b64url_decode(parsed.payload_b64)
    try:
        inside = canonical_json(parse_json_strict(raw))
    except InvalidJson:
        inside = None
    document = inside if inside is not None else raw
    mismatch = payload is not None and canonical_json(payload) != inside
    return parsed.payload_b64, hashlib.sha256(document).hexdigest(), mismatch


def _x5c(protected: dict[str, Any]) -> list[x509.Certificate]:
    """The certificates of ``x5c`` (leaf first); empty when there is none."""
    chain = protected.get("x5c")
    if chain is None:
        return []
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise InvalidRequest("x5c must be a list of base64 DER certificates")
    certs = []
    for entry in chain:
        try:
            cert = x509.Certificate.load(base64.b64decode(entry, validate=True))
            _ = cert.native  # asn1crypto parses lazily: find a broken certificate now
        except Exception as exc:  # base64 and asn1crypto raise several kinds on garbage
            raise InvalidRequest(f"an x5c entry is not a base64 DER certificate: {exc}") from None
        certs.append(cert)
    return certs


async def _verify(
    parsed: ParsedJws,
    payload_b64: str,
    mismatch: bool,
    certs: list[x509.Certificate],
    settings: VerifySettings,
) -> SignatureReport:
    cert = certs[0] if certs else None
    verdict = _format_verdict(parsed, cert)
    intact = False
    if verdict is None and cert is not None:
        verdict = _signature_verdict(parsed, payload_b64, cert)
        intact = verdict is None and not mismatch
        if verdict is None and mismatch:
            verdict = failed(r.HASH_FAILURE, "the payload sent is not the payload inside the JWS")
    claimed = _sig_time(parsed.protected)
    timestamp, ts_problem = await _timestamp(parsed, settings)
    if verdict is None and (claimed is None or ts_problem):
        verdict = failed(
            r.FORMAT_FAILURE, ts_problem or "sigT is missing or not YYYY-MM-DDThh:mm:ssZ"
        )
    if verdict is None and cert is not None:
        verdict = weak_algorithm(cert, "sha256")  # RS256, PS256 and ES256 all hash with SHA-256
    known = KnownData.of(settings, certs[1:])
    chain = await assess_signer(cert, settings, known, timestamp) if cert else None
    if verdict is None and chain is not None and cert is not None:
        verdict = judge_signer(chain, cert, timestamp, claimed, settings)
    assert verdict is not None
    proven = timestamp.time if timestamp and timestamp.valid else None
    return SignatureReport(
        id=hashlib.sha256(parsed.signature_b64.encode("ascii")).hexdigest(),
        field=None,
        indication=verdict.indication,
        sub_indication=verdict.sub_indication,
        intact=intact,
        trusted=bool(chain and chain.trusted),
        signer=SignerInfo.of(cert) if cert else None,
        signing_time=proven or claimed,
        timestamp=timestamp,
        level="B-T" if timestamp else "B-B",
        coverage=None,
        modifications=None,
        revocation=chain.revocation if chain else "unknown",
        message=verdict.message,
        chain=chain_names(chain, cert, known.certs, settings.trust_roots) if chain and cert else (),
    )


def _format_verdict(parsed: ParsedJws, cert: x509.Certificate | None) -> Verdict | None:
    """What is wrong with the JWS before its signature can be checked, if anything."""
    alg = parsed.protected.get("alg")
    if alg not in ALGORITHMS:
        return failed(r.FORMAT_FAILURE, f"alg {alg!r} is not one of {', '.join(ALGORITHMS)}")
    if parsed.protected.get("b64", True) is not True:
        return failed(r.FORMAT_FAILURE, "unencoded payloads (b64: false) are not supported")
    if cert is None:
        return indeterminate(r.NO_SIGNING_CERTIFICATE_FOUND, "the protected header has no x5c")
    thumbprint = parsed.protected.get("x5t#S256")
    if thumbprint is not None and thumbprint != b64url(hashlib.sha256(cert.dump()).digest()):
        return indeterminate(
            r.NO_SIGNING_CERTIFICATE_FOUND, "x5t#S256 is not the thumbprint of x5c[0]"
        )
    return None


def _registry(alg: str) -> jose.JWSRegistry:
    """joserfc's registry for one algorithm, with JAdES's headers and room for an x5c chain."""
    registry = jose.JWSRegistry(
        header_registry={
            "sigT": HeaderParameter("JAdES claimed signing time", "str"),
            "etsiU": HeaderParameter("JAdES unsigned properties", lambda v: _require_list(v)),
        },
        algorithms=[alg],
        strict_check_header=False,  # RFC 7515: ignore headers not understood unless critical
    )
    registry.max_header_length = MAX_HEADER_BYTES
    registry.max_payload_length = MAX_PAYLOAD_BYTES
    registry.max_signature_length = MAX_SIGNATURE_BYTES
    return registry


def _require_list(value: Any) -> None:
    if not isinstance(value, list):
        raise ValueError("must be a list")


def _signature_verdict(
    parsed: ParsedJws, payload_b64: str, cert: x509.Certificate
) -> Verdict | None:
    """Verify the JWS with joserfc and the key of ``x5c[0]``; ``None`` when it verifies."""
    alg = parsed.protected["alg"]
    value: dict[str, Any] = {
        "protected": parsed.protected_b64,
        "payload": payload_b64,
        "signature": parsed.signature_b64,
    }
    if parsed.header is not None:
        value["header"] = parsed.header
    try:
        key_class = ECKey if cert.public_key.algorithm == "ec" else RSAKey
        key = key_class.import_key(_spki_pem(cert))
        jose.deserialize_json(value, key, registry=_registry(alg))  # type: ignore[call-overload]
    except BadSignatureError:
        return failed(
            r.SIG_CRYPTO_FAILURE, "the JWS signature does not verify with the key of x5c[0]"
        )
    except (JoseError, ValueError, TypeError) as exc:
        return failed(
            r.FORMAT_FAILURE, f"the JWS cannot be verified: {exc.__class__.__name__}: {exc}"
        )
    return None


def _spki_pem(cert: x509.Certificate) -> bytes:
    body = base64.encodebytes(cert.public_key.dump()).decode("ascii")
    return f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n".encode("ascii")


def _sig_time(protected: dict[str, Any]) -> datetime | None:
    value = protected.get("sigT")
    if not isinstance(value, str) or not _SIG_T.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


async def _timestamp(
    parsed: ParsedJws, settings: VerifySettings
) -> tuple[TimestampInfo | None, str | None]:
    """The ``sigTst`` timestamp of a B-T signature, and what is wrong with it if it cannot
    be read at all; ``(None, None)`` for a B-B signature."""
    try:
        token_der = _sig_tst(parsed.header)
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error, InvalidJson) as exc:
        return None, f"the etsiU sigTst timestamp cannot be read: {exc.__class__.__name__} {exc}"
    if token_der is None:
        return None, None
    context = make_context(settings, KnownData.of(settings), require_revocation=False)
    signature_ascii = parsed.signature_b64.encode("ascii")
    try:
        signed_data = cms.ContentInfo.load(token_der)["content"]
        kwargs = await validate_tst_signed_data(
            signed_data, context, lambda algo: hashlib.new(algo, signature_ascii).digest()
        )
        status = TimestampSignatureStatus(**kwargs)
    except Exception as exc:  # asn1crypto and pyHanko raise many kinds on a hostile token
        return None, f"the etsiU sigTst timestamp is not a valid RFC 3161 token: {exc}"
    finally:
        await context.aclose()
    valid = bool(status.intact and status.valid and status.trusted)
    return TimestampInfo(status.timestamp, status.signing_cert.subject.human_friendly, valid), None


def _sig_tst(header: dict[str, Any] | None) -> bytes | None:
    """The DER of the first ``sigTst`` token in ``etsiU`` (entries are JSON objects, or
    their base64url encoding as JAdES also allows), or ``None`` if there is none."""
    if not header or "etsiU" not in header:
        return None
    for entry in header["etsiU"]:
        if isinstance(entry, str):
            entry = parse_json_strict(b64url_decode(entry))
        if not isinstance(entry, dict):
            raise ValueError("etsiU entries must be JSON objects")
        if "sigTst" in entry:
            return base64.b64decode(entry["sigTst"]["tstTokens"][0]["val"], validate=True)
    return None
