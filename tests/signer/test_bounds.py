"""PdfBounds.check_bytes: the object headers of a file counted before it is parsed, the
same whether or not the file has more ``obj`` than the cap."""

from __future__ import annotations

import mmap
import tempfile

import pytest
from hostile import many_objects

from kyso.signer.bounds import _OBJ_HEADER, OverLimit, PdfBounds


def headers(data: bytes) -> int:
    return sum(1 for _ in _OBJ_HEADER.finditer(data))


@pytest.mark.parametrize(
    "data",
    [
        many_objects(10),  # 13 headers
        b"objobj obj 1 0 obj 2 0 obj\n" * 3,  # more obj than headers
        b"1 0 obj" + b" obj" * 20,  # 21 obj, one header
        b"12\n\n 0\r\x00obj 7 0 objx 8 0 obj9 9 9 obj",  # whitespace runs, digits around
    ],
)
@pytest.mark.parametrize("cap", [0, 1, 12, 13, 14, 30])
def test_a_file_is_refused_exactly_when_its_headers_pass_the_cap(data: bytes, cap: int) -> None:
    bounds = PdfBounds(max_pdf_objects=cap)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        for buffer in (data, mapped):
            if headers(data) > cap:
                with pytest.raises(OverLimit):
                    bounds.check_bytes(buffer)
            else:
                bounds.check_bytes(buffer)
        mapped.close()
