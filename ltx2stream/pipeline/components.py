"""The loaded model parts a pipeline runs on, and how to load them from official files (or the tiny default)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError

if TYPE_CHECKING:  # the model modules load lazily, in load_components
    from torch.distributed import ProcessGroup

    from ltx2stream.models.audio import AudioCodec
    from ltx2stream.models.lora import LoRAWeights
    from ltx2stream.models.text import PromptEncoder
    from ltx2stream.models.upsampler import LatentUpsampler
    from ltx2stream.models.video_vae import TilingConfig, VideoVAE

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Resident models. ``text_encoder`` may be None on ranks that receive text contexts by broadcast."""

    transformer: torch.nn.Module  # LTXAVModel, or a wrapper with its forward
    text_encoder: PromptEncoder | None
    vae: VideoVAE
    audio: AudioCodec
    upsampler: LatentUpsampler | None = None
    refine_lora: LoRAWeights | None = None
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float32
    tiling: TilingConfig | None = None  # None: decode whole frames (no spatial tiles)
    group: ProcessGroup | None = None  # sequence-parallel group; its first rank runs the text path


@dataclass(frozen=True)
class ModelPaths:
    """Files of a model: the single-file checkpoint (or split-layout directory), a Gemma directory, GGUF file or
    single-file text encoder, optional upsampler and LoRA."""

    checkpoint: Path
    gemma: Path
    upsampler: Path | None = None
    refine_lora: Path | None = None


def load_components(
    paths: ModelPaths,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    vae_dtype: torch.dtype | None = None,
    load_text: bool = True,
    group: ProcessGroup | None = None,
    text_max_length: int = 1024,
    variant: str = "distilled",
) -> Components:
    """Load every part from official-layout files (strict keys), each built from its embedded config.

    ``paths.checkpoint`` is a single file (LTX-2 / 2.3) or a directory in the released split layout
    (LTX-2.5; ``variant`` picks its dev or distilled transformer, ``paths.gemma`` is then the single-file
    text encoder).
    """
    from ltx2stream.models.audio import load_audio_codec
    from ltx2stream.models.lora import LoRAWeights
    from ltx2stream.models.split import open_model
    from ltx2stream.models.text import load_text_path
    from ltx2stream.models.transformer import load_transformer
    from ltx2stream.models.upsampler import load_upsampler
    from ltx2stream.models.video_vae import load_video_vae

    ckpt = open_model(paths.checkpoint, variant=variant)  # single file, or a split-layout directory
    vae_dtype = vae_dtype or dtype
    log.info("loading %s on %s (%s)", paths.checkpoint, device, dtype)
    transformer = load_transformer(ckpt, dtype=dtype, device=device).eval()
    text = (
        load_text_path(ckpt, paths.gemma, dtype=dtype, device=device, max_length=text_max_length)
        if load_text
        else None
    )
    vae = load_video_vae(ckpt, dtype=vae_dtype, device=device).eval()
    audio = load_audio_codec(ckpt, dtype=torch.float32, device=device)
    upsampler = (
        load_upsampler(paths.upsampler, dtype=vae_dtype, device=device).eval() if paths.upsampler else None
    )
    lora = LoRAWeights.load(paths.refine_lora) if paths.refine_lora else None
    return Components(transformer, text, vae, audio, upsampler, lora, device, dtype, group=group)


def components_for_preset(
    preset_name: str,
    paths: ModelPaths | None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> Components:
    """Tiny presets use the embedded default (written on first use, offline); the pocket preset its shipped files
    (or the export in ``paths``); others need ``paths``."""
    from ltx2stream.pipeline.presets import get_preset

    preset = get_preset(preset_name)
    if preset.pocket:
        return pocket_components(paths, device=device, dtype=dtype or torch.float32)
    if preset.tiny:
        from ltx2stream.models.tiny import TINY_TEXT_LENGTH, ensure_tiny_model

        files = ensure_tiny_model(preset.flavour, size=preset.embedded)
        paths = ModelPaths(files.checkpoint, files.gemma, files.upsampler, files.refine_lora)
        return load_components(
            paths, device=device, dtype=dtype or torch.float32, text_max_length=TINY_TEXT_LENGTH
        )
    if paths is None:
        raise ConfigError(
            f"preset {preset_name} needs --checkpoint and --gemma paths", code=codes.CONFIG_NO_CHECKPOINT
        )
    variant = "dev" if "dev" in preset.name.split("-") else "distilled"  # split layouts hold both
    return load_components(paths, device=device, dtype=dtype or torch.bfloat16, variant=variant)


def pocket_components(
    paths: ModelPaths | None, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Components:
    """The pocket model: the shipped files, or the export ``paths`` names (its checkpoint, its upsampler or the
    ``pocket-upsampler-x2.safetensors`` beside it, its Gemma or the packaged Gemma 3 270M). The prompt length is
    the checkpoint's ``pocket_text_length``."""
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.models.pocket_files import (
        TEXT_LENGTH_KEY,
        UPSAMPLER_NAME,
        packaged_gemma_270m,
        pocket_files,
    )

    if paths is None:
        files = pocket_files()
        checkpoint, upsampler, gemma = files.checkpoint, files.upsampler, None
    else:
        checkpoint, gemma = paths.checkpoint, paths.gemma
        upsampler = paths.upsampler or paths.checkpoint.parent / UPSAMPLER_NAME
    length = open_checkpoint(checkpoint).metadata.get(TEXT_LENGTH_KEY)
    if length is None or not length.isdigit():
        raise ConfigError(
            f"{checkpoint} is not a pocket export (no {TEXT_LENGTH_KEY} metadata); the pocket preset runs on "
            "the files written by `python -m ltx2stream.pocket export`",
            code=codes.CONFIG_NOT_POCKET,
        )
    files_ = ModelPaths(checkpoint, gemma or packaged_gemma_270m(), upsampler)
    return load_components(files_, device=device, dtype=dtype, text_max_length=int(length))
