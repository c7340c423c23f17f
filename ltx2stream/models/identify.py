"""``ltx2stream info``: which model a file (or a split-layout directory, or a set of files) is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ltx2stream.models.loading import Checkpoint, open_checkpoint
from ltx2stream.models.split import file_kinds, is_split_layout
from ltx2stream.models.versions import gemma_source_version, parse_model_version, release_name


def describe(paths: list[str | os.PathLike[str]]) -> dict[str, Any]:
    """Per file: components held, sections, model_version; for the set: release, layout, decoder kind."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.safetensors")) if p.is_dir() else [p])
    opened = [open_checkpoint(f) for f in files]
    entries = [_file_entry(c) for c in opened]
    kinds = {k for e in entries for k in e["components"]}
    transformers = [c for c, e in zip(opened, entries, strict=True) if "transformer" in e["components"]]
    summary: dict[str, Any] = {
        "layout": "split"
        if any(is_split_layout(p) for p in map(Path, paths)) or len(files) > 1
        else "single",
        "components": sorted(kinds),
    }
    if transformers:
        summary["model"] = sorted({_release(c) for c in transformers})
    vaes = [e.get("video_decoder") for e in entries if e.get("video_decoder")]
    if vaes:
        summary["video_decoder"] = sorted(set(vaes))
    return {"model": summary, "files": entries}


def _release(ckpt: Checkpoint) -> str:
    from ltx2stream.models.transformer import TransformerConfig

    cfg = TransformerConfig.from_metadata(ckpt.section("transformer"))
    return release_name(
        parse_model_version(ckpt.model_version),
        ltx25_architecture=cfg.is_ltx25_architecture,
        ltx23_architecture=cfg.cross_attention_adaln,
    )


def _file_entry(ckpt: Checkpoint) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": str(ckpt.path),
        "tensors": len(ckpt.keys),
        "components": file_kinds(ckpt),
        "prefixes": sorted({k.split(".")[0] for k in ckpt.keys}),
        "model_version": ckpt.model_version,
        "config_sections": sorted(ckpt.config),
    }
    if "transformer" in entry["components"] and "transformer" in ckpt.config:
        entry["release"] = _release(ckpt)
        entry["gemma_source"] = gemma_source_version(ckpt.metadata)
    if "vae" in ckpt.config:
        name = ckpt.config["vae"].get("_class_name", "CausalVideoAutoencoder")
        entry["video_decoder"] = "conv" if name == "CausalVideoAutoencoder" else "diffusion"
    if "gemma_config" in ckpt.metadata:
        import json

        te = json.loads(ckpt.metadata["gemma_config"])
        entry["text_encoder"] = {"model_type": te.get("model_type"), "gemma_version": te.get("gemma_version")}
    return entry
