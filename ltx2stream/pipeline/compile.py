"""``--compile``: the transformer's forward through ``torch.compile`` (CUDA graphs on CUDA devices).

The transformer runs every denoising step, so it is what compiling pays for; the VAEs, the vocoder and the text
path run once per segment and stay eager. The module keeps its identity (``nn.Module.compile`` compiles
``__call__`` in place), so the refine LoRA's in-place weight patches, the sequence-parallel wrapper and
``StageCache`` work unchanged. On CUDA the mode is ``reduce-overhead`` (CUDA graphs: one launch per step instead
of one per kernel); on the CPU the default inductor mode (C++ kernels; needs a C++ compiler). Outputs equal the
eager ones within float tolerance (``tests/test_compile.py``), not bit for bit.
"""

from __future__ import annotations

import logging
import shutil

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError

log = logging.getLogger(__name__)


def compile_mode(device: torch.device | str) -> str:
    """``reduce-overhead`` (CUDA graphs) on CUDA, inductor's ``default`` elsewhere."""
    return "reduce-overhead" if torch.device(device).type == "cuda" else "default"


def cpu_compiler_available() -> bool:
    """Inductor's CPU backend builds C++: it needs a compiler on PATH."""
    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


def compile_transformer(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Compile ``model``'s forward in place (same object returned). Raises ConfigError when it cannot be.

    ``dynamic=None``: a second shape (stage 2's size, a guided batch) makes dims dynamic instead of compiling
    one graph per shape.
    """
    mode = compile_mode(device)
    if mode == "default" and not cpu_compiler_available():
        raise ConfigError(
            "--compile on the CPU needs a C++ compiler (g++ or clang++) on PATH",
            code=codes.CONFIG_UNSUPPORTED_VALUE,
        )
    model.compile(mode=mode, dynamic=None)
    log.info("transformer compiled (torch.compile mode=%s)", mode)
    return model
