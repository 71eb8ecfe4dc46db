"""Where the service gets revocation data, and whether a signer certificate is revoked.

Two sources, chosen by the configuration:

- **the dev PKI** (``dev_pki`` on): fresh CRLs of its CAs are issued in-process by
  :class:`kyso.certs.responder.DevRevocation` (a :class:`kyso.trust.store.CrlIssuer`) and handed to pyhanko-certvalidator, with no
  HTTP at all. ``kyso serve`` on the embedded default therefore signs ``B-LT`` offline and
  never calls itself (a single-threaded server would wait on its own request). The same
  responder serves ``/pki`` for outside validators (pdfsig, OpenSSL).
- **the certificates' own URLs** otherwise: CRLs from the CRL distribution points and OCSP
  from the AIA of a path that reached a trust anchor, fetched under the limits of
  :mod:`kyso.trust.fetching` (``[trust] fetch_*``).

:class:`RevocationChecker` answers "may this certificate sign now?" before every signature,
and remembers the answer for ``[trust] revocation_cache_seconds`` (an unknown status only
briefly), so that a busy service does not fetch a CRL per signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509
from cachetools import TLRUCache
from pyhanko_certvalidator import CertificateValidator
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)

from kyso.errors import CertificateRevoked, RevocationUnavailable
from kyso.keystore.base import SigningKey
from kyso.trust.store import TrustStore, fresh, parse_completely

log = logging.getLogger(__name__)

UNKNOWN_CACHE_SECONDS = 30.0  # an unreachable responder is asked again soon
MAX_CACHED = 10_000  # certificates remembered (clinicians' certificates come and go)
_CHECK_LOCKS = 64


@dataclass(frozen=True)
class RevocationStatus:
    """``good``, ``revoked`` (since ``revoked_at``, for ``reason``) or ``unknown`` (``why``)."""

    status: str
    revoked_at: datetime | None = None
    reason: str | None = None
    why: str | None = None


async def async_revocation_status(
    trust: TrustStore, cert: x509.Certificate, chain: Iterable[x509.Certificate] = ()
) -> RevocationStatus:
    """The revocation status of ``cert`` now, from a path to the trust anchors in which
    every certificate's revocation data was checked."""
    if not trust:
        return RevocationStatus("unknown", why="no trust anchors are configured ([trust] roots)")
    chain = [fresh(c) for c in chain]
    context = trust.revocation_context(chain)
    try:
        validator = CertificateValidator(fresh(cert), chain, validation_context=context)
        await validator.async_validate_path()
        return RevocationStatus("good")
    except RevokedError as exc:
        return RevocationStatus("revoked", exc.revocation_dt, exc.reason.human_friendly)
    except InsufficientRevinfoError as exc:
        return RevocationStatus("unknown", why=exc.failure_msg)
    except PathBuildingError as exc:
        return RevocationStatus("unknown", why=f"no path to a trust anchor: {exc}")
    except ValidationError as exc:  # expired, weak algorithm, ...: not for this check to say
        return RevocationStatus("unknown", why=exc.failure_msg)
    finally:
        await context.aclose()


class RevocationChecker:
    """Revocation status of signer certificates, remembered for a while per certificate.

    The answers live in a cachetools ``TLRUCache``: bounded (the least recently used
    certificate is forgotten first) and with an expiry per answer, ``ttl_seconds`` for
    ``good`` and ``revoked``, at most :data:`UNKNOWN_CACHE_SECONDS` for ``unknown``.
    Requests that miss together on one certificate wait for the first one's answer
    instead of all fetching (one lock of a fixed set per certificate hash).
    """

    def __init__(
        self,
        trust: TrustStore,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_certificates: int = MAX_CACHED,
    ) -> None:
        self.trust = trust
        self.ttl = ttl_seconds
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._known: TLRUCache[str, RevocationStatus] = TLRUCache(
            maxsize=max_certificates, ttu=self._expiry, timer=clock
        )
        self._checking = tuple(threading.Lock() for _ in range(_CHECK_LOCKS))

    def status(
        self, cert: x509.Certificate, chain: Iterable[x509.Certificate] = ()
    ) -> RevocationStatus:
        """The status of ``cert``, from the cache while it is fresh. Runs an event loop of
        its own: from a coroutine, use :meth:`async_status`."""
        cached = self._cached(_key(cert))
        return cached if cached is not None else asyncio.run(self.async_status(cert, chain))

    async def async_status(
        self, cert: x509.Certificate, chain: Iterable[x509.Certificate] = ()
    ) -> RevocationStatus:
        key = _key(cert)
        cached = self._cached(key)
        if cached is not None:
            return cached
        checking = self._checking[int(key[:8], 16) % _CHECK_LOCKS]
        await asyncio.to_thread(checking.acquire)  # not on the loop: other threads hold it
        try:
            cached = self._cached(key)
            if cached is not None:
                return cached
            status = await async_revocation_status(self.trust, cert, chain)
            return self._remember(key, cert, status)
        finally:
            checking.release()

    def _expiry(self, _key: str, status: RevocationStatus, now: float) -> float:
        ttl = self.ttl if status.status != "unknown" else min(self.ttl, UNKNOWN_CACHE_SECONDS)
        return now + ttl

    def _cached(self, key: str) -> RevocationStatus | None:
        with self._lock:
            return self._known.get(key)

    def _remember(
        self, key: str, cert: x509.Certificate, status: RevocationStatus
    ) -> RevocationStatus:
        with self._lock:
            self._known[key] = status
        if status.status == "unknown":
            name = fresh(cert).subject.human_friendly
            log.warning("revocation status of %s unknown: %s", name, status.why)
        return status


def _key(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def refuse_unless_usable(status: RevocationStatus, cert: x509.Certificate, require: bool) -> str:
    """``status.status`` if a certificate in that state may sign; else CertificateRevoked,
    or, when ``require`` (``[trust] revocation = "require"``) and the status is unknown,
    RevocationUnavailable."""
    if status.status == "good" or (status.status == "unknown" and not require):
        return status.status  # the usual answer: no name to read for a message
    cert = fresh(cert)  # the caller's object may be read by other threads
    who = cert.subject.native.get("common_name") or cert.subject.human_friendly
    if status.status == "revoked":
        when = f" on {status.revoked_at:%Y-%m-%d}" if status.revoked_at else ""
        why = f" ({status.reason})" if status.reason else ""
        raise CertificateRevoked(
            f"the certificate of {who} (serial {cert.serial_number:x}) was revoked{when}{why}; "
            "it cannot sign. Use another key, or ask the CA for a new certificate"
        )
    if status.status == "unknown" and require:
        raise RevocationUnavailable(
            f"the revocation status of {who} cannot be established ({status.why}); "
            "signing is refused because [trust] revocation is 'require'. Try again later"
        )
    return status.status


_PARSE_LOCK = threading.Lock()
_parsed_keys: weakref.WeakSet[SigningKey] = weakref.WeakSet()


def parse_once(key: SigningKey) -> None:
    """Parse a key's certificates completely, once, under a lock, before threads share
    them. asn1crypto parses lazily and is not thread-safe: concurrent first reads of one
    certificate (pyHanko registering the chain in each signing thread) failed under load
    with "No field numbered 2 is present in this asn1crypto.x509.Extension"."""
    if key in _parsed_keys:
        return
    with _PARSE_LOCK:
        if key in _parsed_keys:
            return
        parse_completely((key.info.certificate, *key.info.chain))
        _parsed_keys.add(key)
