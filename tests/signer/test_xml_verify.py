"""kyso's verification of XML Signatures: signatures made by other tools (python-xmlsec,
signxml) pass; signature wrapping, foreign transforms, weak algorithms, wrong certificates and
borrowed timestamps are caught; what a signature covers is said as it is."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
import xmlsec
from lxml import etree
from support import CORPUS
from verifiers import xmlsec1_verify

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.signer.xml import XmlSignOptions, sign_xml
from kyso.signer.xml.verify import verify_xml

PKI = dev_pki_dir()
XML_DIR = CORPUS / "xml"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
XADES = "{http://uri.etsi.org/01903/v1.3.2#}"
BIRTH = (XML_DIR / "giay-chung-sinh.xml").read_bytes()
BIRTH_ID = "GCS-45001-2026-000731"
C = xmlsec.constants


def xmlsec_sign(data: bytes, uri: str = "", method=C.TransformRsaSha256, alias: str = "hospital-seal") -> bytes:
    """A signature made by python-xmlsec (libxmlsec1 1.3), not by kyso: in CHUKYDONVI,
    inclusive C14N, over ``uri``, the dev key's certificate in KeyInfo."""
    root = etree.fromstring(data)
    signature = xmlsec.template.create(root, C.TransformInclC14N, method)
    reference = xmlsec.template.add_reference(signature, C.TransformSha256, uri=uri)
    xmlsec.template.add_transform(reference, C.TransformEnveloped)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    xmlsec.template.x509_data_add_certificate(x509_data)
    root.find(".//CHUKYDONVI").append(signature)
    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_file(str(PKI / f"{alias}.key.pem"), C.KeyDataFormatPem, DEV_PASSPHRASE.decode())
    key.load_cert_from_file(str(PKI / f"{alias}.cert.pem"), C.KeyDataFormatPem)
    key.load_cert_from_file(str(PKI / "intermediate-ca.cert.pem"), C.KeyDataFormatPem)
    ctx.key = key
    if uri:
        ctx.register_id(root.find(f".//*[@Id='{uri[1:]}']"), "Id")
    ctx.sign(signature)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


def only(report):
    assert len(report.signatures) == 1, report
    return report.signatures[0]


def test_a_signature_made_by_python_xmlsec_in_the_portal_form_passes(settings) -> None:
    sig = only(verify_xml(xmlsec_sign(BIRTH), settings))
    assert (sig.indication, sig.coverage, sig.level, sig.intact) == ("TOTAL_PASSED", "ENTIRE_FILE", "B-B", True)
    assert sig.signer is not None and "Bệnh viện Đa khoa kyso" in sig.signer.subject


def test_a_xades_signature_made_by_signxml_passes(settings) -> None:
    from signxml import methods
    from signxml.xades import XAdESSigner

    root = etree.fromstring((XML_DIR / "hl7-cda-discharge-excerpt.xml").read_bytes())
    signer = XAdESSigner(method=methods.enveloped, c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    key = (PKI / "hospital-seal.key.pem").read_bytes()
    certs = [(PKI / "hospital-seal.cert.pem").read_text(), (PKI / "intermediate-ca.cert.pem").read_text()]
    signed = etree.tostring(signer.sign(root, key=key, passphrase=DEV_PASSPHRASE, cert=certs))
    sig = only(verify_xml(signed, settings))
    assert (sig.indication, sig.coverage, sig.intact) == ("TOTAL_PASSED", "ENTIRE_FILE", True), sig
    assert sig.signing_time is not None


def test_an_element_signature_says_what_it_covers(settings, tmp_path: Path, root_pem, chain_pem) -> None:
    signed = xmlsec_sign(BIRTH, uri=f"#{BIRTH_ID}")
    sig = only(verify_xml(signed, settings))
    assert (sig.indication, sig.coverage) == ("TOTAL_PASSED", "PARTIAL")
    assert "covers only <GIAYCHUNGSINH> at /HSDLGCS/GIAYCHUNGSINH" in sig.message


def wrapped_beside(signed: bytes) -> bytes:
    """An unsigned look-alike of the signed element added beside it, saying something else."""
    root = etree.fromstring(signed)
    original = root.find("GIAYCHUNGSINH")
    fake = copy.deepcopy(original)
    del fake.attrib["Id"]
    fake.find("TEN_CON").text = "Người Khác"
    original.addprevious(fake)
    return etree.tostring(root)


def wrapped_away(signed: bytes) -> bytes:
    """The signed element moved out of the reader's way, a changed copy in its place."""
    root = etree.fromstring(signed)
    original = root.find("GIAYCHUNGSINH")
    fake = copy.deepcopy(original)
    fake.set("Id", "GCS-fake")
    fake.find("TEN_CON").text = "Người Khác"
    original.addprevious(fake)
    etree.SubElement(root, "PHULUC").append(original)
    return etree.tostring(root)


def duplicated_id(signed: bytes) -> bytes:
    """A changed copy carrying the same Id, so that a lookup by Id may find either."""
    root = etree.fromstring(signed)
    original = root.find("GIAYCHUNGSINH")
    fake = copy.deepcopy(original)
    fake.find("TEN_CON").text = "Người Khác"
    original.addprevious(fake)
    return etree.tostring(root)


@pytest.mark.parametrize("wrap", [wrapped_beside, wrapped_away, duplicated_id])
def test_signature_wrapping_is_caught(wrap, settings, tmp_path: Path, root_pem: Path, chain_pem: Path) -> None:
    attacked = wrap(xmlsec_sign(BIRTH, uri=f"#{BIRTH_ID}"))
    if wrap is not duplicated_id:  # a plain verifier accepts these: the signed element is intact
        out = tmp_path / "wrapped.xml"
        out.write_bytes(attacked)
        assert xmlsec1_verify(out, root_pem, chain_pem, ("GIAYCHUNGSINH",)).returncode == 0
    sig = only(verify_xml(attacked, settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    assert "GIAYCHUNGSINH" in sig.message or "Id" in sig.message


def test_an_unsigned_look_alike_signature_is_reported_and_breaks_the_real_one(dev_key, settings) -> None:
    signed = sign_xml(BIRTH, dev_key("hospital-seal"), XmlSignOptions(level="B-B"))
    root = etree.fromstring(signed.xml)
    real = root.find(f".//{DS}Signature")
    root.find("GIAYCHUNGSINH").append(copy.deepcopy(real))
    report = verify_xml(etree.tostring(root), settings)
    assert [s.sub_indication for s in report.signatures] == ["HASH_FAILURE", "HASH_FAILURE"]
    assert report.to_json()["indication"] == "TOTAL_FAILED"


def with_transform(signed: bytes, algorithm: str) -> bytes:
    root = etree.fromstring(signed)
    transforms = root.find(f".//{DS}Reference/{DS}Transforms")
    etree.SubElement(transforms, f"{DS}Transform", Algorithm=algorithm)
    return etree.tostring(root)


@pytest.mark.parametrize(
    "algorithm",
    ["http://www.w3.org/TR/1999/REC-xslt-19991116", "http://www.w3.org/TR/1999/REC-xpath-19991116",
     "http://www.w3.org/2002/06/xmldsig-filter2", "http://www.w3.org/2000/09/xmldsig#base64"],
)
def test_transforms_that_run_code_or_hide_content_are_refused(algorithm: str, dev_key, settings) -> None:
    signed = sign_xml(BIRTH, dev_key("hospital-seal"), XmlSignOptions(level="B-B")).xml
    sig = only(verify_xml(with_transform(signed, algorithm), settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    assert algorithm in sig.message


def test_an_external_reference_is_refused(dev_key, settings) -> None:
    signed = sign_xml(BIRTH, dev_key("hospital-seal"), XmlSignOptions(level="B-B")).xml
    sig = only(verify_xml(signed.replace(b'URI=""', b'URI="http://127.0.0.1:9/x"'), settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_a_sha1_signature_is_not_relied_on(settings) -> None:
    sig = only(verify_xml(xmlsec_sign(BIRTH, method=C.TransformRsaSha1), settings))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")


def test_a_record_without_signature_is_total_failed_with_no_signatures(settings) -> None:
    report = verify_xml(BIRTH, settings).to_json()
    assert report["indication"] == "TOTAL_FAILED" and report["signatures"] == []


def test_a_revoked_signer_fails(dev_key, settings_with_crls) -> None:
    signed = sign_xml(BIRTH, dev_key("dr-revoked"), XmlSignOptions(level="B-B", profile="xades"))
    sig = only(verify_xml(signed.xml, settings_with_crls))
    assert (sig.indication, sig.sub_indication, sig.revocation) == ("TOTAL_FAILED", "REVOKED", "revoked")


def test_a_certificate_other_than_the_signed_one_is_not_taken(dev_key, settings) -> None:
    signed = sign_xml(BIRTH, dev_key("lab-seal"), XmlSignOptions(level="B-B", profile="xades")).xml
    root = etree.fromstring(signed)
    data = root.find(f".//{DS}X509Data")
    for node in data:
        node.text = base64.b64encode(dev_key("hospital-seal").info.certificate.dump()).decode()
    sig = only(verify_xml(etree.tostring(root), settings))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")


def test_a_timestamp_taken_from_another_signature_is_not_valid(dev_key, timestamper, settings) -> None:
    key = dev_key("hospital-seal")
    first = sign_xml(BIRTH, key, XmlSignOptions(profile="xades"), timestamper).xml
    second = sign_xml(BIRTH, key, XmlSignOptions(profile="xades"), timestamper).xml
    token = etree.fromstring(first).findtext(f".//{XADES}EncapsulatedTimeStamp")
    root = etree.fromstring(second)
    root.find(f".//{XADES}EncapsulatedTimeStamp").text = token
    sig = only(verify_xml(etree.tostring(root), settings))
    assert sig.timestamp is not None and sig.timestamp.valid is False
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "SIG_CONSTRAINTS_FAILURE")


def test_only_the_exact_file_kyso_returned_is_shown_as_registered(dev_key, settings) -> None:
    signed = sign_xml(BIRTH, dev_key("hospital-seal"), XmlSignOptions(level="B-B"))

    def registered(candidates):
        return {"audit_seq": 7, "record_id": "r"} if candidates == [signed.sha256] else None

    sig = only(verify_xml(signed.xml, settings, registered))
    assert sig.id == signed.value_sha256 and sig.registered == {"audit_seq": 7, "record_id": "r"}
    reformatted = only(verify_xml(signed.xml.replace(b"?>\n", b"?>\n\n", 1), settings, registered))
    assert reformatted.indication == "TOTAL_PASSED" and reformatted.registered is None
    changed = only(verify_xml(signed.xml.replace("Khôi".encode(), "Khải".encode()), settings, registered))
    assert changed.sub_indication == "HASH_FAILURE" and changed.registered is None


def test_the_health_check_signer_s_form_with_an_unsigned_signing_time_passes(settings) -> None:
    """Inventec's health-check (KSK) signer: the signature on the root, URI="" and an
    unsigned Object holding SignatureProperties/SigningTime."""
    root = etree.fromstring((XML_DIR / "tt12-danhmuc-bophan.xml").read_bytes())
    signature = xmlsec.template.create(root, C.TransformInclC14N, C.TransformRsaSha256)
    reference = xmlsec.template.add_reference(signature, C.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, C.TransformEnveloped)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature)))
    obj = etree.SubElement(signature, f"{DS}Object")
    props = etree.SubElement(etree.SubElement(obj, f"{DS}SignatureProperties"), f"{DS}SignatureProperty",
                             Id="SigningTime", Target="signatureProperties")
    etree.SubElement(props, "SigningTime").text = "2026-12-01T10:00:00Z"
    root.append(signature)
    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_file(str(PKI / "hospital-seal.key.pem"), C.KeyDataFormatPem, DEV_PASSPHRASE.decode())
    key.load_cert_from_file(str(PKI / "hospital-seal.cert.pem"), C.KeyDataFormatPem)
    key.load_cert_from_file(str(PKI / "intermediate-ca.cert.pem"), C.KeyDataFormatPem)
    ctx.key = key
    ctx.sign(signature)
    sig = only(verify_xml(etree.tostring(root), settings))
    assert (sig.indication, sig.coverage, sig.level) == ("TOTAL_PASSED", "ENTIRE_FILE", "B-B")
    assert sig.signing_time is None  # an unsigned claim is not taken as the signing time


def test_a_signature_by_a_weak_key_is_not_relied_on(settings, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = datetime.now(UTC)
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "weak.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "weak.cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    root = etree.fromstring(BIRTH)
    signature = xmlsec.template.create(root, C.TransformInclC14N, C.TransformRsaSha256)
    reference = xmlsec.template.add_reference(signature, C.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, C.TransformEnveloped)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature)))
    root.find("CHUKYDONVI").append(signature)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(str(tmp_path / "weak.key.pem"), C.KeyDataFormatPem)
    ctx.key.load_cert_from_file(str(tmp_path / "weak.cert.pem"), C.KeyDataFormatPem)
    ctx.sign(signature)
    sig = only(verify_xml(etree.tostring(root), settings))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")
    assert "1024 bits" in sig.message
