"""The WebSocket wire protocol: typed messages both ways, one msgpack map per binary WebSocket message.

Exactly two entry points, :func:`encode` and :func:`decode`; every message is a frozen dataclass with a ``type``
tag. See docs/protocol.md for the catalogue, the state machine, the error table and an example exchange.
"""

from ltx2stream.protocol.client_messages import (
    CLIENT_MESSAGES,
    IMAGE_MIMES,
    Image,
    Open,
    Pause,
    Resume,
    ResumeFrom,
    Settings,
    Snapshot,
    Steer,
    Stop,
    sniff_image,
)
from ltx2stream.protocol.codec import MESSAGE_TYPES, decode, encode, error_from
from ltx2stream.protocol.codes import ERRORS, CloseCode, ErrorSpec, error_spec, is_fatal
from ltx2stream.protocol.limits import PROTOCOL_VERSION, ProtocolLimits
from ltx2stream.protocol.schema import Message
from ltx2stream.protocol.server_messages import (
    SERVER_MESSAGES,
    SESSION_STATES,
    STAGES,
    Accepted,
    Error,
    Final,
    LimitsInfo,
    Media,
    MediaInit,
    Progress,
    Queued,
    SegmentDone,
    SegmentStarted,
    SegmentTimings,
    SnapshotResult,
    State,
    SteerAck,
)

__all__ = [
    "CLIENT_MESSAGES",
    "ERRORS",
    "IMAGE_MIMES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "SERVER_MESSAGES",
    "SESSION_STATES",
    "STAGES",
    "Accepted",
    "CloseCode",
    "Error",
    "ErrorSpec",
    "Final",
    "Image",
    "LimitsInfo",
    "Media",
    "MediaInit",
    "Message",
    "Open",
    "Pause",
    "Progress",
    "ProtocolLimits",
    "Queued",
    "Resume",
    "ResumeFrom",
    "SegmentDone",
    "SegmentStarted",
    "SegmentTimings",
    "Settings",
    "Snapshot",
    "SnapshotResult",
    "State",
    "Steer",
    "SteerAck",
    "Stop",
    "decode",
    "encode",
    "error_from",
    "error_spec",
    "is_fatal",
    "sniff_image",
]
