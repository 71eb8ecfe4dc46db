"""Reading an XML Signature before it is verified: its algorithms, references, certificates
and XAdES properties, checked against what kyso accepts.

Accepted: the four C14N 1.0 forms (inclusive and exclusive, with and without comments),
the enveloped-signature transform, SHA-2 digests, RSA (PKCS#1 v1.5 and PSS), ECDSA, and
references to the whole document (``URI=""``) or to one element of it (``URI="#id"``).
Anything else (XPath, XSLT and XPointer transforms, external URIs, Base64 or unknown
transforms) is a :class:`Problem` and the signature is not processed further: those are the
tricks of signature wrapping and of transforms that run code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asn1crypto import x509
from lxml import etree

from kyso.signer.verify import report as r
from kyso.signer.xml import dsig
from kyso.signer.xml.dsig import ds, xades

SIGNED_PROPERTIES_TYPES = ("http://uri.etsi.org/01903#SignedProperties",)
ID_ATTRIBUTES = ("Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id")
_TRANSFORMS = (dsig.ENVELOPED, *dsig.CANONICALIZATIONS)
_HASHLIB_NAMES = {**dsig.DIGESTS, "http://www.w3.org/2000/09/xmldsig#sha1": "sha1"}


class Problem(Exception):
    """Why a signature cannot be processed: an ETSI indication, sub-indication and message."""

    def __init__(self, sub_indication: str, message: str, indication: str = r.TOTAL_FAILED):
        super().__init__(message)
        self.indication = indication
        self.sub_indication = sub_indication
        self.message = message


@dataclass(frozen=True)
class Reference:
    uri: str
    type: str | None
    transforms: tuple[str, ...]
    target: etree._Element  # the root element for URI="", else the element with that Id

    @property
    def whole_document(self) -> bool:
        return self.uri == ""


@dataclass
class SignatureParts:
    element: etree._Element
    signed_info: etree._Element
    c14n_method: str
    signature_method: str
    references: list[Reference]
    value: bytes
    certificates: list[x509.Certificate]
    signed_properties: etree._Element | None = None
    qualifying: etree._Element | None = None
    timestamps: list[etree._Element] = field(default_factory=list)

    @property
    def id(self) -> str:
        """SHA-256 of the signature value: the report's ``id`` and the registry's key."""
        return hashlib.sha256(self.value).hexdigest()

    def data_references(self) -> list[Reference]:
        """The references to the document (not to the signature's own properties)."""
        return [
            ref for ref in self.references
            if ref.type not in SIGNED_PROPERTIES_TYPES and not _inside(ref.target, self.element)
        ]  # fmt: skip


def _inside(node: etree._Element, ancestor: etree._Element) -> bool:
    return node is ancestor or any(a is ancestor for a in node.iterancestors())


def ids_of(tree: etree._ElementTree) -> dict[str, list[etree._Element]]:
    """Every ``Id``-like attribute value in the document and the elements that carry it."""
    found: dict[str, list[etree._Element]] = {}
    for element in tree.getroot().iter(etree.Element):
        for name in ID_ATTRIBUTES:
            value = element.get(name)
            if value is not None:
                found.setdefault(value, []).append(element)
    return found


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise Problem(r.FORMAT_FAILURE, f"the signature must have exactly one {what}, it has {len(found)}")
    return found[0]


def _algorithm(element: etree._Element, accepted: tuple[str, ...], weak: tuple[str, ...], what: str) -> str:
    algorithm = element.get("Algorithm") or ""
    if algorithm in weak:
        raise Problem(
            r.CRYPTO_CONSTRAINTS_FAILURE, f"the {what} {algorithm} is too weak to rely on", r.INDETERMINATE
        )
    if algorithm not in accepted:
        raise Problem(r.FORMAT_FAILURE, f"the {what} {algorithm or '(none)'} is not accepted")
    return algorithm


def _reference(
    element: etree._Element, tree: etree._ElementTree, ids: dict[str, list[etree._Element]]
) -> Reference:
    uri = element.get("URI")
    if uri is None or (uri and not uri.startswith("#")) or uri.startswith("#xpointer("):
        raise Problem(r.FORMAT_FAILURE, f"reference URI {uri!r} is not accepted: only \"\" and \"#id\"")
    transforms = tuple(t.get("Algorithm") or "" for t in element.findall(f"{ds('Transforms')}/{ds('Transform')}"))
    for transform in transforms:
        if transform not in _TRANSFORMS:
            raise Problem(r.FORMAT_FAILURE, f"the transform {transform or '(none)'} is not accepted")
    _algorithm(_one(element, ds("DigestMethod"), "DigestMethod"), tuple(dsig.DIGESTS), dsig.WEAK_DIGESTS, "digest method")
    if uri == "":
        return Reference(uri, element.get("Type"), transforms, tree.getroot())
    holders = ids.get(uri[1:], [])
    if len(holders) != 1:
        raise Problem(
            r.FORMAT_FAILURE,
            f"reference {uri} matches {len(holders)} elements: an Id must be unique "
            "(a duplicate is how signature wrapping hides the signed element)",
        )
    return Reference(uri, element.get("Type"), transforms, holders[0])


def _certificates(signature: etree._Element) -> list[x509.Certificate]:
    certs = []
    for node in signature.findall(f"{ds('KeyInfo')}/{ds('X509Data')}/{ds('X509Certificate')}"):
        try:
            cert = x509.Certificate.load(base64.b64decode("".join((node.text or "").split()), validate=True))
            _ = cert.native  # asn1crypto parses lazily: find a broken certificate now
        except Exception as exc:  # base64 and asn1crypto raise several kinds on garbage
            raise Problem(r.FORMAT_FAILURE, f"an X509Certificate is not a base64 DER certificate: {exc}") from None
        certs.append(cert)
    return certs


def read_signature(
    signature: etree._Element, tree: etree._ElementTree, ids: dict[str, list[etree._Element]]
) -> SignatureParts:
    """The parts of ``signature``, or the :class:`Problem` that stops its verification."""
    signed_info = _one(signature, ds("SignedInfo"), "SignedInfo")
    c14n = _algorithm(_one(signed_info, ds("CanonicalizationMethod"), "CanonicalizationMethod"),
                      dsig.CANONICALIZATIONS, (), "canonicalization")  # fmt: skip
    method = _algorithm(_one(signed_info, ds("SignatureMethod"), "SignatureMethod"),
                        dsig.SIGNATURE_METHODS, dsig.WEAK_SIGNATURE_METHODS, "signature method")  # fmt: skip
    references = [_reference(ref, tree, ids) for ref in signed_info.findall(ds("Reference"))]
    if not references:
        raise Problem(r.FORMAT_FAILURE, "the signature has no reference: it signs nothing")
    value_node = _one(signature, ds("SignatureValue"), "SignatureValue")
    try:
        value = base64.b64decode("".join((value_node.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise Problem(r.FORMAT_FAILURE, "the SignatureValue is not base64") from None
    if not value:
        raise Problem(r.FORMAT_FAILURE, "the SignatureValue is empty")
    parts = SignatureParts(signature, signed_info, c14n, method, references, value, _certificates(signature))
    _read_properties(parts)
    return parts


def _read_properties(parts: SignatureParts) -> None:
    """The XAdES ``QualifyingProperties`` of this signature (``Target`` naming its Id): the
    signed properties and the signature timestamps."""
    own_id = parts.element.get("Id")
    for qualifying in parts.element.findall(f"{ds('Object')}/{xades('QualifyingProperties')}"):
        if own_id is None or qualifying.get("Target") != f"#{own_id}":
            raise Problem(r.FORMAT_FAILURE, "QualifyingProperties whose Target is not this signature")
        if parts.qualifying is not None:
            raise Problem(r.FORMAT_FAILURE, "more than one QualifyingProperties")
        parts.qualifying = qualifying
        signed = qualifying.findall(xades("SignedProperties"))
        if len(signed) > 1:
            raise Problem(r.FORMAT_FAILURE, "more than one SignedProperties")
        parts.signed_properties = signed[0] if signed else None
        parts.timestamps = qualifying.findall(
            f"{xades('UnsignedProperties')}/{xades('UnsignedSignatureProperties')}/{xades('SignatureTimeStamp')}"
        )
    if parts.signed_properties is not None and not any(
        ref.target is parts.signed_properties for ref in parts.references
    ):
        raise Problem(r.FORMAT_FAILURE, "the SignedProperties are not covered by the signature")


def signing_certificate(parts: SignatureParts) -> x509.Certificate:
    """The signer's certificate among those of ``KeyInfo``: the one the signed
    ``SigningCertificateV2`` (or ``SigningCertificate``) names, else the one that issued
    none of the others."""
    if not parts.certificates:
        raise Problem(r.NO_SIGNING_CERTIFICATE_FOUND, "KeyInfo carries no X509Certificate", r.INDETERMINATE)
    named = _signing_certificate_digests(parts)
    if named:
        for cert in parts.certificates:
            if any(hashlib.new(algo, cert.dump()).digest() == value for algo, value in named):
                return cert
        raise Problem(
            r.NO_SIGNING_CERTIFICATE_FOUND,
            "no certificate in KeyInfo matches the signed SigningCertificate digest",
            r.INDETERMINATE,
        )
    leaves = [c for c in parts.certificates if not any(o.issuer == c.subject and o is not c for o in parts.certificates)]
    return leaves[0] if len(leaves) == 1 else parts.certificates[0]


def check_key_size(certificate: x509.Certificate) -> None:
    """Circular 15/2025/TT-BKHCN: RSA keys of at least 2048 bits, EC keys of at least 256."""
    key = certificate.public_key
    minimum = {"rsa": 2048, "ec": 256}.get(key.algorithm)
    if minimum is None or key.bit_size < minimum:
        raise Problem(
            r.CRYPTO_CONSTRAINTS_FAILURE,
            f"the signer's {key.algorithm.upper()} key of {key.bit_size} bits is too weak to rely on",
            r.INDETERMINATE,
        )


def _signing_certificate_digests(parts: SignatureParts) -> list[tuple[str, bytes]]:
    if parts.signed_properties is None:
        return []
    digests = []
    for kind in ("SigningCertificateV2", "SigningCertificate"):
        path = f"{xades('SignedSignatureProperties')}/{xades(kind)}/{xades('Cert')}/{xades('CertDigest')}"
        for cert_digest in parts.signed_properties.iterfind(path):
            method = cert_digest.find(ds("DigestMethod"))
            algo = _HASHLIB_NAMES.get(method.get("Algorithm") or "") if method is not None else None
            try:
                value = base64.b64decode(cert_digest.findtext(ds("DigestValue")) or "", validate=True)
            except (binascii.Error, ValueError):
                continue
            if algo:
                digests.append((algo, value))
    return digests


def signing_time(parts: SignatureParts) -> datetime | None:
    """The signed ``SigningTime`` (XAdES), if there is one and it reads as a time."""
    if parts.signed_properties is None:
        return None
    text = parts.signed_properties.findtext(f"{xades('SignedSignatureProperties')}/{xades('SigningTime')}")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
