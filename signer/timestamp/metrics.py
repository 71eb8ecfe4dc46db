"""What the timestamp client measures, per TSA: request latency and failures.

Imported by :mod:`kyso.signer.timestamp.client` at first use, not at import: under
``kyso serve`` prometheus_client must first be imported after PROMETHEUS_MULTIPROC_DIR
is set (in the workers), or it keeps its counts in one process only. The metrics belong
to no registry; :mod:`kyso.api.metrics` adds them to the app's (one process) or reads
every worker's files (``kyso serve``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from prometheus_client import Counter, Histogram

TSA_SECONDS = Histogram(
    "kyso_tsa_request_seconds",
    "Time a timestamp authority took to answer (or to fail), by TSA",
    ["tsa"],
    registry=None,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TSA_FAILURES = Counter(
    "kyso_tsa_failures",
    "Timestamp requests a TSA failed (no answer, a refusal, or a token not for the request)",
    ["tsa"],
    registry=None,
)


def tsa_label(name: str) -> str:
    """A TSA's name for a label: its URL without any user or password in it."""
    parts = urlsplit(name)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return name


def observe(name: str, seconds: float, failed: bool) -> None:
    """Count one timestamp request to the TSA ``name``."""
    label = tsa_label(name)
    TSA_SECONDS.labels(label).observe(seconds)
    if failed:
        TSA_FAILURES.labels(label).inc()
