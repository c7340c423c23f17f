"""Cancellation takes effect within one denoising step and within one decode chunk, measured by events (model
calls and decoded chunks after the cancel), not wall-clock, on the largest segment the tiny preset accepts."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from ltx2stream.pipeline.capacity import check_cost
from ltx2stream.pipeline.pipeline import LTX2Pipeline
from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.session.api import CancelToken, NullSink, SegmentCancelled, SegmentRequest, SessionSettings
from ltx2stream.session.controller import SessionController

# the largest segment the tiny preset admits (its Capacity: 512 x 512, 121 frames); 1 latent frame carried
LARGE = SessionSettings("tiny-ltx2", 512, 512, 12.0, 121, 1, 5)


class Recorder(NullSink):
    """Records what reaches the sink, in order, and fires the cancel token on a chosen event."""

    def __init__(self, token: CancelToken, cancel_on_chunk: int | None = None) -> None:
        super().__init__()
        self.token, self.cancel_on_chunk = token, cancel_on_chunk
        self.events: list[str] = []

    def progress(self, stage: str, step: int, total: int) -> None:
        self.events.append(f"progress {stage} {step}")

    def video(self, frames: np.ndarray) -> None:
        self.events.append("video")
        if self.events.count("video") == self.cancel_on_chunk:
            self.token.cancel()
            self.events.append("CANCEL")

    def audio(self, samples: np.ndarray) -> None:
        self.events.append("audio")


def _after_cancel(events: list[str]) -> list[str]:
    return events[events.index("CANCEL") + 1 :]


def test_the_large_segment_is_admitted():
    """The segment these tests cancel is within the tiny preset's capacity (an accepted open could ask it)."""
    cost = check_cost(PRESETS["tiny-ltx2"].capacity, LARGE.width, LARGE.height, LARGE.frames, LARGE.fps)
    assert cost.video_tokens == 16 * 16 * 16


def test_cancel_during_a_denoising_step_stops_at_its_end(tiny_host: Any) -> None:
    """The token fires inside the 2nd transformer call (mid step 2 of stage 1): that step finishes, no other
    transformer call starts, no progress is reported after it, and the state is untouched."""
    controller = tiny_host.open_session(LARGE)
    transformer = controller.pipeline.c.transformer
    token, calls = CancelToken(), []
    sink = Recorder(token)

    def count(_module: Any, _args: Any) -> None:
        calls.append(len(sink.events))
        if len(calls) == 2:
            token.cancel()
            sink.events.append("CANCEL")

    handle = transformer.register_forward_pre_hook(count)
    try:
        with pytest.raises(SegmentCancelled):
            controller.run_segment(SegmentRequest(0, "a harbour in fog", 5), sink, token)
    finally:
        handle.remove()
    assert sink.events[: sink.events.index("CANCEL")] == ["progress stage1 1"]
    assert len(calls) == 2  # no transformer call after the one the cancel arrived in
    assert _after_cancel(sink.events) == []  # its step ended in the cancel check, not in a report
    assert controller.next_index == 0 and controller.state is None


def test_cancel_during_decoding_stops_within_one_chunk(tiny_host: Any) -> None:
    """The token fires when the first decoded chunk reaches the sink: no further chunk is decoded or pushed
    (of the several the segment has), no audio is decoded, the state is untouched. (One-stage tiny preset
    with a single sigma step, so the test spends its time in the decoder, not in denoising.)"""
    one_stage = tiny_host.pipeline("tiny-ltx2-one-stage")
    pipeline = LTX2Pipeline(one_stage.c, one_stage.preset, sigmas_override=[1.0, 0.0])
    controller = SessionController(pipeline, dataclasses.replace(LARGE, preset="tiny-ltx2-one-stage"))
    decode, decoded = pipeline.decode_video, []

    def counting(latent: Any, skip: int = 0) -> Any:
        for chunk in decode(latent, skip):
            decoded.append(chunk.shape[0])
            yield chunk

    token = CancelToken()
    sink = Recorder(token, cancel_on_chunk=1)
    pipeline.decode_video = counting  # type: ignore[method-assign]
    with pytest.raises(SegmentCancelled):
        controller.run_segment(SegmentRequest(0, "a harbour in fog", 5), sink, token)
    assert len(decoded) == 1 and _after_cancel(sink.events) == []
    assert controller.next_index == 0 and controller.state is None
    latent_frames = (LARGE.frames - 1) // 8 + 1
    assert latent_frames > 2 * pipeline.video_decode.chunk_latent_frames  # more chunks were to come
