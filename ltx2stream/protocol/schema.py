"""Declarative field specs: each message field says its wire type and range once; one walker checks them all.

A message is a frozen dataclass whose fields are declared with :func:`wire`::

    width: int = wire(Int(32, "max_width", step=32))

Bounds may be numbers or the name of a :class:`ProtocolLimits` attribute. A field with a default is optional on
the wire; ``None`` values are omitted when encoding. A class may add cross-field rules in a ``check_rules(limits)``
method; it runs after every field passed. A ``check_raw(data)`` classmethod runs before any field check (used
for the protocol version, so a newer client gets ``protocol.unsupported_version`` rather than a field error).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ltx2stream import codes
from ltx2stream.errors import ProtocolError
from ltx2stream.protocol.limits import ProtocolLimits

Bound = int | float | str


def _bound(value: Bound, limits: ProtocolLimits) -> Any:
    return getattr(limits, value) if isinstance(value, str) else value


def _type_name(value: object) -> str:
    return type(value).__name__


class Spec(Protocol):
    """One field's wire type and range."""

    def check(self, value: object, path: str, limits: ProtocolLimits) -> Any:
        """Return the value as the dataclass stores it, or raise ProtocolError naming ``path``."""
        ...

    def describe(self) -> str:
        """Human summary for the docs (``int 32..max_width, step 32``)."""
        ...


def _bad_type(path: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(
        f"{path}: expected {expected}, got {_type_name(value)}", code=codes.PROTOCOL_BAD_TYPE
    )


def _out_of_range(path: str, detail: str, code: str = codes.PROTOCOL_OUT_OF_RANGE) -> ProtocolError:
    return ProtocolError(f"{path}: {detail}", code=code)


def _too_large(path: str, detail: str) -> ProtocolError:
    """Every field over its size limit is ``protocol.too_large``, like a message or msgpack item over its own."""
    return ProtocolError(f"{path}: {detail}", code=codes.PROTOCOL_TOO_LARGE)


@dataclass(frozen=True)
class Int:
    """An integer in ``[lo, hi]`` with ``value % step == offset % step`` (frames = 1 + 8k: step 8, offset 1)."""

    lo: Bound
    hi: Bound
    step: int = 1
    offset: int = 0

    def check(self, value: object, path: str, limits: ProtocolLimits) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_type(path, "int", value)
        lo, hi = _bound(self.lo, limits), _bound(self.hi, limits)
        if not lo <= value <= hi:
            raise _out_of_range(path, f"{value} is outside [{lo}, {hi}]")
        if (value - self.offset) % self.step:
            rule = f"a multiple of {self.step}" if not self.offset else f"{self.offset} + {self.step}k"
            raise _out_of_range(path, f"{value} is not {rule}")
        return value

    def describe(self) -> str:
        rule = (
            ""
            if self.step == 1
            else (f", step {self.step}" if not self.offset else f", {self.offset}+{self.step}k")
        )
        return f"int {self.lo}..{self.hi}{rule}"


@dataclass(frozen=True)
class Float:
    """A finite number in ``[lo, hi]``; msgpack ints are accepted (JS encoders send 24.0 as 24)."""

    lo: Bound
    hi: Bound

    def check(self, value: object, path: str, limits: ProtocolLimits) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_type(path, "float", value)
        number = float(value)
        lo, hi = _bound(self.lo, limits), _bound(self.hi, limits)
        if not math.isfinite(number) or not lo <= number <= hi:
            raise _out_of_range(path, f"{value} is outside [{lo}, {hi}]")
        return number

    def describe(self) -> str:
        return f"float {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Str:
    """A UTF-8 string of ``min_len..max_len`` characters, optionally from ``choices`` or matching ``pattern``.

    ``choices`` may name a limits attribute holding a tuple; an empty tuple there means "any". Longer than
    ``max_len``: ``protocol.too_large``; shorter than ``min_len``, not a choice or not matching ``pattern``:
    ``code`` (``protocol.out_of_range`` unless the field names its own, e.g. ``session.bad_id``). A field
    whose ``code`` is set reports every length violation with it (its pattern states the length).
    """

    max_len: Bound
    min_len: int = 0
    choices: tuple[str, ...] | str | None = None
    pattern: str | None = None
    code: str | None = None

    def check(self, value: object, path: str, limits: ProtocolLimits) -> str:
        if not isinstance(value, str):
            raise _bad_type(path, "str", value)
        max_len = _bound(self.max_len, limits)
        code = self.code or codes.PROTOCOL_OUT_OF_RANGE
        if len(value) > max_len and self.code is None:
            raise _too_large(path, f"length {len(value)} is over the limit of {max_len} characters")
        if not self.min_len <= len(value) <= max_len:
            raise _out_of_range(path, f"length {len(value)} is outside [{self.min_len}, {max_len}]", code)
        choices = getattr(limits, self.choices) if isinstance(self.choices, str) else (self.choices or ())
        if choices and value not in choices:
            raise _out_of_range(path, f"{value!r} is not one of {', '.join(map(repr, choices))}", code)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _out_of_range(path, f"{value!r} does not match {self.pattern}", code)
        return value

    def describe(self) -> str:
        if isinstance(self.choices, tuple):
            return "str, one of " + ", ".join(f'"{c}"' for c in self.choices)
        extra = f", one of {self.choices}" if self.choices else ""
        extra += f", pattern `{self.pattern}`" if self.pattern else ""
        return f"str {self.min_len}..{self.max_len} chars{extra}"


@dataclass(frozen=True)
class Bin:
    """Raw bytes (msgpack bin, never base64) of ``min_len..max_len`` bytes."""

    max_len: Bound
    min_len: int = 0

    def check(self, value: object, path: str, limits: ProtocolLimits) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _bad_type(path, "bin", value)
        data = bytes(value)
        max_len = _bound(self.max_len, limits)
        if len(data) > max_len:
            raise _too_large(path, f"{len(data)} bytes is over the limit of {max_len}")
        if not self.min_len <= len(data) <= max_len:
            raise ProtocolError(
                f"{path}: {len(data)} bytes is outside [{self.min_len}, {max_len}]",
                code=codes.PROTOCOL_OUT_OF_RANGE,
            )
        return data

    def describe(self) -> str:
        return f"bin {self.min_len}..{self.max_len} bytes"


@dataclass(frozen=True)
class Bool:
    """true / false."""

    def check(self, value: object, path: str, limits: ProtocolLimits) -> bool:
        if not isinstance(value, bool):
            raise _bad_type(path, "bool", value)
        return value

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Struct:
    """A nested map decoded into another schema dataclass."""

    cls: type

    def check(self, value: object, path: str, limits: ProtocolLimits) -> Any:
        if not isinstance(value, dict):
            raise _bad_type(path, "map", value)
        return from_wire(self.cls, value, path, limits)

    def describe(self) -> str:
        return f"map `{self.cls.__name__}`"


def wire(spec: Spec, default: Any = dataclasses.MISSING) -> Any:
    """Declare a dataclass field with its wire spec; a default makes it optional on the wire."""
    return dataclasses.field(default=default, metadata={"wire": spec})


@functools.cache
def field_specs(cls: type) -> dict[str, tuple[Spec, bool]]:
    """Map field name -> (spec, required) for a schema dataclass."""
    out: dict[str, tuple[Spec, bool]] = {}
    for f in dataclasses.fields(cls):
        if "wire" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} has no wire spec")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = (f.metadata["wire"], required)
    return out


def from_wire(
    cls: type, data: dict[str, Any], path: str, limits: ProtocolLimits, skip: frozenset[str] = frozenset()
) -> Any:
    """Build ``cls`` from a decoded map: unknown, missing, mistyped and out-of-range fields raise ProtocolError."""
    specs = field_specs(cls)
    check_raw = getattr(cls, "check_raw", None)
    if check_raw is not None:
        check_raw(data)
    unknown = sorted(repr(k)[:64] for k in data if k not in specs and k not in skip)
    if unknown:
        more = f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise ProtocolError(
            f"{path}: unknown field(s) {', '.join(unknown[:5])}{more}; known: {', '.join(specs)}",
            code=codes.PROTOCOL_UNKNOWN_FIELD,
        )
    values: dict[str, Any] = {}
    for name, (spec, required) in specs.items():
        if name not in data or data[name] is None:
            if required:
                raise ProtocolError(
                    f"{path}.{name}: required field is missing", code=codes.PROTOCOL_MISSING_FIELD
                )
            continue
        values[name] = spec.check(data[name], f"{path}.{name}", limits)
    obj = cls(**values)
    rules = getattr(obj, "check_rules", None)
    if rules is not None:
        rules(limits)
    return obj


def to_wire(obj: Any) -> dict[str, Any]:
    """Turn a schema dataclass into a msgpack-ready map (None omitted, nested dataclasses as maps)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = to_wire(value)
        elif isinstance(value, bytearray | memoryview):
            value = bytes(value)
        out[f.name] = value
    return out


class Message:
    """Base of every wire message: ``type`` is the tag written on the wire, ``sender`` who may send it."""

    type: ClassVar[str]
    sender: ClassVar[str]
