"""Sans-I/O session logic: the lifecycle state machine, the steering schedule and the steering rate limit.

Nothing here touches sockets, clocks or threads: callers pass ``now`` and feed events, so every rule is
unit-tested on its own and the asyncio server only moves bytes.

Lifecycle::

    QUEUED ──► STARTING ──► RUNNING ◄──► PAUSED
      │           │            │            │
      └───────────┴────────────┴────────────┴──► STOPPING ──► CLOSED
      (any non-terminal state) ───────────────────────────────► FAILED
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from ltx2stream import codes
from ltx2stream.errors import ConfigError, InputError, SessionError
from ltx2stream.types import MAX_SEED

logger = logging.getLogger(__name__)


class SessionState(StrEnum):
    """Where a session is in its life; the value is what the ``state`` wire message carries."""

    QUEUED = "queued"  # accepted, waiting for the generator
    STARTING = "starting"  # generator assigned: loading the resume state, encoding the first prompt
    RUNNING = "running"  # segments are being generated and sent
    PAUSED = "paused"  # no new segment starts; the one in flight was finished and delivered
    STOPPING = "stopping"  # stop requested (or the client left): finishing, storing, sending ``final``
    CLOSED = "closed"  # ended normally (terminal)
    FAILED = "failed"  # ended by an error (terminal)


S = SessionState
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.QUEUED: frozenset({S.STARTING, S.STOPPING, S.FAILED}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.FAILED}),
    S.RUNNING: frozenset({S.PAUSED, S.STOPPING, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.STOPPING, S.FAILED}),
    S.STOPPING: frozenset({S.CLOSED, S.FAILED}),
    S.CLOSED: frozenset(),
    S.FAILED: frozenset(),
}
# Client commands that change state, and the state they lead to.
COMMAND_TARGETS: dict[str, SessionState] = {"pause": S.PAUSED, "resume": S.RUNNING, "stop": S.STOPPING}
# Client commands that leave the state alone, and where they are allowed.
COMMAND_STATES: dict[str, frozenset[SessionState]] = {
    "steer": frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.PAUSED}),
    "snapshot": frozenset({S.RUNNING, S.PAUSED}),
}


class InvalidTransition(SessionError):
    """A state change the transition table does not allow."""

    default_code = codes.SESSION_INVALID_TRANSITION


@dataclass(frozen=True)
class StateChange:
    """One transition that happened: what the server reports in a ``state`` message."""

    previous: SessionState
    current: SessionState
    reason: str | None = None


class SessionStateMachine:
    """The lifecycle of one session; starts in QUEUED."""

    def __init__(self, session_id: str = "-") -> None:
        self.session_id = session_id
        self.state = SessionState.QUEUED

    @property
    def terminal(self) -> bool:
        """True once CLOSED or FAILED: nothing can happen any more."""
        return not TRANSITIONS[self.state]

    def can(self, target: SessionState) -> bool:
        """Whether ``target`` is reachable from the current state in one step."""
        return target in TRANSITIONS[self.state]

    def transition(self, target: SessionState, reason: str | None = None) -> StateChange:
        """Move to ``target``.

        Raises:
            InvalidTransition: the table has no edge from the current state to ``target``.
        """
        if not self.can(target):
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.state])) or "none (terminal)"
            raise InvalidTransition(
                f"session {self.session_id}: cannot go from {self.state.value} to {target.value}; allowed: {allowed}"
            )
        change = StateChange(self.state, target, reason)
        logger.debug("session %s: %s -> %s (%s)", self.session_id, self.state.value, target.value, reason)
        self.state = target
        return change

    def command(self, name: str) -> StateChange | None:
        """Apply a client command: pause/resume/stop transition; steer/snapshot only check the state.

        Returns:
            The StateChange for pause/resume/stop, None for steer/snapshot.

        Raises:
            InvalidTransition: pause/resume/stop not possible now (e.g. pause while PAUSED).
            SessionError: ``session.command_not_allowed`` for steer/snapshot in a state that forbids them.
        """
        if name in COMMAND_TARGETS:
            return self.transition(COMMAND_TARGETS[name], reason=name)
        if name not in COMMAND_STATES:
            raise InputError(f"unknown session command {name!r}", code=codes.INPUT_COMMAND)
        if self.state not in COMMAND_STATES[name]:
            allowed = ", ".join(sorted(s.value for s in COMMAND_STATES[name]))
            raise SessionError(
                f"session {self.session_id}: {name} is not allowed while {self.state.value}; "
                f"allowed in: {allowed}",
                code=codes.SESSION_COMMAND_NOT_ALLOWED,
            )
        return None


@dataclass(frozen=True)
class SegmentPlan:
    """What one segment is generated with.

    ``prompt`` has weight ``weight``; during a blend ``previous_prompt`` has ``1 - weight`` (None after a cut).
    """

    index: int
    prompt: str
    seed: int
    previous_prompt: str | None = None
    weight: float = 1.0
    final: bool = False  # the session ends with this segment (``SegmentRequest.final``)


@dataclass(frozen=True)
class _SteerEvent:
    applies_at: int
    prompt: str
    seed: int  # seed of segment ``applies_at``; later segments add their distance to it
    blend_segments: int  # 0 = cut


class SteeringSchedule:
    """Which prompt and seed every segment uses, and how far the generator may run ahead.

    Rule: a steer applies from the next segment that has not started. Segments start in index order;
    at most ``1 + lookahead`` segments may be started but not yet delivered.
    Blend over n segments: segment ``applies_at + j`` (j < n) mixes the new prompt with weight (j+1)/(n+1);
    from ``applies_at + n`` on the new prompt is used alone. Seeds continue ``+1`` per segment unless a steer
    gives a new one. Several steers before the same segment: the last one wins.
    """

    def __init__(self, prompt: str, seed: int, *, lookahead: int = 1, start_index: int = 0) -> None:
        if lookahead < 0 or start_index < 0:
            raise ConfigError(
                f"lookahead and start_index must be >= 0; got {lookahead}, {start_index}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        self.lookahead = lookahead
        self.next_index = start_index  # the next segment that has not started
        self.delivered = start_index  # segments below this index are delivered
        self._events = [_SteerEvent(start_index, prompt, seed, 0)]

    @property
    def in_flight(self) -> int:
        """Segments started and not yet delivered."""
        return self.next_index - self.delivered

    def may_start(self) -> bool:
        """Whether the generator may start the next segment now (lookahead budget left)."""
        return self.in_flight <= self.lookahead

    def start_next(self) -> SegmentPlan:
        """Mark the next segment started and return its plan (its prompt can no longer change)."""
        plan = self.plan_for(self.next_index)
        self.next_index += 1
        return plan

    def delivered_through(self, index: int) -> None:
        """Record that every segment up to and including ``index`` was delivered."""
        if not self.delivered - 1 <= index < self.next_index:
            raise ValueError(
                f"delivered index {index} is outside started range [{self.delivered}, {self.next_index})"
            )
        self.delivered = index + 1

    def steer(
        self, prompt: str, *, transition: str = "cut", blend_segments: int = 1, seed: int | None = None
    ) -> int:
        """Schedule ``prompt``; returns the segment index it applies from (= the next one not started)."""
        if transition not in ("cut", "blend") or blend_segments < 1:
            raise InputError(
                f"steer transition {transition!r} is not cut/blend or blend_segments {blend_segments} < 1",
                code=codes.INPUT_STEER,
            )
        at = self.next_index
        # Steers for the same unstarted segment replace each other (seed included); before the first segment
        # starts this replaces the session's first prompt but keeps its seed unless a new one is given.
        kept = [e for e in self._events if e.applies_at < at]
        if seed is None:
            seed = self._seed_of((kept or self._events)[-1 if kept else 0], at)
        self._events = kept
        self._events.append(_SteerEvent(at, prompt, seed, blend_segments if transition == "blend" else 0))
        return at

    def plan_for(self, index: int) -> SegmentPlan:
        """The plan of segment ``index`` under the steering received so far."""
        pos = max(i for i, e in enumerate(self._events) if e.applies_at <= index or i == 0)
        event = self._events[pos]
        seed = self._seed_of(event, index)
        j = index - event.applies_at
        if pos == 0 or j >= event.blend_segments:
            return SegmentPlan(index, event.prompt, seed)
        weight = (j + 1) / (event.blend_segments + 1)
        return SegmentPlan(index, event.prompt, seed, self._events[pos - 1].prompt, weight)

    @staticmethod
    def _seed_of(event: _SteerEvent, index: int) -> int:
        return (event.seed + max(index - event.applies_at, 0)) & MAX_SEED


class RateLimiter:
    """Token bucket: ``burst`` commands at once, refilled at ``per_minute``; time is passed in by the caller."""

    def __init__(self, per_minute: float, burst: int) -> None:
        if per_minute <= 0 or burst < 1:
            raise ConfigError(
                f"rate limit needs per_minute > 0 and burst >= 1; got {per_minute}, {burst}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        self.per_second = per_minute / 60.0
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def check(self, now: float, what: str = "steer") -> None:
        """Take one token.

        Raises:
            SessionError: ``session.rate_limited`` naming the wait, when the bucket is empty.
        """
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1.0:
            wait = (1.0 - self._tokens) / self.per_second
            raise SessionError(
                f"{what}: rate limit {self.per_second * 60:g}/min (burst {self.burst}) exceeded; "
                f"retry in {wait:.1f} s",
                code=codes.SESSION_RATE_LIMITED,
            )
        self._tokens -= 1.0
