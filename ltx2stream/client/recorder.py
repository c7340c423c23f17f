"""Writes the received fMP4 stream to a file as it arrives: the init segment once, then every fragment in order.

The result is a valid fragmented MP4 at every moment (``init + fragments`` is what a player needs), so it can be
played while it grows. A resumed connection's stream starts again at t=0 with the same init segment; the recorder
drops the partly received segment the server will generate again, and rewrites each new fragment's ``tfdt``
(base media decode time) so the file continues on one timeline after the last complete segment.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import InputError
from ltx2stream.media.fmp4 import parse_boxes, track_timescales

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Boundary:
    """Where a complete segment ends: bytes written so far and its end on the file's timeline (seconds)."""

    position: int
    end_s: float


def shift_decode_times(data: bytes, shift_ticks: dict[int, int]) -> bytes:
    """Return ``data`` (moof+mdat pairs) with every ``tfdt`` of track ``t`` moved by ``shift_ticks[t]``.

    Raises:
        InputError: a malformed fragment, or a shift that would make a decode time negative.
    """
    out = bytearray(data)
    for moof in parse_boxes(data):
        if moof.type != "moof":
            continue
        for traf in moof.find_all("traf"):
            tfhd, tfdt = traf.find("tfhd"), traf.find("tfdt")
            if tfhd is None or tfdt is None:
                raise InputError("traf without tfhd or tfdt", code=codes.MEDIA_BAD_TRAF)
            (track,) = struct.unpack_from(">I", tfhd.payload, 4)  # after version (1) + flags (3)
            shift = shift_ticks.get(track, 0)
            if shift == 0:
                continue
            body = tfdt.offset + tfdt.size - len(tfdt.payload) + 4  # payload start + version/flags
            fmt = ">Q" if tfdt.payload[0] == 1 else ">I"
            (value,) = struct.unpack_from(fmt, out, body)
            if value + shift < 0 or (fmt == ">I" and value + shift >= 1 << 32):
                raise InputError(
                    f"tfdt {value} + {shift} is out of range for track {track}", code=codes.MEDIA_BAD_SHIFT
                )
            struct.pack_into(fmt, out, body, value + shift)
    return bytes(out)


class Fmp4Recorder:
    """Appends ``media_init`` / ``media`` payloads to one file; ``begin_connection`` after each ``accepted``.

    Args:
        target: a path (created or truncated) or a seekable binary file opened for writing.
        segment_limit: segments with ``index >= segment_limit`` are not written (a client that stops after N
            segments may still receive the one in flight).
    """

    def __init__(self, target: str | Path | BinaryIO, *, segment_limit: int | None = None) -> None:
        if isinstance(target, str | Path):
            self._file: BinaryIO = open(target, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._file, self._owned = target, False
        self._origin = self._file.tell()  # positions below are relative to where the stream starts
        self.segment_limit = segment_limit
        self.init: bytes | None = None
        self._timescales: dict[int, int] = {}
        self._boundaries: dict[int, Boundary] = {}
        self._rebase_s: float | None = 0.0  # where the next connection's first fragment goes (None: applied)
        self._shift_s = 0.0
        self.fragments = 0
        self.position = 0

    def begin_connection(self, resumed_from: int | None) -> None:
        """A connection was accepted; ``resumed_from`` is ``accepted.resumed_from_segment``.

        Drops bytes after the last complete segment the new stream continues from, and places the new stream's
        first fragment at that segment's end.
        """
        start = Boundary(len(self.init) if self.init is not None else 0, 0.0)  # nothing complete yet
        if resumed_from is not None and resumed_from in self._boundaries:
            keep = self._boundaries[resumed_from]
        else:
            keep = max(self._boundaries.values(), key=lambda b: b.position, default=start)
        if keep.position < self.position:
            logger.info(
                "recorder: dropping %d byte(s) of a segment the server generates again",
                self.position - keep.position,
            )
            self._file.seek(self._origin + keep.position)
            self._file.truncate()
            self.position = keep.position
        self._boundaries = {i: b for i, b in self._boundaries.items() if b.position <= keep.position}
        self._rebase_s = keep.end_s

    def write_init(self, msg: P.MediaInit) -> None:
        """Write the init segment the first time; a later one must be identical (same session settings).

        Raises:
            InputError: ``client.init_mismatch`` when a later init segment differs (it cannot share the file).
        """
        if self.init is not None:
            if msg.data != self.init:
                raise InputError(
                    "the server sent a different init segment; it cannot continue the same file",
                    code=codes.CLIENT_INIT_MISMATCH,
                )
            return
        self._timescales = {
            track: scale for track, (_, scale) in track_timescales(parse_boxes(msg.data)).items()
        }
        self.init = msg.data
        self._write(msg.data)

    def write_media(self, msg: P.Media) -> bool:
        """Write one fragment (rebased onto the file's timeline); False when skipped by ``segment_limit``."""
        if self.init is None:
            raise InputError("media before media_init", code=codes.CLIENT_MEDIA_BEFORE_INIT)
        if self.segment_limit is not None and msg.segment >= self.segment_limit:
            return False
        if self._rebase_s is not None:
            self._shift_s, self._rebase_s = self._rebase_s - msg.t0, None
        data = msg.data
        if self._shift_s:
            data = shift_decode_times(
                data, {t: round(self._shift_s * s) for t, s in self._timescales.items()}
            )
        self._write(data)
        self.fragments += 1
        if msg.last:
            self._boundaries[msg.segment] = Boundary(self.position, msg.t0 + msg.duration + self._shift_s)
        return True

    @property
    def complete_segments(self) -> list[int]:
        """Indices of the segments written completely, in order."""
        return sorted(self._boundaries)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self.position += len(data)

    def close(self) -> None:
        """Flush and, when the recorder opened the file, close it."""
        self._file.flush()
        if self._owned:
            self._file.close()
