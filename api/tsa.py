"""POST /tsa: the built-in RFC 3161 timestamp authority over HTTP."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from kyso.api.limits import limit_address
from kyso.errors import NotFound, UnsupportedMediaType
from kyso.signer.timestamp.authority import MAX_QUERY_BYTES, too_large

bp = Blueprint("tsa", __name__)


@bp.post("/tsa")
def timestamp() -> Response:
    kyso = current_app.extensions["kyso"]
    if kyso.tsa is None or not kyso.config.tsa.public:
        raise NotFound("the built-in TSA is not served by this instance")
    limit_address("tsa")
    if request.mimetype != "application/timestamp-query":
        raise UnsupportedMediaType("send an RFC 3161 query as application/timestamp-query")
    length = request.content_length
    if length is not None and length > MAX_QUERY_BYTES:
        _discard_body()
        return Response(too_large(), mimetype="application/timestamp-reply")
    # At most one byte over the limit is kept: enough for respond() to refuse it.
    query = request.stream.read(MAX_QUERY_BYTES + 1)
    _discard_body()
    return Response(kyso.tsa.respond(query), mimetype="application/timestamp-reply")


def _discard_body() -> None:
    """Read what is left of the body (bounded by max_body_bytes) without keeping it: an answer
    sent before the body is read, then a close, resets the connection and loses the answer."""
    while request.stream.read(1 << 16):
        pass
