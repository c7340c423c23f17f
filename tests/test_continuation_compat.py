"""Typed ContinuationState against the schema-1 files an earlier release wrote (tests/data/state_v1_*.ltxstate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ltx2stream.errors import StateError
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.continuation import ContinuationOptions, ContinuationState
from ltx2stream.session.controller import SessionController
from ltx2stream.session.state import SerializedState

DATA = Path(__file__).parent / "data"
# the fixtures were written before the hold: their cut falls at each segment's end (hold 0, no decode context)
LEGACY = {"hold_frames": 0, "decode_context": 0}
TWO = (
    SessionSettings("tiny-ltx2", 64, 64, 12.0, 25, 1, 5),
    ContinuationOptions(carry_strength=0.8, audio_context=2, carry_noise=0.1, **LEGACY),
    (SegmentRequest(0, "prompt 0", 100), SegmentRequest(1, "prompt 1", 101, "blend", "prompt 9", 0.5)),
)
ONE = (
    SessionSettings("tiny-ltx2-one-stage", 64, 64, 12.0, 17, 1, 3),
    ContinuationOptions(carry_noise=0.2, audio_context=1, **LEGACY),
    (SegmentRequest(0, "prompt 0", 100), SegmentRequest(1, "prompt 1", 101)),
)
NEXT = SegmentRequest(2, "prompt 2", 102)


def fixture(name: str) -> bytes:
    return (DATA / f"state_v1_{name}.ltxstate").read_bytes()


def straight(host: Any, settings: SessionSettings, options: ContinuationOptions, requests: Any) -> Any:
    c = SessionController(host.pipeline(settings.preset), settings, options=options)
    for r in requests:
        c.run_segment(r, NullSink())
    return c


def test_release_state_loads_into_typed_fields() -> None:
    """A two-stage state of the previous release becomes settings, options, both stage carries and prompt history."""
    settings, options, requests = TWO
    state = ContinuationState.from_bytes(fixture("two_stage_seg1"))
    assert state.settings == settings and state.options == options
    assert state.segment_index == 1 and state.next_index == 2
    assert state.prompt_history == requests and state.seeds == (100, 101)
    assert state.last_prompt == "prompt 1"
    assert state.frames_delivered == 25 + 16 and state.sample_rate == 24000
    carry = state.carry
    assert carry is not None and carry.stage2 is not None
    assert carry.stage1.tail.shape == (1, 128, 1, 1, 1) and carry.stage1.anchor.shape == (1, 128, 1, 1, 1)
    assert carry.stage2.tail.shape == (1, 128, 1, 2, 2) and carry.stage2.anchor.shape == (1, 128, 1, 2, 2)
    assert carry.audio_tail.shape == (1, 8, 20, 16)
    one = ContinuationState.from_bytes(fixture("one_stage_seg1"))
    assert one.carry is not None and one.carry.stage2 is None and one.options == ONE[1]


@pytest.mark.parametrize("name", ["two_stage_seg1", "one_stage_seg1"])
def test_release_state_writes_back_unchanged(name: str) -> None:
    """Loading and writing a release's state reproduces its content checksum: the on-disk format is unchanged."""
    blob = fixture(name)
    original = SerializedState.from_bytes(blob)
    again = SerializedState.from_bytes(ContinuationState.from_bytes(blob).to_bytes())
    assert again.checksum == original.checksum
    assert dict(again.meta) == dict(original.meta)


@pytest.mark.parametrize(("name", "case"), [("two_stage_seg1", TWO), ("one_stage_seg1", ONE)])
def test_this_release_writes_what_the_previous_one_wrote(tiny_host: Any, name: str, case: Any) -> None:
    """The same session run today stores the same tensors under the same names and the same metadata, plus one
    additive key: ``model``, the preset's model family (states without it still load)."""
    mine = SerializedState.from_bytes(straight(tiny_host, *case).snapshot())
    theirs = SerializedState.from_bytes(fixture(name))
    assert (
        "model" not in theirs.meta and mine.meta["model"] == tiny_host.pipeline(case[0].preset).preset.flavour
    )
    assert {k: v for k, v in mine.meta.items() if k != "model"} == dict(theirs.meta)
    assert sorted(mine.tensors) == sorted(theirs.tensors)
    for key, t in theirs.tensors.items():
        # the fixtures were written on another CPU family (AMD EPYC); an Intel Xeon's kernels round differently
        # (measured: up to 2.5e-5 absolute on latents of unit scale), a format change moves them by O(1)
        torch.testing.assert_close(mine.tensors[key], t, rtol=1e-3, atol=1e-4)


def test_resuming_a_release_state_continues_like_a_straight_run(tiny_host: Any) -> None:
    """Segment 2 resumed from the previous release's state equals segment 2 of an uninterrupted session."""
    settings, options, requests = TWO
    whole = straight(tiny_host, settings, options, (*requests, NEXT)).last_result
    state = ContinuationState.from_bytes(fixture("two_stage_seg1"))
    resumed = SessionController(tiny_host.pipeline(settings.preset), settings, options=options, state=state)
    resumed.run_segment(NEXT, NullSink())
    mine = resumed.last_result
    for a, b in (
        (whole.stage1.video_latent(), mine.stage1.video_latent()),
        (whole.final.video_latent(), mine.final.video_latent()),
        (whole.final.audio_latent(), mine.final.audio_latent()),
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_release_state_keeps_its_cut_under_options_that_hold(tiny_host: Any) -> None:
    """Resumed under today's default cut (a hold, a decode context), a state written before the hold keeps its
    own (0 and 0): its frames delivered were counted that way, and segment 2 equals the straight run's."""
    settings, options, requests = TWO
    whole = straight(tiny_host, settings, options, (*requests, NEXT))
    holding = ContinuationOptions(carry_strength=0.8, audio_context=2, carry_noise=0.1)
    assert holding.hold_frames > 0 and holding.decode_context > 0
    state = ContinuationState.from_bytes(fixture("two_stage_seg1"))
    resumed = SessionController(tiny_host.pipeline(settings.preset), settings, options=holding, state=state)
    assert resumed.options == options and resumed.timeline.hold == 0
    sink = NullSink()
    resumed.run_segment(NEXT, sink)
    assert resumed.state is not None and whole.state is not None
    assert resumed.state.frames_delivered == whole.state.frames_delivered == 25 + 2 * 16


def _edited(name: str, *, drop: tuple[str, ...] = (), tensors: Any = None, **meta: Any) -> bytes:
    s = SerializedState.from_bytes(fixture(name))
    t = {k: v for k, v in s.tensors.items() if k not in drop} | (tensors or {})
    return SerializedState(t, {**s.meta, **meta}).to_bytes()


@pytest.mark.parametrize(
    ("blob", "code", "words"),
    [
        (lambda: _edited("two_stage_seg1", drop=("anchor2",)), "state.corrupt", "neither the one-stage"),
        (lambda: _edited("two_stage_seg1", drop=("audio_tail",)), "state.corrupt", "neither the one-stage"),
        (
            lambda: _edited("one_stage_seg1", tensors={"stage1_tail": torch.zeros(1, 128, 2, 2, 2)}),
            "state.corrupt",
            "stage-1 anchor",
        ),
        (lambda: _edited("one_stage_seg1", tensors={"extra": torch.zeros(1)}), "state.corrupt", "neither"),
        (lambda: _edited("one_stage_seg1", options={"carry_boost": 2}), "state.corrupt", "carry_boost"),
        (lambda: _edited("one_stage_seg1", options={"scheme": "nope"}), "state.corrupt", "nope"),
        (
            lambda: _edited(
                "one_stage_seg1", prompt_history=[{"segment": 0, "prompt": "x", "seed": 1, "mood": 1}]
            ),
            "state.corrupt",
            "prompt history entry",
        ),
        (lambda: _edited("one_stage_seg1", frames_delivered=None), "state.corrupt", "incomplete"),
        (
            lambda: _edited("one_stage_seg1", scheme="decode_reencode"),
            "state.incompatible",
            "decode_reencode",
        ),
    ],
)
def test_malformed_states_are_refused_with_a_code(blob: Any, code: str, words: str) -> None:
    """Incomplete tensor sets, wrong tail lengths, unknown options/entries and other families get a coded error."""
    with pytest.raises(StateError) as e:
        ContinuationState.from_bytes(blob())
    assert e.value.code == code and words in e.value.message


def test_state_for_other_options_is_refused(tiny_host: Any) -> None:
    """Resuming under other continuation options names the option that differs."""
    settings, _, _ = TWO
    with pytest.raises(StateError) as e:
        tiny_host.open_session(settings, state=fixture("two_stage_seg1"))
    assert (
        e.value.code == "state.incompatible" and "carry_strength: state=0.8, session=1.0" in e.value.message
    )
