"""Gunicorn's own log lines (its error log and the access log) as kyso's JSON lines.

The access log names each request by the ``X-Request-Id`` its answer carries (the id
the app's log lines of that request carry too), its method, its path without the query
string, status, duration and client address; never a header or a body.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from kyso.api.logs import JsonFormatter


class JsonLogger(Logger):
    """gunicorn's logger, writing :class:`kyso.api.logs.JsonFormatter` lines."""

    def setup(self, cfg) -> None:  # noqa: ANN001
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:  # noqa: ANN001
        if not self.access_log_enabled:
            return
        headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
        request_id = next((v for k, v in headers if k.lower() == "x-request-id"), None)
        self.access_log.info(
            "%s %s %s",
            req.method,
            req.path,
            resp.status_code,
            extra={
                "request_id": request_id,
                "method": req.method,
                "path": req.path,
                "status": resp.status_code,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "remote": environ.get("REMOTE_ADDR"),
            },
        )



