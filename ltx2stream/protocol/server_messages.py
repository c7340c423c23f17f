"""Messages the server sends, in the order a session produces them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ltx2stream.protocol.client_messages import SESSION_ID_PATTERN, Settings
from ltx2stream.protocol.limits import MAX_INDEX, ProtocolLimits
from ltx2stream.protocol.schema import Bin, Bool, Float, Int, Message, Str, Struct, wire
from ltx2stream.types import MAX_SEED

STAGES = ("text", "stage1", "upsample", "stage2", "decode", "carry", "encode", "send")
FINAL_REASONS = (
    "stopped",
    "failed",
    "shutdown",
    "timeout",
    "limit",
)  # limit: a server cap (duration, segments)
# the values of the session layer's SessionState (a test keeps them equal; the protocol does not import it)
SESSION_STATES = ("queued", "starting", "running", "paused", "stopping", "closed", "failed")
MAX_SECONDS = 1e9
_COUNT = Int(0, MAX_INDEX)
_SECONDS = Float(0.0, MAX_SECONDS)


@dataclass(frozen=True)
class LimitsInfo:
    """The client-facing limits, advertised in ``accepted``."""

    max_message_bytes: int = wire(_COUNT)
    max_prompt_chars: int = wire(_COUNT)
    max_image_bytes: int = wire(_COUNT)
    max_state_bytes: int = wire(_COUNT)
    max_lookahead: int = wire(_COUNT)
    max_blend_segments: int = wire(_COUNT)
    steer_per_minute: float = wire(_SECONDS)
    steer_burst: int = wire(_COUNT)

    @classmethod
    def from_limits(cls, limits: ProtocolLimits) -> LimitsInfo:
        """The advertised subset of the server's own decoding limits."""
        return cls(
            limits.max_message_bytes,
            limits.max_prompt_chars,
            limits.max_image_bytes,
            limits.max_state_bytes,
            limits.max_lookahead,
            limits.max_blend_segments,
            limits.steer_per_minute,
            limits.steer_burst,
        )


@dataclass(frozen=True)
class SegmentTimings:
    """Wall seconds per stage of one segment (0 for a stage the preset does not run)."""

    text: float = wire(_SECONDS)
    stage1: float = wire(_SECONDS)
    upsample: float = wire(_SECONDS)
    stage2: float = wire(_SECONDS)
    decode: float = wire(_SECONDS)
    encode: float = wire(_SECONDS)
    send: float = wire(_SECONDS)
    carry: float = wire(_SECONDS, default=0.0)  # the continuation carry: anchor encodes + tail copies


@dataclass(frozen=True)
class Accepted(Message):
    """The session exists: its id, the effective settings, the limits and the MSE MIME type."""

    type: ClassVar[str] = "accepted"
    sender: ClassVar[str] = "server"
    session_id: str = wire(Str(64, pattern=SESSION_ID_PATTERN))
    protocol_version: int = wire(_COUNT)
    settings: Settings = wire(Struct(Settings))
    limits: LimitsInfo = wire(Struct(LimitsInfo))
    mime: str = wire(Str(256, min_len=1))  # e.g. video/mp4; codecs="avc1.64001e,mp4a.40.2"
    resumed_from_segment: int | None = wire(_COUNT, default=None)


@dataclass(frozen=True)
class Queued(Message):
    """Waiting for the generator; 0 = next in line. Sent again whenever the position changes."""

    type: ClassVar[str] = "queued"
    sender: ClassVar[str] = "server"
    position: int = wire(_COUNT)


@dataclass(frozen=True)
class State(Message):
    """The session changed state (see the state machine)."""

    type: ClassVar[str] = "state"
    sender: ClassVar[str] = "server"
    state: str = wire(Str(16, choices=SESSION_STATES))
    previous: str = wire(Str(16, choices=SESSION_STATES))
    reason: str | None = wire(Str(256), default=None)


@dataclass(frozen=True)
class SegmentStarted(Message):
    """Generation of a segment began; its prompt and seed are now fixed."""

    type: ClassVar[str] = "segment_started"
    sender: ClassVar[str] = "server"
    index: int = wire(_COUNT)
    prompt: str = wire(Str("max_prompt_chars", min_len=1))
    seed: int = wire(Int(0, MAX_SEED))
    previous_prompt: str | None = wire(Str("max_prompt_chars"), default=None)  # set during a blend
    weight: float = wire(
        Float(0.0, 1.0), default=1.0
    )  # weight of ``prompt`` (1 - weight for previous_prompt)


@dataclass(frozen=True)
class Progress(Message):
    """One step of one stage of a segment finished (``step`` of ``total``). Each stage's first and last step
    are sent at once (the last one marks the end of that stage's denoising); in between at most one per
    ``progress_interval_s`` (``serve --progress-interval``, 0.05 s), the newest step, unless a step sent at
    once supersedes it. Droppable while the client falls behind."""

    type: ClassVar[str] = "progress"
    sender: ClassVar[str] = "server"
    segment: int = wire(_COUNT)
    stage: str = wire(Str(16, choices=STAGES))
    step: int = wire(_COUNT)
    total: int = wire(Int(1, MAX_INDEX))


@dataclass(frozen=True)
class MediaInit(Message):
    """The fMP4 init segment (ftyp+moov); append it to the SourceBuffer before any ``media``."""

    type: ClassVar[str] = "media_init"
    sender: ClassVar[str] = "server"
    mime: str = wire(Str(256, min_len=1))
    data: bytes = wire(Bin("max_media_bytes", min_len=8))


@dataclass(frozen=True)
class Media(Message):
    """One fMP4 fragment (moof+mdat) of a segment, with absolute session timestamps in seconds."""

    type: ClassVar[str] = "media"
    sender: ClassVar[str] = "server"
    segment: int = wire(_COUNT)
    seq: int = wire(_COUNT)  # fragment counter over the whole session
    t0: float = wire(_SECONDS)
    duration: float = wire(_SECONDS)
    data: bytes = wire(Bin("max_media_bytes", min_len=8))
    last: bool = wire(Bool(), default=True)  # the last fragment of this segment


@dataclass(frozen=True)
class SegmentDone(Message):
    """A segment was generated, encoded and sent."""

    type: ClassVar[str] = "segment_done"
    sender: ClassVar[str] = "server"
    index: int = wire(_COUNT)
    media_duration: float = wire(_SECONDS)
    timings: SegmentTimings = wire(Struct(SegmentTimings))


@dataclass(frozen=True)
class SteerAck(Message):
    """A ``steer`` was scheduled: it applies from segment ``applies_at``."""

    type: ClassVar[str] = "steer_ack"
    sender: ClassVar[str] = "server"
    applies_at: int = wire(_COUNT)
    request_id: int | None = wire(_COUNT, default=None)


@dataclass(frozen=True)
class SnapshotResult(Message):
    """Answer to ``snapshot``: the state blob, or (``stored``) the id under which it can be resumed."""

    type: ClassVar[str] = "snapshot_result"
    sender: ClassVar[str] = "server"
    session_id: str = wire(Str(64, pattern=SESSION_ID_PATTERN))
    segment_index: int = wire(_COUNT)
    stored: bool = wire(Bool())
    data: bytes | None = wire(Bin("max_state_bytes", min_len=8), default=None)
    request_id: int | None = wire(_COUNT, default=None)


@dataclass(frozen=True)
class Error(Message):
    """An error; ``fatal`` ones are followed by ``final`` and a close (see the error table)."""

    type: ClassVar[str] = "error"
    sender: ClassVar[str] = "server"
    code: str = wire(Str(64, min_len=1))
    message: str = wire(Str(2048))
    retryable: bool = wire(Bool())
    fatal: bool = wire(Bool())
    request_id: int | None = wire(_COUNT, default=None)


@dataclass(frozen=True)
class Final(Message):
    """The last message before the server closes the connection."""

    type: ClassVar[str] = "final"
    sender: ClassVar[str] = "server"
    reason: str = wire(Str(16, choices=FINAL_REASONS))
    segments: int = wire(_COUNT)  # segments fully delivered
    resumable_session_id: str | None = wire(Str(64, pattern=SESSION_ID_PATTERN), default=None)
    error_code: str | None = wire(Str(64), default=None)


SERVER_MESSAGES: tuple[type[Message], ...] = (
    Accepted,
    Queued,
    State,
    SegmentStarted,
    Progress,
    MediaInit,
    Media,
    SegmentDone,
    SteerAck,
    SnapshotResult,
    Error,
    Final,
)
