"""Decoding stages: audio latents -> waveform (audio VAE + vocoder); video latents -> uint8 frames, progressively."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from ltx2stream.models.audio import AudioCodec, DecodedAudio
from ltx2stream.types import VIDEO_TIME_SCALE

# The diffusion decoder's x_T is drawn from a CPU generator with this seed for every decode, so a latent decodes
# to the same pixels on every device and in every session (the official pipelines pass their request generator).
DIFFUSION_DECODE_SEED = 0


class LTX2AudioDecodingStage:
    """[B, 8, T, 16] audio latent -> DecodedAudio(waveform [B, 2, n], sample_rate)."""

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    def __call__(self, latent: torch.Tensor) -> DecodedAudio:
        return self.codec.decode_audio(latent)

    def mel(self, latent: torch.Tensor) -> torch.Tensor:
        """The audio VAE's log-mel for ``latent`` (the first half of ``self(latent)``)."""
        return self.codec.decode_mel(latent)

    def vocode(self, mel: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) of the waveform of ``mel``, from the mel frames they need only."""
        return self.codec.vocode_span(mel, start, stop)

    def span(self, latent: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) of ``self(latent)``'s waveform, from the causal latent prefix they need only."""
        return self.codec.decode_span(latent, start, stop)


def to_uint8_frames(pixels: torch.Tensor) -> np.ndarray:
    """[1, 3, f, H, W] in [-1, 1] -> uint8 [f, H, W, 3]."""
    x = ((pixels[0].float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous().cpu().numpy()  # [3, f, H, W] -> [f, H, W, 3]


def align_chunks(pieces: Iterable[np.ndarray], skip: int, min_frames: int) -> Iterator[np.ndarray]:
    """Regroup decoder pieces [f, ...] (in order) into chunks that never straddle frame ``skip``.

    A piece that crosses ``skip`` is split there and both parts go out at once (the frames after the trim
    leave as soon as they exist); otherwise pieces are gathered until ``min_frames`` frames (fewer, larger
    chunks for the encoder), and what is left goes out at the end.
    """
    held: list[np.ndarray] = []
    count = index = 0
    for piece in pieces:
        f = piece.shape[0]
        if index < skip < index + f:
            cut = skip - index
            yield np.concatenate([*held, piece[:cut]])
            yield piece[cut:]
            held, count, index = [], 0, index + f
            continue
        held.append(piece)
        count += f
        index += f
        if count >= min_frames or index == skip:
            yield np.concatenate(held) if len(held) > 1 else held[0]
            held, count = [], 0
    if held:
        yield np.concatenate(held)


class LTX2VideoDecodingStage:
    """Video latent [1, 128, F', h, w] -> chunks of uint8 frames [f, H, W, 3] as the progressive decoder yields them.

    ``skip``: frames at the start that the caller trims (the repeated span of a continued segment): they are
    not yielded, and the streamed decoder does not do the work that only feeds them, so the first chunk holds
    new frames and leaves as soon as the decoder reaches them.
    """

    def __init__(self, vae: Any, *, tiling: Any = None, chunk_latent_frames: int = 2) -> None:
        self.vae = vae
        self.tiling = tiling
        self.chunk_latent_frames = chunk_latent_frames

    def __call__(self, latent: torch.Tensor, skip: int = 0) -> Iterator[np.ndarray]:
        """The decoder's first piece at once (the segment's first media), then chunks of >= 8 frames."""
        pieces = self._pieces(latent, skip)
        first = next(pieces, None)
        if first is not None:
            yield first
            yield from align_chunks(pieces, 0, VIDEO_TIME_SCALE)

    @torch.inference_mode()
    def _pieces(self, latent: torch.Tensor, skip: int) -> Iterator[np.ndarray]:
        from ltx2stream.models.video_vae import decode_progressive

        param = next(self.vae.parameters())
        latent = latent.to(device=param.device, dtype=param.dtype)
        if getattr(self.vae, "is_diffusion", False):  # LTX-2.5 diffusion decoder: seeded pixel noise
            gen = torch.Generator("cpu").manual_seed(DIFFUSION_DECODE_SEED)
            frames = 8 * self.chunk_latent_frames
            for chunk in self.vae.decode_chunks(latent, generator=gen, chunk_frames=frames):
                drop, skip = min(skip, chunk.shape[2]), skip - min(skip, chunk.shape[2])
                if drop < chunk.shape[2]:
                    yield to_uint8_frames(chunk[:, :, drop:])
            return
        for chunk in decode_progressive(self.vae, latent, self.tiling, self.chunk_latent_frames, skip=skip):
            yield to_uint8_frames(chunk)
