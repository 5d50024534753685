"""Prometheus metrics at ``/metrics``: the MEG's running figures and the API's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

FIGURES = {
    "cycle_time_ms": ("gauge", "duration of the last control cycle (ms)"),
    "cycles": ("counter", "control cycles run"),
    "feeder_poll_ms": ("gauge", "time to poll every device on the wire once (ms)"),
    "feeder_devices": ("gauge", "devices the DER data feeder is connected to"),
    "readings_ingested": ("counter", "15-minute readings the MDMS stored"),
    "vee_days_validated": ("counter", "meter channel days the automatic VEE validated"),
    "vee_failures": ("counter", "meter channel days the automatic VEE could not validate"),
    "alarms_active": ("gauge", "alarms active now"),
    "commands": ("counter", "commands carried out"),
    "stream_clients": ("gauge", "WebSocket clients connected"),
}


class MegCollector(Collector):
    def __init__(self, figures: Callable[[], dict[str, float]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        values = self.figures()
        for name, (kind, doc) in FIGURES.items():
            if name not in values:
                continue
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(f"openmeg_{name}", doc, value=values[name])


class ApiMetrics:
    """One registry per app (no process-wide state)."""

    def __init__(self, figures: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(MegCollector(figures))
        self.requests = Counter(
            "openmeg_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "openmeg_http_request_seconds",
            "HTTP request duration by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.errors = Counter(
            "openmeg_http_server_errors", "responses with a 5xx status", registry=self.registry
        )
