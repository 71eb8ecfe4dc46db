"""How much work one PDF may cost: objects, inflated bytes, signature fields, signatures.

A request body is capped by its size, but a PDF's cost is not its size: a million tiny
objects in 41 MB, a few kB of stacked Flate that inflate to gigabytes, fifty thousand
signature fields that each cost a lookup. :class:`PdfBounds` caps each of them per
document; a document over a cap is refused before the costly work (``invalid_pdf``, or
``payload_too_large`` for inflation), with a detail that names the cap.

The caps are enforced where the parser can enforce them: pyHanko bounds what it inflates
itself (its ``DecodeLimits``), objects are counted in the bytes before parsing and in the
cross-reference data after, and fields are counted as they are enumerated. qpdf, which
rebuilds damaged files, cannot bound itself: it runs in a child process with limits
(:mod:`kyso.signer.repair.isolated`).
"""

from __future__ import annotations

import gc
import mmap
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from kyso.errors import InvalidPdf, PayloadTooLarge

MiB = 1024 * 1024
Buffer = bytes | mmap.mmap  # a whole file: its bytes, or a map of them
# An indirect object's header, ``12 0 obj``; PDF whitespace between the parts.
_OBJ_HEADER = re.compile(
    rb"(?<![0-9])\d{1,10}[\0\t\n\f\r ]+\d{1,5}[\0\t\n\f\r ]+obj(?![A-Za-z0-9])"
)


class OverLimit(InvalidPdf):
    """A PDF over one of the caps: refused as it is, never rebuilt."""


class InflatesTooMuch(PayloadTooLarge):
    """A PDF whose streams inflate past ``max_inflated_bytes``."""


@dataclass(frozen=True)
class PdfBounds:
    """The caps on one PDF (``[limits]`` in the configuration)."""

    max_pdf_objects: int = 200_000
    max_inflated_bytes: int = 256 * MiB
    max_signature_fields: int = 1_000
    max_signatures: int = 100
    repair_memory_bytes: int = 1024 * MiB  # the rebuild's child process, beyond its start
    repair_seconds: int = 30  # CPU time of the rebuild's child process

    @classmethod
    def of(cls, limits: Any) -> PdfBounds:
        """The bounds ``[limits]`` sets (a :class:`kyso.config.LimitsConfig`)."""
        return cls(**{f.name: getattr(limits, f.name) for f in fields(cls)})

    def decode_limits(self) -> DecodeLimits:
        """pyHanko's decoding limits: no stream, and no document in total, inflates to more
        than ``max_inflated_bytes``; pyHanko's per-stream ratio checks stay in force."""
        return DecodeLimits(
            per_stream=StreamDecodeLimits(max_output_size=self.max_inflated_bytes),
            document_budget=DocumentDecodeBudget(
                base_allowance=self.max_inflated_bytes, max_ratio=0
            ),
        )

    def too_much_inflated(self) -> InflatesTooMuch:
        return InflatesTooMuch(
            f"the PDF's compressed streams inflate to more than {self.max_inflated_bytes} bytes "
            "(limits.max_inflated_bytes)"
        )

    def check_bytes(self, data: Buffer) -> None:
        """Refuse, before any parsing, a file with more object headers than ``max_pdf_objects``.

        Every header ends in its own ``obj``: a file with no more ``obj`` than the cap has
        no more headers, and is let through without the header pattern, which costs about
        30 ns a byte (1.5 s for a 50 MB scan) where a search for ``obj`` costs next to
        nothing."""
        if _occurs_at_most(data, b"obj", self.max_pdf_objects):
            return
        for count, _ in enumerate(_OBJ_HEADER.finditer(data), 1):
            if count > self.max_pdf_objects:
                raise self._too_many_objects()

    def check_reader(self, reader: PdfFileReader) -> None:
        """Refuse a parsed file whose cross-reference data names more than ``max_pdf_objects``
        objects (object-stream members included), over all its revisions."""
        total = 0
        for revision in range(reader.total_revisions):
            xref = reader.xrefs.get_xref_data(revision)
            total += len(xref.standard_xrefs) + len(xref.xrefs_in_objstm)
            if total > self.max_pdf_objects:
                raise self._too_many_objects()

    def check_fields(self, reader: PdfFileReader) -> None:
        """Refuse more than ``max_signature_fields`` signature fields, or more than
        ``max_signatures`` filled ones (signatures and document timestamps); stops
        counting at the cap."""
        fields = signed = 0
        for _name, value, _field in enumerate_sig_fields(reader, filled_status=None):
            fields += 1
            signed += value is not None
            if fields > self.max_signature_fields:
                raise OverLimit(
                    f"the PDF has more than {self.max_signature_fields} signature fields "
                    "(limits.max_signature_fields)"
                )
            if signed > self.max_signatures:
                raise OverLimit(
                    f"the PDF carries more than {self.max_signatures} signatures "
                    "(limits.max_signatures)"
                )

    def _too_many_objects(self) -> OverLimit:
        return OverLimit(
            f"the PDF has more than {self.max_pdf_objects} objects (limits.max_pdf_objects)"
        )


def _occurs_at_most(data: Buffer, needle: bytes, cap: int) -> bool:
    """Whether ``needle`` occurs in ``data`` no more than ``cap`` times."""
    found, position = 0, data.find(needle)
    while position >= 0:
        found += 1
        if found > cap:
            return False
        position = data.find(needle, position + len(needle))
    return True


@contextmanager
def releasing_cycles() -> Iterator[None]:
    """Collect garbage once a PDF has been handled.

    pyHanko's readers, resolvers and objects refer to each other; the collector frees such
    cycles only in a full collection, which CPython defers while the heap grows, so a
    worker that verifies large PDFs grows by hundreds of MB a call. One collection after
    each PDF returns the worker to its size (a few ms for a worker's heap)."""
    try:
        yield
    finally:
        gc.collect()


DEFAULT_BOUNDS = PdfBounds()
