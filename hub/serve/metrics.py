"""Prometheus metrics of one app (its own registry): requests, latency, queue depth, batch sizes, models."""
from __future__ import annotations

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The server's metrics, in a registry of its own so that several apps can live in one process."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("hub_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("hub_request_seconds", "Time to answer a request, by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("hub_queue_depth", "Items waiting to be batched, by model", ["model"],
                                 registry=self.registry)
        self.batch_size = Histogram("hub_batch_size", "Items per batch run, by model", ["model"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.loaded = Gauge("hub_model_loaded", "1 for each model loaded and served", ["model"],
                            registry=self.registry)
        self.loaded_count = Gauge("hub_models_loaded", "Models loaded", registry=self.registry)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def model_loaded(self, model_id: str, loaded: bool) -> None:
        if loaded:
            self.loaded.labels(model_id).set(1)
        else:
            self.loaded.remove(model_id)
        self.loaded_count.set(sum(1 for m in self.loaded.collect()[0].samples if m.value))

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
