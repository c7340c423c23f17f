"""The two entry points of the wire protocol: :func:`encode` and :func:`decode` (msgpack, binary as bin)."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]

from ltx2stream import codes
from ltx2stream.codes import error_spec, is_fatal
from ltx2stream.errors import LTX2StreamError, ProtocolError
from ltx2stream.protocol.client_messages import CLIENT_MESSAGES
from ltx2stream.protocol.limits import MAX_INDEX, ProtocolLimits
from ltx2stream.protocol.schema import Message, from_wire, to_wire
from ltx2stream.protocol.server_messages import SERVER_MESSAGES, Error

MESSAGE_TYPES: dict[str, type[Message]] = {cls.type: cls for cls in CLIENT_MESSAGES + SERVER_MESSAGES}
_BY_SENDER: dict[str, dict[str, type[Message]]] = {
    "client": {cls.type: cls for cls in CLIENT_MESSAGES},
    "server": {cls.type: cls for cls in SERVER_MESSAGES},
}
_MAX_ERROR_MESSAGE = 2048


def encode(msg: Message) -> bytes:
    """Serialise a message to one msgpack map ``{"type": ..., <fields>}``; bytes fields become msgpack bin."""
    if not isinstance(msg, Message) or type(msg).type not in MESSAGE_TYPES:
        raise TypeError(f"encode() takes a protocol message, got {type(msg).__name__}")
    packed: bytes = msgpack.packb({"type": msg.type, **to_wire(msg)}, use_bin_type=True)
    return packed


def decode(data: bytes | bytearray | memoryview | str, *, limits: ProtocolLimits) -> Message:
    """Parse and validate one message sent by ``limits.sender`` (a ``str``, i.e. a text frame, is refused).

    Raises:
        ProtocolError: ``protocol.malformed`` (not a msgpack map with a string ``type``, or a text frame),
            ``protocol.too_large``, ``protocol.unknown_type``, ``protocol.unknown_field``,
            ``protocol.missing_field``, ``protocol.bad_type``, ``protocol.out_of_range``, ``protocol.bad_image``,
            ``protocol.unsupported_version``. The message names the field path and the values.
    """
    obj = _unpack(data, limits)
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        found = type(obj).__name__ if not isinstance(obj, dict) else f"type={obj.get('type')!r}"
        raise ProtocolError(
            f"expected a map with a string 'type'; got {found}", code=codes.PROTOCOL_MALFORMED
        )
    kind = obj["type"]
    cls = _BY_SENDER[limits.sender].get(kind)
    if cls is None:
        known = ", ".join(sorted(_BY_SENDER[limits.sender]))
        raise ProtocolError(
            f"type {kind[:64]!r} is not a {limits.sender} message; known: {known}",
            code=codes.PROTOCOL_UNKNOWN_TYPE,
        )
    try:
        msg: Message = from_wire(cls, obj, kind, limits, skip=frozenset({"type"}))
    except ProtocolError as e:
        # the error answers this command (docs/protocol.md: every error echoes the request_id)
        e.request_id = _request_id(obj.get("request_id"))
        raise
    return msg


def _request_id(value: object) -> int | None:
    """A refused message's ``request_id`` if it is one the schema would accept, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INDEX:
        return value
    return None


def error_from(exc: BaseException, *, accepted: bool = True, request_id: int | None = None) -> Error:
    """The ``error`` message for an exception: its code and message, flags from the error table.

    Exceptions outside the ltx2stream hierarchy become ``server.internal`` without their text (it is logged
    server-side, not sent). Without ``request_id``, a ProtocolError's own (the refused message's) is echoed.
    """
    if request_id is None and isinstance(exc, ProtocolError):
        request_id = exc.request_id
    if isinstance(exc, LTX2StreamError):
        code, text = exc.code, exc.message
    else:
        code, text = codes.SERVER_INTERNAL, "internal server error"
    spec = error_spec(code)
    return Error(
        code=code[:64],
        message=text[:_MAX_ERROR_MESSAGE],
        retryable=spec.retryable,
        fatal=is_fatal(code, accepted=accepted),
        request_id=request_id,
    )


def _unpack(data: Any, limits: ProtocolLimits) -> Any:
    if isinstance(data, str):
        raise ProtocolError(
            "text frames are not accepted; send one binary msgpack map", code=codes.PROTOCOL_MALFORMED
        )
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(f"expected bytes, got {type(data).__name__}", code=codes.PROTOCOL_MALFORMED)
    if len(data) > limits.max_message_bytes:
        raise ProtocolError(
            f"message of {len(data)} bytes exceeds the limit of {limits.max_message_bytes}",
            code=codes.PROTOCOL_TOO_LARGE,
        )
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=limits.max_bin_bytes,
            max_str_len=limits.max_str_bytes,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        text = str(e)
        if "max_ext_len" in text:
            raise ProtocolError("msgpack ext types are not accepted", code=codes.PROTOCOL_MALFORMED) from e
        if "exceeds max_" in text:
            raise ProtocolError(f"msgpack limit: {text}", code=codes.PROTOCOL_TOO_LARGE) from e
        raise ProtocolError(
            f"not valid msgpack: {type(e).__name__} {text}".strip(), code=codes.PROTOCOL_MALFORMED
        ) from e
