"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

Three kinds: counters, gauges and histograms, each with optional labels. Updates take one lock, so worker and
encoder threads may update them directly; ``render()`` is what ``/metrics`` returns.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeVar

LabelValues = tuple[str, ...]
M = TypeVar("M", bound="_Metric")
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric(ABC):
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str], lock: threading.Lock) -> None:
        self.name, self.help, self.labels, self._lock = name, help_text, tuple(labels), lock
        self._values: dict[LabelValues, float] = {} if self.labels else {(): 0.0}

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise ValueError(f"metric {self.name} takes labels {self.labels}; got {sorted(labels)}")
        return tuple(str(labels[k]) for k in self.labels)

    def _series(self, key: LabelValues, suffix: str = "", extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = list(zip(self.labels, key, strict=True)) + list(extra)
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
        return f"{self.name}{suffix}" + (f"{{{inner}}}" if inner else "")

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    @abstractmethod
    def lines(self) -> list[str]:
        """The exposition lines of this metric (called under the registry lock)."""


class Counter(_Metric):
    """A value that only goes up."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name} cannot decrease (amount {amount})")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def lines(self) -> list[str]:
        return self.header() + [f"{self._series(k)} {_number(v)}" for k, v in sorted(self._values.items())]


class Gauge(Counter):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Histogram(_Metric):
    """Observations counted into cumulative buckets, plus their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str],
        lock: threading.Lock,
        buckets: Sequence[float] = STAGE_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels, lock)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self._data: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * len(self.buckets), [0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            data = self._data.get(self._key(labels))
            return data[0][-1] if data else 0

    def lines(self) -> list[str]:
        out = self.header()
        for key, (counts, total) in sorted(self._data.items()):
            for bound, n in zip(self.buckets, counts, strict=True):
                out.append(f"{self._series(key, '_bucket', (('le', _number(bound)),))} {n}")
            out.append(f"{self._series(key, '_sum')} {_number(total[0])}")
            out.append(f"{self._series(key, '_count')} {counts[-1]}")
        return out


class Registry:
    """The metrics of one server; names are prefixed ``ltx2stream_``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: list[_Metric] = []

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(f"ltx2stream_{name}", help_text, labels, self._lock))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(f"ltx2stream_{name}", help_text, labels, self._lock))

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = STAGE_BUCKETS
    ) -> Histogram:
        return self._add(Histogram(f"ltx2stream_{name}", help_text, labels, self._lock, buckets))

    def _add(self, metric: M) -> M:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        with self._lock:
            return "\n".join(line for m in self._metrics for line in m.lines()) + "\n"


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
