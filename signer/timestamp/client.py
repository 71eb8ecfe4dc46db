"""RFC 3161 client with failover: every token is checked before it is used.

A timestamp source is a URL (``http(s)://``, POST ``application/timestamp-query``) or
the built-in TSA called in-process. Sources are tried in order; one that fails, refuses,
or answers with a token that does not match the request (wrong imprint, wrong nonce,
bad signature) is skipped and reported. When none answers, :class:`TsaUnavailable` is
raised: a caller never gets a weaker signature than it asked for.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import requests
from asn1crypto import algos, cms, tsp, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import load_der_x509_certificate
from pyhanko.sign.timestamps.api import TimeStamper

from kyso.errors import TsaUnavailable

log = logging.getLogger(__name__)

Responder = Callable[[bytes], bytes]


@dataclass(frozen=True)
class TimestampSource:
    """One TSA: a name for reports and a function from query DER to reply DER."""

    name: str
    respond: Responder


def http_source(url: str, timeout: float) -> TimestampSource:
    session = requests.Session()

    def respond(query: bytes) -> bytes:
        r = session.post(
            url,
            data=query,
            headers={"Content-Type": "application/timestamp-query"},
            timeout=timeout,
        )
        r.raise_for_status()
        return r.content

    return TimestampSource(url, respond)


# The failures of the operation under way, for its audit entry (see collect_failures).
_failures: ContextVar[list[str] | None] = ContextVar("kyso_tsa_failures", default=None)


@contextmanager
def collect_failures() -> Iterator[list[str]]:
    """Collect, in the list it yields, every ``"source: problem"`` of the timestamp
    requests made inside the ``with`` block, also from worker threads and event loops it
    starts (they copy the context, and with it this list)."""
    problems: list[str] = []
    token = _failures.set(problems)
    try:
        yield problems
    finally:
        _failures.reset(token)


class TokenMismatch(Exception):
    """A TSA answered, but not with a token for our request."""


def make_query(digest: bytes, nonce: int) -> tsp.TimeStampReq:
    return tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "hashed_message": digest,
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )


def tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    return token["content"]["encap_content_info"]["content"].parsed


def token_signer_certificate(token: cms.ContentInfo):
    """The certificate a CMS's first signer info names, from the certificates it carries:
    the TSA's for a timestamp token (any SignedData ContentInfo will do)."""
    signed = token["content"]
    sid = signed["signer_infos"][0]["sid"]
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.serial_number == ias["serial_number"].native and _same_name(
                cert.issuer, ias["issuer"]
            ):
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    # Equal encodings are equal names; asn1crypto's comparison (RFC 5280 7.1 string
    # preparation of every attribute) costs about 1.5 ms, so it is only the fallback.
    return a.dump() == b.dump() or a == b


def check_token_signature(token: cms.ContentInfo) -> x509.Certificate:
    """Verify the CMS signature of a timestamp token against the certificate it carries,
    and return that certificate.

    Trust in that certificate is a matter for validation; this check catches a token
    that was corrupted or does not belong to the certificate it names."""
    signed = token["content"]
    signer_info = signed["signer_infos"][0]
    cert = token_signer_certificate(token)
    if cert is None:
        raise TokenMismatch("the token does not carry its TSA certificate (certReq was true)")
    content = signed["encap_content_info"]["content"].contents
    attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    h = hashlib.new(digest_name, content).digest()
    if attrs.get("message_digest") is None or attrs["message_digest"].native != h:
        raise TokenMismatch("the token's message digest does not match its TSTInfo")
    signed_bytes = signer_info["signed_attrs"].untag().dump()
    public_key = load_der_x509_certificate(cert.dump()).public_key()
    hash_alg = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
        digest_name
    ]
    sig = signer_info["signature"].native
    sig_algo = signer_info["signature_algorithm"].signature_algo
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if sig_algo == "rsassa_pss":
                pad: padding.AsymmetricPadding = padding.PSS(
                    mgf=padding.MGF1(hash_alg), salt_length=padding.PSS.AUTO
                )
            else:
                pad = padding.PKCS1v15()
            public_key.verify(sig, signed_bytes, pad, hash_alg)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, signed_bytes, ec.ECDSA(hash_alg))
        else:
            raise TokenMismatch("unsupported TSA key type")
    except InvalidSignature:
        raise TokenMismatch("the token's signature does not verify") from None
    return cert


def check_reply(reply_der: bytes, digest: bytes, nonce: int) -> cms.ContentInfo:
    """Parse a TimeStampResp and return its token if, and only if, it is for our query."""
    try:
        reply = tsp.TimeStampResp.load(reply_der)
        status = reply["status"]["status"].native
    except (ValueError, TypeError) as exc:
        raise TokenMismatch(f"unparseable reply ({exc.__class__.__name__})") from None
    if status not in ("granted", "granted_with_mods"):
        text = "; ".join(reply["status"]["status_string"].native or [])
        raise TokenMismatch(f"request refused: {status} {text}".strip())
    token = reply["time_stamp_token"]
    try:
        info = tst_info(token)
        imprint = info["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256":
            raise TokenMismatch("the token's imprint uses another hash algorithm")
        if imprint["hashed_message"].native != digest:
            raise TokenMismatch("the token's message imprint is not ours")
        if info["nonce"].native != nonce:
            raise TokenMismatch("the token's nonce is not ours")
        check_token_signature(token)
    except (ValueError, TypeError, KeyError) as exc:
        raise TokenMismatch(f"malformed token ({exc.__class__.__name__})") from None
    return token


class TimestampClient(TimeStamper):
    """Timestamps from the configured sources, in order, each token checked.

    Also a pyHanko :class:`TimeStamper`, so PAdES signing uses the same failover.
    Reuse one instance: pyHanko caches a dummy token per instance for size estimation.
    """

    def __init__(self, sources: Sequence[TimestampSource]):
        super().__init__(include_nonce=True)
        if not sources:
            raise ValueError("at least one timestamp source is needed")
        self.sources = tuple(sources)

    def timestamp(self, digest: bytes) -> cms.ContentInfo:
        """A checked RFC 3161 token over a SHA-256 ``digest``."""
        from kyso.signer.timestamp import metrics  # at first use: see its docstring

        problems = []
        for source in self.sources:
            nonce = secrets.randbits(63) | (1 << 62)
            query = make_query(digest, nonce).dump()
            started = time.perf_counter()
            try:
                token = check_reply(source.respond(query), digest, nonce)
                metrics.observe(source.name, time.perf_counter() - started, failed=False)
                return token
            except TokenMismatch as exc:
                problems.append(f"{source.name}: {exc}")
            except (requests.RequestException, OSError) as exc:
                problems.append(f"{source.name}: {exc.__class__.__name__}")
            metrics.observe(source.name, time.perf_counter() - started, failed=True)
            log.warning("timestamp source failed: %s", problems[-1])
            collected = _failures.get()
            if collected is not None:
                collected.append(problems[-1])
        raise TsaUnavailable("no timestamp authority answered correctly: " + "; ".join(problems))

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if md_algorithm != "sha256":
            raise ValueError("only SHA-256 timestamps are requested")
        import asyncio

        return await asyncio.to_thread(self.timestamp, message_digest)


def token_time(token: cms.ContentInfo):
    return tst_info(token)["gen_time"].native


def token_der(token: cms.ContentInfo) -> bytes:
    return token.dump()
