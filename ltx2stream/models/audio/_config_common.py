"""Helpers shared by the audio config modules."""

from __future__ import annotations

from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError

SECTION_VAE = "audio_vae"
SECTION_VOCODER = "vocoder"
FLAVOURS = ("ltx2", "ltx2.3")


def ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def require(section: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{section}: {message}", code=codes.CONFIG_UNSUPPORTED_VALUE)
