"""How a session ends, whatever the reason: detach from the worker, checkpoint, tell the client, close.

Outcomes (``LiveSession.request_end``):

* ``stopped``  – the client sent ``stop`` and every started segment was delivered → ``final`` ``stopped``,
  1000.
* ``shutdown`` – the server is going down: the segment in flight is cancelled → ``error`` ``server.shutdown``,
  ``final`` ``shutdown`` with the resumable id, close 1001.
* ``failed``   – a fatal error (protocol, generator, encoder, slow client) → ``error``, ``final`` ``failed``,
  close with the code's close code (see the error table).
* ``gone``     – the client disconnected → nothing to send.

In every case the in-flight segment is cancelled (except after ``stop``, where none is in flight), the worker
is free within one denoising step, and the state after the last *delivered* segment goes to the store, so a
resume by id continues exactly after what the client received.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.codes import error_spec
from ltx2stream.errors import LTX2StreamError, SessionError
from ltx2stream.server.live import LiveSession, Outcome
from ltx2stream.server.messages import state_message
from ltx2stream.session.state_machine import SessionState

if TYPE_CHECKING:
    from ltx2stream.server.app import StreamingServer
    from ltx2stream.server.connection import Connection

logger = logging.getLogger(__name__)


async def end_session(app: StreamingServer, session: LiveSession, outcome: Outcome, conn: Connection) -> None:
    """Run the ending sequence once; later calls wait for the first to finish."""
    if session.ending:
        await session.ended.wait()
        return
    session.ending = True
    try:
        await _detach(app, session, cancel=outcome.reason != "stopped")
        resumable = await _checkpoint(app, session)
        _notify(session, outcome, resumable, conn)
        logger.info(
            "session %s ended: %s (%d segment(s) delivered, resumable: %s)",
            session.session_id,
            outcome.reason,
            session.delivered,
            resumable is not None,
        )
    finally:
        app.forget(session)
        session.ended.set()


async def _detach(app: StreamingServer, session: LiveSession, *, cancel: bool) -> None:
    job = session.job
    if cancel:
        job.cancel.cancel()
    in_use, _ = app.detach(session)
    if not in_use:
        job.release()
        session.released.set()
    try:
        await asyncio.wait_for(session.released.wait(), app.config.shutdown_timeout_s)
    except TimeoutError:
        logger.warning(
            "session %s: worker still busy with it after %.0f s",
            session.session_id,
            app.config.shutdown_timeout_s,
        )


async def _checkpoint(app: StreamingServer, session: LiveSession) -> str | None:
    """Store the state after the last delivered segment; returns the id it can be resumed by (or None)."""
    if session.last_state is None:
        return None
    if session.state_stored:
        return session.session_id
    index, state = session.last_state
    try:
        await asyncio.to_thread(app.store.save, session.session_id, index, state)
    except (LTX2StreamError, OSError, ValueError):
        logger.exception("session %s: storing segment %d failed", session.session_id, index)
        return None
    session.state_stored = True
    app.metrics.states_saved.inc()
    return session.session_id


def _notify(session: LiveSession, outcome: Outcome, resumable: str | None, conn: Connection) -> None:
    out = session.outbox
    if outcome.reason == "gone":
        _settle(session, SessionState.CLOSED, "client left", send=False)
        return
    if outcome.reason == "stopped":
        _settle(session, SessionState.CLOSED, "stopped", send=True)
        out.put(P.Final(reason="stopped", segments=session.delivered, resumable_session_id=resumable))
        out.close(int(P.CloseCode.NORMAL), "stopped")
        return
    out.discard()  # undelivered media would arrive without its segment_done; the client resumes after them
    error = outcome.error
    if outcome.reason == "shutdown":
        error = SessionError(
            "the server is shutting down; resume this session by id", code=codes.SERVER_SHUTDOWN
        )
    assert error is not None
    err = conn.send_error(error, accepted=True, ends_session=True)
    final_reason = "shutdown" if outcome.reason == "shutdown" else "failed"
    _settle(
        session,
        SessionState.CLOSED if final_reason == "shutdown" else SessionState.FAILED,
        err.code,
        send=True,
    )
    out.put(
        P.Final(
            reason=final_reason,
            segments=session.delivered,
            resumable_session_id=resumable,
            error_code=err.code,
        )
    )
    out.close(int(error_spec(err.code).close_code), err.code)


def _settle(session: LiveSession, target: SessionState, reason: str, *, send: bool) -> None:
    """Walk the state machine to a terminal state (via STOPPING for CLOSED), reporting each change."""
    machine = session.machine
    steps = [SessionState.STOPPING, target] if target == SessionState.CLOSED else [target]
    for state in steps:
        if machine.state != state and machine.can(state):
            change = machine.transition(state, reason)
            if send:
                session.send(state_message(change))
