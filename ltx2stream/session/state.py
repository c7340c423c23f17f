"""The continuation-state container: tensors + JSON metadata in one safetensors file.

Contract (schema version 1):
* The bytes are a plain safetensors file. Tensors keep their dtype (bf16 round-trips bit-exactly).
* ``__metadata__`` (str -> str) holds ``format`` = ``"ltx2stream.continuation"`` (the marker), ``schema_version``
  (decimal string), ``meta`` (a JSON object) and ``checksum`` (``sha256:<hex>`` over every tensor's name, dtype,
  shape and raw bytes plus the canonical meta JSON).
* ``meta`` must contain at least :data:`REQUIRED_META` with the listed JSON types; the session controller may add
  more keys. Which tensors go in is the controller's choice; this module only guarantees the container.
* Readers refuse: unreadable bytes or a checksum mismatch (``state.corrupt``), safetensors without the marker
  (``state.foreign``), a newer schema (``state.future_version``); :meth:`SerializedState.check_compatible` refuses
  a state made for another preset/size/fps (``state.incompatible``).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ltx2stream import codes
from ltx2stream.errors import StateError

FORMAT_MARKER = "ltx2stream.continuation"
SCHEMA_VERSION = 1
MAX_HEADER_BYTES = 16 << 20
# meta key -> accepted JSON types (bool is excluded from numbers explicitly).
REQUIRED_META: dict[str, tuple[type, ...]] = {
    "preset": (str,),
    "width": (int,),
    "height": (int,),
    "fps": (int, float),
    "segment_index": (int,),  # last segment whose latents are in the state
    "timeline_position": (int, float),  # seconds of media delivered up to the end of that segment
    "prompt_history": (list,),  # e.g. [{"segment": 0, "prompt": "...", "seed": 7}, ...]
    "seeds": (list,),  # seed of every generated segment
}


@dataclass(frozen=True)
class SerializedState:
    """A versioned continuation state: named tensors and JSON-serialisable metadata."""

    tensors: Mapping[str, torch.Tensor]
    meta: Mapping[str, Any]
    schema_version: int = SCHEMA_VERSION
    checksum: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_meta(self.meta)
        for name, t in self.tensors.items():
            if not isinstance(t, torch.Tensor):
                raise StateError(
                    f"state tensor {name!r} is a {type(t).__name__}, not a tensor", code=codes.STATE_CORRUPT
                )

    @property
    def segment_index(self) -> int:
        return int(self.meta["segment_index"])

    def to_bytes(self) -> bytes:
        """Serialise to safetensors bytes (tensors are copied to CPU, contiguous, unshared)."""
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.tensors.items()}
        header = {
            "format": FORMAT_MARKER,
            "schema_version": str(self.schema_version),
            "meta": _canonical_json(self.meta),
            "checksum": content_checksum(tensors, self.meta),
        }
        return st_save(tensors, metadata=header)

    @classmethod
    def from_bytes(cls, data: bytes) -> SerializedState:
        """Parse and verify bytes written by :meth:`to_bytes`.

        Raises:
            StateError: ``state.corrupt``, ``state.foreign`` or ``state.future_version`` (message names the values).
        """
        header = read_header(data)
        version = _schema_version(header)
        try:
            tensors = st_load(bytes(data))
            meta = json.loads(header["meta"])
        except Exception as e:  # safetensors raises its own error types for any bad layout
            raise StateError(f"state bytes are unreadable: {e}", code=codes.STATE_CORRUPT) from e
        if not isinstance(meta, dict):
            raise StateError(
                f"state meta is a JSON {type(meta).__name__}, not an object", code=codes.STATE_CORRUPT
            )
        expected = content_checksum(tensors, meta)
        if header.get("checksum") != expected:
            raise StateError(
                f"state checksum mismatch: header {header.get('checksum')!r}, content {expected}",
                code=codes.STATE_CORRUPT,
            )
        return cls(tensors=tensors, meta=meta, schema_version=version, checksum=expected)

    def save(self, path: str | Path) -> None:
        """Write to ``path`` (not atomic: the SessionStore does atomic writes)."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> SerializedState:
        """Read and verify a file written by :meth:`save` (see :meth:`from_bytes` for errors)."""
        return cls.from_bytes(Path(path).read_bytes())

    def check_compatible(self, expected: Mapping[str, Any]) -> None:
        """Refuse a state whose meta differs from ``expected`` (e.g. the session's preset, width, height, fps).

        Raises:
            StateError: ``state.incompatible`` listing every differing key as ``key: state=..., session=...``.
        """
        diffs = [
            f"{k}: state={self.meta.get(k)!r}, session={v!r}"
            for k, v in expected.items()
            if not _same(self.meta.get(k), v)
        ]
        if diffs:
            raise StateError(
                "continuation state does not fit this session: " + "; ".join(diffs),
                code=codes.STATE_INCOMPATIBLE,
            )


def read_header(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes, checked for our marker.

    Raises:
        StateError: ``state.corrupt`` (not safetensors) or ``state.foreign`` (safetensors without our marker).
    """
    if len(data) < 8:
        raise StateError(
            f"state is {len(data)} bytes; a safetensors file has at least 8", code=codes.STATE_CORRUPT
        )
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > min(len(data) - 8, MAX_HEADER_BYTES):
        raise StateError(
            f"state header length {n} exceeds the {len(data) - 8} bytes present", code=codes.STATE_CORRUPT
        )
    try:
        header = json.loads(bytes(data[8 : 8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StateError(f"state header is not JSON: {e}", code=codes.STATE_CORRUPT) from e
    if not isinstance(header, dict):
        raise StateError("state header is not a JSON object", code=codes.STATE_CORRUPT)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_MARKER:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise StateError(
            f"safetensors file is not an ltx2stream continuation state (format={found!r}, "
            f"expected {FORMAT_MARKER!r})",
            code=codes.STATE_FOREIGN,
        )
    return meta


def content_checksum(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` over sorted tensor names, dtypes, shapes, raw bytes, and the canonical meta JSON."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(_canonical_json(meta).encode())
    return "sha256:" + h.hexdigest()


def _schema_version(header: Mapping[str, str]) -> int:
    raw = header.get("schema_version", "")
    if not raw.isdigit() or int(raw) < 1:
        raise StateError(f"state schema_version {raw!r} is not a positive integer", code=codes.STATE_CORRUPT)
    if int(raw) > SCHEMA_VERSION:
        raise StateError(
            f"state schema_version {raw} is newer than this build's {SCHEMA_VERSION}; upgrade "
            f"ltx2stream to read it",
            code=codes.STATE_FUTURE_VERSION,
        )
    return int(raw)


def _check_meta(meta: Mapping[str, Any]) -> None:
    for key, types in REQUIRED_META.items():
        value = meta.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise StateError(f"state meta {key!r} must be {names}; got {value!r}", code=codes.STATE_CORRUPT)


def _canonical_json(meta: Mapping[str, Any]) -> str:
    try:
        return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StateError(f"state meta is not plain JSON: {e}", code=codes.STATE_CORRUPT) from e


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool | str):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
