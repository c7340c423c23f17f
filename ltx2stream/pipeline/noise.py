"""The Gaussian noiser, the post-step restore and the Euler step (float32 math)."""

from __future__ import annotations

import torch


def gaussian_noiser(
    noise: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """x = ε·(mask·scale) + clean·(1 − mask·scale); mask [B, T] broadcast over channels of [B, T, C]."""
    m = (mask.float() * scale).unsqueeze(-1)  # [B, T] -> [B, T, 1]
    out = noise.float() * m + clean.float() * (1.0 - m)
    return out.to(clean.dtype)


def restore_conditioning(x0: torch.Tensor, mask: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """x0 ← x0·mask + clean·(1 − mask): conditioned tokens (mask 0) come out equal to the clean latent."""
    m = mask.float().unsqueeze(-1)  # [B, T] -> [B, T, 1]
    return x0.float() * m + clean.float() * (1.0 - m)


def euler_step(x: torch.Tensor, x0: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x_next = x + (x − x0)/σ · (σ_next − σ), in float32, cast back to x's dtype.

    Tokens with x == x0 (clean conditioning) do not move at all.
    """
    xf = x.float()
    velocity = (xf - x0.float()) / sigma
    return (xf + velocity * (sigma_next - sigma)).to(x.dtype)
