"""Software keys: encrypted PKCS#8 PEM or PKCS#12 files, parsed once at start-up."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from kyso.errors import ConfigError
from kyso.keystore.base import DEFAULT_RSA_SCHEME, KeyInfo, RsaScheme, Scheme, SigningKey
from kyso.trust.store import load_certificates

__all__ = ["SoftwareKey", "load_certificates", "load_software_key"]

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class SoftwareKey(SigningKey):
    """A private key held in memory, parsed once; signing costs only the signature."""

    def __init__(self, info: KeyInfo, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        self.info = info
        self._key = private_key

    def __repr__(self) -> str:
        return f"SoftwareKey(alias={self.info.alias!r}, {self.info.algorithm})"

    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            if scheme == "pkcs1v15":
                return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            if scheme == "pss":
                return self._key.sign(data, _PSS, hashes.SHA256())
        elif scheme == "ecdsa":
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        raise ValueError(f"key {self.info.alias!r} cannot sign with scheme {scheme!r}")


def load_software_key(
    alias: str,
    key_file: str | Path,
    passphrase: bytes | None,
    cert_file: str | Path | None = None,
    chain_files: tuple[str, ...] = (),
    rsa_scheme: RsaScheme = DEFAULT_RSA_SCHEME,
) -> SoftwareKey:
    """Load a key file (encrypted PKCS#8 PEM, or PKCS#12 ``.p12``/``.pfx``) and its
    certificate. A PKCS#12 file may carry the certificate and chain itself. ``rsa_scheme``:
    how an RSA key signs documents (RSASSA-PSS by default)."""
    path = Path(key_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"key alias {alias!r}: cannot read key file {path}: {exc.strerror}"
        ) from None
    chain: list[x509.Certificate] = []
    cert: x509.Certificate | None = None
    try:
        if path.suffix.lower() in (".p12", ".pfx"):
            key, p12_cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
            if p12_cert is not None:
                cert = x509.Certificate.load(p12_cert.public_bytes(serialization.Encoding.DER))
            chain = [
                x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in extra
            ]
        else:
            key = serialization.load_pem_private_key(data, passphrase)
    except (ValueError, TypeError):
        # Never say more: the message could otherwise hint at the passphrase.
        raise ConfigError(
            f"key alias {alias!r}: cannot decrypt or parse {path} (wrong passphrase or not a key file)"
        ) from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(f"key alias {alias!r}: only RSA and EC keys are supported")
    if cert_file:
        cert = load_certificates(cert_file)[0]
    if cert is None:
        raise ConfigError(f"key alias {alias!r}: no certificate (set cert_file)")
    for f in chain_files:
        chain.extend(load_certificates(f))
    pub_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if pub_der != cert.public_key.dump():
        raise ConfigError(f"key alias {alias!r}: the certificate does not match the private key")
    info = KeyInfo(
        alias=alias,
        kind="software",
        certificate=cert,
        chain=tuple(chain),
        rsa_scheme=rsa_scheme,
    )
    return SoftwareKey(info, key)
