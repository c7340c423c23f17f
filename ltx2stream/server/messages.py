"""Wire messages built from session-layer objects (the protocol layer does not know the session layer)."""

from __future__ import annotations

from ltx2stream import protocol as P
from ltx2stream.session.state_machine import SegmentPlan, StateChange


def state_message(change: StateChange) -> P.State:
    """The ``state`` message reporting a state-machine transition."""
    return P.State(state=change.current.value, previous=change.previous.value, reason=change.reason)


def segment_started(plan: SegmentPlan) -> P.SegmentStarted:
    """The ``segment_started`` message announcing a segment planned by the SteeringSchedule."""
    return P.SegmentStarted(
        index=plan.index,
        prompt=plan.prompt,
        seed=plan.seed,
        previous_prompt=plan.previous_prompt,
        weight=plan.weight,
    )
