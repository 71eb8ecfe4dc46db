"""B-LT and B-LTA without HTTP: placeholder sizing with a long chain, archive timestamps
added after the signer's certificate expired, and what extension refuses.

The PKI is the generated one of tests/ltv_support.py (its CRLs issued in-process at any
moment, its TSA called in-process with any clock), so a test can stand in 2035.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from ltv_support import SHORT_LIVED, LtvPki, ltv_pki
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko_certvalidator import ValidationContext
from support import CORPUS
from verifiers import openssl_ts_verify, signatures_of

from kyso.errors import InvalidRequest, RevocationUnavailable
from kyso.keystore.base import KeyInfo
from kyso.keystore.software import SoftwareKey, load_certificates
from kyso.signer.ltv import async_extend_pdf
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import TimestampClient, TimestampSource
from kyso.signer.verify.pdf import verify_pdf
from kyso.signer.verify.report import VerifySettings

__all__ = ["ltv_pki"]  # the fixture, imported for this module

MINIMAL = CORPUS / "pdf/001-trivial/minimal-document.pdf"
IN_2035 = datetime(2035, 1, 1, tzinfo=UTC)
IN_2040 = datetime(2040, 1, 1, tzinfo=UTC)


def tsa_at(pki: LtvPki, moment: datetime | None = None) -> TimestampClient:
    """The generated PKI's TSA called in-process, its clock at ``moment`` (default: now)."""
    key = pki.kyso.keystore.get("tsa")
    tsa = TimestampAuthority(key, clock=(lambda: moment) if moment else lambda: datetime.now(UTC))
    return TimestampClient([TimestampSource("in-process TSA", tsa.respond)])


def context_at(pki: LtvPki, moment: datetime | None = None, **extra) -> ValidationContext:
    """Trust in the generated root, with its CRLs as issued at ``moment`` (no fetching)."""
    roots = extra.pop("roots", [])
    crls = extra.pop("crls", [])
    return ValidationContext(
        trust_roots=[*load_certificates(pki.root_pem), *roots],
        crls=[*pki.kyso.dev_revocation.crls(now=moment), *crls],
        moment=moment,
        allow_fetching=False,
        revocation_mode="require",
    )


def settings_for(pki: LtvPki, when: datetime | None = None, roots=()) -> VerifySettings:
    """Verification trusting the generated root, offline. At a later moment ``when``, with
    the CRLs its CAs publish then, as a validator of that day would fetch them: the DSS
    proves the past, current revocation data the present (of the last archive TSA)."""
    crls = tuple(pki.kyso.dev_revocation.crls(now=when)) if when else ()
    return VerifySettings(
        trust_roots=(*load_certificates(pki.root_pem), *roots),
        validation_time=when,
        allow_fetching=False,
        crls=crls,
    )


def sign(data: bytes, key, level: str, pki: LtvPki, **context_extra) -> bytes:
    """Sign at ``level`` as the service does: B-T first, then the validation data, gathered
    once the signature exists."""
    first = "B-T" if level in ("B-LT", "B-LTA") else level
    signed = asyncio.run(async_sign_pdf(data, key, PdfSignOptions(level=first), tsa_at(pki))).pdf
    if first == level:
        return signed
    context = context_at(pki, **context_extra)
    return asyncio.run(async_extend_pdf(signed, level, tsa_at(pki), context)).pdf


def document_timestamps(pdf: bytes) -> list[str]:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    return [emb.field_name for emb in reader.embedded_timestamp_signatures]


# -- a four-level chain of RSA-4096 certificates ----------------------------------------


def _ca_pair(name: str, issuer=None, issuer_key=None, ca: bool = True, bits: int = 4096):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.KeyUsage(not ca, ca is False, False, False, False, ca, ca, False, False), True
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def _crl(ca: x509.Certificate, key) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@pytest.fixture(scope="module")
def long_chain():
    """(signing key, root, CRLs): leaf <- issuing CA <- policy CA <- root, RSA-4096 each."""
    root, root_key = _ca_pair("Long chain root")
    policy, policy_key = _ca_pair("Long chain policy CA", root, root_key)
    issuing, issuing_key = _ca_pair("Long chain issuing CA", policy, policy_key)
    leaf, leaf_key = _ca_pair("Long chain signer", issuing, issuing_key, ca=False)
    chain = tuple(_asn1(c) for c in (issuing, policy, root))
    key = SoftwareKey(KeyInfo("long-chain", "software", _asn1(leaf), chain), leaf_key)
    crls = [_crl(root, root_key), _crl(policy, policy_key), _crl(issuing, issuing_key)]
    return key, _asn1(root), crls


def test_a_b_lta_signature_with_a_four_level_rsa_4096_chain_fits_its_placeholder(
    long_chain, ltv_pki: LtvPki, tmp_path: Path
) -> None:
    key, root, crls = long_chain
    signed = sign(MINIMAL.read_bytes(), key, "B-LTA", ltv_pki, roots=[root], crls=crls)
    (signature_der, _), (archive_der, archive_range) = signatures_of(signed)
    certs = cms.ContentInfo.load(signature_der)["content"]["certificates"]
    assert len(certs) == 4  # the signer, both CAs and the root: the dry run counted them
    report = verify_pdf(signed, settings_for(ltv_pki, roots=[root]))
    (sig,) = report.signatures
    assert (sig.indication, sig.level, sig.revocation) == ("TOTAL_PASSED", "B-LTA", "good")
    verdict = openssl_ts_verify(
        archive_der, archive_range, ltv_pki.root_pem, ltv_pki.chain_pem, tmp_path
    )
    assert "Verification: OK" in verdict.stdout, verdict.stdout + verdict.stderr


# -- archive timestamps after the signer's certificate expired --------------------------


@pytest.fixture(scope="module")
def archived(ltv_pki: LtvPki) -> bytes:
    """A B-LTA signature by a certificate that expires at the end of 2030, extended in 2035
    (CRLs and the TSA's clock of 2035), as an archive does every few years."""
    key = ltv_pki.kyso.keystore.get(SHORT_LIVED)
    signed = sign(MINIMAL.read_bytes(), key, "B-LTA", ltv_pki)
    extended = asyncio.run(
        async_extend_pdf(signed, "B-LTA", tsa_at(ltv_pki, IN_2035), context_at(ltv_pki, IN_2035))
    )
    assert extended.skipped == ("signature Signature1",)
    assert extended.archive_timestamp == "Timestamp2"
    return extended.pdf


def test_an_archive_extends_a_b_lta_document_after_the_signer_certificate_expired(
    archived: bytes,
) -> None:
    assert document_timestamps(archived) == ["Timestamp1", "Timestamp2"]


def test_the_twice_archived_document_passes_in_2040(archived: bytes, ltv_pki: LtvPki) -> None:
    (sig,) = verify_pdf(archived, settings_for(ltv_pki, IN_2040)).signatures
    assert (sig.indication, sig.level, sig.trusted) == ("TOTAL_PASSED", "B-LTA", True), sig


def test_a_b_lt_document_cannot_be_extended_once_its_signer_certificate_expired(
    ltv_pki: LtvPki,
) -> None:
    key = ltv_pki.kyso.keystore.get(SHORT_LIVED)
    signed = sign(MINIMAL.read_bytes(), key, "B-LT", ltv_pki)
    with pytest.raises(InvalidRequest, match="should have been extended before"):
        asyncio.run(
            async_extend_pdf(
                signed, "B-LTA", tsa_at(ltv_pki, IN_2035), context_at(ltv_pki, IN_2035)
            )
        )


# -- what extension refuses ---------------------------------------------------------------


def test_a_signature_without_a_signature_timestamp_is_not_extended(ltv_pki: LtvPki) -> None:
    key = ltv_pki.kyso.keystore.get("hospital-seal")
    bare = sign(MINIMAL.read_bytes(), key, "B-B", ltv_pki)
    with pytest.raises(InvalidRequest, match=r"Signature1 have no signature timestamp \(B-B\)"):
        asyncio.run(async_extend_pdf(bare, "B-LT", tsa_at(ltv_pki), context_at(ltv_pki)))


def test_an_unsigned_pdf_is_not_extended(ltv_pki: LtvPki) -> None:
    with pytest.raises(InvalidRequest, match="no signature to extend"):
        asyncio.run(
            async_extend_pdf(MINIMAL.read_bytes(), "B-LT", tsa_at(ltv_pki), context_at(ltv_pki))
        )


def test_b_lt_without_revocation_data_fails_rather_than_returning_less(ltv_pki: LtvPki) -> None:
    key = ltv_pki.kyso.keystore.get("lab-seal")
    empty = ValidationContext(
        trust_roots=load_certificates(ltv_pki.root_pem),
        crls=[],
        allow_fetching=False,
        revocation_mode="require",
    )
    options = PdfSignOptions(level="B-LT")
    with pytest.raises(RevocationUnavailable, match="no CRL or OCSP answer"):
        asyncio.run(async_sign_pdf(MINIMAL.read_bytes(), key, options, tsa_at(ltv_pki), empty))
