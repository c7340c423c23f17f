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


ANCESTRAL_SEED_OFFSET = 10000  # the official sampler seeds its step-noise generator with seed + 10000


def ancestral_euler_step(
    x: torch.Tensor,
    x0: torch.Tensor,
    sigma: float,
    sigma_next: float,
    noise: torch.Tensor,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Rectified-flow ancestral Euler (official ``diffusion_steps.py``, float32), cast back to x's dtype.

    ratio = 1 + (σ_next/σ − 1)·eta; σ_down = σ_next·ratio; x′ = (σ_down/σ)·x + (1 − σ_down/σ)·x0;
    α_n = 1 − σ_next, α_d = 1 − σ_down; c = sqrt(max(0, σ_next² − σ_down²·α_n²/α_d²));
    x_next = (α_n/α_d)·x′ + s_noise·c·ε. σ_next = 0 returns x0.
    """
    if sigma_next == 0.0:
        return x0.to(x.dtype)
    ratio = 1.0 + (sigma_next / sigma - 1.0) * eta
    sigma_down = sigma_next * ratio
    alpha_n, alpha_d = 1.0 - sigma_next, 1.0 - sigma_down
    c = max(0.0, sigma_next**2 - sigma_down**2 * alpha_n**2 / alpha_d**2) ** 0.5
    x_prime = (sigma_down / sigma) * x.float() + (1.0 - sigma_down / sigma) * x0.float()
    return ((alpha_n / alpha_d) * x_prime + s_noise * c * noise.float()).to(x.dtype)
