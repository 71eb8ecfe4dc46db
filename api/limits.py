"""Request rates: ``429 rate_limited`` with ``Retry-After``.

Three budgets, from ``[limits]`` in the configuration (0 turns one off):

- ``client_per_minute``: the calls of one API client, after it is authenticated (a HIS
  in a retry loop must not starve the others of the signing keys);
- ``public_per_minute``: the calls of one remote address to the verification page and
  the calls that fail authentication, each of which would otherwise cost a validation
  or an audit entry;
- ``tsa_per_minute``: the calls of one remote address to the built-in TSA (off by
  default: other kyso hosts may timestamp every signature there).

Each budget is a token bucket: up to a minute's worth at once, refilled evenly. Buckets
live in each serving process, so with N gunicorn workers a caller may get up to N times
the budget; put a proxy in front for an exact, shared limit. A refused call is counted
in /metrics (status 429) but writes no audit entry: a flood must not write the log.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from flask import current_app, request

from kyso.config import LimitsConfig
from kyso.errors import RateLimited

MAX_KEYS = 10_000  # callers remembered per budget; the least recent is forgotten first


class TokenBuckets:
    """``per_minute`` calls a minute for each key, with bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int, max_keys: int = MAX_KEYS) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one call from ``key``'s bucket: 0 if allowed, else the seconds to wait."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
            self._buckets[key] = (tokens - 1.0 if not wait else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


def limit(budget: str, key: str, who: str) -> None:
    """Raise :class:`RateLimited` if ``key`` has spent its ``budget`` ("client", "public", "tsa")."""
    buckets: TokenBuckets = current_app.extensions[f"kyso.limits.{budget}"]
    wait = buckets.take(key)
    if wait:
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"{who} has made more than {buckets.per_minute} calls a minute; retry in {retry_after} s",
            retry_after=retry_after,
        )


def limit_address(budget: str = "public") -> None:
    """The calling address's ``budget`` ("public" or "tsa")."""
    address = request.remote_addr or "unknown"
    limit(budget, address, f"address {address}")


def install(app_extensions: dict, limits: LimitsConfig) -> None:
    app_extensions["kyso.limits.client"] = TokenBuckets(limits.client_per_minute)
    app_extensions["kyso.limits.public"] = TokenBuckets(limits.public_per_minute)
    app_extensions["kyso.limits.tsa"] = TokenBuckets(limits.tsa_per_minute)
