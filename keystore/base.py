"""The interface every key provider offers: a certificate, its chain, and ``sign``.

Signing code (PAdES, JAdES, checkpoints) sees only :class:`SigningKey`; whether the
private key sits in a file or on a PKCS#11 token is the provider's business.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from asn1crypto import keys as asn1_keys
from asn1crypto import x509

Scheme = Literal["pkcs1v15", "pss", "ecdsa"]
RsaScheme = Literal["pss", "pkcs1v15"]
RSA_SCHEMES: tuple[RsaScheme, ...] = ("pss", "pkcs1v15")
# Circular 15/2025/TT-BKHCN asks RSASSA-PSS for signing; a key alias may keep PKCS#1 v1.5
# for a receiver that still needs it (``rsa_scheme = "pkcs1v15"``).
DEFAULT_RSA_SCHEME: RsaScheme = "pss"


@dataclass(frozen=True)
class KeyInfo:
    """What is public about a key alias."""

    alias: str
    kind: Literal["software", "pkcs11", "csc"]
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, leaf excluded, as configured
    rsa_scheme: RsaScheme = DEFAULT_RSA_SCHEME  # how an RSA key signs documents

    def __post_init__(self) -> None:
        if self.rsa_scheme not in RSA_SCHEMES:
            raise ValueError(f"rsa_scheme must be 'pss' or 'pkcs1v15', not {self.rsa_scheme!r}")

    @property
    def key_type(self) -> Literal["rsa", "ec"]:
        algo = self.certificate.public_key.algorithm
        if algo == "rsa":
            return "rsa"
        if algo == "ec":
            return "ec"
        raise ValueError(f"unsupported public key algorithm {algo!r}")

    @property
    def algorithm(self) -> str:
        """A human name of the key algorithm: ``RSA-2048``, ``EC-P256``."""
        pub: asn1_keys.PublicKeyInfo = self.certificate.public_key
        if pub.algorithm == "rsa":
            return f"RSA-{pub.bit_size}"
        curve = pub.curve[1]
        return {"secp256r1": "EC-P256", "secp384r1": "EC-P384", "secp521r1": "EC-P521"}.get(
            curve, f"EC-{curve}"
        )

    @property
    def default_scheme(self) -> Scheme:
        """The scheme of document signatures (CMS, JWS): the alias's ``rsa_scheme`` for an
        RSA key (RSASSA-PSS unless set to PKCS#1 v1.5), ECDSA for an EC key."""
        return "ecdsa" if self.key_type == "ec" else self.rsa_scheme

    @property
    def classic_scheme(self) -> Scheme:
        """PKCS#1 v1.5 for RSA, ECDSA for EC: what audit checkpoints (SPEC section 7) and
        the built-in TSA's tokens are signed with, whatever ``rsa_scheme`` says."""
        return "ecdsa" if self.key_type == "ec" else "pkcs1v15"

    @property
    def jws_alg(self) -> str:
        """``ES256`` for an EC key; ``PS256``, or ``RS256`` where the alias keeps PKCS#1 v1.5."""
        return {"ecdsa": "ES256", "pss": "PS256", "pkcs1v15": "RS256"}[self.default_scheme]

    @property
    def subject(self) -> str:
        return self.certificate.subject.human_friendly

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after

    @property
    def cert_sha256(self) -> str:
        return hashlib.sha256(self.certificate.dump()).hexdigest()


class SigningKey(ABC):
    """A private key that can sign, and what is public about it."""

    info: KeyInfo

    @abstractmethod
    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        """Sign ``data`` hashed with SHA-256.

        ``scheme`` is ``pkcs1v15`` or ``pss`` (MGF1-SHA-256, salt length 32) for RSA keys
        and ``ecdsa`` for EC keys. ECDSA signatures are returned DER-encoded
        (``Ecdsa-Sig-Value``), as CMS wants them; JWS converts to raw ``r||s`` itself.
        Raises :class:`kyso.errors.TokenUnavailable` when the key cannot be used now.
        """

    def check(self) -> None:
        """Raise :class:`kyso.errors.TokenUnavailable` if the key cannot sign now."""
        return None

    def close(self) -> None:
        """Release sessions or handles; the key is unusable afterwards."""
        return None
