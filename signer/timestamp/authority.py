"""kyso's built-in RFC 3161 time-stamping authority.

:class:`TimestampAuthority` turns a ``TimeStampReq`` into a ``TimeStampResp`` (``respond``,
for ``POST /tsa``) or a message imprint straight into a token (``timestamp``, for in-process
use). The token is a CMS ``SignedData`` over a ``TSTInfo`` with the signed attributes
RFC 5816 and ETSI EN 319 422 ask for (content type, message digest, signing time,
``signingCertificateV2``), signed through a :class:`kyso.keystore.base.SigningKey`, so the
TSA key may sit in a file or on a token. RSA (PKCS#1 v1.5) and ECDSA keys both work.

Policy OIDs live under kyso's private arc ``2.25.<UUID>`` (ITU-T X.667: a UUID turned into an
integer is an OID that needs no registration). :data:`DEFAULT_POLICY_OID` is
``<arc>.1.1``: "kyso TSA policy, development, version 1". A production TSA should configure
the OID of its published policy.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kyso.errors import ConfigError, InvalidRequest, TokenUnavailable
from kyso.keystore.base import SigningKey

log = logging.getLogger(__name__)

KYSO_OID_ARC = "2.25.300738347016499735365908708690126511858"
DEFAULT_POLICY_OID = f"{KYSO_OID_ARC}.1.1"
QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"

# Imprint algorithms we accept, with their digest sizes; anything else is badAlg.
ACCEPTED_HASHES = {"sha256": 32, "sha384": 48, "sha512": 64}
ACCURACY_SECONDS = 1
# A TimeStampReq is about 60 to 120 bytes; nonces are 64-bit in practice (OpenSSL, pyHanko).
MAX_QUERY_BYTES = 4096
MAX_NONCE_BYTES = 32

Clock = Callable[[], datetime]


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp; asn1crypto's own forgets that the token is OPTIONAL."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Rejection(Exception):
    """A query we refuse: the RFC 3161 failure bit and a sentence for the requester."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


class TimestampAuthority:
    """An RFC 3161 TSA signing with ``key`` under ``policy_oid``, reading time from ``clock``.

    ``key.info.certificate`` must carry the timeStamping extended key usage, alone and
    critical (RFC 3161 2.3). ``key.info.chain`` are its issuers; the tokens carry the TSA
    certificate and those that are not self-signed (the intermediates), when asked to.
    ``clock`` returns an aware datetime; genTime is cut to whole seconds, accuracy 1 s.
    """

    def __init__(
        self, key: SigningKey, *, policy_oid: str = DEFAULT_POLICY_OID, clock: Clock = _utc_now
    ) -> None:
        _check_tsa_certificate(key.info.certificate)
        self.key = key
        self.policy_oid = core.ObjectIdentifier(policy_oid).dotted
        self.certificate: x509.Certificate = key.info.certificate
        self.intermediates: tuple[x509.Certificate, ...] = tuple(
            c for c in key.info.chain if c.subject != c.issuer
        )
        self._clock = clock
        # Built once: asn1crypto takes ~25 ms to encode this attribute, the rest of a token ~3 ms.
        self._signing_certificate_attr = _signing_certificate_v2(self.certificate).dump()

    def respond(self, query_der: bytes) -> bytes:
        """The DER ``TimeStampResp`` for a DER ``TimeStampReq``; never raises on bad input.

        A query we cannot serve gets ``rejection`` with one failInfo bit: badDataFormat
        (not a DER query of at most :data:`MAX_QUERY_BYTES` bytes, a nonce over
        :data:`MAX_NONCE_BYTES` bytes, wrong digest length), badRequest (unknown version), badAlg (imprint
        not SHA-256/384/512), unacceptedPolicy, unacceptedExtension; a key that cannot
        sign now gets systemFailure.
        """
        try:
            query = _parse_query(query_der)
            imprint = self._check_query(query)
        except _Rejection as refused:
            return _rejection(refused.fail_info, refused.text)
        try:
            token = self._token(imprint, query["nonce"].native, bool(query["cert_req"].native))
        except TokenUnavailable as exc:
            log.warning("built-in TSA could not sign: %s", exc.detail)
            return _rejection("system_failure", "the TSA key cannot sign now; try again later")
        return TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def timestamp(
        self,
        message_imprint_sha256: bytes,
        nonce: int | None = None,
        *,
        hash_algorithm: str = "sha256",
        cert_req: bool = True,
    ) -> cms.ContentInfo:
        """A timestamp token (``ContentInfo`` of ``SignedData``) over a message digest.

        ``message_imprint_sha256`` is the digest of the timestamped data, SHA-256 unless
        ``hash_algorithm`` names sha384 or sha512. Raises :class:`kyso.errors.InvalidRequest`
        for another algorithm or a digest of the wrong length, and
        :class:`kyso.errors.TokenUnavailable` when the key cannot sign.
        """
        size = ACCEPTED_HASHES.get(hash_algorithm)
        if size is None:
            raise InvalidRequest(f"timestamp hash algorithm {hash_algorithm!r} is not accepted")
        if len(message_imprint_sha256) != size:
            raise InvalidRequest(f"a {hash_algorithm} digest has {size} bytes")
        imprint = tsp.MessageImprint(
            {
                "hash_algorithm": {"algorithm": hash_algorithm},
                "hashed_message": message_imprint_sha256,
            }
        )
        return self._token(imprint, nonce, cert_req)

    def _check_query(self, query: tsp.TimeStampReq) -> tsp.MessageImprint:
        """The query's message imprint, or a :class:`_Rejection` saying why we refuse it."""
        if query["version"].native != "v1":
            raise _Rejection("bad_request", "only TimeStampReq version 1 is supported")
        imprint: tsp.MessageImprint = query["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm not in ACCEPTED_HASHES or imprint["hash_algorithm"]["parameters"].native:
            raise _Rejection("bad_alg", "the message imprint must be SHA-256, SHA-384 or SHA-512")
        if len(imprint["hashed_message"].native) != ACCEPTED_HASHES[algorithm]:
            raise _Rejection("bad_data_format", f"a {algorithm} imprint has the wrong length")
        requested = query["req_policy"]
        if requested.native is not None and requested.dotted != self.policy_oid:
            raise _Rejection("unaccepted_policy", f"this TSA only issues under {self.policy_oid}")
        if query["extensions"].native:
            raise _Rejection("unaccepted_extensions", "this TSA accepts no request extensions")
        if query["nonce"].native is not None and len(query["nonce"].contents) > MAX_NONCE_BYTES:
            raise _Rejection("bad_data_format", f"the nonce may have at most {MAX_NONCE_BYTES} bytes")
        # Echo the imprint byte for byte (RFC 3161 2.4.2), whatever its NULL parameters.
        return tsp.MessageImprint.load(imprint.dump())

    def _token(
        self, imprint: tsp.MessageImprint, nonce: int | None, include_certs: bool
    ) -> cms.ContentInfo:
        """Build and sign the token for ``imprint`` at the clock's current time."""
        gen_time = self._now()
        tst_info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": self.policy_oid,
                "message_imprint": imprint,
                "serial_number": _new_serial(),
                "gen_time": gen_time,
                "accuracy": {"seconds": ACCURACY_SECONDS},
                "nonce": nonce,
                "tsa": x509.GeneralName({"directory_name": self.certificate.subject}),
            }
        )
        signed_attrs = self._signed_attrs(hashlib.sha256(tst_info.dump()).digest(), gen_time)
        certificates = [self.certificate, *self.intermediates] if include_certs else []
        signed_data = {
            "version": "v3",  # eContentType is not id-data (RFC 5652 5.1)
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info", "content": tst_info},
            "signer_infos": [self._signer_info(signed_attrs)],
        }
        if certificates:
            signed_data["certificates"] = certificates
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def _signed_attrs(self, tst_digest: bytes, gen_time: datetime) -> cms.CMSAttributes:
        """contentType, signingTime, messageDigest and signingCertificateV2 (RFC 5816)."""
        return cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [_cms_time(gen_time)]},
                {"type": "message_digest", "values": [tst_digest]},
                cms.CMSAttribute.load(self._signing_certificate_attr),
            ]
        )

    def _signer_info(self, signed_attrs: cms.CMSAttributes) -> cms.SignerInfo:
        """Sign the DER SET of ``signed_attrs`` and wrap it in a SignerInfo."""
        to_sign = signed_attrs.dump()  # universal SET tag, as RFC 5652 5.4 wants it signed
        scheme = self.key.info.classic_scheme  # PKCS#1 v1.5 or ECDSA, as every verifier reads
        signature = self.key.sign(to_sign, scheme)
        _check_own_signature(self.certificate, to_sign, signature, scheme)
        if scheme == "ecdsa":
            signature_algorithm = {"algorithm": "sha256_ecdsa"}
        else:  # RFC 4055: the parameters of sha256WithRSAEncryption are NULL
            signature_algorithm = {"algorithm": "sha256_rsa", "parameters": core.Null()}
        return cms.SignerInfo(
            {
                "version": "v1",
                "sid": {
                    "issuer_and_serial_number": {
                        "issuer": self.certificate.issuer,
                        "serial_number": self.certificate.serial_number,
                    }
                },
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": signature_algorithm,
                "signature": signature,
            }
        )

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigError("the TSA clock must return an aware datetime")
        return now.astimezone(UTC).replace(microsecond=0)


def _parse_query(query_der: bytes) -> tsp.TimeStampReq:
    """Parse a DER TimeStampReq completely, or reject it as badDataFormat: too long, not
    a TimeStampReq, or BER that is not DER (indefinite or long-form lengths, a default
    value spelt out, ...), which RFC 3161 does not allow and a signer must not echo."""
    if len(query_der) > MAX_QUERY_BYTES:
        raise _Rejection("bad_data_format", f"a TimeStampReq has at most {MAX_QUERY_BYTES} bytes")
    try:
        query = tsp.TimeStampReq.load(query_der, strict=True)
        _ = query.native  # asn1crypto parses lazily: force every field now, not mid-signing
        der = query.dump(force=True) == query_der  # re-encoded as DER from the values
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, OverflowError, ...
        raise _Rejection("bad_data_format", "the body is not a DER TimeStampReq") from exc
    if not der:
        raise _Rejection("bad_data_format", "the TimeStampReq is not DER-encoded (RFC 3161 2.4.1)")
    return tsp.TimeStampReq.load(query_der, strict=True)


def too_large() -> bytes:
    """The TimeStampResp for a body longer than :data:`MAX_QUERY_BYTES` (left unread)."""
    return _rejection("bad_data_format", f"a TimeStampReq has at most {MAX_QUERY_BYTES} bytes")


def _rejection(fail_info: str, text: str) -> bytes:
    """A DER TimeStampResp with status rejection, one failInfo bit and a status string."""
    status = {"status": "rejection", "status_string": [text], "fail_info": {fail_info}}
    return TimeStampResp({"status": status}).dump()


def _signing_certificate_v2(cert: x509.Certificate, hash_name: str = "sha512") -> cms.CMSAttribute:
    """The signingCertificateV2 attribute naming ``cert`` by its hash, issuer and serial."""
    cert_id = {
        # SHA-512, not the DEFAULT SHA-256: a defaulted hashAlgorithm is omitted in DER, and
        # asn1crypto then marks the parsed ESSCertIDv2 as changed forever, so that dumping
        # the token object re-encodes it, at a cost exponential in its depth (tens of seconds
        # when this TSA's own token objects were embedded). Tokens from any TSA are parsed
        # from their DER and embedded byte for byte (tests/signer/test_tsa.py); ours also
        # avoid the trap for code that dumps them.
        "hash_algorithm": {"algorithm": hash_name},
        "cert_hash": hashlib.new(hash_name, cert.dump()).digest(),
        "issuer_serial": {
            "issuer": [x509.GeneralName({"directory_name": cert.issuer})],
            "serial_number": cert.serial_number,
        },
    }
    return cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{"certs": [cert_id]}]})


def _check_tsa_certificate(cert: x509.Certificate) -> None:
    """Refuse a certificate that RFC 3161 2.3 does not allow to sign timestamps."""
    eku = cert.extended_key_usage_value
    if eku is None or eku.native != ["time_stamping"]:
        raise ConfigError(
            f"the TSA certificate {cert.subject.human_friendly!r} must have the extended key "
            "usage timeStamping and no other"
        )
    if "extended_key_usage" not in cert.critical_extensions:
        raise ConfigError(
            f"the timeStamping extended key usage of {cert.subject.human_friendly!r} must be "
            "critical (RFC 3161 2.3)"
        )


def _check_own_signature(
    cert: x509.Certificate, data: bytes, signature: bytes, scheme: str
) -> None:
    """Raise TokenUnavailable rather than hand out a token whose signature does not verify."""
    public_key = serialization.load_der_public_key(cert.public_key.dump())
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and scheme == "ecdsa":
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme == "pkcs1v15":
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise TokenUnavailable(f"the TSA key cannot sign with scheme {scheme!r}")
    except InvalidSignature as exc:
        raise TokenUnavailable("the TSA key returned a signature that does not verify") from exc


def _cms_time(moment: datetime) -> cms.Time:
    """A CMS Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5652 11.3)."""
    if 1950 <= moment.year < 2050:
        return cms.Time({"utc_time": moment})
    return cms.Time({"generalized_time": moment})


def _new_serial() -> int:
    """A random positive 128-bit serial number (top bit set, so all have one length)."""
    return secrets.randbits(127) | (1 << 127)
