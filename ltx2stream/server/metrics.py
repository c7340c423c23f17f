"""The server's Prometheus metrics, through ``prometheus_client`` (text exposition format 0.0.4).

Each server has its own ``CollectorRegistry`` (two servers in one process never share a series). The thin
wrappers below keep the call sites short (``metrics.errors.inc(code=...)``) and read values back for tests;
``prometheus_client`` does the locking, so worker and encoder threads update metrics directly.
``render()`` is what ``/metrics`` returns. OpenMetrics ``_created`` series are left out of the exposition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

import prometheus_client as prom
from prometheus_client.registry import Collector, CollectorRegistry

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
PREFIX = "ltx2stream_"


M = TypeVar("M", prom.Counter, prom.Gauge, prom.Histogram)


class _Metric(Generic[M]):
    def __init__(self, metric: M, name: str, labels: Sequence[str], registry: CollectorRegistry) -> None:
        self._metric: M = metric
        self.name, self.labels, self._registry = name, tuple(labels), registry

    def _check(self, labels: dict[str, str]) -> None:
        if set(labels) != set(self.labels):
            raise ValueError(f"metric {self.name} takes labels {self.labels}; got {sorted(labels)}")

    def _child(self, labels: dict[str, str]) -> M:
        self._check(labels)
        if not labels:
            return self._metric
        child: M = self._metric.labels(**labels)
        return child

    def _sample(self, sample: str, labels: dict[str, str]) -> float:
        self._check(labels)
        value = self._registry.get_sample_value(sample, labels)
        return 0.0 if value is None else value


class Counter(_Metric[prom.Counter]):
    """A value that only goes up (``prometheus_client`` refuses a negative amount with ``ValueError``)."""

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def value(self, **labels: str) -> float:
        return self._sample(self.name if self.name.endswith("_total") else self.name + "_total", labels)


class Gauge(_Metric[prom.Gauge]):
    """A value that goes up and down."""

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def value(self, **labels: str) -> float:
        return self._sample(self.name, labels)


class Histogram(_Metric[prom.Histogram]):
    """Observations counted into cumulative buckets, plus their sum and count."""

    def observe(self, value: float, **labels: str) -> None:
        self._child(labels).observe(value)

    def count(self, **labels: str) -> int:
        return int(self._sample(self.name + "_count", labels))


class _WithoutCreated(Collector):
    """The registry's metrics without their ``_created`` samples (the exposition stays as it always was)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[prom.Metric]:
        for metric in self._registry.collect():
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class Registry:
    """The metrics of one server, in their own ``CollectorRegistry``; names are prefixed ``ltx2stream_``."""

    def __init__(self) -> None:
        self.collector_registry = CollectorRegistry(auto_describe=True)
        self._exposed = _WithoutCreated(self.collector_registry)

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        full = PREFIX + name
        return Counter(
            prom.Counter(full, help_text, labels, registry=self.collector_registry),
            full,
            labels,
            self.collector_registry,
        )

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        full = PREFIX + name
        return Gauge(
            prom.Gauge(full, help_text, labels, registry=self.collector_registry),
            full,
            labels,
            self.collector_registry,
        )

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = STAGE_BUCKETS
    ) -> Histogram:
        full = PREFIX + name
        metric = prom.Histogram(full, help_text, labels, registry=self.collector_registry, buckets=buckets)
        return Histogram(metric, full, labels, self.collector_registry)

    def render(self) -> str:
        return prom.generate_latest(self._exposed).decode("utf-8")


class ServerMetrics:
    """The server's metrics, by name."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.ready = r.gauge("ready", "1 once every worker loaded and warmed its model")
        self.connections = r.gauge("connections", "open WebSocket connections")
        self.sessions = r.gauge("sessions", "sessions by scheduling state", ("state",))
        self.queue_length = r.gauge("queue_length", "sessions waiting for a worker slot")
        self.backpressured = r.gauge(
            "sessions_backpressured", "sessions held because their client reads slowly"
        )
        self.segments = r.counter("segments_total", "segments generated, encoded and sent")
        self.cancelled = r.counter("segments_cancelled_total", "segments cancelled mid-generation")
        self.stage_seconds = r.histogram(
            "segment_stage_seconds", "wall seconds per segment stage", ("stage",)
        )
        self.media_seconds = r.counter("media_seconds_total", "seconds of media delivered")
        self.generate_seconds = r.counter(
            "generate_seconds_total", "worker seconds spent generating segments"
        )
        self.realtime_factor = r.gauge("realtime_factor", "media seconds per generation second, last segment")
        self.bytes_sent = r.counter("bytes_sent_total", "bytes of protocol messages sent")
        self.errors = r.counter("errors_total", "error messages sent, by code", ("code",))
        self.states_saved = r.counter("states_saved_total", "continuation states written to the store")

    def render(self) -> str:
        return self.registry.render()
