"""The Flask application: factory, blueprints, limits, metrics."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from kyso.api.problems import register_error_handlers
from kyso.config import Config, load_config
from kyso.errors import PayloadTooLarge
from kyso.service import Kyso


def create_app(config: Config | None = None, kyso: Kyso | None = None) -> Flask:
    """Build the app around one :class:`Kyso` service (made from ``config`` if not given)."""
    config = config or (kyso.config if kyso else load_config())
    kyso = kyso or Kyso.open(config)
    # pyHanko logs every untrusted or revoked certificate it meets with a full traceback;
    # for a verification service those are answers (in the report), not server errors.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["kyso"] = kyso
    from kyso.audit.checkpoint import start_checkpointer

    # Scheduled audit checkpoints (every N entries / T seconds) in this serving process.
    app.extensions["kyso.checkpointer"] = start_checkpointer(kyso)

    from kyso.api import (
        audit,
        extend,
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
    )

    for module in (sign, extend, verify, sessions, audit, keys):
        app.register_blueprint(module.bp, url_prefix="/api/v1")
    app.register_blueprint(pki.bp, url_prefix="/pki")
    app.register_blueprint(openapi.bp, url_prefix="/api/v1")
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(tsa.bp)
    app.register_blueprint(page.bp)
    register_error_handlers(app)
    limits.install(app.extensions, config.limits.client_per_minute, config.limits.public_per_minute)

    @app.before_request
    def _limit_body() -> None:
        g.started = time.perf_counter()
        length = request.content_length
        if length is not None and length > config.max_body_bytes:
            # Refused from the header alone, before a byte of the body is read.
            raise PayloadTooLarge(
                f"the request body ({length} bytes) is larger than the limit of {config.max_body_bytes} bytes"
            )

    metrics.install(app)
    return app
