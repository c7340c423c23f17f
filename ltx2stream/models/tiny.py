"""The embedded default: a tiny random-weight LTX-2 / LTX-2.3 / LTX-2.5 written as official-layout files.

``write_tiny_model`` writes one single-file checkpoint (transformer + connectors + text projection + video VAE +
audio VAE + vocoder, with the embedded ``config``), a tiny Gemma 3 directory with an offline tokenizer, a spatial ×2
upsampler file and a refine LoRA. Everything later loads these through the same code path as real checkpoints.
``ensure_tiny_model`` writes them once into a cache directory (offline, deterministic for a seed). LTX-2.5 is
written in the released split layout instead (``tiny_split.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ltx2stream.errors import check_config_value

log = logging.getLogger(__name__)
TINY_FORMAT = 1  # bump when the tiny layout changes so cached copies are rewritten
TINY25_FORMAT = 2  # the same for the split-layout tiny LTX-2.5 (2: diffusion-decoder VAE added)
FLAVOURS = ("ltx2", "ltx2.3", "ltx2.5")
TINY_TEXT_LENGTH = 64  # prompt tokens of the tiny text path (the real one uses 1024)
TINY_GEMMA_HIDDEN = (
    32  # hidden size of the tiny Gemma (= the tiny DiT's caption_channels); 2 layers -> 3 states
)


@dataclass(frozen=True)
class TinyModelFiles:
    checkpoint: Path  # single file (LTX-2 / 2.3) or split-layout directory (LTX-2.5)
    gemma: Path  # Gemma 3 directory, or the LTX-2.5 single-file text encoder
    upsampler: Path
    refine_lora: Path


def _files(root: Path) -> TinyModelFiles:
    return TinyModelFiles(
        root / "model.safetensors",
        root / "gemma",
        root / "upsampler-x2.safetensors",
        root / "refine-lora.safetensors",
    )


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            fan_in = p.shape[1] if p.ndim > 1 else 1
            for d in p.shape[2:]:
                fan_in *= d
            p.copy_(
                torch.randn(p.shape, generator=g) * (scale / max(fan_in, 1) ** 0.5 if p.ndim > 1 else 0.02)
            )


def embedded_vocoder_config(flavour: str) -> Any:
    """The tiny model's vocoder: the released upsampling rates (24 kHz HiFi-GAN / 16 kHz BigVGAN + ×3 BWE to
    48 kHz) with tiny channel counts, so the embedded default produces audio at the real sample rates."""
    from ltx2stream.models.audio.vocoder_config import BWEConfig, GeneratorConfig, VocoderConfig

    small = {"resblock_kernel_sizes": (3, 5), "resblock_dilation_sizes": ((1, 3, 5), (1, 3, 5))}
    if flavour == "ltx2":
        return VocoderConfig(vocoder=GeneratorConfig(upsample_initial_channel=64, **small))
    amp: dict[str, Any] = {
        "resblock": "AMP1",
        "activation": "snakebeta",
        "use_tanh_at_final": False,
        "use_bias_at_final": False,
        **small,
    }
    main = GeneratorConfig(
        upsample_rates=(5, 2, 2, 2, 2, 2),
        upsample_kernel_sizes=(11, 4, 4, 4, 4, 4),
        upsample_initial_channel=64,
        output_sampling_rate=16000,
        **amp,
    )
    bwe_gen = GeneratorConfig(
        upsample_rates=(6, 5, 2, 2, 2),
        upsample_kernel_sizes=(12, 11, 4, 4, 4),
        upsample_initial_channel=32,
        apply_final_activation=False,
        output_sampling_rate=48000,
        **amp,
    )
    return VocoderConfig(vocoder=main, bwe=BWEConfig(generator=bwe_gen))


def tiny_checkpoint_tensors(
    flavour: str, seed: int = 0, size: str = "tiny"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors of a tiny single-file checkpoint under official prefixes, and its embedded config."""
    from ltx2stream.models.audio import (
        AudioVAE,
        audio_vae_checkpoint_tensors,
        build_vocoder,
        tiny_audio_vae_config,
        vocoder_checkpoint_tensors,
    )
    from ltx2stream.models.text import TextPathConfig, text_path_checkpoint_tensors, tiny_text_projection
    from ltx2stream.models.transformer import tiny_transformer, transformer_checkpoint_tensors
    from ltx2stream.models.video_vae import VideoVAE, tiny_video_vae_config, video_vae_checkpoint_tensors

    check_config_value("tiny model", "flavour", flavour, FLAVOURS)
    codec = "ltx2.3" if flavour == "ltx2.5" else flavour  # 2.5 keeps the 2.3 audio path and conv VAE
    transformer = tiny_transformer(flavour, seed, size)
    section = transformer.config.to_metadata()
    text_cfg = TextPathConfig.from_metadata(section, max_length=TINY_TEXT_LENGTH).with_gemma(
        TINY_GEMMA_HIDDEN, 3
    )
    text = tiny_text_projection(flavour, seed + 1, text_cfg)
    vae = VideoVAE(tiny_video_vae_config(codec))
    _randomise(vae, seed + 2)
    audio_vae = AudioVAE(tiny_audio_vae_config(codec))
    _randomise(audio_vae, seed + 3)
    vocoder = build_vocoder(embedded_vocoder_config(codec))
    _randomise(vocoder, seed + 4)
    _randomise_buffers(vae, audio_vae)
    tensors = {
        **transformer_checkpoint_tensors(transformer),
        **text_path_checkpoint_tensors(text),
        **video_vae_checkpoint_tensors(vae),
        **audio_vae_checkpoint_tensors(audio_vae),
        **vocoder_checkpoint_tensors(vocoder),
    }
    config = {
        "transformer": section,
        "vae": vae.config.to_metadata(),
        "audio_vae": audio_vae.cfg.to_metadata(),
        "vocoder": embedded_vocoder_config(codec).to_metadata(),
    }
    return tensors, config


def _randomise_buffers(*modules: torch.nn.Module) -> None:
    """Latent statistics: std-of-means must stay positive (defaults of 1 are fine); means keep their zeros."""
    for m in modules:
        for name, buf in m.named_buffers():
            if "std-of-means" in name:
                buf.fill_(1.0)


def write_tiny_model(
    directory: str | os.PathLike[str], flavour: str = "ltx2", seed: int = 0, size: str = "tiny"
) -> TinyModelFiles:
    """Write the tiny model's four artefacts into ``directory`` (``size``: the transformer's, see
    ``EMBEDDED_SIZES``; LTX-2.5 only tiny)."""
    from ltx2stream.models.loading import save_checkpoint
    from ltx2stream.models.lora_weights import random_lora_for, write_lora
    from ltx2stream.models.text import write_tiny_gemma
    from ltx2stream.models.transformer import tiny_transformer
    from ltx2stream.models.upsampler import write_tiny_upsampler

    if flavour == "ltx2.5":  # released only as split per-component files
        check_config_value("tiny LTX-2.5 model", "size", size, ("tiny",))
        from ltx2stream.models.tiny_split import NAMES, write_tiny_split_model

        root = write_tiny_split_model(directory, seed)
        return TinyModelFiles(
            root, root / NAMES["text_encoder"], root / NAMES["upsampler"], root / NAMES["distilled_lora"]
        )
    files = _files(Path(directory))
    tensors, config = tiny_checkpoint_tensors(flavour, seed, size)
    metadata = {"model_version": "2.3.0-tiny"} if flavour == "ltx2.3" else {}
    save_checkpoint(files.checkpoint, tensors, config=config, metadata=metadata)
    write_tiny_gemma(files.gemma, seed)
    write_tiny_upsampler(files.upsampler, "x2", seed=seed, mid_channels=32)
    model = tiny_transformer(flavour, seed, size)
    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".attn1.to_" in n]
    write_lora(files.refine_lora, random_lora_for(model, rank=4, seed=seed, modules=targets, scale=0.05))
    return files


def cache_root() -> Path:
    env = os.environ.get("LTX2STREAM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ltx2stream"


def ensure_tiny_model(
    flavour: str = "ltx2", *, seed: int = 0, root: Path | None = None, size: str = "tiny"
) -> TinyModelFiles:
    """The cached tiny (or ``size``) model of ``flavour``, written on first use (atomically: temp dir + rename)."""
    check_config_value("tiny model", "flavour", flavour, FLAVOURS)
    version = TINY25_FORMAT if flavour == "ltx2.5" else TINY_FORMAT
    target = (root or cache_root()) / f"{size}-{flavour}-s{seed}-v{version}"
    if target.is_dir():
        return _files_of(target, flavour)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write_tiny_model(tmp, flavour, seed, size)
        try:
            tmp.rename(target)
            log.info("wrote the embedded tiny %s model to %s", flavour, target)
        except OSError:  # another process won the race; theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _files_of(target, flavour)


def _files_of(root: Path, flavour: str) -> TinyModelFiles:
    """The artefacts of a written tiny model (LTX-2.5: the split-layout directory and its text encoder)."""
    if flavour != "ltx2.5":
        return _files(root)
    from ltx2stream.models.tiny_split import NAMES

    return TinyModelFiles(
        root, root / NAMES["text_encoder"], root / NAMES["upsampler"], root / NAMES["distilled_lora"]
    )
