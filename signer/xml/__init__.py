"""XML records: the health-insurance facility signature (``bhyt``) and XAdES baseline
(``xades``), hardened parsing, and verification (SPEC sections 3 and 5)."""

from kyso.signer.xml.parse import XmlLimits, parse_xml
from kyso.signer.xml.sign import (
    PROFILES,
    XML_LEVELS,
    PreparedXml,
    SignedXml,
    XmlSignOptions,
    finish_xml,
    prepare_xml,
    rsa_scheme_for,
    sign_xml,
)

__all__ = [
    "PROFILES",
    "XML_LEVELS",
    "PreparedXml",
    "SignedXml",
    "XmlLimits",
    "XmlSignOptions",
    "finish_xml",
    "parse_xml",
    "prepare_xml",
    "rsa_scheme_for",
    "sign_xml",
]
