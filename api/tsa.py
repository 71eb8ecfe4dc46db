"""POST /tsa: the built-in RFC 3161 timestamp authority over HTTP."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from kyso.api.limits import limit_address
from kyso.errors import NotFound, UnsupportedMediaType

bp = Blueprint("tsa", __name__)


@bp.post("/tsa")
def timestamp() -> Response:
    kyso = current_app.extensions["kyso"]
    if kyso.tsa is None or not kyso.config.tsa.public:
        raise NotFound("the built-in TSA is not served by this instance")
    limit_address("tsa")
    if request.mimetype != "application/timestamp-query":
        raise UnsupportedMediaType("send an RFC 3161 query as application/timestamp-query")
    return Response(kyso.tsa.respond(request.get_data()), mimetype="application/timestamp-reply")
