"""Large bodies on disk: a PDF request body spooled to a temporary file as it is read, and a
signed file answered from one, so that a document is never held in a worker's memory whole.

The files are anonymous (``tempfile.TemporaryFile``: unlinked from the start) in
``<data_dir>/tmp``, and closed, so gone, once the request is answered, refused or failed;
nothing is left behind even by a worker that is killed. A body is bounded as
:class:`kyso.api.BoundedRequest` bounds one: a body past the limit, announced or not, is
413, never cut short.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from kyso.config import Config
from kyso.errors import PayloadTooLarge

CHUNK = 1 << 20


@dataclass(frozen=True)
class SpooledBody:
    """A request body in a temporary file (at its start): its size and SHA-256."""

    file: IO[bytes]
    size: int
    sha256: str


def temporary_file(config: Config) -> IO[bytes]:
    """An anonymous temporary file in the data directory's ``tmp``."""
    directory = config.data_dir / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)


def spool_body(config: Config, also: Any = None) -> SpooledBody:
    """Read the request body into a temporary file, hashing it as it comes (and feeding
    ``also``, a hash object, when given); over ``config.max_body_bytes`` it is
    :class:`PayloadTooLarge`, and the file is closed."""
    limit = config.max_body_bytes
    too_large = PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    file = temporary_file(config)
    try:
        digest, size = hashlib.sha256(), 0
        while chunk := request.stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            digest.update(chunk)
            if also is not None:
                also.update(chunk)
            file.write(chunk)
        file.seek(0)
    except RequestEntityTooLarge:
        file.close()
        raise too_large from None
    except BaseException:
        file.close()
        raise
    return SpooledBody(file, size, digest.hexdigest())


def file_answer(file: IO[bytes], size: int, mimetype: str) -> Response:
    """An answer whose body is sent from ``file`` (from its start) in chunks; the file is
    closed once sent, or when the answer is dropped unsent."""

    def chunks() -> Iterator[bytes]:
        try:
            file.seek(0)
            while chunk := file.read(CHUNK):
                yield chunk
        finally:
            file.close()

    response = Response(chunks(), mimetype=mimetype)
    response.content_length = size
    response.call_on_close(file.close)
    return response
