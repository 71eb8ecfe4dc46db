"""XML records signed by kyso in both profiles, proven by verifiers kyso does not sign with:
Debian's ``xmlsec1`` (libxmlsec1 1.2) for RSA PKCS#1 v1.5 and ECDSA, libxmlsec1 1.3 (the
python-xmlsec wheel) for RSA-PSS, which 1.2 does not know, and ``openssl ts -verify`` for
every signature timestamp. kyso builds its signatures with lxml and its own keystore; neither
libxmlsec1 build made them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from lxml import etree
from support import CORPUS
from verifiers import (
    libxmlsec13_verify,
    openssl_ts_verify,
    xml_signature_timestamps,
    xmlsec1_verify,
)

from kyso.signer.xml import XmlSignOptions, sign_xml
from kyso.signer.xml.verify import verify_xml

XML_DIR = CORPUS / "xml"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
XADES = "{http://uri.etsi.org/01903/v1.3.2#}"
SAMPLES = sorted(XML_DIR.glob("*.xml"))
# (key alias, RSA scheme asked for XAdES)
SIGNERS = [("hospital-seal", "pss"), ("hospital-seal", "pkcs1v15"), ("lab-seal", "pss")]


def has_slot(path: Path) -> bool:
    return etree.parse(str(path)).getroot().find(".//CHUKYDONVI") is not None


CASES = [
    pytest.param(sample, profile, alias, scheme, level, id=f"{sample.stem}-{profile}-{alias}-{scheme}-{level}")
    for sample in SAMPLES
    for profile in ("bhyt", "xades")
    if profile == "xades" or has_slot(sample)
    for alias, scheme in SIGNERS
    for level in ("B-B", "B-T")
]


@pytest.mark.parametrize(("sample", "profile", "alias", "scheme", "level"), CASES)
def test_every_sample_is_signed_and_verified_by_libxmlsec1_and_openssl(
    sample: Path, profile: str, alias: str, scheme: str, level: str, dev_key, timestamper, settings_with_crls,
    tmp_path: Path, root_pem: Path, chain_pem: Path,
) -> None:
    options = XmlSignOptions(level=level, profile=profile, rsa_scheme=scheme)  # type: ignore[arg-type]
    signed = sign_xml(sample.read_bytes(), dev_key(alias), options, timestamper)
    out = tmp_path / "signed.xml"
    out.write_bytes(signed.xml)
    root = etree.fromstring(signed.xml)
    method = root.find(f".//{DS}SignatureMethod").get("Algorithm")
    if method.endswith("sha256-rsa-MGF1"):
        assert profile == "xades" and scheme == "pss"
        libxmlsec13_verify(signed.xml, root_pem, chain_pem)
    else:
        result = xmlsec1_verify(out, root_pem, chain_pem)
        assert result.returncode == 0, result.stderr
    stamps = xml_signature_timestamps(signed.xml)
    assert len(stamps) == (1 if level == "B-T" else 0)
    for token, covered in stamps:
        checked = openssl_ts_verify(token, covered, root_pem, chain_pem, tmp_path)
        assert checked.returncode == 0, checked.stderr
    report = verify_xml(signed.xml, settings_with_crls).to_json()
    assert report["indication"] == "TOTAL_PASSED", report
    assert report["signatures"][0]["level"] == level
    assert report["signatures"][0]["coverage"] == "ENTIRE_FILE"


def test_the_bhyt_signature_has_the_form_of_the_portal_s_files(dev_key) -> None:
    data = (XML_DIR / "bhyt-giamdinhhs-4750.xml").read_bytes()
    signed = sign_xml(data, dev_key("hospital-seal"), XmlSignOptions(level="B-B"))
    assert signed.profile == "bhyt"
    root = etree.fromstring(signed.xml)
    assert root[-1].tag == "CHUKYDONVI"
    (signature,) = root[-1]
    assert signature.tag == f"{DS}Signature" and signature.prefix is None  # unprefixed, as .NET writes it
    assert [etree.QName(c).localname for c in signature] == ["SignedInfo", "SignatureValue", "KeyInfo"]
    assert len(signature.get("Id")) == 36  # a GUID
    signed_info = signature.find(f"{DS}SignedInfo")
    assert signed_info.find(f"{DS}CanonicalizationMethod").get("Algorithm") == (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    assert signed_info.find(f"{DS}SignatureMethod").get("Algorithm") == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )
    (reference,) = signed_info.findall(f"{DS}Reference")
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    ]
    assert reference.find(f"{DS}DigestMethod").get("Algorithm") == "http://www.w3.org/2001/04/xmlenc#sha256"
    x509_data = signature.find(f"{DS}KeyInfo/{DS}X509Data")
    assert [etree.QName(c).localname for c in x509_data] == ["X509SubjectName", "X509Certificate", "X509Certificate"]
    assert base64.b64decode(x509_data[1].text) == dev_key("hospital-seal").info.certificate.dump()
    # Everything before CHUKYDONVI is the document as it came.
    before = data.split(b"<CHUKYDONVI")[0].split(b"?>", 1)[1]
    assert signed.xml.split(b"<CHUKYDONVI")[0].split(b"?>", 1)[1] == before


def test_bhyt_signs_with_pkcs1_v15_even_when_pss_is_asked(dev_key) -> None:
    data = (XML_DIR / "tt12-danhmuc-bophan.xml").read_bytes()
    signed = sign_xml(data, dev_key("hospital-seal"), XmlSignOptions(level="B-B", rsa_scheme="pss"))
    method = etree.fromstring(signed.xml).find(f".//{DS}SignatureMethod").get("Algorithm")
    assert method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def test_the_xades_signature_is_the_root_s_last_child_with_baseline_properties(dev_key, timestamper) -> None:
    data = (XML_DIR / "hl7-cda-discharge-excerpt.xml").read_bytes()
    signed = sign_xml(data, dev_key("hospital-seal"), XmlSignOptions(), timestamper)
    assert signed.profile == "xades" and signed.level == "B-T"
    root = etree.fromstring(signed.xml)
    signature = root[-1]
    assert signature.tag == f"{DS}Signature"
    method = signature.find(f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm")
    assert method == "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
    refs = signature.findall(f"{DS}SignedInfo/{DS}Reference")
    assert [r.get("URI") for r in refs] == ["", f"#xades-{signature.get('Id')}"]
    assert refs[1].get("Type") == "http://uri.etsi.org/01903#SignedProperties"
    properties = signature.find(f"{DS}Object/{XADES}QualifyingProperties")
    assert properties.get("Target") == f"#{signature.get('Id')}"
    ssp = properties.find(f"{XADES}SignedProperties/{XADES}SignedSignatureProperties")
    assert ssp.findtext(f"{XADES}SigningTime").endswith("Z")
    digest = ssp.findtext(f"{XADES}SigningCertificateV2/{XADES}Cert/{XADES}CertDigest/{DS}DigestValue")
    assert base64.b64decode(digest) == hashlib.sha256(dev_key("hospital-seal").info.certificate.dump()).digest()
    fmt = properties.find(f"{XADES}SignedProperties/{XADES}SignedDataObjectProperties/{XADES}DataObjectFormat")
    assert fmt.get("ObjectReference") == f"#{refs[0].get('Id')}" and fmt.findtext(f"{XADES}MimeType") == "text/xml"
    assert properties.find(f"{XADES}UnsignedProperties/{XADES}UnsignedSignatureProperties/{XADES}SignatureTimeStamp") is not None


def test_an_ecdsa_signature_value_is_raw_r_and_s(dev_key) -> None:
    data = (XML_DIR / "giay-chung-sinh.xml").read_bytes()
    signed = sign_xml(data, dev_key("lab-seal"), XmlSignOptions(level="B-B"))
    value = etree.fromstring(signed.xml).findtext(f".//{DS}SignatureValue")
    assert len(base64.b64decode(value)) == 64


@pytest.mark.parametrize("profile", ["bhyt", "xades"])
@pytest.mark.parametrize(
    ("old", "new"),
    [(b"Khoa N\xe1\xbb\x99i", b"Khoa N\xe1\xbb\x99y"), (b"<SO_GIUONG>60<", b"<SO_GIUONG>61<"), (b"MA_BPCM>K19", b"MA_BPCM>K18")],
)
def test_one_changed_character_makes_xmlsec1_and_kyso_reject_the_file(
    profile: str, old: bytes, new: bytes, dev_key, settings, tmp_path: Path, root_pem: Path, chain_pem: Path
) -> None:
    data = (XML_DIR / "tt12-danhmuc-bophan.xml").read_bytes()
    signed = sign_xml(data, dev_key("lab-seal"), XmlSignOptions(level="B-B", profile=profile))
    assert signed.xml.count(old) == 1
    changed = signed.xml.replace(old, new)
    out = tmp_path / "changed.xml"
    out.write_bytes(changed)
    assert xmlsec1_verify(out, root_pem, chain_pem).returncode != 0
    report = verify_xml(changed, settings).to_json()
    assert report["indication"] == "TOTAL_FAILED"
    assert report["signatures"][0]["sub_indication"] == "HASH_FAILURE"
    assert report["signatures"][0]["intact"] is False


def test_a_changed_signature_value_is_a_crypto_failure_for_both(dev_key, settings, tmp_path, root_pem, chain_pem) -> None:
    data = (XML_DIR / "tt12-danhmuc-bophan.xml").read_bytes()
    signed = sign_xml(data, dev_key("hospital-seal"), XmlSignOptions(level="B-B"))
    value = etree.fromstring(signed.xml).findtext(f".//{DS}SignatureValue")
    raw = bytearray(base64.b64decode(value))
    raw[10] ^= 1
    changed = signed.xml.replace(value.encode(), base64.b64encode(bytes(raw)))
    out = tmp_path / "changed.xml"
    out.write_bytes(changed)
    assert xmlsec1_verify(out, root_pem, chain_pem).returncode != 0
    assert verify_xml(changed, settings).signatures[0].sub_indication == "SIG_CRYPTO_FAILURE"
