"""XAdES baseline signatures (ETSI EN 319 132-1) enveloped in an XML record, and the
XAdES signature timestamp that both of kyso's XML profiles use for ``B-T``.

``B-B`` is an enveloped signature, the last child of the root, with two references: the
whole document (``URI=""``, enveloped-signature and exclusive C14N transforms) and the
``SignedProperties`` (exclusive C14N, declared: libxmlsec1 rejects a reference whose
canonicalisation is left implicit), which hold ``SigningTime``, ``SigningCertificateV2``
(SHA-256 of the signer's certificate) and the ``DataObjectFormat`` (``text/xml``) of the
document reference. The certificate chain, root left out, is in ``KeyInfo/X509Data``.

``B-T`` adds ``UnsignedSignatureProperties/SignatureTimeStamp``: an RFC 3161 token whose
message imprint is SHA-256 over the exclusive canonical form of ``ds:SignatureValue``
(EN 319 132-1 5.3), the canonicalisation named in the element.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from asn1crypto import x509
from lxml import etree

from kyso.keystore.base import Scheme
from kyso.signer.timestamp.client import TimestampClient
from kyso.signer.xml import dsig
from kyso.signer.xml.dsig import DS, ENVELOPED, EXC_C14N, SHA256, XADES, ds, sub, xades

SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
TIMESTAMP_C14N = EXC_C14N


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(
    tree: etree._ElementTree,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    scheme: Scheme,
    signing_time: datetime,
) -> etree._Element:
    """Append the unsigned XAdES ``ds:Signature`` (digests computed, value empty) to the root."""
    root = tree.getroot()
    digest = dsig.digest_b64(dsig.canonicalize(tree, EXC_C14N))  # before the signature is in
    base = f"id-{uuid.uuid4().hex}"
    signature = etree.SubElement(root, ds("Signature"), nsmap={"ds": DS})
    signature.set("Id", base)
    signed_info = sub(signature, ds("SignedInfo"))
    sub(signed_info, ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    sub(signed_info, ds("SignatureMethod"), Algorithm=dsig.signature_method(certificate, scheme))
    dsig.reference(signed_info, "", [ENVELOPED, EXC_C14N], digest, Id=f"r-{base}-1")
    sub(signature, ds("SignatureValue"), Id=f"value-{base}")
    dsig.key_info(signature, certificate, chain, with_subject_name=False)
    properties = _qualifying_properties(signature, base)
    signed = sub(properties, xades("SignedProperties"), Id=f"xades-{base}")
    ssp = sub(signed, xades("SignedSignatureProperties"))
    sub(ssp, xades("SigningTime"), format_time(signing_time))
    cert = sub(sub(sub(ssp, xades("SigningCertificateV2")), xades("Cert")), xades("CertDigest"))
    sub(cert, ds("DigestMethod"), Algorithm=SHA256)
    sub(cert, ds("DigestValue"), dsig.digest_b64(certificate.dump()))
    sdop = sub(signed, xades("SignedDataObjectProperties"))
    sub(sub(sdop, xades("DataObjectFormat"), ObjectReference=f"#r-{base}-1"), xades("MimeType"), "text/xml")
    signed_digest = dsig.digest_b64(dsig.canonicalize(signed, EXC_C14N))
    dsig.reference(
        signed_info, f"#xades-{base}", [EXC_C14N], signed_digest, Type=SIGNED_PROPERTIES_TYPE
    )
    return signature


def _qualifying_properties(signature: etree._Element, signature_id: str) -> etree._Element:
    obj = sub(signature, ds("Object"))
    properties = etree.SubElement(obj, xades("QualifyingProperties"), nsmap={"xades": XADES})
    properties.set("Target", f"#{signature_id}")
    return properties


def timestamp_imprint(signature: etree._Element, algorithm: str = TIMESTAMP_C14N) -> bytes:
    """What a signature timestamp covers: SHA-256 of the canonical ``SignatureValue``."""
    value = signature.find(ds("SignatureValue"))
    if value is None:
        raise ValueError("the signature has no SignatureValue")
    return hashlib.sha256(dsig.canonicalize(value, algorithm)).digest()


def add_signature_timestamp(signature: etree._Element, timestamper: TimestampClient) -> None:
    """Timestamp the signature value and put the token in the signature's
    ``QualifyingProperties/UnsignedProperties`` (made, in an ``Object``, if missing)."""
    token = timestamper.timestamp(timestamp_imprint(signature))
    signature_id = signature.get("Id") or ""
    properties = signature.find(f"{ds('Object')}/{xades('QualifyingProperties')}")
    if properties is None:
        properties = _qualifying_properties(signature, signature_id)
    unsigned = sub(sub(properties, xades("UnsignedProperties")), xades("UnsignedSignatureProperties"))
    stamp = sub(unsigned, xades("SignatureTimeStamp"), Id=f"ts-{uuid.uuid4().hex}")
    sub(stamp, ds("CanonicalizationMethod"), Algorithm=TIMESTAMP_C14N)
    sub(stamp, xades("EncapsulatedTimeStamp"), base64.b64encode(token.dump()).decode("ascii"))
