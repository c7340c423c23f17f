"""Apply LoRAs to a loaded model and take them off again with the weights restored bit for bit.

Two modes, both exactly reversible:

* ``"merge"`` (default): ``W <- cast(float32(W) + strength * B @ A)``, the official fused update, computed in
  float32 and cast back to W's dtype. No per-step cost. The first LoRA touching a weight saves a copy of the
  original (on ``backup_device``: the weight's own device by default, or e.g. ``"cpu"`` to spend host memory
  instead of GPU memory); ``remove()`` copies it back. Rounding makes ``W + d - d != W`` in bf16, so keeping
  the original is the only way to an exact restore.
* ``"hooks"``: weights are never touched; a forward hook adds ``strength * (x A^T) B^T`` to each adapted
  ``nn.Linear``. No copy of the weights, but extra FLOPs every call (≈ rank·(in+out) / (in·out) of the layer,
  ~19 % for rank 384 on 4096x4096). Suited to a LoRA that is switched on and off per stage (the distilled
  LoRA of a dev model's refine stage) when the model fills the GPU.

Stacking: several LoRAs may be applied to one model and removed in any order. Removing a merged LoRA restores
the saved originals of its weights and re-merges, in their original order, the LoRAs still applied to them, so
the weights always equal "original + the active LoRAs merged in application order"; once none is left they are
the original bits. Not thread-safe: apply/remove while nothing runs the model.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from ltx2stream import codes
from ltx2stream.errors import CheckpointError, InputError
from ltx2stream.models.lora_weights import LoRAPair, LoRAWeights, module_weight, random_lora_for, write_lora

__all__ = ["LoRAHandle", "LoRAPair", "LoRAWeights", "apply_lora", "random_lora_for", "write_lora"]

log = logging.getLogger(__name__)

Mode = Literal["merge", "hooks"]


@dataclass
class _MergeState:
    """Per-model bookkeeping of merged LoRAs: originals of touched weights and the active handles in order."""

    originals: dict[str, torch.Tensor] = field(default_factory=dict)
    active: list[LoRAHandle] = field(default_factory=list)


_STATES: weakref.WeakKeyDictionary[nn.Module, _MergeState] = weakref.WeakKeyDictionary()


class LoRAHandle:
    """One applied LoRA; ``remove()`` (or leaving the ``with`` block) takes it off exactly. Idempotent."""

    def __init__(self, model: nn.Module, lora: LoRAWeights, strength: float, mode: Mode) -> None:
        self.model = model
        self.lora = lora
        self.strength = strength
        self.mode = mode
        self.modules: tuple[str, ...] = lora.modules if strength != 0.0 else ()  # strength 0 touches nothing
        self._module_set = frozenset(self.modules)
        self._hooks: list[RemovableHandle] = []
        self.active = True

    def remove(self) -> None:
        if not self.active:
            return
        self.active = False
        if not self.modules:
            return
        if self.mode == "hooks":
            for hook in self._hooks:
                hook.remove()
            self._hooks.clear()
        else:
            _unmerge(self)
        log.info("LoRA %s removed (%s, %d modules)", self.lora.source, self.mode, len(self.modules))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"LoRAHandle({self.lora.source!r}, strength={self.strength}, {self.mode}, {state})"


def apply_lora(
    model: nn.Module,
    lora: LoRAWeights,
    strength: float,
    *,
    mode: Mode = "merge",
    backup_device: torch.device | str | None = None,
) -> LoRAHandle:
    """Apply ``lora`` at ``strength`` to ``model`` (module paths as in the model's state dict).

    Every target is checked first (nothing is changed on error): unknown modules and weights whose shape is
    not [B.out, A.in] raise CheckpointError listing them. A non-finite ``strength`` is an InputError; 0 is a
    no-op. ``mode`` and ``backup_device``: see the module docstring.
    """
    if mode not in ("merge", "hooks"):
        raise InputError(f"LoRA mode must be 'merge' or 'hooks', got {mode!r}", code=codes.INPUT_LORA_MODE)
    if not math.isfinite(strength):
        raise InputError(f"LoRA strength must be finite, got {strength}", code=codes.INPUT_LORA_STRENGTH)
    targets = _resolve_targets(model, lora, hooks=(mode == "hooks"))
    handle = LoRAHandle(model, lora, float(strength), mode)
    if handle.modules:
        if mode == "hooks":
            handle._hooks = [_add_hook(targets[m], lora.pairs[m], handle.strength) for m in handle.modules]
        else:
            _merge(handle, targets, backup_device)
    log.info(
        "LoRA %s applied (%s, strength %g, %d modules)", lora.source, mode, strength, len(handle.modules)
    )
    return handle


def _resolve_targets(model: nn.Module, lora: LoRAWeights, *, hooks: bool) -> dict[str, nn.Module]:
    targets: dict[str, nn.Module] = {}
    unknown: list[str] = []
    wrong: list[str] = []
    for name, pair in lora.pairs.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            unknown.append(name)
            continue
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or (hooks and not isinstance(module, nn.Linear)):
            need = "an nn.Linear (hooks mode)" if hooks else "a module with a 2-D weight"
            wrong.append(f"{name}: {type(module).__name__} is not {need}")
        elif tuple(weight.shape) != pair.weight_shape:
            wrong.append(
                f"{name}: weight {tuple(weight.shape)} vs LoRA B@A {pair.weight_shape} (rank {pair.rank})"
            )
        else:
            targets[name] = module
    if unknown or wrong:
        parts = [f"{len(unknown)} unknown modules {_short(unknown)}"] if unknown else []
        parts += [f"{len(wrong)} mismatched {_short(wrong)}"] if wrong else []
        raise CheckpointError(
            f"LoRA {lora.source} does not fit the model: " + "; ".join(parts),
            code=codes.CHECKPOINT_LORA_UNKNOWN_MODULES if unknown else codes.CHECKPOINT_LORA_SHAPE_MISMATCH,
        )
    return targets


def _short(items: Sequence[str], limit: int = 20) -> str:
    more = f", … (+{len(items) - limit} more)" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + more + "]"


# ---------------------------------------------------------------------------------------------------- merge


@torch.no_grad()
def _merge_one(weight: torch.Tensor, pair: LoRAPair, strength: float) -> None:
    """In place: W <- cast(float32(W) + strength * B @ A)."""
    merged = weight.to(torch.float32) + pair.delta(strength, weight.device)  # [out, in]
    weight.copy_(merged.to(weight.dtype))


@torch.no_grad()
def _merge(
    handle: LoRAHandle, targets: dict[str, nn.Module], backup_device: torch.device | str | None
) -> None:
    state = _STATES.setdefault(handle.model, _MergeState())
    for name in handle.modules:
        weight = module_weight(targets[name])
        if name not in state.originals:
            state.originals[name] = weight.detach().to(device=backup_device or weight.device, copy=True)
        _merge_one(weight, handle.lora.pairs[name], handle.strength)
    state.active.append(handle)


@torch.no_grad()
def _unmerge(handle: LoRAHandle) -> None:
    """Restore the originals of ``handle``'s weights, then re-merge the other active LoRAs in order."""
    state = _STATES[handle.model]
    state.active.remove(handle)
    for name in handle.modules:
        weight = module_weight(handle.model.get_submodule(name))
        weight.copy_(state.originals[name])
        others = [h for h in state.active if name in h._module_set]
        for other in others:
            _merge_one(weight, other.lora.pairs[name], other.strength)
        if not others:
            del state.originals[name]
    if not state.active:
        _STATES.pop(handle.model, None)


# ---------------------------------------------------------------------------------------------------- hooks


def _add_hook(module: nn.Module, pair: LoRAPair, strength: float) -> RemovableHandle:
    """Forward hook adding ``strength * (x A^T) B^T`` to a Linear's output (factors cached in its dtype)."""
    weight = module_weight(module)
    a = pair.a.to(device=weight.device, dtype=weight.dtype)  # [r, in]
    b = (pair.b.to(device=weight.device, dtype=torch.float32) * strength).to(weight.dtype)  # [out, r]

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return output + F.linear(F.linear(args[0], a), b)  # [..., in] -> [..., r] -> [..., out]

    return module.register_forward_hook(hook)
