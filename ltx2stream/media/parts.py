"""The media side of offline rendering: each segment's new frames as an H.264 part file, then every part and its
audio concatenated into one H.264 + AAC MP4 (``session/render.py`` drives it through its ``PartMedia`` protocol;
``commands/render.py`` injects :class:`Mp4Parts`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from ltx2stream.media.mp4file import Mp4Writer, write_mp4

PART_CRF = 12  # parts are decoded once more when assembled: near-lossless keeps that second encode clean


class Mp4Parts:
    """Writes part videos (H.264 at ``crf``) and assembles parts + audio into one MP4, one part at a time."""

    def __init__(self, crf: int = PART_CRF) -> None:
        self.crf = crf

    def write_video(self, path: Path, frames: np.ndarray, fps: float) -> None:
        """frames: uint8 [F, H, W, 3] -> an MP4 file at ``path`` (video only)."""
        write_mp4(path, frames, fps, crf=self.crf)

    def assemble(
        self,
        output: Path,
        parts: Iterable[tuple[Path, np.ndarray]],
        *,
        width: int,
        height: int,
        fps: float,
        sample_rate: int,
    ) -> None:
        """Concatenate ``(part video, its audio float32 [C, n])`` pairs, in order, into ``output``."""
        with Mp4Writer(output, width, height, fps, sample_rate) as writer:
            for video, audio in parts:
                writer.add_audio(audio)
                with av.open(str(video)) as container:
                    for frame in container.decode(video=0):
                        writer.add_video(frame.to_ndarray(format="rgb24")[None])
