"""Keys held by a remote signing service behind the Cloud Signature Consortium API.

:class:`CscKey` is a :class:`~kyso.keystore.base.SigningKey` like any other alias (PDF, JSON,
checkpoints): its certificate and chain come from ``credentials/info`` on first use, and each
signature is one ``credentials/authorize`` and one ``signatures/signHash`` call
(:mod:`kyso.keystore.csc_client`). :meth:`CscKey.sign_digests` signs several hashes under one
authorisation.

The service is trusted with nothing: every signature it returns is verified with the
credential's certificate before it is used, and one that does not verify is
``invalid_signature`` (and the certificate is read again at the next use, in case the
credential was renewed). When the service cannot be reached the key is
``remote_signer_unavailable`` (503), and ``/readyz`` names the alias.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from asn1crypto import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kyso.errors import ConfigError, InvalidSignature, RemoteSignerUnavailable
from kyso.keystore.base import DEFAULT_RSA_SCHEME, KeyInfo, RsaScheme, Scheme, SigningKey
from kyso.keystore.csc_client import BearerToken, CscClient, CscCredential, SecretSource
from kyso.trust.store import parse_completely


class CscKey(SigningKey):
    """A credential of a CSC service, used as a key alias."""

    def __init__(
        self, alias: str, client: CscClient, credential_id: str, rsa_scheme: RsaScheme = DEFAULT_RSA_SCHEME
    ):
        """Nothing is asked of the service here: the first ``info``, ``check`` or ``sign`` does."""
        self.alias = alias
        self.client = client
        self.credential_id = credential_id
        self._rsa_scheme = rsa_scheme
        self._credential: CscCredential | None = None
        self._info: KeyInfo | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CscKey(alias={self.alias!r}, credential_id={self.credential_id!r}, {self.client!r})"

    @property
    def info(self) -> KeyInfo:  # type: ignore[override]
        return self._load()[1]

    def _load(self) -> tuple[CscCredential, KeyInfo]:
        with self._lock:
            if self._credential is None or self._info is None:
                credential = self.client.credential(self.credential_id)
                parse_completely((credential.certificate, *credential.chain))
                self._info = KeyInfo(
                    alias=self.alias,
                    kind="csc",
                    certificate=credential.certificate,
                    chain=credential.chain,
                    rsa_scheme=self._rsa_scheme,
                )
                self._credential = credential
            return self._credential, self._info

    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        """A SHA-256 ``scheme`` signature of ``data`` (ECDSA as DER), made by the service."""
        return self.sign_digests([hashlib.sha256(data).digest()], scheme)[0]

    def sign_digests(
        self, digests: Sequence[bytes], scheme: Scheme, description: str | None = None
    ) -> list[bytes]:
        """Signatures of SHA-256 ``digests`` under one authorisation, each verified with the
        credential's certificate."""
        credential, info = self._load()
        if not credential.enabled:
            raise RemoteSignerUnavailable(
                f"key alias {self.alias!r}: the CSC service says credential "
                f"{self.credential_id!r} is disabled"
            )
        signatures = self.client.sign_digests(credential, digests, scheme, description)
        for index, (digest, signature) in enumerate(zip(digests, signatures, strict=True)):
            if not verifies(info.certificate, digest, signature, scheme):
                self.forget()
                raise InvalidSignature(
                    f"key alias {self.alias!r}: signature {index + 1} returned by the CSC service "
                    f"does not verify with credential {self.credential_id!r}'s certificate; "
                    "nothing was signed"
                )
        return signatures

    def check(self) -> None:
        """Ask the service for the credential again: unreachable or disabled is a failure."""
        self.forget()
        credential, _ = self._load()
        if not credential.enabled:
            raise RemoteSignerUnavailable(
                f"key alias {self.alias!r}: credential {self.credential_id!r} is disabled"
            )

    def forget(self) -> None:
        """Read the certificate again at the next use."""
        with self._lock:
            self._credential = self._info = None

    def close(self) -> None:
        self.client.close()


def verifies(certificate: x509.Certificate, digest: bytes, signature: bytes, scheme: Scheme) -> bool:
    """Whether ``signature`` (ECDSA as DER) is ``certificate``'s over the SHA-256 ``digest``."""
    public_key = serialization.load_der_public_key(certificate.public_key.dump())
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and scheme == "ecdsa":
            public_key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme == "pkcs1v15":
            public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme == "pss":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            public_key.verify(signature, digest, pss, prehashed)
        else:
            return False
    except (CryptoInvalidSignature, ValueError):
        return False
    return True


def csc_client(owner: str, settings: Any, env: Mapping[str, str]) -> CscClient:
    """The client of a ``kind = "csc"`` key alias or remote signing provider: ``settings``
    has ``url``, ``api_version``, ``timeout_seconds`` and the token settings (``token_env``
    or ``token_file``, or ``client_id`` with ``client_secret_env``/``client_secret_file``
    and ``oauth_token_url``). Secrets are read when a call needs them, never kept in text."""
    from kyso.keystore import read_secret

    if not settings.url:
        raise ConfigError(f"{owner}: url is required for a csc service")
    token: SecretSource | None = None
    secret: SecretSource | None = None
    if settings.token_env or settings.token_file:

        def token() -> str | None:
            return read_secret(owner, "token", settings.token_env, settings.token_file, env, owner)

        token()  # a missing variable or file is a configuration error now, not at signing
    elif settings.client_id:
        if not (settings.client_secret_env or settings.client_secret_file):
            raise ConfigError(f"{owner}: client_id needs client_secret_env or client_secret_file")

        def secret() -> str | None:
            return read_secret(
                owner,
                "client secret",
                settings.client_secret_env,
                settings.client_secret_file,
                env,
                owner,
            )

        secret()
    token_url = settings.oauth_token_url or f"{settings.url.rstrip('/')}/oauth2/token"
    bearer = BearerToken(token, settings.client_id, secret, token_url)
    pin: SecretSource | None = None
    pin_env, pin_file = getattr(settings, "pin_env", None), getattr(settings, "pin_file", None)
    if pin_env or pin_file:

        def pin() -> str | None:
            return read_secret(owner, "PIN", pin_env, pin_file, env, owner)

    try:
        return CscClient(
            owner,
            settings.url,
            bearer,
            api_version=settings.api_version,
            timeout=float(settings.timeout_seconds),
            pin=pin,
        )
    except ValueError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
