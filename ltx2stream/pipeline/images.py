"""Conditioning-image preprocessing: load, H.264 CRF round trip, cover-resize + centre crop, [-1, 1] tensor.

The CRF step reproduces the official pipelines: the image is encoded as one H.264 frame (libx264, preset veryfast,
even dimensions) at the given CRF and decoded back, so the model sees compression artefacts like those of its
training videos. CRF 0 disables the step.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ltx2stream import codes
from ltx2stream.errors import InputError


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file (PNG, JPEG, WebP, ...) to uint8 [H, W, 3]."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, OSError) as e:
        raise InputError(f"cannot decode image {path}: {e}", code=codes.INPUT_IMAGE_DECODE) from e


def decode_image_bytes(data: bytes) -> np.ndarray:
    """Decode an in-memory image to uint8 [H, W, 3]."""
    try:
        with av.open(io.BytesIO(data)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration) as e:
        raise InputError(f"cannot decode image bytes: {e}", code=codes.INPUT_IMAGE_DECODE) from e


def crf_round_trip(pixels: np.ndarray, crf: int) -> np.ndarray:
    """Encode uint8 [H, W, 3] as one libx264 frame at ``crf`` and decode it back (crf 0 returns the input)."""
    if crf == 0:
        return pixels
    h, w = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
    src = np.ascontiguousarray(pixels[:h, :w])
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        frame = av.VideoFrame.from_ndarray(src, format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def to_model_pixels(pixels: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 [H, W, 3] (or [F, H, W, 3]) -> float [3, F, height, width] in [-1, 1], cover-resized and centre-cropped."""
    frames = pixels[None] if pixels.ndim == 3 else pixels
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (F, 3, H, W)
    scale = max(height / x.shape[2], width / x.shape[3])
    new_h, new_w = max(height, round(x.shape[2] * scale)), max(width, round(x.shape[3] * scale))
    if (new_h, new_w) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    x = x[:, :, top : top + height, left : left + width]
    return (x / 127.5 - 1.0).clamp(-1.0, 1.0).permute(1, 0, 2, 3).contiguous()  # (3, F, H, W)


def prepare_image(pixels: np.ndarray, height: int, width: int, crf: int) -> torch.Tensor:
    """uint8 image -> [3, 1, height, width] in [-1, 1] after the CRF round trip."""
    return to_model_pixels(crf_round_trip(pixels, crf), height, width)
