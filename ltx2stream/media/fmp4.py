"""A small ISO-BMFF (MP4) box parser: enough to check fragmented MP4 output in tests and to read the codec string.

``parse_boxes(data)`` returns the top-level boxes with their children parsed for the container types listed in
``CONTAINERS``. Readers for the few full boxes we care about (``mvhd``/``mdhd`` timescales, ``tkhd`` track ids,
``tfhd``/``tfdt``/``trun`` of a fragment, ``avcC``/``esds`` for the RFC 6381 codec string) work on a ``Box``.
Everything is read-only and bounds-checked: a truncated or malformed box raises ``InputError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ltx2stream import codes
from ltx2stream.errors import InputError

# Boxes whose payload is a plain sequence of child boxes. ``stsd`` and the sample entries have a header before
# their children; they are listed in ``_HEADER_BYTES`` with the size of that header.
CONTAINERS = frozenset(
    {"moov", "trak", "mdia", "minf", "stbl", "dinf", "edts", "mvex", "moof", "traf", "udta"}
)
_HEADER_BYTES = {"stsd": 8, "avc1": 78, "mp4a": 28}


@dataclass(frozen=True)
class Box:
    """One box: ``type`` (4 chars), absolute ``offset`` and total ``size`` in ``data``, ``payload`` after the header."""

    type: str
    offset: int
    size: int
    payload: bytes
    children: tuple[Box, ...] = field(default=(), repr=False)

    def find(self, path: str) -> Box | None:
        """The first descendant along a slash-separated path of types, e.g. ``"trak/mdia/mdhd"``."""
        return find_box(self.children, path)

    def find_all(self, box_type: str) -> list[Box]:
        """All descendants of this type, depth first."""
        return [b for b in walk(self.children) if b.type == box_type]


@dataclass(frozen=True)
class TrackRun:
    """What one ``traf`` says: its track, its base decode time and per-sample durations/sizes/flags."""

    track_id: int
    base_decode_time: int
    durations: tuple[int, ...]
    sizes: tuple[int, ...]
    flags: tuple[int, ...]

    @property
    def sample_count(self) -> int:
        return len(self.durations)

    @property
    def end_decode_time(self) -> int:
        return self.base_decode_time + sum(self.durations)


def parse_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    """Parse the boxes in ``data[start:end]`` (recursing into containers); raise InputError when malformed."""
    end = len(data) if end is None else end
    boxes: list[Box] = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise InputError(f"truncated box header at offset {pos}", code=codes.MEDIA_BOX_TRUNCATED)
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise InputError(
                    f"truncated large box header at offset {pos}", code=codes.MEDIA_BOX_TRUNCATED
                )
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise InputError(
                f"box {kind!r} at {pos} has size {size} beyond {end}", code=codes.MEDIA_BOX_TRUNCATED
            )
        box_type = kind.decode("latin-1")
        children: tuple[Box, ...] = ()
        if box_type in CONTAINERS or box_type in _HEADER_BYTES:
            child_start = pos + header + _HEADER_BYTES.get(box_type, 0)
            children = tuple(parse_boxes(data, child_start, pos + size))
        boxes.append(Box(box_type, pos, size, bytes(data[pos + header : pos + size]), children))
        pos += size
    return boxes


def walk(boxes: tuple[Box, ...] | list[Box]) -> Iterator[Box]:
    """Every box and its descendants, depth first."""
    for box in boxes:
        yield box
        yield from walk(box.children)


def find_box(boxes: tuple[Box, ...] | list[Box], path: str) -> Box | None:
    """The first box along a slash-separated type path among ``boxes`` (depth-first at each level)."""
    head, _, rest = path.partition("/")
    for box in boxes:
        if box.type == head:
            if not rest:
                return box
            found = find_box(box.children, rest)
            if found is not None:
                return found
    return None


def _full_box(box: Box) -> tuple[int, int, bytes]:
    """(version, flags, body) of a full box."""
    if len(box.payload) < 4:
        raise InputError(f"full box {box.type} too short", code=codes.MEDIA_BOX_TRUNCATED)
    version = box.payload[0]
    flags = int.from_bytes(box.payload[1:4], "big")
    return version, flags, box.payload[4:]


def timescale(box: Box) -> int:
    """Timescale of an ``mvhd`` or ``mdhd`` box."""
    version, _, body = _full_box(box)
    offset = 16 if version == 1 else 8  # creation + modification times (64 or 32 bit each)
    return int(struct.unpack_from(">I", body, offset)[0])


def track_id(tkhd: Box) -> int:
    """The track id in a ``tkhd`` box."""
    version, _, body = _full_box(tkhd)
    return int(struct.unpack_from(">I", body, 16 if version == 1 else 8)[0])


def handler_type(hdlr: Box) -> str:
    """'vide' or 'soun' (etc.) from an ``hdlr`` box."""
    _, _, body = _full_box(hdlr)
    return body[4:8].decode("latin-1")


def track_timescales(init: list[Box]) -> dict[int, tuple[str, int]]:
    """Map track id -> (handler type, media timescale) for every ``trak`` in an init segment's ``moov``."""
    moov = find_box(init, "moov")
    if moov is None:
        raise InputError("no moov box in init segment", code=codes.MEDIA_NO_MOOV)
    result: dict[int, tuple[str, int]] = {}
    for trak in (b for b in moov.children if b.type == "trak"):
        tkhd, mdhd, hdlr = trak.find("tkhd"), trak.find("mdia/mdhd"), trak.find("mdia/hdlr")
        if tkhd is None or mdhd is None or hdlr is None:
            raise InputError("trak without tkhd/mdhd/hdlr", code=codes.MEDIA_BAD_TRAK)
        result[track_id(tkhd)] = (handler_type(hdlr), timescale(mdhd))
    return result


def base_decode_time(tfdt: Box) -> int:
    """baseMediaDecodeTime of a ``tfdt`` box (32-bit for version 0, 64-bit for version 1)."""
    version, _, body = _full_box(tfdt)
    return int(struct.unpack_from(">Q" if version == 1 else ">I", body, 0)[0])


def _tfhd_defaults(tfhd: Box) -> tuple[int, int, int, int]:
    """(track id, default duration, default size, default flags) from a ``tfhd`` (0 where absent)."""
    _, flags, body = _full_box(tfhd)
    (tid,) = struct.unpack_from(">I", body, 0)
    pos = (
        4 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
    )  # base data offset, sample description index
    values = []
    for bit in (0x8, 0x10, 0x20):  # default duration, size, flags
        if flags & bit:
            values.append(struct.unpack_from(">I", body, pos)[0])
            pos += 4
        else:
            values.append(0)
    return tid, values[0], values[1], values[2]


def read_traf(traf: Box) -> TrackRun:
    """Sample timing of one ``traf``: track id, tfdt and the per-sample durations/sizes/flags of its truns."""
    tfhd, tfdt = traf.find("tfhd"), traf.find("tfdt")
    if tfhd is None or tfdt is None:
        raise InputError("traf without tfhd or tfdt", code=codes.MEDIA_BAD_TRAF)
    tid, def_dur, def_size, def_flags = _tfhd_defaults(tfhd)
    durations: list[int] = []
    sizes: list[int] = []
    sample_flags: list[int] = []
    for trun in (b for b in traf.children if b.type == "trun"):
        _, flags, body = _full_box(trun)
        (count,) = struct.unpack_from(">I", body, 0)
        pos = 4 + (4 if flags & 0x1 else 0)  # data offset
        first_flags = None
        if flags & 0x4:
            (first_flags,) = struct.unpack_from(">I", body, pos)
            pos += 4
        for i in range(count):
            fields = {}
            for bit in (0x100, 0x200, 0x400, 0x800):  # duration, size, flags, composition offset
                if flags & bit:
                    fields[bit] = struct.unpack_from(">I", body, pos)[0]
                    pos += 4
            durations.append(fields.get(0x100, def_dur))
            sizes.append(fields.get(0x200, def_size))
            default = first_flags if (i == 0 and first_flags is not None) else def_flags
            sample_flags.append(fields.get(0x400, default))
    return TrackRun(tid, base_decode_time(tfdt), tuple(durations), tuple(sizes), tuple(sample_flags))


def fragment_runs(data: bytes) -> list[TrackRun]:
    """Every ``traf`` of every ``moof`` in ``data`` (media bytes, or init + media), in file order."""
    return [
        read_traf(traf) for moof in parse_boxes(data) if moof.type == "moof" for traf in moof.find_all("traf")
    ]


def is_sync(sample_flags: int) -> bool:
    """True when ``sample_is_non_sync_sample`` is clear in ISO-BMFF sample flags."""
    return not sample_flags & 0x00010000


def split_init(data: bytes) -> tuple[bytes, bytes]:
    """Split a fragmented MP4 at its first ``moof``: (init segment, media bytes)."""
    for box in parse_boxes(data):
        if box.type == "moof":
            return bytes(data[: box.offset]), bytes(data[box.offset :])
    return bytes(data), b""


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, body start, body size) of an MPEG-4 descriptor (ISO 14496-1 expandable size)."""
    tag = data[pos]
    pos += 1
    size = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, size


def _mp4a_codec(esds: Box) -> str:
    """'mp4a.40.<audio object type>' from an ``esds`` box (ES_Descriptor -> DecoderConfig -> AudioSpecificConfig)."""
    _, _, body = _full_box(esds)
    try:
        tag, pos, _ = _descriptor(body, 0)
        if tag != 0x03:
            raise InputError(f"esds starts with descriptor tag {tag}, not 3", code=codes.MEDIA_BAD_ESDS)
        es_flags = body[pos + 2]
        pos += 3 + (2 if es_flags & 0x80 else 0)  # ES_ID, flags, dependsOn_ES_ID
        pos += 1 + body[pos] if es_flags & 0x40 else 0  # URL
        pos += 2 if es_flags & 0x20 else 0  # OCR_ES_Id
        tag, pos, _ = _descriptor(body, pos)
        if tag != 0x04:
            raise InputError(
                f"esds has descriptor tag {tag} where DecoderConfig (4) belongs", code=codes.MEDIA_BAD_ESDS
            )
        object_type = body[pos]
        tag, pos, size = _descriptor(body, pos + 13)
        if tag != 0x05 or size < 1:
            return f"mp4a.{object_type:x}"
        audio_object_type = body[pos] >> 3
        if audio_object_type == 31:  # escape: 6 more bits follow
            audio_object_type = 32 + (((body[pos] & 0x7) << 3) | (body[pos + 1] >> 5))
    except IndexError as e:
        raise InputError("esds box is truncated", code=codes.MEDIA_BAD_ESDS) from e
    return f"mp4a.{object_type:x}.{audio_object_type}"


def codec_string(init: bytes) -> str:
    """RFC 6381 codecs of an init segment, in track order, e.g. ``'avc1.64001f, mp4a.40.2'``.

    avc1: profile_idc, constraint flags and level_idc are bytes 1..3 of the avcC record.
    """
    moov = find_box(parse_boxes(init), "moov")
    if moov is None:
        raise InputError("no moov box in init segment", code=codes.MEDIA_NO_MOOV)
    codecs = []
    for entry in moov.find_all("stsd"):
        for sample_entry in entry.children:
            if sample_entry.type in ("avc1", "avc3"):
                avcc = sample_entry.find("avcC")
                if avcc is None or len(avcc.payload) < 4:
                    raise InputError("avc1 sample entry without a valid avcC", code=codes.MEDIA_BAD_AVCC)
                codecs.append(f"{sample_entry.type}.{avcc.payload[1:4].hex()}")
            elif sample_entry.type == "mp4a":
                esds = sample_entry.find("esds")
                if esds is None:
                    raise InputError("mp4a sample entry without esds", code=codes.MEDIA_BAD_ESDS)
                codecs.append(_mp4a_codec(esds))
            else:
                codecs.append(sample_entry.type)
    return ", ".join(codecs)
