"""The signer-certificate policy: key usage and extended key usage say what a certificate
may sign, and a refusal names what the certificate is for instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.errors import CertificateExpired, CertificateNotForSigning
from kyso.trust import policy
from kyso.trust.policy import check_signer, usage_problem
from kyso.trust.store import load_certificates

PKI = dev_pki_dir()


def issued_by_dev_ca(key_usage: x509.KeyUsage, purposes: list | None) -> asn1_x509.Certificate:
    """A leaf of the dev intermediate CA with the given key usage and extended key usage."""
    ca = x509.load_pem_x509_certificate((PKI / "intermediate-ca.cert.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (PKI / "intermediate-ca.key.pem").read_bytes(), DEV_PASSPHRASE
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usage test")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2045, 1, 1, tzinfo=UTC))
        .add_extension(key_usage, critical=True)
    )
    if purposes is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


SIGNING = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
CA_ONLY = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def test_the_dev_seals_and_clinicians_may_sign() -> None:
    for alias in ("hospital-seal", "lab-seal", "dr-an"):
        assert usage_problem(load_certificates(PKI / f"{alias}.cert.pem")[0]) is None


def test_the_tsa_certificate_is_refused_and_the_refusal_names_its_purpose() -> None:
    tsa = load_certificates(PKI / "tsa.cert.pem")[0]
    with pytest.raises(CertificateNotForSigning, match="time_stamping"):
        check_signer(tsa)


@pytest.mark.parametrize(
    ("key_usage", "purposes", "named"),
    [
        (SIGNING, [ExtendedKeyUsageOID.SERVER_AUTH], "server_auth"),
        (SIGNING, [ExtendedKeyUsageOID.CODE_SIGNING], "code_signing"),
        (CA_ONLY, None, "neither digitalSignature nor nonRepudiation"),
    ],
)
def test_a_certificate_for_something_else_is_refused_with_the_reason(
    key_usage, purposes, named
) -> None:
    problem = usage_problem(issued_by_dev_ca(key_usage, purposes))
    assert problem is not None and named in problem


@pytest.mark.parametrize(
    "purposes",
    [
        [ExtendedKeyUsageOID.EMAIL_PROTECTION],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")],  # documentSigning (RFC 9336)
        None,
    ],
)
def test_a_certificate_for_documents_may_sign(purposes) -> None:
    assert usage_problem(issued_by_dev_ca(SIGNING, purposes)) is None


def test_a_key_whose_certificate_expires_is_refused_from_then_on_though_it_signed_before(
    service, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = service.kyso.signing_key("lab-seal")  # its certificate's profile is remembered now
    later = key.info.certificate.not_valid_after + timedelta(days=1)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return later

    monkeypatch.setattr(policy, "datetime", Later)
    with pytest.raises(CertificateExpired, match="lab-seal"):
        service.kyso.signing_key("lab-seal")
    with pytest.raises(CertificateExpired):
        service.kyso.signing_key("lab-seal")  # every time, not only on the first read
