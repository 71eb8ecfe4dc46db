"""Signing an XML record: prepare the signature, have the key sign its ``SignedInfo``,
finish it (and timestamp it for ``B-T``).

The key never sees the document: it signs the canonical ``SignedInfo`` through
:meth:`SigningKey.sign`, so a software key, a PKCS#11 token or a clinician's token in a
two-step session (:func:`prepare_xml` then :func:`finish_xml`) all sign the same way.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from asn1crypto import x509
from lxml import etree

from kyso.errors import InvalidRequest
from kyso.keystore.base import Scheme, SigningKey
from kyso.signer.timestamp.client import TimestampClient
from kyso.signer.xml import bhyt, dsig, xades
from kyso.signer.xml.dsig import ds
from kyso.signer.xml.parse import DEFAULT_LIMITS, XmlLimits, parse_xml, serialize

if TYPE_CHECKING:
    from kyso.config import KeyConfig

XML_LEVELS = ("B-B", "B-T")
PROFILES = ("bhyt", "xades")


def rsa_scheme_for(key_config: KeyConfig | None) -> Scheme:
    """How an RSA key alias signs XAdES: RSASSA-PSS (Circular 15/2025/TT-BKHCN), unless the
    alias is set to PKCS#1 v1.5 for a receiver that needs it (``rsa_scheme``, or its
    older spelling ``jws_alg = "RS256"``). The bhyt profile does not ask: it is v1.5."""
    configured = getattr(key_config, "rsa_scheme", None)
    if configured in ("pkcs1v15", "pss"):
        return configured  # type: ignore[return-value]
    if getattr(key_config, "jws_alg", None) == "RS256":
        return "pkcs1v15"
    return "pss"


@dataclass(frozen=True)
class XmlSignOptions:
    """``profile`` ``None`` chooses ``bhyt`` when the record has a ``CHUKYDONVI`` element,
    else ``xades``. ``rsa_scheme`` applies to RSA keys in the xades profile."""

    level: str = "B-T"
    profile: str | None = None
    rsa_scheme: Scheme = "pss"
    signing_time: datetime | None = None

    def check(self) -> None:
        if self.level not in XML_LEVELS:
            raise InvalidRequest(f"level for XML must be one of {', '.join(XML_LEVELS)}, not {self.level!r}")
        if self.profile is not None and self.profile not in PROFILES:
            raise InvalidRequest(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if self.rsa_scheme not in ("pkcs1v15", "pss"):
            raise InvalidRequest(f"rsa_scheme must be 'pkcs1v15' or 'pss', not {self.rsa_scheme!r}")


@dataclass
class PreparedXml:
    """A record with its signature in place but no value yet: the key signs ``data_to_sign``."""

    tree: etree._ElementTree
    signature: etree._Element
    profile: str
    scheme: Scheme
    certificate: x509.Certificate
    document_sha256: str  # of the record as received

    @property
    def data_to_sign(self) -> bytes:
        """The canonical ``SignedInfo``, in the document (inclusive C14N sees its ancestors)."""
        signed_info = self.signature.find(ds("SignedInfo"))
        method = signed_info.find(ds("CanonicalizationMethod")).get("Algorithm")  # type: ignore[union-attr]
        return dsig.canonicalize(signed_info, method)

    @property
    def signature_id(self) -> str:
        return self.signature.get("Id") or ""

    def to_state(self) -> dict[str, str]:
        """What a two-step session keeps until the signature value comes (JSON-ready)."""
        return {
            "xml": base64.b64encode(serialize(self.tree)).decode("ascii"),
            "signature_id": self.signature_id,
            "profile": self.profile,
            "scheme": self.scheme,
            "document_sha256": self.document_sha256,
            "signed_info": base64.b64encode(self.data_to_sign).decode("ascii"),
        }

    @classmethod
    def from_state(cls, state: dict[str, str], certificate: x509.Certificate) -> PreparedXml:
        """The prepared record of :meth:`to_state`, its ``SignedInfo`` unchanged."""
        tree = parse_xml(base64.b64decode(state["xml"]))
        found = [s for s in tree.getroot().iter(ds("Signature")) if s.get("Id") == state["signature_id"]]
        if len(found) != 1:
            raise InvalidRequest("the prepared record no longer holds its signature")
        scheme: Scheme = state["scheme"]  # type: ignore[assignment]
        prepared = cls(tree, found[0], state["profile"], scheme, certificate, state["document_sha256"])
        if prepared.data_to_sign != base64.b64decode(state["signed_info"]):
            raise InvalidRequest("the prepared record's SignedInfo changed while it was kept")
        return prepared


@dataclass(frozen=True)
class SignedXml:
    xml: bytes  # the signed record
    sha256: str  # of ``xml``: what the audit log registers, like a signed PDF
    document_sha256: str  # of the record as received
    value_sha256: str  # of the signature value (its bytes): the verification report's ``id``
    profile: str
    level: str


def choose_profile(tree: etree._ElementTree, profile: str | None) -> str:
    if profile is not None:
        return profile
    return "bhyt" if next(tree.getroot().iter(bhyt.SLOT), None) is not None else "xades"


def refuse_signed(tree: etree._ElementTree) -> None:
    """An enveloped signature over the whole document breaks when anything is added to it,
    so a record that already carries one is not signed again."""
    if next(tree.getroot().iter(ds("Signature")), None) is not None:
        raise InvalidRequest(
            "the record already carries an XML signature, which a second enveloped signature "
            "over the whole document would break: send the unsigned record"
        )


def prepare_xml(
    data: bytes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    options: XmlSignOptions,
    limits: XmlLimits | None = None,
) -> PreparedXml:
    """Parse the record (hostile XML is :class:`~kyso.errors.InvalidXml`) and put its
    unsigned signature in place."""
    options.check()
    tree = parse_xml(data, limits or DEFAULT_LIMITS)
    refuse_signed(tree)
    profile = choose_profile(tree, options.profile)
    if profile == "bhyt":
        scheme = bhyt.bhyt_scheme(certificate)
        signature = bhyt.build(tree, certificate, chain)
    else:
        scheme = "ecdsa" if certificate.public_key.algorithm == "ec" else options.rsa_scheme
        moment = options.signing_time or datetime.now(UTC)
        signature = xades.build(tree, certificate, chain, scheme, moment)
    return PreparedXml(tree, signature, profile, scheme, certificate, hashlib.sha256(data).hexdigest())


def finish_xml(
    prepared: PreparedXml, raw_signature: bytes, level: str, timestamper: TimestampClient | None
) -> SignedXml:
    """Put the signature value in (ECDSA as raw ``r||s``), timestamp for ``B-T``, serialise."""
    if level == "B-T" and timestamper is None:
        raise InvalidRequest("B-T needs a timestamp authority; none is configured")
    value = dsig.signature_value(raw_signature, prepared.certificate, prepared.scheme)
    prepared.signature.find(ds("SignatureValue")).text = base64.b64encode(value).decode("ascii")  # type: ignore[union-attr]
    if level == "B-T":
        assert timestamper is not None
        xades.add_signature_timestamp(prepared.signature, timestamper)
    xml = serialize(prepared.tree)
    return SignedXml(
        xml=xml,
        sha256=hashlib.sha256(xml).hexdigest(),
        document_sha256=prepared.document_sha256,
        value_sha256=hashlib.sha256(value).hexdigest(),
        profile=prepared.profile,
        level=level,
    )


def sign_xml(
    data: bytes,
    key: SigningKey,
    options: XmlSignOptions,
    timestamper: TimestampClient | None = None,
    limits: XmlLimits | None = None,
) -> SignedXml:
    """Sign an XML record with a keystore key at ``B-B`` or ``B-T``."""
    if options.level == "B-T" and timestamper is None:
        raise InvalidRequest("B-T needs a timestamp authority; none is configured")
    prepared = prepare_xml(data, key.info.certificate, key.info.chain, options, limits)
    raw = key.sign(prepared.data_to_sign, prepared.scheme)
    return finish_xml(prepared, raw, options.level, timestamper)

