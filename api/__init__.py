"""The Flask application: factory, blueprints, limits, metrics."""

from __future__ import annotations

import logging
import time

from flask import Flask, Request, current_app, g, request

from kyso.api.problems import register_error_handlers
from kyso.config import Config, load_config
from kyso.errors import PayloadTooLarge
from kyso.service import Kyso


class BoundedRequest(Request):
    """A request whose body is refused, however it was sent, once it passes the limit.

    A body with a Content-Length over the limit is refused before it is read
    (``_limit_body``). A chunked body has no length: Werkzeug stops reading it at
    MAX_CONTENT_LENGTH and returns what it read, silently cut short, and a PDF cut short
    can be an earlier revision that parses. So the app reads one byte more than it
    accepts, and a body that has that byte is refused.
    """

    def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = current_app.extensions["kyso"].config.max_body_bytes
        if len(data) > limit:
            raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
        return data.decode(errors="replace") if as_text else data


def create_app(config: Config | None = None, kyso: Kyso | None = None) -> Flask:
    """Build the app around one :class:`Kyso` service (made from ``config`` if not given)."""
    config = config or (kyso.config if kyso else load_config())
    kyso = kyso or Kyso.open(config)
    # pyHanko logs every untrusted or revoked certificate it meets with a full traceback;
    # for a verification service those are answers (in the report), not server errors.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)
    app = Flask(__name__)
    app.request_class = BoundedRequest
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes + 1  # see BoundedRequest
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["kyso"] = kyso
    from kyso.audit.checkpoint import start_checkpointer

    # Scheduled audit checkpoints (every N entries / T seconds) in this serving process.
    app.extensions["kyso.checkpointer"] = start_checkpointer(kyso)

    from kyso.api import (
        audit,
        extend,
        headers,
        health,
        keys,
        limits,
        metrics,
        openapi,
        page,
        pki,
        sessions,
        sign,
        tsa,
        verify,
        xml,
    )

    for module in (sign, extend, verify, xml, sessions, audit, keys):
        app.register_blueprint(module.bp, url_prefix="/api/v1")
    app.register_blueprint(pki.bp, url_prefix="/pki")
    app.register_blueprint(openapi.bp, url_prefix="/api/v1")
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(tsa.bp)
    app.register_blueprint(page.bp)
    register_error_handlers(app)
    limits.install(app.extensions, config.limits)

    @app.before_request
    def _limit_body() -> None:
        g.started = time.perf_counter()
        length = request.content_length
        if length is not None and length > config.max_body_bytes:
            # Refused from the header alone, before a byte of the body is read; audited
            # under the action of the call it refuses (the caller is not yet known).
            view = app.view_functions.get(request.endpoint or "")
            g.action, g.audit = getattr(view, "kyso_action", None), {}
            raise PayloadTooLarge(
                f"the request body ({length} bytes) is larger than the limit of {config.max_body_bytes} bytes"
            )

    metrics.install(app, headers.MetricsGuard.of(config.metrics))
    headers.install(app)
    return app
