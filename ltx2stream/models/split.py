"""Split per-component checkpoints (the LTX-2.5 release layout) as one virtual single-file checkpoint.

LTX-2.5 is published only as per-component files (HF ``Lightricks/LTX-2.5``, spec §1.1); LTX-2 / 2.3 keep their
monolithic files. A ``ModelFileSet`` names the component files; ``open_model`` turns either layout into one
``Checkpoint`` whose keys are the monolithic ones, so every part loader stays the same:

| component | released file (folder / name pattern) | keys in the file | keys in the view |
|---|---|---|---|
| transformer | ``diffusion_models/*-{dev,distilled}-transformer*`` | ``model.diffusion_model.*`` | same |
| text encoder | ``text_encoders/*`` (Gemma + ``text_embedding_projection.*``) | Gemma keys, projection | projection only |
| video VAE | ``vae/*-video-vae-*`` (``-conv-`` = conv decoder) | bare ``encoder.*`` ... or ``vae.*`` | ``vae.*`` |
| audio VAE | ``vae/*-audio-vae*`` | ``audio_vae.*``, ``vocoder.*`` | same |
| upsamplers | ``latent_upscale_models/*-spatial-upscaler-x2*`` / ``*-temporal-*`` | own loader | – |
| distilled LoRA | ``loras/*distilled-lora*`` | LoRA keys | – |
| duration head | ``model_patches/*duration-head*`` (optional) | ``duration_head.*`` | – |

Each file carries its own ``config`` sections (transformer: ``transformer``; VAE: ``vae``; audio: ``audio_vae``,
``vocoder``); the view merges them and takes the top-level metadata (``model_version``,
``gemma_source_checkpoint``) from the transformer file, as the official ``ModelPaths`` does. Two files giving
the same key or section are an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import Checkpoint, open_checkpoint

VAE_PARTS = ("encoder.", "decoder.", "per_channel_statistics.")
# Released folder / file-name patterns (``Path.glob``) per component; ``{variant}`` is dev or distilled.
PATTERNS: dict[str, str] = {
    "transformer": "diffusion_models/*-{variant}-transformer*.safetensors",
    "text_encoder": "text_encoders/*.safetensors",
    "video_vae": "vae/*-video-vae-*.safetensors",
    "audio_vae": "vae/*-audio-vae*.safetensors",
    "upsampler": "latent_upscale_models/*-spatial-upscaler-x2*.safetensors",
    "temporal_upsampler": "latent_upscale_models/*-temporal-upscaler-x2*.safetensors",
    "distilled_lora": "loras/*distilled-lora*.safetensors",
    "duration_head": "model_patches/*duration-head*.safetensors",
}
VARIANTS = ("distilled", "dev")


@dataclass(frozen=True)
class ModelFileSet:
    """The component files of a split model (None = not given / not released)."""

    transformer: Path
    text_encoder: Path | None = None
    video_vae: Path | None = None
    audio_vae: Path | None = None
    upsampler: Path | None = None
    temporal_upsampler: Path | None = None
    distilled_lora: Path | None = None
    duration_head: Path | None = None

    @classmethod
    def from_directory(
        cls, root: str | os.PathLike[str], *, variant: str = "distilled", video_decoder: str | None = None
    ) -> ModelFileSet:
        """Find the released file names under ``root`` (the HF repo layout).

        ``variant`` picks the dev or distilled transformer; ``video_decoder`` ("diffusion" | "conv") picks the
        VAE file (``-video-vae-conv-`` is the conv-decoder variant); None = the diffusion one when present.
        """
        base = Path(root)
        if variant not in VARIANTS:
            raise CheckpointError(
                f"unknown variant {variant!r}; expected one of {VARIANTS}", code=codes.CHECKPOINT_SPLIT_LAYOUT
            )
        found: dict[str, Path | None] = {}
        for name, pattern in PATTERNS.items():
            hits = sorted(base.glob(pattern.format(variant=variant)))
            if name == "video_vae":
                conv = [h for h in hits if "-video-vae-conv" in h.name]
                diffusion = [h for h in hits if h not in conv]
                kind = video_decoder or ("diffusion" if diffusion else "conv")
                hits = conv if kind == "conv" else diffusion
            if len(hits) > 1:
                raise CheckpointError(
                    f"{base}: {len(hits)} files match {pattern} ({[h.name for h in hits]}); give the files "
                    "explicitly",
                    code=codes.CHECKPOINT_SPLIT_LAYOUT,
                )
            found[name] = hits[0] if hits else None
        transformer = found.pop("transformer")
        if transformer is None:
            raise CheckpointError(
                f"{base}: no {variant} transformer ({PATTERNS['transformer'].format(variant=variant)})",
                code=codes.CHECKPOINT_SPLIT_LAYOUT,
            )
        return cls(transformer=transformer, **found)

    def files(self) -> dict[str, Path]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def is_split_layout(path: str | os.PathLike[str]) -> bool:
    """A directory holding the released ``diffusion_models/`` folder."""
    return Path(path).is_dir() and (Path(path) / "diffusion_models").is_dir()


def open_model(
    source: str | os.PathLike[str] | ModelFileSet,
    *,
    variant: str = "distilled",
    video_decoder: str | None = None,
) -> Checkpoint:
    """A monolithic file as is, or a split set (directory or ``ModelFileSet``) as one virtual checkpoint."""
    if isinstance(source, ModelFileSet):
        return merge_split(source)
    if is_split_layout(source):
        return merge_split(ModelFileSet.from_directory(source, variant=variant, video_decoder=video_decoder))
    return open_checkpoint(source)


def merge_split(files: ModelFileSet) -> Checkpoint:
    """One ``Checkpoint`` over the transformer, text-encoder projection, video VAE and audio VAE files."""
    parts: list[tuple[Checkpoint, dict[str, str]]] = []
    transformer = open_checkpoint(files.transformer)
    parts.append((transformer, {k: k for k in transformer.keys}))
    if files.text_encoder is not None:
        te = open_checkpoint(files.text_encoder)
        parts.append((te, {k: k for k in te.keys if k.startswith("text_embedding_projection.")}))
    if files.video_vae is not None:
        vae = open_checkpoint(files.video_vae)
        parts.append((vae, _vae_keys(vae)))
    if files.audio_vae is not None:
        audio = open_checkpoint(files.audio_vae)
        parts.append((audio, {k: k for k in audio.keys if k.startswith(("audio_vae.", "vocoder."))}))
    sources: dict[str, tuple[Path, str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    config: dict[str, Any] = {}
    for ckpt, mapping in parts:
        for view_key, file_key in mapping.items():
            if view_key in sources:
                raise CheckpointError(
                    f"key {view_key} is in both {sources[view_key][0]} and {ckpt.path}",
                    code=codes.CHECKPOINT_SPLIT_LAYOUT,
                )
            sources[view_key] = (ckpt.path, file_key)
            shapes[view_key] = ckpt.shape(file_key)
        for name, section in ckpt.config.items():
            if name in config and config[name] != section:
                raise CheckpointError(
                    f"config section {name!r} differs between the files of {files.transformer.parent}",
                    code=codes.CHECKPOINT_SPLIT_LAYOUT,
                )
            config[name] = section
    return Checkpoint(
        path=transformer.path,
        metadata=transformer.metadata,
        config=config,
        keys=frozenset(sources),
        _shapes=shapes,
        _sources=sources,
    )


def _vae_keys(vae: Checkpoint) -> dict[str, str]:
    """Released VAE files use bare ``encoder.*`` / ``decoder.*`` / ``per_channel_statistics.*`` or ``vae.*``."""
    bare = {f"vae.{k}": k for k in vae.keys if k.startswith(VAE_PARTS)}
    prefixed = {k: k for k in vae.keys if k.startswith("vae.")}
    if bare and prefixed:
        raise CheckpointError(
            f"{vae.path}: mixes bare and vae.-prefixed VAE keys", code=codes.CHECKPOINT_SPLIT_LAYOUT
        )
    return bare or prefixed


def metadata_json(ckpt: Checkpoint, key: str) -> Any:
    """A top-level metadata value JSON-decoded when possible (the official ``metadata()`` contract)."""
    import json

    raw: str | None = ckpt.metadata.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def file_kinds(ckpt: Checkpoint) -> list[str]:
    """Which components a file holds, from its keys and metadata."""
    keys: Mapping[str, Any] = dict.fromkeys(ckpt.keys)
    kinds = []
    if any(k.startswith("model.diffusion_model.") and "embeddings_connector" not in k for k in keys):
        kinds.append("transformer")
    if "gemma_config" in ckpt.metadata or "tokenizer_json" in keys:
        kinds.append("text_encoder")
    elif any(k.startswith("text_embedding_projection.") for k in keys):
        kinds.append("text_projection")
    if any(k.startswith(("vae.", *VAE_PARTS)) for k in keys):
        kinds.append("video_vae")
    if any(k.startswith("audio_vae.") for k in keys):
        kinds.append("audio_vae")
    if any(k.startswith("vocoder.") for k in keys):
        kinds.append("vocoder")
    if any(".lora_A." in k for k in keys):
        kinds.append("lora")
    if any(k.startswith("duration_head.") for k in keys):
        kinds.append("duration_head")
    if any(k.startswith(("initial_conv.", "res_blocks.")) for k in keys):
        kinds.append("upsampler")
    return kinds
