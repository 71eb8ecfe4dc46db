"""The visible stamp: drawn only inside its box, on its page, in readable Vietnamese.

Pages are rendered by poppler's pdftoppm before and after signing and compared pixel by
pixel; the text is read back by pdftotext, as a person copying it from a viewer would.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from pyhanko.pdf_utils.reader import PdfFileReader
from support import CORPUS
from verifiers import pdfsig

from kyso.errors import InvalidRequest
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.stamp import (
    MAX_FONT_SIZE,
    VIETNAM,
    StampText,
    find_font,
    fitted_size,
    per_mille_font,
)

FOUR_PAGES = CORPUS / "pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
BOX = (320.0, 90.0, 560.0, 160.0)  # x1, y1, x2, y2 in PDF points, bottom-left origin
MARGIN = 2  # pixels of anti-aliasing allowed around the box at 72 dpi
REASON = "Xác nhận kết quả xét nghiệm"
LOCATION = "Bệnh viện Đa khoa tỉnh Quảng Trị"


def render(pdf: bytes, page: int, tmp_path: Path, name: str) -> Image.Image:
    """Page ``page`` (1-based) rendered by pdftoppm at 72 dpi: one pixel per point."""
    src = tmp_path / f"{name}.pdf"
    src.write_bytes(pdf)
    prefix = tmp_path / f"{name}-{page}"
    subprocess.run(
        ["pdftoppm", "-r", "72", "-f", str(page), "-l", str(page), "-png", "-singlefile",
         str(src), str(prefix)],
        check=True,
    )  # fmt: skip
    with Image.open(f"{prefix}.png") as image:
        return image.convert("RGB")


def page_text(pdf: bytes, page: int, tmp_path: Path, *extra: str) -> str:
    src = tmp_path / "text.pdf"
    src.write_bytes(pdf)
    args = ["pdftotext", *extra, "-f", str(page), "-l", str(page), str(src), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def page_height(pdf: bytes, page: int) -> float:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    x1, y1, x2, y2 = (float(v) for v in reader.root["/Pages"]["/Kids"][page - 1]["/MediaBox"])
    assert (x1, y1) == (0, 0)
    return y2 - y1


def box_in_pixels(pdf: bytes, page: int) -> tuple[float, float, float, float]:
    """BOX as (left, top, right, bottom) pixels of the 72 dpi rendering (top-left origin)."""
    height = page_height(pdf, page)
    x1, y1, x2, y2 = BOX
    return x1, height - y2, x2, height - y1


@pytest.fixture(scope="module")
def stamped(dev_key) -> tuple[bytes, bytes]:
    """The four-page PDF, and the same signed by dr-an with a stamp on page 2."""
    original = FOUR_PAGES.read_bytes()
    options = PdfSignOptions(
        level="B-B", visible=True, page=2, box=BOX, reason=REASON, location=LOCATION
    )
    signed = asyncio.run(async_sign_pdf(original, dev_key("dr-an"), options, None))
    return original, signed.pdf


def test_the_stamp_changes_pixels_only_inside_its_box(stamped, tmp_path: Path) -> None:
    original, signed = stamped
    before = render(original, 2, tmp_path, "before")
    after = render(signed, 2, tmp_path, "after")
    assert before.size == after.size
    changed = ImageChops.difference(before, after).getbbox()
    assert changed is not None, "the stamp drew nothing"
    left, top, right, bottom = box_in_pixels(signed, 2)
    c_left, c_top, c_right, c_bottom = changed  # right and bottom exclusive
    assert c_left >= left - MARGIN and c_top >= top - MARGIN, (changed, (left, top, right, bottom))
    assert c_right <= right + MARGIN and c_bottom <= bottom + MARGIN, (
        changed,
        (left, top, right, bottom),
    )
    # Something is drawn well inside the box too, not only its border.
    inner = (int(left) + 4, int(top) + 4, int(right) - 4, int(bottom) - 4)
    assert ImageChops.difference(before.crop(inner), after.crop(inner)).getbbox() is not None


@pytest.mark.parametrize("page", [1, 3, 4])
def test_the_other_pages_are_untouched(stamped, tmp_path: Path, page: int) -> None:
    original, signed = stamped
    before = render(original, page, tmp_path, "before")
    after = render(signed, page, tmp_path, "after")
    assert ImageChops.difference(before, after).getbbox() is None


def test_the_stamp_reads_in_vietnamese_and_english(stamped, tmp_path: Path) -> None:
    _, signed = stamped
    text = page_text(signed, 2, tmp_path)
    assert "Người ký / Signed by: BS. Nguyễn Văn An" in text
    assert "Thời gian / Time: " in text
    assert f"Lý do / Reason: {REASON}" in text
    assert "Nơi ký / Location: Bệnh viện Đa khoa tỉnh Quảng Trị" in text
    found = re.search(r"Time: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\+7 \(giờ Việt Nam\)", text)
    assert found, text
    shown = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=VIETNAM)
    assert abs((shown - datetime.now(UTC)).total_seconds()) < 600  # Vietnam's time, not UTC


def test_every_word_of_the_stamp_lies_inside_the_box(stamped, tmp_path: Path) -> None:
    """Glyph widths in the wrong units make text run out of its box (and be clipped).
    (pyHanko marks each line with an ActualText span: pdftotext reads it as one word.)"""
    _, signed = stamped
    html = page_text(signed, 2, tmp_path, "-bbox")
    left, top, right, bottom = box_in_pixels(signed, 2)
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html,
    )
    stamp_words = [w for w in words if float(w[1]) >= top - 1 and float(w[0]) >= left - 1]
    read = " | ".join(w[4] for w in stamp_words)
    assert "Người ký" in read and "Nguyễn" in read and "Reason:" in read, read
    for x_min, y_min, x_max, y_max, word in stamp_words:
        inside = left <= float(x_min) and top <= float(y_min)
        assert inside and float(x_max) <= right and float(y_max) <= bottom, (
            word,
            x_min,
            y_min,
            x_max,
            y_max,
        )


def test_a_stamped_signature_is_valid_in_pdfsig(stamped, tmp_path: Path, nssdb: str) -> None:
    _, signed = stamped
    out = tmp_path / "stamped.pdf"
    out.write_bytes(signed)
    (verdict,) = pdfsig(out, nssdb)
    assert verdict.valid and verdict.trusted, verdict.text


def test_a_stamp_on_a_page_the_document_lacks_is_refused(dev_key) -> None:
    options = PdfSignOptions(level="B-B", visible=True, page=5, box=BOX)
    with pytest.raises(InvalidRequest, match="page 5 does not exist: the PDF has 4 page"):
        asyncio.run(async_sign_pdf(FOUR_PAGES.read_bytes(), dev_key("dr-an"), options, None))


def test_a_visible_signature_without_a_box_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="box"):
        PdfSignOptions(visible=True)


def font_sizes(pdf: bytes, tmp_path: Path, page: int) -> set[float]:
    """The heights of the stamp's words, as pdftotext measures them (about the font size)."""
    html = page_text(pdf, page, tmp_path, "-bbox")
    boxes = re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">(?:Người|Thời|Lý)', html)
    return {round(float(y2) - float(y1), 1) for y1, y2 in boxes}


@pytest.mark.parametrize(
    ("box", "small"), [((60.0, 90.0, 560.0, 200.0), False), ((400.0, 100.0, 560.0, 140.0), True)]
)
def test_the_text_is_sized_to_its_box(dev_key, tmp_path: Path, box, small: bool) -> None:
    options = PdfSignOptions(level="B-B", visible=True, page=1, box=box, reason=REASON, location=LOCATION)
    signed = asyncio.run(async_sign_pdf(FOUR_PAGES.read_bytes(), dev_key("dr-an"), options, None)).pdf
    said = StampText("BS. Nguyễn Văn An", datetime.now(UTC), LOCATION, REASON)
    size = fitted_size(said.lines(), per_mille_font(find_font()), box[2] - box[0], box[3] - box[1])
    assert (size < 7) == small and (small or size >= 10) and size <= MAX_FONT_SIZE
    heights = font_sizes(signed, tmp_path, 1)
    assert heights and all(abs(h - size) <= size * 0.35 for h in heights), (heights, size)


def test_a_big_box_does_not_blow_the_text_up() -> None:
    said = StampText("BS. Nguyễn Văn An", datetime.now(UTC))
    assert fitted_size(said.lines(), per_mille_font(find_font()), 560, 400) == MAX_FONT_SIZE


def test_the_stamp_without_location_or_reason_says_who_and_when() -> None:
    lines = StampText("Bệnh viện", datetime(2026, 12, 31, 18, 30, tzinfo=UTC)).lines()
    assert lines == ["Người ký / Signed by: Bệnh viện", "Thời gian / Time: 2027-01-01 01:30:00 UTC+7 (giờ Việt Nam)"]
