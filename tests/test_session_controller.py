"""Session controller on the tiny model: latent carry bit-exactness, timeline, resume, refusals, steering."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ltx2stream.errors import SessionError, StateError
from ltx2stream.session.api import CancelToken, NullSink, SegmentCancelled, SegmentRequest, SessionSettings
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store import SessionStore

SETTINGS = SessionSettings("tiny-ltx2", 64, 64, 12.0, 25, 1, 3)  # 4 latent frames, k = 1
PROMPTS = ["a red ball bouncing", "a red ball bouncing", "rain on a window", "rain on a window"]


def run(controller: Any, indices: range) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    out = []
    for i in indices:
        sink = NullSink()
        controller.run_segment(SegmentRequest(i, PROMPTS[i % len(PROMPTS)], 100 + i), sink)
        out.append(
            (np.concatenate(sink.frames), np.concatenate(sink.samples, axis=1), controller.last_result)
        )
    return out


def token_slice(state: Any, frame: int) -> slice:
    g = state.grid
    n = g.latent_height * g.latent_width
    return slice(frame * n, (frame + 1) * n)


def test_carried_tails_are_bit_exact_and_positions_follow_the_timeline(tiny_host: Any) -> None:
    c = tiny_host.open_session(SETTINGS)
    ((_, _, r0),) = run(c, range(1))
    carried = c.state.carry.map(lambda t, _salt: t.clone())
    assert carried.stage2 is not None
    ((_, _, r1),) = run(c, range(1, 2))
    s1, s2 = r1.stage1.video_latent(), r1.stage2.video_latent()
    assert torch.equal(s1[:, :, 1:2], carried.stage1.tail) and torch.equal(
        s1[:, :, 0:1], carried.stage1.anchor
    )
    assert torch.equal(s2[:, :, 1:2], carried.stage2.tail) and torch.equal(
        s2[:, :, 0:1], carried.stage2.anchor
    )
    # the tail is what segment 0 ended with
    assert torch.equal(carried.stage1.tail, r0.stage1.video_latent()[:, :, -1:])
    n_audio = carried.audio_tail.shape[2]
    assert n_audio > 0
    for stage in (r1.stage1, r1.stage2):
        assert torch.equal(stage.audio_latent()[:, :, :n_audio], carried.audio_tail)
    # RoPE time: latent 1 of segment 1 sits where latent 3 of segment 0 was, on the session clock
    t = c.timeline
    prev = r0.stage1.video.positions[0, 0, token_slice(r0.stage1, 3)]
    new = r1.stage1.video.positions[0, 0, token_slice(r1.stage1, 1)] + t.start_time(1)
    torch.testing.assert_close(new, prev)
    shift = t.audio_canvas_start(1) - t.audio_canvas_start(0)
    prev_a = r0.stage1.audio.positions[0, 0, shift : shift + n_audio]
    new_a = r1.stage1.audio.positions[0, 0, :n_audio] + t.start_time(1)
    torch.testing.assert_close(new_a, prev_a)


def test_media_counts_follow_the_timeline(tiny_host: Any) -> None:
    """Each segment holds its last 8 frames (the carried span) for the next one (the default hold); the final one shows them."""
    c = tiny_host.open_session(SETTINGS)
    assert c.timeline.hold == 8
    segs = run(c, range(3))
    frames = sum(f.shape[0] for f, _, _ in segs)
    samples = sum(a.shape[1] for _, a, _ in segs)
    assert [f.shape[0] for f, _, _ in segs] == [25 - 8, 16, 16]
    assert frames == 25 + 2 * (25 - 1 - 8) - 8
    assert samples == round(frames / 12.0 * c.sample_rate)
    assert c.state.frames_delivered == frames and c.state.samples_delivered == samples
    sink = NullSink()
    c.run_segment(SegmentRequest(3, PROMPTS[3], 103, final=True), sink)
    last = np.concatenate(sink.frames)
    assert last.shape[0] == 16 + 8 and c.state.frames_delivered == 25 + 3 * 16
    assert frames + last.shape[0] == c.state.frames_delivered
    assert samples + np.concatenate(sink.samples, axis=1).shape[1] == c.state.samples_delivered
    assert c.state.samples_delivered == round(c.state.frames_delivered / 12.0 * c.sample_rate)


def test_a_session_extended_after_its_final_segment_repeats_no_frame(tiny_host: Any) -> None:
    """A final segment shows the frames it would have held; a segment after it (an extended video) starts after
    them: its first shown frame is its frame 1 + 8k, and the counts stay those of the timeline."""
    c = tiny_host.open_session(SETTINGS)
    shown, samples = [], 0
    for i, final in ((0, False), (1, True), (2, False)):
        sink = NullSink()
        c.run_segment(SegmentRequest(i, PROMPTS[i], 100 + i, final=final), sink)
        shown.append(np.concatenate(sink.frames).shape[0])
        samples += sum(x.shape[1] for x in sink.samples)
    assert shown == [17, 16 + 8, 16 - 8]
    assert c.state.frames_delivered == sum(shown) == c.timeline.delivered_frames(2)
    assert c.state.samples_delivered == samples == round(sum(shown) / 12.0 * c.sample_rate)
    resumed = tiny_host.open_session(SETTINGS, state=c.snapshot())
    sink = NullSink()
    resumed.run_segment(SegmentRequest(3, PROMPTS[3], 103), sink)
    assert np.concatenate(sink.frames).shape[0] == 16  # held as usual again


def test_a_finish_before_the_decode_makes_the_segment_final(tiny_host: Any) -> None:
    """``CancelToken.finish`` (a live session's stop) set before the decoder reaches the held frames shows them,
    with their audio, and the state counts them."""
    c = tiny_host.open_session(SETTINGS)
    run(c, range(1))
    token = CancelToken()
    token.finish()
    sink = NullSink()
    report = c.run_segment(SegmentRequest(1, PROMPTS[1], 101), sink, token)
    assert report.frames == np.concatenate(sink.frames).shape[0] == 16 + 8
    assert c.state.frames_delivered == 25 + 16
    assert c.state.samples_delivered == round((25 + 16) / 12.0 * c.sample_rate)
    assert report.audio_samples == sum(x.shape[1] for x in sink.samples)


def test_the_next_segment_decodes_the_held_frames_after_the_previous_latents(tiny_host: Any) -> None:
    """Segment n + 1's decoder sees segment n's two latents before the carried tail in place of its anchor, and
    its first shown frame is its frame 1 + 8k − 8: the frames segment n held."""
    pipeline = tiny_host.pipeline(SETTINGS.preset)
    c = tiny_host.open_session(SETTINGS)
    seen: list[tuple[torch.Tensor, int]] = []
    decode = pipeline.decode_video

    def spy(latent: torch.Tensor, skip: int = 0) -> Any:
        seen.append((latent.clone(), skip))
        return decode(latent, skip)

    pipeline.decode_video = spy  # type: ignore[method-assign]
    try:
        ((f0, _, r0),) = run(c, range(1))
        ((f1, _, r1),) = run(c, range(1, 2))
    finally:
        del pipeline.decode_video
    (lat0, skip0), (lat1, skip1) = seen
    assert torch.equal(lat0, r0.final.video_latent()) and skip0 == 0
    final0, final1 = r0.final.video_latent(), r1.final.video_latent()
    assert lat1.shape[2] == 2 + 3 and torch.equal(lat1[:, :, :2], final0[:, :, 1:3].to(lat1.dtype))
    assert torch.equal(
        lat1[:, :, 2:], final1[:, :, 1:]
    )  # the tail (segment 0's last latent) and the new ones
    # output frame p + 8 is the segment's frame p; the first shown is 1 + 8 - 8 = 1 (just after the anchor)
    assert skip1 == 1 + 8 and f0.shape[0] == 17 and f1.shape[0] == 16
    whole = np.concatenate(list(decode(lat1, 0)))
    assert np.array_equal(f1, whole[9:25])


def test_resume_from_store_is_bit_exact(tiny_host: Any, tmp_path: Any) -> None:
    straight = run(tiny_host.open_session(SETTINGS), range(4))
    first = tiny_host.open_session(SETTINGS)
    run(first, range(2))
    store = SessionStore(tmp_path)
    store.save("resume-test-01", 1, first.state.to_serialized())
    blob = store.load_latest("resume-test-01").to_bytes()
    resumed = tiny_host.open_session(SETTINGS, state=blob)
    assert resumed.next_index == 2
    tail = run(resumed, range(2, 4))
    for (f_a, a_a, r_a), (f_b, a_b, r_b) in zip(straight[2:], tail):
        assert np.array_equal(f_a, f_b) and np.array_equal(a_a, a_b)
        assert torch.equal(r_a.stage1.video_latent(), r_b.stage1.video_latent())
        assert torch.equal(r_a.final.video_latent(), r_b.final.video_latent())
        assert torch.equal(r_a.final.audio_latent(), r_b.final.audio_latent())


def test_bad_states_are_refused(tiny_host: Any) -> None:
    c = tiny_host.open_session(SETTINGS)
    run(c, range(1))
    blob = c.snapshot()
    corrupt = bytearray(blob)
    corrupt[-5] ^= 0xFF
    with pytest.raises(StateError) as e:
        tiny_host.open_session(SETTINGS, state=bytes(corrupt))
    assert e.value.code == "state.corrupt"
    from safetensors.torch import save

    with pytest.raises(StateError) as e:
        tiny_host.open_session(SETTINGS, state=save({"x": torch.zeros(2)}))
    assert e.value.code == "state.foreign"
    parsed = SerializedState.from_bytes(blob)
    future = SerializedState(parsed.tensors, parsed.meta, schema_version=99).to_bytes()
    with pytest.raises(StateError) as e:
        tiny_host.open_session(SETTINGS, state=future)
    assert e.value.code == "state.future_version"
    other = SessionSettings("tiny-ltx2", 128, 64, 12.0, 25, 1, 3)
    with pytest.raises(StateError) as e:
        tiny_host.open_session(other, state=blob)
    assert e.value.code == "state.incompatible" and "width" in e.value.message


def test_cancelled_or_out_of_order_segment_changes_nothing(tiny_host: Any, tmp_path: Any) -> None:
    c = tiny_host.open_session(SETTINGS)
    run(c, range(1))
    store = SessionStore(tmp_path)
    store.save("cancel-test-01", 0, c.state.to_serialized())
    before = c.snapshot()
    files = {p.path: p.path.read_bytes() for p in store.list("cancel-test-01")}
    token = CancelToken()
    token.cancel()
    with pytest.raises(SegmentCancelled):
        c.run_segment(SegmentRequest(1, "x", 1), NullSink(), token)
    with pytest.raises(SessionError) as e:
        c.run_segment(SegmentRequest(3, "x", 1), NullSink())
    assert e.value.code == "session.segment_order"
    checksum = SerializedState.from_bytes(before).checksum  # header order of safetensors bytes may vary
    assert c.next_index == 1 and SerializedState.from_bytes(c.snapshot()).checksum == checksum
    assert {p.path: p.path.read_bytes() for p in store.list("cancel-test-01")} == files


def test_blend_interpolates_text_contexts(tiny_host: Any) -> None:
    c = tiny_host.open_session(SETTINGS)
    a, b = c.pipeline.encode_prompt("old prompt"), c.pipeline.encode_prompt("new prompt")
    mixed = c._contexts(SegmentRequest(0, "new prompt", 1, "blend", "old prompt", 0.25))
    torch.testing.assert_close(mixed.video, 0.75 * a.video + 0.25 * b.video)
    torch.testing.assert_close(mixed.audio, 0.75 * a.audio + 0.25 * b.audio)
    cut = c._contexts(SegmentRequest(0, "new prompt", 1))
    assert torch.equal(cut.video, b.video)


def test_one_stage_preset_carries_stage1_only(tiny_host: Any) -> None:
    s = SessionSettings("tiny-ltx2-one-stage", 64, 64, 12.0, 17, 1, 3)
    c = tiny_host.open_session(s)
    run(c, range(2))
    assert c.state.carry.stage2 is None
    tensors = c.state.to_serialized().tensors
    assert set(tensors) == {"stage1_tail", "anchor1", "audio_tail", "decode_context"}
    assert tensors["decode_context"].shape[2] == 1  # 3 latent frames, k = 1: one latent before the tail
    assert c.state.carry.stage1.tail.shape[-2:] == (2, 2)


def test_keyframe_carry_appends_the_tail_at_the_canvas_positions(tiny_host: Any) -> None:
    from ltx2stream.session.controller import ContinuationOptions, SessionController

    pipeline = tiny_host.pipeline("tiny-ltx2")
    c = SessionController(pipeline, SETTINGS, options=ContinuationOptions(scheme="keyframe_carry"))
    run(c, range(1))
    carried = c.state.carry.map(lambda t, _salt: t.clone())
    seen: dict[str, Any] = {}
    denoise = pipeline.stage1.__class__.__call__

    def spy(self, state, contexts, stage, **kw):  # type: ignore[no-untyped-def]
        seen.setdefault("states", []).append(state)
        return denoise(self, state, contexts, stage, **kw)

    import unittest.mock

    with unittest.mock.patch.object(pipeline.stage1.__class__, "__call__", spy):
        ((frames, _, r1),) = run(c, range(1, 2))
    s1 = seen["states"][0]  # stage-1 input: canvas + appended tail tokens
    n = s1.grid.latent_height * s1.grid.latent_width
    assert s1.video.num_tokens == s1.video.num_target + n
    appended = s1.video.clean_latent[:, s1.video.num_target :]
    assert torch.equal(appended, carried.stage1.tail.flatten(2).transpose(1, 2))
    torch.testing.assert_close(
        s1.video.positions[:, :, s1.video.num_target :], s1.video.positions[:, :, n : 2 * n]
    )
    # the canvas frame 1 is regenerated (not a copy) and the appended tokens are gone from the result
    assert not torch.equal(r1.stage1.video_latent()[:, :, 1:2], carried.stage1.tail)
    assert r1.stage1.video_latent().shape[2] == 4 and frames.shape[0] == 16
    assert torch.equal(r1.stage1.video_latent()[:, :, 0:1], carried.stage1.anchor)
    assert (
        SessionController(
            pipeline, SETTINGS, options=ContinuationOptions(scheme="keyframe_carry"), state=c.state
        ).next_index
        == 2
    )
    with pytest.raises(StateError):  # a state made with one scheme does not resume under the other
        SessionController(pipeline, SETTINGS, state=c.state)
