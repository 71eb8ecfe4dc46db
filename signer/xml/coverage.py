"""What an XML signature covers, said as it is, and signature wrapping found.

A reference to the whole document (``URI=""`` with the enveloped-signature transform, the
only transforms accepted being canonicalisations) covers every element but the signature
itself: ``ENTIRE_FILE``. References to elements by ``Id`` cover those elements only:
``PARTIAL``, and the report says which. Signature wrapping moves the signed element out of
the reader's way and puts an unsigned look-alike where the reader looks; so an element of
the same name as a signed one, outside every signed element and every signature, is
reported as wrapping and the signature fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from kyso.signer.xml.dsig import ds
from kyso.signer.xml.inspect import SignatureParts


@dataclass(frozen=True)
class Coverage:
    coverage: str  # "ENTIRE_FILE" or "PARTIAL"
    message: str | None = None  # what a partial signature covers
    wrapping: str | None = None  # the unsigned look-alike found, if any


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _path(tree: etree._ElementTree, element: etree._Element) -> str:
    return tree.getpath(element)


def _within(element: etree._Element, roots: list[etree._Element]) -> bool:
    return any(element is root or any(a is root for a in element.iterancestors()) for root in roots)


def assess_coverage(parts: SignatureParts, tree: etree._ElementTree) -> Coverage:
    """The coverage of ``parts``' signature over the document ``tree``."""
    data = parts.data_references()
    if not data:
        return Coverage("PARTIAL", wrapping="the signature covers no part of the document, only itself")
    if any(ref.whole_document for ref in data):
        return Coverage("ENTIRE_FILE")
    signed = [ref.target for ref in data]
    signatures = list(tree.getroot().iter(ds("Signature")))
    described = ", ".join(f"<{_name(e)}> at {_path(tree, e)}" for e in signed)
    message = f"the signature covers only {described}; the rest of the document is not signed"
    for target in signed:
        if _within(target, signatures):
            where = _path(tree, target)
            return Coverage("PARTIAL", message, f"the signed <{_name(target)}> is inside a signature, at {where}")
        for other in tree.getroot().iter(target.tag):
            if other is target or _within(other, signed) or _within(other, signatures):
                continue
            return Coverage(
                "PARTIAL",
                message,
                f"an unsigned <{_name(other)}> at {_path(tree, other)} stands beside the signed one "
                f"at {_path(tree, target)} (signature wrapping)",
            )
    return Coverage("PARTIAL", message)
