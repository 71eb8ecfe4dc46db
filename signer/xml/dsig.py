"""XML Signature (XML-DSig 1.1) vocabulary: namespaces, algorithm identifiers, and the few
operations kyso performs itself: canonicalisation (libxml2's, through lxml), digests, the
``KeyInfo`` of a certificate chain, and signature values in their XML-DSig encoding.

Verification is not done here: libxmlsec1 does it (:mod:`kyso.signer.xml.verify`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

from asn1crypto import x509
from cryptography import x509 as cx509
from lxml import etree

from kyso.formats import ecdsa_as_der, ecdsa_der_to_raw
from kyso.keystore.base import Scheme

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
CANONICALIZATIONS = (C14N, C14N_COMMENTS, EXC_C14N, EXC_C14N_COMMENTS)
ENVELOPED = DS + "enveloped-signature"

SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGESTS = {
    SHA256: "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
WEAK_DIGESTS = ("http://www.w3.org/2000/09/xmldsig#sha1", "http://www.w3.org/2001/04/xmldsig-more#md5")

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_PSS_SHA256 = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNATURE_METHODS = (
    RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    RSA_PSS_SHA256,
    "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
    ECDSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
)
WEAK_SIGNATURE_METHODS = (
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
)
_METHOD_FOR_SCHEME: dict[Scheme, str] = {
    "pkcs1v15": RSA_SHA256,
    "pss": RSA_PSS_SHA256,
    "ecdsa": ECDSA_SHA256,
}


def ds(name: str) -> str:
    return f"{{{DS}}}{name}"


def xades(name: str) -> str:
    return f"{{{XADES}}}{name}"


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A child element with attributes (and text); namespaces as declared above it."""
    child = etree.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def canonicalize(node: Any, algorithm: str) -> bytes:
    """``node`` (an element, or a whole document) in one of the four C14N forms.

    libxml2 canonicalises lxml's element subtrees wrongly when their default namespace is
    declared above them (``xmlns=""`` appears on grandchildren), exactly the case of an
    unprefixed ``SignedInfo``: inclusive C14N of an element is therefore computed on a copy
    made into a document of its own, carrying what C14N 1.0 takes from the ancestors (the
    namespaces in scope and the inherited ``xml:*`` attributes)."""
    if algorithm not in CANONICALIZATIONS:
        raise ValueError(f"unsupported canonicalization {algorithm}")
    exclusive = algorithm.startswith(EXC_C14N)
    if isinstance(node, etree._Element) and not exclusive and node.getparent() is not None:
        node = _standalone(node)
    return etree.tostring(
        node, method="c14n", exclusive=exclusive, with_comments=algorithm.endswith("WithComments")
    )


_XML_ATTR = "{http://www.w3.org/XML/1998/namespace}"


def _standalone(node: etree._Element) -> etree._ElementTree:
    """A copy of ``node`` as the root of a new document, with every namespace in scope
    declared on it and the ``xml:*`` attributes it inherits (nearest ancestor first)."""
    attrib: dict[str, str] = {}
    for ancestor in reversed(list(node.iterancestors())):
        attrib.update({k: v for k, v in ancestor.attrib.items() if k.startswith(_XML_ATTR)})
    attrib.update(node.attrib)
    copy = etree.Element(node.tag, attrib, nsmap=node.nsmap)
    copy.text = node.text
    for child in node:
        copy.append(deepcopy(child))
    return etree.ElementTree(copy)


def digest_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signature_method(certificate: x509.Certificate, scheme: Scheme) -> str:
    """The ``SignatureMethod`` URI for the certificate's key signing with ``scheme``."""
    kind = certificate.public_key.algorithm
    if kind == "ec" and scheme != "ecdsa" or kind == "rsa" and scheme == "ecdsa":
        raise ValueError(f"a {kind} key cannot sign with {scheme}")
    return _METHOD_FOR_SCHEME[scheme]


def ec_size(certificate: x509.Certificate) -> int:
    """Bytes of one ECDSA value half (``r`` or ``s``) for the certificate's curve."""
    return (certificate.public_key.bit_size + 7) // 8


def signature_value(raw: bytes, certificate: x509.Certificate, scheme: Scheme) -> bytes:
    """A key's signature as XML-DSig carries it: ECDSA as raw ``r||s`` (RFC 6931 3.2.1,
    whether the key returned DER or raw), RSA as it is."""
    if scheme != "ecdsa":
        return raw
    size = ec_size(certificate)
    return ecdsa_der_to_raw(ecdsa_as_der(raw, size), size)


def issuers_of(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The chain to put beside the leaf: its CA certificates, the self-signed root left out
    (a verifier must have the root already; carrying it proves nothing)."""
    return [c for c in chain if c.self_signed == "no" and c.dump() != certificate.dump()]


def subject_name(certificate: x509.Certificate) -> str:
    """The subject as an RFC 4514 string (XML-DSig 4.5.4 asks for RFC 2253, its predecessor)."""
    return cx509.load_der_x509_certificate(certificate.dump()).subject.rfc4514_string()


def key_info(
    signature: etree._Element,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    with_subject_name: bool,
) -> etree._Element:
    """``KeyInfo/X509Data``: (the leaf's subject name,) the leaf, then its CA certificates."""
    info = sub(signature, ds("KeyInfo"))
    data = sub(info, ds("X509Data"))
    if with_subject_name:
        sub(data, ds("X509SubjectName"), subject_name(certificate))
    for cert in (certificate, *issuers_of(certificate, chain)):
        sub(data, ds("X509Certificate"), b64(cert.dump()))
    return info


def reference(
    signed_info: etree._Element, uri: str, transforms: Sequence[str], digest: str, **attrs: str
) -> etree._Element:
    """A ``Reference`` with its transforms, SHA-256 digest method and digest value."""
    ref = sub(signed_info, ds("Reference"), **attrs, URI=uri)
    if transforms:
        chain = sub(ref, ds("Transforms"))
        for algorithm in transforms:
            sub(chain, ds("Transform"), Algorithm=algorithm)
    sub(ref, ds("DigestMethod"), Algorithm=SHA256)
    sub(ref, ds("DigestValue"), digest)
    return ref
