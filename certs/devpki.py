"""kyso's development PKI: one root, one intermediate, and the leaves the dev service uses.

Everything written here is DEV ONLY. The private keys ship with the package and their
passphrase is :data:`DEV_PASSPHRASE`, printed right below; every subject names the
organisation ``kyso DEV ONLY`` and every key file starts with :data:`DEV_KEY_MARKER`.
``kyso pki init-dev`` (or ``python -m kyso.certs.devpki OUT_DIR``) regenerates it; the file
names are a contract that the keystore, the TSA, the OCSP responder and the tests rely on.

Dates are fixed, not taken from the clock, so that the shipped PKI and the tests keep working
for decades: leaves are valid 2025-01-01 to 2055-12-31, ``dr-revoked`` is revoked on
2025-06-01, and both CRLs run from 2025-06-02 to 2055-12-31.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from kyso.certs.devreadme import readme

DEV_PASSPHRASE = b"kyso-dev-only"
DEV_KEY_MARKER = "# DEV ONLY: published development key, never use in production"
DEV_ORGANIZATION = "kyso DEV ONLY"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"

KeyKind = Literal["rsa2048", "rsa3072", "ec-p256"]
Profile = Literal["seal", "clinician", "tsa", "ocsp"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# The CAs start in 2019 so that dr-expired (2020-2024) chains to issuers that were valid
# while it was: a signature "made in 2023" with it then validates as expired, not as broken.
CA_NOT_BEFORE = _utc(2019, 1, 1)
NOT_BEFORE = _utc(2025, 1, 1)
NOT_AFTER = _utc(2055, 12, 31, 23, 59, 59)
REVOCATION_TIME = _utc(2025, 6, 1)
CRL_THIS_UPDATE = _utc(2025, 6, 2)
CRL_NEXT_UPDATE = NOT_AFTER

ROOT_NAME = "root-ca"
INTERMEDIATE_NAME = "intermediate-ca"


@dataclass(frozen=True)
class LeafSpec:
    """One end-entity certificate of the dev PKI, issued by the intermediate."""

    name: str  # file stem: <name>.cert.pem, <name>.key.pem
    common_name: str
    key: KeyKind
    profile: Profile
    purpose: str  # one line for README.md
    unit: str | None = None  # organizationalUnitName
    not_before: datetime = NOT_BEFORE
    not_after: datetime = NOT_AFTER
    revoked: bool = False
    pkcs12: bool = False


LEAVES: tuple[LeafSpec, ...] = (
    LeafSpec("hospital-seal", "Bệnh viện Đa khoa kyso (DEV ONLY)", "rsa2048", "seal",
             "organisation seal of the hospital (RSA 2048)"),
    LeafSpec("lab-seal", "Khoa Xét nghiệm - Bệnh viện Đa khoa kyso (DEV ONLY)", "ec-p256", "seal",
             "seal of the laboratory (ECDSA P-256)", unit="Khoa Xét nghiệm"),
    LeafSpec("audit-log", "Nhật ký kiểm toán kyso (DEV ONLY)", "ec-p256", "seal",
             "signs audit-log checkpoints (ECDSA P-256)"),
    LeafSpec("dr-an", "BS. Nguyễn Văn An", "rsa2048", "clinician",
             "clinician, valid (RSA 2048); also dr-an.p12", unit="Khoa Nội", pkcs12=True),
    LeafSpec("dr-binh", "BS. Trần Thị Bình", "ec-p256", "clinician",
             "clinician, valid (ECDSA P-256); also dr-binh.p12", unit="Khoa Nhi", pkcs12=True),
    LeafSpec("dr-revoked", "BS. Lê Văn Cường", "rsa2048", "clinician",
             "clinician, revoked 2025-06-01 (keyCompromise) in intermediate-ca.crl",
             unit="Khoa Ngoại", revoked=True),
    LeafSpec("dr-expired", "BS. Phạm Thị Dung", "rsa2048", "clinician",
             "clinician, expired (valid 2020-01-01 to 2024-12-31)", unit="Khoa Sản",
             not_before=_utc(2020, 1, 1), not_after=_utc(2024, 12, 31, 23, 59, 59)),
    LeafSpec("dr-future", "BS. Võ Minh Đức", "rsa2048", "clinician",
             "clinician, not yet valid (valid 2050-01-01 to 2055-12-31)", unit="Khoa Mắt",
             not_before=_utc(2050, 1, 1)),
    LeafSpec("tsa", "Dịch vụ cấp dấu thời gian kyso (DEV ONLY)", "rsa2048", "tsa",
             "built-in RFC 3161 TSA (RSA 2048, critical EKU timeStamping)"),
    LeafSpec("tsa-ec", "Dịch vụ cấp dấu thời gian kyso EC (DEV ONLY)", "ec-p256", "tsa",
             "built-in RFC 3161 TSA, EC variant (ECDSA P-256, critical EKU timeStamping)"),
    LeafSpec("ocsp", "Máy chủ OCSP kyso (DEV ONLY)", "ec-p256", "ocsp",
             "OCSP responder of the intermediate (ECDSA P-256, EKU OCSPSigning, ocsp-nocheck)"),
)  # fmt: skip


def dev_pki_dir() -> Path:
    """The directory of the shipped dev PKI (package data ``kyso/certs/dev``)."""
    return Path(__file__).resolve().parent / "dev"


def published_base_url(pki_dir: Path) -> str | None:
    """Where the dev PKI's certificates send validators for CRLs and OCSP (the base URL given
    to :func:`generate_dev_pki`), read from the hospital seal's certificate."""
    try:
        cert = x509.load_pem_x509_certificate((pki_dir / "hospital-seal.cert.pem").read_bytes())
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    for access in aia:
        url = str(access.access_location.value)
        if "/pki/" in url:
            return url.split("/pki/", 1)[0]
    return None


def generate_dev_pki(
    out_dir: Path, base_url: str = DEFAULT_BASE_URL, passphrase: bytes = DEV_PASSPHRASE
) -> None:
    """Write a complete dev PKI into ``out_dir``, with fresh keys and serial numbers.

    ``base_url`` is where the service publishes ``/pki/...`` (CA certificates, CRLs, OCSP);
    it is written into the AIA and CRL distribution point extensions.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")

    root_key = _new_key("rsa3072")
    root = _issue_root(root_key)
    inter_key = _new_key("rsa3072")
    inter = _issue_intermediate(inter_key.public_key(), root, root_key, base)
    _write_pair(out, ROOT_NAME, root, root_key, passphrase)
    _write_pair(out, INTERMEDIATE_NAME, inter, inter_key, passphrase)
    _write_pem(out / "chain.pem", inter, root)

    revoked: dict[str, x509.Certificate] = {}
    for spec in LEAVES:
        key = _new_key(spec.key)
        cert = _issue_leaf(spec, key.public_key(), inter, inter_key, base)
        _write_pair(out, spec.name, cert, key, passphrase)
        if spec.pkcs12:
            _write_pkcs12(out / f"{spec.name}.p12", cert, key, [inter, root], passphrase)
        if spec.revoked:
            revoked[spec.name] = cert

    (out / f"{ROOT_NAME}.crl").write_bytes(_issue_crl(root, root_key, [], crl_number=1))
    serials = [cert.serial_number for cert in revoked.values()]
    (out / f"{INTERMEDIATE_NAME}.crl").write_bytes(_issue_crl(inter, inter_key, serials, 1))
    records = [_revocation_record(name, INTERMEDIATE_NAME, c) for name, c in revoked.items()]
    (out / "revoked.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    text = readme(LEAVES, base, DEV_PASSPHRASE.decode(), DEV_KEY_MARKER, DEV_ORGANIZATION)
    (out / "README.md").write_text(text, encoding="utf-8")


# -- keys and names ---------------------------------------------------------------------------


def _new_key(kind: KeyKind) -> PrivateKey:
    """A fresh private key of the given kind."""
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    """C=VN, O=kyso DEV ONLY[, OU=unit], CN=common_name (UTF8String for the free text)."""
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
    ]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


# -- certificates -----------------------------------------------------------------------------


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key,
    issuer_ski: x509.SubjectKeyIdentifier,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """A certificate builder with the fields and key identifiers every dev certificate has."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())  # 159 random bits, positive
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    )


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def _key_usage(**granted: bool) -> x509.KeyUsage:
    """A KeyUsage with only the ``granted`` bits set (cryptography wants all nine named)."""
    bits = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{**dict.fromkeys(bits, False), **granted})


CA_KEY_USAGE = _key_usage(key_cert_sign=True, crl_sign=True)
SIGNER_KEY_USAGE = _key_usage(digital_signature=True, content_commitment=True)
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
SIGNER_EXTENDED_KEY_USAGE = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING])


def _issue_root(key: PrivateKey) -> x509.Certificate:
    """The self-signed dev root CA."""
    name = _name("kyso CA gốc - Root CA (DEV ONLY)")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        _builder(name, name, key.public_key(), ski, CA_NOT_BEFORE, NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
    )
    return builder.sign(key, hashes.SHA256())


def _issue_intermediate(
    public_key, root: x509.Certificate, root_key: PrivateKey, base: str
) -> x509.Certificate:
    """The issuing CA (path length 0), pointing at the root's certificate and CRL."""
    name = _name("kyso CA trung gian - Issuing CA (DEV ONLY)")
    builder = (
        _builder(name, root.subject, public_key, _ski(root), CA_NOT_BEFORE, NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(_aia(f"{base}/pki/{ROOT_NAME}.cer", ocsp_url=None), critical=False)
        .add_extension(_crl_dp(f"{base}/pki/{ROOT_NAME}.crl"), critical=False)
    )
    return builder.sign(root_key, hashes.SHA256())


def _issue_leaf(
    spec: LeafSpec, public_key, issuer: x509.Certificate, issuer_key: PrivateKey, base: str
) -> x509.Certificate:
    """An end-entity certificate for ``spec``, issued by the intermediate."""
    # An OCSP responder's own status is not checked (ocsp-nocheck), so it gets no OCSP URL.
    ocsp_url = None if spec.profile == "ocsp" else f"{base}/pki/ocsp"
    subject = _name(spec.common_name, spec.unit)
    builder = (
        _builder(subject, issuer.subject, public_key, _ski(issuer), spec.not_before, spec.not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_aia(f"{base}/pki/{INTERMEDIATE_NAME}.cer", ocsp_url), critical=False)
        .add_extension(_crl_dp(f"{base}/pki/{INTERMEDIATE_NAME}.crl"), critical=False)
    )
    for extension, critical in _profile_extensions(spec.profile):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _profile_extensions(profile: Profile) -> list[tuple[x509.ExtensionType, bool]]:
    """Key usage and extended key usage per kind of leaf.

    NSS (pdfsig) checks signer certificates for S/MIME use, so a signer's EKU list must
    include emailProtection.
    """
    if profile == "tsa":
        # RFC 3161 2.3: exactly one EKU, timeStamping, and it MUST be critical.
        return [
            (SIGNER_KEY_USAGE, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
        ]
    if profile == "ocsp":
        return [
            (_key_usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
            (x509.OCSPNoCheck(), False),
        ]
    # Signers carry emailProtection and id-kp-documentSigning (RFC 9336). Without any EKU,
    # NSS's chain check succeeds but leaves a stale SEC_ERROR_EXTENSION_NOT_FOUND, which
    # pdfsig (poppler 22.12 reads PORT_GetError, not the result) reports as "Unknown issue".
    return [(SIGNER_KEY_USAGE, True), (SIGNER_EXTENDED_KEY_USAGE, False)]


def _aia(ca_issuers_url: str, ocsp_url: str | None) -> x509.AuthorityInformationAccess:
    methods = [(AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers_url)]
    if ocsp_url:
        methods.append((AuthorityInformationAccessOID.OCSP, ocsp_url))
    return x509.AuthorityInformationAccess(
        [x509.AccessDescription(m, x509.UniformResourceIdentifier(url)) for m, url in methods]
    )


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([point])


# -- revocation -------------------------------------------------------------------------------


def _issue_crl(
    ca: x509.Certificate, ca_key: PrivateKey, revoked_serials: list[int], crl_number: int
) -> bytes:
    """A DER CRL of ``ca`` revoking ``revoked_serials`` on REVOCATION_TIME for keyCompromise."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(CRL_THIS_UPDATE)
        .next_update(CRL_NEXT_UPDATE)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(ca)),
            critical=False,
        )
    )
    for serial in revoked_serials:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(REVOCATION_TIME)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _revocation_record(name: str, issuer: str, cert: x509.Certificate) -> dict[str, object]:
    """One entry of revoked.json, for an OCSP responder (reason as asn1crypto names it)."""
    return {
        "issuer": issuer,
        "certificate": name,
        "serial": cert.serial_number,
        "serial_hex": format(cert.serial_number, "x"),
        "revocation_time": REVOCATION_TIME.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": "key_compromise",
    }


# -- files ------------------------------------------------------------------------------------


def _write_pem(path: Path, *certs: x509.Certificate) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def _write_pair(
    out: Path, name: str, cert: x509.Certificate, key: PrivateKey, passphrase: bytes
) -> None:
    """<name>.cert.pem and <name>.key.pem (encrypted PKCS#8 after the DEV ONLY marker line)."""
    _write_pem(out / f"{name}.cert.pem", cert)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    # PEM readers (cryptography, OpenSSL, asn1crypto) skip text before the BEGIN line.
    (out / f"{name}.key.pem").write_bytes(DEV_KEY_MARKER.encode("ascii") + b"\n" + pem)


def _write_pkcs12(
    path: Path,
    cert: x509.Certificate,
    key: PrivateKey,
    chain: list[x509.Certificate],
    passphrase: bytes,
) -> None:
    """A PKCS#12 bundle (key, certificate, issuers) named after the file, for token imports."""
    encryption = serialization.BestAvailableEncryption(passphrase)
    name = path.stem.encode("ascii")
    path.write_bytes(pkcs12.serialize_key_and_certificates(name, key, cert, chain, encryption))


def main(argv: list[str] | None = None) -> int:
    """``python -m kyso.certs.devpki [OUT_DIR [BASE_URL]]``; the shipped directory by default."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else dev_pki_dir()
    generate_dev_pki(out, args[1] if len(args) > 1 else DEFAULT_BASE_URL)
    print(f"wrote the DEV ONLY PKI to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
