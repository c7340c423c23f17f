"""Training clips: what a data source gives the trainers (``Clip``) and the interface it implements.

A source renders clip ``index`` (deterministic per index) at a requested size, length and frame rate, with a
scene change at ``change_at`` seconds when asked (so windows whose carried prefix shows the old scene and whose
caption is the new one are drawn on purpose). ``ltx2stream.pocket.world_source`` adapts the procedural world
(``ltx2stream.world``) to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class Clip:
    """frames uint8 [F, H, W, 3]; audio float32 [2, N] in [-1, 1] at ``sample_rate``; ``captions`` are
    (start second, caption) pairs in time order, the first starting at 0."""

    frames: np.ndarray
    audio: np.ndarray
    sample_rate: int
    fps: float
    captions: tuple[tuple[float, str], ...]

    def __post_init__(self) -> None:
        f = self.frames
        if f.ndim != 4 or f.shape[3] != 3 or f.dtype != np.uint8:
            raise ValueError(f"clip frames must be uint8 [F, H, W, 3]; got {f.dtype} {f.shape}")
        if self.audio.ndim != 2 or self.audio.shape[0] != 2:
            raise ValueError(f"clip audio must be [2, N]; got {self.audio.shape}")
        if not self.captions or self.captions[0][0] != 0.0:
            raise ValueError("clip captions must start at time 0")

    def caption_at(self, seconds: float) -> str:
        """The caption in force at ``seconds``."""
        text = self.captions[0][1]
        for start, caption in self.captions:
            if start <= seconds + 1e-9:
                text = caption
        return text

    def video(self) -> torch.Tensor:
        """[1, 3, F, H, W] float32 in [-1, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(self.frames)).float() / 127.5 - 1.0
        return x.permute(3, 0, 1, 2)[None]

    def waveform(self) -> torch.Tensor:
        """[1, 2, N] float32."""
        return torch.from_numpy(np.ascontiguousarray(self.audio, dtype=np.float32))[None]


class ClipSource(Protocol):
    """Deterministic clips: the same arguments give the same clip. ``sound_key`` names what the clips' audio is
    made from (a cache of encoded audio with another key is stale); the audio does not depend on the size.
    ``clip_key`` names what an index draws (a cached entry of another key is stale as a whole: pictures, sound
    and caption)."""

    @property
    def sound_key(self) -> str: ...

    @property
    def clip_key(self) -> str: ...

    def clip(
        self,
        index: int,
        *,
        frames: int,
        height: int,
        width: int,
        fps: float,
        change_at: float | None = None,
    ) -> Clip: ...


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), the same on every platform and run."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x = z ^ (z >> 31)
    return x & 0x7FFFFFFFFFFFFFFF
