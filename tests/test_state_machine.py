"""Sans-I/O session logic: lifecycle transitions, commands, the steering schedule and the rate limit."""

from __future__ import annotations

import pytest

from ltx2stream.errors import ConfigError, InputError, SessionError
from ltx2stream.session.state_machine import (
    TRANSITIONS,
    InvalidTransition,
    RateLimiter,
    SegmentPlan,
    SessionState,
    SessionStateMachine,
    SteeringSchedule,
)

S = SessionState


def _machine_in(state: SessionState) -> SessionStateMachine:
    path = {
        S.QUEUED: [],
        S.STARTING: [S.STARTING],
        S.RUNNING: [S.STARTING, S.RUNNING],
        S.PAUSED: [S.STARTING, S.RUNNING, S.PAUSED],
        S.STOPPING: [S.STOPPING],
        S.CLOSED: [S.STOPPING, S.CLOSED],
        S.FAILED: [S.FAILED],
    }[state]
    m = SessionStateMachine("sess-test")
    for target in path:
        m.transition(target)
    assert m.state is state
    return m


def test_happy_path_to_closed():
    """queued → starting → running ⇄ paused → stopping → closed, each step reported as a StateChange."""
    m = SessionStateMachine("abc")
    changes = [m.transition(t) for t in (S.STARTING, S.RUNNING, S.PAUSED, S.RUNNING, S.STOPPING, S.CLOSED)]
    assert [(c.previous, c.current) for c in changes][:2] == [(S.QUEUED, S.STARTING), (S.STARTING, S.RUNNING)]
    assert m.state is S.CLOSED and m.terminal


@pytest.mark.parametrize("source", list(SessionState))
@pytest.mark.parametrize("target", list(SessionState))
def test_transition_table_is_enforced(source, target):
    """Every (source, target) pair is allowed exactly when the table lists it; otherwise InvalidTransition."""
    m = _machine_in(source)
    if target in TRANSITIONS[source]:
        assert m.transition(target).current is target
    else:
        with pytest.raises(InvalidTransition) as info:
            m.transition(target)
        assert info.value.code == "session.invalid_transition"
        assert source.value in info.value.message and target.value in info.value.message
        assert m.state is source


def test_terminal_states_have_no_exit_and_failure_is_reachable_from_every_live_state():
    """CLOSED/FAILED are terminal; FAILED is reachable from every non-terminal state."""
    for state, targets in TRANSITIONS.items():
        assert (not targets) == (state in (S.CLOSED, S.FAILED))
        if targets:
            assert S.FAILED in targets


def test_commands_pause_resume_stop():
    """pause/resume/stop map onto transitions; pausing twice is an InvalidTransition."""
    m = _machine_in(S.RUNNING)
    assert m.command("pause").current is S.PAUSED
    with pytest.raises(InvalidTransition):
        m.command("pause")
    assert m.command("resume").current is S.RUNNING
    assert m.command("stop").current is S.STOPPING
    with pytest.raises(InvalidTransition):
        m.command("stop")


def test_steer_and_snapshot_allowed_states():
    """steer works until stopping; snapshot only while running or paused; others get command_not_allowed."""
    assert _machine_in(S.QUEUED).command("steer") is None
    assert _machine_in(S.PAUSED).command("snapshot") is None
    for state, name in ((S.STOPPING, "steer"), (S.CLOSED, "steer"), (S.QUEUED, "snapshot")):
        with pytest.raises(SessionError) as info:
            _machine_in(state).command(name)
        assert info.value.code == "session.command_not_allowed"
    with pytest.raises(InputError, match="rewind") as unknown:
        _machine_in(S.RUNNING).command("rewind")
    assert unknown.value.code == "input.command"


def test_plans_before_any_steer():
    """Without steering every segment uses the first prompt; seeds count up from the session seed."""
    sched = SteeringSchedule("a cat", seed=10)
    assert [sched.start_next() for _ in range(2)] == [
        SegmentPlan(0, "a cat", 10),
        SegmentPlan(1, "a cat", 11),
    ]


def test_steer_applies_from_next_unstarted_segment():
    """A steer while segment 0 is generating applies at 1; segments already started keep their prompt."""
    sched = SteeringSchedule("a", seed=0, lookahead=0)
    first = sched.start_next()
    assert sched.steer("b") == 1
    assert first.prompt == "a" and sched.plan_for(0).prompt == "a"
    assert sched.start_next().prompt == "b"


def test_steer_before_anything_started_replaces_the_first_prompt():
    """A steer while queued applies at segment 0."""
    sched = SteeringSchedule("a", seed=0)
    assert sched.steer("b") == 0
    assert sched.start_next().prompt == "b"


def test_lookahead_pushes_applies_at_past_started_segments():
    """With lookahead 2, three segments may be in flight and a steer lands after all of them."""
    sched = SteeringSchedule("a", seed=0, lookahead=2)
    started = 0
    while sched.may_start():
        sched.start_next()
        started += 1
    assert started == 3 and sched.in_flight == 3
    assert sched.steer("b") == 3
    sched.delivered_through(0)
    assert sched.may_start() and sched.start_next() == SegmentPlan(3, "b", 3)


def test_delivered_must_be_within_started_range():
    """Delivering a segment that never started is a caller bug (ValueError)."""
    sched = SteeringSchedule("a", seed=0)
    sched.start_next()
    with pytest.raises(ValueError, match="outside started range"):
        sched.delivered_through(1)


def test_blend_weights_and_end():
    """Blend over n=3 ramps the new prompt 1/4, 2/4, 3/4, then uses it alone."""
    sched = SteeringSchedule("a", seed=5, lookahead=10)
    sched.start_next()
    assert sched.steer("b", transition="blend", blend_segments=3) == 1
    plans = [sched.start_next() for _ in range(4)]
    assert [(p.prompt, p.previous_prompt, p.weight) for p in plans] == [
        ("b", "a", 0.25),
        ("b", "a", 0.5),
        ("b", "a", 0.75),
        ("b", None, 1.0),
    ]


def test_new_steer_interrupts_blend_from_its_target():
    """A steer during a blend starts from the previous target prompt, not from the mix."""
    sched = SteeringSchedule("a", seed=0, lookahead=10)
    sched.steer("b", transition="blend", blend_segments=4)
    sched.start_next()
    assert sched.steer("c", transition="blend", blend_segments=1) == 1
    plan = sched.start_next()
    assert (plan.prompt, plan.previous_prompt, plan.weight) == ("c", "b", 0.5)


def test_last_steer_before_a_segment_wins_and_seeds():
    """Two steers before the same segment: the last one applies; an explicit seed restarts the count."""
    sched = SteeringSchedule("a", seed=100)
    sched.start_next()
    sched.steer("b", seed=7)
    assert sched.steer("c") == 1
    assert sched.start_next() == SegmentPlan(1, "c", 101)
    sched.steer("d", seed=7)
    assert [sched.start_next().seed for _ in range(2)] == [7, 8]


def test_resume_starts_at_given_index():
    """A resumed schedule starts numbering at start_index."""
    sched = SteeringSchedule("a", seed=1, start_index=5)
    assert sched.steer("b") == 5 and sched.start_next().index == 5


def test_rate_limiter_burst_then_refill():
    """burst steers pass at once, the next is session.rate_limited, and one passes after 60/per_minute s."""
    rl = RateLimiter(per_minute=6, burst=2)
    rl.check(0.0)
    rl.check(0.1)
    with pytest.raises(SessionError) as info:
        rl.check(0.2)
    assert info.value.code == "session.rate_limited" and "retry in" in info.value.message
    rl.check(10.3)
    with pytest.raises(SessionError):
        rl.check(10.4)


def test_bad_settings_and_steers_get_codes():
    """Out-of-range lookahead and rate limits are config.out_of_range; a bad steer is input.steer."""
    for make in (
        lambda: SteeringSchedule("a", 1, lookahead=-1),
        lambda: SteeringSchedule("a", 1, start_index=-2),
        lambda: RateLimiter(0.0, 1),
        lambda: RateLimiter(10.0, 0),
    ):
        with pytest.raises(ConfigError) as e:
            make()
        assert e.value.code == "config.out_of_range"
    sched = SteeringSchedule("a", 1)
    for kwargs in ({"transition": "fade"}, {"transition": "blend", "blend_segments": 0}):
        with pytest.raises(InputError) as bad:
            sched.steer("b", **kwargs)
        assert bad.value.code == "input.steer"
    assert sched.plan_for(0).prompt == "a"  # a refused steer changes nothing
