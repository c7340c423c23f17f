"""The decode -> re-encode continuation scheme (``reencode``) on the tiny model, tested like the other schemes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ltx2stream.errors import StateError
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.continuation import ContinuationState
from ltx2stream.session.controller import ContinuationOptions, SessionController

SETTINGS = SessionSettings("tiny-ltx2", 64, 64, 12.0, 25, 1, 3)  # 4 latent frames, k = 1
REENCODE = ContinuationOptions(scheme="reencode")


def test_reencode_carries_the_decoded_span_encoded_again(tiny_host: Any) -> None:
    """The carry is the VAE encode of the last 1 + 8k shown frames at each stage's size (latent 0 = anchor,
    1..k = tail), the next segment starts from exactly those latents in place, and its state resumes only under
    the same scheme."""
    pipeline = tiny_host.pipeline("tiny-ltx2")
    options = ContinuationOptions(scheme="reencode", hold_frames=0, decode_context=0)  # the cut at the end
    c = SessionController(pipeline, SETTINGS, options=options)
    sink = NullSink()
    c.run_segment(SegmentRequest(0, "a red ball bouncing", 100), sink)
    r0 = c.last_result
    span = np.concatenate(sink.frames)[-9:]  # segment 0 shows all its frames; the last 1 + 8k are the span
    carry = c.state.to_serialized().tensors  # the schema-1 layout: anchor1/2, stage1/2_tail, audio_tail
    g1 = r0.stage1.grid
    enc1 = pipeline.images.encode_frames(span, g1.height, g1.width)
    enc2 = pipeline.images.encode_frames(span, SETTINGS.height, SETTINGS.width)
    assert enc1.shape[2] == 2 and set(carry) == {
        "anchor1",
        "stage1_tail",
        "anchor2",
        "stage2_tail",
        "audio_tail",
    }
    assert torch.equal(carry["anchor1"], enc1[:, :, :1]) and torch.equal(carry["stage1_tail"], enc1[:, :, 1:])
    assert torch.equal(carry["anchor2"], enc2[:, :, :1]) and torch.equal(carry["stage2_tail"], enc2[:, :, 1:])
    # the causal encoder's latent 0 sees only the anchor frame: the latent schemes' one-frame anchor encode
    one = pipeline.images.encode_frames(span[0], g1.height, g1.width)
    torch.testing.assert_close(carry["anchor1"], one, rtol=1e-4, atol=1e-4)
    # the tail went through pixels: it is not the denoised latent latent_carry would copy
    assert not torch.equal(carry["stage1_tail"], r0.stage1.video_latent()[:, :, -1:])
    c.run_segment(SegmentRequest(1, "rain on a window", 101), sink)
    r1 = c.last_result
    assert torch.equal(r1.stage1.video_latent()[:, :, :2], enc1)  # written in place at sigma = 0
    assert r1.stage2 is not None and torch.equal(r1.stage2.video_latent()[:, :, :2], enc2)
    assert np.concatenate(sink.frames).shape[0] == 25 + 16
    resumed = ContinuationState.from_bytes(c.snapshot())
    assert SessionController(pipeline, SETTINGS, options=REENCODE, state=resumed).next_index == 2
    with pytest.raises(
        StateError, match="reencode"
    ):  # a state made with one scheme does not resume under another
        SessionController(pipeline, SETTINGS, state=resumed)


def test_reencode_resume_is_bit_exact(tiny_host: Any) -> None:
    """Three straight reencode segments equal one segment, a serialise/resume, then two more."""
    pipeline = tiny_host.pipeline("tiny-ltx2")
    prompts = ("a red ball bouncing", "a red ball bouncing", "rain on a window")

    def frames(c: SessionController, indices: range) -> list[np.ndarray]:
        out = []
        for i in indices:
            sink = NullSink()
            c.run_segment(SegmentRequest(i, prompts[i], 100 + i), sink)
            out.append(np.concatenate(sink.frames))
        return out

    straight = frames(SessionController(pipeline, SETTINGS, options=REENCODE), range(3))
    first = SessionController(pipeline, SETTINGS, options=REENCODE)
    frames(first, range(1))
    state = ContinuationState.from_bytes(first.snapshot())
    again = frames(SessionController(pipeline, SETTINGS, options=REENCODE, state=state), range(1, 3))
    assert all(np.array_equal(a, b) for a, b in zip(straight[1:], again, strict=True))
