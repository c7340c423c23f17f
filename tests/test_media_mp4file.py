"""write_mp4 / Mp4Writer: plain MP4 round trips through PyAV (frame count, size, fps, audio duration), errors."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from ltx2stream.errors import InputError
from ltx2stream.media import Mp4Writer, parse_boxes, write_mp4

W, H, SR = 64, 48, 48000


def _probe(path: Path) -> dict:
    info = {"frames": 0, "samples": 0, "moof": any(b.type == "moof" for b in parse_boxes(path.read_bytes()))}
    with av.open(str(path)) as container:
        info["rate"] = container.streams.video[0].average_rate
        info["audio_streams"] = len(container.streams.audio)
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                info["frames"] += 1
                info["size"] = (frame.width, frame.height)
            else:
                info["samples"] += frame.samples
    return info


def test_write_mp4_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (10, H, W, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal((2, 18000))).astype(np.float32)
    path = write_mp4(tmp_path / "a.mp4", frames, 24, audio, SR)
    info = _probe(path)
    assert (info["frames"], info["size"], info["rate"], info["moof"]) == (10, (W, H), 24, False)
    # the muxer's edit list removes the AAC priming; only the last frame's padding remains
    assert 18000 <= info["samples"] <= math.ceil(18000 / 1024) * 1024


def test_write_mp4_from_an_iterable_without_audio(tmp_path: Path) -> None:
    frames = (np.full((H, W, 3), i * 20, np.uint8) for i in range(7))
    info = _probe(write_mp4(tmp_path / "b.mp4", frames, 25))
    assert (info["frames"], info["rate"], info["audio_streams"]) == (7, 25, 0)


def test_mp4_writer_chunks_and_mono_audio(tmp_path: Path) -> None:
    with Mp4Writer(tmp_path / "c.mp4", W, H, 24, 24000, audio_channels=1, preset="ultrafast") as writer:
        for _ in range(3):
            writer.add_video(np.zeros((5, H, W, 3), np.uint8))
            writer.add_audio(np.zeros((1, 5000), np.float32))  # 5000 is not a multiple of 1024
    assert writer.frames_written == 15
    info = _probe(writer.path)
    assert info["frames"] == 15 and 15000 <= info["samples"] <= math.ceil(15000 / 1024) * 1024


def test_mp4_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        Mp4Writer(tmp_path / "missing" / "x.mp4", W, H, 24)
    assert err.value.code == "media.bad_path"
    writer = Mp4Writer(tmp_path / "d.mp4", W, H, 24)
    with pytest.raises(InputError) as err:
        writer.add_video(np.zeros((1, H + 2, W, 3), np.uint8))
    assert err.value.code == "media.frame_shape"
    with pytest.raises(InputError) as err:
        writer.add_audio(np.zeros((2, 10), np.float32))
    assert err.value.code == "media.no_audio_track"
    writer.add_video(np.zeros((1, H, W, 3), np.uint8))
    assert writer.close() == writer.close()
    with pytest.raises(InputError) as err:
        writer.add_video(np.zeros((1, H, W, 3), np.uint8))
    assert err.value.code == "media.closed"


@pytest.mark.parametrize(
    ("frames", "audio", "rate", "code"),
    [
        (np.zeros((0, H, W, 3), np.uint8), None, None, "media.frame_shape"),
        (np.zeros((2, H, W, 3), np.uint8), np.zeros((2, 10), np.float32), None, "media.sample_rate"),
        (np.zeros((2, H, W + 1, 3), np.uint8), None, None, "media.odd_size"),
        ([np.zeros((H, W, 3), np.uint8), "frame"], None, None, "media.frame_dtype"),
    ],
)
def test_write_mp4_bad_inputs(tmp_path: Path, frames, audio, rate, code: str) -> None:
    with pytest.raises(InputError) as err:
        write_mp4(tmp_path / "e.mp4", frames, 24, audio, rate)
    assert err.value.code == code
