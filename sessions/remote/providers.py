"""Remote signing providers: who holds a clinician's key and asks them on the phone.

A provider is configured once (``[[remote_signing]]``, :class:`kyso.config.RemoteSigningConfig`)
and offers three calls, whatever its protocol:

- :meth:`RemoteProvider.certificate`: the clinician's certificate and its issuers;
- :meth:`RemoteProvider.request_signatures`: ask the clinician to sign the SHA-256 hashes of a
  session's documents in one transaction (one confirmation on the phone where the provider
  allows it); the answer is pending (a transaction to ask about later) or already signed;
- :meth:`RemoteProvider.status`: where a pending transaction stands.

A provider that cannot be reached, or answers what its protocol does not allow, raises
:class:`kyso.errors.RemoteSignerUnavailable`; nothing it returns is trusted before kyso has
checked it (the certificate with the trust policy, each signature with the certificate).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from asn1crypto import x509

from kyso.config import Config, RemoteSigningConfig
from kyso.errors import ConfigError, InvalidRequest
from kyso.keystore.base import Scheme

State = Literal["pending", "signed", "rejected", "expired", "failed"]


@dataclass(frozen=True)
class SignerCertificate:
    """A clinician's certificate as the provider holds it."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, as the provider sent them
    credential: str | None = None  # the provider's id of it (CSC credential, NEAC serial)


@dataclass(frozen=True)
class HashToSign:
    doc_id: str  # the document's name, shown to the clinician and echoed by the provider
    digest: bytes  # SHA-256 of the data to sign
    kind: str  # "pdf" or "json"


@dataclass(frozen=True)
class SignatureRequest:
    transaction_id: str  # kyso's, unique
    user_id: str
    credential: str | None
    description: str  # what the clinician reads on the phone
    scheme: Scheme
    documents: tuple[HashToSign, ...]


@dataclass(frozen=True)
class ProviderAnswer:
    """Where a transaction stands. ``signatures`` are given with the doc ids the provider
    named them by (None where it gave them in order only)."""

    state: State
    signatures: tuple[tuple[str | None, bytes], ...] = ()
    reference: str | None = None  # the provider's own id of the transaction
    message: str | None = None  # the provider's words, for the log (never a secret)


class RemoteProvider(ABC):
    """One configured provider."""

    kind: str

    def __init__(self, name: str, poll_seconds: float, poll_max_seconds: float) -> None:
        self.name = name
        self.poll_seconds = poll_seconds
        self.poll_max_seconds = poll_max_seconds

    def schemes(self, key_type: str) -> tuple[Scheme, ...]:
        """The signature schemes the provider makes for an ``rsa`` or ``ec`` key."""
        return ("pkcs1v15", "pss") if key_type == "rsa" else ("ecdsa",)

    @abstractmethod
    def certificate(self, user_id: str) -> SignerCertificate:
        """The clinician's signing certificate."""

    @abstractmethod
    def request_signatures(self, request: SignatureRequest) -> ProviderAnswer:
        """Ask for the signatures; ``pending`` or ``signed``, else an error is raised."""

    @abstractmethod
    def status(self, transaction_id: str, reference: str | None) -> ProviderAnswer:
        """Where the transaction stands now."""

    def next_poll_delay(self, attempts: int) -> float:
        """Back-off: ``poll_seconds`` doubled at each question, at most ``poll_max_seconds``."""
        return min(self.poll_max_seconds, self.poll_seconds * 2 ** min(attempts, 16))

    def close(self) -> None:
        return None


class RemoteProviders:
    """The configured providers, by name."""

    def __init__(self, providers: Mapping[str, RemoteProvider]) -> None:
        self._providers = dict(providers)

    def get(self, name: str) -> RemoteProvider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none is configured"
            raise InvalidRequest(
                f"no remote signing provider {name!r} ([[remote_signing]]: {known})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __bool__(self) -> bool:
        return bool(self._providers)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()


def load_provider(settings: RemoteSigningConfig, env: Mapping[str, str]) -> RemoteProvider:
    owner = f"remote signing provider {settings.name!r}"
    if settings.kind == "neac":
        from kyso.sessions.remote.neac import NeacProvider

        return NeacProvider.from_config(settings, env, owner)
    if settings.kind == "csc":
        from kyso.keystore.csc import csc_client
        from kyso.sessions.remote.csc import CscProvider

        if settings.credential_from not in ("list", "user_id"):
            raise ConfigError(f"{owner}: credential_from must be 'list' or 'user_id'")
        return CscProvider(
            settings.name,
            csc_client(owner, settings, env),
            settings.credential_from,
            settings.poll_seconds,
            settings.poll_max_seconds,
        )
    raise ConfigError(f"{owner}: unknown kind {settings.kind!r} (neac or csc)")


def load_providers(config: Config, env: Mapping[str, str]) -> RemoteProviders:
    names = [p.name for p in config.remote_signing]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"[[remote_signing]]: the name(s) {', '.join(duplicates)} appear twice")
    return RemoteProviders({p.name: load_provider(p, env) for p in config.remote_signing})
