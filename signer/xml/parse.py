"""Hardened XML parsing: what kyso accepts as an XML record, and what it refuses.

A record is refused with :class:`~kyso.errors.InvalidXml` (and nothing is signed) when it

- has a document type declaration (``<!DOCTYPE``): no DTD, so no entity of any kind beyond
  the five predefined ones, no external entity, no entity expansion;
- is not UTF-8 (an encoding declaration other than UTF-8, a UTF-16 byte order mark):
  libxml2 would decode UTF-7 and friends through iconv, a classic way to smuggle markup;
- has more markup than :class:`XmlLimits` allows (counted from the bytes before parsing:
  every element needs a ``<``, every attribute a ``=``, so the counts are upper bounds),
  is nested deeper than libxml2's 256 levels, or has a text node over 10 MB (lxml's
  ``huge_tree`` stays off);
- uses XInclude (``http://www.w3.org/2001/XInclude``), which a consumer could expand into
  content that no signature covers;
- is not well-formed.

The parser never touches the network or the file system (``no_network``,
``resolve_entities=False``, ``load_dtd=False``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from kyso.errors import InvalidXml

XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
_DECLARATION = re.compile(rb"\A<\?xml\s[^>]*?\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class XmlLimits:
    """How much markup one record may carry (upper bounds counted on the raw bytes)."""

    max_elements: int = 1_000_000  # occurrences of '<': tags, comments, PIs
    max_attributes: int = 1_000_000  # occurrences of '=': attributes, declarations, text


DEFAULT_LIMITS = XmlLimits()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        collect_ids=False,
    )


def check_encoding(data: bytes) -> None:
    """Refuse anything but UTF-8 (with or without its byte order mark)."""
    if data.startswith(_BOMS):
        raise InvalidXml("the XML record must be UTF-8 (it starts with a UTF-16 or UTF-32 byte order mark)")
    head = data[3:] if data.startswith(_UTF8_BOM) else data
    declaration = _DECLARATION.match(head[:512])
    if declaration is None:
        return
    encoding = _ENCODING.search(declaration.group(0))
    if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
        name = encoding.group(1).decode("ascii")
        raise InvalidXml(f"the XML record must be UTF-8, not {name}: convert it before signing")


def check_size(data: bytes, limits: XmlLimits) -> None:
    """Refuse a record with more markup than ``limits`` allow, before parsing it."""
    if data.count(b"<") > limits.max_elements:
        raise InvalidXml(f"the XML record has more than {limits.max_elements} tags")
    if data.count(b"=") > limits.max_attributes:
        raise InvalidXml(f"the XML record has more than {limits.max_attributes} attributes")


def parse_xml(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> etree._ElementTree:
    """Parse an XML record under the rules above; the tree, or :class:`InvalidXml`."""
    if not data.strip():
        raise InvalidXml("the body is empty: send the XML record")
    check_encoding(data)
    check_size(data, limits)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidXml(f"the XML record is not well-formed or exceeds a parser limit: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InvalidXml("the XML record has a document type declaration (DOCTYPE): DTDs and entities are refused")
    if next(root.iter(f"{{{XINCLUDE_NS}}}*"), None) is not None:
        raise InvalidXml("the XML record uses XInclude: include the content itself before signing")
    return tree


def serialize(tree: etree._ElementTree) -> bytes:
    """The document as UTF-8 with a ``<?xml version="1.0" encoding="utf-8"?>`` declaration
    (double quotes, as .NET writes it), top-level comments and PIs kept."""
    body = etree.tostring(tree, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def check_libxml2() -> None:
    """Refuse to verify when lxml and python-xmlsec run on different libxml2 builds: the
    two share tree structures, and a mismatch corrupts memory rather than failing cleanly."""
    import xmlsec

    if etree.LIBXML_VERSION != xmlsec.get_libxml_version():
        from kyso.errors import ConfigError

        raise ConfigError(
            f"lxml runs on libxml2 {etree.LIBXML_VERSION} but python-xmlsec on "
            f"{xmlsec.get_libxml_version()}: install the versions pinned in pyproject.toml"
        )
