"""What a decoder accepts: size limits, numeric ranges and which side's messages it reads.

Ranges in the message schemas may name an attribute of :class:`ProtocolLimits` instead of a number
(``Int(1, "max_frames")``), so one declarative schema serves every deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ltx2stream import codes
from ltx2stream.errors import ConfigError

PROTOCOL_VERSION = 1
MiB = 1 << 20
MAX_INDEX = (1 << 31) - 1


@dataclass(frozen=True)
class ProtocolLimits:
    """Limits applied by :func:`decode`; the server advertises the client-facing ones in ``accepted``.

    Attributes:
        sender: whose messages this decoder reads: ``"client"`` (the server side) or ``"server"`` (a client).
        max_message_bytes: a whole message; also the websockets ``max_size`` on the reading side.
        max_prompt_chars: characters of one prompt.
        max_image_bytes: bytes of the optional conditioning image in ``open``.
        max_state_bytes: bytes of a continuation-state blob (``open.resume_from.state``, ``snapshot_result``).
        max_media_bytes: bytes of one ``media`` / ``media_init`` payload.
        max_width, max_height: pixels; both must also be multiples of 32.
        max_frames: pixel frames per segment (1 + 8k).
        min_fps, max_fps: frames per second.
        max_overlap: latent frames carried from one segment into the next.
        max_lookahead: segments the generator may run ahead of delivery.
        max_blend_segments: segments a ``blend`` steering transition may span.
        max_array_len, max_map_len: msgpack container limits (no message needs more than a few dozen).
        presets: preset ids the server offers; empty = any well-formed id (the controller decides).
        steer_per_minute, steer_burst: the steering rate limit the server enforces (advertised only).
    """

    sender: Literal["client", "server"] = "client"
    max_message_bytes: int = 16 * MiB
    max_prompt_chars: int = 4096
    max_image_bytes: int = 8 * MiB
    max_state_bytes: int = 15 * MiB
    max_media_bytes: int = 15 * MiB
    max_width: int = 3840
    max_height: int = 3840
    max_frames: int = 481
    min_fps: float = 1.0
    max_fps: float = 60.0
    max_overlap: int = 16
    max_lookahead: int = 4
    max_blend_segments: int = 8
    max_array_len: int = 256
    max_map_len: int = 64
    presets: tuple[str, ...] = ()
    steer_per_minute: float = 30.0
    steer_burst: int = 5

    def __post_init__(self) -> None:
        if self.sender not in ("client", "server"):
            raise ConfigError(
                f"ProtocolLimits.sender must be 'client' or 'server'; got {self.sender!r}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        for name in (
            "max_message_bytes",
            "max_prompt_chars",
            "max_image_bytes",
            "max_state_bytes",
            "max_media_bytes",
            "max_width",
            "max_height",
            "max_frames",
            "max_array_len",
            "max_map_len",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"ProtocolLimits.{name} must be > 0; got {getattr(self, name)}",
                    code=codes.CONFIG_OUT_OF_RANGE,
                )
        if not 0 < self.min_fps <= self.max_fps:
            raise ConfigError(
                f"ProtocolLimits fps range is empty: [{self.min_fps}, {self.max_fps}]",
                code=codes.CONFIG_OUT_OF_RANGE,
            )

    @property
    def max_str_bytes(self) -> int:
        """msgpack ``max_str_len``: UTF-8 needs at most 4 bytes per character; 1 KiB floor for short fields."""
        return max(4 * self.max_prompt_chars, 1024)

    @property
    def max_bin_bytes(self) -> int:
        """msgpack ``max_bin_len``: the largest binary field this side may receive."""
        if self.sender == "client":
            return max(self.max_image_bytes, self.max_state_bytes)
        return max(self.max_media_bytes, self.max_state_bytes)

    @classmethod
    def for_client(cls, **overrides: object) -> ProtocolLimits:
        """Limits for a client decoding what the server sends (large media payloads)."""
        fields: dict[str, object] = {
            "sender": "server",
            "max_message_bytes": 64 * MiB,
            "max_media_bytes": 63 * MiB,
            "max_state_bytes": 63 * MiB,
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]
