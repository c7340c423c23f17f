"""How a session ends, whatever the reason: one object, :class:`SessionEnd`, owns the whole sequence.

Phases (:class:`EndPhase`, each entered once, in this order, along :data:`NEXT_PHASES`)::

    LIVE ─┬─► DRAINING_TAIL ─► DRAINING ─┐      after ``stop``: started segments (and the encoder's audio
          ├─► DRAINING ──────────────────┤      tail) are still delivered; then the outcome ``stopped``
          └──────────────────────────────┴─► REQUESTED ─► DETACHING ─► CHECKPOINTING ─► NOTIFYING ─► ENDED

Outcomes (:class:`EndReason`; the first request wins):

* ``stopped``  – the client sent ``stop`` and every started segment was delivered → ``final`` ``stopped``,
  1000.
* ``shutdown`` – the server is going down: the segment in flight is cancelled → ``error`` ``server.shutdown``,
  ``final`` ``shutdown`` with the resumable id, close 1001.
* ``failed``   – a fatal error (protocol, generator, encoder, slow client) → ``error``, ``final`` ``failed``,
  close with the code's close code (see the error table).
* ``gone``     – the client disconnected → nothing to send.

In every case the in-flight segment is cancelled (except after ``stop``, where none is in flight), the worker
is free within one denoising step, and the state after the last *delivered* segment goes to the store, so a
resume by id continues exactly after what the client received. From DETACHING on, worker products that still
arrive are dropped (:attr:`SessionEnd.accepting`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Protocol

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.codes import error_spec
from ltx2stream.errors import LTX2StreamError, SessionError
from ltx2stream.server.messages import state_message
from ltx2stream.session.state_machine import SessionState

if TYPE_CHECKING:
    from ltx2stream.server.live import LiveSession

logger = logging.getLogger(__name__)


class EndReason(StrEnum):
    """Why a session ends (the value is the ``final.reason`` sent, except ``gone``, which sends nothing)."""

    STOPPED = "stopped"
    FAILED = "failed"
    SHUTDOWN = "shutdown"
    GONE = "gone"


@dataclass(frozen=True)
class Outcome:
    """The decided end of a session: its reason and, for ``failed``, the error reported to the client."""

    reason: EndReason
    error: BaseException | None = None


class EndPhase(IntEnum):
    """Where a session is on its way to the end (ordered: a later phase never goes back)."""

    LIVE = 0  # running; worker products are delivered
    DRAINING_TAIL = 1  # after stop: started segments and the encoder's audio tail are still to come
    DRAINING = 2  # after stop: started segments are still to come (the tail is queued, or there is none)
    REQUESTED = 3  # an outcome is decided; the connection runs the end sequence next
    DETACHING = 4  # cancelling and releasing the worker's job; worker products arriving now are dropped
    CHECKPOINTING = 5  # storing the state after the last delivered segment
    NOTIFYING = 6  # error / final / close queued for the client (nothing for ``gone``)
    ENDED = 7  # done; the session is no longer live


NEXT_PHASES: dict[EndPhase, frozenset[EndPhase]] = {
    EndPhase.LIVE: frozenset({EndPhase.DRAINING_TAIL, EndPhase.DRAINING, EndPhase.REQUESTED}),
    EndPhase.DRAINING_TAIL: frozenset({EndPhase.DRAINING, EndPhase.REQUESTED}),
    EndPhase.DRAINING: frozenset({EndPhase.REQUESTED}),
    EndPhase.REQUESTED: frozenset({EndPhase.DETACHING}),
    EndPhase.DETACHING: frozenset({EndPhase.CHECKPOINTING}),
    EndPhase.CHECKPOINTING: frozenset({EndPhase.NOTIFYING}),
    EndPhase.NOTIFYING: frozenset({EndPhase.ENDED}),
    EndPhase.ENDED: frozenset(),
}


@dataclass(frozen=True)
class Checkpoint:
    """The continuation state after the last delivered segment, and whether the store already holds it."""

    segment_index: int
    state: bytes
    stored: bool = False  # already in the store under this session's id


class EndingServer(Protocol):
    """What the end sequence needs from the server (``StreamingServer`` implements it)."""

    @property
    def shutdown_timeout_s(self) -> float:
        """How long the sequence waits for the worker to let go of the session."""
        ...

    def detach(self, session: LiveSession) -> bool:
        """Remove the session's job from its worker; True while the worker is still busy with it."""
        ...

    def forget(self, session: LiveSession) -> None:
        """Drop the session from the live registry (resumes of its id stop waiting for it)."""
        ...


class ErrorReporter(Protocol):
    """Where the end sequence reports the error that ends a session (the connection implements it)."""

    def send_error(
        self,
        error: BaseException,
        *,
        accepted: bool,
        request_id: int | None = None,
        ends_session: bool = False,
    ) -> P.Error:
        """Queue the ``error`` message for ``error``; returns it."""
        ...


class SessionEnd:
    """The end of one session: its phase, its outcome, and the sequence from request to ENDED.

    All methods run on the event loop. ``requested`` is set once an outcome is decided (the connection then
    calls :meth:`run`); ``ended`` once the sequence finished.
    """

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.phase = EndPhase.LIVE
        self.outcome: Outcome | None = None
        self.requested = asyncio.Event()
        self.ended = asyncio.Event()

    def _enter(self, phase: EndPhase) -> None:
        if phase not in NEXT_PHASES[self.phase]:
            raise AssertionError(f"session end: {self.phase.name} -> {phase.name} is not a step")
        self.phase = phase

    @property
    def accepting(self) -> bool:
        """Whether worker products (segments, media, progress) still go to the client."""
        return self.phase < EndPhase.DETACHING

    # ---- deciding the outcome ------------------------------------------------------------------------------

    def request(self, reason: EndReason, error: BaseException | None = None) -> None:
        """Decide how the session ends (the first request wins) and wake the connection."""
        if self.outcome is None and self.phase < EndPhase.REQUESTED:
            self.outcome = Outcome(reason, error)
            self._enter(EndPhase.REQUESTED)
            self.requested.set()

    def drain(self, *, tail_coming: bool) -> None:
        """The client sent ``stop``: deliver what started (and the audio tail if ``tail_coming``), then end."""
        if self.phase == EndPhase.LIVE:
            self._enter(EndPhase.DRAINING_TAIL if tail_coming else EndPhase.DRAINING)
        self.check_drained()

    def tail_queued(self) -> None:
        """The encoder's audio tail reached the outbox."""
        if self.phase == EndPhase.DRAINING_TAIL:
            self._enter(EndPhase.DRAINING)
        self.check_drained()

    def check_drained(self) -> None:
        """After ``stop``: once nothing started is undelivered and the tail is queued, the outcome is
        ``stopped``."""
        if self.phase == EndPhase.DRAINING and self.session.job.in_flight() == 0:
            self.request(EndReason.STOPPED)

    # ---- the sequence --------------------------------------------------------------------------------------

    async def run(self, server: EndingServer, reporter: ErrorReporter) -> None:
        """Detach, checkpoint, notify; once. A second call waits for the first to finish."""
        if self.phase >= EndPhase.DETACHING:
            await self.ended.wait()
            return
        outcome = self.outcome
        assert outcome is not None, "run() before an outcome was requested"
        session = self.session
        self._enter(EndPhase.DETACHING)
        try:
            await self._detach(server, cancel=outcome.reason != EndReason.STOPPED)
            if session.persisting is not None:  # a per-segment save in flight lands before the checkpoint
                await asyncio.wait([session.persisting], timeout=server.shutdown_timeout_s)
            self._enter(EndPhase.CHECKPOINTING)
            resumable = await self._checkpoint()
            self._enter(EndPhase.NOTIFYING)
            self._notify(outcome, resumable, reporter)
            logger.info(
                "session %s ended: %s (%d segment(s) delivered, resumable: %s)",
                session.session_id,
                outcome.reason,
                session.delivered,
                resumable is not None,
            )
        finally:
            server.forget(session)
            self.phase = EndPhase.ENDED  # also after a failed step: the session is gone either way
            self.ended.set()

    async def _detach(self, server: EndingServer, *, cancel: bool) -> None:
        session, job = self.session, self.session.job
        if cancel:
            job.cancel.cancel()
        if not server.detach(session):
            job.release()
            session.released.set()
        try:
            await asyncio.wait_for(session.released.wait(), server.shutdown_timeout_s)
        except TimeoutError:
            logger.warning(
                "session %s: worker still busy with it after %.0f s",
                session.session_id,
                server.shutdown_timeout_s,
            )

    async def _checkpoint(self) -> str | None:
        """Store the state after the last delivered segment; returns the id it can be resumed by (or None)."""
        session = self.session
        checkpoint = session.checkpoint
        if checkpoint is None:
            return None
        if checkpoint.stored:
            return session.session_id
        store, metrics = session.services.store, session.services.metrics
        try:
            async with session.store_lock:
                await asyncio.to_thread(
                    store.save, session.session_id, checkpoint.segment_index, checkpoint.state
                )
        except (LTX2StreamError, OSError, ValueError):
            logger.exception(
                "session %s: storing segment %d failed", session.session_id, checkpoint.segment_index
            )
            return None
        session.checkpoint = dataclasses.replace(checkpoint, stored=True)
        metrics.states_saved.inc()
        return session.session_id

    def _notify(self, outcome: Outcome, resumable: str | None, reporter: ErrorReporter) -> None:
        session = self.session
        out = session.outbox
        if outcome.reason == EndReason.GONE:
            self._settle(SessionState.CLOSED, "client left", send=False)
            return
        if outcome.reason == EndReason.STOPPED:
            self._settle(SessionState.CLOSED, "stopped", send=True)
            out.put(P.Final(reason="stopped", segments=session.delivered, resumable_session_id=resumable))
            out.close(int(P.CloseCode.NORMAL), "stopped")
            return
        out.discard()  # undelivered media would arrive without its segment_done; the client resumes after them
        error = outcome.error
        if outcome.reason == EndReason.SHUTDOWN:
            error = SessionError(
                "the server is shutting down; resume this session by id", code=codes.SERVER_SHUTDOWN
            )
        assert error is not None
        err = reporter.send_error(error, accepted=True, ends_session=True)
        shutdown = outcome.reason == EndReason.SHUTDOWN
        self._settle(SessionState.CLOSED if shutdown else SessionState.FAILED, err.code, send=True)
        out.put(
            P.Final(
                reason=EndReason.SHUTDOWN.value if shutdown else EndReason.FAILED.value,
                segments=session.delivered,
                resumable_session_id=resumable,
                error_code=err.code,
            )
        )
        out.close(int(error_spec(err.code).close_code), err.code)

    def _settle(self, target: SessionState, reason: str, *, send: bool) -> None:
        """Walk the state machine to a terminal state (via STOPPING for CLOSED), reporting each change."""
        machine = self.session.machine
        steps = [SessionState.STOPPING, target] if target == SessionState.CLOSED else [target]
        for state in steps:
            if machine.state != state and machine.can(state):
                change = machine.transition(state, reason)
                if send:
                    self.session.send(state_message(change))
