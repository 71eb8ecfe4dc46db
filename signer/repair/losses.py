"""What a rebuilt PDF lost of what its pages draw.

A salvage that recovered every page object may still have lost what they draw: content
streams destroyed or no longer decodable, resources and annotations pointing at objects
that are gone. :func:`content_losses` lists them, so that :func:`kyso.signer.repair.rebuild.repair_pdf`
refuses a rebuild that would have kyso attest to an incomplete record.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pikepdf

from kyso.signer.repair.pages import RebuiltPage, inherited

MAX_WALK = 200_000  # objects the content check visits in one document
MAX_DECODED = 64 << 20  # decoded bytes of one content stream the check inflates
_NULL_OK = {"/DecodeParms", "/DP"}  # null is meaningful there: [null <<...>>]
_SKIP = {"/Parent", "/P", "/PieceInfo", "/Metadata", "/Thumb", "/StructParent", "/StructParents"}


def content_losses(
    pages: Sequence[tuple[RebuiltPage, pikepdf.Object]], orphans: set[int]
) -> list[str]:
    """Damage to what the pages draw: destroyed or undecodable content streams, resources
    and annotations that point at destroyed objects, and resources lost with the page
    tree by ``orphans`` (pages whose parent is lost)."""
    losses: list[str] = []
    seen: set[tuple[int, int]] = set()
    budget = [MAX_WALK]
    for record, page in pages:
        entries = dict(page.items())  # keeps, as None, keys whose object is destroyed
        contents: object = entries.get("/Contents", [])
        streams = list(contents) if isinstance(contents, pikepdf.Array | list) else [contents]
        problems = [p for p in map(_stream_damage, streams) if p]
        resources = entries.get("/Resources", inherited(page).get("/Resources", (0, None))[1])
        if isinstance(resources, pikepdf.Dictionary):
            if dead := _dangling(resources, seen, budget):
                problems.append(f"its resources {', '.join(dead[:6])} are destroyed")
        elif streams and ("/Resources" in entries or record.obj in orphans):
            problems.append("its resources are lost")
        annots = entries.get("/Annots")
        if isinstance(annots, pikepdf.Array) and any(a is None for a in annots):
            problems.append("some of its annotations are destroyed")
        if problems:
            losses.append(f"page {record.number} (object {record.obj}): {'; '.join(problems)}")
    return losses


def _stream_damage(stream: object) -> str | None:
    """What is wrong with one content stream, if anything."""
    if not isinstance(stream, pikepdf.Stream):
        return "a content stream is destroyed"
    try:
        inflate(stream, keep=0, limit=MAX_DECODED)
    except ValueError as exc:
        return f"a content stream is damaged ({exc})"
    return None


def _dangling(top: pikepdf.Dictionary, seen: set[tuple[int, int]], budget: list[int]) -> list[str]:
    """Names under ``top`` whose objects are destroyed (null where an object was)."""
    dead: set[str] = set()
    stack: list[tuple[pikepdf.Object, str, int]] = [(top, "", 0)]
    while stack and budget[0] > 0:
        obj, path, depth = stack.pop()
        if obj.is_indirect:
            if obj.objgen in seen:
                continue
            seen.add(obj.objgen)
        budget[0] -= 1
        if isinstance(obj, pikepdf.Stream):
            obj = obj.stream_dict
        items = obj.items() if isinstance(obj, pikepdf.Dictionary) else (("", v) for v in obj)
        for key, value in items:
            name = path + key if depth < 2 else path
            if key in _SKIP or key in _NULL_OK:
                continue
            if value is None:
                dead.add(name or "[]")
            elif isinstance(value, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream):
                stack.append((value, name, depth + 1))
    return sorted(dead)


def inflate(stream: pikepdf.Stream, keep: int, limit: int) -> bytes | None:
    """The first ``keep`` decoded bytes of an unfiltered or /FlateDecode stream, having
    decoded at most ``limit`` bytes, so that no stream is inflated without bound; None for
    other filters; ValueError if the data are damaged."""
    filters = stream.get("/Filter")
    names = list(filters) if isinstance(filters, pikepdf.Array) else [filters] if filters else []
    raw = stream.read_raw_bytes()
    if not names:
        return raw[:keep]
    if names != ["/FlateDecode"]:
        return None
    inflater, head, total = zlib.decompressobj(), b"", 0
    try:
        while raw and total < max(limit, 1) and not inflater.eof:
            chunk = inflater.decompress(raw, 1 << 20)
            raw = inflater.unconsumed_tail
            if not chunk:
                break
            head += chunk[: max(0, keep - len(head))]
            total += len(chunk)
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    return head
