"""Error codes and WebSocket close codes: one table says, per code, how the server reacts.

Rules (also in docs/protocol.md):
* ``fatal`` errors are followed by ``final`` and a close with ``close_code``; non-fatal ones only send ``error``.
* Before ``accepted`` every error is fatal (the session never started): :func:`is_fatal` applies that rule.
* ``retryable`` tells the client whether the same request may succeed later unchanged.
* Codes not in the table fall back by family (``protocol.*``/``input.*`` → bad request, ``state.*`` → bad
  state blob, anything else → ``server.internal``), so a new code never crashes the error path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ltx2stream.session.state import (
    STATE_CORRUPT,
    STATE_FOREIGN,
    STATE_FUTURE_VERSION,
    STATE_INCOMPATIBLE,
)
from ltx2stream.session.state_machine import COMMAND_NOT_ALLOWED, INVALID_TRANSITION, RATE_LIMITED
from ltx2stream.session.store import BAD_SESSION_ID, SEGMENT_NOT_FOUND, SESSION_NOT_FOUND, WRITE_FAILED


class CloseCode(IntEnum):
    """WebSocket close codes: the standard ones we use plus 4000 + an HTTP-like status in the app range."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    TIMEOUT = 4408
    CONFLICT = 4409
    BAD_STATE = 4422
    UNSUPPORTED_VERSION = 4426
    RATE_LIMITED = 4429
    UNAVAILABLE = 4503


# Wire protocol (raised by decode / the schema walker).
MALFORMED = "protocol.malformed"
TOO_LARGE = "protocol.too_large"
UNKNOWN_TYPE = "protocol.unknown_type"
UNKNOWN_FIELD = "protocol.unknown_field"
MISSING_FIELD = "protocol.missing_field"
BAD_TYPE = "protocol.bad_type"
OUT_OF_RANGE = "protocol.out_of_range"
BAD_IMAGE = "protocol.bad_image"
UNSUPPORTED_VERSION = "protocol.unsupported_version"
UNEXPECTED = "protocol.unexpected"
# Server side (raised by the server / controller built on top of this module).
AUTH_FAILED = "auth.failed"
ORIGIN_FORBIDDEN = "origin.forbidden"
QUEUE_FULL = "server.queue_full"
SHUTDOWN = "server.shutdown"
INTERNAL = "server.internal"
CLIENT_TOO_SLOW = "client.too_slow"
TIMEOUT = "session.timeout"
SESSION_BUSY = "session.busy"


@dataclass(frozen=True)
class ErrorSpec:
    """How one error code is reported: the close code used when it ends the connection, and the two flags."""

    code: str
    close_code: CloseCode
    retryable: bool
    fatal: bool
    summary: str


def _spec(code: str, close: CloseCode, retryable: bool, fatal: bool, summary: str) -> ErrorSpec:
    return ErrorSpec(code, close, retryable, fatal, summary)


C = CloseCode
ERRORS: dict[str, ErrorSpec] = {
    s.code: s
    for s in (
        _spec(MALFORMED, C.BAD_REQUEST, False, True, "not a msgpack map with a string `type`"),
        _spec(
            TOO_LARGE, C.MESSAGE_TOO_BIG, False, True, "message, string or binary field over its size limit"
        ),
        _spec(UNKNOWN_TYPE, C.BAD_REQUEST, False, False, "`type` is not a message this side may send"),
        _spec(UNKNOWN_FIELD, C.BAD_REQUEST, False, False, "a field the message does not define"),
        _spec(MISSING_FIELD, C.BAD_REQUEST, False, False, "a required field is absent"),
        _spec(BAD_TYPE, C.BAD_REQUEST, False, False, "a field has the wrong msgpack type"),
        _spec(OUT_OF_RANGE, C.BAD_REQUEST, False, False, "a value outside its range, rule or choices"),
        _spec(
            BAD_IMAGE,
            C.BAD_REQUEST,
            False,
            False,
            "image bytes are not PNG/JPEG/WebP or disagree with `mime`",
        ),
        _spec(
            UNSUPPORTED_VERSION,
            C.UNSUPPORTED_VERSION,
            False,
            True,
            "`open.protocol_version` is not spoken here",
        ),
        _spec(
            UNEXPECTED,
            C.BAD_REQUEST,
            False,
            False,
            "a valid message that is not allowed now (e.g. a 2nd `open`)",
        ),
        _spec(AUTH_FAILED, C.UNAUTHORIZED, False, True, "missing or wrong credentials"),
        _spec(ORIGIN_FORBIDDEN, C.FORBIDDEN, False, True, "the page's Origin is not allowed"),
        _spec(QUEUE_FULL, C.UNAVAILABLE, True, True, "the wait queue is full"),
        _spec(SHUTDOWN, C.GOING_AWAY, True, True, "the server is shutting down"),
        _spec(
            INTERNAL, C.INTERNAL_ERROR, True, True, "an unexpected server failure (logged with a traceback)"
        ),
        _spec(CLIENT_TOO_SLOW, C.POLICY_VIOLATION, True, True, "the client did not read media fast enough"),
        _spec(TIMEOUT, C.TIMEOUT, True, True, "no `open` (or no activity) within the server's timeout"),
        _spec(RATE_LIMITED, C.RATE_LIMITED, True, False, "steering faster than the advertised rate"),
        _spec(
            INVALID_TRANSITION,
            C.CONFLICT,
            False,
            False,
            "pause/resume/stop not possible in the current state",
        ),
        _spec(
            COMMAND_NOT_ALLOWED, C.CONFLICT, False, False, "steer/snapshot not possible in the current state"
        ),
        _spec(BAD_SESSION_ID, C.BAD_REQUEST, False, True, "a session id outside [A-Za-z0-9_-]{8,64}"),
        _spec(
            SESSION_NOT_FOUND,
            C.NOT_FOUND,
            False,
            True,
            "no stored session with that id (expired or never saved)",
        ),
        _spec(
            SESSION_BUSY, C.CONFLICT, True, True, "session still live or ending; its state is not stored yet"
        ),
        _spec(SEGMENT_NOT_FOUND, C.NOT_FOUND, False, True, "the session has no stored state at that segment"),
        _spec(
            WRITE_FAILED,
            C.INTERNAL_ERROR,
            True,
            False,
            "storing a snapshot failed; the previous one is intact",
        ),
        _spec(
            STATE_CORRUPT,
            C.BAD_STATE,
            False,
            True,
            "state blob truncated, unreadable or failing its checksum",
        ),
        _spec(
            STATE_FOREIGN,
            C.BAD_STATE,
            False,
            True,
            "safetensors that is not an ltx2stream continuation state",
        ),
        _spec(STATE_FUTURE_VERSION, C.BAD_STATE, False, True, "state written by a newer schema version"),
        _spec(STATE_INCOMPATIBLE, C.CONFLICT, False, True, "state preset/size/fps differ from the session's"),
    )
}

_FAMILY_FALLBACK = {
    "protocol": OUT_OF_RANGE,
    "input": OUT_OF_RANGE,
    "config": OUT_OF_RANGE,
    "state": STATE_CORRUPT,
}


def error_spec(code: str) -> ErrorSpec:
    """The table entry for ``code``; unknown codes fall back by family (see module docstring)."""
    if code in ERRORS:
        return ERRORS[code]
    fallback = _FAMILY_FALLBACK.get(code.split(".", 1)[0], INTERNAL)
    base = ERRORS[fallback]
    return ErrorSpec(code, base.close_code, base.retryable, base.fatal, base.summary)


def is_fatal(code: str, *, accepted: bool) -> bool:
    """Whether ``code`` ends the connection: always before ``accepted``, afterwards as the table says."""
    return not accepted or error_spec(code).fatal
