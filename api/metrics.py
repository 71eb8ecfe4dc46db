"""GET /metrics: Prometheus text format (who may read it: ``[metrics]``, kyso.api.headers).

Requests and latencies by endpoint, signatures by key and level, the health of each key
alias, the audit log's size and the age of its latest checkpoint (read at scrape time),
and the timestamp client's latency and failures by TSA (:mod:`kyso.signer.timestamp.metrics`).
Each app has its own registry. Under ``kyso serve`` PROMETHEUS_MULTIPROC_DIR is set
(:mod:`kyso.cli.gunicorn`): every worker writes its counters there and any worker answers with
the sum of all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from kyso.api import context
from kyso.api.headers import MetricsGuard
from kyso.api.limits import limit_address

bp = Blueprint("metrics", __name__)

# 1 while a key alias answers, 0 once it fails (a /readyz check, a signature refused with
# token_unavailable); the most recent word of any worker is the answer under kyso serve.
KEY_UP = Gauge(
    "kyso_key_up",
    "Whether a key alias is usable (1) or failing (0), as last checked or used",
    ["alias"],
    registry=None,
    multiprocess_mode="mostrecent",
)


def key_health(alias: str, ok: bool) -> None:
    KEY_UP.labels(alias).set(1 if ok else 0)


class _AuditSize:
    """The audit log as the database holds it now, read at each scrape (any worker's view
    is the whole log's)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        audit = self.app.extensions["kyso"].audit
        yield GaugeMetricFamily("kyso_audit_entries", "Entries in the audit log", value=audit.size())
        mark = audit.latest_checkpoint_mark()
        if mark is not None:  # no checkpoint yet: no age to tell
            tree_size, created = mark
            age = (datetime.now(UTC) - created).total_seconds()
            yield GaugeMetricFamily(
                "kyso_audit_checkpoint_age_seconds", "Seconds since the latest checkpoint was made", value=age
            )
            yield GaugeMetricFamily(
                "kyso_audit_checkpoint_entries", "Entries the latest checkpoint covers", value=tree_size
            )


class Metrics:
    def __init__(self, app: Flask):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kyso_http_requests", "HTTP requests", ["method", "endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "kyso_http_request_seconds",
            "HTTP request latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.signatures = Counter(
            "kyso_signatures", "Signatures made", ["kind", "key", "level"], registry=self.registry
        )
        self.registry.register(_AuditSize(app))
        from kyso.signer.timestamp import metrics as tsa

        for metric in (KEY_UP, tsa.TSA_SECONDS, tsa.TSA_FAILURES):
            self.registry.register(metric)


def install(app: Flask, guard: MetricsGuard) -> None:
    metrics = Metrics(app)
    app.extensions["kyso_metrics"] = metrics
    app.extensions["kyso.metrics_guard"] = guard

    @app.after_request
    def _count(response):
        endpoint = request.endpoint or "unknown"
        metrics.requests.labels(request.method, endpoint, str(response.status_code)).inc()
        ctx = context.current()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - ctx.started)
        labels = ctx.signature_labels
        if labels is not None and response.status_code == 200 and not ctx.replayed:
            metrics.signatures.labels(*labels).inc()
            key_health(labels[1], True)
        elif labels is not None and ctx.error_code == "token_unavailable":
            key_health(labels[1], False)
        return response


@bp.get("/metrics")
def metrics_text() -> Response:
    guard: MetricsGuard = current_app.extensions["kyso.metrics_guard"]
    if guard.networks or guard.token is not None:
        ctx = context.current()
        ctx.action = "metrics.read"  # a refusal is audited, an answer is not
        limit_address()  # each refusal costs an audit entry: not without end
        guard.check()
        ctx.action = None
    registry = current_app.extensions["kyso_metrics"].registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the counters of every worker
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_AuditSize(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
