"""Helpers for the pipeline tests: count module forwards, write a PNG, and probe an MP4 by decoding it with PyAV."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


@dataclass
class Calls:
    n: int = 0


@contextmanager
def count_forwards(module: torch.nn.Module | None = None) -> Iterator[Calls]:
    """Count forward calls of ``module`` (its own forward only), or of every nn.Module anywhere when None."""
    calls = Calls()

    def hook(*_: object) -> None:
        calls.n += 1

    if module is None:
        handle = torch.nn.modules.module.register_module_forward_hook(hook)
    else:
        handle = module.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """uint8 [H, W, 3] -> a PNG file, written with PyAV's png encoder."""
    h, w, _ = pixels.shape
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = w, h, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@dataclass(frozen=True)
class Mp4Info:
    frames: int
    width: int
    height: int
    fps: Fraction
    video_codec: str
    audio_codec: str
    sample_rate: int
    audio_samples: int


def probe_mp4(path: Path) -> Mp4Info:
    """Decode every video frame and audio sample of an MP4 (what a player would get)."""
    frames, samples, size = 0, 0, (0, 0)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        fps, vcodec, acodec, rate = (
            video.average_rate,
            video.codec_context.name,
            audio.codec_context.name,
            audio.rate,
        )
        for frame in container.decode(video, audio):
            if isinstance(frame, av.VideoFrame):
                frames += 1
                size = (frame.width, frame.height)
            else:
                samples += frame.samples
    return Mp4Info(frames, size[0], size[1], Fraction(fps), vcodec, acodec, int(rate), samples)
