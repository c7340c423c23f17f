"""Tiny transformer presets for tests: same classes and key layout as the released models, minute widths.

Both flavours: 2 layers, video 2 heads x 16, audio 2 heads x 8, real latent channel counts (128 per token),
text context from a tiny Gemma with hidden size 32. The config also carries the tiny text-path keys
(``connector_*``, ``audio_connector_*``) so the text path is built from the same ``transformer`` section.
"""

from __future__ import annotations

from typing import Any

import torch

from ltx2stream.errors import check_config_value
from ltx2stream.models.transformer.config import TransformerConfig
from ltx2stream.models.transformer.modality import Modality
from ltx2stream.models.transformer.model import LTXAVModel
from ltx2stream.models.transformer.positions import audio_positions, video_positions

FLAVOURS = ("ltx2", "ltx2.3", "ltx2.5")
TINY_CAPTION_CHANNELS = 32  # hidden size of the tiny Gemma
TINY_REGISTERS = 32
# Embedded model sizes: (layers, heads, video head dim, audio head dim). "bench" is a transformer that dominates a
# segment's time the way the released one does on a GPU (random weights; the VAEs and text path stay tiny).
EMBEDDED_SIZES: dict[str, tuple[int, int, int, int]] = {"tiny": (2, 2, 16, 8), "bench": (8, 8, 48, 16)}


def tiny_transformer_config(flavour: str = "ltx2", size: str = "tiny") -> TransformerConfig:
    """A small config of the ``flavour`` ("ltx2" | "ltx2.3" | "ltx2.5") with the released models' switches;
    ``size`` one of ``EMBEDDED_SIZES`` (tiny: 2 layers)."""
    check_config_value("tiny_transformer_config", "flavour", flavour, FLAVOURS)
    check_config_value("tiny_transformer_config", "size", size, tuple(EMBEDDED_SIZES))
    layers, heads, vdh, adh = EMBEDDED_SIZES[size]
    v_inner, a_inner = heads * vdh, heads * adh
    is_23 = flavour in ("ltx2.3", "ltx2.5")  # 2.5 = the 2.3 block structure + the 2.5 switches
    is_25 = flavour == "ltx2.5"
    extra: dict[str, Any] = {
        "connector_positional_embedding_max_pos": [4096],
        "connector_num_learnable_registers": TINY_REGISTERS,
        "connector_apply_gated_attention": is_23,
    }
    if is_23:  # per-stream connectors at the DiT widths; projection happens before the connector
        extra |= {
            "connector_num_attention_heads": heads,
            "connector_attention_head_dim": vdh,
            "connector_num_layers": 2,
            "audio_connector_num_attention_heads": heads,
            "audio_connector_attention_head_dim": adh,
            "audio_connector_num_layers": 2,
            "caption_projection_first_linear": False,
            "caption_projection_second_linear": False,
            "caption_proj_input_norm": False,
        }
    else:  # both connectors at the Gemma width; the DiT's caption projections map to the inner dims
        extra |= {
            "connector_num_attention_heads": 2,
            "connector_attention_head_dim": TINY_CAPTION_CHANNELS // 2,
            "connector_num_layers": 1,
            "audio_connector_num_attention_heads": 2,
            "audio_connector_attention_head_dim": TINY_CAPTION_CHANNELS // 2,
            "audio_connector_num_layers": 1,
        }
    return TransformerConfig(
        num_layers=layers,
        num_attention_heads=heads,
        attention_head_dim=vdh,
        audio_num_attention_heads=heads,
        audio_attention_head_dim=adh,
        cross_attention_dim=v_inner,
        audio_cross_attention_dim=a_inner,
        caption_channels=TINY_CAPTION_CHANNELS,
        frequencies_precision="float64",
        rope_type="split",
        av_ca_timestep_scale_multiplier=1000.0,
        cross_attention_adaln=is_23,
        apply_gated_attention=is_23,
        caption_proj_before_connector=is_23,
        ff_bias=not is_25,
        use_keyframes_abs_pos_embedding=is_25,
        extra=extra,
    )


def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    """Fill every parameter with seeded Gaussian noise (fan-in scaled matrices): no term is trivially zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim > 1:
                noise = noise * scale / p.shape[-1] ** 0.5
            elif name.endswith("norm.weight"):  # q/k RMSNorm gains around 1
                noise = 1.0 + 0.1 * noise
            else:
                noise = 0.1 * scale * noise
            p.copy_(noise.to(p.dtype))
    return model


def tiny_transformer(flavour: str = "ltx2", seed: int = 0, size: str = "tiny") -> LTXAVModel:
    """A randomly initialised tiny (or ``size``) model (float32, CPU) of ``flavour``."""
    model = LTXAVModel(tiny_transformer_config(flavour, size))
    return randomize_(model, seed).eval()  # type: ignore[return-value]


def tiny_modalities(
    cfg: TransformerConfig,
    *,
    batch: int = 1,
    latent_frames: int = 2,
    latent_height: int = 2,
    latent_width: int = 2,
    audio_frames: int = 5,
    context_len: int = 8,
    sigma: float = 0.5,
    fps: float = 24.0,
    seed: int = 0,
) -> tuple[Modality, Modality]:
    """Random video + audio inputs of the right shapes for ``cfg`` (uniform sigma, no mask)."""
    g = torch.Generator().manual_seed(seed)
    vpos = video_positions(latent_frames, latent_height, latent_width, fps, batch=batch)
    apos = audio_positions(audio_frames, batch=batch)
    tv, ta = vpos.shape[2], apos.shape[2]
    v_ctx = cfg.caption_channels if cfg.has_caption_projection else cfg.video_inner_dim
    a_ctx = cfg.caption_channels if cfg.has_caption_projection else cfg.audio_inner_dim
    s = torch.full((batch,), sigma)
    video = Modality(
        latent=torch.randn(batch, tv, cfg.in_channels, generator=g),
        timesteps=s[:, None].expand(batch, tv).clone(),
        sigma=s,
        positions=vpos,
        context=torch.randn(batch, context_len, v_ctx, generator=g),
    )
    audio = Modality(
        latent=torch.randn(batch, ta, cfg.audio_in_channels, generator=g),
        timesteps=s[:, None].expand(batch, ta).clone(),
        sigma=s.clone(),
        positions=apos,
        context=torch.randn(batch, context_len, a_ctx, generator=g),
    )
    return video, audio
