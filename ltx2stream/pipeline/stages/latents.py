"""LTX2LatentPreparationStage: the token canvas of a stage, and seeded noise mixed in after conditioning.

No diffusers scheduler: shapes come from frames / fps / size (audio length from the duration); the canvas starts
with zero clean tokens and denoise mask 1 everywhere; conditioning items then write clean tokens and lower the mask;
finally ``add_noise`` draws standard normal noise in patchified token order (video tokens, then audio tokens, from
one CPU generator seeded with the stage seed) and applies the Gaussian noiser at the stage's first sigma.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ltx2stream.models.transformer import audio_positions, video_positions
from ltx2stream.pipeline.latent_state import LatentState
from ltx2stream.pipeline.noise import gaussian_noiser
from ltx2stream.pipeline.state import AVState, StageGrid
from ltx2stream.types import AUDIO_LATENT_BINS, AUDIO_LATENT_CHANNELS, VIDEO_LATENT_CHANNELS


def blank_state(
    tokens: int,
    channels: int,
    positions: torch.Tensor,
    *,
    batch: int,
    device: torch.device | str,
    dtype: torch.dtype,
    clean: torch.Tensor | None = None,
) -> LatentState:
    """A modality canvas: clean tokens (zeros unless given) [B, T, C], denoise mask 1 [B, T]."""
    base = (
        clean.to(device=device, dtype=dtype)
        if clean is not None
        else torch.zeros((batch, tokens, channels), device=device, dtype=dtype)
    )
    mask = torch.ones((batch, tokens), device=device, dtype=torch.float32)
    return LatentState(
        latent=base.clone(),
        clean_latent=base,
        denoise_mask=mask,
        positions=positions.to(device),
        num_target=tokens,
    )


class LTX2LatentPreparationStage:
    """Builds the clean canvas of a stage (positions included) for conditioning and noising."""

    def __init__(self, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.device = device
        self.dtype = dtype

    def __call__(
        self,
        grid: StageGrid,
        *,
        video_clean: torch.Tensor | None = None,
        audio_clean: torch.Tensor | None = None,
    ) -> AVState:
        """``video_clean`` [B, T_v, 128] / ``audio_clean`` [B, T_a, 128] seed the canvas (stage 2: upsampled latent)."""
        b = grid.batch
        vpos = video_positions(grid.latent_frames, grid.latent_height, grid.latent_width, grid.fps, batch=b)
        apos = audio_positions(grid.audio_frames, batch=b, offset=grid.audio_start_index) - grid.time_origin_s
        video = blank_state(
            grid.video_tokens,
            VIDEO_LATENT_CHANNELS,
            vpos,
            batch=b,
            device=self.device,
            dtype=self.dtype,
            clean=video_clean,
        )
        audio = blank_state(
            grid.audio_frames,
            AUDIO_LATENT_CHANNELS * AUDIO_LATENT_BINS,
            apos,
            batch=b,
            device=self.device,
            dtype=self.dtype,
            clean=audio_clean,
        )
        video = replace(video, keyframes_mask=first_frame_mask(grid, video.denoise_mask))
        return AVState(video=video, audio=audio, grid=grid)


def first_frame_mask(grid: StageGrid, like: torch.Tensor) -> torch.Tensor:
    """(B, T) keyframes mask: 1 on the h·w tokens of latent frame 0 of the canvas (official
    ``VideoLatentTools.create_initial_state``: that frame encodes one pixel frame), 0 elsewhere.

    Marked by canvas position, not by content: in a continued segment frame 0 holds the carried anchor (itself
    one encoded pixel frame) and is marked; the carried tail (frames 1.., 8 pixel frames each) is not, and
    appended tokens (``KeyframeCondition``, the keyframe-carry tail) never are.
    """
    mask = torch.zeros_like(like)
    mask[:, : grid.latent_height * grid.latent_width] = 1.0
    return mask


def add_noise(state: AVState, seed: int, scale: float = 1.0) -> AVState:
    """x = ε·(mask·scale) + clean·(1 − mask·scale) for both modalities, ε from one generator seeded with ``seed``."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    v, a = state.video, state.audio
    v_noise = torch.randn(tuple(v.clean_latent.shape), generator=gen, dtype=torch.float32)
    a_noise = torch.randn(tuple(a.clean_latent.shape), generator=gen, dtype=torch.float32)
    video = replace(
        v, latent=gaussian_noiser(v_noise.to(v.clean_latent.device), v.clean_latent, v.denoise_mask, scale)
    )
    audio = replace(
        a, latent=gaussian_noiser(a_noise.to(a.clean_latent.device), a.clean_latent, a.denoise_mask, scale)
    )
    return replace(state, video=video, audio=audio)
