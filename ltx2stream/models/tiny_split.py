"""The embedded tiny LTX-2.5, written in the official split layout (``models/split.py``).

Same tiny widths as the LTX-2 / 2.3 tiny models; the LTX-2.5 switches (bias-free video FFN, keyframe embedding),
a Gemma 4 single-file text encoder carrying the text projection, a video VAE file per decoder kind (diffusion
decoder: bare keys and only the two statistics the model reads; conv decoder: ``-conv-``), an audio VAE +
vocoder file, the ×2 spatial upsampler and the distilled LoRA. File names follow the released pattern with
``tiny`` in place of ``22b``::

    diffusion_models/ltx-2.5-tiny-distilled-transformer-fp32.safetensors   (+ -dev-, the same weights)
    text_encoders/gemma4-tiny-with-proj-ltx-2.5-fp32.safetensors
    vae/ltx-2.5-tiny-video-vae-fp32.safetensors, vae/ltx-2.5-tiny-video-vae-conv-fp32.safetensors
    vae/ltx-2.5-tiny-audio-vae-fp32.safetensors
    latent_upscale_models/ltx-2.5-tiny-latent-spatial-upscaler-x2-fp32-1.0.safetensors
    loras/ltx-2.5-tiny-distilled-lora-fp32.safetensors
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

TINY25_VERSION = "2.5.0-tiny"
NAMES = {
    "distilled": "diffusion_models/ltx-2.5-tiny-distilled-transformer-fp32.safetensors",
    "dev": "diffusion_models/ltx-2.5-tiny-dev-transformer-fp32.safetensors",
    "text_encoder": "text_encoders/gemma4-tiny-with-proj-ltx-2.5-fp32.safetensors",
    "video_vae": "vae/ltx-2.5-tiny-video-vae-fp32.safetensors",
    "video_vae_conv": "vae/ltx-2.5-tiny-video-vae-conv-fp32.safetensors",
    "audio_vae": "vae/ltx-2.5-tiny-audio-vae-fp32.safetensors",
    "upsampler": "latent_upscale_models/ltx-2.5-tiny-latent-spatial-upscaler-x2-fp32-1.0.safetensors",
    "distilled_lora": "loras/ltx-2.5-tiny-distilled-lora-fp32.safetensors",
}


def write_tiny_split_model(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the tiny LTX-2.5 split set under ``directory`` (returned); deterministic for a seed."""
    from ltx2stream.models.loading import save_checkpoint
    from ltx2stream.models.lora_weights import random_lora_for, write_lora
    from ltx2stream.models.text.tiny_gemma4 import TINY_GEMMA4_VERSION, tiny_gemma4_file
    from ltx2stream.models.tiny import tiny_checkpoint_tensors
    from ltx2stream.models.transformer import tiny_transformer
    from ltx2stream.models.upsampler import write_tiny_upsampler

    root = Path(directory)
    tensors, config = tiny_checkpoint_tensors("ltx2.5", seed)
    meta = {
        "model_version": TINY25_VERSION,
        "gemma_source_checkpoint": json.dumps({"gemma_version": TINY_GEMMA4_VERSION}),
    }
    dit = {k: v for k, v in tensors.items() if k.startswith("model.diffusion_model.")}
    for variant in ("distilled", "dev"):
        save_checkpoint(
            root / NAMES[variant], dit, config={"transformer": config["transformer"]}, metadata=meta
        )
    te, te_meta = tiny_gemma4_file(seed)
    te |= {k: v for k, v in tensors.items() if k.startswith("text_embedding_projection.")}
    save_checkpoint(root / NAMES["text_encoder"], te, metadata=te_meta)
    conv = {k[len("vae.") :]: v for k, v in tensors.items() if k.startswith("vae.") and _read_stat(k)}
    save_checkpoint(root / NAMES["video_vae_conv"], conv, config={"vae": config["vae"]})
    diffusion_tensors, diffusion_config = _tiny_diffusion_vae(seed)
    save_checkpoint(root / NAMES["video_vae"], diffusion_tensors, config={"vae": diffusion_config})
    audio = {k: v for k, v in tensors.items() if k.startswith(("audio_vae.", "vocoder."))}
    save_checkpoint(
        root / NAMES["audio_vae"],
        audio,
        config={"audio_vae": config["audio_vae"], "vocoder": config["vocoder"]},
    )
    write_tiny_upsampler(root / NAMES["upsampler"], "x2", seed=seed, mid_channels=32)
    model = tiny_transformer("ltx2.5", seed)
    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".attn1.to_" in n]
    write_lora(
        root / NAMES["distilled_lora"], random_lora_for(model, rank=4, seed=seed, modules=targets, scale=0.05)
    )
    return root


def _read_stat(key: str) -> bool:
    """Released 2.5 VAE files carry only the two statistics the model reads."""
    if ".per_channel_statistics." not in key:
        return True
    return key.rsplit(".", 1)[-1] in ("mean-of-means", "std-of-means")


def _tiny_diffusion_vae(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The tiny diffusion-decoder VAE (bare keys, gates, coarse head) and its ``vae`` section."""
    from ltx2stream.models.video_vae.diffusion.tiny import tiny_diffusion_vae_file

    return tiny_diffusion_vae_file(seed)
