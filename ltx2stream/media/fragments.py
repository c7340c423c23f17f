"""Writing fMP4 media fragments (``moof`` + ``mdat``) ourselves, and getting the init segment from FFmpeg once.

Why write fragments by hand: FFmpeg's mov muxer only closes a fragment when the *next* keyframe arrives (or the
muxer closes), and a fresh muxer per piece cannot start on a non-keyframe. Writing ``moof``/``mdat`` directly lets
a fragment go out the moment its packets exist, with exactly the absolute decode times we choose.

Layout of every fragment (ISO 14496-12 §8.8):

    moof
      mfhd  sequence_number (1, 2, 3, ...)
      traf  (one per track that has samples)
        tfhd  flags 0x020000 default-base-is-moof (+0x20 default sample flags for audio)
        tfdt  version 1, 64-bit baseMediaDecodeTime = absolute decode time of the first sample
        trun  data offset, per-sample duration and size (+ per-sample flags for video, + composition offsets)
    mdat  the samples, video run then audio run

Video samples are H.264 access units converted from Annex B (start codes) to 4-byte length-prefixed NAL units;
the SPS/PPS x264 repeats at every IDR stay in-band (allowed for ``avc1``), so any IDR-started fragment decodes
after the init segment alone.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.media.codecs import open_audio_encoder, open_video_encoder, rgb_to_yuv
from ltx2stream.media.fmp4 import find_box, parse_boxes, split_init, track_timescales

SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (depends on nothing), is_non_sync = 0
NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
FMP4_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer+delay_moov+frag_discont"
_START_CODE = re.compile(b"\x00\x00\x01")
NAL_SPS, NAL_PPS = 7, 8


@dataclass(frozen=True)
class Sample:
    """One coded sample: bytes as stored in ``mdat``, duration in track ticks, sync flag, composition offset."""

    data: bytes
    duration: int
    sync: bool
    composition_offset: int = 0


@dataclass(frozen=True)
class Run:
    """The samples of one track inside one fragment, starting at absolute ``decode_time`` ticks."""

    track_id: int
    decode_time: int
    samples: tuple[Sample, ...]
    per_sample_flags: bool  # video: flags per sample; audio: every sample is sync (tfhd default)


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (3- or 4-byte start codes; trailing zero bytes dropped)."""
    starts = [m.end() for m in _START_CODE.finditer(data)]
    nals = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[start:end].rstrip(b"\x00")  # a NAL ends in a non-zero byte (rbsp trailing bits)
        if nal:
            nals.append(nal)
    return nals


def length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units -> ``avc1`` sample format (4-byte big-endian length before each unit)."""
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def avcc_parameter_sets(avcc_payload: bytes) -> tuple[list[bytes], list[bytes]]:
    """(SPS list, PPS list) stored in an avcC record."""
    pos = 6
    sps: list[bytes] = []
    pps: list[bytes] = []
    for count_mask, out in ((0x1F, sps), (0xFF, pps)):
        count = avcc_payload[pos - 1] & count_mask
        for _ in range(count):
            (n,) = struct.unpack_from(">H", avcc_payload, pos)
            out.append(avcc_payload[pos + 2 : pos + 2 + n])
            pos += 2 + n
        pos += 1
    return sps, pps


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _traf(run: Run, data_offset: int) -> bytes:
    tfhd_flags = 0x020000 | (0 if run.per_sample_flags else 0x20)
    tfhd_body = struct.pack(">I", run.track_id) + (
        b"" if run.per_sample_flags else struct.pack(">I", SYNC_FLAGS)
    )
    with_cto = any(s.composition_offset for s in run.samples)
    trun_flags = 0x001 | 0x100 | 0x200 | (0x400 if run.per_sample_flags else 0) | (0x800 if with_cto else 0)
    rows = []
    for s in run.samples:
        row = struct.pack(">II", s.duration, len(s.data))
        if run.per_sample_flags:
            row += struct.pack(">I", SYNC_FLAGS if s.sync else NON_SYNC_FLAGS)
        if with_cto:
            row += struct.pack(">i", s.composition_offset)
        rows.append(row)
    return _box(
        b"traf",
        _full_box(b"tfhd", 0, tfhd_flags, tfhd_body),
        _full_box(b"tfdt", 1, 0, struct.pack(">Q", run.decode_time)),
        _full_box(b"trun", 1, trun_flags, struct.pack(">Ii", len(run.samples), data_offset), *rows),
    )


def build_fragment(sequence: int, runs: list[Run]) -> bytes:
    """One ``moof`` + ``mdat`` holding ``runs`` (empty runs are skipped); b'' when there is nothing to write."""
    runs = [r for r in runs if r.samples]
    if not runs:
        return b""

    def moof(offsets: list[int]) -> bytes:
        mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
        return _box(b"moof", mfhd, *(_traf(r, o) for r, o in zip(runs, offsets)))

    moof_size = len(moof([0] * len(runs)))  # offsets do not change the size
    offsets, pos = [], moof_size + 8  # data offsets count from the start of moof (default-base-is-moof)
    for run in runs:
        offsets.append(pos)
        pos += sum(len(s.data) for s in run.samples)
    payload = b"".join(s.data for r in runs for s in r.samples)
    return moof(offsets) + _box(b"mdat", payload)


@dataclass(frozen=True)
class InitSegment:
    """The cached ``ftyp`` + ``moov`` and what the fragment writer needs from it."""

    data: bytes
    video_track: int
    audio_track: int
    video_timescale: int
    audio_timescale: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    audio_config: bytes  # AudioSpecificConfig of the throw-away encoder, to compare with the session's


def probe_init_segment(
    width: int,
    height: int,
    fps: Fraction,
    video_options: dict[str, str],
    sample_rate: int,
    layout: str,
    bit_rate: int,
) -> InitSegment:
    """Build the init segment before any real media exists.

    A throw-away libx264 with the session's exact options encodes one grey frame and a throw-away AAC encoder
    one silent frame; FFmpeg's mov muxer (``delay_moov``, ``add_mux_stream`` -> avcC from the in-band SPS/PPS)
    writes them as fMP4 and we keep the bytes before the first ``moof``. x264's SPS/PPS depend only on the
    options, not on the pictures; the session encoder checks its first IDR against them anyway.
    """
    venc = open_video_encoder(width, height, fps, video_options)
    grey = np.full((height, width, 3), 128, np.uint8)
    vpackets = list(venc.encode(rgb_to_yuv(grey, 0, True)))
    aenc = open_audio_encoder(sample_rate, layout, bit_rate)
    silence = av.AudioFrame.from_ndarray(
        np.zeros((len(aenc.layout.channels), 1024), np.float32), "fltp", layout
    )
    silence.sample_rate, silence.pts = sample_rate, 0
    apackets = [p for p in (*aenc.encode(silence), *aenc.encode(None)) if p.pts is not None and p.pts >= 0][
        :1
    ]
    if not vpackets or not apackets:
        raise ConfigError("probe encoders produced no packets", code=codes.MEDIA_PROBE_FAILED)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"movflags": FMP4_MOVFLAGS}) as out:
        vstream = out.add_mux_stream("h264", rate=fps, width=width, height=height)
        astream = out.add_stream("aac", rate=sample_rate, layout=layout)
        astream.bit_rate = bit_rate
        for packet, stream in ((vpackets[0], vstream), (apackets[0], astream)):
            packet.stream = stream
            out.mux(packet)
    init, _ = split_init(buf.getvalue())
    return _describe_init(init, bytes(aenc.extradata or b""))


def _describe_init(init: bytes, audio_config: bytes) -> InitSegment:
    boxes = parse_boxes(init)
    tracks = track_timescales(boxes)
    video = [(tid, ts) for tid, (kind, ts) in tracks.items() if kind == "vide"]
    audio = [(tid, ts) for tid, (kind, ts) in tracks.items() if kind == "soun"]
    avcc = find_box(boxes, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
    if len(video) != 1 or len(audio) != 1 or avcc is None:
        raise ConfigError(f"unexpected init segment tracks {tracks}", code=codes.MEDIA_PROBE_FAILED)
    sps, pps = avcc_parameter_sets(avcc.payload)
    return InitSegment(
        init, video[0][0], audio[0][0], video[0][1], audio[0][1], tuple(sps), tuple(pps), audio_config
    )
