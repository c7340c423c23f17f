"""Latent statistics, measured once when a codec's latent space is frozen.

The codec runs keep ``per_channel_statistics`` as an exponential average over their training batches (crops,
short clips), which is only roughly the scale of what the transformer sees: on whole 25-frame clips the
session-3 VAE's normalised latents had a standard deviation of ~2. When the encoder is frozen (``train
video-vae|audio --freeze-encoder --init-from RUN``) the statistics are measured instead, as the official ones
are, over whole clips encoded exactly the way the transformer's latent cache encodes them (both stage sizes,
``spec.frames`` frames, scene changes included): per channel (video) or per (c f) token feature (audio), the
mean and standard deviation of the raw latent means over every position. Decoding un-normalises first, so this
changes nothing a decoder sees; it sets the unit of the space the transformer is trained in.
"""

from __future__ import annotations

import torch

from ltx2stream.models.audio import AudioVAE, MelFrontEnd
from ltx2stream.models.video_vae import VideoVAE
from ltx2stream.pocket.data import ClipSource
from ltx2stream.pocket.spec import PocketSpec


class _Moments:
    """Running per-feature sum and sum of squares (float64) over rows of [N, features]."""

    def __init__(self) -> None:
        self.n, self.s, self.s2 = 0, torch.zeros(()), torch.zeros(())

    def add(self, rows: torch.Tensor) -> None:
        r = rows.double()
        self.n += r.shape[0]
        self.s = self.s + r.sum(0)
        self.s2 = self.s2 + r.pow(2).sum(0)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.s / self.n
        var = (self.s2 / self.n - mean.pow(2)).clamp(min=1e-6)
        return mean.float(), var.sqrt().float()


def _clip_renders(spec: PocketSpec, source: ClipSource, clips: int):  # type: ignore[no-untyped-def]
    from ltx2stream.pocket.tasks_dit import change_time

    for index in range(clips):
        for half in (True, False):
            h, w = (spec.height // 2, spec.width // 2) if half else (spec.height, spec.width)
            change = change_time(index, spec.fps, spec.frames)
            yield source.clip(index, frames=spec.frames, height=h, width=w, fps=spec.fps, change_at=change)


@torch.no_grad()
def calibrate_video(vae: VideoVAE, spec: PocketSpec, source: ClipSource, clips: int) -> dict[str, float]:
    """Set ``vae.per_channel_statistics`` to the statistics of the raw means over ``clips`` clips at both stage
    sizes. Returns how many positions it saw and the RMS the normalised latents had under the old statistics."""
    from ltx2stream.pocket.tasks_codec import encoder_moments

    stats = vae.per_channel_statistics
    old_mu, old_sd = stats.get_buffer("mean-of-means").clone(), stats.get_buffer("std-of-means").clone()
    acc = _Moments()
    for clip in _clip_renders(spec, source, clips):
        mean = encoder_moments(vae, clip.video())[0]  # [1, C, F, h, w]
        acc.add(mean.transpose(0, 1).flatten(1).T)
    mu, sd = acc.result()
    stats.get_buffer("mean-of-means").copy_(mu)
    stats.get_buffer("std-of-means").copy_(sd)
    return {"clips": clips, "positions": acc.n, "rms_before": _unit(mu, sd, old_mu, old_sd)}


@torch.no_grad()
def calibrate_audio(vae: AudioVAE, spec: PocketSpec, source: ClipSource, clips: int) -> dict[str, float]:
    """The same for the audio VAE, per (c f) token feature, over the clips' audio."""
    stats = vae.per_channel_statistics
    old_mu, old_sd = stats.get_buffer("mean-of-means").clone(), stats.get_buffer("std-of-means").clone()
    front_end, acc = MelFrontEnd(vae.cfg), _Moments()
    for i, clip in enumerate(_clip_renders(spec, source, clips)):
        if i % 2:  # the audio does not depend on the rendered size
            continue
        mel = front_end(clip.waveform(), clip.sample_rate)
        mean = vae.encoder(mel)[:, : vae.cfg.z_channels]  # [1, C, T, F]
        acc.add(mean.permute(0, 2, 1, 3).flatten(2).flatten(0, 1))
    mu, sd = acc.result()
    stats.get_buffer("mean-of-means").copy_(mu)
    stats.get_buffer("std-of-means").copy_(sd)
    return {"clips": clips, "positions": acc.n, "rms_before": _unit(mu, sd, old_mu, old_sd)}


def _unit(mu: torch.Tensor, sd: torch.Tensor, old_mu: torch.Tensor, old_sd: torch.Tensor) -> float:
    """RMS of the latents normalised with the old statistics, from the measured ones (per feature: the second
    moment of (x - old_mu) / old_sd is ((mu - old_mu)^2 + sd^2) / old_sd^2)."""
    return float((((mu - old_mu).pow(2) + sd.pow(2)) / old_sd.pow(2)).mean().sqrt())
