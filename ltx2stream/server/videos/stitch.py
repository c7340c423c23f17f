"""The whole video of an extension chain as one MP4: every part decoded and written again, in order.

Each part is the fragmented MP4 of one job (its own encoder, timestamps from 0), so the parts are decoded and
re-encoded into one plain MP4 (``media.Mp4Writer``). Audio is cut or padded to exactly the video length of each
part (``round(frames / fps · rate)`` samples), so audio and video stay aligned across the joins. Blocking: run
it in a thread.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from ltx2stream.media import Mp4Writer


def decode_part(data: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames uint8 [F, H, W, 3], audio float32 [C, n], sample rate) of one MP4."""
    frames: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    rate = 0
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
    with av.open(io.BytesIO(data), "r") as container:
        if container.streams.audio:
            rate = int(container.streams.audio[0].rate)
            for aframe in container.decode(audio=0):
                chunk = aframe.to_ndarray().astype(np.float32)  # planar float: [C, n]
                chunks.append(chunk if chunk.ndim == 2 else chunk[None])
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return np.stack(frames), audio, rate


def stitch(parts: Sequence[bytes], fps: float) -> bytes:
    """One MP4 (H.264 + AAC) of ``parts`` played one after the other."""
    decoded = [decode_part(p) for p in parts]
    height, width = decoded[0][0].shape[1:3]
    rate = next((r for _, _, r in decoded if r), 48_000)
    with tempfile.TemporaryDirectory(prefix="ltx2stream-stitch-") as tmp:
        path = Path(tmp) / "whole.mp4"
        with Mp4Writer(path, width, height, fps, rate) as writer:
            for frames, audio, _ in decoded:
                want = round(len(frames) / fps * rate)
                audio = audio[:, :want]
                if audio.shape[1] < want:
                    audio = np.pad(audio, ((0, 0), (0, want - audio.shape[1])))
                writer.add_audio(np.ascontiguousarray(audio, dtype=np.float32))
                writer.add_video(frames)
        return path.read_bytes()
