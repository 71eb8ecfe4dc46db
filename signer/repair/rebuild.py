"""Rebuild a damaged PDF before signing: qpdf's recovery first, then a page-tree salvage.

qpdf (pikepdf) reconstructs broken cross-reference data by itself, but gives up when
the page tree is gone ("root of pages tree has no /Kids array") even if the page
objects survive. The salvage then indexes every object it finds in the bytes
(``N G obj``, and the members of object streams), lets qpdf read them through a fresh
xref stream appended to the file, and hangs the surviving pages from a new root:

* **Order.** Pages listed by a surviving page-tree node keep that node's /Kids order.
  Other pages go by the linearization dictionary's first page (/O) first, then object
  number: linearized files number the remaining pages in page order, and most writers
  number pages as they write them. A surviving node's pages take the place of its
  lowest-ranked page. A page whose /Parent survives but no longer lists it was removed
  by a later revision and stays out.
* **Boxes.** Inheritable attributes are copied from surviving ancestors. A page whose
  MediaBox died with the tree takes its own CropBox (what viewers showed of it); with
  neither, it borrows the previous page's MediaBox, which counts as a loss.

Nothing is invented. A rebuild that could not recover everything (fewer pages than the
document counts, destroyed or undecodable content streams, resources or annotations that
point at destroyed objects) lists its losses, and :func:`repair_pdf` refuses it unless
the caller accepts them: kyso would otherwise attest to an incomplete record.

The page tree is rebuilt by :mod:`kyso.signer.repair.pages`; what the pages lost of
what they draw is found by :mod:`kyso.signer.repair.losses`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import BytesIO

import pikepdf

from kyso.errors import EncryptedPdf, InvalidPdf
from kyso.signer.repair.losses import content_losses, inflate
from kyso.signer.repair.pages import RebuiltPage, hang_pages, page_order, parent_node, record_of

MAX_OBJECTS = 200_000  # object headers a salvage indexes; more is hostile
MAX_OBJECT_NUMBER = 8_388_607  # ISO 32000-1 Annex C
_WS = rb"[\0\t\n\f\r ]"
_OBJ = re.compile(rb"(?<![0-9])(\d{1,7})" + _WS + rb"+(\d{1,5})" + _WS + rb"+obj\b")
_REF = rb"(\d{1,7})" + _WS + rb"+(\d{1,5})" + _WS + rb"+R\b"
_ROOT = re.compile(rb"/Root" + _WS + b"*" + _REF)
_INFO = re.compile(rb"/Info" + _WS + b"*" + _REF)
_ENCRYPT = re.compile(rb"/Encrypt" + _WS + rb"*(?:<<|" + _REF + rb")")
# Keys that lead away from what a page draws: damage behind them loses no content.
_ENCRYPTED = (
    "the PDF is encrypted (it has an /Encrypt dictionary, even if its user password is empty); "
    "remove the encryption before signing a record"
)
Entry = tuple[int, int, int, int]  # xref type, field 2, field 3, file position (later wins)


@dataclass(frozen=True)
class Rebuild:
    """A rebuilt PDF and an account of what the rebuild did."""

    pdf: bytes
    method: str  # "qpdf" (xref recovery) or "page tree" (salvage of the page objects)
    pages: tuple[RebuiltPage, ...]
    losses: tuple[str, ...]  # what could not be recovered; empty when the rebuild is faithful


def repair_pdf(data: bytes, *, accept_loss: bool = False) -> bytes:
    """A sound rebuild of ``data``. Raises InvalidPdf for a rebuild that lost content
    (unless ``accept_loss``) or for what cannot be rebuilt, EncryptedPdf for encryption."""
    rebuild = rebuild_pdf(data)
    if rebuild.losses and not accept_loss:
        shown = "; ".join(rebuild.losses[:4])
        more = f"; and {len(rebuild.losses) - 4} more" if len(rebuild.losses) > 4 else ""
        raise InvalidPdf(
            f"the PDF is damaged beyond a faithful repair: {shown}{more}. kyso signs only "
            "complete documents; obtain an intact copy from the document's source",
            damage=list(rebuild.losses),
        )
    return rebuild.pdf


def rebuild_pdf(data: bytes) -> Rebuild:
    """Rebuild ``data`` with qpdf's recovery, or by salvaging its page objects when qpdf
    cannot read its page tree; says what was rebuilt and what was lost."""
    try:
        pdf = pikepdf.open(BytesIO(data), attempt_recovery=True)
    except pikepdf.PasswordError:
        raise EncryptedPdf(_ENCRYPTED) from None
    except pikepdf.PdfError as exc:
        return _salvage(data, _qpdf_message(exc))
    with pdf:
        if pdf.is_encrypted:
            raise EncryptedPdf(_ENCRYPTED)
        if len(pdf.pages) == 0:
            return _salvage(data, "its page tree holds no pages")
        pages = [(record_of(i, p.obj, "the page tree"), p.obj) for i, p in enumerate(pdf.pages, 1)]
        losses = content_losses(pages, orphans=set())
        return Rebuild(_save(pdf, len(pages)), "qpdf", tuple(r for r, _ in pages), tuple(losses))


def _qpdf_message(exc: pikepdf.PdfError) -> str:
    """qpdf's complaint without the name of the in-memory stream it read."""
    return re.sub(r"^stream <[^>]*>: ", "", str(exc)).strip() or "qpdf cannot read it"


def _save(pdf: pikepdf.Pdf, page_count: int) -> bytes:
    """Write ``pdf`` afresh and check that the written file reads back whole."""
    out = BytesIO()
    try:
        pdf.save(out, fix_metadata_version=False, deterministic_id=True)
        with pikepdf.open(BytesIO(out.getvalue())) as check:
            if len(check.pages) != page_count:
                raise InvalidPdf("the rebuilt PDF does not read back with all its pages")
    except pikepdf.PdfError as exc:
        raise InvalidPdf(f"the PDF cannot be rebuilt: {_qpdf_message(exc)}") from None
    return out.getvalue()


# --- finding what survives ---------------------------------------------------------------


@dataclass
class Survivors:
    """What survives of a damaged file, read through a fresh xref."""

    pdf: pikepdf.Pdf
    pages: dict[int, pikepdf.Dictionary] = field(default_factory=dict)
    nodes: dict[int, pikepdf.Dictionary] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # page counts the file states
    first_page: int | None = None


def _scan(data: bytes) -> dict[int, Entry]:
    """Every ``N G obj`` header in ``data``; a later definition wins, as in an update."""
    entries: dict[int, Entry] = {}
    for count, m in enumerate(_OBJ.finditer(data)):
        if count >= MAX_OBJECTS:
            raise InvalidPdf(f"the PDF cannot be repaired: more than {MAX_OBJECTS} objects")
        num, gen = int(m[1]), int(m[2])
        if 0 < num <= MAX_OBJECT_NUMBER and gen < 65535:
            entries[num] = (1, m.start(), gen, m.start())
    return entries


def _indexed(data: bytes, entries: dict[int, Entry]) -> pikepdf.Pdf:
    """Open ``data`` through an appended xref stream over ``entries``, with a stub
    catalog as root so that qpdf opens it whatever became of the real one."""
    out = bytearray(data) + b"\n"
    top = max(entries) + 1  # stub page-tree root; top + 1 stub catalog; top + 2 the xref
    table = {num: e[:3] for num, e in entries.items()} | {0: (0, 0, 65535)}
    table[top] = (1, len(out), 0)
    out += b"%d 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n" % top
    table[top + 1] = (1, len(out), 0)
    out += b"%d 0 obj\n<< /Type /Catalog /Pages %d 0 R >>\nendobj\n" % (top + 1, top)
    xref_at = len(out)
    table[top + 2] = (1, xref_at, 0)
    w2 = max(4, (max(e[1] for e in table.values()).bit_length() + 7) // 8)
    w3 = 2 if max(e[2] for e in table.values()) <= 0xFFFF else 4
    rows, index = bytearray(), list[int]()
    for num in sorted(table):
        if index and index[-2] + index[-1] == num:
            index[-1] += 1
        else:
            index += [num, 1]
        kind, f2, f3 = table[num]
        rows += bytes([kind]) + f2.to_bytes(w2, "big") + f3.to_bytes(w3, "big")
    spans = " ".join(map(str, index)).encode()
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /Root %d 0 R " % (top + 2, top + 3, top + 1)
    out += b"/W [1 %d %d] /Index [%s] /Length %d >>\nstream\n" % (w2, w3, spans, len(rows))
    out += rows + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    try:
        return pikepdf.open(BytesIO(bytes(out)), attempt_recovery=True)
    except pikepdf.PdfError as exc:
        raise InvalidPdf(f"the PDF cannot be repaired: {_qpdf_message(exc)}") from None


def _get(pdf: pikepdf.Pdf, num: int, entry: Entry) -> pikepdf.Object | None:
    """Object ``num`` if qpdf can parse it."""
    try:
        return pdf.get_object((num, entry[2] if entry[0] == 1 else 0))
    except (pikepdf.PdfError, ValueError, RuntimeError):
        return None


def _packed(pdf: pikepdf.Pdf, entries: dict[int, Entry]) -> dict[int, Entry]:
    """Entries for the members of the object streams among ``entries``."""
    packed: dict[int, Entry] = {}
    for num, entry in entries.items():
        stream = _get(pdf, num, entry)
        if not isinstance(stream, pikepdf.Stream) or stream.get("/Type") != "/ObjStm":
            continue
        n, first = stream.get("/N"), stream.get("/First")
        if not (isinstance(n, int) and isinstance(first, int) and 0 < n and 0 < first < 1 << 24):
            continue
        try:
            head = (inflate(stream, keep=first, limit=first) or b"").split()
        except ValueError:
            continue
        for i, member in enumerate(head[0 : 2 * min(n, len(head) // 2) : 2]):
            if member.isdigit() and 0 < int(member) <= MAX_OBJECT_NUMBER and int(member) != num:
                packed[int(member)] = (2, num, i, entry[3])
    return packed


def _survey(data: bytes, why: str) -> Survivors:
    """Index and classify every object that survives in ``data``."""
    entries = _scan(data)
    if not entries:
        raise InvalidPdf(f"the PDF cannot be read or repaired ({why}) and holds no objects")
    pdf = _indexed(data, entries)
    packed = _packed(pdf, entries)
    if packed:
        pdf.close()
        for num, entry in packed.items():
            if num not in entries or entry[3] > entries[num][3]:
                entries[num] = entry  # the newer of a loose and a packed definition
        pdf = _indexed(data, entries)
    found = Survivors(pdf)
    first_at = min(e[3] for e in entries.values())
    for num, entry in entries.items():
        obj = _get(pdf, num, entry)
        if not isinstance(obj, pikepdf.Dictionary):
            continue
        if obj.get("/Type") == "/Page":
            found.pages[num] = obj
        elif obj.get("/Type") == "/Pages":  # not just any /Kids: form fields have them too
            found.nodes[num] = obj
        elif "/Linearized" in obj and entry[3] == first_at and obj.get("/L") == len(data):
            first, count = obj.get("/O"), obj.get("/N")  # an update would have changed /L
            found.first_page = int(first) if isinstance(first, int) else None
            if isinstance(count, int):
                found.counts["the linearization dictionary"] = int(count)
    return found


def _last_ref(pdf: pikepdf.Pdf, data: bytes, pattern: re.Pattern[bytes], kind: str | None):
    """The newest trailer reference matching ``pattern`` that resolves to a dictionary
    (of /Type ``kind`` if given)."""
    for m in reversed(list(pattern.finditer(data))[-64:]):
        obj = _get(pdf, int(m[1]), (1, 0, int(m[2]), 0))
        if isinstance(obj, pikepdf.Dictionary) and (kind is None or obj.get("/Type") == kind):
            return obj
    return None


# --- the salvage -------------------------------------------------------------------------


def _salvage(data: bytes, why: str) -> Rebuild:
    """Rebuild the page tree from the page objects that survive in ``data``."""
    if _ENCRYPT.search(data):
        raise EncryptedPdf(_ENCRYPTED)
    found = _survey(data, why)
    with found.pdf as pdf:
        catalog = _last_ref(pdf, data, _ROOT, "/Catalog")
        old_root = catalog.get("/Pages") if catalog is not None else None
        if isinstance(old_root, pikepdf.Dictionary) and isinstance(old_root.get("/Count"), int):
            found.counts["its page tree"] = int(old_root.Count)
        losses: list[str] = []
        order = page_order(found, losses)
        if not order:
            raise InvalidPdf(f"the PDF cannot be read or repaired ({why}) and no page survives")
        orphans = {n for n in order if parent_node(found, n) is None}
        root, pages = hang_pages(found, order, losses)
        for source, count in found.counts.items():
            if count > len(pages):
                losses.insert(0, f"only {len(pages)} of its {count} pages survive ({source})")
                break
        if catalog is None:
            catalog = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Catalog))
            losses.append("its catalog is destroyed (outlines, forms, metadata)")
        catalog.Pages = root
        pdf.trailer.Root = catalog
        if (info := _last_ref(pdf, data, _INFO, None)) is not None:
            pdf.trailer.Info = info
        losses += content_losses(pages, orphans)
        records = tuple(r for r, _ in pages)
        return Rebuild(_save(pdf, len(records)), "page tree", records, tuple(losses))
