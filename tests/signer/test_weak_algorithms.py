"""SHA-1, MD5 and weak keys never sign with kyso, and verification reports signatures made
with them by others as weak: ``INDETERMINATE``/``CRYPTO_CONSTRAINTS_FAILURE``, not passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from support import corpus_pdfs

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.base import KeyInfo
from kyso.keystore.software import SoftwareKey
from kyso.signer.jades import sign_json
from kyso.signer.verify.json import verify_json
from kyso.signer.verify.pdf import verify_pdf

PKI = dev_pki_dir()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def issued_by_dev_ca(bits: int) -> tuple[rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]:
    """(key, certificate, issuing CA) of an RSA signer of ``bits`` under the dev issuing CA."""
    ca = x509.load_pem_x509_certificate((PKI / "intermediate-ca.cert.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (PKI / "intermediate-ca.key.pem").read_bytes(), DEV_PASSPHRASE
    )
    key = rsa.generate_private_key(65537, bits)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Old signer RSA-{bits}")]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    return key, cert, ca


def signed_elsewhere(bits: int, md_algorithm: str) -> bytes:
    """A PDF signed by another tool (pyHanko's own signer) with ``md_algorithm``."""
    key, cert, ca = issued_by_dev_ca(bits)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(ca)]),
    )
    out = BytesIO()
    meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm=md_algorithm)
    writer = IncrementalPdfFileWriter(BytesIO(corpus_pdfs()[0].read_bytes()))
    signers.PdfSigner(meta, signer).sign_pdf(writer, output=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("bits", "md_algorithm", "said"),
    [(2048, "sha1", "SHA-1"), (1024, "sha256", "RSA key of 1024 bits")],
)
def test_a_pdf_signed_with_a_weak_algorithm_or_key_is_reported_weak(
    bits: int, md_algorithm: str, said: str, settings
) -> None:
    (sig,) = verify_pdf(signed_elsewhere(bits, md_algorithm), settings).signatures
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")
    assert sig.intact and said in (sig.message or "")


def test_a_sound_signature_by_the_same_kind_of_signer_passes(settings) -> None:
    (sig,) = verify_pdf(signed_elsewhere(2048, "sha256"), settings).signatures
    assert sig.indication == "TOTAL_PASSED", sig


@pytest.mark.filterwarnings("ignore:Key size should be")  # joserfc says so too
def test_a_jws_signed_by_a_1024_bit_key_is_reported_weak(settings) -> None:
    key, cert, ca = issued_by_dev_ca(1024)
    chain = (_asn1(ca),)
    weak = SoftwareKey(KeyInfo("old", "software", _asn1(cert), chain), key)  # no start-up check here
    made = sign_json({"x": 1}, weak, "B-B")
    (sig,) = verify_json(made.jws, None, settings).signatures
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")
    assert "1024 bits" in (sig.message or "")
