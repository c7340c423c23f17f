"""Latent <-> token layout and the RoPE positions of every token (spec §1.8).

Video: patch size 1x1x1, token order (f, h, w) raster, token vector = the 128 latent channels. A token's
bounds are its latent cell ``[f, f+1) x [h, h+1) x [w, w+1)`` scaled to pixels (x8 in time, x32 in space);
with the causal fix the time bounds become ``max(t + 1 - 8, 0)`` (latent frame 0 holds the single pixel frame
0, latent frame k >= 1 holds pixel frames ``[8k-7, 8k+1)``), then time is divided by fps -> seconds.

Audio: token order = latent time, token vector = ``(c f)`` flatten of [8 channels, 16 bins] (channel-major).
Latent index i covers mel frames ``[max(4i-3, 0), 4i+1)`` (causal) = ``x 160 / 16000`` seconds.
"""

from __future__ import annotations

import torch
from einops import rearrange

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.types import (
    AUDIO_HOP,
    AUDIO_LATENT_BINS,
    AUDIO_LATENT_CHANNELS,
    AUDIO_SAMPLE_RATE,
    AUDIO_TIME_SCALE,
    VIDEO_SPACE_SCALE,
    VIDEO_TIME_SCALE,
    VideoLatentShape,
)


def patchify_video(latent: torch.Tensor) -> torch.Tensor:
    """[B, C, F, H, W] -> [B, F*H*W, C]."""
    _check_ndim(latent, 5, "video latent [B, C, F, H, W]")
    return rearrange(latent, "b c f h w -> b (f h w) c")


def unpatchify_video(tokens: torch.Tensor, shape: VideoLatentShape) -> torch.Tensor:
    """[B, F*H*W, C] -> [B, C, F, H, W] for ``shape`` (extra appended tokens must be removed first)."""
    _check_ndim(tokens, 3, "video tokens [B, T, C]")
    if tokens.shape[1] != shape.tokens:
        raise InputError(
            f"video tokens: {tokens.shape[1]} tokens do not match latent shape {tuple(shape)} "
            f"({shape.tokens} tokens)",
            code=codes.INPUT_TOKEN_COUNT,
        )
    return rearrange(tokens, "b (f h w) c -> b c f h w", f=shape.frames, h=shape.height, w=shape.width)


def patchify_audio(latent: torch.Tensor) -> torch.Tensor:
    """[B, 8, T, 16] -> [B, T, 128] (channel-major ``(c f)``)."""
    _check_ndim(latent, 4, "audio latent [B, C, T, F]")
    return rearrange(latent, "b c t f -> b t (c f)")


def unpatchify_audio(
    tokens: torch.Tensor, channels: int = AUDIO_LATENT_CHANNELS, bins: int = AUDIO_LATENT_BINS
) -> torch.Tensor:
    """[B, T, C*F] -> [B, C, T, F]."""
    _check_ndim(tokens, 3, "audio tokens [B, T, C*F]")
    if tokens.shape[-1] != channels * bins:
        raise InputError(
            f"audio tokens have {tokens.shape[-1]} features, expected channels*bins = {channels}*{bins}",
            code=codes.INPUT_TOKEN_FEATURES,
        )
    return rearrange(tokens, "b t (c f) -> b c t f", c=channels, f=bins)


def video_positions(
    frames: int,
    height: int,
    width: int,
    fps: float,
    *,
    batch: int = 1,
    frame_offset: float = 0,
    causal_fix: bool = True,
    time_scale: int = VIDEO_TIME_SCALE,
    space_scale: int = VIDEO_SPACE_SCALE,
    single_pixel_frame: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """[B, 3, F*H*W, 2] float32 bounds (time in seconds, height/width in pixels) of a latent grid F x H x W.

    ``frame_offset`` (pixel frames) is added to the time bounds after the causal fix (keyframe tokens appended
    at pixel frame ``frame_offset``; the official code applies the causal fix to those only when the offset is
    0). ``single_pixel_frame`` narrows the time bounds to ``[start, start + 1)`` pixel frame (a keyframe
    latent that encodes one pixel frame).
    """
    if min(frames, height, width) <= 0 or fps <= 0:
        raise InputError(
            f"video positions need positive frames/height/width/fps; got {frames}x{height}x{width} @ {fps}",
            code=codes.INPUT_POSITIONS,
        )
    f, h, w = torch.meshgrid(
        torch.arange(frames, device=device),
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing="ij",
    )
    starts = torch.stack([f, h, w]).flatten(1)  # [3, F, H, W] -> [3, F*H*W]
    bounds = torch.stack([starts, starts + 1], dim=-1)  # [3, T, 2] latent cells
    scale = torch.tensor([time_scale, space_scale, space_scale], device=bounds.device)
    pixels = (bounds * scale[:, None, None]).float()
    if causal_fix:
        pixels[0] = (pixels[0] + 1 - time_scale).clamp(min=0)
    pixels[0] += frame_offset
    if single_pixel_frame:
        pixels[0, :, 1] = pixels[0, :, 0] + 1
    pixels[0] /= fps
    return pixels[None].expand(batch, -1, -1, -1).contiguous()  # [3, T, 2] -> [B, 3, T, 2]


def audio_positions(
    frames: int, *, batch: int = 1, offset: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """[B, 1, T, 2] float32 bounds in seconds of audio latent indices ``offset .. offset + frames - 1``."""
    if frames <= 0 or offset < 0:
        raise InputError(
            f"audio positions need frames > 0 and offset >= 0; got {frames}, {offset}",
            code=codes.INPUT_POSITIONS,
        )
    index = torch.arange(offset, offset + frames + 1, dtype=torch.float32, device=device)
    mel_start = (index * AUDIO_TIME_SCALE + 1 - AUDIO_TIME_SCALE).clamp(
        min=0
    )  # causal: first sample fully seen
    seconds = mel_start * AUDIO_HOP / AUDIO_SAMPLE_RATE  # [T+1] boundaries
    bounds = torch.stack([seconds[:-1], seconds[1:]], dim=-1)  # [T, 2]
    return bounds[None, None].expand(batch, 1, -1, -1).contiguous()  # [T, 2] -> [B, 1, T, 2]


def _check_ndim(t: torch.Tensor, ndim: int, what: str) -> None:
    if t.ndim != ndim:
        raise InputError(f"{what}: expected {ndim} dims, got shape {tuple(t.shape)}", code=codes.INPUT_SHAPE)
