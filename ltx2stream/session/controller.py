"""SessionController: runs a session's segments one after another with the frame-aligned latent carry.

A plain class with no I/O, driven from one worker thread. ``run_segment`` builds the segment's conditioning
from the ContinuationState (anchor + carried tails at both stage sizes, the audio prefix), runs the pipeline,
decodes progressively, trims the repeated span, pushes frames and audio to the sink, and only then replaces its
state — a cancelled or failed segment leaves the state exactly as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ltx2stream import codes
from ltx2stream.errors import InputError, SessionError
from ltx2stream.pipeline.conditioning import (
    AudioLatentCondition,
    ConditioningItem,
    KeyframeCondition,
    VideoLatentCondition,
)
from ltx2stream.pipeline.images import decode_image_bytes
from ltx2stream.pipeline.pipeline import GenerationResult, LTX2Pipeline, SegmentConditioning
from ltx2stream.pipeline.request import GenerationRequest, ImageInput, validate_request
from ltx2stream.pipeline.state import PromptContexts
from ltx2stream.session.api import (
    CancelToken,
    ImageCondition,
    SegmentCancelled,
    SegmentReport,
    SegmentRequest,
    SegmentSink,
    SessionSettings,
)
from ltx2stream.session.continuation import ContinuationState, compatibility
from ltx2stream.session.timeline import Timeline
from ltx2stream.types import VIDEO_TIME_SCALE

log = logging.getLogger(__name__)
SCHEMES = ("latent_carry", "keyframe_carry", "reencode")


@dataclass(frozen=True)
class ContinuationOptions:
    """Settings of the carry: strength of the carried latents (mask 1 − strength), extra audio context latents,
    optional conditioning noise (std of Gaussian noise mixed into the carried latents; 0 keeps them exact), and the
    scheme: ``latent_carry`` (default) writes the tail into canvas frames 1..k; ``keyframe_carry`` appends it as
    extra tokens at the same positions (docs/continuation.md), so canvas frames 1..k are regenerated while
    attending to it; ``reencode`` (the decode -> re-encode baseline) VAE-encodes the carried span's decoded pixels
    again and writes those latents in place."""

    carry_strength: float = 1.0
    audio_context: int = 0
    carry_noise: float = 0.0
    scheme: str = "latent_carry"

    def __post_init__(self) -> None:
        if not (0.0 <= self.carry_strength <= 1.0 and 0.0 <= self.carry_noise <= 1.0):
            raise InputError("carry_strength and carry_noise must be in [0, 1]", code=codes.INPUT_CARRY)
        if self.scheme not in SCHEMES:
            raise InputError(
                f"continuation scheme {self.scheme!r} is not one of {SCHEMES}", code=codes.INPUT_CARRY
            )


class SessionController:
    """Implements ``SessionGenerator`` on an LTX2Pipeline."""

    def __init__(
        self,
        pipeline: LTX2Pipeline,
        settings: SessionSettings,
        *,
        options: ContinuationOptions = ContinuationOptions(),
        image: ImageCondition | None = None,
        state: ContinuationState | None = None,
    ) -> None:
        if settings.preset != pipeline.preset.name:
            raise InputError(
                f"session preset {settings.preset!r} does not match the pipeline's {pipeline.preset.name!r}",
                code=codes.INPUT_PRESET,
            )
        self.pipeline = pipeline
        self.settings = settings
        self.options = options
        self.timeline = Timeline(settings.frames, settings.fps, settings.overlap, options.audio_context)
        self._image = self._image_input(image)
        validate_request(self._request(SegmentRequest(0, "probe", 0)), two_stage=pipeline.preset.two_stage)
        if state is not None:
            state.check_compatible(compatibility(settings, asdict(options)))
        self._state = state
        self.last_result: GenerationResult | None = None  # latents of the last segment (diagnostics, tests)

    # -- SessionGenerator -------------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.pipeline.sample_rate

    @property
    def next_index(self) -> int:
        return 0 if self._state is None else self._state.next_index

    @property
    def state(self) -> ContinuationState | None:
        return self._state

    def snapshot(self) -> bytes:
        return (self._state or self._blank()).to_bytes()

    def run_segment(
        self, request: SegmentRequest, sink: SegmentSink, cancel: CancelToken | None = None
    ) -> SegmentReport:
        n = request.index
        if n != self.next_index:
            raise SessionError(
                f"segment {n} requested but the next segment is {self.next_index}",
                code=codes.SESSION_SEGMENT_ORDER,
            )
        clock = _Clock()
        contexts = self._contexts(request)
        clock.mark("text")

        def progress(stage: str, step: int, total: int) -> None:
            clock.mark(stage)
            if cancel is not None and cancel.cancelled:
                raise SegmentCancelled(n)
            sink.progress(stage, step, total)

        result = self.pipeline.generate_latents(
            self._request(request), contexts, extra=self._conditioning(n, request), progress=progress
        )
        frames, span = self._emit_video(n, result, sink)
        clock.mark("decode")
        samples = self._emit_audio(n, result, sink)
        clock.mark("audio")
        self._state = self._next_state(n, request, result, span)
        self.last_result = result
        return SegmentReport(n, request.prompt, request.seed, frames, samples, clock.timings)

    # -- building blocks --------------------------------------------------------------------------------------
    def _blank(self) -> ContinuationState:
        return ContinuationState(self.settings, -1, 0, 0, self.sample_rate, options=asdict(self.options))

    def _image_input(self, image: ImageCondition | None) -> ImageInput | None:
        if image is None:
            return None
        latent_frame = -(-image.frame // VIDEO_TIME_SCALE)  # pixel frame p -> latent ceil(p / 8)
        return ImageInput(
            pixels=decode_image_bytes(image.data), latent_frame=latent_frame, strength=image.strength
        )

    def _request(self, req: SegmentRequest) -> GenerationRequest:
        s, p = self.settings, self.pipeline.preset
        images = (self._image,) if req.index == 0 and self._image is not None else ()
        return GenerationRequest(
            req.prompt, s.height, s.width, s.frames, s.fps, req.seed, images=images, image_crf=p.image_crf
        )

    def _contexts(self, req: SegmentRequest) -> PromptContexts:
        ctx = self.pipeline.encode_prompt(req.prompt)
        if req.transition == "blend" and req.blend_from is not None and req.blend_weight < 1.0:
            return self.pipeline.encode_prompt(req.blend_from).blend(ctx, req.blend_weight)
        return ctx

    def _conditioning(self, n: int, req: SegmentRequest) -> SegmentConditioning:
        t = self.timeline
        timeline = {
            "audio_latents": t.audio_latents(n),
            "audio_start_index": t.audio_canvas_start(n),
            "time_origin_s": t.start_time(n),
        }
        st = self._state
        if st is None or not st.tensors:
            return SegmentConditioning(**timeline)  # type: ignore[arg-type]
        device = self.pipeline.c.device  # a resumed state arrives on the CPU
        tensors = {
            k: self._noised(v.to(device), req.seed, i) for i, (k, v) in enumerate(sorted(st.tensors.items()))
        }
        strength = self.options.carry_strength
        audio: tuple[ConditioningItem, ...] = (AudioLatentCondition(tensors["audio_tail"], 0, strength),)
        stage1 = (
            VideoLatentCondition(tensors["anchor1"], 0, 1.0),
            self._tail(tensors["stage1_tail"]),
        ) + audio
        stage2: tuple[ConditioningItem, ...] = ()
        if "stage2_tail" in tensors:
            stage2 = (
                VideoLatentCondition(tensors["anchor2"], 0, 1.0),
                self._tail(tensors["stage2_tail"]),
            ) + audio
        return SegmentConditioning(stage1, stage2, **timeline)  # type: ignore[arg-type]

    def _tail(self, tail: torch.Tensor) -> ConditioningItem:
        """The carried tail at canvas latent frames 1..k: written in place, or appended at the same positions
        (pixel offset 1: latent j of a k-frame grid then covers [8j + 1, 8j + 9), as canvas frame j + 1 does)."""
        if self.options.scheme == "keyframe_carry":
            return KeyframeCondition(
                tail,
                pixel_frame=1,
                fps=self.settings.fps,
                strength=self.options.carry_strength,
                from_single_image=False,
            )
        return VideoLatentCondition(tail, 1, self.options.carry_strength)

    def _noised(self, t: torch.Tensor, seed: int, salt: int) -> torch.Tensor:
        s = self.options.carry_noise
        if s == 0.0:
            return t
        g = torch.Generator().manual_seed((seed * 31 + salt) & (2**63 - 1))
        noise = torch.randn(t.shape, generator=g).to(t.device)
        return (t.float() * (1.0 - s) + noise * s).to(t.dtype)

    def _emit_video(
        self, n: int, result: GenerationResult, sink: SegmentSink
    ) -> tuple[int, np.ndarray | None]:
        """Pushes the new frames; returns their count and the carried span's pixels (the anchor frame and the
        8k frames after it, [1 + 8k, H, W, 3]; None if the decoder stopped short)."""
        first, anchor_at = self.timeline.first_new_frame(n), self.timeline.anchor_index
        index, sent, span = 0, 0, []
        for chunk in self.pipeline.decode_video(result.video_latent):  # [f, H, W, 3] uint8
            f = chunk.shape[0]
            if index + f > anchor_at:
                span.append(chunk[max(anchor_at - index, 0) :].copy())
            lo = max(first - index, 0)
            if lo < f:
                sink.video(chunk[lo:])
                sent += f - lo
            index += f
        return sent, (np.concatenate(span) if span else None)

    def _emit_audio(self, n: int, result: GenerationResult, sink: SegmentSink) -> int:
        decoded = self.pipeline.decode_audio(result.audio_latent)
        wave = decoded.waveform[0].float().cpu().numpy()  # [2, N]
        a, b = self.timeline.audio_slice(n, decoded.sample_rate)
        out = np.zeros((wave.shape[0], b - a), dtype=np.float32)
        avail = wave[:, a:b]
        out[:, : avail.shape[1]] = avail
        if avail.shape[1] < b - a:
            log.warning(
                "segment %d: decoded audio is %d samples short; padded with silence",
                n,
                b - a - avail.shape[1],
            )
        sink.audio(np.clip(out, -1.0, 1.0))
        return b - a

    def _next_state(
        self, n: int, req: SegmentRequest, result: GenerationResult, span: np.ndarray | None
    ) -> ContinuationState:
        t, s = self.timeline, self.settings
        tensors: dict[str, torch.Tensor] = {}
        k = s.overlap
        if k and span is not None:
            g1 = result.stage1.grid
            if self.options.scheme == "reencode":
                # decode -> re-encode: the carried span's pixels (anchor + 8k frames) VAE-encoded again at each
                # stage's size; the causal encoder's latent 0 is the anchor, latents 1..k the tail
                sizes = {"1": (g1.height, g1.width), "2": (s.height, s.width)}
                for stage in ("1", "2") if result.stage2 is not None else ("1",):
                    latent = self.pipeline.images.encode_frames(
                        span, *sizes[stage]
                    ).float()  # (1, C, 1 + k, h, w)
                    tensors[f"anchor{stage}"] = latent[:, :, :1].clone()
                    tensors[f"stage{stage}_tail"] = latent[:, :, 1:].clone()
            else:
                tensors["stage1_tail"] = result.stage1.video_latent()[:, :, -k:].float().clone()
                tensors["anchor1"] = self.pipeline.images.encode_frames(span[0], g1.height, g1.width).float()
                if result.stage2 is not None:
                    tensors["stage2_tail"] = result.stage2.video_latent()[:, :, -k:].float().clone()
                    tensors["anchor2"] = self.pipeline.images.encode_frames(
                        span[0], s.height, s.width
                    ).float()
            lo = t.audio_canvas_start(n + 1) - t.audio_canvas_start(n)
            hi = t.audio_carry_end(n + 1) - t.audio_canvas_start(n)
            tensors["audio_tail"] = result.audio_latent[:, :, lo:hi].float().clone()
        prev = self._state
        history = (prev.prompt_history if prev else ()) + (
            {
                "segment": n,
                "prompt": req.prompt,
                "seed": req.seed,
                "transition": req.transition,
                "blend_from": req.blend_from,
                "blend_weight": req.blend_weight,
            },
        )
        return ContinuationState(
            s,
            n,
            t.delivered_frames(n),
            t.delivered_samples(n, self.sample_rate),
            self.sample_rate,
            tensors,
            history,
            (prev.seeds if prev else ()) + (req.seed,),
            asdict(self.options),
        )


class _Clock:
    """Wall time per phase: a mark closes the phase that just reported (progress events name the stages)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._last
        self._last = now
