"""Plain (non-fragmented) MP4 files with H.264 + AAC for offline generation and long renders.

``Mp4Writer`` encodes and muxes each chunk as it arrives, so a render of any length holds only the chunk in
hand. Unlike the streaming encoder it uses ordinary x264 settings (B-frames, lookahead) and a high-quality CRF,
and it lets FFmpeg's mov muxer write the AAC priming as an edit list, so players start the audio exactly at 0.
``faststart`` moves the ``moov`` to the front when the file is closed (one extra pass over the file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import av
import numpy as np

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.media import codecs as c

logger = logging.getLogger(__name__)


class Mp4Writer:
    """Incremental MP4 writer: ``add_video`` uint8 [f, H, W, 3] chunks, ``add_audio`` float32 [C, n], ``close``."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        sample_rate: int | None = None,
        *,
        audio_channels: int = 2,
        crf: int = 18,
        preset: str = "medium",
        audio_bitrate: int = 192_000,
        faststart: bool = True,
    ) -> None:
        c.check_video_size(width, height)
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"output directory {self.path.parent} does not exist", code=codes.MEDIA_BAD_PATH)
        self.width, self.height, self.fps = width, height, c.as_fraction(fps)
        self.sample_rate, self.channels = sample_rate, audio_channels
        layout = c.check_audio_config(sample_rate, audio_channels) if sample_rate is not None else None
        c.require_encoder("libx264")
        options = {"movflags": "+faststart"} if faststart else {}
        self._out = av.open(str(self.path), "w", format="mp4", options=options)
        self._video = self._out.add_stream("libx264", rate=self.fps)
        ctx = self._video.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        c.set_bt709(ctx)
        ctx.options = {"crf": str(crf), "preset": preset}
        self._audio = None
        self._feeder = None
        if sample_rate is not None and layout is not None:
            self._audio = self._out.add_stream("aac", rate=sample_rate, layout=layout)
            self._audio.bit_rate = audio_bitrate
            self._audio.codec_context.options = c.aac_options()
            self._feeder = c.AudioFeeder(sample_rate, layout)
        self.frames_written = 0
        self._closed = False

    def add_video(self, frames: np.ndarray) -> None:
        """Encode frames, shape = (f, height, width, 3) uint8 RGB (a single (height, width, 3) frame is allowed)."""
        self._check_open()
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = frames[None]  # [H, W, 3] -> [1, H, W, 3]
        for frame in c.check_frames(frames, self.width, self.height):
            self._mux(self._video.encode(c.rgb_to_yuv(frame, self.frames_written, False)))
            self.frames_written += 1

    def add_audio(self, samples: np.ndarray) -> None:
        """Encode audio, shape = (channels, n) float32 in [-1, 1], through the AAC frame FIFO."""
        self._check_open()
        if self._feeder is None or self._audio is None:
            raise InputError(
                "this writer was opened without audio (sample_rate=None)", code=codes.MEDIA_NO_AUDIO_TRACK
            )
        self._feeder.write(c.check_audio(samples, self.channels))
        for frame in self._feeder.frames():
            self._mux(self._audio.encode(frame))

    def close(self) -> Path:
        """Flush the encoders and finish the file; returns its path. Safe to call twice."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._feeder is not None and self._audio is not None:
                for frame in self._feeder.frames(final=True):
                    self._mux(self._audio.encode(frame))
                self._mux(self._audio.encode(None))
            self._mux(self._video.encode(None))
        finally:
            self._out.close()
        logger.info("wrote %s (%d frames)", self.path, self.frames_written)
        return self.path

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InputError(f"{self.path} is already closed", code=codes.MEDIA_CLOSED)

    def _mux(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            self._out.mux(packet)


def _chunks(frames: np.ndarray | Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    """Frames as [f, H, W, 3] chunks, whether given as one array, or an iterable of frames or chunks."""
    if isinstance(frames, np.ndarray):
        yield frames if frames.ndim != 3 else frames[None]
        return
    for item in frames:
        if not isinstance(item, np.ndarray):
            raise InputError(
                f"frames must be numpy arrays; got {type(item).__name__}", code=codes.MEDIA_FRAME_DTYPE
            )
        yield item if item.ndim != 3 else item[None]  # [H, W, 3] -> [1, H, W, 3]


def write_mp4(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    *,
    crf: int = 18,
) -> Path:
    """Write frames (uint8 [F, H, W, 3], or an iterable of frames/chunks) and optional audio to an MP4 file."""
    if (audio is None) != (sample_rate is None):
        raise InputError("audio and sample_rate must be given together", code=codes.MEDIA_SAMPLE_RATE)
    chunks = iter(_chunks(frames))
    first = next(chunks, None)
    if first is None or first.ndim != 4 or first.shape[0] == 0:
        raise InputError(
            "write_mp4 needs at least one frame of shape [H, W, 3]", code=codes.MEDIA_FRAME_SHAPE
        )
    channels = audio.shape[0] if isinstance(audio, np.ndarray) and audio.ndim == 2 else 2
    with Mp4Writer(
        path, first.shape[2], first.shape[1], fps, sample_rate, audio_channels=channels, crf=crf
    ) as w:
        if audio is not None:
            w.add_audio(audio)
        w.add_video(first)
        for chunk in chunks:
            w.add_video(chunk)
    return w.path
