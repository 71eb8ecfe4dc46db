"""What kyso fetches over the network for certificates, from where, and for how long.

kyso fetches revocation data (CRLs from the CRL distribution points, OCSP responses from
the AIA ``ocsp`` addresses) of certificates that chain to a configured trust anchor, and
nothing else: it never follows ``caIssuers`` addresses to look for a certificate's issuer
(so a certificate that does not chain to an anchor through what the document and the
configuration hold is never fetched for), and it validates a path without fetching first
(:mod:`kyso.signer.verify.common`). Every fetch goes through a :class:`FetchSession`:

- only ``http`` and ``https`` URLs, to the hosts of ``[trust] fetch_allow_hosts`` when that
  list is not empty (``*.example.vn`` names a domain and its subdomains);
- never to a loopback, private, link-local, multicast or reserved address (checked on the
  address the name resolves to, which is then the one connected to: a name that resolves
  elsewhere a second time changes nothing), unless ``[trust] fetch_allow_private``;
- no redirects, at most ``fetch_max_bytes`` of answer;
- each fetch within ``fetch_timeout_seconds``, and all of one request's fetches (one
  verification, one revocation check, one extension) within ``fetch_budget_seconds`` and
  ``fetch_max_requests``: past either, the data counts as unobtainable (``revocation:
  unknown``; ``revocation_unavailable`` where it is required).

A refusal is an ``aiohttp.ClientError``, which pyhanko-certvalidator's fetchers report as
the fetch error of their kind: revocation data that could not be had, never a 500.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetchLimits, OwnedFetcherBackend

log = logging.getLogger(__name__)


class FetchRefused(aiohttp.ClientError):
    """A fetch kyso will not make, or that did not finish in time."""


@dataclass(frozen=True)
class FetchPolicy:
    """Where and how much kyso may fetch (``[trust] fetch_*``); ``enabled`` False: never."""

    enabled: bool = True
    allow_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    timeout_seconds: float = 5.0
    budget_seconds: float = 15.0
    max_requests: int = 16
    max_bytes: int = 8 * 1024 * 1024

    def start(self, clock: Callable[[], float] = time.monotonic) -> FetchSession | None:
        """The allowance of one request, its clock starting now; None when fetching is off."""
        return FetchSession(self, clock) if self.enabled else None

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if not self.allow_hosts:
            return True
        for allowed in self.allow_hosts:
            allowed = allowed.lower().rstrip(".")
            if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return True
            if allowed.startswith("*.") and host == allowed[2:]:
                return True
        return False

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self.allow_private or (ip.is_global and not ip.is_multicast)


class FetchSession:
    """One request's allowance of fetches: its deadline and its count, shared by every
    validation context of that request."""

    def __init__(self, policy: FetchPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self.deadline = clock() + policy.budget_seconds
        self.requests = 0

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def admit(self, url: str) -> float:
        """Count a fetch of ``url`` and return its timeout, or refuse it (FetchRefused)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise FetchRefused(f"{url!r}: only http and https URLs are fetched")
        if not self.policy.host_allowed(host):
            raise FetchRefused(f"{url!r}: {host} is not among [trust] fetch_allow_hosts")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not self.policy.address_allowed(str(literal)):
            raise FetchRefused(f"{url!r}: a private or loopback address is not fetched from")
        if self.requests >= self.policy.max_requests:
            raise FetchRefused(f"{url!r}: the {self.policy.max_requests} fetches of this request are spent")
        remaining = self.remaining()
        if remaining <= 0.05:
            raise FetchRefused(f"{url!r}: the fetch time of this request is spent")
        self.requests += 1
        return min(self.policy.timeout_seconds, remaining)

    def backend(self) -> OwnedFetcherBackend:
        """A fetcher backend for one validation context (closed with the context): CRLs and
        OCSP through this allowance, no certificate fetching at all."""
        limits = FetchLimits(
            max_requests=self.policy.max_requests, max_cert_requests=0, max_aia_urls_per_object=4
        )
        backend = _GuardedBackend(
            session=GuardedHttp(self),  # type: ignore[arg-type]
            per_request_timeout=self.policy.timeout_seconds,
            limits=limits,
        )
        return OwnedFetcherBackend(backend)


class _GuardedBackend(AIOHttpFetcherBackend):
    async def close(self) -> None:
        await self.session.close()  # type: ignore[union-attr]


class _Resolver(AbstractResolver):
    """Resolves with the system, and keeps only the addresses the policy allows."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self.policy.address_allowed(r["host"])]
        if not allowed:
            raise FetchRefused(f"{host} resolves only to private or loopback addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class GuardedHttp:
    """What pyhanko-certvalidator's aiohttp fetchers take for a session: ``get`` and
    ``post`` that go through a :class:`FetchSession`."""

    def __init__(self, allowance: FetchSession) -> None:
        self.allowance = allowance
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the event loop that uses it
            connector = aiohttp.TCPConnector(
                resolver=_Resolver(self.allowance.policy),
                ssl=ssl.create_default_context(cafile=certifi.where()),
                use_dns_cache=False,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def get(self, url: str, **kwargs: Any) -> _Fetch:
        return _Fetch(self, "GET", url, kwargs)

    def post(self, url: str, **kwargs: Any) -> _Fetch:
        return _Fetch(self, "POST", url, kwargs)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _Fetch:
    """One request, as ``async with session.get(...) as response``: the answer is read
    whole (within its limits) before the block is entered."""

    def __init__(self, http: GuardedHttp, method: str, url: str, kwargs: dict[str, Any]) -> None:
        self.http, self.method, self.url = http, method, url
        self.kwargs = {k: v for k, v in kwargs.items() if k in ("headers", "data")}

    async def __aenter__(self) -> _Answer:
        allowance = self.http.allowance
        timeout = allowance.admit(self.url)
        try:
            async with asyncio.timeout(timeout):
                async with self.http._client().request(
                    self.method, self.url, allow_redirects=False, **self.kwargs
                ) as response:
                    if response.status != 200:
                        raise FetchRefused(f"{self.url}: status {response.status}")
                    body = await _read_limited(response, allowance.policy.max_bytes)
                    return _Answer(response, body)
        except TimeoutError:
            log.info("fetch of %s timed out after %.1f s", self.url, timeout)
            raise FetchRefused(f"{self.url}: no answer within {timeout:.1f} s") from None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise FetchRefused(f"the answer has {response.content_length} bytes (limit {limit})")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise FetchRefused(f"the answer is longer than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Answer:
    """The parts of an aiohttp response the fetchers read, with the body already read."""

    def __init__(self, response: aiohttp.ClientResponse, body: bytes) -> None:
        self.headers = response.headers
        self.request_info = response.request_info
        self.history = response.history
        self.status = response.status
        self._body = body

    async def read(self) -> bytes:
        return self._body
