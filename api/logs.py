"""Log lines as JSON objects, one per line, for everything ``kyso serve`` writes.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; a line
written while a request is served also has its ``request_id`` (read from the request's
:class:`kyso.api.context.RequestContext`), and the access log adds ``method``, ``path``
(never the query string), ``status``, ``duration_ms`` and ``remote``. Headers and bodies
are never logged, so API keys, PINs and passphrases cannot reach a log line through them.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

# The attributes of a LogRecord that a line names itself (the rest are a caller's extras).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
MAX_REQUEST_ID = 128


def sane_request_id(offered: str | None) -> bool:
    """Whether a caller's X-Request-Id may be kept: 1 to 128 printable ASCII characters,
    so that it can forge no log line and no header."""
    if not offered or len(offered) > MAX_REQUEST_ID:
        return False
    return all(" " <= c <= "~" for c in offered)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _request_id() -> str | None:
    """The id of the request this thread serves, if it serves one."""
    if "flask" not in sys.modules:  # the front and the gunicorn master never import Flask
        return None
    from flask import has_request_context

    if not has_request_context():
        return None
    from kyso.api import context

    ctx = context.existing()
    return ctx.request_id if ctx is not None else None


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line (tracebacks included, as a string)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id()
        if request_id is not None:
            line["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in line:
                line[name] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO) -> None:
    """Send every log line of this process (and the processes it forks) to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration step at start
    logging.captureWarnings(True)  # Python warnings too, as "py.warnings" lines, not raw text
