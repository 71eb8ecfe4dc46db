"""JWS / JAdES baseline signatures (ETSI TS 119 182-1) over JSON records.

The payload is the RFC 8785 canonical form of the JSON, so the same record always has
the same signed bytes whatever its whitespace or key order. The JWS is in flattened JSON
serialization (RFC 7515 section 7.2.2); ``detached`` omits the payload (RFC 7515
appendix F) and the verifier supplies it again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kyso.errors import InvalidRequest
from kyso.formats import b64url, canonical_json, ecdsa_der_to_raw
from kyso.keystore.base import KeyInfo, Scheme, SigningKey
from kyso.signer.timestamp.client import TimestampClient

JSON_LEVELS = ("B-B", "B-T")
_SCHEMES: dict[str, Scheme] = {"RS256": "pkcs1v15", "PS256": "pss", "ES256": "ecdsa"}


def format_sig_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=64)
def _certificate_members(info: KeyInfo) -> tuple[tuple[str, ...], str]:
    """``x5c`` and ``x5t#S256`` of a key: the same for each of its signatures."""
    chain = [c for c in info.chain if c.self_signed == "no"]  # x5c excludes the root
    x5c = tuple(base64.b64encode(c.dump()).decode("ascii") for c in (info.certificate, *chain))
    return x5c, b64url(hashlib.sha256(info.certificate.dump()).digest())


def protected_header(info: KeyInfo, signing_time: datetime) -> dict[str, Any]:
    """The JAdES protected header: algorithm, chain, thumbprint, alias and signing time."""
    x5c, x5t = _certificate_members(info)
    return {
        "alg": info.jws_alg,
        "kid": info.alias,
        "x5c": list(x5c),
        "x5t#S256": x5t,
        "sigT": format_sig_time(signing_time),
        "crit": ["sigT"],
    }


@functools.lru_cache(maxsize=64)
def _protected_b64(info: KeyInfo, sig_t: str) -> str:
    """The encoded protected header of a key's signatures made within one second (``sigT``
    has whole seconds): serialised once for all of them."""
    header = protected_header(info, datetime.fromisoformat(sig_t.replace("Z", "+00:00")))
    return b64url(canonical_json(header))


@dataclass(frozen=True)
class PreparedJws:
    """A JWS up to its signature: what the key must sign."""

    protected_b64: str
    payload_b64: str
    payload_sha256: str
    alg: str

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")


def prepare_jws(payload: Any, info: KeyInfo, signing_time: datetime | None = None) -> PreparedJws:
    payload_bytes = canonical_json(payload)
    return PreparedJws(
        protected_b64=_protected_b64(info, format_sig_time(signing_time or datetime.now(UTC))),
        payload_b64=b64url(payload_bytes),
        payload_sha256=hashlib.sha256(payload_bytes).hexdigest(),
        alg=info.jws_alg,
    )


def jws_signature_value(raw_signature: bytes, alg: str, ec_size: int = 32) -> bytes:
    """Normalise a signature to its JWS form: ECDSA as raw ``r || s`` (DER accepted)."""
    if alg == "ES256" and len(raw_signature) != 2 * ec_size:
        return ecdsa_der_to_raw(raw_signature, ec_size)
    return raw_signature


def finish_jws(
    prepared: PreparedJws,
    signature: bytes,
    detached: bool,
    timestamper: TimestampClient | None,
) -> dict[str, Any]:
    """Assemble the flattened JWS; with a timestamper, add the JAdES ``sigTst``
    (a B-T signature) over the ASCII bytes of the ``signature`` member."""
    sig_b64 = b64url(signature)
    jws: dict[str, Any] = {"protected": prepared.protected_b64}
    if not detached:
        jws["payload"] = prepared.payload_b64
    jws["signature"] = sig_b64
    if timestamper is not None:
        token = timestamper.timestamp(hashlib.sha256(sig_b64.encode("ascii")).digest())
        val = base64.b64encode(token.dump()).decode("ascii")
        jws["header"] = {"etsiU": [{"sigTst": {"tstTokens": [{"val": val}]}}]}
    return jws


@dataclass(frozen=True)
class SignedJson:
    jws: dict[str, Any]
    payload_sha256: str

    @property
    def signature_sha256(self) -> str:
        return hashlib.sha256(self.jws["signature"].encode("ascii")).hexdigest()


def sign_json(
    payload: Any,
    key: SigningKey,
    level: str = "B-T",
    detached: bool = False,
    timestamper: TimestampClient | None = None,
) -> SignedJson:
    """Sign a JSON value with a keystore key at ``B-B`` or ``B-T``."""
    if level not in JSON_LEVELS:
        raise InvalidRequest(f"level for JSON must be one of {', '.join(JSON_LEVELS)}, not {level!r}")
    if level == "B-T" and timestamper is None:
        raise InvalidRequest("B-T needs a timestamp authority; none is configured")
    prepared = prepare_jws(payload, key.info)
    raw = key.sign(prepared.signing_input, _SCHEMES[prepared.alg])
    signature = jws_signature_value(raw, prepared.alg)
    jws = finish_jws(prepared, signature, detached, timestamper if level == "B-T" else None)
    return SignedJson(jws=jws, payload_sha256=prepared.payload_sha256)


def scheme_for_alg(alg: str) -> Scheme:
    try:
        return _SCHEMES[alg]
    except KeyError:
        raise InvalidRequest(f"unsupported JWS algorithm {alg!r}") from None
