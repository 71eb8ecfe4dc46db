"""Keys on PKCS#11 tokens and HSMs, and the token helpers behind ``kyso token``.

:class:`Pkcs11Key` is a :class:`~kyso.keystore.base.SigningKey` whose private key never leaves
its token. It selects the token by label (slot numbers change when tokens are initialised or
plugged in), reads the PIN from its source only at login time, and follows the per-process
rules of :mod:`kyso.keystore.pkcs11_session`: one module, one logged-in session per token, one
lock around every token call, nothing opened before the first use in a process.

Every token failure (wrong PIN, token missing or pulled out, any PKCS#11 error) is a
:class:`~kyso.errors.TokenUnavailable` naming the alias and the reason, never the PIN; the
session is dropped, so the next call logs in again and the key recovers when the token is back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PinExpired, PinIncorrect, PinLocked, PKCS11Error

from kyso.errors import InvalidRequest, TokenUnavailable
from kyso.formats import ecdsa_raw_to_der
from kyso.keystore.base import DEFAULT_RSA_SCHEME, KeyInfo, RsaScheme, Scheme, SigningKey
from kyso.keystore.pkcs11_session import (
    PinSource,
    TokenFailure,
    describe,
    drop_session,
    find_private_key,
    process_lock,
    token_session,
)
from kyso.keystore.software import load_certificates

# DER prefix of a DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1).
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
# MGF1 with SHA-256 and a 32-byte salt: what SPEC section 4 means by PSS.
PSS_SHA256 = (Mechanism.SHA256, MGF.SHA256, 32)
_PADDING = {"pkcs1v15": padding.PKCS1v15(), "pss": padding.PSS(padding.MGF1(hashes.SHA256()), 32)}
_TRIES = 3  # of a token call that failed (see PKCS11Key._guarded)
_RETRY_PAUSE_SECONDS = 0.05  # times the attempt number, before each retry


class KeyMismatch(InvalidRequest, ValueError):
    """The key on the token is not of the kind the signature needs (RSA vs EC)."""


@dataclass(frozen=True)
class SigningPlan:
    """What to ask of the token for one SHA-256 signature."""

    mechanism: Mechanism
    param: tuple[Any, ...] | None
    message: bytes  # what the token is given: the data, a digest or a DigestInfo


def signing_plan(
    key_type: str, scheme: Scheme, data: bytes, mechanisms: Iterable[Mechanism]
) -> SigningPlan:
    """The mechanism for a SHA-256 ``scheme`` signature of ``data`` among those the token offers.

    RSA prefers the hashing mechanisms and falls back to hashing here (tokens that offer
    only ``CKM_RSA_PKCS`` / ``CKM_RSA_PKCS_PSS``); EC always hashes here, since SoftHSM 2.6
    and many tokens offer only raw ``CKM_ECDSA``.
    """
    offered = frozenset(mechanisms)
    digest = hashlib.sha256(data).digest()
    if scheme == "ecdsa":
        _require(key_type == "ec", key_type, scheme)
        return SigningPlan(Mechanism.ECDSA, None, digest)
    _require(key_type == "rsa", key_type, scheme)
    if scheme == "pkcs1v15":
        if Mechanism.SHA256_RSA_PKCS in offered:
            return SigningPlan(Mechanism.SHA256_RSA_PKCS, None, data)
        return SigningPlan(Mechanism.RSA_PKCS, None, DIGEST_INFO_SHA256 + digest)
    if scheme == "pss":
        if Mechanism.SHA256_RSA_PKCS_PSS in offered:
            return SigningPlan(Mechanism.SHA256_RSA_PKCS_PSS, PSS_SHA256, data)
        return SigningPlan(Mechanism.RSA_PKCS_PSS, PSS_SHA256, digest)
    raise ValueError(f"unknown signature scheme {scheme!r}")


_SCHEME_NAMES = {"ecdsa": "ECDSA", "pkcs1v15": "RSA PKCS#1 v1.5", "pss": "RSASSA-PSS"}


def _require(ok: bool, key_type: str, scheme: str) -> None:
    if not ok:
        raise KeyMismatch(
            f"a {_SCHEME_NAMES.get(scheme, scheme)} signature does not apply to an "
            f"{key_type.upper()} key: use the key that belongs to the certificate"
        )


def key_type_of(key: Any) -> str:
    """``rsa`` or ``ec`` for a private key object on the token."""
    return {KeyType.RSA: "rsa", KeyType.EC: "ec"}.get(key.key_type, str(key.key_type))


def needs_login_each_time(key: Any) -> bool:
    """Whether the key wants the PIN again for every signature (``CKA_ALWAYS_AUTHENTICATE``)."""
    try:
        return bool(key[Attribute.ALWAYS_AUTHENTICATE])
    except PKCS11Error:
        return False  # a token that does not know the attribute does not ask for it


def token_sign(key: Any, plan: SigningPlan, pin: PinSource, always_authenticate: bool) -> bytes:
    """One signature on the token; the PIN again only for keys that demand it."""
    if not always_authenticate:
        return key.sign(plan.message, mechanism=plan.mechanism, mechanism_param=plan.param)
    try:
        return key.sign(
            plan.message, mechanism=plan.mechanism, mechanism_param=plan.param, pin=pin()
        )
    except (PinIncorrect, PinLocked, PinExpired) as exc:
        raise TokenFailure(describe(exc)) from None  # never retried: each try counts


class Pkcs11Key(SigningKey):
    """A private key on a PKCS#11 token, selected by token label and key label."""

    def __init__(
        self,
        alias: str,
        module: str,
        token_label: str,
        key_label: str,
        pin: PinSource,
        *,
        cert_file: str | Path | None = None,
        chain: Sequence[x509.Certificate] = (),
        rsa_scheme: RsaScheme = DEFAULT_RSA_SCHEME,
    ) -> None:
        """Nothing touches the token here: the first ``info``, ``check`` or ``sign`` does."""
        self.alias = alias
        self.module_path = module
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin  # a callable: the PIN itself is read at login time and kept nowhere
        self._chain = tuple(chain)
        self._rsa_scheme: RsaScheme = rsa_scheme
        self._certificate = load_certificates(cert_file)[0] if cert_file else None
        self._info: KeyInfo | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"Pkcs11Key(alias={self.alias!r}, module={self.module_path!r}, "
            f"token_label={self.token_label!r}, key_label={self.key_label!r})"
        )

    @property
    def info(self) -> KeyInfo:  # type: ignore[override]  # read lazily: the token may be out
        """The certificate and what goes with it, read from the token on first use."""
        if self._info is None:
            with process_lock():
                if self._info is None:
                    self._info = self._guarded(self._load_info)
        return self._info

    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        """A SHA-256 ``scheme`` signature of ``data`` made on the token (ECDSA as DER)."""
        key_type = self.info.key_type
        with process_lock():
            raw = self._guarded(lambda: self._sign_raw(key_type, data, scheme))
        return ecdsa_raw_to_der(raw) if scheme == "ecdsa" else raw

    def check(self) -> None:
        """Log in if needed and touch the key handle: raises TokenUnavailable if it fails."""
        self.info  # noqa: B018 - loading the certificate is part of being usable
        with process_lock():
            self._guarded(lambda: self._key()[0][Attribute.KEY_TYPE])

    def close(self) -> None:
        """Forget this key; the token session stays for the process's other keys."""
        with process_lock():
            self._closed = True

    def _sign_raw(self, key_type: str, data: bytes, scheme: Scheme) -> bytes:
        key, always_authenticate = self._key()
        mechanisms = token_session(self.module_path, self.token_label, self._pin).mechanisms
        plan = signing_plan(key_type, scheme, data, mechanisms)
        return token_sign(key, plan, self._pin, always_authenticate)

    def _key(self) -> tuple[Any, bool]:
        """The private key handle (found once per session) and whether it re-asks the PIN."""
        opened = token_session(self.module_path, self.token_label, self._pin)
        cached = opened.objects.get(self.key_label)
        if cached is None:
            key = find_private_key(opened.session, self.key_label)
            cached = opened.objects[self.key_label] = (key, needs_login_each_time(key))
        return cached

    def _guarded(self, call: Any) -> Any:
        """Run a token call, again on a fresh session if the token failed it.

        The retries cover a token re-inserted or reset since the last call, and SoftHSM's
        brief failures while another process logs in (it rewrites the token's file at every
        login: a reader at that moment may see a general error, or a token whose user PIN is
        "not initialised"), hence a short pause before each. A failure that a retry cannot
        mend (PIN refused, token missing) is not retried. What still fails is TokenUnavailable.
        """
        if self._closed:
            raise TokenUnavailable(
                f"key alias {self.alias!r}: token unavailable (the key was closed)"
            )
        for attempt in range(_TRIES):
            time.sleep(_RETRY_PAUSE_SECONDS * attempt)
            try:
                return call()
            except TokenFailure as failure:
                reason = failure.reason
                break
            except PKCS11Error as exc:
                reason = describe(exc)
                drop_session(self.module_path, self.token_label)
        drop_session(self.module_path, self.token_label)
        raise TokenUnavailable(f"key alias {self.alias!r}: token unavailable ({reason})") from None

    def _load_info(self) -> KeyInfo:
        key, _ = self._key()
        certificate = self._certificate or self._certificate_on_token(key)
        key_type = "ec" if certificate.public_key.algorithm == "ec" else "rsa"
        if key_type != key_type_of(key):
            raise TokenFailure("the certificate does not belong to this key")
        info = KeyInfo(
            alias=self.alias,
            kind="pkcs11",
            certificate=certificate,
            chain=self._chain,
            rsa_scheme=self._rsa_scheme,
        )
        self._prove_certificate_belongs_to_key(info)
        return info

    def _certificate_on_token(self, key: Any) -> x509.Certificate:
        """The certificate labelled like the key, or else the one with the key's CKA_ID."""
        session = token_session(self.module_path, self.token_label, self._pin).session
        found = _certificates(session, {Attribute.LABEL: self.key_label})
        if not found:
            found = _certificates(session, {Attribute.ID: key[Attribute.ID]})
        if len(found) != 1:
            what = "no certificate" if not found else "more than one certificate"
            raise TokenFailure(
                f"{what} for key {self.key_label!r} on the token; name one with cert_file"
            )
        return found[0]

    def _prove_certificate_belongs_to_key(self, info: KeyInfo) -> None:
        """Sign a probe on the token, with the scheme documents will be signed with, and
        verify it with the certificate's public key."""
        probe = b"kyso: does this certificate belong to this key?"
        raw = self._sign_raw(info.key_type, probe, info.default_scheme)
        public_key = serialization.load_der_public_key(info.certificate.public_key.dump())
        try:
            if isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(ecdsa_raw_to_der(raw), probe, ec.ECDSA(hashes.SHA256()))
            elif isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(raw, probe, _PADDING[info.default_scheme], hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise TokenFailure("the certificate does not belong to this key") from None


def _certificates(session: Any, template: dict[Attribute, Any]) -> list[x509.Certificate]:
    objects = session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, **template})
    return [x509.Certificate.load(obj[Attribute.VALUE]) for obj in objects]
