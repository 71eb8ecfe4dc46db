"""PDFs made to cost a server: many objects, inflation bombs, many signature fields.

Each is built here, small on disk, so that no test data is checked in."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

PAGE = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
]


def assemble(objects: list[bytes]) -> bytes:
    """A classic PDF: objects numbered from 1 (the first is the catalog), an xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def many_objects(count: int) -> bytes:
    """One page and ``count`` tiny objects (a million make 41 MB)."""
    return assemble(PAGE + [b"[%d]" % i for i in range(count)])


def many_signature_fields(count: int) -> bytes:
    """``count`` empty signature fields on one page."""
    refs = b" ".join(b"%d 0 R" % (4 + i) for i in range(count))
    catalog = b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + refs + b"] >> >>"
    fields = [b"<< /FT /Sig /T (S%d) /Rect [0 0 0 0] /P 3 0 R >>" % i for i in range(count)]
    return assemble([catalog, *PAGE[1:], *fields])


def _double_flate(head: bytes, inflated: int) -> bytes:
    """``head`` then spaces up to ``inflated`` bytes, Flate-compressed twice (a few kB)."""
    squeeze = zlib.compressobj(9)
    once = squeeze.compress(head)
    block = b" " * (1 << 20)
    for _ in range(inflated >> 20):
        once += squeeze.compress(block)
    once += squeeze.flush()
    return zlib.compress(once, 9)


def object_stream_bomb(inflated: int = 2 << 30, broken_xref: bool = False) -> bytes:
    """The catalog and page tree in an object stream that inflates to ``inflated`` bytes.
    With ``broken_xref`` the file's startxref points nowhere, so only a rebuild reads it."""
    offsets, body = [], b""
    for obj in PAGE:
        offsets.append(len(body))
        body += obj + b"\n"
    head = b" ".join(b"%d %d" % (i + 1, at) for i, at in enumerate(offsets)) + b"\n"
    data = _double_flate(head + body, inflated)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    at4 = len(out)
    out += (
        b"4 0 obj\n<< /Type /ObjStm /N 3 /First %d /Filter [/FlateDecode /FlateDecode] /Length %d >>\nstream\n"
        % (len(head), len(data))
    )
    out += data + b"\nendstream\nendobj\n"
    at5 = len(out)
    rows = bytes([0]) + bytes(4) + (65535).to_bytes(2, "big")
    rows += b"".join(bytes([2]) + (4).to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(3))
    rows += b"".join(bytes([1]) + at.to_bytes(4, "big") + bytes(2) for at in (at4, at5))
    out += b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % len(
        rows
    )
    out += rows + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % (at5 + 7 if broken_xref else at5)
    return bytes(out)


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def workers_of(serve_pid: int) -> list[int]:
    """The gunicorn workers of a ``kyso serve``: the front's grandchildren."""
    master = [p for p in descendants(serve_pid) if Path(f"/proc/{p}/stat").exists()]
    return [p for p in master if os.path.exists(f"/proc/{p}") and _depth(p, serve_pid) == 2]


def _depth(pid: int, ancestor: int) -> int:
    depth = 0
    while pid not in (ancestor, 0, 1):
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        depth += 1
    return depth if pid == ancestor else -1
