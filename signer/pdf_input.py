"""Reading a PDF to sign it: the checks before parsing, the parser's refusals, the form's
signature fields, and the rebuild of a damaged file when the caller asks for it.

A file is read from bytes or from a seekable stream; a file on disk is mapped for the
checks that need its whole content (its pages stay in the page cache) and parsed as the
parser needs, so that it is never held in the process's memory whole.
"""

from __future__ import annotations

import mmap
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import BinaryIO

from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from kyso.errors import EncryptedPdf, InvalidPdf
from kyso.signer.bounds import DEFAULT_BOUNDS, Buffer, OverLimit, PdfBounds

# What pyHanko raises on hostile or damaged input (found by fuzzing): all mean "not a readable PDF".
READ_ERRORS = (
    PdfError, ValueError, KeyError, TypeError, IndexError, AssertionError,
    AttributeError, OverflowError, RecursionError, zlib.error,
)


_ENCRYPTED = (
    "the PDF is encrypted (it has an /Encrypt dictionary, even if its user password is empty); "
    "remove the encryption before signing a record"
)


def check_pdf_envelope(data: Buffer) -> None:
    """Refuse what is not a PDF or was cut off in transfer (``data``: bytes, or a map of a file)."""
    with memoryview(data) as view:
        head, tail = bytes(view[:1024]), bytes(view[-2048:])
    if b"%PDF-" not in head:
        raise InvalidPdf("the body is not a PDF (no %PDF- header)")
    if b"%%EOF" not in tail:
        raise InvalidPdf("the PDF is truncated (no %%EOF marker at its end)")


@contextmanager
def contents_of(stream: BinaryIO) -> Iterator[Buffer]:
    """The whole of a seekable stream, not copied: a BytesIO's bytes (its value, which is
    the bytes it was made from), or a read-only map of a file (pages of the page cache,
    not of the process's heap)."""
    if isinstance(stream, BytesIO):
        yield stream.getvalue()
        return
    try:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:  # an empty file cannot be mapped
        yield b""
        return
    try:
        yield mapped
    finally:
        try:
            mapped.close()
        except BufferError:  # still held by the frames of a refusal under way: freed with them
            pass


def load_pdf(
    data: bytes, repair: bool = False, bounds: PdfBounds = DEFAULT_BOUNDS
) -> tuple[bytes, PdfFileReader, bool]:
    """Parse a PDF for signing: ``(bytes to sign, reader, repaired)``.

    A file whose structure cannot be read is refused, or, when the caller allows it
    (``repair``), rebuilt first. Rebuilding is never silent: a signer attests to what
    it signs, so the caller must accept that the signed file is the rebuilt one. Nothing
    is rebuilt, not even on trial, unless the caller asks: the rebuild inflates what the
    file holds, and runs apart, in a child process with limits."""
    check_pdf_envelope(data)
    try:
        return data, open_pdf(data, bounds), False
    except (EncryptedPdf, OverLimit):
        raise
    except InvalidPdf as exc:
        if not repair:
            raise _damaged(exc) from None
    fixed = _rebuilt(data, bounds)
    return fixed, open_pdf(fixed, bounds), True


def load_pdf_stream(
    stream: BinaryIO, repair: bool = False, bounds: PdfBounds = DEFAULT_BOUNDS
) -> tuple[BinaryIO, PdfFileReader, bool]:
    """:func:`load_pdf` of a seekable stream, ``(stream to sign, reader, repaired)``: a file
    is mapped for the checks and read by the parser as it needs, never held whole, but
    for a rebuild (``repair``), which takes the bytes as :func:`load_pdf` does."""
    with contents_of(stream) as data:
        check_pdf_envelope(data)
        bounds.check_bytes(data)
    try:
        return stream, open_pdf_stream(stream, bounds), False
    except (EncryptedPdf, OverLimit):
        raise
    except InvalidPdf as exc:
        if not repair:
            raise _damaged(exc) from None
    stream.seek(0)
    fixed = BytesIO(_rebuilt(stream.read(), bounds))
    bounds.check_bytes(fixed.getvalue())
    return fixed, open_pdf_stream(fixed, bounds), True


def _damaged(exc: InvalidPdf) -> InvalidPdf:
    return InvalidPdf(
        f"{exc.detail}. If the file is damaged, send it again with repair=true to have "
        "kyso rebuild its structure, when that loses nothing, and sign the rebuilt file"
    )


def _rebuilt(data: bytes, bounds: PdfBounds) -> bytes:
    from kyso.signer.repair.isolated import repair_in_child

    # The rebuild refuses, naming what was lost, a file that cannot be rebuilt whole.
    return repair_in_child(data, bounds)


def open_pdf(data: bytes, bounds: PdfBounds = DEFAULT_BOUNDS) -> PdfFileReader:
    """Parse a PDF as it is, refusing what cannot be read, is encrypted, or is over
    ``bounds`` (objects, inflated bytes, signature fields)."""
    bounds.check_bytes(data)
    return open_pdf_stream(BytesIO(data), bounds)


def open_pdf_stream(stream: BinaryIO, bounds: PdfBounds = DEFAULT_BOUNDS) -> PdfFileReader:
    """:func:`open_pdf` of a stream whose bytes ``bounds.check_bytes`` has seen."""
    try:
        reader = PdfFileReader(stream, strict=False, decode_limits=bounds.decode_limits())
        trailer = reader.trailer
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF cannot be read: {exc}") from None
    if "/Encrypt" in trailer:
        raise EncryptedPdf(_ENCRYPTED)
    bounds.check_reader(reader)
    try:
        reader.root["/Pages"]
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF has no readable page tree: {exc}") from None
    try:
        bounds.check_fields(reader)
    except PdfDecodeLimitError:
        raise bounds.too_much_inflated() from None
    except READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF's signature fields cannot be read: {exc}") from None
    return reader


def signature_fields(reader: PdfFileReader, filled_status: bool | None = None) -> list:
    """The signature fields, ``(name, value, field reference)``, as pyHanko enumerates
    them; a form tree that cannot be walked (a field that is its own kid) is InvalidPdf."""
    try:
        return list(fields.enumerate_sig_fields(reader, filled_status=filled_status))
    except READ_ERRORS as exc:
        raise InvalidPdf(f"the PDF's form fields cannot be read: {exc}") from None


def field_text(name: object) -> str:
    """A field name as text: pyHanko hands over a byte string for a name that does not
    decode as a PDF text string (a NUL byte, say); it is read as Latin-1 then."""
    if isinstance(name, bytes):
        return name.decode("latin-1")
    return str(name)
