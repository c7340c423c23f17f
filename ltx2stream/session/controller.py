"""SessionController: runs a session's segments one after another with the frame-aligned latent carry.

A plain class with no I/O, driven from one worker thread. ``run_segment`` builds the segment's conditioning
from the ContinuationState (anchor + carried tails at both stage sizes, the audio prefix), runs the pipeline,
decodes progressively, trims the repeated span, pushes frames and audio to the sink, and only then replaces its
state — a cancelled or failed segment leaves the state exactly as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ltx2stream import codes
from ltx2stream.errors import InputError, SessionError, StateError
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
from ltx2stream.session.continuation import (
    DEFAULT_OPTIONS,
    Carry,
    ContinuationOptions,
    ContinuationState,
    StageCarry,
)
from ltx2stream.session.timeline import Timeline
from ltx2stream.types import MAX_SEED, VIDEO_TIME_SCALE, latent_index_of

# the audio of a segment's first new frames is decoded ahead of the rest (``Progressive``) and goes out with the
# first piece: 4 frames (a third of a second at 12 fps) are several AAC packets, and their latent prefix is short
FIRST_AUDIO_FRAMES = 4
# once that first share is out, the audio thread's niceness rises by this much for the rest of its segment: on a
# CPU worker the first piece's encoding (the encoder process) then takes the core from the rest of the audio,
# which is not needed before the segment's last piece (2 cores, bench preset: the first piece's encode 8-9 ms
# instead of 13-19, the first media byte 0.41-0.44 x the decode instead of 0.50-0.61; docs/performance.md)
AUDIO_REST_NICE = 10

log = logging.getLogger(__name__)


class SessionController:
    """Implements ``SessionGenerator`` on an LTX2Pipeline."""

    def __init__(
        self,
        pipeline: LTX2Pipeline,
        settings: SessionSettings,
        *,
        options: ContinuationOptions = DEFAULT_OPTIONS,
        image: ImageCondition | None = None,
        state: ContinuationState | None = None,
    ) -> None:
        if settings.preset != pipeline.preset.name:
            raise InputError(
                f"session preset {settings.preset!r} does not match the pipeline's {pipeline.preset.name!r}",
                code=codes.INPUT_PRESET,
            )
        if state is not None:  # a resumed session keeps its cuts (its frames delivered follow them)
            options = replace(
                options, hold_frames=state.options.hold_frames, decode_context=state.options.decode_context
            )
        self.pipeline = pipeline
        self.settings = settings
        self.options = options
        plain = Timeline(settings.frames, settings.fps, settings.overlap, options.audio_context)
        hold = min(options.hold_frames, plain.max_hold)  # never beyond the carried span
        self.timeline = Timeline(settings.frames, settings.fps, settings.overlap, options.audio_context, hold)
        self._image = self._image_input(image)
        validate_request(self._request(SegmentRequest(0, "probe", 0)), two_stage=pipeline.preset.two_stage)
        if state is not None:
            if state.model and state.model != pipeline.preset.flavour:
                raise StateError(
                    f"continuation state was written by a {state.model} model; this session runs "
                    f"{pipeline.preset.flavour} (preset {pipeline.preset.name!r})",
                    code=codes.STATE_MODEL_VERSION,
                )
            state.check_fits(settings, options)
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
        # the audio decodes beside the video (its own thread), its first frames' share first, so the first piece
        # of media carries sound without waiting for the whole audio decode
        after_final = self._after_final()
        audio = Progressive(lambda: self._segment_audio(n, result, after_final))
        try:
            out = self._emit(n, result, audio, sink, cancel, _Cut(request.final, after_final))
        finally:
            audio.wait()
        sink.media_complete()  # the segment's last piece can leave before the carry below
        clock.mark("decode")
        state = self._next_state(n, request, result, out.span, out.final)
        clock.mark("carry")
        self._state, self.last_result = state, result
        return SegmentReport(n, request.prompt, request.seed, out.frames, out.samples, clock.timings)

    # -- building blocks --------------------------------------------------------------------------------------
    def _blank(self) -> ContinuationState:
        return ContinuationState(
            self.settings, self.options, -1, 0, 0, self.sample_rate, model=self.pipeline.preset.flavour
        )

    def _after_final(self) -> bool:
        """The previous segment was final (it showed the frames it would have held): this one trims them."""
        prev, t = self._state, self.timeline
        return (
            prev is not None
            and t.hold > 0
            and prev.segment_index >= 0
            and prev.frames_delivered == t.delivered_frames(prev.segment_index, final=True)
        )

    def _image_input(self, image: ImageCondition | None) -> ImageInput | None:
        if image is None:
            return None
        return ImageInput(
            pixels=decode_image_bytes(image.data),
            latent_frame=latent_index_of(image.frame),
            strength=image.strength,
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
        carry = None if self._state is None else self._state.carry
        if carry is None:
            stage1: tuple[ConditioningItem, ...] = ()
            stage2: tuple[ConditioningItem, ...] = ()
        else:
            device = self.pipeline.c.device  # a resumed state arrives on the CPU
            carry = carry.map(lambda x, salt: self._noised(x.to(device), req.seed, salt))
            audio = AudioLatentCondition(carry.audio_tail, 0, self.options.carry_strength)
            stage1 = self._stage_items(carry.stage1) + (audio,)
            stage2 = () if carry.stage2 is None else self._stage_items(carry.stage2) + (audio,)
        return SegmentConditioning(
            stage1=stage1,
            stage2=stage2,
            audio_latents=t.audio_latents(n),
            audio_start_index=t.audio_canvas_start(n),
            time_origin_s=t.start_time(n),
        )

    def _stage_items(self, stage: StageCarry) -> tuple[ConditioningItem, ...]:
        """The anchor at canvas latent frame 0 (strength 1), then the carried tail."""
        return (VideoLatentCondition(stage.anchor, 0, 1.0), self._tail(stage.tail))

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
        g = torch.Generator().manual_seed((seed * 31 + salt) & MAX_SEED)
        noise = torch.randn(t.shape, generator=g).to(t.device)
        return (t.float() * (1.0 - s) + noise * s).to(t.dtype)

    def _emit(
        self,
        n: int,
        result: GenerationResult,
        decoding: Progressive,
        sink: SegmentSink,
        cancel: CancelToken | None,
        cut: _Cut,
    ) -> _Emitted:
        """Pushes the new frames as the progressive decoder yields them, each chunk preceded by the audio up to
        its end as far as it is decoded (the first chunk waits for its sound and, as it may be a single frame, takes
        the first ``FIRST_AUDIO_FRAMES`` frames' audio; later chunks never wait: the video decoder keeps going and
        the audio catches up in later pieces); the second half of the last chunk's audio follows it
        (so the encoder still holds bytes for the segment's last piece). Returns the frame count and the carried
        span's pixels (the anchor frame and the 8k frames after it, [1 + 8k, H, W, 3]; None if the decoder
        stopped short). The cancel token is checked after every decoded chunk, before the next one is decoded
        (cancellation within one decode chunk). Frames from ``shown_end`` on (the hold) are decoded for the carried
        span but not sent: the next segment shows them — unless the segment is final, which is decided when the
        decoder reaches them (``cut.final``, or the cancel token's ``finish`` set by then: a stop that came during
        the segment)."""
        t, sr = self.timeline, self.pipeline.sample_rate
        final = cut.final
        first, anchor_at, end = t.first_new_frame(n, cut.after_final), t.anchor_index, t.shown_end(final)
        total = end - first
        a, b = t.audio_slice(n, sr, final, cut.after_final)
        index = min(first, anchor_at)  # the trimmed frames are not decoded (the carried span may reach back)
        # the first piece takes the audio of the first FIRST_AUDIO_FRAMES new frames (decoded first) even when it
        # holds fewer frames (the decoder's first piece may be one frame: less audio than one AAC packet needs);
        # counted as the audio thread counts its first share (up to the final cut), so that share covers it
        b_all, total_all = t.audio_slice(n, sr, True, cut.after_final)[1], t.shown_end(True) - first
        ahead = min(audio_share(b_all - a, min(FIRST_AUDIO_FRAMES, total_all - 1), total_all), b - a)
        sent, fed, span = 0, 0, []
        latent, offset = self._decode_input(result)
        for chunk in self.pipeline.decode_video(latent, index + offset):  # [f, H, W, 3] uint8
            f = chunk.shape[0]
            if index + f > anchor_at:
                span.append(chunk[max(anchor_at - index, 0) :].copy())
            lo = max(first - index, 0)
            if not final and index + f > end and cancel is not None and cancel.finishing:
                final = True  # the session ends here: the held frames go out too
                end = t.shown_end(final)
                total = end - first
                a, b = t.audio_slice(n, sr, final, cut.after_final)
            chunk = chunk[: max(end - index, 0)]  # the held frames stay behind
            index += f
            if lo < chunk.shape[0]:
                f = chunk.shape[0]
                # the audio up to this chunk's end goes first; of the last chunk's, the second half follows it
                new = f - lo
                upto = audio_share(b - a, sent + (new if sent + new < total else new // 2), total)
                if sent == 0:  # the first piece waits for its sound
                    want = max(upto, ahead) if new < total else upto
                    audio = decoding.upto(want)
                    upto = min(want, audio.shape[1])
                else:  # later pieces take the audio decoded so far: the video decoder never waits for sound
                    audio = decoding.latest()
                    upto = min(upto, audio.shape[1])
                sent += new
                if upto > fed:
                    sink.audio(audio[:, fed:upto])
                    fed = upto
                sink.video(chunk[lo:])
            if cancel is not None and cancel.cancelled:  # within one decode chunk: before the next is decoded
                raise SegmentCancelled(n)
        audio = decoding.result()[:, : b - a]  # decoded up to the final cut; sent up to this segment's
        if fed < audio.shape[1]:
            sink.audio(audio[:, fed:])
        return _Emitted(sent, audio.shape[1], np.concatenate(span) if span else None, final)

    def _decode_input(self, result: GenerationResult) -> tuple[torch.Tensor, int]:
        """The latents the decoder sees, and the frame offset of the segment's frame 0 among its output frames:
        the carried decode context (the previous segment's latents before its tail) in place of the anchor, so
        the carried span decodes as the previous segment's continuation; the segment's own latents where there is
        no context (the first segment, overlap 0, ``decode_context`` 0, states written before it)."""
        latent = result.video_latent
        carry = None if self._state is None else self._state.carry
        if carry is None or carry.decode_context is None:
            return latent, 0
        context = carry.decode_context.to(device=latent.device, dtype=latent.dtype)
        # the context's last latent ends on the anchor frame: the segment's frame p is output frame p + 8(c - 1)
        return torch.cat([context, latent[:, :, 1:]], dim=2), VIDEO_TIME_SCALE * (context.shape[2] - 1)

    def _segment_audio(self, n: int, result: GenerationResult, after_final: bool) -> Iterator[np.ndarray]:
        """The segment's new audio, float32 [channels, samples] in [-1, 1] (tied to its new frames, up to its
        final cut: the held frames' audio is decoded too, and sent only if the segment turns out final), the
        carried span's audio never vocoded: first the share of the first ``FIRST_AUDIO_FRAMES`` new frames, from
        the shortest latent prefix that gives it (the audio VAE is causal along time; yielded at once: the first
        piece of media needs only it), then the mel of the whole canvas and the vocoder on the rest of the new
        span (yielded with the first: the whole new audio)."""
        t = self.timeline
        a, b = t.audio_slice(n, self.pipeline.sample_rate, True, after_final)
        total = t.shown_end(True) - t.first_new_frame(n, after_final)
        first = audio_share(b - a, min(FIRST_AUDIO_FRAMES, total), total)
        latent = result.audio_latent
        parts: list[np.ndarray] = []
        if 0 < first < b - a:
            parts.append(self.pipeline.decode_audio_span(latent, a, a + first)[0].cpu().numpy())
            yield np.clip(parts[0], -1.0, 1.0)
            a += first
        parts.append(self.pipeline.vocode(self.pipeline.decode_audio_mel(latent), a, b)[0].cpu().numpy())
        a, b = t.audio_slice(n, self.pipeline.sample_rate, True, after_final)
        got = np.concatenate(parts, axis=1)
        out = np.zeros((got.shape[0], b - a), dtype=np.float32)
        out[:, : got.shape[1]] = got
        if got.shape[1] < b - a:
            log.warning(
                "segment %d: decoded audio is %d samples short; padded with silence", n, b - a - got.shape[1]
            )
        yield np.clip(out, -1.0, 1.0)

    def _next_state(
        self, n: int, req: SegmentRequest, result: GenerationResult, span: np.ndarray | None, final: bool
    ) -> ContinuationState:
        t, s, prev = self.timeline, self.settings, self._state
        return ContinuationState(
            s,
            self.options,
            n,
            t.delivered_frames(n, final),
            t.delivered_samples(n, self.sample_rate, final),
            self.sample_rate,
            self._carry(n, result, span),
            (prev.prompt_history if prev else ()) + (req,),
            (prev.seeds if prev else ()) + (req.seed,),
            model=self.pipeline.preset.flavour,
        )

    def _carry(self, n: int, result: GenerationResult, span: np.ndarray | None) -> Carry | None:
        """Per stage the anchor (the frame before the carried span, encoded as a one-frame latent at the stage's
        size) and the tail (the last k latent frames), and the audio latents of the carried span (plus the extra
        context) — all float32 copies. ``span``: the carried span's pixels, anchor first."""
        t, s, k = self.timeline, self.settings, self.settings.overlap
        if not k or span is None:
            return None
        g1 = result.stage1.grid
        stage1 = self._stage_carry(span, result.stage1.video_latent(), g1.height, g1.width)
        stage2 = None
        if result.stage2 is not None:
            stage2 = self._stage_carry(span, result.stage2.video_latent(), s.height, s.width)
        lo = t.audio_canvas_start(n + 1) - t.audio_canvas_start(n)
        hi = t.audio_carry_end(n + 1) - t.audio_canvas_start(n)
        # the decoder context: up to decode_context latents before the tail, never the latent-0 anchor
        end = t.latent_frames - k
        c = min(self.options.decode_context, end - 1)
        video = result.video_latent
        context = video[:, :, end - c : end].float().clone() if c > 0 else None
        return Carry(stage1, stage2, result.audio_latent[:, :, lo:hi].float().clone(), context)

    def _stage_carry(self, span: np.ndarray, latent: torch.Tensor, height: int, width: int) -> StageCarry:
        if self.options.scheme == "reencode":
            # decode -> re-encode: the carried span's pixels (anchor + 8k frames) VAE-encoded again; the causal
            # encoder's latent 0 is the anchor, latents 1..k the tail
            encoded = self.pipeline.images.encode_frames(span, height, width).float()  # (1, C, 1 + k, h, w)
            return StageCarry(encoded[:, :, :1].clone(), encoded[:, :, 1:].clone())
        k = self.settings.overlap
        return StageCarry(
            self.pipeline.images.encode_frames(span[0], height, width).float(),
            latent[:, :, -k:].float().clone(),
        )


@dataclass(frozen=True)
class _Emitted:
    """What ``_emit`` sent: frames and samples, the carried span's pixels, and whether the segment was final."""

    frames: int
    samples: int
    span: np.ndarray | None
    final: bool


@dataclass(frozen=True)
class _Cut:
    """Where a segment's shown frames start and end: ``final`` (requested) shows the frames a segment otherwise
    holds for the next one; ``after_final``: the previous segment was final, so this one starts after all it
    decoded."""

    final: bool
    after_final: bool


class Progressive:
    """``fn()`` on its own thread (one torch thread), started now: it yields ever longer prefixes of one array
    [channels, samples]. ``upto(k)`` waits for the first prefix holding ``k`` samples (or the end) and returns
    it; ``result()`` returns the last; both raise what ``fn`` raised. The segment's audio decodes this way while
    the video decoder runs: the first piece of media needs only the first prefix, and once it is out the thread
    yields the CPU to the encoding of that piece (``AUDIO_REST_NICE``)."""

    def __init__(self, fn: Callable[[], Iterator[np.ndarray]]) -> None:
        self._latest: np.ndarray | None = None
        self._done = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(fn,), name="ltx2stream-audio", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Iterator[np.ndarray]]) -> None:
        torch.set_num_threads(1)
        try:
            for i, part in enumerate(fn()):
                with self._cond:
                    self._latest = part
                    self._cond.notify_all()
                if i == 0:
                    _lower_own_priority(AUDIO_REST_NICE)
        except BaseException as e:  # noqa: BLE001 - handed to the caller by upto() / result()
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def upto(self, samples: int) -> np.ndarray:
        with self._cond:
            self._cond.wait_for(
                lambda: self._done or (self._latest is not None and self._latest.shape[1] >= samples)
            )
            if self._error is not None:
                raise self._error
            assert self._latest is not None
            return self._latest

    def latest(self) -> np.ndarray:
        """The longest prefix decoded so far, without waiting (raises what ``fn`` raised); call after a first
        ``upto``."""
        with self._cond:
            if self._error is not None:
                raise self._error
            assert self._latest is not None, "latest() before the first prefix"
            return self._latest

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> np.ndarray:
        self._thread.join()
        return self.upto(0)


def _lower_own_priority(increment: int) -> None:
    """Raise the calling thread's niceness by ``increment`` (Linux: per thread; elsewhere, or where not
    permitted, nothing changes). The thread ends with its segment, so it is never lowered back."""
    if increment <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + increment, 19))


def audio_share(samples: int, frames_sent: int, frames_total: int) -> int:
    """Audio samples that go with the first ``frames_sent`` of ``frames_total`` new frames (rounded down)."""
    return samples * frames_sent // frames_total


class _Clock:
    """Wall time per phase: a mark closes the phase that just reported (progress events name the stages)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._last
        self._last = now
