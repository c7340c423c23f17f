"""LTX2DenoisingStage: the Euler loop over the native sigma schedule, with per-modality guidance.

Per step: model passes (conditional; plus negative-prompt, STG-perturbed and modality-isolated passes only when a
modality's guidance asks for them) -> x0 = x − σ_token·v (float32) -> guidance -> conditioned tokens restored to their
clean values -> Euler step to the next sigma. Sigmas are Python floats, so the loop has no host synchronisation;
the per-step callback (progress, cancellation) runs between steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.transformer import Modality, Perturbations, StageCache, to_denoised
from ltx2stream.pipeline.guidance import GuidanceParams, Predictions
from ltx2stream.pipeline.latent_state import LatentState
from ltx2stream.pipeline.noise import (
    ANCESTRAL_SEED_OFFSET,
    ancestral_euler_step,
    euler_step,
    restore_conditioning,
)
from ltx2stream.pipeline.presets import StagePreset
from ltx2stream.pipeline.schedules import check_schedule, shifted_schedule, subset_schedule
from ltx2stream.pipeline.state import AVState, PromptContexts

StepCallback = Callable[[int, int], None]


class LTX2DenoisingStage:
    """Denoise an ``AVState`` with a transformer; options follow FastVideo's stage of the same name."""

    def __init__(
        self,
        transformer: torch.nn.Module,
        *,
        sigmas_override: Sequence[float] | None = None,
        num_inference_steps_override: int | None = None,
        force_guidance_scale: float | None = None,
    ) -> None:
        self.transformer = transformer
        self.sigmas_override = None if sigmas_override is None else check_schedule(sigmas_override)
        self.num_inference_steps_override = num_inference_steps_override
        self.force_guidance_scale = force_guidance_scale

    def sigmas(self, stage: StagePreset) -> list[float]:
        """The schedule this stage runs: override, else the preset's list or shifted schedule, then the subset."""
        if self.sigmas_override is not None:
            sig = list(self.sigmas_override)
        elif stage.sigmas is not None:
            sig = list(stage.sigmas)
        else:
            sig = shifted_schedule(int(stage.steps or 1))
        if self.num_inference_steps_override is not None:
            sig = subset_schedule(sig, self.num_inference_steps_override)
        return sig

    def guidance(self, stage: StagePreset) -> tuple[GuidanceParams, GuidanceParams]:
        v, a = stage.video_guidance, stage.audio_guidance
        if self.force_guidance_scale is not None:
            v, a = v.with_cfg(self.force_guidance_scale), a.with_cfg(self.force_guidance_scale)
        return v, a

    @torch.inference_mode()
    def __call__(
        self,
        state: AVState,
        contexts: PromptContexts,
        stage: StagePreset,
        *,
        callback: StepCallback | None = None,
        seed: int = 0,
    ) -> AVState:
        """``seed``: the request seed; only an ancestral stage (``stage.eta`` > 0) draws step noise, from a CPU
        generator seeded ``seed + 10000`` (video tokens, then audio tokens, every step)."""
        sigmas = self.sigmas(stage)
        vg, ag = self.guidance(stage)
        total = len(sigmas) - 1
        cache = StageCache()  # positions, masks, context projections: computed at step 1, reused after
        gen = torch.Generator("cpu").manual_seed(seed + ANCESTRAL_SEED_OFFSET) if stage.eta > 0 else None
        for i in range(total):
            x0_video, x0_audio = self._predict(state, contexts, sigmas[i], vg, ag, cache)
            if gen is not None:
                state = replace(
                    state,
                    video=_ancestral(state.video, x0_video, sigmas[i], sigmas[i + 1], gen, stage.eta),
                    audio=_ancestral(state.audio, x0_audio, sigmas[i], sigmas[i + 1], gen, stage.eta),
                )
            else:
                state = replace(
                    state,
                    video=_step(state.video, x0_video, sigmas[i], sigmas[i + 1]),
                    audio=_step(state.audio, x0_audio, sigmas[i], sigmas[i + 1]),
                )
            if callback is not None:
                callback(i + 1, total)
        return state

    def _predict(
        self,
        state: AVState,
        ctx: PromptContexts,
        sigma: float,
        vg: GuidanceParams,
        ag: GuidanceParams,
        cache: StageCache,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = functools.partial(self._x0, state, sigma=sigma, cache=cache)
        cond = x0(ctx.video, ctx.audio, perturbations=Perturbations.none())
        uncond = perturbed = isolated = None
        if vg.uses_text or ag.uses_text:
            if ctx.negative_video is None or ctx.negative_audio is None:
                raise ConfigError(
                    "text guidance (cfg != 1) needs negative-prompt contexts; encode the prompt with a "
                    "negative prompt",
                    code=codes.CONFIG_GUIDANCE_PASS,
                )
            uncond = x0(ctx.negative_video, ctx.negative_audio, perturbations=Perturbations.none())
        if vg.uses_perturbed or ag.uses_perturbed:
            skip = Perturbations(
                skip_video_self_attn=frozenset(vg.stg_blocks if vg.uses_perturbed else ()),
                skip_audio_self_attn=frozenset(ag.stg_blocks if ag.uses_perturbed else ()),
                skip_a2v=False,
                skip_v2a=False,
            )
            perturbed = x0(ctx.video, ctx.audio, perturbations=skip)
        if vg.uses_isolated or ag.uses_isolated:
            iso = Perturbations(
                skip_video_self_attn=frozenset(),
                skip_audio_self_attn=frozenset(),
                skip_a2v=True,
                skip_v2a=True,
            )
            isolated = x0(ctx.video, ctx.audio, perturbations=iso)
        video = Predictions(cond[0], _part(uncond, 0), _part(perturbed, 0), _part(isolated, 0)).guided(vg)
        audio = Predictions(cond[1], _part(uncond, 1), _part(perturbed, 1), _part(isolated, 1)).guided(ag)
        return video, audio

    def _x0(
        self,
        state: AVState,
        video_ctx: torch.Tensor,
        audio_ctx: torch.Tensor,
        *,
        sigma: float,
        perturbations: Perturbations,
        cache: StageCache,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v_mod = _modality(state.video, video_ctx, sigma)
        a_mod = _modality(state.audio, audio_ctx, sigma)
        v_vel, a_vel = self.transformer(v_mod, a_mod, perturbations, cache=cache)
        return (
            to_denoised(v_mod.latent, v_vel, v_mod.timesteps),
            to_denoised(a_mod.latent, a_vel, a_mod.timesteps),
        )


def _part(pair: tuple[torch.Tensor, torch.Tensor] | None, i: int) -> torch.Tensor | None:
    """Video (0) or audio (1) of an optional (video, audio) prediction pair."""
    return None if pair is None else pair[i]


def _modality(s: LatentState, context: torch.Tensor, sigma: float) -> Modality:
    b = s.latent.shape[0]
    dtype = context.dtype  # the model's dtype: contexts come from the text path loaded alongside it
    timesteps = s.denoise_mask * sigma  # [B, T] per-token sigma; 0 on clean conditioning tokens
    return Modality(
        latent=s.latent.to(dtype),
        timesteps=timesteps,
        sigma=torch.full((b,), sigma, device=s.latent.device, dtype=torch.float32),
        positions=s.positions,
        context=context.to(dtype),
        attention_mask=s.attention_mask,
        keyframes_mask=s.keyframes_mask,
    )


def _step(s: LatentState, x0: torch.Tensor, sigma: float, sigma_next: float) -> LatentState:
    x0 = restore_conditioning(x0, s.denoise_mask, s.clean_latent)
    return replace(s, latent=euler_step(s.latent, x0, sigma, sigma_next))


def _ancestral(
    s: LatentState, x0: torch.Tensor, sigma: float, sigma_next: float, gen: torch.Generator, eta: float
) -> LatentState:
    """Ancestral step (LTX-2.5 distilled stage 1); the conditioning is re-applied after the step, as the
    official loop does, since the step noise also reaches clean tokens."""
    x0 = restore_conditioning(x0, s.denoise_mask, s.clean_latent)
    noise = torch.randn(tuple(s.latent.shape), generator=gen, dtype=torch.float32).to(s.latent.device)
    x = ancestral_euler_step(s.latent, x0, sigma, sigma_next, noise, eta=eta)
    return replace(s, latent=restore_conditioning(x, s.denoise_mask, s.clean_latent).to(s.latent.dtype))
