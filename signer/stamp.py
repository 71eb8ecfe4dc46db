"""The visible stamp of a signature: who signed, when and why, in Vietnamese and English.

A printed record shows its signers the way a paper one did. The stamp is drawn by pyHanko
as the appearance stream of the signature's widget, so it stays inside the box the caller
gave (the form XObject's bounding box clips it) and scales the text down to fit.

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
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
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

SIGNER_LINE = "Người ký / Signed by: %(signer)s"
TIME_LINE = "Thời gian / Time: %(ts)s"
REASON_LINE = "Lý do / Reason: %(reason)s"
# ISO order with the UTC offset: unambiguous on paper in any country.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
FONT_SIZE = 10

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


def stamp_style(font: Path, with_reason: bool) -> TextStampStyle:
    """A text stamp in ``font``: signer, time and, when there is one, the reason."""
    lines = [SIGNER_LINE, TIME_LINE] + ([REASON_LINE] if with_reason else [])
    factory = PerMilleFontFactory(per_mille_font(font))
    return TextStampStyle(
        stamp_text="\n".join(lines),
        timestamp_format=TIME_FORMAT,
        text_box_style=TextBoxStyle(font=factory, font_size=FONT_SIZE),
        border_width=1,
        background=None,
    )


def stamp_text_params(reason: str | None) -> dict[str, str]:
    """Values for the stamp's template beyond those pyHanko fills in (signer, ts)."""
    return {"reason": reason} if reason else {}
