"""Whether a certificate may sign now, for the service: keys, trust anchors, revocation.

:class:`SignerChecks` is the part of the :class:`kyso.service.Kyso` facade that answers
"may this key (or this clinician's certificate) sign now?": validity and usage
(:mod:`kyso.trust.policy`), then revocation (:mod:`kyso.trust.revocation`), cached per
certificate. Each check has an ``async_`` form, so that an operation runs them in the one
event loop it signs in; the plain forms run a loop of their own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from asn1crypto import x509

from kyso.config import Config
from kyso.keystore import Keystore, SigningKey
from kyso.trust.fetching import FetchPolicy
from kyso.trust.policy import SignerProfile
from kyso.trust.revocation import RevocationChecker, parse_once, refuse_unless_usable
from kyso.trust.store import TrustStore

if TYPE_CHECKING:
    from kyso.certs.responder import DevRevocation


class SignerChecks:
    """Keys and certificates checked before they sign (a mixin of the service facade)."""

    config: Config
    keystore: Keystore

    def signing_key(self, alias: str) -> SigningKey:
        """:meth:`async_signing_key` for a caller without an event loop; one runs only when
        the revocation status must be fetched (not while the cached answer is fresh)."""
        key = self._key_valid_now(alias)
        cert, chain = key.info.certificate, key.info.chain
        status = self._revocation_checker.status(cert, chain)
        refuse_unless_usable(status, cert, require=self.config.trust.revocation == "require")
        return key

    async def async_signing_key(self, alias: str) -> SigningKey:
        """The key for ``alias``, refused if its certificate cannot sign now: not yet
        valid, expired, not meant for signing (:mod:`kyso.trust.policy`), or revoked
        (see :meth:`async_check_not_revoked`)."""
        key = self._key_valid_now(alias)
        await self.async_check_not_revoked(key.info.certificate, key.info.chain)
        return key

    def _key_valid_now(self, alias: str) -> SigningKey:
        """The key for ``alias`` if its certificate is valid now and meant for signing. What
        does not change with the moment (usage, key strength, the validity period) is read
        once per key (:class:`~kyso.trust.policy.SignerProfile`); the moment is checked
        against it on every call, so a certificate that expires is refused from then on."""
        key = self.keystore.get(alias)
        profile = self._signer_profiles.get(key)
        if profile is None:
            parse_once(key)
            profile = SignerProfile.of(key.info.certificate)
            self._signer_profiles[key] = profile  # two threads may both read it: same profile
        profile.check(who=f"the certificate of key alias {alias!r}")
        return key

    @cached_property
    def _signer_profiles(self) -> weakref.WeakKeyDictionary[SigningKey, SignerProfile]:
        return weakref.WeakKeyDictionary()

    @cached_property
    def dev_revocation(self) -> DevRevocation | None:
        """The dev PKI's CRL and OCSP issuer (served under /pki), when ``dev_pki`` is on."""
        if not self.config.dev_pki:
            return None
        from kyso.certs.responder import DevRevocation

        return DevRevocation.from_dir(self.config.pki_dir)

    @cached_property
    def trust(self) -> TrustStore:
        """The trust anchors, and revocation data: the dev PKI's own CRLs issued in-process
        (no HTTP) when ``dev_pki`` is on, else the certificates' CRL and OCSP URLs, fetched
        under ``[trust] fetch_*`` (:mod:`kyso.trust.fetching`)."""
        t = self.config.trust
        policy = FetchPolicy(
            enabled=t.fetch,
            allow_hosts=tuple(t.fetch_allow_hosts),
            allow_private=t.fetch_allow_private,
            timeout_seconds=t.fetch_timeout_seconds,
            budget_seconds=t.fetch_budget_seconds,
            max_requests=t.fetch_max_requests,
            max_bytes=t.fetch_max_bytes,
        )
        return TrustStore.from_patterns(
            t.roots, profile=t.profile, in_process=self.dev_revocation, fetch_policy=policy
        )

    @cached_property
    def _revocation_checker(self) -> RevocationChecker:
        return RevocationChecker(self.trust, self.config.trust.revocation_cache_seconds)

    def check_not_revoked(self, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()) -> str:
        """:meth:`async_check_not_revoked` in an event loop of its own."""
        return asyncio.run(self.async_check_not_revoked(cert, chain))

    async def async_check_not_revoked(
        self, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()
    ) -> str:
        """Refuse a signer certificate that is revoked now (``certificate_revoked``);
        return its status, ``good`` or ``unknown``. An unknown status (no CRL or OCSP answer,
        or no path to a trust anchor) passes under ``[trust] revocation = "soft-fail"`` and is
        ``revocation_unavailable`` under ``"require"``. Answers are cached per certificate
        for ``[trust] revocation_cache_seconds``."""
        status = await self._revocation_checker.async_status(cert, chain)
        return refuse_unless_usable(status, cert, require=self.config.trust.revocation == "require")
