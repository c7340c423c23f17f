"""What the DiT takes per stream (``Modality``), the guidance perturbations, and the x0 conversion.

Per-token sigma: ``timesteps = sigma * denoise_mask`` — 0 for clean conditioning tokens (I2V first frame,
appended keyframes), so those tokens are modulated as "clean" and ``x0 = x - v * 0 = x`` for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ltx2stream import codes
from ltx2stream.errors import InputError


@dataclass(frozen=True)
class Modality:
    """One stream's input.

    latent [B, T, C] patchified tokens (noisy + appended conditioning tokens); timesteps [B, T] per-token
    sigma; sigma [B] the step's scalar sigma (A/V cross gates and the LTX-2.3 prompt AdaLN); positions float32
    [B, n, T, 2] ``[start, end)`` bounds (video n=3: seconds, pixels, pixels; audio n=1: seconds);
    context [B, L, Dctx] text embeddings from the connector; attention_mask [B, T, T] in [0, 1] (1 = attend)
    or None; keyframes_mask [B, T] (> 0 = token gets the LTX-2.5 keyframe embedding; ignored by models
    without it) or None (no token marked).
    """

    latent: torch.Tensor
    timesteps: torch.Tensor
    sigma: torch.Tensor
    positions: torch.Tensor
    context: torch.Tensor
    attention_mask: torch.Tensor | None = None
    keyframes_mask: torch.Tensor | None = None

    def check(self, name: str, *, channels: int, n_axes: int, context_dim: int) -> None:
        """Raise InputError naming the field and rule when a shape does not fit the model."""
        b, t = self.latent.shape[:2] if self.latent.ndim == 3 else (-1, -1)
        rules = [
            (
                self.latent.ndim == 3 and self.latent.shape[2] == channels,
                f"latent must be [B, T, {channels}]",
                self.latent,
            ),
            (tuple(self.timesteps.shape) == (b, t), f"timesteps must be [B, T] = [{b}, {t}]", self.timesteps),
            (tuple(self.sigma.shape) == (b,), f"sigma must be [B] = [{b}]", self.sigma),
            (
                tuple(self.positions.shape) == (b, n_axes, t, 2),
                f"positions must be [{b}, {n_axes}, {t}, 2]",
                self.positions,
            ),
            (
                self.context.ndim == 3
                and self.context.shape[0] == b
                and self.context.shape[2] == context_dim,
                f"context must be [{b}, L, {context_dim}]",
                self.context,
            ),
        ]
        if self.attention_mask is not None:
            rules.append(
                (
                    tuple(self.attention_mask.shape) == (b, t, t),
                    f"attention_mask must be [{b}, {t}, {t}]",
                    self.attention_mask,
                )
            )
        if self.keyframes_mask is not None:
            rules.append(
                (
                    tuple(self.keyframes_mask.shape) == (b, t),
                    f"keyframes_mask must be [{b}, {t}]",
                    self.keyframes_mask,
                )
            )
        for ok, rule, tensor in rules:
            if not ok:
                raise InputError(
                    f"{name}: {rule}; got {tuple(tensor.shape)}", code=codes.INPUT_MODALITY_SHAPE
                )


@dataclass(frozen=True)
class Perturbations:
    """Guidance perturbations applied to the whole batch of one model call.

    ``skip_*_self_attn``: block indices whose self-attention map becomes the identity (STG); ``skip_a2v`` /
    ``skip_v2a``: drop that cross-modal attention in every block (modality-isolated guidance pass).
    """

    skip_video_self_attn: frozenset[int] = field(default_factory=frozenset)
    skip_audio_self_attn: frozenset[int] = field(default_factory=frozenset)
    skip_a2v: bool = False
    skip_v2a: bool = False

    @staticmethod
    def none() -> Perturbations:
        return Perturbations()

    def check(self, num_blocks: int) -> None:
        for name in ("skip_video_self_attn", "skip_audio_self_attn"):
            bad = sorted(i for i in getattr(self, name) if not 0 <= i < num_blocks)
            if bad:
                raise InputError(
                    f"perturbations.{name}: block indices {bad} out of range 0..{num_blocks - 1}",
                    code=codes.INPUT_PERTURBATION_BLOCK,
                )


def to_denoised(
    x: torch.Tensor, velocity: torch.Tensor, timesteps: torch.Tensor, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """x0 = x - v * sigma_token, computed in float32; x, v [B, T, C], timesteps [B, T] (or [B, T, 1])."""
    sigma = timesteps if timesteps.ndim == x.ndim else timesteps[..., None]  # [B, T] -> [B, T, 1]
    x0 = x.float() - velocity.float() * sigma.float()
    return x0.to(dtype)


def attention_mask_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, T, T] in [0, 1] -> additive bias [B, 1, T, T]: 1 -> 0, p > 0 -> log p, 0 -> finfo(dtype).min."""
    finfo = torch.finfo(dtype)
    positive = mask > 0
    logs = torch.log(mask.float().clamp(min=finfo.tiny))
    bias = torch.where(positive, logs, torch.full_like(logs, finfo.min)).to(dtype)
    return bias[:, None]  # [B, T, T] -> [B, 1, T, T] (broadcast over heads)
