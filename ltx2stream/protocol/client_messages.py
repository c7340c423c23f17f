"""Messages the client sends: open, steer, pause, resume, snapshot, stop (and the maps nested in ``open``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ltx2stream import codes
from ltx2stream.errors import ProtocolError
from ltx2stream.protocol.limits import MAX_INDEX, PROTOCOL_VERSION, ProtocolLimits
from ltx2stream.protocol.schema import Bin, Bool, Float, Int, Message, Str, Struct, wire
from ltx2stream.types import MAX_SEED, latent_frames_of

PRESET_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
SESSION_ID_PATTERN = r"[A-Za-z0-9_-]{8,64}"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp")
TRANSITIONS = ("cut", "blend")


def sniff_image(data: bytes) -> str | None:
    """The image MIME type told by the magic bytes (PNG, JPEG, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class Settings:
    """Generation settings of a session; the controller checks preset rules (two-stage: multiples of 64)."""

    preset: str = wire(Str(64, min_len=1, choices="presets", pattern=PRESET_PATTERN))
    width: int = wire(Int(32, "max_width", step=32))
    height: int = wire(Int(32, "max_height", step=32))
    fps: float = wire(Float("min_fps", "max_fps"))
    frames: int = wire(Int(1, "max_frames", step=8, offset=1))  # pixel frames per segment, 1 + 8k
    overlap: int = wire(Int(0, "max_overlap"), default=0)  # latent frames carried into the next segment
    seed: int = wire(Int(0, MAX_SEED), default=0)

    def check_rules(self, limits: ProtocolLimits) -> None:
        latent_frames = latent_frames_of(self.frames)
        if self.overlap >= latent_frames:
            raise ProtocolError(
                f"settings.overlap: {self.overlap} latent frames must be < the {latent_frames} latent frames of a "
                f"{self.frames}-frame segment",
                code=codes.PROTOCOL_OUT_OF_RANGE,
            )


@dataclass(frozen=True)
class Image:
    """A conditioning image: raw file bytes whose magic must agree with ``mime``."""

    data: bytes = wire(Bin("max_image_bytes", min_len=12))
    mime: str = wire(Str(16, choices=IMAGE_MIMES))
    strength: float = wire(Float(0.0, 1.0), default=1.0)
    frame: int = wire(Int(0, "max_frames"), default=0)  # pixel frame of the first segment it conditions

    def check_rules(self, limits: ProtocolLimits) -> None:
        sniffed = sniff_image(self.data)
        if sniffed != self.mime:
            found = sniffed or "no PNG/JPEG/WebP signature"
            raise ProtocolError(
                f"image: declared {self.mime} but the bytes are {found}", code=codes.PROTOCOL_BAD_IMAGE
            )


@dataclass(frozen=True)
class ResumeFrom:
    """Continue a stored session (``session_id`` [+ ``segment_index``]) or an uploaded ``state`` blob, not both."""

    session_id: str | None = wire(
        Str(64, pattern=SESSION_ID_PATTERN, code=codes.SESSION_BAD_ID), default=None
    )
    segment_index: int | None = wire(Int(0, MAX_INDEX), default=None)  # None: the latest stored
    state: bytes | None = wire(Bin("max_state_bytes", min_len=8), default=None)

    def check_rules(self, limits: ProtocolLimits) -> None:
        if (self.session_id is None) == (self.state is None):
            raise ProtocolError(
                "resume_from: give exactly one of session_id or state", code=codes.PROTOCOL_OUT_OF_RANGE
            )
        if self.state is not None and self.segment_index is not None:
            raise ProtocolError(
                "resume_from.segment_index only applies with session_id", code=codes.PROTOCOL_OUT_OF_RANGE
            )


@dataclass(frozen=True)
class Open(Message):
    """First message of a connection: start (or resume) a session."""

    type: ClassVar[str] = "open"
    sender: ClassVar[str] = "client"
    protocol_version: int = wire(Int(0, MAX_INDEX))
    settings: Settings = wire(Struct(Settings))
    prompt: str = wire(Str("max_prompt_chars", min_len=1))
    image: Image | None = wire(Struct(Image), default=None)
    resume_from: ResumeFrom | None = wire(Struct(ResumeFrom), default=None)
    lookahead: int = wire(Int(0, "max_lookahead"), default=1)

    @classmethod
    def check_raw(cls, data: Mapping[str, Any]) -> None:
        """Refuse another protocol version before looking at fields a newer client may have added."""
        version = data.get("protocol_version")
        if isinstance(version, int) and not isinstance(version, bool) and version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"open.protocol_version: {version} is not supported; this server speaks {PROTOCOL_VERSION}",
                code=codes.PROTOCOL_UNSUPPORTED_VERSION,
            )


@dataclass(frozen=True)
class Steer(Message):
    """Change the prompt from the next segment that has not started; answered by ``steer_ack``."""

    type: ClassVar[str] = "steer"
    sender: ClassVar[str] = "client"
    prompt: str = wire(Str("max_prompt_chars", min_len=1))
    transition: str = wire(Str(8, choices=TRANSITIONS), default="cut")
    blend_segments: int = wire(Int(1, "max_blend_segments"), default=1)
    seed: int | None = wire(Int(0, MAX_SEED), default=None)
    request_id: int | None = wire(Int(0, MAX_INDEX), default=None)

    def check_rules(self, limits: ProtocolLimits) -> None:
        if self.transition == "cut" and self.blend_segments != 1:
            raise ProtocolError(
                f"steer.blend_segments={self.blend_segments} only applies to transition 'blend'",
                code=codes.PROTOCOL_OUT_OF_RANGE,
            )


@dataclass(frozen=True)
class Pause(Message):
    """Stop starting new segments (the one in flight finishes and is delivered)."""

    type: ClassVar[str] = "pause"
    sender: ClassVar[str] = "client"


@dataclass(frozen=True)
class Resume(Message):
    """Start generating again after ``pause``."""

    type: ClassVar[str] = "resume"
    sender: ClassVar[str] = "client"


@dataclass(frozen=True)
class Snapshot(Message):
    """Ask for the continuation state after the last finished segment: as a blob, or stored (``store=true``)."""

    type: ClassVar[str] = "snapshot"
    sender: ClassVar[str] = "client"
    store: bool = wire(Bool(), default=False)
    request_id: int | None = wire(Int(0, MAX_INDEX), default=None)


@dataclass(frozen=True)
class Stop(Message):
    """End the session: the server finishes or cancels the segment in flight, sends ``final`` and closes 1000.
    A segment whose decode has not reached its last frames when ``stop`` arrives ends the stream with all of them
    (the few frames a carrying session otherwise holds for the next segment)."""

    type: ClassVar[str] = "stop"
    sender: ClassVar[str] = "client"


CLIENT_MESSAGES: tuple[type[Message], ...] = (Open, Steer, Pause, Resume, Snapshot, Stop)
