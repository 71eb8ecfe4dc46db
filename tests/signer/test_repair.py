"""Rebuilding damaged PDFs before signing (kyso.signer.repair.rebuild), judged by poppler
(pdftoppm, pdftotext), qpdf and pyHanko on the shared corpus and on files damaged here."""

from __future__ import annotations

import asyncio
import re
import subprocess
import zlib
from io import BytesIO
from pathlib import Path

import pikepdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from support import CORPUS as SHARED_CORPUS

from kyso.errors import EncryptedPdf, InvalidPdf
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.repair import rebuild as repair
from kyso.signer.repair.rebuild import rebuild_pdf, repair_pdf

CORPUS = SHARED_CORPUS / "pdf"
UNREADABLE = CORPUS / "017-unreadable-meta-data/unreadablemetadata.pdf"
ENCRYPTED = CORPUS / "005-libreoffice-writer-password/libreoffice-writer-password.pdf"
GEOTOPO = "009-pdflatex-geotopo/GeoTopo-komprimiert.pdf"  # 117 pages: seconds of pdftotext
READABLE = [
    pytest.param(
        p, id=f"{p.parent.name}/{p.name}", marks=pytest.mark.slow if GEOTOPO in str(p) else ()
    )
    for p in sorted(CORPUS.glob("*/*.pdf"))
    if p not in (UNREADABLE, ENCRYPTED)
]
# Files whose pages carry their own MediaBox: they survive the loss of their page-tree root.
MULTI = [
    "004-pdflatex-4-pages/pdflatex-4-pages.pdf",  # pages in object streams
    "007-imagemagick-images/imagemagick-images.pdf",
    pytest.param(GEOTOPO, marks=pytest.mark.slow),  # linearized
    "012-libreoffice-form/libreoffice-form.pdf",  # form fields have /Kids too
    "014-outlines/mistitled_outlines_example.pdf",
    "015-arabic/habibi-rotated.pdf",  # /Rotate on pages
    "026-latex-multicolumn/multicolumn.pdf",
]


# -- tools -----------------------------------------------------------------------------------


def pdftotext(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    run = subprocess.run(
        ["pdftotext", "-q", *pages, str(path), "-"], capture_output=True, check=True
    )
    return run.stdout.decode()


def page_count(pdf: bytes) -> int:
    with pikepdf.open(BytesIO(pdf)) as doc:
        return len(doc.pages)


def render(pdf: bytes, tmp_path: Path) -> list[tuple[int, int, int]]:
    """``(width, height, non-white pixels)`` of each page rendered by pdftoppm at 30 dpi."""
    (tmp_path / "in.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-q", "-r", "30", str(tmp_path / "in.pdf"), str(tmp_path / "p")], check=True
    )
    pages = []
    for ppm in sorted(tmp_path.glob("p-*.ppm")):
        raw = ppm.read_bytes()
        magic, width, height, maxval, pixels = raw.split(maxsplit=4)
        assert magic == b"P6" and maxval == b"255"
        white = sum(1 for i in range(0, len(pixels), 3) if pixels[i : i + 3] == b"\xff\xff\xff")
        pages.append((int(width), int(height), int(width) * int(height) - white))
    return pages


def build_pdf(objects: dict[int, bytes], root: int = 1, trailer: bytes = b"") -> bytes:
    """A classic PDF of ``objects`` with a correct xref table: the damage a test makes is
    in what the objects say (a missing page-tree root), not in where they are."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    size, xref = max(objects) + 1, len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num] if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root,
        trailer,
        xref,
    )
    return bytes(out)


def page(parent: int, contents: int, box: bytes = b"/MediaBox [0 0 595 842]") -> bytes:
    font = b"<< /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >>"
    return b"<< /Type /Page /Parent %d 0 R %s /Contents %d 0 R /Resources << /Font %s >> >>" % (
        parent, box, contents, font,
    )  # fmt: skip


def words(label: str, compress: bool = False) -> bytes:
    """A content stream that writes ``label`` large, once per line down the page."""
    data = b"BT /F1 40 Tf 60 760 Td" + b" (%s) Tj 0 -48 Td" % label.encode() * 14 + b" ET"
    if compress:
        data = zlib.compress(data)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


CATALOG_OF_LOST_TREE = b"<< /Type /Catalog /Pages 2 0 R >>"  # object 2 is never written


def destroy_page_tree(data: bytes) -> bytes:
    """``data`` with an incremental update that replaces its page-tree root by null."""
    with pikepdf.open(BytesIO(data)) as pdf:
        root, catalog, size = pdf.Root.Pages.objgen, pdf.Root.objgen, int(pdf.trailer.Size)
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    out = data + b"\n"
    at = len(out)
    out += b"%d %d obj\nnull\nendobj\n" % root
    xref = len(out)
    out += b"xref\n%d 1\n%010d %05d n \n" % (root[0], at, root[1])
    out += b"trailer\n<< /Size %d /Root %d %d R /Prev %d >>\n" % (size, *catalog, prev)
    return out + b"startxref\n%d\n%%%%EOF\n" % xref


# -- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", READABLE)
def test_rebuilding_a_readable_pdf_keeps_its_page_count_and_text(
    path: Path, tmp_path: Path
) -> None:
    data = path.read_bytes()
    rebuild = rebuild_pdf(data)
    assert (rebuild.method, rebuild.losses) == ("qpdf", ())
    assert page_count(rebuild.pdf) == page_count(data)
    assert pdftotext(rebuild.pdf, tmp_path) == pdftotext(data, tmp_path)


@pytest.mark.parametrize("name", MULTI)
def test_pages_of_a_pdf_whose_page_tree_root_is_destroyed_come_back_in_order(
    name: str, tmp_path: Path
) -> None:
    data = (CORPUS / name).read_bytes()
    damaged = destroy_page_tree(data)
    with pytest.raises(pikepdf.PdfError, match="pages? tree"):
        pikepdf.open(BytesIO(damaged), attempt_recovery=True)
    rebuild = rebuild_pdf(damaged)
    assert (rebuild.method, rebuild.losses) == ("page tree", ())
    assert page_count(rebuild.pdf) == page_count(data)
    assert pdftotext(rebuild.pdf, tmp_path) == pdftotext(data, tmp_path)


def test_pages_that_inherited_their_size_from_a_destroyed_root_are_not_guessed() -> None:
    data = (CORPUS / "024-annotations/annotated_pdf.pdf").read_bytes()
    with pytest.raises(InvalidPdf, match="no surviving page has a size"):
        repair_pdf(destroy_page_tree(data), accept_loss=True)


# -- 017: a linearized file with 1.1 MB zeroed, page tree and page 4 among the losses -------


@pytest.fixture(scope="module")
def unreadable() -> bytes:
    return UNREADABLE.read_bytes()


@pytest.fixture(scope="module")
def unreadable_rebuild(unreadable: bytes) -> repair.Rebuild:
    return rebuild_pdf(unreadable)


def test_unreadable_metadata_pdf_gets_its_three_surviving_pages_back_in_linearized_order(
    unreadable_rebuild: repair.Rebuild,
) -> None:
    rebuild = unreadable_rebuild
    assert rebuild.method == "page tree"
    assert [p.obj for p in rebuild.pages] == [178, 1, 43]  # /O 178 first, then by number
    assert {p.media_box for p in rebuild.pages} == {(0.0, 0.0, 596.276, 841.89)}
    assert {p.box_source for p in rebuild.pages} == {"its own MediaBox"}


def test_unreadable_metadata_pdf_rebuild_names_the_lost_page_and_fonts(
    unreadable_rebuild: repair.Rebuild,
) -> None:
    losses = unreadable_rebuild.losses
    assert losses[0] == "only 3 of its 4 pages survive (the linearization dictionary)"
    assert losses[1].startswith("page 2 (object 1): its resources /Font/C0_0, /Font/C2_0")
    assert losses[2].startswith("page 3 (object 43): its resources /ColorSpace/CS0")
    assert len(losses) == 3


def test_repair_refuses_the_unreadable_metadata_pdf_and_says_what_is_lost(
    unreadable: bytes,
) -> None:
    with pytest.raises(InvalidPdf, match="only 3 of its 4 pages survive") as caught:
        repair_pdf(unreadable)
    assert len(caught.value.extra["damage"]) == 3


def test_signing_the_unreadable_metadata_pdf_with_repair_is_refused(unreadable, dev_key) -> None:
    options = PdfSignOptions(level="B-B", repair=True)
    with pytest.raises(InvalidPdf, match="damaged beyond a faithful repair"):
        asyncio.run(async_sign_pdf(unreadable, dev_key("hospital-seal"), options, None))


def test_accepted_lossy_rebuild_renders_reads_and_signs(
    unreadable_rebuild: repair.Rebuild, dev_key, tmp_path: Path
) -> None:
    fixed = unreadable_rebuild.pdf
    assert PdfFileReader(BytesIO(fixed), strict=False).root["/Pages"]["/Count"] == 3
    pages = render(fixed, tmp_path)
    assert [(w, h) for w, h, _ in pages] == [
        (249, 351)
    ] * 3  # 596.3 x 841.9 pt at 30 dpi, rounded up
    assert all(ink > 2000 for _, _, ink in pages)
    assert "Rotary Potentiometer" in pdftotext(fixed, tmp_path, page=1)
    signed = asyncio.run(
        async_sign_pdf(fixed, dev_key("hospital-seal"), PdfSignOptions(level="B-B"), None)
    )
    (sig,) = PdfFileReader(BytesIO(signed.pdf), strict=False).embedded_signatures
    assert sig.field_name == signed.field


# -- the salvage rules, on files damaged here --------------------------------------------------


def test_a_surviving_page_tree_node_keeps_its_kids_order_among_loose_pages(tmp_path: Path) -> None:
    damaged = build_pdf({
        1: CATALOG_OF_LOST_TREE,
        3: page(10, 13), 4: page(2, 14), 5: page(10, 15),
        10: b"<< /Type /Pages /Parent 2 0 R /Kids [5 0 R 3 0 R] /Count 2 >>",
        13: words("three"), 14: words("four"), 15: words("five"),
    })  # fmt: skip
    rebuild = rebuild_pdf(damaged)
    assert rebuild.method == "page tree" and rebuild.losses == ()
    assert [p.obj for p in rebuild.pages] == [5, 3, 4]
    assert [pdftotext(rebuild.pdf, tmp_path, n).split()[0] for n in (1, 2, 3)] == [
        "five",
        "three",
        "four",
    ]


def test_without_a_tree_the_linearized_first_page_leads_then_object_numbers() -> None:
    objects = {
        1: b"<< /Linearized 1 /L 0000000000 /O 7 /N 3 /E 0 /T 0 /H [0 0] >>",
        2: b"<< /Type /Catalog /Pages 9 0 R >>",
        3: page(9, 13), 5: page(9, 15), 7: page(9, 17),
        13: words("three"), 15: words("five"), 17: words("seven"),
    }  # fmt: skip
    draft = build_pdf(objects, root=2)
    damaged = draft.replace(b"/L 0000000000", b"/L %010d" % len(draft))
    rebuild = rebuild_pdf(damaged)
    assert [p.obj for p in rebuild.pages] == [7, 3, 5]
    assert rebuild.losses == ()


def test_a_page_that_lost_its_inherited_mediabox_takes_its_cropbox(tmp_path: Path) -> None:
    damaged = build_pdf(
        {1: CATALOG_OF_LOST_TREE, 3: page(2, 4, b"/CropBox [0 0 288 432]"), 4: words("crop")}
    )
    rebuild = rebuild_pdf(damaged)
    (only,) = rebuild.pages
    assert only.media_box == (0.0, 0.0, 288.0, 432.0)
    assert only.box_source.startswith("its CropBox")
    assert [(w, h) for w, h, _ in render(rebuild.pdf, tmp_path)] == [(120, 180)]


def test_a_page_its_surviving_parent_no_longer_lists_stays_out() -> None:
    damaged = build_pdf({
        1: CATALOG_OF_LOST_TREE,
        3: page(10, 13), 4: page(10, 14),
        10: b"<< /Type /Pages /Parent 2 0 R /Kids [3 0 R] /Count 1 >>",
        13: words("kept"), 14: words("removed"),
    })  # fmt: skip
    assert [p.obj for p in rebuild_pdf(damaged).pages] == [3]


def test_a_cycle_of_page_tree_nodes_ends() -> None:
    damaged = build_pdf({
        1: CATALOG_OF_LOST_TREE,
        3: page(10, 13),
        10: b"<< /Type /Pages /Parent 11 0 R /Kids [10 0 R 11 0 R 3 0 R] /Count 9 >>",
        11: b"<< /Type /Pages /Parent 10 0 R /Kids [10 0 R] /Count 9 >>",
        13: words("loop"),
    })  # fmt: skip
    assert [p.obj for p in rebuild_pdf(damaged).pages] == [3]


def test_a_destroyed_content_stream_is_a_loss_the_caller_must_accept() -> None:
    damaged = build_pdf({1: CATALOG_OF_LOST_TREE, 3: page(2, 4), 5: page(2, 9), 4: words("here")})
    with pytest.raises(InvalidPdf, match=r"page 2 \(object 5\): a content stream is destroyed"):
        repair_pdf(damaged)
    assert page_count(repair_pdf(damaged, accept_loss=True)) == 2


def test_a_corrupt_compressed_content_stream_is_a_loss_even_when_qpdf_reads_the_file() -> None:
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: page(2, 4),
        4: words("compressed " * 20, compress=True),
    }
    sound = build_pdf(objects)
    assert repair_pdf(sound) and rebuild_pdf(sound).method == "qpdf"
    start = sound.index(b"stream\n", sound.index(b"4 0 obj")) + 7
    damaged = sound[: start + 40] + b"\0" * 30 + sound[start + 70 :]
    with pytest.raises(InvalidPdf, match="a content stream is damaged"):
        repair_pdf(damaged)


def test_a_rebuilt_pdf_is_signed_and_marked_repaired(dev_key) -> None:
    damaged = build_pdf({1: CATALOG_OF_LOST_TREE, 3: page(2, 4), 4: words("signed")})
    options = PdfSignOptions(level="B-B", repair=True)
    signed = asyncio.run(async_sign_pdf(damaged, dev_key("hospital-seal"), options, None))
    assert signed.repaired
    assert len(PdfFileReader(BytesIO(signed.pdf), strict=False).embedded_signatures) == 1


# -- what is refused -------------------------------------------------------------------------


def test_an_encrypted_pdf_is_refused_as_encrypted() -> None:
    with pytest.raises(EncryptedPdf):
        repair_pdf(ENCRYPTED.read_bytes())


def test_a_damaged_encrypted_pdf_is_refused_as_encrypted_not_salvaged() -> None:
    data = ENCRYPTED.read_bytes()
    with pytest.raises(EncryptedPdf):
        repair_pdf(data[:3000] + b"\0" * 2000 + data[5000:])
    damaged = build_pdf(
        {1: CATALOG_OF_LOST_TREE, 3: page(2, 4), 4: words("x")}, trailer=b"/Encrypt 9 0 R"
    )
    with pytest.raises(EncryptedPdf):
        repair_pdf(damaged)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\nnot a pdf at all\n%%EOF\n",
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    ],
    ids=["empty", "garbage", "no-page"],
)
def test_what_holds_no_page_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidPdf, match="cannot be (read or )?repaired"):
        repair_pdf(data, accept_loss=True)


def test_a_truncated_pdf_is_refused_for_what_it_lost() -> None:
    data = (CORPUS / "006-pdflatex-outline/pdflatex-outline.pdf").read_bytes()
    with pytest.raises(InvalidPdf, match="destroyed|damaged|survive"):
        repair_pdf(data[: len(data) // 2])


def test_a_salvage_stops_at_its_object_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repair, "MAX_OBJECTS", 100)
    with pytest.raises(InvalidPdf, match="more than 100 objects"):
        repair_pdf(b"%PDF-1.4\n" + b"".join(b"%d 0 obj\nnull\nendobj\n" % n for n in range(1, 102)))
