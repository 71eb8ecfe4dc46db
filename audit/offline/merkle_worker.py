"""Chunk roots beside the verifier: ``python -m kyso.audit.offline.merkle_worker``.

Reads leaf hashes from stdin, 256 at a time (8,192 bytes), and writes each chunk's
RFC 9162 root (32 bytes) to stdout, in order. The offline verifier hashes entries and
checks the chain in its own process and leaves the 255 interior hashes of every chunk
to this one, on another core (:class:`kyso.audit.offline.spilled_tree.SpilledTree`).
"""

from __future__ import annotations

import sys

from kyso.audit.merkle import perfect_root

CHUNK_BYTES = 256 * 32


def serve(read, write) -> None:
    """Turn whole chunks of leaf hashes from ``read`` into chunk roots for ``write``."""
    pending = b""
    while data := read(64 * CHUNK_BYTES):
        pending += data
        whole = len(pending) - len(pending) % CHUNK_BYTES
        roots = []
        for start in range(0, whole, CHUNK_BYTES):
            chunk = pending[start : start + CHUNK_BYTES]
            roots.append(perfect_root([chunk[i : i + 32] for i in range(0, CHUNK_BYTES, 32)]))
        pending = pending[whole:]
        write(b"".join(roots))


def main() -> None:
    out = sys.stdout.buffer
    read = sys.stdin.buffer.read1  # type: ignore[union-attr]
    serve(read, lambda data: (out.write(data), out.flush()))


if __name__ == "__main__":
    main()
