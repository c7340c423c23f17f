"""Training task of the AV transformer + text path, the way the official trainer's extension modes train.

Per sample (rectified flow, as ``ltx_trainer``): sigma ~ shifted logit-normal, ``x_t = (1 - sigma) x0 + sigma eps``,
target ``v = eps - x0``, per-token timestep ``sigma``. Conditioning is drawn per sample:

* text only (40 %; 25 % until step ~2 500 of the first run, when its text gap was still zero: see
  ``text_gap``);
* first-frame image (15 %; was 20 %): latent frame 0 clean;
* continuation (45 %; was 55 %): a one-frame anchor (latent frame 0, a one-pixel-frame latent of the causal VAE) plus
  ``k`` carried latent frames, k = 1..2 (k = 0 is the image case), and with p = 0.8 the audio prefix that
  covers the same pixel frames.

Clean tokens stay in place with their normal RoPE positions, get timestep 0 and carry no loss (the official
prefix conditioning; the pipeline's ``VideoLatentCondition`` / ``AudioLatentCondition`` at strength 1 give the
DiT exactly this input). Each step trains one stage resolution (``P_HALF``: half size 80 %, sigma over the whole
range, shifted toward 1 as the official sampler shifts it, ``HALF_SIGMA_MU``; full size 20 %, sigma mostly below
``STAGE2_SIGMA_CEILING``; 60 / 40 % before step 10 490). Clips with a scene change right after the carried span teach "new prompt over a
carried tail": the caption is the one in force at the clip's end. 10 % of captions are dropped (empty prompt)
for guidance.

Latents of the frozen codecs are cached per clip and stage in ``<cache>/latents``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ltx2stream.models.audio import AudioVAE, MelFrontEnd
from ltx2stream.models.text import TextEmbeddings
from ltx2stream.models.transformer import LTXAVModel
from ltx2stream.models.transformer.modality import Modality
from ltx2stream.models.transformer.positions import (
    audio_positions,
    patchify_audio,
    patchify_video,
    video_positions,
)
from ltx2stream.models.video_vae import VideoVAE
from ltx2stream.pocket.data import Clip, ClipSource, mix_seed
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.tasks_codec import FOREGROUND_THRESHOLD
from ltx2stream.pocket.text_cache import TextCache
from ltx2stream.types import AUDIO_LATENTS_PER_SECOND

# Extra weight of the video loss on latent cells that hold part of a shape (``foreground_cells`` > 0), from step
# ~14 600 of the first run: shapes touch 1-4 of the 64 cells of a full-size frame, and at step 14 103 the model
# drew the prompted backgrounds and let every shape, even the one its first frame was given, fade out within a
# segment (docs/pocket.md "Shapes fade: the foreground weight"). The loss is the weighted mean.
FG_WEIGHT = 4.0
P_TEXT_ONLY, P_IMAGE = 0.40, 0.15
P_AUDIO_PREFIX = 0.8
P_DROP_CAPTION = 0.1
# Half-size (stage-1) share of the steps: 0.6 until step 10 490 of the first run, then 0.8. A full-size step
# costs ~3.1x a half-size one (256 + 52 tokens against 64 + 52; measured forward + backward at batch 8, one
# thread), so at 0.6 two thirds of the compute went to stage 2, which only refines from sigma 0.6 what stage 1
# decided; at 0.8 stage 1 gets ~1.7x the samples per hour (session 7: the scene itself, colour and shapes, is
# what the samples lack; docs/pocket.md).
P_HALF = 0.8
# Stage 2 of the pocket preset starts from the upsampled stage-1 latent re-noised to 0.6: at full size the DiT
# only ever denoises from there down, so full-size samples draw sigma mostly below this (stage 1, half size,
# covers the whole range).
STAGE2_SIGMA_CEILING = 0.7
# Full-size share of the steps with ``one_stage`` (the one-stage preset never runs the half size; half-size steps
# stay, at a third of the cost of a full-size one, so what stage 1 learned is kept for the two-stage preset).
P_ONE_STAGE_FULL = 0.6
# Half-size (stage-1) sigmas: the official sampler's logit mean at the shift of the preset's stage-1 schedule
# (``shifted_schedule(8, tokens=1024)``: 0.95, the line's value at 1 024 tokens), so training spends its samples
# where sampling spends its steps: P(sigma > 0.85) ~ 0.2, against ~ 0.06 unshifted (session 6: the unshifted
# sampler left the video stream's use of its prompt untrained, docs/pocket.md "Why the video stream ignored its
# prompt").
HALF_SIGMA_MU = 0.95
# ... and this share of them at sigma = 1 exactly: pure noise, the first step of every stage-1 sampling, where the
# prompt alone decides the scene. The shifted sampler puts only ~2 % above 0.97 (schedules that almost never train
# on pure noise sample washed-out averages); at step 8 554 samples were a flat grey whatever the prompt, and at
# 8 811 the x0 the model predicted at sigma 1 was no nearer 8 clips' mean latents than the dataset mean
# (docs/pocket.md "Pure noise", with the caveat measured after it).
P_PURE_NOISE = 0.1


@dataclass(frozen=True)
class Sample:
    video: torch.Tensor  # [128, L, h, w] normalised
    audio: torch.Tensor  # [8, Ta, 16] normalised
    caption: str
    fg: torch.Tensor  # [L, h, w]: share of shape pixels per latent cell (``foreground_cells``)


# Pixels per latent cell side at which the cache renders a clip for its foreground cells (cheap; the world draws
# the same scene at any size).
FG_RENDER_CELL = 8


def foreground_cells(frames: np.ndarray, cells_h: int, cells_w: int, latent_frames: int) -> torch.Tensor:
    """uint8 [F, H, W, 3] -> [latent_frames, cells_h, cells_w]: per latent cell, the largest share of shape pixels
    (``FOREGROUND_THRESHOLD`` off their row's median, as the VAE task reads them) over the pixel frames it stands
    for (frame 0 alone, then 8 per latent frame)."""
    x = (
        torch.from_numpy(np.ascontiguousarray(frames)).float().permute(3, 0, 1, 2) / 127.5 - 1.0
    )  # [3, F, H, W]
    background = x.median(dim=-1, keepdim=True).values
    fg = ((x - background).abs().amax(dim=0) > FOREGROUND_THRESHOLD).float()  # [F, H, W]
    share = torch.nn.functional.adaptive_avg_pool2d(fg[:, None], (cells_h, cells_w))[:, 0]  # [F, h, w]
    out = [share[:1].amax(0)] + [share[1 + 8 * (k - 1) : 1 + 8 * k].amax(0) for k in range(1, latent_frames)]
    return torch.stack(out)


def audio_latents_for(frames: int, fps: float) -> int:
    return round(frames / fps * AUDIO_LATENTS_PER_SECOND)


def change_latent_frame(index: int, frames: int) -> int | None:
    """The latent frame ``1 + j`` from which clip ``index``'s scene change shows (None: no change): half of the
    clips change right after the anchor + ``j`` = 0..2 carried latent frames (``change_time``)."""
    g = torch.Generator().manual_seed(mix_seed(index, 0xC4A))
    if float(torch.rand((), generator=g)) < 0.5:
        return None
    return 1 + int(torch.randint(max(1, min(3, (frames - 1) // 8)), (1,), generator=g))


def change_time(index: int, fps: float, frames: int) -> float | None:
    """When clip ``index`` changes scene (None: it does not): half a pixel frame after the first pixel frame of
    latent frame ``change_latent_frame`` (pixel frames ``8 j + 1 .. 8 j + 8``), so its later 7 show the new scene."""
    latent = change_latent_frame(index, frames)
    return None if latent is None else (1 + 8 * (latent - 1)) / fps + 0.5 / fps


# entries written before they carried a ``clip_key`` (sessions 1-12) were drawn by the world's first sampler
LEGACY_CLIP_KEY = "world specs 1"


class LatentCache:
    """Clip ``index`` at stage ``half``/``full`` -> normalised latents + caption, encoded once by frozen codecs."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        spec: PocketSpec,
        source: ClipSource,
        vae: VideoVAE,
        audio_vae: AudioVAE,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spec, self.source = spec, source
        self.vae = vae.eval().requires_grad_(False)
        self.audio_vae = audio_vae.eval().requires_grad_(False)
        self.front_end = MelFrontEnd(audio_vae.cfg)
        # what an entry's audio latents follow from: the source's sound and the audio encoder + statistics
        codec = hashlib.sha256()
        for name, tensor in sorted(audio_vae.state_dict().items()):
            if not name.startswith("decoder."):
                codec.update(name.encode() + tensor.detach().float().numpy().tobytes())
        self.audio_key = f"{source.sound_key} / audio codec {codec.hexdigest()[:16]}"
        self.clip_key = source.clip_key
        self._listed: dict[tuple[bool, int], tuple[float, list[int]]] = {}  # ``cached``: (when, clips)

    def cached(self, half: bool, dataset: int, max_age_s: float = 60.0) -> list[int]:
        """Clips ``0..dataset-1`` with an entry at this stage size, sorted (the directory is listed again once the
        list is older than ``max_age_s``: a prefill in another process fills it meanwhile)."""
        now = time.monotonic()
        key = (half, dataset)
        listed = self._listed.get(key)
        if listed is None or now - listed[0] > max_age_s:
            prefix = "half-" if half else "full-"
            found = []
            for path in self.dir.glob(f"{prefix}*.pt"):
                stem = path.stem[len(prefix) :]
                if stem.isdigit() and int(stem) < dataset:
                    found.append(int(stem))
            listed = (now, sorted(found))
            self._listed[key] = listed
        return listed[1]

    def get(self, index: int, half: bool) -> Sample:
        path = self.dir / f"{'half' if half else 'full'}-{index}.pt"
        s = self.spec
        record = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
        if record is not None and record.get("clip_key", LEGACY_CLIP_KEY) != self.clip_key:
            record = None  # the index draws another clip now (the world's sampler changed): encoded again
        if record is not None:
            changed = False
        else:
            clip = self._clip(index, *((s.height // 2, s.width // 2) if half else (s.height, s.width)))
            with torch.no_grad():
                video = self.vae.encode(clip.video())[0]
                audio = self._encode_audio(clip)
            caption = clip.caption_at((s.frames - 1) / s.fps)
            record = {"video": video, "audio": audio, "audio_key": self.audio_key, "caption": caption,
                      "clip_key": self.clip_key}  # fmt: skip
            changed = True
        if record.get("audio_key") != self.audio_key:
            # the world's sound or the audio codec changed since (both happened in session 8): the video
            # latents and caption stand, the audio is re-encoded (the clip's audio does not depend on its
            # size, so it is rendered small)
            with torch.no_grad():
                record["audio"] = self._encode_audio(self._clip(index, 32, 32))
            record["audio_key"], changed = self.audio_key, True
        if "fg" not in record:  # new entries, and those written before session 8
            _, frames, h, w = record["video"].shape
            clip = self._clip(index, FG_RENDER_CELL * h, FG_RENDER_CELL * w)
            record["fg"], changed = foreground_cells(clip.frames, h, w, frames), True
        if changed:
            self._save(path, record)
        return Sample(record["video"], record["audio"], record["caption"], record["fg"])

    def _clip(self, index: int, height: int, width: int) -> Clip:
        s = self.spec
        return self.source.clip(
            index,
            frames=s.frames,
            height=height,
            width=width,
            fps=s.fps,
            change_at=change_time(index, s.fps, s.frames),
        )

    def _encode_audio(self, clip: Clip) -> torch.Tensor:
        s = self.spec
        mel = self.front_end(clip.waveform(), clip.sample_rate)
        audio = self.audio_vae.encode(mel)[0]
        ta = audio_latents_for(s.frames, s.fps)
        return torch.nn.functional.pad(audio[:, :ta], (0, 0, 0, max(0, ta - audio.shape[1])))

    def _save(self, path: Path, record: dict[str, object]) -> None:
        record = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in record.items()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # a prefill process may write beside us
        torch.save(record, tmp)
        os.replace(tmp, path)


# Clips no dataset reaches (indices far above any ``--dataset``): each checkpoint's evaluation scores the model on
# them beside 8 of its training clips, at the same sigmas and noise, so that memorising the training clips shows
# as a gap between the two (``heldout_video``, ``train_video``). The text cache holds their captions too.
HELDOUT_CLIPS: tuple[int, ...] = tuple(range(1_000_003, 1_000_003 + 8 * 37, 37))
HELDOUT_SIGMAS: tuple[float, ...] = (0.95, 0.4)


def dataset_captions(spec: PocketSpec, source: ClipSource, dataset: int, *, size: int = 32) -> list[str]:
    """The distinct captions the transformer task draws from clips ``0..dataset-1`` (the one in force at each
    clip's end, as ``LatentCache`` stores it), those of the held-out evaluation clips (``HELDOUT_CLIPS``) and the
    dropped caption "". Clips are rendered at ``size`` pixels: the world's captions follow from the clip's seed,
    not from its size (a caption the cache lacks is encoded on first use anyway)."""
    captions = {""}
    for index in (*range(dataset), *HELDOUT_CLIPS):
        clip = source.clip(
            index,
            frames=spec.frames,
            height=size,
            width=size,
            fps=spec.fps,
            change_at=change_time(index, spec.fps, spec.frames),
        )
        captions.add(clip.caption_at((spec.frames - 1) / spec.fps))
    return sorted(captions)


def sample_sigma(gen: torch.Generator, n: int, mu: float = 0.0, ceiling: float = 1.0) -> torch.Tensor:
    """The official trainer's stretched shifted logit-normal (``ltx_trainer`` ``ShiftedLogitNormalTimestepSampler``):
    ``sigmoid(N(mu, 1))`` stretched so its 0.5th..99.9th percentiles span (0, 1), small values reflected about
    1e-3; here scaled by ``ceiling``; 10 % uniform over (0, 1) for coverage of the ends."""
    eps = 1e-3
    raw = torch.sigmoid(torch.randn(n, generator=gen) + mu)
    lo, hi = (torch.sigmoid(torch.tensor(mu + z)) for z in (-2.5758, 3.0902))
    stretched = (raw - lo) / (hi - lo)
    stretched = torch.where(stretched >= eps, stretched, 2 * eps - stretched).clamp(0.0, 1.0)
    uniform = (1 - eps) * torch.rand(n, generator=gen) + eps
    pick = torch.rand(n, generator=gen) < 0.1
    return torch.where(pick, uniform, ceiling * stretched).clamp(eps, 1.0)


class TransformerTask:
    name = "transformer"

    def __init__(
        self,
        spec: PocketSpec,
        latents: LatentCache,
        text: TextCache,
        *,
        batch: int = 8,
        dataset: int = 1024,
        seed: int = 0,
        audio_weight: float = 1.0,
        fg_weight: float = FG_WEIGHT,
        cached_only: bool = False,
        one_stage: bool = False,
        change_weight: float = 1.0,
    ) -> None:
        self.spec, self.latents, self.text = spec, latents, text
        # ``one_stage`` (session 16: the default preset runs the full size from sigma 1): full-size steps draw
        # sigma as half-size ones do (the shifted logit-normal over the whole range, with the pure-noise share)
        # instead of below STAGE2_SIGMA_CEILING, and take P_ONE_STAGE_FULL of the steps
        self.one_stage = one_stage
        # draw only clips the latent cache holds (a prefill in another process fills it; a new machine's first
        # hours then train at full speed on a growing subset instead of encoding most of every batch)
        self.cached_only = cached_only
        self.batch, self.dataset, self.audio_weight = batch, dataset, audio_weight
        self.fg_weight = fg_weight
        # weight of the generated video tokens of a carried-prefix sample whose clip changes scene at or after
        # its first generated latent frame (a new prompt over a carried tail: the session's steer), against 1
        # for the other samples (session 17: a recolour over a carried shape took up to 8 segments in one stage)
        self.change_weight = change_weight
        self.model: LTXAVModel = spec.build("transformer", seed)  # type: ignore[assignment]
        self.projection = spec.build("text", seed + 1)
        # what ``loss`` calls: the model itself, or a compiled wrapper of it (``train transformer --compile``);
        # checkpoints hold ``self.model``'s state either way
        self.denoiser: Callable[[Modality, Modality], tuple[torch.Tensor | None, torch.Tensor | None]] = (
            self.model
        )

    def modules(self) -> Mapping[str, torch.nn.Module]:
        return {"transformer": self.model, "text": self.projection}

    def conditioning(self, gen: torch.Generator) -> tuple[int, int]:
        """(clean leading latent frames, clean leading audio latents) for one sample."""
        u = float(torch.rand((), generator=gen))
        if u < P_TEXT_ONLY:
            return 0, 0
        if u < P_TEXT_ONLY + P_IMAGE:
            return 1, 0
        k = 1 + int(torch.randint(2, (1,), generator=gen))
        audio = float(torch.rand((), generator=gen)) < P_AUDIO_PREFIX
        return 1 + k, audio_latents_for(1 + 8 * k, self.spec.fps) if audio else 0

    def draws_half(self, gen: torch.Generator) -> bool:
        """Whether one step trains the half size: P_HALF of the steps, 1 − P_ONE_STAGE_FULL with ``one_stage``."""
        return float(torch.rand((), generator=gen)) < (1.0 - P_ONE_STAGE_FULL if self.one_stage else P_HALF)

    def sample_sigmas(self, gen: torch.Generator, half: bool) -> torch.Tensor:
        """One batch's sigmas: over the whole range (with pure noise) at half size, and at full size with
        ``one_stage``; below STAGE2_SIGMA_CEILING at full size otherwise (the refine stage's range)."""
        if half or self.one_stage:
            sigma = sample_sigma(gen, self.batch, HALF_SIGMA_MU, 1.0)
            return torch.where(torch.rand(self.batch, generator=gen) < P_PURE_NOISE, 1.0, sigma)
        return sample_sigma(gen, self.batch, 0.0, STAGE2_SIGMA_CEILING)

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        s, b = self.spec, self.batch
        half = self.draws_half(gen)
        pool = self.latents.cached(half, self.dataset) if self.cached_only else []
        if pool:
            picks = [pool[int(torch.randint(len(pool), (1,), generator=gen))] for _ in range(b)]
        else:
            picks = [int(torch.randint(self.dataset, (1,), generator=gen)) for _ in range(b)]
        samples = [self.latents.get(i, half) for i in picks]
        captions = [
            "" if float(torch.rand((), generator=gen)) < P_DROP_CAPTION else x.caption for x in samples
        ]
        x0v = patchify_video(torch.stack([x.video for x in samples]))  # [B, Tv, 128]
        x0a = patchify_audio(torch.stack([x.audio for x in samples]))  # [B, Ta, 128]
        _, frames, h, w = samples[0].video.shape
        sigma = self.sample_sigmas(gen, half)
        ev, ea = torch.randn(x0v.shape, generator=gen), torch.randn(x0a.shape, generator=gen)
        mv, ma = torch.ones(x0v.shape[:2]), torch.ones(x0a.shape[:2])
        steered = torch.ones(b)  # ``change_weight`` on the samples that steer over a carried tail
        for i in range(b):
            clean_frames, clean_audio = self.conditioning(gen)
            clean_frames = min(clean_frames, frames - 1)  # at least one generated latent frame
            mv[i, : clean_frames * h * w] = 0.0
            ma[i, : min(clean_audio, x0a.shape[1] - 1)] = 0.0
            if clean_frames >= 2:
                change = change_latent_frame(picks[i], s.frames)
                if change is not None and change >= clean_frames:
                    steered[i] = self.change_weight
        xv = x0v + (sigma[:, None, None] * mv[..., None]) * (ev - x0v)
        xa = x0a + (sigma[:, None, None] * ma[..., None]) * (ea - x0a)
        hidden, mask = self.text.batch(captions)
        ctx = self.projection(hidden, mask)
        video = Modality(
            xv, sigma[:, None] * mv, sigma, video_positions(frames, h, w, s.fps, batch=b), ctx.video
        )
        audio = Modality(
            xa, sigma[:, None] * ma, sigma.clone(), audio_positions(x0a.shape[1], batch=b), ctx.audio
        )
        vv, va = self.denoiser(video, audio)
        assert vv is not None and va is not None
        fg = (torch.stack([x.fg for x in samples]).flatten(1) > 0).float()  # [B, Tv], patchify_video's order
        err_v = _token_mse(vv, ev - x0v)
        lv = _weighted_mean(err_v, mv * steered[:, None] * (1.0 + self.fg_weight * fg))
        la = _weighted_mean(_token_mse(va, ea - x0a), ma)
        total = lv + self.audio_weight * la
        err_v = err_v.detach()
        return total, {"video": float(_weighted_mean(err_v, mv)), "video_fg": float(_weighted_mean(err_v, mv * fg)),
                       "audio": float(la.detach()), "half": float(half)}  # fmt: skip

    def evaluate(self) -> dict[str, float]:
        """Logged at each checkpoint (``eval.jsonl``): the text gap on 8 fixed clips, rotated minus own prompt (> 0:
        the model uses its prompt), per stream, at sigma 0.95 (``text_gap_video``, ...) and at sigma 1, pure noise
        (``text_gap_video_1``, ...: the prompt alone)."""
        stride = max(1, self.dataset // 8)
        clips = list(range(0, 8 * stride, stride))[:8]
        gap = self.text_gap(clips, sigmas=(0.95, 1.0))
        out: dict[str, float] = {"sigma": 0.95}
        for key, suffix in (("0.95", ""), ("1", "_1")):
            row = gap[key]
            out.update({f"{k}_{stream}{suffix}": round(v[stream], 5) for k, v in row.items()
                        for stream in ("video", "audio")})  # fmt: skip
            for stream in ("video", "audio"):
                out[f"text_gap_{stream}{suffix}"] = round(row["rotated"][stream] - row["own"][stream], 5)
        # memorising: the own-prompt loss of 8 training clips and of 8 clips no dataset holds, same noise
        for name, group in (("train", clips), ("heldout", list(HELDOUT_CLIPS))):
            for key, row in self.text_gap(group, sigmas=HELDOUT_SIGMAS, prompts=("own",)).items():
                for stream in ("video", "audio"):
                    out[f"{name}_{stream}_{key}"] = round(row["own"][stream], 5)
        return out

    @torch.no_grad()
    def text_gap(
        self,
        clips: list[int],
        sigmas: tuple[float, ...] = (0.95, 0.7, 0.4),
        seed: int = 0,
        prompts: tuple[str, ...] = ("own", "rotated", "empty"),
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Does the model use its prompt? The video and audio loss of the half-size latents of ``clips`` (text
        only, no clean frames) at each sigma, with their own captions (``own``), with the captions rotated by one
        clip (``rotated``) and with the empty prompt (``empty``), those of ``prompts``; the same noise for all.
        Equal losses: the text is ignored."""
        b = len(clips)
        samples = [self.latents.get(i, True) for i in clips]
        gen = torch.Generator().manual_seed(seed)
        x0v = patchify_video(torch.stack([x.video for x in samples]))
        x0a = patchify_audio(torch.stack([x.audio for x in samples]))
        _, frames, h, w = samples[0].video.shape
        ev, ea = torch.randn(x0v.shape, generator=gen), torch.randn(x0a.shape, generator=gen)
        captions = [x.caption for x in samples]
        choices = {"own": captions, "rotated": captions[1:] + captions[:1], "empty": [""] * b}
        contexts = {name: self.projection(*self.text.batch(choices[name])) for name in prompts}
        out: dict[str, dict[str, dict[str, float]]] = {}
        for sig in sigmas:
            xv, xa = x0v + sig * (ev - x0v), x0a + sig * (ea - x0a)
            row: dict[str, dict[str, float]] = {}
            for name, ctx in contexts.items():
                vv, va = self.predict_text_only(xv, xa, float(sig), ctx, (frames, h, w))
                row[name] = {"video": float((vv - (ev - x0v)).pow(2).mean()),
                             "audio": float((va - (ea - x0a)).pow(2).mean())}  # fmt: skip
            out[f"{sig:g}"] = row
        return out

    def predict_text_only(
        self,
        xv: torch.Tensor,
        xa: torch.Tensor,
        sigma: float,
        ctx: TextEmbeddings,
        grid: tuple[int, int, int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's video and audio velocities for patchified noisy latents ``xv`` [B, T, C] / ``xa`` at one
        ``sigma`` for every token (no clean frames), under the projected text ``ctx`` (``.video``, ``.audio``);
        ``grid``: the video latent's (frames, height, width)."""
        b, (frames, h, w) = xv.shape[0], grid
        t = torch.full((b,), sigma)
        video = Modality(xv, t[:, None].expand(b, xv.shape[1]), t,
                         video_positions(frames, h, w, self.spec.fps, batch=b), ctx.video)  # fmt: skip
        audio = Modality(xa, t[:, None].expand(b, xa.shape[1]), t.clone(),
                         audio_positions(xa.shape[1], batch=b), ctx.audio)  # fmt: skip
        vv, va = self.model(video, audio)
        assert vv is not None and va is not None
        return vv, va


def _token_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-token MSE [B, T] of [B, T, C] predictions."""
    return (pred.float() - target).pow(2).mean(dim=-1)


def _weighted_mean(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of per-token ``err`` [B, T] weighted by ``weight`` [B, T] (0: no loss)."""
    return (err * weight).sum() / weight.sum().clamp(min=1e-6)
