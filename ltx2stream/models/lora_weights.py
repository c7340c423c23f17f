"""LoRA files: read, validate and write ``diffusion_model.<module>.lora_{A,B}.weight`` pairs.

Official LoRA files (distilled LoRA, IC-LoRAs, camera LoRAs) store, for each adapted linear layer ``<module>``
of the transformer, ``diffusion_model.<module>.lora_A.weight`` [rank, in] and
``diffusion_model.<module>.lora_B.weight`` [out, rank]; the update is ``W += strength * B @ A`` (no alpha
factor). The ``model.diffusion_model.`` spelling is accepted too. Anything else in the file is an error, as
are unpaired factors, rank mismatches, non-2-D factors and non-finite values.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

PREFIXES = ("model.diffusion_model.", "diffusion_model.")  # longest first
SUFFIX_A, SUFFIX_B = ".lora_A.weight", ".lora_B.weight"


@dataclass(frozen=True)
class LoRAPair:
    """Low-rank factors of one layer: ``a`` [rank, in], ``b`` [out, rank]."""

    a: torch.Tensor
    b: torch.Tensor

    @property
    def rank(self) -> int:
        return self.a.shape[0]

    @property
    def weight_shape(self) -> tuple[int, int]:
        """Shape of the adapted weight, [out, in]."""
        return (self.b.shape[0], self.a.shape[1])

    def delta(self, strength: float, device: torch.device | str | None = None) -> torch.Tensor:
        """``strength * B @ A`` in float32 on ``device``; shape [out, in]."""
        a = self.a.to(device=device, dtype=torch.float32)
        b = self.b.to(device=device, dtype=torch.float32)
        return (b @ a).mul_(strength)  # [out, r] @ [r, in] -> [out, in]


@dataclass(frozen=True)
class LoRAWeights:
    """A validated LoRA: module path (prefix stripped) -> factors."""

    pairs: Mapping[str, LoRAPair]
    source: str = "<memory>"

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(sorted(self.pairs))

    @property
    def ranks(self) -> frozenset[int]:
        return frozenset(p.rank for p in self.pairs.values())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LoRAWeights:
        """Read and validate a LoRA safetensors file (CheckpointError naming the offending keys)."""
        ckpt = open_checkpoint(path)
        weights = cls.from_tensors(ckpt.read(""), source=str(ckpt.path))
        log.info("LoRA %s: %d modules, ranks %s", ckpt.path.name, len(weights.pairs), sorted(weights.ranks))
        return weights

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], *, source: str = "<memory>") -> LoRAWeights:
        """Validate official-layout tensors (``[model.]diffusion_model.<module>.lora_{A,B}.weight``)."""
        factors = _split_keys(tensors, source)
        a_mods = {m for m, s in factors if s == SUFFIX_A}
        b_mods = {m for m, s in factors if s == SUFFIX_B}
        unpaired = sorted(a_mods ^ b_mods)
        if unpaired:
            raise CheckpointError(
                f"LoRA {source}: unpaired factors (A without B or B without A): {_listing(unpaired)}",
                code=codes.CHECKPOINT_LORA_UNPAIRED,
            )
        if not a_mods:
            raise CheckpointError(f"LoRA {source}: no lora_A/lora_B pairs", code=codes.CHECKPOINT_LORA_EMPTY)
        pairs = {m: LoRAPair(factors[m, SUFFIX_A], factors[m, SUFFIX_B]) for m in sorted(a_mods)}
        _check_pairs(pairs, source)
        return cls(MappingProxyType(pairs), source)

    def checkpoint_tensors(self, prefix: str = PREFIXES[1]) -> dict[str, torch.Tensor]:
        """Official keys: ``<prefix><module>.lora_A.weight`` / ``.lora_B.weight``."""
        out: dict[str, torch.Tensor] = {}
        for module, pair in self.pairs.items():
            out[prefix + module + SUFFIX_A] = pair.a
            out[prefix + module + SUFFIX_B] = pair.b
        return out

    def subset(self, modules: Iterable[str]) -> LoRAWeights:
        """Only the given modules (KeyError-free: CheckpointError names any that the LoRA lacks)."""
        wanted = sorted(set(modules))
        absent = [m for m in wanted if m not in self.pairs]
        if absent:
            raise CheckpointError(
                f"LoRA {self.source} has no factors for {_listing(absent)}", code=codes.CHECKPOINT_LORA_SUBSET
            )
        return LoRAWeights(MappingProxyType({m: self.pairs[m] for m in wanted}), self.source)

    def without_prefixes(self, *prefixes: str) -> LoRAWeights:
        """Drop the modules under ``prefixes``: parts of a file meant for another model than the target (the
        official loader skips such keys silently; here the caller names them)."""
        kept = {m: p for m, p in self.pairs.items() if not m.startswith(prefixes)}
        dropped = len(self.pairs) - len(kept)
        if dropped:
            log.info("LoRA %s: dropping %d modules under %s", self.source, dropped, list(prefixes))
        return LoRAWeights(MappingProxyType(kept), self.source)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LoRAWeights:
        """Copy with the factors moved (e.g. to the GPU once, instead of on every apply)."""
        pairs = {m: LoRAPair(p.a.to(device, dtype), p.b.to(device, dtype)) for m, p in self.pairs.items()}
        return LoRAWeights(MappingProxyType(pairs), self.source)


def _split_keys(tensors: Mapping[str, torch.Tensor], source: str) -> dict[tuple[str, str], torch.Tensor]:
    """``{(module, suffix): tensor}``; CheckpointError listing keys that are not LoRA factors."""
    out: dict[tuple[str, str], torch.Tensor] = {}
    bad: list[str] = []
    for key, value in tensors.items():
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        suffix = next((s for s in (SUFFIX_A, SUFFIX_B) if key.endswith(s)), None)
        if prefix is None or suffix is None or len(key) <= len(prefix) + len(suffix):
            bad.append(key)
            continue
        module = key[len(prefix) : -len(suffix)]
        if (module, suffix) in out:
            raise CheckpointError(
                f"LoRA {source}: {module}{suffix} appears under two prefixes",
                code=codes.CHECKPOINT_LORA_DUPLICATE,
            )
        out[module, suffix] = value
    if bad:
        raise CheckpointError(
            f"LoRA {source}: keys must be diffusion_model.<module>.lora_A.weight / .lora_B.weight"
            f" (optionally prefixed 'model.'); unexpected {_listing(sorted(bad))}",
            code=codes.CHECKPOINT_LORA_UNEXPECTED_KEYS,
        )
    return out


def _check_pairs(pairs: Mapping[str, LoRAPair], source: str) -> None:
    problems: list[str] = []
    for module, p in pairs.items():
        if p.a.ndim != 2 or p.b.ndim != 2:
            problems.append(
                f"{module}: factors must be 2-D, got A {tuple(p.a.shape)} and B {tuple(p.b.shape)}"
            )
        elif p.a.shape[0] != p.b.shape[1] or p.rank == 0:
            problems.append(
                f"{module}: rank mismatch, A {tuple(p.a.shape)} [r, in] vs B {tuple(p.b.shape)} [out, r]"
            )
        elif not (p.a.is_floating_point() and p.b.is_floating_point()):
            problems.append(f"{module}: factors must be floating point, got {p.a.dtype} / {p.b.dtype}")
        elif not (torch.isfinite(p.a).all() and torch.isfinite(p.b).all()):
            problems.append(f"{module}: factors contain NaN or Inf")
    if problems:
        raise CheckpointError(f"LoRA {source}: {_listing(problems)}", code=codes.CHECKPOINT_LORA_BAD_SHAPE)


def module_weight(module: nn.Module) -> torch.Tensor:
    """The ``weight`` tensor of a LoRA target (CheckpointError if it has none)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise CheckpointError(
            f"{type(module).__name__} has no weight tensor", code=codes.CHECKPOINT_LORA_TARGET
        )
    return weight


def _listing(items: list[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    return f"[{head}{f', … (+{len(items) - limit} more)' if len(items) > limit else ''}]"


def write_lora(
    path: str | os.PathLike[str],
    tensors: LoRAWeights | Mapping[str, torch.Tensor],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a LoRA file; a ``LoRAWeights`` is written under the official ``diffusion_model.`` keys, a mapping
    as given (so tests can write malformed files too)."""
    state = tensors.checkpoint_tensors() if isinstance(tensors, LoRAWeights) else dict(tensors)
    return save_checkpoint(path, state, metadata=metadata)


def random_lora_for(
    model: nn.Module, rank: int, seed: int = 0, modules: Iterable[str] | None = None, scale: float = 0.5
) -> LoRAWeights:
    """Random LoRA for ``modules`` of ``model`` (default: every ``nn.Linear``), for tiny presets and tests.

    Both factors are non-zero (A ~ N(0, 1/in), B ~ N(0, scale^2/rank)) so the update is visible.
    """
    names = (
        list(modules)
        if modules is not None
        else [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    )
    gen = torch.Generator().manual_seed(seed)
    pairs: dict[str, LoRAPair] = {}
    for name in sorted(names):
        out_f, in_f = module_weight(model.get_submodule(name)).shape
        a = torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f)
        b = torch.randn(out_f, rank, generator=gen) * (scale / math.sqrt(rank))
        pairs[name] = LoRAPair(a, b)
    return LoRAWeights(MappingProxyType(pairs), f"random(rank={rank}, seed={seed})")
