"""Fixtures for signer tests: dev PKI keys, its trust root and CRLs, the built-in TSA
called in-process, and certificates made on the spot (a foreign CA, short-lived leaves)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from forged import own_ca

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.base import KeyInfo
from kyso.keystore.software import SoftwareKey, load_software_key
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import TimestampClient, TimestampSource
from kyso.signer.verify.report import VerifySettings

PKI = dev_pki_dir()


def asn1_certs(path: Path) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(path.read_bytes(), True)]


def load_dev_key(name: str) -> SoftwareKey:
    """A dev PKI key with its chain (intermediate and root), as the keystore loads it."""
    return load_software_key(
        name,
        PKI / f"{name}.key.pem",
        DEV_PASSPHRASE,
        PKI / f"{name}.cert.pem",
        (str(PKI / "chain.pem"),),
    )


@pytest.fixture(scope="session")
def dev_key() -> Callable[[str], SoftwareKey]:
    """``dev_key("hospital-seal")``: dev keys, each loaded once per session."""
    cache: dict[str, SoftwareKey] = {}

    def get(name: str) -> SoftwareKey:
        if name not in cache:
            cache[name] = load_dev_key(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def trust_root() -> asn1_x509.Certificate:
    return asn1_certs(PKI / "root-ca.cert.pem")[0]


@pytest.fixture(scope="session")
def dev_crls() -> tuple[bytes, ...]:
    """The dev CRLs (DER): the root's (for the intermediate) and the intermediate's."""
    return tuple((PKI / f"{ca}.crl").read_bytes() for ca in ("root-ca", "intermediate-ca"))


@pytest.fixture(scope="session")
def builtin_tsa(dev_key) -> TimestampAuthority:
    return TimestampAuthority(dev_key("tsa"))


@pytest.fixture(scope="session")
def timestamper(builtin_tsa: TimestampAuthority) -> TimestampClient:
    """A timestamp client on the built-in TSA, called in-process (no HTTP)."""
    return TimestampClient([TimestampSource("built-in", builtin_tsa.respond)])


@pytest.fixture(scope="session")
def timestamper_at(dev_key) -> Callable[[datetime], TimestampClient]:
    """``timestamper_at(moment)``: a timestamp client on a built-in TSA whose clock says
    ``moment`` (to make tokens from the past)."""

    def make(moment: datetime) -> TimestampClient:
        tsa = TimestampAuthority(dev_key("tsa"), clock=lambda: moment)
        return TimestampClient([TimestampSource("built-in, clock set", tsa.respond)])

    return make


@pytest.fixture(scope="session")
def settings(trust_root) -> VerifySettings:
    """Verification trusting the dev root, offline (nothing serves the dev PKI's URLs
    during tests), without revocation data unless a test adds it."""
    return VerifySettings(trust_roots=(trust_root,), allow_fetching=False)


@pytest.fixture(scope="session")
def settings_with_crls(trust_root, dev_crls) -> VerifySettings:
    return VerifySettings(trust_roots=(trust_root,), allow_fetching=False, crls=dev_crls)


# -- certificates made for one test ----------------------------------------------------------


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def foreign_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that the dev PKI knows nothing of."""
    return own_ca("Foreign test CA")


def issue_signing_key(
    issuer: x509.Certificate,
    issuer_key,
    chain: tuple[asn1_x509.Certificate, ...],
    not_before: datetime,
    not_after: datetime,
    template: x509.Certificate | None = None,
    crl_url: str | None = None,
) -> SoftwareKey:
    """A fresh P-256 signing key certified by ``issuer`` for ``not_before..not_after``,
    with the CRL/AIA extensions of ``template`` (a dev leaf), or a CRL distribution point
    at ``crl_url``, when given."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test signer (short-lived)")])
        )
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
    )
    if template is not None:
        for ext in template.extensions:
            if isinstance(ext.value, (x509.AuthorityInformationAccess, x509.CRLDistributionPoints)):
                builder = builder.add_extension(ext.value, ext.critical)
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    cert = _to_asn1(builder.sign(issuer_key, hashes.SHA256()))
    return SoftwareKey(KeyInfo("test-signer", "software", cert, chain), key)


@pytest.fixture(scope="session")
def foreign_signing_key() -> tuple[SoftwareKey, asn1_x509.Certificate]:
    """A signing key under a foreign CA, and that CA's certificate."""
    ca, ca_key = foreign_ca()
    ca_asn1 = _to_asn1(ca)
    key = issue_signing_key(
        ca, ca_key, (ca_asn1,), datetime(2025, 1, 1, tzinfo=UTC), datetime(2055, 1, 1, tzinfo=UTC)
    )
    return key, ca_asn1


@pytest.fixture(scope="session")
def short_lived_key() -> SoftwareKey:
    """A key of the dev intermediate CA whose certificate expires at the end of 2030."""
    inter = x509.load_pem_x509_certificate((PKI / "intermediate-ca.cert.pem").read_bytes())
    inter_key = serialization.load_pem_private_key(
        (PKI / "intermediate-ca.key.pem").read_bytes(), DEV_PASSPHRASE
    )
    template = x509.load_pem_x509_certificate((PKI / "hospital-seal.cert.pem").read_bytes())
    return issue_signing_key(
        inter,
        inter_key,
        tuple(asn1_certs(PKI / "chain.pem")),
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2030, 12, 31, tzinfo=UTC),
        template,
    )


# -- a CRL distribution point served over HTTP on loopback -----------------------------------


class CrlServer:
    """An HTTP server on a free loopback port that serves ``content`` at ``/ca.crl``
    (404 while ``content`` is ``None``), for a CA made in the test whose leaves point there."""

    def __init__(self) -> None:
        self.content: bytes | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                body = server.content
                if self.path != "/ca.crl" or body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ca.crl"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def crl_server():
    server = CrlServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fetching_pki(crl_server):
    """``(root, signing key, make_crl)``: a foreign CA whose leaf names ``crl_server`` as
    its CRL distribution point; ``make_crl(revoked=False)`` is that CA's DER CRL."""
    ca, ca_key = foreign_ca()
    ca_asn1 = _to_asn1(ca)
    key = issue_signing_key(
        ca, ca_key, (ca_asn1,), datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2055, 1, 1, tzinfo=UTC), crl_url=crl_server.url,
    )  # fmt: skip

    def make_crl(revoked: bool = False) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject)
            .last_update(datetime(2025, 6, 1, tzinfo=UTC))
            .next_update(datetime(2055, 1, 1, tzinfo=UTC))
        )
        if revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(key.info.certificate.serial_number)
                .revocation_date(datetime(2025, 6, 1, tzinfo=UTC))
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    return ca_asn1, key, make_crl
