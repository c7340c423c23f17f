"""A tiny diffusion video VAE for tests and the embedded tiny LTX-2.5 (released layout, minute widths).

Decoder: stage channels (32, 32, 16, 16, 16), depths (1, 1, 1, 1, 2), head_dim 16 (RoPE split 4/6/6), NA kernels
(3,1,1) then (3,3,3) (so a 64×64 clip needs no floor padding), the released upsample strides, t_emb 32, two Euler
steps. Encoder: the tiny LTX-2.3 conv encoder under the nested ``encoder`` key. The file carries gate vectors
(random, folded at load) and a ``coarse_*`` tensor (dropped at load) like the released file.
"""

from __future__ import annotations

from typing import Any

import torch

from ltx2stream.models.video_vae.tiny import tiny_video_vae_metadata

TINY_DIFFUSION_DECODER: dict[str, Any] = {
    "stage_channels": [32, 32, 16, 16, 16],
    "stage_depths": [1, 1, 1, 1, 2],
    "stage_kernels": [[3, 1, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    "upsamples": [[[1, 2, 2], 1], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 1]],
    "stage5_kernel": [3, 3, 3],
    "head_dim": 16,
    "t_emb_dim": 32,
    "default_num_inference_steps": 2,
    "timestep_scale_multiplier": 1.0,
    "in_channels": 128,
    "out_channels": 3,
    "patch_size": 4,
}


def tiny_diffusion_vae_section(**decoder_overrides: Any) -> dict[str, Any]:
    conv = tiny_video_vae_metadata("ltx2.3")
    encoder = {
        "blocks": conv["encoder_blocks"],
        "out_channels": 128,
        "patch_size": 4,
        "norm_layer": "pixel_norm",
        "latent_log_var": "uniform",
        "spatial_padding_mode": "zeros",
        "dims": 3,
    }
    return {
        "_class_name": "CausalDiffusionVAE",
        "encoder": encoder,
        "decoder": {**TINY_DIFFUSION_DECODER, **decoder_overrides},
        "model_output_type": "v",
    }


def random_diffusion_vae(section: dict[str, Any], seed: int = 0, optional_stats: tuple[str, ...] = ()) -> Any:
    """A randomly initialised ``DiffusionVideoVAE`` (fan-in scaled weights, norms near 1, AdaLN tables small)."""
    from ltx2stream.models.video_vae.diffusion.vae import DiffusionVideoVAE

    vae = DiffusionVideoVAE(section, optional_stats=optional_stats)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name.split(".")[-2]:  # RMSNorm gains (norm1, norm2, q_norm, k_norm, norm_out)
                p.copy_(1.0 + 0.1 * noise)
            elif p.ndim > 1:
                p.copy_(noise * 0.5 / p.shape[-1] ** 0.5)
            else:
                p.copy_(0.05 * noise)
    return vae.eval()


def tiny_diffusion_vae_file(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Bare-key tensors (``encoder.*``, ``decoder.*``, two statistics) and the ``vae`` section of a tiny file."""
    from ltx2stream.models.video_vae.diffusion.loading import module_to_file

    section = tiny_diffusion_vae_section()
    vae = random_diffusion_vae(section, seed)
    g = torch.Generator().manual_seed(seed + 100)
    dim = vae.decoder_config.channels5
    gates = {
        f"decoder.diff_blocks.{i}.{name}": 0.5 + torch.rand(dim, generator=g)
        for i in range(len(vae.decoder.diff_blocks))
        for name in ("gate_msa", "gate_mlp", "gate_ctx")
    }
    tensors = module_to_file(vae.state_dict(), gates)
    tensors["decoder.coarse_head.weight"] = torch.zeros(3, dim)
    return tensors, section
