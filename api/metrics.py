"""GET /metrics: Prometheus text format (who may read it: ``[metrics]``, kyso.api.headers).

Requests and latencies by endpoint, signatures by key and level, audit log size.
Each app has its own registry. Under ``kyso serve`` PROMETHEUS_MULTIPROC_DIR is set
(:mod:`kyso.cli.gunicorn`): every worker writes its counters there and any worker answers with
the sum of all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from kyso.api.headers import MetricsGuard
from kyso.api.limits import limit_address

bp = Blueprint("metrics", __name__)


class _AuditSize:
    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        size = self.app.extensions["kyso"].audit.size()
        yield GaugeMetricFamily("kyso_audit_entries", "Entries in the audit log", value=size)


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


def install(app: Flask, guard: MetricsGuard) -> None:
    metrics = Metrics(app)
    app.extensions["kyso_metrics"] = metrics
    app.extensions["kyso.metrics_guard"] = guard

    @app.after_request
    def _count(response):
        endpoint = request.endpoint or "unknown"
        metrics.requests.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        labels = g.get("signature_labels")
        if labels is not None and response.status_code == 200:
            metrics.signatures.labels(*labels).inc()
        return response


@bp.get("/metrics")
def metrics_text() -> Response:
    guard: MetricsGuard = current_app.extensions["kyso.metrics_guard"]
    if guard.networks or guard.token is not None:
        g.action, g.audit = "metrics.read", {}  # a refusal is audited, an answer is not
        limit_address()  # each refusal costs an audit entry: not without end
        guard.check()
        g.action = None
    registry = current_app.extensions["kyso_metrics"].registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the counters of every worker
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_AuditSize(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
