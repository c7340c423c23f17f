"""Feature extractors ("text_embedding_projection"): all Gemma hidden states -> one vector per token.

Input: hidden states stacked to [B, T, D, L+1] (L+1 = embedding output + every layer) and the token mask
[B, T]. Both variants flatten with the **layer index fastest** (flat index = d * (L+1) + l), the column order
of the checkpoints' aggregate weights, and zero the padded positions.

* V1 (LTX-2): per prompt and per layer, mean and range (max - min) over all valid tokens and all D channels;
  ``8 * (x - mean) / (range + 1e-6)``; ``aggregate_embed`` Linear(D*(L+1) -> D, no bias) feeds both connectors.
* V2 (LTX-2.3): per token and per layer RMS normalisation over D; ``video_aggregate_embed`` /
  ``audio_aggregate_embed`` Linear(D*(L+1) -> out, bias) applied to ``normed * sqrt(out / D)``.

Statistics are computed in the hidden states' dtype, as the official code does.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ltx2stream.models.text.config import V1, TextPathConfig


def flatten_layers(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b t d l -> b t (d l)")  # [B, T, D, L+1] -> [B, T, D*(L+1)], layer fastest


def masked_range_norm(hidden: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """V1 normalisation: [B, T, D, L+1] -> [B, T, D*(L+1)] using statistics of valid tokens only."""
    b, _, d, _ = hidden.shape
    valid = mask.bool()[:, :, None, None]  # [B, T, 1, 1]
    count = (mask.sum(dim=-1) * d).view(b, 1, 1, 1)
    mean = hidden.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / (count + eps)  # [B, 1, 1, L+1]
    x_min = hidden.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    x_max = hidden.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normed = 8 * (hidden - mean) / (x_max - x_min + eps)
    return flatten_layers(normed).masked_fill(~valid[..., 0], 0.0)


def per_token_rms_norm(hidden: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """V2 normalisation: [B, T, D, L+1] -> [B, T, D*(L+1)], each token and layer scaled to unit RMS over D."""
    variance = hidden.pow(2).mean(dim=2, keepdim=True)  # [B, T, 1, L+1]
    normed = flatten_layers(hidden * torch.rsqrt(variance + eps))
    return torch.where(mask.bool()[:, :, None], normed, torch.zeros_like(normed))


class FeatureExtractorV1(nn.Module):
    """LTX-2: masked mean/range normalisation x 8, one bias-free ``aggregate_embed`` for both connectors."""

    def __init__(self, flat_dim: int, out_dim: int) -> None:
        super().__init__()
        self.aggregate_embed = nn.Linear(flat_dim, out_dim, bias=False)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.aggregate_embed(masked_range_norm(hidden, mask).to(hidden.dtype))
        return features, features


class FeatureExtractorV2(nn.Module):
    """LTX-2.3: per-token RMS normalisation, rescaled per target width, separate video and audio embeds."""

    def __init__(self, flat_dim: int, embedding_dim: int, video_dim: int, audio_dim: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.video_aggregate_embed = nn.Linear(flat_dim, video_dim)
        self.audio_aggregate_embed = nn.Linear(flat_dim, audio_dim)

    def _project(self, normed: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        return linear(normed * math.sqrt(linear.out_features / self.embedding_dim))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = per_token_rms_norm(hidden, mask).to(hidden.dtype)
        return self._project(normed, self.video_aggregate_embed), self._project(
            normed, self.audio_aggregate_embed
        )


FeatureExtractor = FeatureExtractorV1 | FeatureExtractorV2


def build_feature_extractor(cfg: TextPathConfig) -> FeatureExtractor:
    if cfg.feature_extractor == V1:
        return FeatureExtractorV1(cfg.flat_dim, cfg.caption_channels)
    return FeatureExtractorV2(cfg.flat_dim, cfg.caption_channels, cfg.video_dim, cfg.audio_dim)
