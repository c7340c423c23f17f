"""Arguments shared by the commands that load a model: preset, checkpoint files, device and dtype."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.pipeline.components import ModelPaths
from ltx2stream.pipeline.presets import DEFAULT_PRESET

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"pipeline preset (default {DEFAULT_PRESET}; see `ltx2stream presets`)",
    )
    g.add_argument(
        "--checkpoint",
        type=Path,
        help="official single-file checkpoint (.safetensors; pocket: another export)",
    )
    g.add_argument("--gemma", type=Path, help="Gemma 3 directory (Hugging Face layout) or .gguf file")
    g.add_argument("--upsampler", type=Path, help="latent upsampler file (two-stage presets)")
    g.add_argument(
        "--lora", type=Path, help="refine LoRA for stage 2 (e.g. the distilled LoRA for dev presets)"
    )
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        help="weights dtype (default: bfloat16, float32 for tiny and pocket)",
    )
    g.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the transformer (CUDA graphs on CUDA; needs a C++ compiler on the CPU)",
    )


def model_paths(args: argparse.Namespace) -> ModelPaths | None:
    if args.checkpoint is None and args.gemma is None:
        return None
    presets = getattr(args, "presets", None) or [getattr(args, "preset", None)]  # serve: --preset repeatable
    if (
        args.gemma is None and presets and all(_is_pocket(p) for p in presets)
    ):  # a pocket export: packaged Gemma
        from ltx2stream.models.pocket_files import packaged_gemma_270m

        return ModelPaths(args.checkpoint, packaged_gemma_270m(), args.upsampler, args.lora)
    if args.checkpoint is None or args.gemma is None:
        raise InputError("give both --checkpoint and --gemma", code=codes.INPUT_MODEL_PATHS)
    return ModelPaths(args.checkpoint, args.gemma, args.upsampler, args.lora)


def _is_pocket(preset: str | None) -> bool:
    from ltx2stream.pipeline.presets import PRESETS

    return preset is not None and preset in PRESETS and PRESETS[preset].pocket


def dtype_of(args: argparse.Namespace) -> torch.dtype | None:
    return DTYPES[args.dtype] if args.dtype else None


class StageBars:
    """One tqdm bar per stage (text, stage 1, upsample, stage 2, decode), fed by pipeline progress events."""

    def __init__(self, prefix: str = "", disable: bool = False) -> None:
        self.prefix = prefix
        self.disable = disable
        self._bar: tqdm | None = None
        self._stage: str | None = None

    def __call__(self, stage: str, step: int, total: int) -> None:
        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(
                total=total, desc=f"{self.prefix}{stage}", unit="step", leave=False, disable=self.disable
            )
        assert self._bar is not None
        self._bar.update(step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None
