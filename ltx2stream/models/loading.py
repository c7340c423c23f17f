"""Open official single-file safetensors checkpoints and load model parts with strict key checking.

A checkpoint is read lazily (``safe_open`` memory-maps the file); each part is built on the meta device from its
embedded config and filled with ``load_state_dict(assign=True)`` so no random initialisation is ever paid for.
Missing keys, unexpected keys and shape mismatches are errors that list them.

fp8 weights: a float8 tensor ``<name>.weight`` with a scalar ``<name>.weight_scale`` sibling is dequantised to
``weight.float() * scale`` (then cast to the requested dtype) and the scale keys are dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ltx2stream import codes
from ltx2stream.errors import CheckpointError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=torch.nn.Module)

FP8_DTYPES = tuple(
    getattr(torch, name)
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(torch, name)
)
SCALE_SUFFIXES = (".weight_scale", ".input_scale")


@dataclass(frozen=True)
class Checkpoint:
    """An opened safetensors file: its metadata, parsed embedded config and key set (tensors are read lazily)."""

    path: Path
    metadata: Mapping[str, str]
    config: Mapping[str, Any]
    keys: frozenset[str]
    _shapes: Mapping[str, tuple[int, ...]] = field(repr=False, default_factory=dict)
    # A view over several files (split layouts, ``models/split.py``): key -> (file, key in that file).
    _sources: Mapping[str, tuple[Path, str]] | None = field(repr=False, default=None)

    @property
    def model_version(self) -> str | None:
        return self.metadata.get("model_version")

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.keys)

    def keys_with_prefix(self, prefix: str) -> list[str]:
        return sorted(k for k in self.keys if k.startswith(prefix))

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def section(self, name: str) -> Mapping[str, Any]:
        """The ``name`` section of the embedded config (``transformer``, ``vae``, ``audio_vae``, ``vocoder``...)."""
        if name not in self.config:
            raise CheckpointError(
                f"{self.path}: embedded config has no '{name}' section (sections: {sorted(self.config)})",
                code=codes.CHECKPOINT_MISSING_CONFIG,
            )
        return self.config[name]

    def read(
        self,
        prefix: str = "",
        *,
        strip: bool = True,
        dtype: torch.dtype | None = None,
        exclude: Iterable[str] = (),
    ) -> dict[str, torch.Tensor]:
        """Read every tensor under ``prefix`` (minus keys starting with any ``exclude`` prefix).

        Floating tensors are cast to ``dtype`` when given; fp8 weights with ``weight_scale`` are dequantised.
        """
        excluded = tuple(exclude)
        names = [k for k in self.keys_with_prefix(prefix) if not (excluded and k.startswith(excluded))]
        raw: dict[str, torch.Tensor] = {}
        by_file: dict[Path, list[tuple[str, str]]] = {}
        for name in names:
            src, key = self._sources[name] if self._sources is not None else (self.path, name)
            by_file.setdefault(src, []).append((name, key))
        for src, pairs in by_file.items():
            try:
                with safe_open(str(src), framework="pt", device="cpu") as f:
                    for name, key in pairs:
                        raw[name] = f.get_tensor(key)
            except Exception as e:  # safetensors raises its own error types for short reads
                raise CheckpointError(
                    f"{src}: cannot read tensors: {e}", code=codes.CHECKPOINT_UNREADABLE
                ) from e
        out = dequantize_fp8(raw, dtype)
        if dtype is not None:
            out = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in out.items()}
        if strip:
            out = {k[len(prefix) :]: v for k, v in out.items()}
        return out


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Open a safetensors file; raise CheckpointError if it is missing, not safetensors, or truncated."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}", code=codes.CHECKPOINT_NOT_FOUND)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            keys = frozenset(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
    except Exception as e:
        raise CheckpointError(
            f"{p}: not a readable safetensors file (truncated or corrupt?): {e}",
            code=codes.CHECKPOINT_CORRUPT,
        ) from e
    _check_size(p, metadata, shapes)
    config: Mapping[str, Any] = {}
    if "config" in metadata:
        try:
            config = json.loads(metadata["config"])
        except json.JSONDecodeError as e:
            raise CheckpointError(
                f"{p}: embedded config is not valid JSON: {e}", code=codes.CHECKPOINT_BAD_CONFIG
            ) from e
    return Checkpoint(path=p, metadata=metadata, config=config, keys=keys, _shapes=shapes)


def _check_size(path: Path, metadata: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Guard against truncation: the file must hold the header plus the highest data offset."""
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    size = path.stat().st_size
    if size < 8 + header_len + end:
        raise CheckpointError(
            f"{path}: file is truncated ({size} bytes, header says {8 + header_len + end})",
            code=codes.CHECKPOINT_TRUNCATED,
        )


def dequantize_fp8(state: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Replace fp8 ``X.weight`` + ``X.weight_scale`` pairs by dequantised weights; drop scale keys."""
    out: dict[str, torch.Tensor] = {}
    target = dtype or torch.bfloat16
    for name, t in state.items():
        if name.endswith(SCALE_SUFFIXES):
            continue
        if t.dtype in FP8_DTYPES:
            scale = state.get(name + "_scale")  # "<m>.weight" -> "<m>.weight_scale"
            w = t.to(torch.float32)
            if scale is not None:
                w = w * scale.to(torch.float32)
            t = w.to(target)
        out[name] = t
    return out


def build_on_meta(factory: Callable[[], M]) -> M:
    """Construct a module on the meta device (no memory, no random init)."""
    with torch.device("meta"):
        return factory()


def load_strict(
    module: M,
    state: Mapping[str, torch.Tensor],
    *,
    what: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> M:
    """Fill ``module`` (usually built on meta) with ``state``; raise CheckpointError listing any key/shape mismatch.

    Persistent buffers are part of the expected key set; non-persistent buffers are rebuilt afterwards by calling
    ``materialize_buffers(device)`` on every submodule that defines it.
    """
    expected = module.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        raise CheckpointError(
            _mismatch_message(what, missing, unexpected, wrong), code=codes.CHECKPOINT_KEY_MISMATCH
        )
    cast = {
        k: (v.to(device=device, dtype=dtype) if dtype is not None and v.is_floating_point() else v.to(device))
        for k, v in state.items()
    }
    module.load_state_dict(cast, strict=True, assign=True)
    for sub in module.modules():
        hook = getattr(sub, "materialize_buffers", None)
        if callable(hook):
            hook(torch.device(device))
    leftovers = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointError(
            f"{what}: tensors left on meta after loading: {leftovers[:10]}", code=codes.CHECKPOINT_META
        )
    return module.eval()


def _mismatch_message(what: str, missing: list[str], unexpected: list[str], wrong: list[str]) -> str:
    def listing(title: str, items: list[str]) -> str:
        head = ", ".join(items[:20]) + (f", … (+{len(items) - 20} more)" if len(items) > 20 else "")
        return f"{len(items)} {title} [{head}]"

    parts = [
        listing(t, i)
        for t, i in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if i
    ]
    return f"{what}: checkpoint does not match the model: " + "; ".join(parts)


def with_prefix(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    *,
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` as one safetensors file with ``config`` embedded as JSON under the ``config`` key."""
    meta = dict(metadata or {})
    if config is not None:
        meta["config"] = json.dumps(config)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(contiguous, str(p), metadata=meta)
    return p
