"""Server parts without sockets: scheduler admission and round-robin, the outbox, metrics text, auth,
config."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.datastructures import Headers

from ltx2stream import protocol as P
from ltx2stream.errors import ConfigError, SessionError
from ltx2stream.server.auth import AccessDenied, check_token, presented_tokens
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.job import HOLD_CLIENT, OPEN, Job, JobSpec
from ltx2stream.server.metrics import Registry, ServerMetrics
from ltx2stream.server.outbox import CloseRequest, Outbox
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.session.api import SessionSettings
from ltx2stream.session.state_machine import SteeringSchedule

SETTINGS = SessionSettings("toy", 64, 64, 8.0, 9)


class _Opened:
    """Stands in for a generator: only ``take_turn``'s ``generator is None`` check looks at it."""

    next_index = 0


def _job(name: str, *, opened: bool = True, lookahead: int = 1) -> Job:
    job = Job(
        JobSpec(f"session-{name}", SETTINGS), SteeringSchedule(name, 0, lookahead=lookahead), events=None
    )
    if opened:
        job.generator = _Opened()  # type: ignore[assignment]
    return job


def test_scheduler_admits_up_to_cap_queues_fifo_and_reports_positions():
    """Beyond the cap jobs queue in order; removing an active job admits the head and shifts positions."""
    s = Scheduler(cap=2, max_queue=2)
    a, b, c, d = (_job(n) for n in "abcd")
    assert [s.add(j) for j in (a, b, c, d)] == [None, None, 0, 1]
    with pytest.raises(SessionError) as info:
        s.add(_job("e"))
    assert info.value.code == "server.queue_full"
    in_use, admission = s.remove(a)
    assert not in_use and admission.admitted == (c,) and admission.positions == ((d, 0),)
    _, admission = s.remove(d)
    assert admission.admitted == () and admission.positions == () and s.counts() == (2, 0)


def test_scheduler_round_robin_skips_held_jobs_and_respects_lookahead():
    """Turns alternate between runnable jobs; a paused job is skipped; lookahead caps undelivered segments."""
    s = Scheduler(cap=3, max_queue=0)
    a, b, fresh = _job("a"), _job("b", lookahead=0), _job("c", opened=False)
    for j in (a, b, fresh):
        s.add(j)
    order = []
    for _ in range(4):
        job, turn = s.next_turn(timeout=0.1)
        order.append((job.session_id[-1], turn if turn == OPEN else turn.index))
        if turn == OPEN:  # what the worker does: open the generator; this one is then paused by its client
            job.generator = _Opened()  # type: ignore[assignment]
            job.set_hold(HOLD_CLIENT, True)
        s.finish_turn(job)
    assert order == [("a", 0), ("b", 0), ("c", OPEN), ("a", 1)]
    assert s.next_turn(timeout=0.05) is None  # a: 2 undelivered (lookahead 1), b: 1 (lookahead 0), c: paused
    b.delivered(0)
    job, turn = s.next_turn(timeout=0.1)
    assert job is b and turn.index == 1
    s.finish_turn(job)
    a.delivered(0)
    a.set_hold(HOLD_CLIENT, True)
    assert s.next_turn(timeout=0.05) is None
    a.set_hold(HOLD_CLIENT, False)
    assert s.next_turn(timeout=0.1)[0] is a


def test_scheduler_wakes_the_worker_and_reports_removal_during_a_turn():
    """A blocked next_turn wakes on add; removing the job of the running turn is reported to finish_turn."""
    s = Scheduler(cap=1, max_queue=0)
    got = []
    worker = threading.Thread(target=lambda: got.append(s.next_turn(timeout=5)))
    worker.start()
    job = _job("a")
    s.add(job)
    worker.join(5)
    assert got and got[0][0] is job and s.current is job
    in_use, _ = s.remove(job)
    assert in_use and s.finish_turn(job) is True and s.current is None
    s.stop()
    assert s.next_turn(timeout=5) is None


def test_outbox_counts_bytes_signals_pressure_and_drops_progress_when_full():
    """Pressure turns on above the high-water mark and off below half; droppable messages are dropped while
    over it; the close request comes after everything queued."""

    async def main() -> None:
        events: list[bool] = []
        box = Outbox(high_water=200, on_pressure=events.append)
        big = P.Media(segment=0, seq=0, t0=0.0, duration=1.0, data=b"x" * 150)
        assert box.put(big) and box.put(big) and events == [True]
        assert not box.put(P.Progress(segment=0, stage="stage1", step=1, total=2), droppable=True)
        box.close(1000, "bye")
        assert not box.put(big)
        first = await box.get()
        box.sent(first)
        assert events == [True] and box.queued_bytes > 100
        box.sent(await box.get())
        assert events == [True, False] and box.queued_bytes == 0
        assert await box.get() == CloseRequest(1000, "bye")
        assert box.peak_bytes == 2 * len(P.encode(big)) and box.dropped == 2

    asyncio.run(main())


def _families(text: str) -> dict[str, Any]:
    """Exposition text -> {name as in ``# TYPE``: family}, through prometheus_client's parser."""
    return {
        f.name + ("_total" if f.type == "counter" else ""): f for f in text_string_to_metric_families(text)
    }


def test_metrics_render_prometheus_text():
    """Counters, labelled gauges and histograms render in the text format: prometheus_client's parser reads
    back every value, bucket and escaped label; wrong use raises; each registry is its own."""
    r = Registry()
    c = r.counter("things_total", "things")
    g = r.gauge("level", "a level", ("kind",))
    h = r.histogram("seconds", "durations", ("stage",), buckets=(0.1, 1.0))
    c.inc(2)
    g.set(3.5, kind='we"ird')
    h.observe(0.5, stage="x")
    h.observe(5, stage="x")
    text = r.render()
    assert "# TYPE ltx2stream_things_total counter\n" in text and "_created" not in text
    families = _families(text)
    assert {n: f.type for n, f in families.items()} == {
        "ltx2stream_things_total": "counter",
        "ltx2stream_level": "gauge",
        "ltx2stream_seconds": "histogram",
    }
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples == {
        ("ltx2stream_things_total", ()): 2,
        ("ltx2stream_level", (("kind", 'we"ird'),)): 3.5,
        ("ltx2stream_seconds_bucket", (("le", "0.1"), ("stage", "x"))): 0,
        ("ltx2stream_seconds_bucket", (("le", "1.0"), ("stage", "x"))): 1,
        ("ltx2stream_seconds_bucket", (("le", "+Inf"), ("stage", "x"))): 2,
        ("ltx2stream_seconds_sum", (("stage", "x"),)): 5.5,
        ("ltx2stream_seconds_count", (("stage", "x"),)): 2,
    }
    assert (c.value(), g.value(kind='we"ird'), h.count(stage="x"), h.count(stage="y")) == (2, 3.5, 2, 0)
    with pytest.raises(ValueError):
        c.inc(-1)
    with pytest.raises(ValueError):
        g.set(1.0)
    with pytest.raises(ValueError):
        h.observe(1.0, stage="x", other="y")
    other = Registry()
    other.counter("things_total", "things").inc()  # same name, another server: no clash, no shared value
    assert c.value() == 2 and "ltx2stream_things_total 1.0" in other.render()


# What /metrics exposed before prometheus_client (the hand-written exposition): name in # TYPE -> type, labels.
EXPOSED = {
    "ltx2stream_ready": ("gauge", ()),
    "ltx2stream_connections": ("gauge", ()),
    "ltx2stream_sessions": ("gauge", ("state",)),
    "ltx2stream_queue_length": ("gauge", ()),
    "ltx2stream_sessions_backpressured": ("gauge", ()),
    "ltx2stream_segments_total": ("counter", ()),
    "ltx2stream_segments_cancelled_total": ("counter", ()),
    "ltx2stream_segment_stage_seconds": ("histogram", ("stage",)),
    "ltx2stream_media_seconds_total": ("counter", ()),
    "ltx2stream_generate_seconds_total": ("counter", ()),
    "ltx2stream_realtime_factor": ("gauge", ()),
    "ltx2stream_bytes_sent_total": ("counter", ()),
    "ltx2stream_errors_total": ("counter", ("code",)),
    "ltx2stream_states_saved_total": ("counter", ()),
}


def test_server_metrics_keep_their_names_types_and_labels():
    """Every metric the server exposes keeps the name, type and labels of the hand-written exposition, and its
    samples carry exactly the names Prometheus derives from them (no ``_created`` series)."""
    m = ServerMetrics()
    m.sessions.set(1, state="active")
    m.stage_seconds.observe(0.2, stage="encode")
    m.errors.inc(code="protocol.malformed")
    families = _families(m.render())
    exposed = {
        name: (f.type, tuple(sorted({k for s in f.samples for k in s.labels} - {"le"})))
        for name, f in families.items()
    }
    assert exposed == EXPOSED
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    for f in families.values():
        allowed = {f.name + suffix for suffix in suffixes[f.type]}
        assert {s.name for s in f.samples} <= allowed, f.name


def test_tokens_from_header_query_and_subprotocol():
    """All three ways present a token; a wrong one is refused without echoing it."""
    headers = Headers([("Authorization", "Bearer h"), ("Sec-WebSocket-Protocol", "ltx2stream, bearer.s")])
    assert presented_tokens("/ws?token=q", headers) == ["h", "q", "s"]
    for token in ("h", "q", "s"):
        check_token("/ws?token=q", headers, token)
    check_token("/ws", Headers(), None)
    with pytest.raises(AccessDenied) as info:
        check_token("/ws?token=guess-123", Headers(), "right-456")
    assert info.value.code == "auth.failed" and "guess-123" not in info.value.message
    assert "right-456" not in info.value.message


def test_server_config_validation():
    """Out-of-range options and unusable tokens are ConfigErrors naming the option."""
    for bad in (
        {"max_active_per_worker": 0},
        {"port": 70000},
        {"token": "has space"},
        {"encode_threads": 0},
        {"limits": P.ProtocolLimits.for_client()},
    ):
        with pytest.raises(ConfigError) as info:
            ServerConfig(**bad)
        assert next(iter(bad)).split("_")[0] in info.value.message or "limits" in info.value.message
