"""The visible stamp of a signature: who signed, when, where and why, in Vietnamese and English.

A printed record shows its signers the way a paper one did. The stamp is drawn by pyHanko
as the appearance stream of the signature's widget, so it stays inside the box the caller
gave (the form XObject's bounding box clips it). The time is Vietnam's (UTC+7), labelled so;
the location is shown when the caller gives one. The text is sized to its box: the largest
size up to :data:`MAX_FONT_SIZE` at which its longest line fits the width and all its lines
the height, measured with the font's own glyph widths (pyHanko still shrinks what would not fit).

Vietnamese needs glyphs the 14 standard PDF fonts do not have (ư, ơ, ạ, ế, ...): the stamp
embeds a subset of a TrueType font, with a ToUnicode map so that the text can be searched
and copied. DejaVu Sans (Debian ``fonts-dejavu-core``) is the default; ``stamp_font`` in
the configuration names another.

pyHanko 0.38 writes glyph widths and kerning in the font's own units, where PDF wants
thousandths of an em: a font with 2048 units per em (DejaVu, most TrueType fonts) comes out
twice as wide as it should and runs out of its box. :func:`per_mille_font` therefore hands
pyHanko the Latin and Vietnamese part of the font rescaled to 1000 units per em, once per
process (about a second; cached).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import TextStampStyle

from kyso.errors import ConfigError

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # Fedora, Alpine
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
)

SIGNER_LINE = "Người ký / Signed by: {signer}"
TIME_LINE = "Thời gian / Time: {time} UTC+7 (giờ Việt Nam)"
LOCATION_LINE = "Nơi ký / Location: {location}"
REASON_LINE = "Lý do / Reason: {reason}"
VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time since 1975
# ISO order, in Vietnam's time, labelled with its offset: unambiguous on paper anywhere.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FONT_SIZE = 10  # pyHanko's size for the font engine; the drawn size is fitted to the box
MAX_FONT_SIZE = 12
LEADING = 1.25  # line height, in font sizes
PADDING = 3  # points between the border and the text

# What stamps print: Latin with its extensions, the combining marks and Latin Extended
# Additional (Vietnamese), punctuation and the đồng sign.
STAMP_UNICODE_RANGES = (
    (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x1E00, 0x1EFF), (0x2000, 0x206F),
    (0x20A0, 0x20BF),
)  # fmt: skip


def find_font(configured: str | None = None) -> Path:
    """The TrueType font of stamps: ``configured`` if given, else the first installed
    candidate. Raises ConfigError naming what to install."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"stamp_font {configured} does not exist")
        return path
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError(
        "no font with Vietnamese glyphs for visible stamps: install fonts-dejavu-core "
        "(Debian) or set stamp_font to a TrueType file"
    )


@functools.lru_cache(maxsize=4)
def per_mille_font(path: Path) -> bytes:
    """The stamp's part of the TrueType font at ``path``, at 1000 units per em."""
    font = TTFont(str(path))
    if "FFTM" in font:
        del font["FFTM"]  # FontForge's timestamps: fontTools cannot subset them, and warns
    options = subset.Options()
    options.layout_features = ["*"]  # keep kerning and mark positioning for HarfBuzz
    options.name_IDs = ["*"]
    options.hinting = False  # hints are in font units; a stamp is read, not pixel-tuned
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[c for lo, hi in STAMP_UNICODE_RANGES for c in range(lo, hi + 1)])
    subsetter.subset(font)
    if font["head"].unitsPerEm != 1000:
        scale_upem(font, 1000)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class PerMilleFontFactory(FontEngineFactory):
    """pyHanko's glyph accumulator (HarfBuzz shaping, subset embedding, ToUnicode) on the
    font bytes of :func:`per_mille_font`."""

    font_bytes: bytes
    font_size: int = FONT_SIZE

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(
            writer=writer,
            font_handle=BytesIO(self.font_bytes),
            font_size=self.font_size,
            obj_stream=obj_stream,
        )


@dataclass(frozen=True)
class StampText:
    """What a stamp says: the signer's name, the signing time, where and why."""

    signer: str
    moment: datetime
    location: str | None = None
    reason: str | None = None

    def lines(self) -> list[str]:
        local = (
            self.moment.astimezone(VIETNAM)
            if self.moment.tzinfo
            else self.moment.replace(tzinfo=UTC).astimezone(VIETNAM)
        )
        lines = [
            SIGNER_LINE.format(signer=self.signer),
            TIME_LINE.format(time=local.strftime(TIME_FORMAT)),
        ]
        if self.location:
            lines.append(LOCATION_LINE.format(location=self.location))
        if self.reason:
            lines.append(REASON_LINE.format(reason=self.reason))
        return lines


@functools.lru_cache(maxsize=4)
def _advances(font_bytes: bytes) -> tuple[dict[int, str], dict[str, int]]:
    """The font's character map and advance widths (per mille of the font size)."""
    font = TTFont(BytesIO(font_bytes))
    return font.getBestCmap(), {name: metrics[0] for name, metrics in font["hmtx"].metrics.items()}


def text_width(line: str, font_bytes: bytes, size: float) -> float:
    """The width of ``line`` in points at ``size`` (kerning left out: a few per cent)."""
    cmap, advances = _advances(font_bytes)
    units = sum(
        advances.get(cmap.get(ord(ch), ".notdef"), advances.get(".notdef", 600)) for ch in line
    )
    return units * size / 1000


def leading(size: int) -> int:
    """Line height for a font size (pyHanko's layout wants whole numbers)."""
    return math.ceil(size * LEADING)


def fitted_size(lines: list[str], font_bytes: bytes, width: float, height: float) -> int:
    """The largest whole font size, up to MAX_FONT_SIZE, at which ``lines`` fit in the box
    (at least 1: pyHanko then shrinks what still does not fit)."""
    inner_w, inner_h = width - 2 * PADDING, height - 2 * PADDING
    widest = max(text_width(line, font_bytes, 1.0) for line in lines) * 1.04  # kerning, rounding
    for size in range(MAX_FONT_SIZE, 1, -1):
        if widest * size <= inner_w and len(lines) * leading(size) <= inner_h:
            return size
    return 1


def stamp_style(
    font: Path, text: StampText, box: tuple[float, float, float, float]
) -> TextStampStyle:
    """A text stamp in ``font`` saying ``text``, sized to ``box`` (x1, y1, x2, y2 in points)."""
    font_bytes = per_mille_font(font)
    lines = text.lines()
    size = fitted_size(lines, font_bytes, abs(box[2] - box[0]), abs(box[3] - box[1]))
    factory = PerMilleFontFactory(font_bytes)
    return TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),  # no pyHanko fields
        text_box_style=TextBoxStyle(font=factory, font_size=size, leading=leading(size)),  # type: ignore[arg-type]
        border_width=1,
        background=None,
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID,
            y_align=AxisAlignment.ALIGN_MID,
            margins=Margins.uniform(PADDING),
            inner_content_scaling=InnerScaling.SHRINK_TO_FIT,
        ),
    )
