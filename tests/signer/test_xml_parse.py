"""Hostile XML is refused with invalid_xml before anything is parsed into a signature, and
the limits on markup hold."""

from __future__ import annotations

import pytest
from support import HOSTILE_XML, corpus_xml

from kyso.errors import InvalidXml
from kyso.signer.xml import XmlLimits, XmlSignOptions, parse_xml, sign_xml
from kyso.signer.xml.verify import verify_xml


class NeverSigns:
    """A key that fails the test if anything reaches it."""

    def __init__(self, info) -> None:
        self.info = info

    def sign(self, data: bytes, scheme: str) -> bytes:
        raise AssertionError("a hostile record reached the key")


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_is_refused_before_the_key_is_used(name: str, dev_key, settings) -> None:
    key = NeverSigns(dev_key("hospital-seal").info)
    with pytest.raises(InvalidXml):
        sign_xml(HOSTILE_XML[name], key, XmlSignOptions(level="B-B"))  # type: ignore[arg-type]
    with pytest.raises(InvalidXml):
        verify_xml(HOSTILE_XML[name], settings)


def test_no_entity_is_expanded_even_where_the_parser_would_allow_it() -> None:
    with pytest.raises(InvalidXml, match="DOCTYPE"):
        parse_xml(HOSTILE_XML["external-entity"])


def test_too_many_elements_or_attributes_are_refused_before_parsing() -> None:
    limits = XmlLimits(max_elements=100, max_attributes=10)
    with pytest.raises(InvalidXml, match="more than 100 tags"):
        parse_xml(b"<r>" + b"<a/>" * 100 + b"</r>", limits)
    with pytest.raises(InvalidXml, match="more than 10 attributes"):
        parse_xml(b"<r " + b" ".join(b'a%d="1"' % i for i in range(11)) + b"/>", limits)
    parse_xml(b"<r>" + b"<a/>" * 98 + b"</r>", limits)


def test_a_text_node_over_10_mb_is_refused() -> None:
    with pytest.raises(InvalidXml, match="limit"):
        parse_xml(b"<r>" + b"A" * 10_000_001 + b"</r>")


def test_the_samples_parse_and_utf8_declarations_in_any_case_are_accepted() -> None:
    for path in corpus_xml():
        parse_xml(path.read_bytes())
    parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><r/>')
    parse_xml(b"\xef\xbb\xbf<?xml version='1.0' encoding='utf8'?><r/>")
    parse_xml(b'<?xml-stylesheet type="text/xsl" href="cda.xsl"?><r/>')  # a PI is signed like the rest
