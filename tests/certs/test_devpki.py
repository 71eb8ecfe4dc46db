"""The dev PKI: generated files, what OpenSSL thinks of them, and the shipped copy."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from kyso.certs.devpki import (
    DEV_KEY_MARKER,
    DEV_ORGANIZATION,
    DEV_PASSPHRASE,
    LEAVES,
    dev_pki_dir,
    generate_dev_pki,
)

BASE_URL = "http://pki.kyso.test:9999"
CAS = ("root-ca", "intermediate-ca")
LEAF_NAMES = tuple(spec.name for spec in LEAVES)
CONTRACT_LEAVES = (
    "hospital-seal", "lab-seal", "audit-log", "dr-an", "dr-binh", "dr-revoked",
    "dr-expired", "dr-future", "tsa", "ocsp",
)  # fmt: skip
VALID_NOW = tuple(n for n in LEAF_NAMES if n not in ("dr-expired", "dr-future"))
TWENTY_YEARS = timedelta(days=20 * 365 + 5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("devpki")
    generate_dev_pki(out, BASE_URL)
    return out


def load_cert(directory: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / f"{name}.cert.pem").read_bytes())


def openssl_verify(directory: Path, name: str, *options: str) -> subprocess.CompletedProcess:
    """``openssl verify`` of a leaf against the root, with the intermediate as untrusted."""
    command = [
        "openssl", "verify", "-CAfile", str(directory / "root-ca.cert.pem"),
        "-untrusted", str(directory / "intermediate-ca.cert.pem"), *options,
        str(directory / f"{name}.cert.pem"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


def with_crls(directory: Path) -> tuple[str, ...]:
    return (
        "-crl_check_all",
        "-CRLfile", str(directory / "root-ca.crl"),
        "-CRLfile", str(directory / "intermediate-ca.crl"),
    )  # fmt: skip


def test_generation_writes_every_file_named_in_the_contract(pki: Path) -> None:
    expected = {"chain.pem", "README.md", "revoked.json", "root-ca.crl", "intermediate-ca.crl"}
    for name in (*CAS, *CONTRACT_LEAVES):
        expected |= {f"{name}.cert.pem", f"{name}.key.pem"}
    expected |= {"dr-an.p12", "dr-binh.p12"}
    assert expected <= {p.name for p in pki.iterdir()}


@pytest.mark.parametrize("name", VALID_NOW)
def test_openssl_accepts_each_currently_valid_leaf(pki: Path, name: str) -> None:
    result = openssl_verify(pki, name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.parametrize(
    ("name", "complaint"),
    [("dr-expired", "certificate has expired"), ("dr-future", "certificate is not yet valid")],
)
def test_openssl_rejects_the_expired_and_the_not_yet_valid_clinician(
    pki: Path, name: str, complaint: str
) -> None:
    result = openssl_verify(pki, name)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_openssl_crl_check_rejects_the_revoked_clinician(pki: Path) -> None:
    result = openssl_verify(pki, "dr-revoked", *with_crls(pki))
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


def test_openssl_crl_check_accepts_a_clinician_that_is_not_revoked(pki: Path) -> None:
    result = openssl_verify(pki, "dr-an", *with_crls(pki))
    assert result.returncode == 0, result.stdout + result.stderr


def test_intermediate_crl_lists_the_revoked_serial_for_key_compromise(pki: Path) -> None:
    crl = x509.load_der_x509_crl((pki / "intermediate-ca.crl").read_bytes())
    serial = load_cert(pki, "dr-revoked").serial_number
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.revocation_date_utc == datetime(2025, 6, 1, tzinfo=UTC)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.is_signature_valid(load_cert(pki, "intermediate-ca").public_key())
    assert len(crl) == 1


@pytest.mark.parametrize("ca", CAS)
def test_crls_run_from_june_2025_to_the_end_of_2055_with_a_number(pki: Path, ca: str) -> None:
    crl = x509.load_der_x509_crl((pki / f"{ca}.crl").read_bytes())
    assert crl.last_update_utc == datetime(2025, 6, 2, tzinfo=UTC)
    assert crl.next_update_utc is not None and crl.next_update_utc.year == 2055
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
    assert crl.is_signature_valid(load_cert(pki, ca).public_key())


def test_revoked_json_names_the_revoked_serial_for_a_responder(pki: Path) -> None:
    records = json.loads((pki / "revoked.json").read_text(encoding="utf-8"))
    assert records == [
        {
            "issuer": "intermediate-ca",
            "certificate": "dr-revoked",
            "serial": load_cert(pki, "dr-revoked").serial_number,
            "serial_hex": format(load_cert(pki, "dr-revoked").serial_number, "x"),
            "revocation_time": "2025-06-01T00:00:00Z",
            "reason": "key_compromise",
        }
    ]


@pytest.mark.parametrize("name", ["tsa", "tsa-ec"])
def test_tsa_certificate_has_only_the_timestamping_eku_and_marks_it_critical(
    pki: Path, name: str
) -> None:
    eku = load_cert(pki, name).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_ocsp_certificate_may_sign_ocsp_responses_and_is_not_itself_checked(pki: Path) -> None:
    extensions = load_cert(pki, "ocsp").extensions
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert extensions.get_extension_for_class(x509.OCSPNoCheck)


def test_intermediate_is_a_ca_limited_to_path_length_zero(pki: Path) -> None:
    root = load_cert(pki, "root-ca").extensions
    inter = load_cert(pki, "intermediate-ca").extensions
    assert root.get_extension_for_class(x509.BasicConstraints).value.ca
    constraints = inter.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = inter.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


@pytest.mark.parametrize("name", LEAF_NAMES)
def test_each_leaf_has_key_identifiers_and_points_at_the_pki_urls(pki: Path, name: str) -> None:
    leaf, issuer = load_cert(pki, name), load_cert(pki, "intermediate-ca")
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    assert leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {(d.access_method, d.access_location.value) for d in aia}
    ca_issuers = (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/pki/intermediate-ca.cer")
    assert ca_issuers in urls
    if name != "ocsp":
        assert (AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/pki/ocsp") in urls
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == f"{BASE_URL}/pki/intermediate-ca.crl"


def test_intermediate_points_at_the_root_certificate_and_crl(pki: Path) -> None:
    inter = load_cert(pki, "intermediate-ca").extensions
    aia = inter.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"{BASE_URL}/pki/root-ca.cer"]
    points = inter.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == f"{BASE_URL}/pki/root-ca.crl"


@pytest.mark.parametrize("name", (*CAS, *LEAF_NAMES))
def test_every_subject_names_the_dev_only_organisation(pki: Path, name: str) -> None:
    subject = load_cert(pki, name).subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == DEV_ORGANIZATION


def test_clinician_names_keep_their_vietnamese_diacritics_as_utf8_strings(pki: Path) -> None:
    der = load_cert(pki, "dr-an").public_bytes(serialization.Encoding.DER)
    subject = asn1_x509.Certificate.load(der).subject
    common_names = [
        attr["value"]
        for rdn in subject.chosen
        for attr in rdn
        if attr["type"].native == "common_name"
    ]
    assert [cn.native for cn in common_names] == ["BS. Nguyễn Văn An"]
    assert common_names[0].name == "utf8_string"
    binh = load_cert(pki, "dr-binh").subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert binh[0].value == "BS. Trần Thị Bình"


@pytest.mark.parametrize("name", (*CAS, *VALID_NOW))
def test_certificates_stay_valid_for_at_least_twenty_years(pki: Path, name: str) -> None:
    cert = load_cert(pki, name)
    assert cert.not_valid_before_utc <= datetime(2025, 1, 1, tzinfo=UTC)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= TWENTY_YEARS
    assert cert.not_valid_after_utc >= datetime(2055, 12, 31, tzinfo=UTC)


def test_chain_pem_holds_the_intermediate_then_the_root(pki: Path) -> None:
    chain = x509.load_pem_x509_certificates((pki / "chain.pem").read_bytes())
    assert chain == [load_cert(pki, "intermediate-ca"), load_cert(pki, "root-ca")]


@pytest.mark.parametrize("name", ["dr-an", "dr-binh"])
def test_pkcs12_bundles_open_with_the_dev_passphrase_in_openssl(pki: Path, name: str) -> None:
    result = subprocess.run(
        ["openssl", "pkcs12", "-in", str(pki / f"{name}.p12"), "-nodes",
         "-passin", f"pass:{DEV_PASSPHRASE.decode()}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "BEGIN PRIVATE KEY" in result.stdout
    bundle = pkcs12.load_pkcs12((pki / f"{name}.p12").read_bytes(), DEV_PASSPHRASE)
    assert bundle.cert is not None and bundle.cert.certificate == load_cert(pki, name)


def test_a_wrong_passphrase_does_not_open_a_dev_key(pki: Path) -> None:
    with pytest.raises(ValueError):
        serialization.load_pem_private_key((pki / "dr-an.key.pem").read_bytes(), b"wrong")


def test_readme_says_dev_only_and_names_every_leaf(pki: Path) -> None:
    readme = (pki / "README.md").read_text(encoding="utf-8")
    assert "DEV ONLY" in readme and "kyso pki init-dev" in readme
    assert all(f"`{name}`" in readme for name in LEAF_NAMES)


# -- the copy shipped as package data ------------------------------------------------------


def test_shipped_dev_pki_directory_is_inside_the_package() -> None:
    assert dev_pki_dir() == Path(__file__).resolve().parents[2] / "certs" / "dev"


@pytest.mark.parametrize("name", (*CAS, *LEAF_NAMES))
def test_shipped_keys_are_marked_dev_only_and_open_with_the_dev_passphrase(name: str) -> None:
    pem = (dev_pki_dir() / f"{name}.key.pem").read_bytes()
    assert pem.startswith(DEV_KEY_MARKER.encode() + b"\n-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, DEV_PASSPHRASE)
    assert key.public_key() == load_cert(dev_pki_dir(), name).public_key()


@pytest.mark.parametrize("name", VALID_NOW)
def test_shipped_leaves_chain_to_the_shipped_root(name: str) -> None:
    result = openssl_verify(dev_pki_dir(), name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_crls_revoke_the_shipped_revoked_clinician() -> None:
    result = openssl_verify(dev_pki_dir(), "dr-revoked", *with_crls(dev_pki_dir()))
    assert "certificate revoked" in result.stdout + result.stderr
