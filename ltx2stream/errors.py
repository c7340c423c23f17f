"""The one error hierarchy of ltx2stream.

    LTX2StreamError (code, message)
    ├── ConfigError        – a checkpoint config or an option has an unsupported value
    ├── CheckpointError    – a file is missing, truncated, not safetensors, or its keys/shapes do not match
    ├── InputError         – a request is invalid (shapes, sizes, strengths, paths) – raised before any compute
    ├── ConditioningError  – a conditioning item cannot be applied to a latent state
    ├── StateError         – a continuation state is corrupt, foreign, or from another schema
    ├── ProtocolError      – a wire message is malformed or not allowed
    └── SessionError       – a session operation is not allowed in the current state

Every error carries a stable machine-readable ``code`` (dotted, e.g. ``checkpoint.key_mismatch``) and a
human message that names the offending values. Codes are named constants of the one registry
``ltx2stream.codes`` (``raise CheckpointError(msg, code=codes.CHECKPOINT_KEY_MISMATCH)``), which also says how
the server reports each one; docs/protocol.md lists them all.
"""

from __future__ import annotations

from ltx2stream import codes


class LTX2StreamError(Exception):
    """Base class: ``code`` is stable and machine readable, ``message`` names the values involved."""

    default_code = codes.ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickles with its code (an encoder child process sends its errors to the server this way)."""
        return (_rebuild, (type(self), self.message, self.code), self.__dict__)


def _rebuild(cls: type[LTX2StreamError], message: str, code: str) -> LTX2StreamError:
    return cls(message, code=code)


class ConfigError(LTX2StreamError):
    default_code = codes.CONFIG_UNSUPPORTED


class CheckpointError(LTX2StreamError):
    default_code = codes.CHECKPOINT_INVALID


class InputError(LTX2StreamError):
    default_code = codes.INPUT_INVALID


class ConditioningError(LTX2StreamError):
    default_code = codes.CONDITIONING_INVALID


class StateError(LTX2StreamError):
    default_code = codes.STATE_INVALID


class ProtocolError(LTX2StreamError):
    default_code = codes.PROTOCOL_INVALID
    request_id: int | None = None  # the refused message's own ``request_id``, when it had a valid one


class SessionError(LTX2StreamError):
    default_code = codes.SESSION_INVALID


def check_config_value(section: str, key: str, value: object, supported: tuple[object, ...]) -> None:
    """Raise ConfigError naming key, value and what is supported unless ``value in supported``."""
    if value not in supported:
        raise ConfigError(
            f"{section}: unsupported value {key}={value!r}; supported: {', '.join(repr(s) for s in supported)}",
            code=codes.CONFIG_UNSUPPORTED_VALUE,
        )
