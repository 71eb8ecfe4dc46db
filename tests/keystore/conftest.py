"""SoftHSM tokens for the PKCS#11 key provider tests.

Each token holds an imported RSA-2048 key, an EC P-256 key generated on the token and an EC key
that asks for the PIN at every signature, each with a certificate from a throw-away CA
(:func:`softhsm.token_with_keys`). ``kyso-hsm`` serves most tests; ``kyso-spare`` gets pulled out;
``kyso-pin`` is never logged in to except by the wrong-PIN test; ``kyso-clinician`` serves
``sign_many``, which logs in and out by itself.

:func:`dev_tokens` adds ``kyso-api`` and ``kyso-second`` for the API tests, whose certificates
the dev intermediate CA issues, so that the dev root makes them trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import softhsm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kyso.keystore import pkcs11_session

PIN = "user-pin-1234"


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> softhsm.Hsm:
    """SoftHSM with the tokens ``kyso-hsm``, ``kyso-spare``, ``kyso-pin``, ``kyso-clinician``."""
    instance = softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    ca = softhsm.TestCa.create()
    tokens = {
        label: softhsm.token_with_keys(ca, label, PIN, prefix)
        for label, prefix in (
            ("kyso-hsm", "seal"),
            ("kyso-spare", "spare"),
            ("kyso-pin", "pin"),
            ("kyso-clinician", "dr"),
        )
    }
    # A module this process initialised before (the tokens of dev_tokens) sees tokens made
    # since only once it re-reads its slots: do it now, not at the first key that misses one.
    with pkcs11_session.process_lock():
        for label in tokens:
            pkcs11_session.find_token_or_rescan(instance.module, label)
    return softhsm.Hsm(module=instance.module, ca=ca, tokens=tokens)


# -- tokens whose certificates the dev PKI issued (tests of the HTTP API with PKCS#11 keys) --

CANARY_PIN = "canary-PIN-7f3a9"  # must appear in nothing the service writes or answers
OTHER_PIN = "other-pin-2468"


@dataclass(frozen=True)
class DevTokens:
    """``kyso-api`` (PIN :data:`CANARY_PIN`): ``hsm-rsa``, an imported RSA-2048 key, and
    ``hsm-ec``, a P-256 key generated on the token; ``kyso-second`` (PIN :data:`OTHER_PIN`):
    ``hsm-b``, a P-256 key generated on the token. Each certificate is issued by the dev
    intermediate CA, so the dev root makes them trusted (pdfsig, openssl)."""

    module: str
    certificates: dict[str, x509.Certificate]  # by key label
    canary_pin: str = CANARY_PIN  # the real PIN of kyso-api


@pytest.fixture(scope="session")
def dev_tokens(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> DevTokens:
    softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    issuer = DevIntermediate.load(pki)
    certificates = {}
    softhsm.init_token("kyso-api", softhsm.SO_PIN, CANARY_PIN)
    softhsm.init_token("kyso-second", softhsm.SO_PIN, OTHER_PIN)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificates["hsm-rsa"] = issuer.issue(rsa_key.public_key(), "HSM RSA seal (TEST)")
    softhsm.import_key_and_cert(
        "kyso-api", CANARY_PIN, rsa_key, certificates["hsm-rsa"], "hsm-rsa", b"\x11"
    )
    for token, pin, label, key_id in (
        ("kyso-api", CANARY_PIN, "hsm-ec", b"\x12"),
        ("kyso-second", OTHER_PIN, "hsm-b", b"\x21"),
    ):
        public_key = softhsm.generate_ec_key_on_token(token, pin, label, key_id)
        certificates[label] = issuer.issue(public_key, f"HSM EC seal {label} (TEST)")
        softhsm.write_certificate(token, pin, certificates[label], label, key_id)
    return DevTokens(softhsm.MODULE, certificates)


@dataclass(frozen=True)
class DevIntermediate:
    """The dev PKI's issuing CA (its key is published: DEV ONLY), issuing signer certificates."""

    key: Any
    cert: x509.Certificate
    sibling: x509.Certificate  # a leaf it issued, whose CRL and OCSP addresses are copied

    @classmethod
    def load(cls, pki: Path) -> DevIntermediate:
        from kyso.certs.devpki import DEV_PASSPHRASE

        key = serialization.load_pem_private_key(
            (pki / "intermediate-ca.key.pem").read_bytes(), DEV_PASSPHRASE
        )
        cert = x509.load_pem_x509_certificate((pki / "intermediate-ca.cert.pem").read_bytes())
        sibling = x509.load_pem_x509_certificate((pki / "dr-an.cert.pem").read_bytes())
        return cls(key, cert, sibling)

    def issue(self, public_key: Any, common_name: str) -> x509.Certificate:
        """A signer certificate (digitalSignature, nonRepudiation; EKU emailProtection and
        documentSigning, which NSS wants) valid from an hour ago for a year."""
        from kyso.certs.devpki import SIGNER_EXTENDED_KEY_USAGE, SIGNER_KEY_USAGE

        now = dt.datetime.now(dt.UTC)
        issuer_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kyso DEV ONLY"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(SIGNER_KEY_USAGE, critical=True)
            .add_extension(SIGNER_EXTENDED_KEY_USAGE, critical=False)
            # pdfsig -no-ocsp calls a certificate without these addresses "Unknown issue".
            .add_extension(self._copied(x509.CRLDistributionPoints), critical=False)
            .add_extension(self._copied(x509.AuthorityInformationAccess), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def _copied(self, kind: type) -> Any:
        return self.sibling.extensions.get_extension_for_class(kind).value
