"""LTX2Pipeline: the stages composed into one- and two-stage text/image-to-video+audio generation.

    text ─► RefineInit ─► LatentPreparation ─► conditioning ─► noise ─► Denoising(stage 1)
         ─► [Upsample ─► RefineLoRA{ Denoising(stage 2) }] ─► (AudioDecoding, VideoDecoding — separate calls)

Generation returns latents; decoding is separate so callers (the session controller) can trim, decode
progressively and encode as frames arrive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ltx2stream import codes
from ltx2stream.models.audio import DecodedAudio
from ltx2stream.pipeline.components import Components
from ltx2stream.pipeline.conditioning import ConditioningItem
from ltx2stream.pipeline.presets import Preset
from ltx2stream.pipeline.request import GenerationRequest, validate_request
from ltx2stream.pipeline.stages.conditioning import LTX2ImageConditioningStage, condition
from ltx2stream.pipeline.stages.decode import LTX2AudioDecodingStage, LTX2VideoDecodingStage
from ltx2stream.pipeline.stages.denoise import LTX2DenoisingStage
from ltx2stream.pipeline.stages.latents import LTX2LatentPreparationStage, add_noise
from ltx2stream.pipeline.stages.refine import LTX2RefineInitStage, LTX2RefineLoRAStage, LTX2UpsampleStage
from ltx2stream.pipeline.stages.text import LTX2TextEncodingStage
from ltx2stream.pipeline.state import AVState, PromptContexts, StageGrid
from ltx2stream.types import AUDIO_LATENTS_PER_SECOND, AUDIO_MARGIN_LATENTS, MAX_SEED

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
STAGE2_SEED_MIX = 0x2545F4914F6CDD1D


@dataclass(frozen=True)
class SegmentConditioning:
    """Extra conditioning items per stage (continuation latents, audio prefixes); video items at that stage's grid."""

    stage1: tuple[ConditioningItem, ...] = ()
    stage2: tuple[ConditioningItem, ...] = ()
    audio_latents: int | None = None  # audio canvas length (session timeline), default from the duration
    audio_start_index: int = 0  # global audio latent index of the canvas start
    time_origin_s: float = 0.0  # session time of the segment's pixel frame 0


@dataclass(frozen=True)
class GenerationResult:
    """Denoised states of both stages (``stage2`` None for one-stage presets) and the final latents."""

    stage1: AVState
    stage2: AVState | None

    @property
    def final(self) -> AVState:
        return self.stage2 if self.stage2 is not None else self.stage1

    @property
    def video_latent(self) -> torch.Tensor:
        return self.final.video_latent()

    @property
    def audio_latent(self) -> torch.Tensor:
        return self.final.audio_latent()


class LTX2Pipeline:
    def __init__(
        self,
        components: Components,
        preset: Preset,
        *,
        sigmas_override: list[float] | None = None,
        num_inference_steps_override: int | None = None,
        force_guidance_scale: float | None = None,
        chunk_latent_frames: int = 2,
    ) -> None:
        self.c = components
        self.preset = preset
        self.text = LTX2TextEncodingStage(components.text_encoder, group=components.group)
        self.refine_init = LTX2RefineInitStage(enabled=preset.two_stage)
        self.prepare = LTX2LatentPreparationStage(device=components.device, dtype=torch.float32)
        self.images = LTX2ImageConditioningStage(components.vae)
        self.stage1 = LTX2DenoisingStage(
            components.transformer,
            sigmas_override=sigmas_override,
            num_inference_steps_override=num_inference_steps_override,
            force_guidance_scale=force_guidance_scale,
        )
        self.stage2 = LTX2DenoisingStage(components.transformer)
        self.video_decode = LTX2VideoDecodingStage(
            components.vae, tiling=components.tiling, chunk_latent_frames=chunk_latent_frames
        )
        self.audio_decode = LTX2AudioDecodingStage(components.audio)

    @property
    def sample_rate(self) -> int:
        return self.audio_decode.sample_rate

    def encode_prompt(self, prompt: str, negative_prompt: str | None = None) -> PromptContexts:
        stage2_guided = self.preset.stage2 is not None and self.preset.stage2.guided
        guided = (
            self.preset.stage1.guided or stage2_guided or self.stage1.force_guidance_scale not in (None, 1.0)
        )
        neg = (
            (negative_prompt if negative_prompt is not None else self.preset.negative_prompt)
            if guided
            else None
        )
        return self.text(prompt, neg)

    def generate_latents(
        self,
        request: GenerationRequest,
        contexts: PromptContexts | None = None,
        *,
        extra: SegmentConditioning = SegmentConditioning(),
        progress: Progress | None = None,
    ) -> GenerationResult:
        """Validate, then run stage 1 (and the refine path) and return the denoised latents."""
        validate_request(request, two_stage=self.preset.two_stage)
        if contexts is None:
            contexts = self.encode_prompt(request.prompt, request.negative_prompt or None)
        plan = self.refine_init(
            StageGrid(
                request.height,
                request.width,
                request.frames,
                request.fps,
                audio_latents=extra.audio_latents,
                audio_start_index=extra.audio_start_index,
                time_origin_s=extra.time_origin_s,
            )
        )
        state = self.prepare(plan.stage1)
        state = condition(state, self.images.items(request, plan.stage1) + extra.stage1)
        sig1 = self.stage1.sigmas(self.preset.stage1)
        state = add_noise(state, request.seed, sig1[0])
        s1 = self.stage1(
            state, contexts, self.preset.stage1, callback=_cb(progress, "stage1"), seed=request.seed
        )
        if self.preset.stage2 is None:
            return GenerationResult(s1, None)
        return GenerationResult(s1, self._refine(request, plan.target, s1, contexts, extra, progress))

    def _refine(
        self,
        request: GenerationRequest,
        target: StageGrid,
        s1: AVState,
        contexts: PromptContexts,
        extra: SegmentConditioning,
        progress: Progress | None,
    ) -> AVState:
        assert self.preset.stage2 is not None
        if self.c.upsampler is None:
            from ltx2stream.errors import ConfigError

            raise ConfigError(
                f"preset {self.preset.name} is two-stage and needs a latent upsampler file",
                code=codes.CONFIG_NO_UPSAMPLER,
            )
        sig2 = self.stage2.sigmas(self.preset.stage2)
        upsample = LTX2UpsampleStage(
            upsampler=self.c.upsampler,
            vae=self.c.vae,
            sigmas=tuple(sig2),
            add_noise=self.preset.add_noise,
            prepare=self.prepare,
        )
        items = self.images.items(request, target) + extra.stage2
        state = upsample(s1, target, items, stage2_seed(request.seed))
        if progress is not None:
            progress("upsample", 1, 1)
        # The official stage 2 is unguided: its negatives are dropped unless a preset guides stage 2.
        guided = self.preset.stage2.guided
        stage2_contexts = contexts if guided else PromptContexts(contexts.video, contexts.audio)
        with LTX2RefineLoRAStage(self.c.transformer, self.c.refine_lora, self.preset.refine_lora_strength):
            return self.stage2(state, stage2_contexts, self.preset.stage2, callback=_cb(progress, "stage2"))

    def decode_video(self, latent: torch.Tensor, skip: int = 0) -> Iterator[np.ndarray]:
        """uint8 chunks [f, H, W, 3] of frames ``skip``, ``skip + 1``, ... as the progressive decoder yields them
        (what only feeds the skipped frames is not decoded)."""
        return self.video_decode(latent, skip)

    def decode_audio(self, latent: torch.Tensor) -> DecodedAudio:
        return self.audio_decode(latent)

    def decode_audio_mel(self, latent: torch.Tensor) -> torch.Tensor:
        """The first half of :meth:`decode_audio`: the audio VAE's log-mel [B, 2, T_mel, 64]."""
        return self.audio_decode.mel(latent)

    def vocode(self, mel: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The second half, for samples [start, stop) only (equal to the same samples of :meth:`decode_audio`
        within float rounding; the vocoder runs on the mel frames they need plus its reach)."""
        return self.audio_decode.vocode(mel, start, stop)

    def decode_audio_span(self, latent: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) of :meth:`decode_audio`'s waveform from the shortest latent prefix that gives
        them (the audio decoder is causal along time): ready before the whole canvas is decoded."""
        return self.audio_decode.span(latent, start, stop)

    def generate(
        self, request: GenerationRequest, *, progress: Progress | None = None
    ) -> tuple[np.ndarray, DecodedAudio, GenerationResult]:
        """Latents, then all frames (uint8 [F, H, W, 3]) and exactly ``frames / fps`` seconds of audio.

        The audio canvas gets a few latents past the video's end (the causal audio decoder returns 4T − 3 mel
        frames), and the waveform is cut to the video's duration.
        """
        audio_latents = math.ceil(request.duration_s * AUDIO_LATENTS_PER_SECOND) + AUDIO_MARGIN_LATENTS
        result = self.generate_latents(
            request, extra=SegmentConditioning(audio_latents=audio_latents), progress=progress
        )
        frames = np.concatenate(list(self.decode_video(result.video_latent)), axis=0)
        if progress is not None:
            progress("decode", 1, 1)
        audio = self.decode_audio(result.audio_latent)
        samples = round(request.duration_s * audio.sample_rate)
        wave = audio.waveform[..., :samples]
        if wave.shape[-1] < samples:  # never expected with the margin; keep the duration exact regardless
            wave = torch.nn.functional.pad(wave, (0, samples - wave.shape[-1]))
        return frames, DecodedAudio(wave, audio.sample_rate), result


def stage2_seed(seed: int) -> int:
    """Seed of the stage-2 noise: a fixed bit mix of the request seed, so it never equals another segment's seed + n."""
    return (seed ^ STAGE2_SEED_MIX) & MAX_SEED


def _cb(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda step, total: progress(name, step, total)
