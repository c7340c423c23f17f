"""LTX2TextEncodingStage: prompt (and negative prompt) -> video and audio contexts through the cached text path.

With torch.distributed initialised and a (sequence-parallel) group of more than one rank, only the group's first
rank runs Gemma; it broadcasts the contexts to the others, so N ranks do not load / run Gemma N times.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import torch
import torch.distributed as dist

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.state import PromptContexts

log = logging.getLogger(__name__)


class TextEncoder(Protocol):
    def encode(self, prompts: Any) -> Any: ...


class LTX2TextEncodingStage:
    """Encode prompts; ``encoder`` may be None on ranks that receive the broadcast."""

    def __init__(self, encoder: TextEncoder | None, *, group: Any = None) -> None:
        self.encoder = encoder
        self.group = group

    def __call__(self, prompt: str, negative_prompt: str | None = None) -> PromptContexts:
        if not self._distributed():
            return self._encode(prompt, negative_prompt)
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        rank = dist.get_rank(self.group)
        contexts = self._encode(prompt, negative_prompt) if rank == 0 else None
        return _broadcast(contexts, src, self.group)

    def _distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized() and dist.get_world_size(self.group) > 1

    def _encode(self, prompt: str, negative_prompt: str | None) -> PromptContexts:
        if self.encoder is None:
            raise ConfigError(
                "this rank has no text encoder and no process group to receive contexts from",
                code=codes.CONFIG_NO_TEXT_ENCODER,
            )
        pos = self.encoder.encode([prompt])
        if negative_prompt is None:
            return PromptContexts(pos.video, pos.audio)
        neg = self.encoder.encode([negative_prompt])
        return PromptContexts(pos.video, pos.audio, neg.video, neg.audio)


def _broadcast(contexts: PromptContexts | None, src: int, group: Any) -> PromptContexts:
    """Send shapes/dtypes as objects first, then the tensors themselves (works on gloo and NCCL)."""
    names = ("video", "audio", "negative_video", "negative_audio")
    meta: list[Any] = [None]
    if contexts is not None:
        meta[0] = {n: _describe(getattr(contexts, n)) for n in names}
    dist.broadcast_object_list(meta, src=src, group=group)
    device = _comm_device(group)
    out: dict[str, torch.Tensor | None] = {}
    for n in names:
        desc = meta[0][n]
        if desc is None:
            out[n] = None
            continue
        shape, dtype = desc
        t = (
            getattr(contexts, n).to(device)
            if contexts is not None
            else torch.empty(shape, dtype=dtype, device=device)
        )
        dist.broadcast(t, src=src, group=group)
        out[n] = t
    return PromptContexts(**out)  # type: ignore[arg-type]


def _describe(t: torch.Tensor | None) -> tuple[tuple[int, ...], torch.dtype] | None:
    return None if t is None else (tuple(t.shape), t.dtype)


def _comm_device(group: Any) -> torch.device:
    backend = dist.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
