"""The facility signature of Vietnam's health-insurance (BHYT) XML files.

The claim envelope ``GIAMDINHHS`` of Decisions 130/QĐ-BYT, 4750/QĐ-BYT and 3176/QĐ-BYT, the
catalogue files ``HSDANHMUC``, birth certificates and death notices end with an empty
``CHUKYDONVI`` element ("facility signature"); the sending facility puts an enveloped XML
Signature inside it. The form is the one the public integrations produce with .NET's
``SignedXml`` (see the README, "XML records", for the sources)::

    <CHUKYDONVI>
      <Signature xmlns="http://www.w3.org/2000/09/xmldsig#" Id="{GUID}">
        <SignedInfo>
          <CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
          <SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
          <Reference URI="">
            <Transforms><Transform Algorithm="...#enveloped-signature"/></Transforms>
            <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <DigestValue>...</DigestValue>
          </Reference>
        </SignedInfo>
        <SignatureValue>...</SignatureValue>
        <KeyInfo><X509Data><X509SubjectName>...</X509SubjectName>
          <X509Certificate>leaf</X509Certificate>...</X509Data></KeyInfo>
      </Signature>
    </CHUKYDONVI>

RSA keys sign with PKCS#1 v1.5 here whatever the alias says: .NET's ``SignedXml`` knows no
RSA-PSS signature method, and no public integration uses one. EC keys use ecdsa-sha256.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from asn1crypto import x509
from lxml import etree

from kyso.errors import InvalidRequest
from kyso.keystore.base import Scheme
from kyso.signer.xml import dsig
from kyso.signer.xml.dsig import C14N, DS, ENVELOPED, ds, sub

SLOT = "CHUKYDONVI"


def find_slot(tree: etree._ElementTree) -> etree._Element | None:
    """The ``CHUKYDONVI`` element to sign into: the root's own child if it has one, else
    the only one in the document; ``None`` when there is none. Several and none of them
    the root's child is ambiguous and refused."""
    root = tree.getroot()
    own = [child for child in root if child.tag == SLOT]
    if own:
        return own[-1]
    found = list(root.iter(SLOT))
    if len(found) > 1:
        raise InvalidRequest(
            f"the document has {len(found)} {SLOT} elements and none is a child of the root: "
            "say which one to sign by removing the others"
        )
    return found[0] if found else None


def bhyt_scheme(certificate: x509.Certificate) -> Scheme:
    """PKCS#1 v1.5 for RSA keys (what the portal's .NET receivers verify), ECDSA for EC."""
    return "ecdsa" if certificate.public_key.algorithm == "ec" else "pkcs1v15"


def build(
    tree: etree._ElementTree,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> etree._Element:
    """Put the unsigned ``Signature`` (digest computed, value empty) in ``CHUKYDONVI``."""
    slot = find_slot(tree)
    if slot is None:
        raise InvalidRequest(f"profile bhyt signs into a {SLOT} element, and the document has none")
    if len(slot):
        raise InvalidRequest(f"{SLOT} already holds an element (a signature?): send the unsigned file")
    # The digest of the document as the enveloped-signature transform will see it: the
    # signature goes in with no text after it, so taking it out leaves exactly this.
    digest = dsig.digest_b64(dsig.canonicalize(tree, C14N))
    signature = etree.SubElement(slot, ds("Signature"), nsmap={None: DS})
    signature.set("Id", str(uuid.uuid4()))
    signed_info = sub(signature, ds("SignedInfo"))
    sub(signed_info, ds("CanonicalizationMethod"), Algorithm=C14N)
    sub(signed_info, ds("SignatureMethod"), Algorithm=dsig.signature_method(certificate, bhyt_scheme(certificate)))
    dsig.reference(signed_info, "", [ENVELOPED], digest)
    sub(signature, ds("SignatureValue"))
    dsig.key_info(signature, certificate, chain, with_subject_name=True)
    return signature
