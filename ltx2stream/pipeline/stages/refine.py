"""The refine path of a two-stage pipeline: RefineInit (half-size stage 1), Upsample (×2 latent upsampler, conditioning
re-applied at full size, re-noise at the first stage-2 sigma), RefineLoRA (stage-2 LoRA applied, then removed).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.conditioning import ConditioningItem
from ltx2stream.pipeline.latent_state import audio_to_tokens, video_to_tokens
from ltx2stream.pipeline.schedules import DISTILLED_STAGE2
from ltx2stream.pipeline.stages.conditioning import condition
from ltx2stream.pipeline.stages.latents import LTX2LatentPreparationStage, add_noise
from ltx2stream.pipeline.state import AVState, StageGrid

if TYPE_CHECKING:
    from ltx2stream.models.upsampler import LatentUpsampler
    from ltx2stream.models.video_vae import VideoVAE


@dataclass(frozen=True)
class RefinePlan:
    """Stage-1 grid and the remembered target grid (equal when the refine path is off)."""

    stage1: StageGrid
    target: StageGrid

    @property
    def refining(self) -> bool:
        return self.stage1 != self.target


class LTX2RefineInitStage:
    """Switch a request to half resolution for stage 1 and remember the target; a no-op when disabled."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __call__(self, target: StageGrid) -> RefinePlan:
        return RefinePlan(target.half() if self.enabled else target, target)


class LTX2UpsampleStage:
    """Stage-1 result -> stage-2 starting state at the target grid."""

    def __init__(
        self,
        *,
        upsampler: LatentUpsampler,
        vae: VideoVAE,
        sigmas: tuple[float, ...] = DISTILLED_STAGE2,
        add_noise: bool = True,
        prepare: LTX2LatentPreparationStage | None = None,
    ) -> None:
        self.upsampler = upsampler
        self.vae = vae
        self.sigmas = sigmas
        self.add_noise = add_noise
        self.prepare = prepare or LTX2LatentPreparationStage()

    @torch.inference_mode()
    def __call__(
        self, stage1: AVState, target: StageGrid, items: tuple[ConditioningItem, ...], seed: int
    ) -> AVState:
        from ltx2stream.models.upsampler import upsample_video

        latent = stage1.video_latent()  # [B, C, F, h, w]
        param = next(self.upsampler.parameters())
        up = upsample_video(latent.to(device=param.device, dtype=param.dtype), self.upsampler, self.vae)
        expected = (target.latent_frames, target.latent_height, target.latent_width)
        if tuple(up.shape[2:]) != expected:
            raise ConfigError(
                f"upsampler produced a latent grid {tuple(up.shape[2:])}, stage 2 needs {expected}",
                code=codes.CONFIG_UPSAMPLER_SCALE,
            )
        state = self.prepare(
            target,
            video_clean=video_to_tokens(up.to(latent.dtype)),
            audio_clean=audio_to_tokens(stage1.audio_latent()),
        )
        state = condition(state, items)
        if not self.add_noise:
            return state
        return add_noise(state, seed, self.sigmas[0])


class LTX2RefineLoRAStage:
    """Context manager: the refine LoRA is merged for stage 2 and removed on exit (a no-op without a LoRA)."""

    def __init__(self, transformer: torch.nn.Module, lora: Any | None, strength: float = 1.0) -> None:
        self.transformer = transformer
        self.lora = lora
        self.strength = strength
        self._handle: Any = None

    def __enter__(self) -> Self:
        if self.lora is not None:
            from ltx2stream.models.lora import apply_lora

            self._handle = apply_lora(self.transformer, self.lora, self.strength)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
