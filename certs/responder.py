"""Revocation data of the dev PKI, issued on demand: CRLs and RFC 6960 OCSP responses.

The dev PKI ships static CRLs that run for decades; validators and pdfsig want what a real
CA publishes: a CRL issued now (``thisUpdate`` now, ``nextUpdate`` in 7 days) and an OCSP
responder. :class:`DevRevocation` issues both from the CA keys, ``revoked.json`` and the
delegated ``ocsp`` responder certificate of a dev PKI directory. Nothing here speaks HTTP:
``api/pki.py`` serves it under ``/pki``, and the service hands the CRLs straight to pyHanko
when it builds B-LT validation data for dev keys.

Every time is cut to whole seconds: NSS (pdfsig) rejects OCSP responses whose times carry
fractions of a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from kyso.certs.devpki import DEV_PASSPHRASE, INTERMEDIATE_NAME, ROOT_NAME

VALIDITY = timedelta(days=7)
CA_NAMES = (ROOT_NAME, INTERMEDIATE_NAME)
OCSP_RESPONDER_NAME = "ocsp"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Authority:
    """A CA of the dev PKI: its file stem, certificate and key."""

    name: str
    cert: x509.Certificate
    key: PrivateKey

    def certid_hashes(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        """(issuerNameHash, issuerKeyHash) of an OCSP CertID naming this CA as issuer."""
        name_hash = _digest(algorithm, self.cert.subject.public_bytes())
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # issuerKeyHash covers the BIT STRING value of the key, not the whole SPKI.
        key_bits = _spki_key_bits(spki)
        return name_hash, _digest(algorithm, key_bits)


@dataclass(frozen=True)
class Revoked:
    """One line of ``revoked.json``: a revoked serial of one CA."""

    issuer: str
    serial: int
    time: datetime
    reason: x509.ReasonFlags


class DevRevocation:
    """CRLs and OCSP responses for the CAs of one dev PKI directory."""

    def __init__(
        self,
        authorities: dict[str, Authority],
        responder: tuple[x509.Certificate, PrivateKey] | None,
        revoked: list[Revoked],
    ) -> None:
        self.authorities = authorities
        self.responder = responder
        self.revoked = revoked

    @classmethod
    def from_dir(cls, directory: Path, passphrase: bytes = DEV_PASSPHRASE) -> DevRevocation:
        """Load the CAs, the OCSP responder and ``revoked.json`` of a dev PKI directory."""
        directory = Path(directory)
        authorities = {
            name: Authority(name, *_load_pair(directory, name, passphrase)) for name in CA_NAMES
        }
        responder = None
        if (directory / f"{OCSP_RESPONDER_NAME}.cert.pem").exists():
            responder = _load_pair(directory, OCSP_RESPONDER_NAME, passphrase)
        return cls(authorities, responder, _load_revoked(directory / "revoked.json"))

    # -- certificates and CRLs ------------------------------------------------------------

    def ca_certificate(self, name: str) -> bytes:
        """The DER certificate of CA ``name`` (KeyError if there is none)."""
        return self.authorities[name].cert.public_bytes(serialization.Encoding.DER)

    def crl(self, name: str, now: datetime | None = None) -> bytes:
        """A DER CRL of CA ``name`` issued ``now``, valid for :data:`VALIDITY`, listing
        the revoked serials of that CA (KeyError if there is no such CA)."""
        ca = self.authorities[name]
        this_update = _whole_seconds(now)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(this_update)
            .next_update(this_update + VALIDITY)
            # Monotonic as long as CRLs are at least a second apart, which RFC 5280 asks.
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
                ),
                critical=False,
            )
        )
        for entry in self.revoked:
            if entry.issuer != name:
                continue
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.time)
                .add_extension(x509.CRLReason(entry.reason), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
        crl = builder.sign(ca.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def crls(self, now: datetime | None = None) -> list[bytes]:
        """A fresh CRL of every CA of the PKI."""
        return [self.crl(name, now) for name in self.authorities]

    # -- OCSP -----------------------------------------------------------------------------

    def ocsp_response(self, request_der: bytes, now: datetime | None = None) -> bytes:
        """The DER OCSPResponse to a DER OCSPRequest (RFC 6960).

        ``good`` for a serial of one of our CAs that ``revoked.json`` does not list,
        ``revoked`` (with time and reason) for one it lists, ``unknown`` for an issuer that
        is not ours. Signed by the delegated ``ocsp`` responder for the CA that certified
        it, by the CA's own key otherwise. A nonce in the request is echoed."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:  # unparseable, or more than one certificate asked about
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        this_update = _whole_seconds(now)
        algorithm = request.hash_algorithm
        ca = self._issuer_of(request.issuer_name_hash, request.issuer_key_hash, algorithm)
        status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        if ca is not None:
            entry = self._revocation(ca.name, request.serial_number)
            status = ocsp.OCSPCertStatus.GOOD if entry is None else ocsp.OCSPCertStatus.REVOKED
            if entry is not None:
                revoked_at, reason = entry.time, entry.reason
        signer_cert, signer_key = self._signer_for(ca)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=algorithm,
                cert_status=status,
                this_update=this_update,
                next_update=this_update + VALIDITY,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        )
        if ca is None or signer_cert is not ca.cert:
            builder = builder.certificates([signer_cert])
        nonce = _nonce(request)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(signer_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def _issuer_of(
        self, name_hash: bytes, key_hash: bytes, algorithm: hashes.HashAlgorithm
    ) -> Authority | None:
        for ca in self.authorities.values():
            if ca.certid_hashes(algorithm) == (name_hash, key_hash):
                return ca
        return None

    def _revocation(self, issuer: str, serial: int) -> Revoked | None:
        return next((r for r in self.revoked if r.issuer == issuer and r.serial == serial), None)

    def _signer_for(self, ca: Authority | None) -> tuple[x509.Certificate, PrivateKey]:
        """The delegated responder where it speaks for ``ca`` (or for an unknown issuer),
        else the CA itself (RFC 6960 4.2.2.2 allows both)."""
        if self.responder is not None:
            cert, key = self.responder
            if ca is None or cert.issuer == ca.cert.subject:
                return cert, key
        target = ca or self.authorities[INTERMEDIATE_NAME]
        return target.cert, target.key


def _whole_seconds(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _spki_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey bits of a DER SubjectPublicKeyInfo (without the unused-bits byte)."""
    from asn1crypto import keys

    return keys.PublicKeyInfo.load(spki_der)["public_key"].contents[1:]


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)


def _load_pair(
    directory: Path, name: str, passphrase: bytes
) -> tuple[x509.Certificate, PrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / f"{name}.cert.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (directory / f"{name}.key.pem").read_bytes(), passphrase
    )
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"{name}: only RSA and EC keys are supported")
    return cert, key


def _load_revoked(path: Path) -> list[Revoked]:
    if not path.exists():
        return []
    records = json.loads(path.read_text(encoding="utf-8"))
    return [
        Revoked(
            issuer=r["issuer"],
            serial=int(r["serial"]),
            time=datetime.fromisoformat(r["revocation_time"].replace("Z", "+00:00")),
            # revoked.json names reasons as asn1crypto does (key_compromise, ...).
            reason=x509.ReasonFlags[r.get("reason", "unspecified")],
        )
        for r in records
    ]
