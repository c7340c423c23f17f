"""Box parser, fragment writer and codec-string reader on hand-built bytes (no encoder involved)."""

from __future__ import annotations

import struct

import pytest

from ltx2stream.errors import InputError
from ltx2stream.media.fmp4 import (
    base_decode_time,
    codec_string,
    find_box,
    fragment_runs,
    is_sync,
    parse_boxes,
    split_init,
    timescale,
    walk,
)
from ltx2stream.media.fragments import Run, Sample, build_fragment, length_prefixed, split_annexb


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *parts)


def test_nested_containers_offsets_and_sizes() -> None:
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, 90000, 0), b"\0\0\0\0")
    data = box(b"ftyp", b"isom") + box(b"moov", box(b"trak", box(b"mdia", mdhd)), box(b"free"))
    boxes = parse_boxes(data)
    assert [b.type for b in boxes] == ["ftyp", "moov"]
    assert [b.type for b in walk(boxes)] == ["ftyp", "moov", "trak", "mdia", "mdhd", "free"]
    found = find_box(boxes, "moov/trak/mdia/mdhd")
    assert found is not None and found.offset == 12 + 8 + 8 + 8 and found.size == len(mdhd)
    assert timescale(found) == 90000
    assert find_box(boxes, "moov/trak/minf") is None


def test_large_size_and_to_end_boxes() -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 3) + b"abc"
    to_end = struct.pack(">I4s", 0, b"mdat") + b"xyz!"
    boxes = parse_boxes(large + to_end)
    assert [(b.type, b.size, b.payload) for b in boxes] == [("mdat", 19, b"abc"), ("mdat", 12, b"xyz!")]


@pytest.mark.parametrize(
    "data", [b"\0\0\0", struct.pack(">I4s", 40, b"moov") + b"short", struct.pack(">I4s", 4, b"free")]
)
def test_malformed_boxes_raise(data: bytes) -> None:
    with pytest.raises(InputError) as err:
        parse_boxes(data)
    assert err.value.code == "media.box_truncated"


def test_written_fragment_reads_back() -> None:
    video = Run(
        1, 7_000_000_000, (Sample(b"AAAA", 3750, True), Sample(b"BB", 3751, False, 10)), per_sample_flags=True
    )
    audio = Run(2, 2048, (Sample(b"cc", 1024, True),) * 3, per_sample_flags=False)
    data = build_fragment(5, [video, Run(3, 0, (), True), audio])
    moof, mdat = parse_boxes(data)
    assert (moof.type, mdat.type, mdat.payload) == ("moof", "mdat", b"AAAABBcccccc")
    assert struct.unpack(">I", find_box([moof], "moof/mfhd").payload[4:])[0] == 5
    v, a = fragment_runs(data)
    assert (v.track_id, v.base_decode_time, v.durations, v.sizes) == (1, 7_000_000_000, (3750, 3751), (4, 2))
    assert [is_sync(f) for f in v.flags] == [True, False]
    assert (a.track_id, a.base_decode_time, a.durations, a.end_decode_time) == (2, 2048, (1024,) * 3, 5120)
    assert all(is_sync(f) for f in a.flags)
    trun = moof.find_all("trun")[1]
    (offset,) = struct.unpack_from(">i", trun.payload, 8)  # data offset from the start of moof
    assert data[moof.offset + offset : moof.offset + offset + 6] == b"cccccc"
    assert base_decode_time(moof.find_all("tfdt")[0]) == 7_000_000_000
    assert build_fragment(6, []) == b""


def test_split_init_at_first_moof() -> None:
    init = box(b"ftyp", b"isom") + box(b"moov")
    media = build_fragment(1, [Run(1, 0, (Sample(b"x", 1, True),), True)])
    assert split_init(init + media + media) == (init, media + media)
    assert split_init(init) == (init, b"")


def test_annexb_to_length_prefixed() -> None:
    stream = b"\0\0\0\x01\x67AB\0\0\x01\x68C\0\0\0\x01\x65DEF\0\0"
    nals = split_annexb(stream)
    assert nals == [b"\x67AB", b"\x68C", b"\x65DEF"]
    assert length_prefixed(nals) == b"\0\0\0\x03\x67AB\0\0\0\x02\x68C\0\0\0\x04\x65DEF"


def _init_with(entries: bytes) -> bytes:
    stsd = full(b"stsd", 0, 0, struct.pack(">I", 1), entries)
    return box(b"moov", box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", stsd)))))


def test_codec_string_from_avcc_and_esds() -> None:
    avc1 = box(b"avc1", bytes(78), box(b"avcC", bytes([1, 0x4D, 0x40, 0x1F, 0xFF, 0xE0, 0])))
    asc = bytes([0x11, 0x90])  # AAC-LC (object type 2), 48 kHz, stereo
    dsi = bytes([0x05, len(asc)]) + asc
    dcd = bytes([0x04, 13 + len(dsi), 0x40, 0x15]) + bytes(11) + dsi
    esd = bytes([0x03, 0x80, 0x80, 0x80, 3 + len(dcd), 0, 1, 0]) + dcd  # 4-byte expandable size
    mp4a = box(b"mp4a", bytes(28), full(b"esds", 0, 0, esd))
    assert codec_string(_init_with(avc1)) == "avc1.4d401f"
    assert codec_string(_init_with(mp4a)) == "mp4a.40.2"
    he_aac = mp4a.replace(asc, bytes([0x29, 0x90]))  # object type 5 (SBR)
    assert codec_string(_init_with(he_aac)) == "mp4a.40.5"


def test_codec_string_errors() -> None:
    with pytest.raises(InputError) as err:
        codec_string(box(b"ftyp", b"isom"))
    assert err.value.code == "media.no_moov"
    with pytest.raises(InputError) as err:
        codec_string(_init_with(box(b"avc1", bytes(78))))
    assert err.value.code == "media.bad_avcc"
