"""The salvage's page tree: which surviving pages, in what order, with what size.

The rules are those of :mod:`kyso.signer.repair.rebuild` (its module docstring): pages keep the
/Kids order of a surviving page-tree node, others go by the linearization hint and
object number; inheritable attributes come from surviving ancestors, and a page that
lost its size takes its CropBox or, counted as a loss, the previous page's MediaBox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pikepdf

from kyso.errors import InvalidPdf

if TYPE_CHECKING:
    from kyso.signer.repair.rebuild import Survivors

MAX_DEPTH = 64  # page-tree levels and /Parent links followed
INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class RebuiltPage:
    """One page of a rebuilt file and where its size came from."""

    number: int  # 1-based position in the rebuilt file
    obj: int  # object number of the page in the damaged file
    media_box: Box
    box_source: str


def page_order(found: Survivors, losses: list[str]) -> list[int]:
    """Object numbers of the surviving pages in document order (rule in the module doc)."""
    listed = {kid for node in list(found.nodes.values()) for kid in _kids(node)}
    groups: list[list[int]] = []
    placed: set[int] = set()
    for top in sorted(n for n in found.nodes if n not in listed):
        group = [p for p in _tree_pages(found, top, losses) if p not in placed]
        placed.update(group)
        groups.append(group)
    for num in sorted(found.pages):
        node = parent_node(found, num)
        if num not in placed and (node is None or num in _kids(node)):
            groups.append([num])

    def rank(page: int) -> tuple[int, int]:
        return (0 if page == found.first_page else 1, page)

    groups.sort(key=lambda g: min(map(rank, g), default=(2, 0)))
    return [page for group in groups for page in group]


def _kids(node: pikepdf.Dictionary) -> dict[int, pikepdf.Dictionary]:
    """A page-tree node's /Kids that still exist, by object number, in order."""
    kids = node.get("/Kids")
    if not isinstance(kids, pikepdf.Array):
        return {}
    return {k.objgen[0]: k for k in kids if isinstance(k, pikepdf.Dictionary) and k.is_indirect}


def parent_node(found: Survivors, page: int) -> pikepdf.Dictionary | None:
    """The surviving page-tree node a page names as its /Parent."""
    parent = found.pages[page].get("/Parent")
    if isinstance(parent, pikepdf.Dictionary) and parent.is_indirect:
        return found.nodes.get(parent.objgen[0])
    return None


def _tree_pages(found: Survivors, top: int, losses: list[str]) -> list[int]:
    """The pages under a surviving page-tree node, depth first in /Kids order."""
    pages: list[int] = []
    seen: set[int] = set()
    stack = [(top, 0)]
    while stack:
        num, depth = stack.pop()
        if num in seen or depth > MAX_DEPTH:
            continue
        seen.add(num)
        if (node := found.nodes.get(num)) is None:
            if num in found.pages:
                pages.append(num)
            continue
        if dead := sum(1 for kid in node.get("/Kids", []) if kid is None):
            losses.append(f"page-tree node {num} lists {dead} destroyed kid(s)")
        kids = _kids(node)
        for kid, obj in kids.items():  # a node's kid is a page even without /Type /Page
            if kid not in found.nodes and obj.get("/Type") in (None, "/Page"):
                found.pages.setdefault(kid, obj)
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return pages


def hang_pages(found: Survivors, order: list[int], losses: list[str]):
    """Hang the pages in ``order`` from a new page-tree root: ``(root, [(record, page)])``."""
    objs = [found.pages[num] for num in order]
    sources = [_settle(obj) for obj in objs]
    root = found.pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Pages, Kids=pikepdf.Array(objs), Count=len(objs))
    )
    pages: list[tuple[RebuiltPage, pikepdf.Object]] = []
    for i, (obj, source) in enumerate(zip(objs, sources, strict=True), 1):
        if source is None:
            sizes = [b for b in (_box(o.get("/MediaBox")) for o in objs) if b]
            donor = pages[-1][0].media_box if pages else (sizes[0] if sizes else None)
            if donor is None:
                raise InvalidPdf("the PDF cannot be repaired: no surviving page has a size")
            obj.MediaBox = pikepdf.Array(donor)
            source = "the previous page's MediaBox (its own size is lost)"
            losses.append(f"page {i} (object {obj.objgen[0]}) has lost its size")
        obj.Parent = root
        pages.append((record_of(i, obj, source), obj))
    return root, pages


def inherited(page: pikepdf.Object) -> dict[str, tuple[int, pikepdf.Object]]:
    """Inheritable attributes the page lacks, from its nearest surviving ancestor that has
    them: key -> (ancestor's object number, value)."""
    found: dict[str, tuple[int, pikepdf.Object]] = {}
    node, seen = page.get("/Parent"), set[tuple[int, int]]()
    while isinstance(node, pikepdf.Dictionary) and node.objgen not in seen:
        if len(seen) >= MAX_DEPTH:
            break
        seen.add(node.objgen)
        for key in INHERITABLE:
            value = node.get(key)
            if key not in found and page.get(key) is None and value is not None:
                found[key] = (node.objgen[0], value)
        node = node.get("/Parent")
    return found


def _settle(page: pikepdf.Dictionary) -> str | None:
    """Copy inherited attributes into the page and give it a MediaBox; says where the
    box came from (None: nowhere)."""
    source = "its own MediaBox" if _box(page.get("/MediaBox")) else None
    for key, (node, value) in inherited(page).items():
        page[key] = value
        if key == "/MediaBox" and _box(value):
            source = f"the MediaBox inherited from page-tree node {node}"
    if source is None and _box(page.get("/CropBox")):
        page.MediaBox = page.CropBox  # viewers showed the crop; nothing beyond it is known
        source = "its CropBox (its MediaBox was inherited from the lost page tree)"
    return source


def _box(value: object) -> Box | None:
    """A rectangle with an area, as four floats."""
    if not isinstance(value, pikepdf.Array) or len(value) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (x1, y1, x2, y2) if x1 != x2 and y1 != y2 else None


def record_of(number: int, page: pikepdf.Object, source: str) -> RebuiltPage:
    """What the rebuild says about one page."""
    box = _box(pikepdf.Page(page).mediabox) or (0.0, 0.0, 0.0, 0.0)
    return RebuiltPage(number, page.objgen[0], box, source)
