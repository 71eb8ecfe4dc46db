"""A spool between two asyncio tasks: what one writes, the other reads at its own pace;
in memory up to 1 MiB, then in a temporary file (so a large body or answer costs disk, not
memory)."""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO

SPOOL_IN_MEMORY = 1 << 20


class Spool:
    """Bytes written by one side and read by the other: in memory, then in a temporary file."""

    def __init__(self) -> None:
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self.size = 0
        self._read = 0
        self._done = False
        self._changed = asyncio.Event()

    def write(self, data: bytes) -> None:
        if self._file is None and self.size + len(data) > SPOOL_IN_MEMORY:
            self._file = tempfile.TemporaryFile()
            self._file.write(self._memory)
            self._memory = bytearray()
        if self._file is not None:
            self._file.seek(0, 2)
            self._file.write(data)
        else:
            self._memory += data
        self.size += len(data)
        self._changed.set()

    def finish(self) -> None:
        self._done = True
        self._changed.set()

    async def read(self, size: int = 65536) -> bytes:
        """The next bytes; b"" once everything written has been read and writing is over."""
        while self._read >= self.size and not self._done:
            self._changed.clear()
            await self._changed.wait()
        if self._file is not None:
            self._file.seek(self._read)
            chunk = self._file.read(min(size, self.size - self._read))
        else:
            chunk = bytes(self._memory[self._read : self._read + size])
        self._read += len(chunk)
        return chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
