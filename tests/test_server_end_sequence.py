"""The session end sequence (server/ending.py) without sockets: phases, the first outcome wins, what is sent."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ltx2stream import protocol as P
from ltx2stream.errors import SessionError
from ltx2stream.protocol import decode
from ltx2stream.server.ending import NEXT_PHASES, Checkpoint, EndPhase, EndReason
from ltx2stream.server.job import Job, JobSpec
from ltx2stream.server.live import LiveSession, Services
from ltx2stream.server.metrics import ServerMetrics
from ltx2stream.server.outbox import CloseRequest, Outbox
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.session.api import SessionSettings
from ltx2stream.session.state_machine import SessionState, SteeringSchedule

SETTINGS = SessionSettings("toy", 64, 64, 8.0, 9)


class FakeStore:
    """Records saves (the sequence only calls ``save``)."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, int, bytes]] = []

    def save(self, session_id: str, index: int, state: bytes) -> None:
        self.saved.append((session_id, index, state))


class FakeServer:
    """The EndingServer side: the worker is not busy with the job; ``forget`` is recorded."""

    shutdown_timeout_s = 1.0

    def __init__(self) -> None:
        self.detached: list[str] = []
        self.forgotten: list[str] = []

    def detach(self, session: LiveSession) -> bool:
        self.detached.append(session.session_id)
        return False

    def forget(self, session: LiveSession) -> None:
        self.forgotten.append(session.session_id)


class FakeReporter:
    """The ErrorReporter side: queues the error message on the session's outbox like the connection does."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def send_error(
        self,
        error: BaseException,
        *,
        accepted: bool,
        request_id: int | None = None,
        ends_session: bool = False,
    ) -> P.Error:
        err = P.error_from(error, accepted=accepted, request_id=request_id)
        err = dataclasses.replace(err, fatal=err.fatal or ends_session)
        self.outbox.put(err)
        return err


def _session(in_flight: int = 0, checkpoint: Checkpoint | None = None) -> tuple[LiveSession, FakeStore]:
    job = Job(JobSpec("abcdEFGH1234", SETTINGS), SteeringSchedule("p", 0, lookahead=1), events=None)  # type: ignore[arg-type]
    for _ in range(in_flight):
        job.schedule.start_next()
    store = FakeStore()
    services = Services(store, ServerMetrics(), P.ProtocolLimits())  # type: ignore[arg-type]
    outbox = Outbox(1 << 20, lambda _on: None)
    return LiveSession(job, Scheduler(1, 0), outbox, services, checkpoint), store


async def _drain(outbox: Outbox) -> list[Any]:
    out: list[Any] = []
    while True:
        item = await outbox.get()
        if isinstance(item, CloseRequest):
            return [*out, item]
        out.append(decode(item.data, limits=P.ProtocolLimits.for_client()))
        outbox.sent(item)


def test_phase_table_only_moves_forward():
    """Every step of the phase table goes to a later phase; ENDED is terminal; a non-step is refused."""
    for phase, nexts in NEXT_PHASES.items():
        assert all(n > phase for n in nexts), phase
    assert NEXT_PHASES[EndPhase.ENDED] == frozenset()

    async def main() -> None:
        session, _ = _session()
        with pytest.raises(AssertionError, match="LIVE -> ENDED"):
            session.end._enter(EndPhase.ENDED)

    asyncio.run(main())


def test_first_request_wins_and_products_flow_until_detaching():
    """A second request does not replace the outcome; worker products are accepted until the sequence runs."""

    async def main() -> None:
        session, _ = _session()
        end = session.end
        error = SessionError("boom", code="server.internal")
        end.request(EndReason.FAILED, error)
        end.request(EndReason.GONE)
        assert end.phase == EndPhase.REQUESTED and end.requested.is_set() and end.accepting
        assert (
            end.outcome is not None and end.outcome.reason == EndReason.FAILED and end.outcome.error is error
        )

    asyncio.run(main())


def test_stop_drains_started_segments_and_the_audio_tail_before_stopped():
    """After stop: DRAINING_TAIL until the tail is queued, DRAINING until nothing is in flight, then stopped."""

    async def main() -> None:
        session, _ = _session(in_flight=1)
        end = session.end
        end.drain(tail_coming=True)
        assert end.phase == EndPhase.DRAINING_TAIL and end.outcome is None
        end.tail_queued()
        assert end.phase == EndPhase.DRAINING and end.outcome is None  # one segment still in flight
        session.job.delivered(0)
        end.check_drained()
        assert end.phase == EndPhase.REQUESTED and end.outcome == end.outcome.__class__(EndReason.STOPPED)

        idle, _ = _session(in_flight=0)
        idle.end.drain(tail_coming=False)  # nothing started: stopped at once
        assert idle.end.outcome is not None and idle.end.outcome.reason == EndReason.STOPPED

        failing, _ = _session(in_flight=1)
        failing.end.drain(tail_coming=True)
        failing.end.request(EndReason.GONE)  # the client leaves while draining: gone wins over a later stop
        failing.end.tail_queued()
        assert failing.end.outcome is not None and failing.end.outcome.reason == EndReason.GONE

    asyncio.run(main())


def test_failed_run_checkpoints_then_sends_error_state_final_and_closes():
    """failed: job released, the unstored checkpoint saved, then error, state failed, final, close 1011."""

    async def main() -> None:
        session, store = _session(checkpoint=Checkpoint(3, b"state-after-3"))
        server, reporter = FakeServer(), FakeReporter(session.outbox)
        session.end.request(EndReason.FAILED, RuntimeError("secret"))
        await session.end.run(server, reporter)
        assert (
            session.end.phase == EndPhase.ENDED and session.end.ended.is_set() and not session.end.accepting
        )
        assert server.detached == server.forgotten == [session.session_id]
        assert session.job.cancel.cancelled and session.released.is_set()
        assert store.saved == [(session.session_id, 3, b"state-after-3")]
        assert session.checkpoint == Checkpoint(3, b"state-after-3", stored=True)
        sent = await _drain(session.outbox)
        assert [m.type for m in sent[:-1]] == ["error", "state", "final"]
        assert sent[1].state == SessionState.FAILED.value
        assert (sent[2].reason, sent[2].error_code, sent[2].resumable_session_id) == (
            "failed",
            "server.internal",
            session.session_id,
        )
        assert sent[-1] == CloseRequest(1011, "server.internal")
        await session.end.run(server, reporter)  # a second run only waits
        assert server.detached == [session.session_id]

    asyncio.run(main())


def test_stopped_run_keeps_the_job_and_does_not_store_twice():
    """stopped: no cancel, a checkpoint already stored is not saved again, final stopped and close 1000."""

    async def main() -> None:
        session, store = _session(checkpoint=Checkpoint(1, b"s1", stored=True))
        session.machine.transition(SessionState.STARTING)
        session.machine.transition(SessionState.RUNNING)
        session.end.drain(tail_coming=False)
        await session.end.run(FakeServer(), FakeReporter(session.outbox))
        assert not session.job.cancel.cancelled and store.saved == []
        sent = await _drain(session.outbox)
        assert [(m.type, getattr(m, "state", None)) for m in sent[:-1]] == [
            ("state", "stopping"),
            ("state", "closed"),
            ("final", None),
        ]
        assert sent[2].reason == "stopped" and sent[2].resumable_session_id == session.session_id
        assert sent[-1] == CloseRequest(1000, "stopped")

    asyncio.run(main())


def test_the_loop_sends_the_progress_it_is_posted_unless_stale():
    """The session sends each progress step the worker posted (the worker's side throttles: the test below), as
    a droppable message, except a step of a segment already done (a throttled step posted late) and anything
    after the session stopped accepting."""

    async def main() -> list[tuple[int, str, int]]:
        session, _ = _session()
        sent: list[tuple[int, str, int]] = []

        def send(msg: P.Message, *, droppable: bool = False) -> None:
            assert isinstance(msg, P.Progress) and droppable
            sent.append((msg.segment, msg.stage, msg.step))

        session.send = send  # type: ignore[method-assign]
        for step in (1, 4, 8):
            session.on_progress(0, "stage1", step, 8)
        session.on_progress(0, "stage2", 9, 3)  # clamped to the stage's total
        session._done_through = 0
        session.on_progress(0, "stage2", 2, 3)  # segment 0 is done: stale
        session.on_progress(1, "nonsense", 1, 3)  # not a stage
        session.on_progress(1, "stage1", 1, 8)
        return sent

    assert asyncio.run(main()) == [
        (0, "stage1", 1), (0, "stage1", 4), (0, "stage1", 8), (0, "stage2", 3), (1, "stage1", 1)
    ]  # fmt: skip


def test_progress_is_throttled_on_the_worker_side_before_it_wakes_the_loop():
    """``PostedEvents(progress_interval_s)``: a fast stage's steps do not each post to the event loop; the
    first and last step of each stage are posted at once, the newest step in between when the interval is over
    (one post arms its timer), and a held step that a step posted at once superseded is dropped."""
    from ltx2stream.server.job import PostedEvents

    got: list[tuple[int, str, int]] = []

    class Target:
        def on_progress(self, index: int, stage: str, step: int, total: int) -> None:
            got.append((index, stage, step))

    class Events(PostedEvents):
        def target(self) -> object:
            return Target()

    async def main(interval: float) -> int:
        loop = asyncio.get_running_loop()
        events = Events(loop, interval)
        posts = 0
        real = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:  # the events' posts (not asyncio.to_thread's own)
            nonlocal posts
            posts += getattr(args[0], "__name__", "") in ("on_progress", "call_later")
            return real(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

        def stage1() -> None:  # on a worker thread
            for step in range(1, 8):
                events.progress(0, "stage1", step, 8)

        def rest() -> None:
            events.progress(0, "stage1", 8, 8)  # the last step: at once
            for step in (1, 2, 3):  # 1 at once, 2 held, 3 (the last) at once: 2 is dropped
                events.progress(0, "stage2", step, 3)

        await asyncio.to_thread(stage1)
        await asyncio.sleep(interval + 0.1)  # the newest held step (7) is posted by the timer
        await asyncio.to_thread(rest)
        await asyncio.sleep(interval + 0.1)
        return posts

    posts = asyncio.run(main(0.2))
    assert got == [(0, "stage1", 1), (0, "stage1", 7), (0, "stage1", 8), (0, "stage2", 1), (0, "stage2", 3)]
    assert posts == 6  # 3 + 1 (timer) for stage 1, 2 + 1 (timer) for stage 2, instead of 11
    got.clear()
    assert asyncio.run(main(0.0)) == 11 and len(got) == 11
