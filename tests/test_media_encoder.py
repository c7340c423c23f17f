"""SessionEncoder: init segment, codec string, continuous timestamps, FIFO audio accounting, progressive bytes.

One tiny session (64x48 @ 24 fps, 48 kHz stereo, 3 segments of 3 chunks x 4 frames, 6000 audio samples per
segment -- deliberately not a multiple of 1024) is encoded once per module and inspected by every test.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ltx2stream.errors import InputError
from ltx2stream.media import MediaFragment, SessionEncoder, codec_string, fragment_runs, is_sync, parse_boxes
from ltx2stream.media.fmp4 import find_box, track_timescales
from ltx2stream.media.fragments import avcc_parameter_sets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # bench_aac: the AAC round trip

W, H, FPS, SR = 64, 48, 24, 48000
CHUNK, CHUNKS, SEGMENTS, AUDIO_PER_SEGMENT = 4, 3, 3, 6000
VIDEO_TRACK, AUDIO_TRACK = 1, 2


@dataclass
class Session:
    enc: SessionEncoder
    fragments: list[MediaFragment]
    first_drains: list[bytes]  # drain() right after each segment's first chunk
    drained: list[bytes]  # everything drain() returned, per segment
    tail: bytes
    fed: int

    @property
    def stream(self) -> bytes:
        return self.enc.init_segment + b"".join(f.data for f in self.fragments) + self.tail


def _frames(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def session() -> Session:
    rng = np.random.default_rng(0)
    enc = SessionEncoder(W, H, FPS, SR)
    fragments, first, drained = [], [], []
    for index in range(SEGMENTS):
        parts = []
        for chunk in range(CHUNKS):
            enc.add_video(_frames(rng, CHUNK))
            parts.append(enc.drain())
            if chunk == 0:
                first.append(parts[-1])
        enc.add_audio((0.1 * rng.standard_normal((2, AUDIO_PER_SEGMENT))).astype(np.float32))
        fragments.append(enc.flush_segment(index))
        drained.append(b"".join(parts))
    return Session(enc, fragments, first, drained, enc.close(), SEGMENTS * AUDIO_PER_SEGMENT)


def _runs(data: bytes, track: int) -> list:
    return [r for r in fragment_runs(data) if r.track_id == track]


def test_init_segment_has_video_and_audio_tracks(session: Session) -> None:
    boxes = parse_boxes(session.enc.init_segment)
    assert [b.type for b in boxes] == ["ftyp", "moov"]
    tracks = track_timescales(boxes)
    assert tracks == {VIDEO_TRACK: ("vide", 90000), AUDIO_TRACK: ("soun", SR)}
    assert find_box(boxes, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC") is not None
    assert find_box(boxes, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds") is not None
    assert find_box(boxes, "moov/mvex/trex") is not None


def test_codec_string_and_mime(session: Session) -> None:
    codecs = session.enc.codec_string
    assert codecs == codec_string(session.enc.init_segment)
    video, audio = codecs.split(", ")
    assert video.startswith("avc1.64") and len(video) == len("avc1.64000a")  # x264 High profile by default
    assert audio == "mp4a.40.2"  # AAC-LC
    assert session.enc.mime == f'video/mp4; codecs="{codecs}"'


def test_init_is_deterministic_for_the_same_settings(session: Session) -> None:
    assert SessionEncoder(W, H, FPS, SR).init_segment == session.enc.init_segment


def test_every_segment_starts_with_the_init_parameter_sets(session: Session) -> None:
    avcc = find_box(parse_boxes(session.enc.init_segment), "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
    sps, pps = avcc_parameter_sets(avcc.payload)
    for fragment in session.fragments:
        mdat = next(b for b in parse_boxes(fragment.data) if b.type == "mdat")
        nals, pos = [], 0
        first_size = _runs(fragment.data, VIDEO_TRACK)[0].sizes[0]
        while pos < first_size:  # the first video sample, 4-byte length-prefixed NAL units
            (n,) = struct.unpack_from(">I", mdat.payload, pos)
            nals.append(mdat.payload[pos + 4 : pos + 4 + n])
            pos += 4 + n
        assert [n for n in nals if n[0] & 0x1F == 7] == sps
        assert [n for n in nals if n[0] & 0x1F == 8] == pps
        assert any(n[0] & 0x1F == 5 for n in nals)  # an IDR slice


def test_tfdt_is_continuous_per_track(session: Session) -> None:
    for track in (VIDEO_TRACK, AUDIO_TRACK):
        runs = _runs(session.stream, track)
        assert runs[0].base_decode_time == 0
        for before, after in itertools.pairwise(runs):
            assert after.base_decode_time == before.end_decode_time, (track, before, after)
    video = _runs(session.stream, VIDEO_TRACK)
    assert {d for r in video for d in r.durations} == {90000 // FPS}
    assert video[-1].end_decode_time == SEGMENTS * CHUNKS * CHUNK * 90000 // FPS


def test_audio_sample_count_is_fed_plus_priming(session: Session) -> None:
    audio = _runs(session.stream, AUDIO_TRACK)
    assert audio[-1].end_decode_time == session.fed + 1024  # every sample once, shifted by AAC priming
    assert (
        sum(f.audio_samples for f in session.fragments)
        + sum(r.end_decode_time - r.base_decode_time for r in _runs(session.tail, AUDIO_TRACK))
        == session.fed + 1024
    )


def test_segments_start_on_keyframes_only(session: Session) -> None:
    for fragment in session.fragments:
        flags = [f for r in _runs(fragment.data, VIDEO_TRACK) for f in r.flags]
        assert len(flags) == fragment.video_frames == CHUNKS * CHUNK
        assert [is_sync(f) for f in flags] == [True] + [False] * (len(flags) - 1)


def test_fragment_fields_are_absolute_and_contiguous(session: Session) -> None:
    for i, fragment in enumerate(session.fragments):
        assert fragment.index == i
        assert fragment.start_s == pytest.approx(i * CHUNKS * CHUNK / FPS)
        assert fragment.duration_s == pytest.approx(CHUNKS * CHUNK / FPS)
        first = _runs(fragment.data, VIDEO_TRACK)[0]
        assert first.base_decode_time / 90000 == pytest.approx(fragment.start_s)
        audio = _runs(fragment.data, AUDIO_TRACK)
        assert fragment.audio_start_s == pytest.approx(audio[0].base_decode_time / SR)


def test_first_bytes_exist_before_the_last_chunk(session: Session) -> None:
    for fragment, first, drained in zip(session.fragments, session.first_drains, session.drained):
        assert parse_boxes(first)[0].type == "moof"
        runs = _runs(first, VIDEO_TRACK)
        assert sum(r.sample_count for r in runs) == CHUNK and is_sync(runs[0].flags[0])
        assert drained + fragment.remainder == fragment.data


def _decode(data: bytes) -> tuple[list[av.VideoFrame], int, av.container.InputContainer]:
    frames, samples = [], 0
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0, audio=0):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame)
            else:
                samples += frame.samples
        rate = container.streams.video[0].average_rate
    return frames, samples, rate


def test_init_plus_all_fragments_decodes(session: Session) -> None:
    frames, samples, rate = _decode(session.stream)
    assert len(frames) == SEGMENTS * CHUNKS * CHUNK
    assert (frames[0].width, frames[0].height) == (W, H) and rate == FPS
    assert [f.pts for f in frames] == [k * 90000 // FPS for k in range(len(frames))]
    # FFmpeg decodes every AAC packet whole: fed + 1024 priming, rounded up to whole 1024-sample frames
    assert samples == math.ceil((session.fed + 1024) / 1024) * 1024


def test_each_segment_decodes_after_the_init_alone(session: Session) -> None:
    for fragment in session.fragments:
        frames, samples, _ = _decode(session.enc.init_segment + fragment.data)
        assert len(frames) == fragment.video_frames
        assert frames[0].time == pytest.approx(fragment.start_s)
        assert samples == fragment.audio_samples


def test_colours_survive_the_bt709_round_trip() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (255, 0, 0)
    image[:, W // 2 :] = (30, 160, 90)
    enc = SessionEncoder(W, H, FPS, SR, crf=12)
    enc.add_video(np.repeat(image[None], 2, axis=0))
    data = enc.init_segment + enc.flush_segment(0).data + enc.close()
    frames, _, _ = _decode(data)
    decoded = frames[0].to_ndarray(format="rgb24").astype(int)
    # a BT.601/709 matrix mismatch is ~20 levels off on saturated red
    assert np.abs(decoded - image)[:, 4 : W // 2 - 4].mean() < 4
    assert np.abs(decoded - image)[:, W // 2 + 4 : -4].mean() < 4


def test_ntsc_rate_and_gop_keep_exact_continuity() -> None:
    enc = SessionEncoder(W, H, 24000 / 1001, 24000, gop_frames=3, audio_channels=1)
    assert enc.fps == Fraction(24000, 1001)
    enc.add_video(np.zeros((7, H, W, 3), np.uint8))
    enc.add_audio(np.zeros((1, 5000), np.float32), sample_rate=24000)
    data = enc.flush_segment(0).data + enc.close()
    runs = _runs(data, VIDEO_TRACK)
    assert [r.sample_count for r in runs] == [3, 3, 1]  # one fragment per keyframe-started run
    for before, after in itertools.pairwise(runs):
        assert after.base_decode_time == before.end_decode_time
    assert runs[-1].end_decode_time == 7 * 90000 * 1001 // 24000
    assert {d for r in runs for d in r.durations} == {3753, 3754}
    assert _runs(data, AUDIO_TRACK)[-1].end_decode_time == 5000 + 1024


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda e: e.add_video(np.zeros((2, H, W, 3), np.float32)), "media.frame_dtype"),
        (lambda e: e.add_video(np.zeros((2, H, W + 2, 3), np.uint8)), "media.frame_shape"),
        (lambda e: e.add_video(np.zeros((H, W, 3), np.uint8)), "media.frame_shape"),
        (lambda e: e.add_audio(np.zeros((2, 10), np.float64)), "media.audio_dtype"),
        (lambda e: e.add_audio(np.zeros((1, 10), np.float32)), "media.audio_shape"),
        (lambda e: e.add_audio(np.full((2, 10), np.nan, np.float32)), "media.audio_not_finite"),
        (lambda e: e.add_audio(np.zeros((2, 10), np.float32), sample_rate=16000), "media.sample_rate"),
    ],
)
def test_bad_inputs_are_refused(call, code: str) -> None:
    enc = SessionEncoder(W, H, FPS, SR)
    with pytest.raises(InputError) as err:
        call(enc)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"width": 63}, "media.odd_size"),
        ({"sample_rate": 16001}, "media.sample_rate"),
        ({"fps": 0}, "media.bad_fps"),
        ({"audio_channels": 6}, "media.audio_channels"),
        ({"gop_frames": 0}, "media.bad_gop"),
        ({"max_bitrate": 10}, "media.bad_bitrate"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, code: str) -> None:
    settings = {"width": W, "height": H, "fps": FPS, "sample_rate": SR} | kwargs
    with pytest.raises(InputError) as err:
        SessionEncoder(**settings)
    assert err.value.code == code


def test_segment_order_and_closed_state() -> None:
    enc = SessionEncoder(W, H, FPS, SR)
    enc.add_video(np.zeros((1, H, W, 3), np.uint8))
    enc.flush_segment(4)
    with pytest.raises(InputError, match="segment 6") as err:
        enc.flush_segment(6)
    assert err.value.code == "media.segment_order"
    enc.close()
    assert enc.close() == b""
    with pytest.raises(InputError) as err:
        enc.add_video(np.zeros((1, H, W, 3), np.uint8))
    assert err.value.code == "media.closed"


def test_max_bitrate_caps_the_stream() -> None:
    noise = np.random.default_rng(2).integers(0, 256, (24, H, W, 3), dtype=np.uint8)
    sizes = {}
    for cap in (None, 50_000):
        enc = SessionEncoder(W, H, FPS, SR, max_bitrate=cap)
        enc.add_video(noise)
        sizes[cap] = len(enc.flush_segment(0).data)
    assert sizes[50_000] < sizes[None] / 2


def test_the_audio_encoder_keeps_tones_with_its_fast_coder() -> None:
    """The streaming AAC encoder runs FFmpeg's ``fast`` coder (a fraction of ``twoloop``'s CPU, docs/media.md);
    tones come back at more than 25 dB SNR (36.5 dB measured; twoloop 30)."""
    import bench_aac  # bench/bench_aac.py: the signal, the round trip and the SNR it reports

    from ltx2stream.media import codecs

    assert codecs.aac_options() == {"aac_coder": "fast"}
    x = bench_aac.signal(24000)
    assert bench_aac.snr_db(x, bench_aac.encode(x, 24000, None)[1]) > 25.0


def test_an_unknown_aac_coder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltx2stream.errors import ConfigError
    from ltx2stream.media import codecs

    monkeypatch.setattr(codecs, "AAC_CODER", "anmr")
    with pytest.raises(ConfigError) as err:
        codecs.open_audio_encoder(SR, "stereo", 128_000)
    assert err.value.code == "config.unsupported_value" and "LTX2STREAM_AAC_CODER" in str(err.value)
    with pytest.raises(ConfigError):
        codecs.open_audio_encoder(SR, "stereo", 128_000, coder="best")


def test_a_server_with_an_unknown_aac_coder_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's ``LTX2STREAM_AAC_CODER`` typo stops ``serve`` with the code, before any session opens."""
    from ltx2stream.errors import ConfigError
    from ltx2stream.media import codecs
    from ltx2stream.server.app import StreamingServer
    from ltx2stream.server.config import ServerConfig

    def factory() -> object:
        raise RuntimeError("no host needed")

    monkeypatch.setattr(codecs, "AAC_CODER", "twoloops")
    with pytest.raises(ConfigError) as err:
        StreamingServer(ServerConfig(port=0, store_dir=tmp_path, web_root=None), factory)  # type: ignore[arg-type]
    assert err.value.code == "config.unsupported_value" and "twoloops" in str(err.value)
