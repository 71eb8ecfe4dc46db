"""Documents forged to test what kyso believes: a TSA of nobody's, a genuine timestamp
token put where it does not belong, and /Contents values nothing refers to."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper

from kyso.keystore.base import KeyInfo
from kyso.keystore.software import SoftwareKey
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import TimestampClient, TimestampSource

FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def rogue_tsa(not_after: datetime = FAR_FUTURE) -> TimestampAuthority:
    """A TSA with a self-made certificate (timeStamping, critical) valid until ``not_after``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rogue TSA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    der = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return TimestampAuthority(SoftwareKey(KeyInfo("rogue-tsa", "software", der, ()), key))


def client_of(tsa: TimestampAuthority) -> TimestampClient:
    return TimestampClient([TimestampSource("in-process", tsa.respond)])


class FixedTimeStamper(TimeStamper):
    """Answers every request with one token, whatever it was asked to timestamp."""

    def __init__(self, token: cms.ContentInfo) -> None:
        super().__init__()
        self.token = token

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        return self.token


async def add_document_timestamp(pdf: bytes, timestamper: TimeStamper, field: str) -> bytes:
    """``pdf`` with a document timestamp in a new signature field of its form."""
    out = BytesIO()
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    await PdfTimeStamper(timestamper, field_name=field).async_timestamp_pdf(
        writer, "sha256", output=out
    )
    return out.getvalue()


def with_unreferenced_timestamp(pdf: bytes, token: cms.ContentInfo) -> bytes:
    """``pdf`` with an incremental update that adds a document-timestamp dictionary holding
    ``token``, which no field of the form refers to."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    writer.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/DocTimeStamp"),
                generic.NameObject("/SubFilter"): generic.NameObject("/ETSI.RFC3161"),
                generic.NameObject("/Contents"): generic.ByteStringObject(token.dump()),
            }
        )
    )
    out = BytesIO()
    writer.write(out)
    assert b"/Contents <" in out.getvalue()[len(pdf) :]  # hex, as a real one is written
    return out.getvalue()


def own_ca(name: str = "Test CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA of the test's own."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2060, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def leaf_pointing_at(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, base_url: str, issuers: int = 12
) -> SoftwareKey:
    """A signing key certified by ``ca`` whose certificate sends every validator to
    ``base_url``: ``issuers`` caIssuers URLs, an OCSP URL and a CRL distribution point."""
    key = ec.generate_private_key(ec.SECP256R1())
    access = [
        x509.AccessDescription(
            x509.AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(f"{base_url}/issuer-{n}.cer"),
        )
        for n in range(issuers)
    ]
    access.append(
        x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base_url}/ocsp")
        )
    )
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base_url}/ca.crl")], None, None, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Self-made signer")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2055, 1, 1, tzinfo=UTC))
        .add_extension(x509.AuthorityInformationAccess(access), critical=False)
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    der = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return SoftwareKey(KeyInfo("self-made", "software", der, ()), key)
