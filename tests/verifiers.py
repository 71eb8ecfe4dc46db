"""Independent verifiers: poppler's pdfsig and OpenSSL, driven as subprocesses.

Nothing here uses kyso's or pyHanko's own verification: these are the checks a third
party would make.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def make_nss_db(directory: Path, root_pem: Path) -> str:
    """An NSS database trusting ``root_pem``, as pdfsig needs for a custom root."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{directory}", "-t", "C,C,C", "-n", "kyso-dev-root", "-i", str(root_pem)],
        check=True,
        capture_output=True,
    )
    return f"sql:{directory}"


@dataclass
class PdfsigSignature:
    field: str
    valid: bool
    trusted: bool
    total_document: bool
    text: str


def pdfsig(pdf: Path, nssdb: str, ocsp: bool = False) -> list[PdfsigSignature]:
    """pdfsig's verdict on every signature (it exits 0 whatever it finds: parse it)."""
    args = ["pdfsig", "-nssdir", nssdb]
    if not ocsp:
        args.append("-no-ocsp")
    out = subprocess.run([*args, str(pdf)], capture_output=True, text=True, check=False).stdout
    blocks = re.split(r"^Signature #\d+:\n", out, flags=re.M)[1:]
    sigs = []
    for block in blocks:
        field = re.search(r"Signature Field Name: (.*)", block)
        sigs.append(
            PdfsigSignature(
                field=field.group(1).strip() if field else "",
                valid="Signature Validation: Signature is Valid." in block,
                trusted="Certificate Validation: Certificate is Trusted." in block,
                total_document="Total document signed" in block,
                text=block,
            )
        )
    return sigs


def signatures_of(pdf: bytes) -> list[tuple[bytes, bytes]]:
    """(CMS DER, signed bytes) of each signature, read from /ByteRange and /Contents."""
    result = []
    for m in _BYTE_RANGE.finditer(pdf):
        a, b, c, d = (int(x) for x in m.groups())
        signed = pdf[a : a + b] + pdf[c : c + d]
        contents_hex = pdf[a + b : c].strip(b"<> \r\n")
        der = bytes.fromhex(contents_hex.decode("ascii"))
        # /Contents is zero-padded; keep the DER object only.
        info = cms.ContentInfo.load(der, strict=False)
        result.append((info.dump(), signed))
    return result


def openssl_cms_verify(cms_der: bytes, signed: bytes, root_pem: Path, tmp: Path) -> subprocess.CompletedProcess:
    sig = tmp / "sig.p7s"
    content = tmp / "signed.bin"
    sig.write_bytes(cms_der)
    content.write_bytes(signed)
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig), "-content", str(content),
         "-CAfile", str(root_pem), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True,
        text=True,
    )


def openssl_ts_verify(token_der: bytes, data: bytes, root_pem: Path, chain_pem: Path, tmp: Path) -> subprocess.CompletedProcess:
    """``openssl ts -verify`` of a timestamp token over ``data``."""
    tok = tmp / "token.tst"
    dat = tmp / "data.bin"
    tok.write_bytes(token_der)
    dat.write_bytes(data)
    return subprocess.run(
        ["openssl", "ts", "-verify", "-in", str(tok), "-token_in", "-data", str(dat),
         "-CAfile", str(root_pem), "-untrusted", str(chain_pem)],
        capture_output=True,
        text=True,
    )


def signature_timestamp_of(cms_der: bytes) -> tuple[bytes, bytes] | None:
    """(token DER, the signature value it covers) of a CMS signature timestamp, if any."""
    signer = cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
    for attr in signer["unsigned_attrs"] or []:
        if attr["type"].native == "signature_time_stamp_token":
            return attr["values"][0].dump(), signer["signature"].native
    return None


# -- XML Signatures -------------------------------------------------------------------

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
PSS_METHODS = ("sha256-rsa-MGF1", "sha384-rsa-MGF1", "sha512-rsa-MGF1")


def xmlsec1_verify(
    xml: Path, root_pem: Path, untrusted_pem: Path, id_elements: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Debian's ``xmlsec1 --verify`` (libxmlsec1 1.2, OpenSSL): the signature in ``xml``
    with its certificate from KeyInfo, trusted only through ``root_pem``; XAdES
    ``SignedProperties`` Ids declared, and ``Id`` of ``id_elements``. Exit code 0 means verified."""
    ids = [arg for name in id_elements for arg in ("--id-attr:Id", name)]
    return subprocess.run(
        ["xmlsec1", "--verify", "--enabled-key-data", "x509", "--enabled-reference-uris", "empty,same-doc",
         "--trusted-pem", str(root_pem), "--untrusted-pem", str(untrusted_pem),
         "--id-attr:Id", f"{XADES_NS}:SignedProperties", *ids, str(xml)],
        capture_output=True,
        text=True,
    )


def libxmlsec13_verify(xml: bytes, root_pem: Path, untrusted_pem: Path) -> None:
    """libxmlsec1 1.3 (the build in the python-xmlsec wheel), which knows RSA-PSS:
    the certificate from KeyInfo, trusted through ``root_pem``. Raises ``xmlsec.Error``."""
    import xmlsec
    from lxml import etree

    manager = xmlsec.KeysManager()
    manager.load_cert(str(root_pem), xmlsec.constants.KeyDataFormatPem, xmlsec.constants.KeyDataTypeTrusted)
    manager.load_cert(str(untrusted_pem), xmlsec.constants.KeyDataFormatPem, xmlsec.constants.KeyDataTypeNone)
    tree = etree.fromstring(xml).getroottree()
    ctx = xmlsec.SignatureContext(manager)
    for node in tree.iter(f"{{{XADES_NS}}}SignedProperties"):
        ctx.register_id(node, "Id")
    ctx.verify(tree.find(f".//{{{DS_NS}}}Signature"))


def xml_signature_timestamps(xml: bytes) -> list[tuple[bytes, bytes]]:
    """(token DER, the bytes its imprint covers) of each XAdES SignatureTimeStamp: the
    SignatureValue element canonicalised as the timestamp element says (EN 319 132-1 5.3)."""
    import base64

    from lxml import etree

    tree = etree.fromstring(xml).getroottree()
    result = []
    for signature in tree.iter(f"{{{DS_NS}}}Signature"):
        value = signature.find(f"{{{DS_NS}}}SignatureValue")
        for stamp in signature.iter(f"{{{XADES_NS}}}SignatureTimeStamp"):
            algorithm = stamp.find(f"{{{DS_NS}}}CanonicalizationMethod").get("Algorithm")
            assert algorithm == "http://www.w3.org/2001/10/xml-exc-c14n#", algorithm
            covered = etree.tostring(value, method="c14n", exclusive=True, with_comments=False)
            token = base64.b64decode(stamp.findtext(f"{{{XADES_NS}}}EncapsulatedTimeStamp"))
            result.append((token, covered))
    return result
