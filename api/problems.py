"""Errors as RFC 9457 problem+json, in one place, and their audit entries."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from kyso.api import context
from kyso.errors import (
    InvalidRequest,
    KysoError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)


def problem_response(error: KysoError) -> Response:
    body = json.dumps(error.problem(), ensure_ascii=False)
    resp = Response(body, status=error.status, mimetype="application/problem+json")
    if error.code == "rate_limited" and "retry_after" in error.extra:
        resp.headers["Retry-After"] = str(error.extra["retry_after"])
    if error.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="kyso"'
    return resp


def _from_http(exc: HTTPException) -> KysoError:
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.extensions["kyso"].config.max_body_bytes
        return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if exc.code == 404:
        return NotFound(f"no such resource: {request.path}")
    if exc.code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    if exc.code == 415:
        return UnsupportedMediaType(exc.description or "unsupported media type")
    return InvalidRequest(exc.description or "invalid request")


def audit_failure(error: KysoError) -> None:
    """Record a refused or failed API call, once, with what the view knew so far
    (the request context: action, client, audit fields)."""
    ctx = context.current()
    if ctx.action is None or ctx.failure_recorded or error.audited:
        return
    if error.code == "rate_limited":
        return  # a flood must not write the log (kyso.api.limits); /metrics counts them
    ctx.failure_recorded = True
    kyso = current_app.extensions["kyso"]
    try:
        kyso.record_failure(ctx.actor, ctx.action, error, **asdict(ctx.audit))
    except Exception:  # the answer to the caller must not be lost because logging failed
        log.exception("could not record the failure of %s in the audit log", ctx.action)


def _answer(error: KysoError) -> Response:
    """The problem answer to a failed call, audited and named in its context (for /metrics)."""
    context.current().error_code = error.code
    audit_failure(error)
    return problem_response(error)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(KysoError)
    def _kyso_error(exc: KysoError) -> Response:
        return _answer(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _answer(_from_http(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _answer(KysoError("an unexpected error occurred; it has been logged"))
