"""Security headers on every answer, and who may read ``/metrics``.

Every response says what a browser may do with it: no framing (``frame-ancestors 'none'``
and ``X-Frame-Options: DENY``), no content-type guessing (``nosniff``), no referrer sent
on (``no-referrer``: verification page URLs and query strings can name records), and a
Content-Security-Policy. API answers are data, never documents: their policy allows
nothing. The verification page runs its own inline script and style only, allowed by
their SHA-256 (computed from the page as shipped, so an edit of the page needs no edit
here), and may fetch from its own origin only.

``/metrics`` names key aliases and counts requests: ``[metrics] allow`` limits it to
addresses or networks, ``[metrics] token_env``/``token_file`` to callers that present
``Authorization: Bearer <token>``; with both, a caller needs both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request

from kyso.api import context
from kyso.config import MetricsConfig
from kyso.errors import ConfigError, Forbidden, Unauthorized

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_INLINE = {
    "script-src": re.compile(r"<script>(.*?)</script>", re.S),
    "style-src": re.compile(r"<style>(.*?)</style>", re.S),
}


def page_policy(html: str) -> str:
    """The policy of a page whose only code and style are its own inline blocks."""
    parts = ["default-src 'none'"]
    for directive, pattern in _INLINE.items():
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
            for block in pattern.findall(html)
        ]
        allowed = " ".join(hashes) or "'none'"
        parts.append(f"{directive} {allowed}")
    parts += ["connect-src 'self'", "img-src 'self' data:", "base-uri 'none'", "form-action 'none'",
              "frame-ancestors 'none'"]  # fmt: skip
    return "; ".join(parts)


_DEFAULTS = (
    ("Content-Security-Policy", API_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def install(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in _DEFAULTS:
            if name not in headers:  # (Headers.setdefault raises and builds a KeyError per miss)
                headers[name] = value
        # Every answer, problems and 404s included, names its request as the logs do.
        headers[context.REQUEST_ID_HEADER] = context.current().request_id
        return response


@dataclass(frozen=True)
class MetricsGuard:
    """Who may read /metrics: read once at start-up from ``[metrics]``."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    token: bytes | None = None

    @classmethod
    def of(cls, config: MetricsConfig) -> MetricsGuard:
        try:
            networks = tuple(ipaddress.ip_network(a, strict=False) for a in config.allow)
        except ValueError as exc:
            raise ConfigError(f"[metrics] allow: {exc}") from None
        token: str | None = None
        if config.token_env:
            token = os.environ.get(config.token_env)
            if not token:
                raise ConfigError(
                    f"[metrics] token_env: the variable {config.token_env} is not set"
                )
        elif config.token_file:
            try:
                token = Path(config.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"[metrics] token_file: cannot read it: {exc.strerror}") from None
        return cls(networks, token.encode() if token else None)

    def check(self) -> None:
        """Refuse a caller outside ``allow`` (403) or without the token (401)."""
        if self.networks:
            try:
                address = ipaddress.ip_address(request.remote_addr or "")
            except ValueError:
                address = None
            if address is None or not any(address in net for net in self.networks):
                raise Forbidden(f"/metrics is not served to address {request.remote_addr}")
        if self.token is not None:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), self.token
            ):
                raise Unauthorized("/metrics needs 'Authorization: Bearer <metrics token>'")
