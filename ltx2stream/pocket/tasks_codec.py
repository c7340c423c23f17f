"""Training tasks of the codecs: video VAE, audio VAE + vocoder, spatial x2 latent upsampler.

* Video VAE: "views" of world clips (rendered at one size, randomly cropped to another, 1 / 9 / 17 frames):
  whole frames at the native and the half size, where the transformer's latents come from, and crops; loss
  L1 + MSE on pixels + a small KL on the encoder's (mean, uniform log-variance) posterior; the decoder sees a
  posterior sample; ``fg_weight`` > 0 weighs the pixels of shapes (and their edges) up, see
  ``foreground_weights``; ``edge_weight`` > 0 adds an L1 on the spatial differences of neighbouring pixels
  (``edge_loss``), which a blurred outline pays for and a plain pixel loss hardly does. The per-channel
  statistics (``mean-of-means`` / ``std-of-means``) track the latent means as an exponential average so that
  normalised latents have about unit scale.
* Audio: the audio VAE reconstructs the log-mel (L1 + KL); the vocoder learns ground-truth log-mel -> 24 kHz
  waveform with a multi-resolution STFT loss (log magnitude L1 + spectral convergence), beside it (``AudioTask``)
  or in a run of its own (``VocoderTask``, the way the pocket vocoder trains since session 7).
* Upsampler: ``x2(half-size means) -> full-size means`` of the frozen VAE (MSE), both encodes of the same clip
  rendered at both sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ltx2stream.models.audio import AudioVAE, MelFrontEnd, resample
from ltx2stream.models.video_vae import VideoVAE
from ltx2stream.models.video_vae.sampling import patchify
from ltx2stream.pocket.data import Clip, ClipSource
from ltx2stream.pocket.spec import PocketSpec

if TYPE_CHECKING:
    from ltx2stream.pocket.tasks_dit import LatentCache

KL_WEIGHT = 1e-5
# Posterior noise is capped at std exp(-3) ~ 0.05 (latent means have about unit scale). Session 1 sampled with the
# encoder's initial log-variance ~0 (std 1, as large as the signal): the decoder saw mostly noise, learned the
# average colour and nothing else in ~1000 steps. The cap keeps a small, useful perturbation (the DiT's outputs are
# not exact latents) and lets reconstruction train; the log-variance is not used at inference (encode = mean).
LOGVAR_MAX = -6.0
STATS_MOMENTUM = 0.01
# A pixel is foreground when a channel differs from its row's median by more than this (the world's backgrounds
# are constant along rows; the quality scorer's threshold is 40 / 255 of full scale, 0.31 on [-1, 1]).
FOREGROUND_THRESHOLD = 0.15
# Fixed frames of the kind evaluation (clips never drawn in training: those use indices below ``dataset``); 64
# frames, ~110 shapes (16 frames and 26 shapes until session 8: steps of 1/26 made runs hard to tell apart).
KIND_EVAL_CLIPS = tuple(range(100000, 100000 + 64 * 7, 7))


def foreground_weights(pixels: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """[B, 3, F, H, W] in [-1, 1] -> [B, 1, F, H, W]: 1 + ``fg_weight`` on shape pixels and a 1-pixel ring around
    them. Shapes cover ~2-5 % of a frame, so a plain mean over pixels lets a decoder trade their corners for
    the background; the shape kind (what the quality scorer reads from the outline) needs the corners."""
    background = pixels.median(dim=-1, keepdim=True).values  # per row and channel
    fg = ((pixels - background).abs().amax(dim=1, keepdim=True) > FOREGROUND_THRESHOLD).float()
    ring = F.max_pool3d(fg, (1, 3, 3), stride=1, padding=(0, 1, 1))
    return 1.0 + fg_weight * ring


def edge_loss(recon: torch.Tensor, pixels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the horizontal and vertical pixel differences of ``recon`` and ``pixels`` ([B, 3, F, H, W]),
    weighted per pixel by ``weights`` ([B, 1, F, H, W], e.g. ``foreground_weights``) where given. A square's
    corner and a triangle's tip are where these differences change direction: a decoder that rounds them (a blob
    scores "circle" with the quality scorer) pays here in proportion to the edge it smears, where the pixel L1
    charges only for the few pixels the rounding moves."""
    total = recon.new_zeros(())
    for dim in (-1, -2):
        n = pixels.shape[dim] - 1
        diff = (recon.diff(dim=dim) - pixels.diff(dim=dim)).abs()
        if weights is None:
            total = total + diff.mean()
        else:
            w = torch.maximum(weights.narrow(dim, 0, n), weights.narrow(dim, 1, n))
            total = total + (diff * w).sum() / (w.sum() * pixels.shape[1])
    return total / 2


def encoder_moments(vae: VideoVAE, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw means [B, 128, F', h, w] and log-variance (broadcast) of the encoder posterior (with gradients)."""
    enc = vae.encoder
    x = enc.conv_in(patchify(pixels, enc.patch_size), causal=True)
    for block in enc.down_blocks:
        x = block(x, causal=True)
    out = enc.conv_out(enc.conv_act(enc.conv_norm_out(x)), causal=True)
    mean, logvar = out[:, : enc.latent_channels], out[:, enc.latent_channels :]
    return mean, logvar.clamp(-30.0, LOGVAR_MAX).expand_as(mean)


def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


@torch.no_grad()
def track_statistics(vae: VideoVAE, mean: torch.Tensor) -> None:
    """EMA of the per-channel mean and std of the raw latent means into ``per_channel_statistics``."""
    stats = vae.per_channel_statistics
    m = mean.detach().transpose(0, 1).flatten(1)  # [B, C, F, h, w] -> [C, N]
    mu, sd = m.mean(dim=1), m.std(dim=1).clamp(min=1e-3)
    for name, value in (("mean-of-means", mu), ("std-of-means", sd)):
        buf = stats.get_buffer(name)
        buf.mul_(1 - STATS_MOMENTUM).add_(STATS_MOMENTUM * value)


@torch.no_grad()
def track_audio_statistics(vae: AudioVAE, mean: torch.Tensor) -> None:
    """EMA of the per-feature mean and std of the audio latent means over (c f) token features."""
    tokens = mean.detach().permute(0, 2, 1, 3).flatten(2).flatten(0, 1)  # [B, C, T, F] -> [B*T, C*F]
    stats = vae.per_channel_statistics
    mu, sd = tokens.mean(dim=0), tokens.std(dim=0).clamp(min=1e-3)
    for name, value in (("mean-of-means", mu), ("std-of-means", sd)):
        buf = stats.get_buffer(name)
        buf.mul_(1 - STATS_MOMENTUM).add_(STATS_MOMENTUM * value)


def _randint(gen: torch.Generator, high: int) -> int:
    return int(torch.randint(high, (1,), generator=gen))


def _px(native: int, fraction: float) -> int:
    """A view's size in pixels: a multiple of the VAE's 32-px cell."""
    return max(32, round(native * fraction / 32) * 32)


def _clip_index(gen: torch.Generator, dataset: int) -> int:
    return _randint(gen, dataset)


# (rendered size, crop size, frames) in units of the native size. Session 3 trained on 64-px crops only (2 x 2
# latent cells, every cell a border cell): tiled 64-px crops reconstructed a 256-px frame at L1 0.05-0.07 while
# the whole frame came out at 0.19 with ghost copies of the shapes one cell away (docs/pocket.md). Whole frames at
# both stage sizes (the transformer's latents are encodes of 128- and 256-px renders) and 128-px crops fix that.
View = tuple[float, float, int]
WHOLE_FRAME_VIEWS: tuple[View, ...] = ((1.0, 1.0, 1), (0.5, 0.5, 9), (1.0, 0.5, 9), (0.5, 0.5, 17))
CROP_VIEWS: tuple[View, ...] = ((1.0, 0.25, 1), (1.0, 0.25, 9), (1.0, 0.25, 17))  # sessions 1-3


def parse_views(text: str) -> tuple[View, ...]:
    """``"1:1:1,0.5:0.5:9"`` -> views (rendered size, crop size as fractions of the native size, frames)."""
    views = []
    for item in text.split(","):
        render, crop, frames = item.split(":")
        view = (float(render), float(crop), int(frames))
        if not (0 < view[1] <= view[0] and (view[2] - 1) % 8 == 0 and view[2] > 0):
            raise ValueError(f"view {item!r}: need 0 < crop <= render and frames = 1 + 8k")
        views.append(view)
    return tuple(views)


class VideoVAETask:
    name = "video-vae"

    def __init__(
        self,
        spec: PocketSpec,
        source: ClipSource,
        *,
        batch: int = 2,
        views: tuple[View, ...] = WHOLE_FRAME_VIEWS,
        dataset: int = 1 << 20,
        seed: int = 0,
        freeze_encoder: bool = False,
        fg_weight: float = 0.0,
        edge_weight: float = 0.0,
    ) -> None:
        self.spec, self.source, self.batch, self.dataset = spec, source, batch, dataset
        self.views, self.view = views, 0
        self.fg_weight, self.edge_weight = fg_weight, edge_weight
        self.vae = spec.build("video_vae", seed)
        # decoder-only fine-tuning: the encoder and the latent statistics (the latent space later runs are
        # trained in) stay exactly as they are
        self.freeze_encoder = freeze_encoder
        self.vae.encoder.requires_grad_(not freeze_encoder)

    def modules(self) -> Mapping[str, torch.nn.Module]:
        return {"video_vae": self.vae}

    def pixels(self, gen: torch.Generator) -> torch.Tensor:
        s = self.spec
        self.view = _randint(gen, len(self.views))
        render, crop, frames = self.views[self.view]
        h, w = _px(s.height, render), _px(s.width, render)
        ch, cw = _px(s.height, crop), _px(s.width, crop)
        out = []
        for _ in range(self.batch):
            clip = self.source.clip(
                _clip_index(gen, self.dataset), frames=frames, height=h, width=w, fps=s.fps
            )
            y, x = _randint(gen, h - ch + 1), _randint(gen, w - cw + 1)
            out.append(clip.video()[:, :, :, y : y + ch, x : x + cw])
        return torch.cat(out)

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        pixels = self.pixels(gen)
        if self.freeze_encoder:
            with torch.no_grad():
                mean, logvar = encoder_moments(self.vae, pixels)
        else:
            mean, logvar = encoder_moments(self.vae, pixels)
            track_statistics(self.vae, mean)
        eps = torch.randn(mean.shape, generator=gen)
        z = mean + (0.5 * logvar).exp() * eps
        recon = self.vae.decoder(z)
        w = foreground_weights(pixels, self.fg_weight) if self.fg_weight > 0 else None
        if w is not None:
            l1 = ((recon - pixels).abs() * w).sum() / (w.sum() * pixels.shape[1])
            mse = ((recon - pixels).pow(2) * w).sum() / (w.sum() * pixels.shape[1])
        else:
            l1 = (recon - pixels).abs().mean()
            mse = (recon - pixels).pow(2).mean()
        k = kl(mean, logvar)
        parts = {"l1": float(l1.detach()), "mse": float(mse.detach()), "kl": float(k.detach())}
        total = l1 + mse + KL_WEIGHT * k
        if self.edge_weight > 0:
            edge = edge_loss(recon, pixels, w)
            total = total + self.edge_weight * edge
            parts["edge"] = float(edge.detach())
        return total, parts | {"view": float(self.view)}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Logged at each checkpoint: on 16 fixed 256x256 frames, the L1 of the reconstruction and the fraction of
        shapes whose kind the quality scorer reads the same on the reconstruction as on the frame."""
        import numpy as np

        from ltx2stream.quality.video import read_background, read_shapes

        def shapes(frame: torch.Tensor) -> dict[str, str]:
            img = ((frame.clamp(-1, 1).permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
            _, rows = read_background(img)
            return {r.colour: r.kind for r in read_shapes(img, rows)}

        s, l1, hits, total = self.spec, 0.0, 0, 0
        for index in KIND_EVAL_CLIPS:
            x = self.source.clip(index, frames=1, height=s.height, width=s.width, fps=s.fps).video()
            mean, _ = encoder_moments(self.vae, x)
            recon = self.vae.decoder(mean)
            l1 += float((recon - x).abs().mean()) / len(KIND_EVAL_CLIPS)
            truth, seen = shapes(x[0, :, 0]), shapes(recon[0, :, 0])
            hits += sum(seen.get(colour) == kind for colour, kind in truth.items())
            total += len(truth)
        return {"l1": round(l1, 5), "kind_match": round(hits / max(1, total), 4), "shapes": total}


# (n_fft, hop) at 24 kHz. The 4096-point resolution (5.9 Hz bins; added in session 6) is the one nearest to what
# the quality scorers read (one FFT over a whole window, a tone's peak against its +-40 Hz neighbourhood): it
# saw the background hums of the time, 70-145 Hz in 15 Hz steps (100 Hz apart since session 8), as separate
# sharp peaks. With 256-1024 points only, the
# vocoder of step 1 759, fed the true mel, made neither the hums nor most shape tones (docs/pocket.md).
STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64), (4096, 1024))


# Floor of the STFT magnitudes in the log-magnitude term. The world's sounds are pure tones, hums and clicks over
# digital silence: with a floor of 1e-5 the silent bins (most of them, ~-11.5 in log) dominated the term and the
# vocoder learned to be quiet (~18 dB under the clips, tone peaks at 1/100 of their amplitude: a local optimum
# where spectral convergence sits at 1). A tone peak is ~20 at 1 024 points; 1e-2 keeps 60 dB of range.
STFT_FLOOR = 1e-2


def stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: log-magnitude L1 (magnitudes floored at ``STFT_FLOOR``) + spectral convergence,
    averaged over ``STFT_RESOLUTIONS``."""
    total = pred.new_zeros(())
    p, t = pred.flatten(0, 1), target.flatten(0, 1)
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft)
        sp = torch.stft(p, n_fft, hop, window=window, return_complex=True).abs()
        st = torch.stft(t, n_fft, hop, window=window, return_complex=True).abs()
        log_mag = (sp.clamp(min=STFT_FLOOR).log() - st.clamp(min=STFT_FLOOR).log()).abs().mean()
        total = total + log_mag + torch.linalg.norm(st - sp) / torch.linalg.norm(st).clamp(min=1e-8)
    return total / len(STFT_RESOLUTIONS)


# Weight of the log-mel L1 between the vocoder's output and the target (HiFi-GAN's own reconstruction loss, on the
# mel the vocoder reads): coarse in frequency, so a tone a few Hz off still counts as the tone. With the STFT
# terms alone a mistuned peak scores worse than none (two wrong bins at 4 096 points), and the vocoder drifted
# quiet: -24 dB against the clips at 900 steps, -19 dB with this term (session 7, docs/pocket.md "The vocoder").
VOCODER_MEL_WEIGHT = 1.0

# Weight of the STFT loss of the channels' mean (the mid signal). The STFT terms above are magnitudes per
# channel: they leave the phase between the left and right outputs free, and a sound the two channels share (the
# world's hums are centred; so is any mono source) may come out in anti-phase, loud in each channel and gone in
# any mix of them. vocoder-v4 did exactly that (session 10: hums at 12-65 per channel, 0.3 in the mono mix the
# scorers read, against 630-680 in the clip). The mid term charges for it.
VOCODER_MID_WEIGHT = 1.0


def vocoder_loss(
    front_end: MelFrontEnd, pred: torch.Tensor, target: torch.Tensor, rate: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """``stft_loss`` per channel + ``VOCODER_MID_WEIGHT`` x ``stft_loss`` of the channels' mean +
    ``VOCODER_MEL_WEIGHT`` x log-mel L1 of two waveforms [B, 2, n] at ``rate``."""
    m = min(pred.shape[-1], target.shape[-1])
    pred, target = pred[..., :m], target[..., :m]
    stft = stft_loss(pred, target)
    mid = stft_loss(pred.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True))
    with torch.no_grad():
        mel_target = front_end(target, rate)
    mel = (front_end(pred, rate) - mel_target).abs().mean()
    return stft + VOCODER_MID_WEIGHT * mid + VOCODER_MEL_WEIGHT * mel, {
        "vocoder_stft": float(stft.detach()),
        "vocoder_mid": float(mid.detach()),
        "vocoder_mel": float(mel.detach()),
    }


def vocoder_chunk_loss(
    vocoder: torch.nn.Module,
    front_end: MelFrontEnd,
    mel: torch.Tensor,
    wave: torch.Tensor,
    rate: int,
    frames: int,
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``vocoder_loss`` of the vocoder on a random chunk of ``frames`` ground-truth mel frames (64 = 0.64 s) of
    ``mel`` [B, 2, T, 64] against the same span of ``wave`` [B, 2, n] at ``rate``, resampled to the output rate."""
    start = _randint(gen, max(1, mel.shape[2] - frames))
    chunk = mel[:, :, start : start + frames]
    hop, out_rate = int(vocoder.hop_product), int(vocoder.output_sampling_rate)
    target = resample(wave, rate, out_rate)[:, :, start * hop : (start + chunk.shape[2]) * hop]
    return vocoder_loss(front_end, vocoder(chunk), target, out_rate)


class AudioTask:
    """Audio VAE (mel reconstruction) and vocoder (mel -> waveform) trained side by side on the same clips."""

    name = "audio"

    def __init__(
        self,
        spec: PocketSpec,
        source: ClipSource,
        *,
        batch: int = 4,
        seconds: float = 2.0,
        vocoder_frames: int = 64,
        dataset: int = 1 << 20,
        seed: int = 0,
        freeze_encoder: bool = False,
        vocoder: bool = True,
    ) -> None:
        self.spec, self.source, self.batch, self.dataset = spec, source, batch, dataset
        self.vocoder_frames = vocoder_frames
        self.frames = 1 + 8 * max(1, round(seconds * spec.fps / 8))
        self.vae: AudioVAE = spec.build("audio_vae", seed)  # type: ignore[assignment]
        self.freeze_encoder = freeze_encoder
        self.vae.encoder.requires_grad_(not freeze_encoder)
        # without: the audio VAE alone (the vocoder has its own run, ``VocoderTask``)
        self.vocoder = spec.build("vocoder", seed + 1) if vocoder else None
        self.front_end = MelFrontEnd(self.vae.cfg)

    def modules(self) -> Mapping[str, torch.nn.Module]:
        if self.vocoder is None:
            return {"audio_vae": self.vae}
        return {"audio_vae": self.vae, "vocoder": self.vocoder}

    def clips(self, gen: torch.Generator) -> list[Clip]:
        s = self.spec
        return [self.source.clip(_clip_index(gen, self.dataset), frames=self.frames, height=64, width=64, fps=s.fps)
                for _ in range(self.batch)]  # fmt: skip

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        clips = self.clips(gen)
        rate = clips[0].sample_rate
        wave = torch.cat([c.waveform() for c in clips])
        with torch.no_grad():
            mel = self.front_end(wave, rate)  # [B, 2, T, 64]
        t = (mel.shape[2] - 1) // 4 * 4 + 1  # the causal decoder returns 4 T_lat - 3 frames
        mel = mel[:, :, :t]
        with torch.set_grad_enabled(not self.freeze_encoder):
            moments = self.vae.encoder(mel)
        zc = self.vae.cfg.z_channels
        mean, logvar = moments[:, :zc], moments[:, zc:].clamp(-30.0, LOGVAR_MAX)
        if not self.freeze_encoder:
            track_audio_statistics(self.vae, mean)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen)
        recon = self.vae.decoder(z)[:, :, :t]
        mel_l1 = (recon - mel).abs().mean()
        k = kl(mean, logvar)
        if self.vocoder is None:
            return mel_l1 + KL_WEIGHT * k, {"mel_l1": float(mel_l1.detach()), "kl": float(k.detach())}
        voc, logged = vocoder_chunk_loss(
            self.vocoder, self.front_end, mel, wave, rate, self.vocoder_frames, gen
        )
        total = mel_l1 + KL_WEIGHT * k + voc
        return total, {"mel_l1": float(mel_l1.detach()), "kl": float(k.detach()), **logged}


# Fixed clips of the vocoder evaluation. The vocoder draws its training clips from 2**20 indices, so one of these
# comes up about once in 87 000 samples: held out in practice, not by construction (the indices are kept so the
# evaluation stays comparable with the session-7 side-by-side runs, which used the same clips).
SOUND_EVAL_CLIPS = tuple(range(200000, 200012))
# A pitch counts as rendered when the vocoder's output holds it at half the input's amplitude or more.
PITCH_RENDERED = 0.5


class VocoderTask:
    """The vocoder alone: ground-truth log-mel chunks -> 24 kHz waveform, ``vocoder_loss``. Separate from the audio VAE
    (its input is the true mel, not the VAE's): its own run, batch, schedule and gradient clip (session 7: inside
    the joint audio run its output sat ~18 dB below the clips' level with no tone peaks; docs/pocket.md)."""

    name = "vocoder"

    def __init__(
        self,
        spec: PocketSpec,
        source: ClipSource,
        *,
        batch: int = 4,
        seconds: float = 0.7,
        vocoder_frames: int = 64,
        dataset: int = 1 << 20,
        seed: int = 0,
    ) -> None:
        self.spec, self.source, self.batch, self.dataset = spec, source, batch, dataset
        self.vocoder_frames = vocoder_frames
        self.frames = 1 + 8 * max(1, round(seconds * spec.fps / 8))
        self.vocoder = spec.build("vocoder", seed + 1)
        self.front_end = MelFrontEnd(spec.audio_vae_config())

    def modules(self) -> Mapping[str, torch.nn.Module]:
        return {"vocoder": self.vocoder}

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.spec
        clips = [self.source.clip(_clip_index(gen, self.dataset), frames=self.frames, height=32, width=32, fps=s.fps)
                 for _ in range(self.batch)]  # fmt: skip
        rate = clips[0].sample_rate
        wave = torch.cat([c.waveform() for c in clips])
        with torch.no_grad():
            mel = self.front_end(wave, rate)
        return vocoder_chunk_loss(self.vocoder, self.front_end, mel, wave, rate, self.vocoder_frames, gen)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """What the quality scorers hear, on the true mel of ``SOUND_EVAL_CLIPS`` (2 s each): the fraction whose
        tone set (``quality.audio.tones``) and hum (``hum``) match the clip's own waveform's, and the output level
        against the clip's (dB; 0 = as loud)."""
        from ltx2stream.quality.audio import hum, loudness_db, tones

        s, out_rate = self.spec, self.vocoder.output_sampling_rate
        tone_hits = hum_hits = 0
        level = 0.0
        for index in SOUND_EVAL_CLIPS:
            clip = self.source.clip(index, frames=25, height=32, width=32, fps=s.fps)
            wave = clip.waveform()
            truth = wave[0].numpy()
            heard = self.vocoder(self.front_end(wave, clip.sample_rate))[0].numpy()
            tone_hits += tones(truth, clip.sample_rate) == tones(heard, out_rate)
            hum_hits += hum(truth, clip.sample_rate) == hum(heard, out_rate)
            level += (loudness_db(heard) - loudness_db(truth)) / len(SOUND_EVAL_CLIPS)
        n = len(SOUND_EVAL_CLIPS)
        response = self.pitch_response()
        rendered = sum(r >= PITCH_RENDERED for r in response.values()) / len(response)
        return {"tones_match": round(tone_hits / n, 4), "hum_match": round(hum_hits / n, 4),
                "level_db": round(level, 2), "pitches_rendered": round(rendered, 4),
                **{f"pitch_{int(f)}": round(r, 3) for f, r in response.items()}}  # fmt: skip

    @torch.no_grad()
    def pitch_response(self, amplitude: float = 0.06, seconds: float = 2.0) -> dict[float, float]:
        """Each pitch of the world (tones and hums) alone: the vocoder fed the true mel of that sine (both channels)
        -> the amplitude of its output at the pitch over the input's (1: rendered as is; session 8 found tones at
        ~1 and hums at ~0 while ``tones_match`` was already 1)."""
        from ltx2stream.quality.audio import _peak, spectrum
        from ltx2stream.world.palette import BACKGROUND_HUM_HZ, KIND_PITCH_HZ

        rate = self.vocoder.output_sampling_rate
        t = torch.arange(round(seconds * rate)) / rate
        edge = rate // 10  # the ends see the vocoder's zero padding
        out = {}
        for f in sorted({*KIND_PITCH_HZ.values(), *BACKGROUND_HUM_HZ.values()}):
            wave = (amplitude * torch.sin(2 * torch.pi * f * t)).expand(1, 2, -1).contiguous()
            heard = self.vocoder(self.front_end(wave, rate))[0].numpy()[:, edge:-edge]
            truth = wave[0].numpy()[:, edge:-edge]
            (sh, fh), (st, ft) = spectrum(heard, rate), spectrum(truth, rate)
            out[f] = _peak(sh, fh, f)[0] / max(_peak(st, ft, f)[0], 1e-12)
        return out


class UpsamplerTask:
    """Spatial x2 upsampler on the raw means of a frozen VAE (the space ``upsample_video`` runs it in)."""

    name = "upsampler"

    def __init__(
        self,
        spec: PocketSpec,
        source: ClipSource,
        vae: VideoVAE,
        *,
        batch: int = 2,
        frames: int = 9,
        dataset: int = 1 << 20,
        seed: int = 0,
        latents: LatentCache | None = None,
    ) -> None:
        self.spec, self.source, self.batch, self.frames, self.dataset = spec, source, batch, frames, dataset
        self.vae = vae.eval().requires_grad_(False)
        self.upsampler = spec.build("upsampler", seed)
        self.latents = latents  # the transformer's cache: both stage sizes of clips 0..dataset-1, normalised

    def modules(self) -> Mapping[str, torch.nn.Module]:
        return {"upsampler": self.upsampler}

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.spec
        lows, highs = [], []
        for _ in range(self.batch):
            i = _clip_index(gen, self.dataset)
            kw = {"frames": self.frames, "fps": s.fps}
            if self.latents is not None:  # the same encoder means, cached (normalised) by the transformer run
                lows.append(self.vae.denormalize(self.latents.get(i, True).video[None]))
                highs.append(self.vae.denormalize(self.latents.get(i, False).video[None]))
                continue
            with torch.no_grad():
                lo = self.source.clip(i, height=s.height // 2, width=s.width // 2, **kw).video()
                hi = self.source.clip(i, height=s.height, width=s.width, **kw).video()
                lows.append(encoder_moments(self.vae, lo)[0])
                highs.append(encoder_moments(self.vae, hi)[0])
        low, high = torch.cat(lows), torch.cat(highs)
        pred = self.upsampler(low)
        scale = self.vae.per_channel_statistics.get_buffer("std-of-means")[None, :, None, None, None]
        mse = F.mse_loss(pred / scale, high / scale)  # in normalised units
        return mse, {"mse": float(mse.detach())}
