"""The trust store: the configured trust anchors, and every validation context built on them.

Roots are read and checked once, when the service starts. asn1crypto parses fields lazily
and is not thread-safe (threads that first read one shared object together corrupt it), so
the store keeps the roots as DER and hands each caller objects of its own
(:meth:`TrustStore.roots`), except :meth:`TrustStore.shared_roots`, parsed completely once
under a lock, for callers that only read them.

Every pyhanko-certvalidator ``ValidationContext`` in kyso is made here, so that what may be
fetched, from where, is decided in one place: nothing, unless a context is given a
:class:`~kyso.trust.fetching.FetchSession` (revocation data only, under its limits).
"""

from __future__ import annotations

import glob
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from asn1crypto import pem, x509
from pyhanko_certvalidator import ValidationContext

from kyso.errors import ConfigError
from kyso.trust.fetching import FetchPolicy, FetchSession


class CrlIssuer(Protocol):
    """Revocation data issued in-process (the dev PKI's responder): fresh CRLs, DER."""

    def crls(self, now: datetime | None = None) -> list[bytes]: ...


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file, in file order."""
    data = Path(path).read_bytes()
    if pem.detect(data):
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [x509.Certificate.load(data)]


def fresh(cert: x509.Certificate) -> x509.Certificate:
    """A private copy of a certificate, for a caller that may share the original."""
    return x509.Certificate.load(cert.dump())


def parse_completely(certs: Iterable[x509.Certificate]) -> None:
    """Parse certificates completely, before threads share them."""
    for cert in certs:
        cert.native  # every field, recursively  # noqa: B018
        cert.key_identifier, cert.authority_key_identifier, cert.issuer_serial  # noqa: B018
        cert.subject.human_friendly, cert.sha256, cert.public_key.algorithm  # noqa: B018
        cert.self_signed, cert.subject.hashable, cert.issuer.hashable  # noqa: B018


@dataclass
class TrustStore:
    """The trust anchors (DER) and how revocation data is obtained for them.

    ``in_process``: CRLs issued in this process (the dev PKI), used instead of any fetch.
    ``fetch_policy``: where and how much revocation data may be fetched otherwise.
    """

    root_ders: tuple[bytes, ...]
    in_process: CrlIssuer | None = None
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)
    _shared: tuple[x509.Certificate, ...] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_patterns(
        cls,
        patterns: Iterable[str],
        *,
        profile: str | None = None,
        in_process: CrlIssuer | None = None,
        fetch_policy: FetchPolicy | None = None,
    ) -> TrustStore:
        """Read ``[trust] roots`` (files or globs), and the anchors of the built-in
        ``[trust] profile`` (:mod:`kyso.trust.profiles`); a file that does not parse is a
        ConfigError."""
        from kyso.trust.profiles import profile_roots

        ders: list[bytes] = list(profile_roots(profile))
        for pattern in patterns:
            for path in sorted(glob.glob(pattern)) or [pattern]:
                try:
                    ders.extend(cert.dump() for cert in load_certificates(path))
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"[trust] roots: cannot read {path}: {exc}") from None
        return cls(tuple(dict.fromkeys(ders)), in_process, fetch_policy or FetchPolicy())

    def __bool__(self) -> bool:
        return bool(self.root_ders)

    def roots(self) -> list[x509.Certificate]:
        """The anchors as objects of the caller's own."""
        return [x509.Certificate.load(der) for der in self.root_ders]

    def shared_roots(self) -> tuple[x509.Certificate, ...]:
        """The anchors parsed completely once, for readers in many threads."""
        with self._lock:
            if self._shared is None:
                roots = tuple(self.roots())
                parse_completely(roots)
                self._shared = roots
            return self._shared

    # -- validation contexts ------------------------------------------------------

    def path_context(
        self, intermediates: Sequence[x509.Certificate] = (), moment: datetime | None = None
    ) -> ValidationContext:
        """Path building only: no revocation, no fetching. The anchors are the shared ones
        (parsed once): building a path only reads them."""
        return ValidationContext(
            trust_roots=list(self.shared_roots()),
            other_certs=[fresh(c) for c in intermediates],
            moment=moment,
            allow_fetching=False,
            revocation_mode="soft-fail",
        )

    def in_process_crls(self) -> list[bytes]:
        """Fresh CRLs of the in-process source (the dev PKI); none without one."""
        return self.in_process.crls() if self.in_process is not None else []

    def revocation_context(
        self,
        other_certs: Iterable[x509.Certificate] = (),
        *,
        require: bool = True,
        session: FetchSession | None = None,
    ) -> ValidationContext:
        """Now, with revocation data: issued in process when there is such a source,
        else fetched from the CRL and OCSP URLs of the certificates of a path that reached
        an anchor, under ``session`` (a new one of the store's policy when None).
        ``require``: every certificate below the anchor needs an answer. Close it
        (``await context.aclose()``)."""
        mode = "require" if require else "soft-fail"
        others = [fresh(c) for c in other_certs]
        if self.in_process is not None:
            return ValidationContext(
                trust_roots=self.roots(),
                other_certs=others,
                revocation_mode=mode,
                crls=self.in_process.crls(),
                allow_fetching=False,
            )
        session = session or self.fetch_policy.start()
        return ValidationContext(
            trust_roots=self.roots(),
            other_certs=others,
            revocation_mode=mode,
            allow_fetching=session is not None,
            fetcher_backend=session.backend() if session is not None else None,
        )


def verification_context(
    trust_roots: Sequence[x509.Certificate],
    certs: Sequence[x509.Certificate],
    crls: Sequence[bytes],
    ocsps: Sequence[bytes],
    *,
    moment: datetime | None,
    require_revocation: bool,
    fetch: FetchSession | None = None,
    retroactive: bool = False,
) -> ValidationContext:
    """The context a verification runs in: the settings' anchors, what the document and the
    caller supplied (certificates, CRLs, OCSP responses), at ``moment``; revocation data
    fetched under ``fetch`` when given (nothing is fetched otherwise)."""
    return ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=list(certs),
        crls=list(crls),
        ocsps=list(ocsps),
        moment=moment,
        allow_fetching=fetch is not None,
        fetcher_backend=fetch.backend() if fetch is not None else None,
        revocation_mode="require" if require_revocation else "soft-fail",
        retroactive_revinfo=retroactive,
    )
