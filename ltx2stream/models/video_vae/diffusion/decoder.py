"""The LTX-2.5 diffusion video decoder (``DiffusionVideoDecoder``, spec §1.5), one-shot and chunked in time.

Data flow (channels-last): raw latent [B, 128, T, h, w] -> edge-pad to the NA floor -> replicate the last frame
``trailing_pad`` (2) times -> ``conv_in`` -> stages 1–3 (NA blocks + pixel-shuffle upsampling) -> stage 4 ->
context [B, 8(T+2)−7, H/4, W/4, 128], cropped to ``keep = max(8T−7, K_t⁵)`` frames -> stage 5: from Gaussian
pixels x_T (drawn once for the whole clip with the caller's generator), per Euler step t_i -> t_{i+1}
(t = 1.0, 0.5 -> 0): ``v = model(x, t_i)``, ``x -= (t_i − t_{i+1})·v`` in float32 -> pixels in [-1, 1].

Chunked decode (``decode_chunks``): stages 1–3 run once on the whole latent; stages 4–5 run per range of output
frames on a window widened by each stage's temporal receptive radius (``halo``), then cropped. Every kept frame
then sees the one-shot inputs (same noise slice, same context), so the chunks concatenate to the one-shot decode
up to float rounding (RoPE positions are local to a window, which only shifts both q and k angles). The price is
the recomputed halo: stage 5 costs (chunk + 2·halo₅)/chunk of its one-shot time (halo₅ = steps·depth₅·(K_t⁵//2)
= 16 pixel frames at the released sizes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from ltx2stream.models.timestep import CombinedTimestepEmbedding
from ltx2stream.models.video_vae.diffusion.config import DiffusionDecoderConfig
from ltx2stream.models.video_vae.diffusion.layers import (
    AdaLNZero,
    DiffusionNABlock,
    LinearPixelShuffleUpsample,
    NABlock,
)


@dataclass(frozen=True)
class _Plan:
    """Frame bookkeeping: content frames 8T−7, work frames (after the NA floor pad), stage-5 frames ``keep``."""

    frames: int
    work_frames: int
    keep: int
    height: int  # pixel size of the (floor-padded) canvas
    width: int


class DiffusionVideoDecoder(nn.Module):
    """Keys = the official module keys after the load-time renames (see ``diffusion/loading.py``)."""

    def __init__(self, cfg: DiffusionDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, hd = cfg.stage_channels, cfg.head_dim
        self.conv_in = nn.Linear(cfg.in_channels, ch[0])
        self.det_stages = nn.ModuleList(
            nn.ModuleList(NABlock(ch[i], cfg.stage_kernels[i], hd) for _ in range(cfg.stage_depths[i]))
            for i in range(4)
        )
        self.upsamples = nn.ModuleList(
            LinearPixelShuffleUpsample(ch[i], stride, red) for i, (stride, red) in enumerate(cfg.upsamples)
        )
        self.t_embedder = CombinedTimestepEmbedding(cfg.t_emb_dim)
        pixels = cfg.out_channels * cfg.patch_size**2
        c5 = cfg.channels5
        self.conv_in_x_t = nn.Linear(pixels, c5)
        self.shared_adaln = AdaLNZero(c5, cfg.t_emb_dim)
        self.diff_blocks = nn.ModuleList(
            DiffusionNABlock(c5, cfg.stage5_kernel, ch[-1], hd) for _ in range(cfg.stage_depths[-1])
        )
        self.norm_out = nn.RMSNorm(c5, eps=1e-6)
        self.conv_out = nn.Linear(c5, pixels)

    # ------------------------------------------------------------------ public
    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Raw (un-normalised) latent [B, 128, T, h, w] -> pixels [B, 3, 8T−7, 32h, 32w] in [-1, 1]."""
        return torch.cat(list(self.decode_chunks(latent, generator, chunk_frames=None)), dim=2)

    @torch.inference_mode()
    def decode_chunks(
        self,
        latent: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        chunk_frames: int | None = 16,
    ) -> Iterator[torch.Tensor]:
        """Yield pixels [B, 3, f, 32h, 32w] in order, ``chunk_frames`` output frames at a time (None = one chunk)."""
        b, _, t, h, w = latent.shape
        padded, (pad_h, pad_w) = self._floor_pad(latent)
        plan = self._plan(t, padded)
        feat = self._stages_1_to_3(padded)  # [B, S, H/8, W/8, C3]
        noise = self._noise(b, plan, generator, latent)
        step = plan.frames if chunk_frames is None else max(1, chunk_frames)
        for p0 in range(0, plan.frames, step):
            p1 = min(plan.frames, p0 + step)
            pixels = self._stage5_range(feat, noise, plan, p0, p1)
            yield _crop_hw(pixels, pad_h, pad_w, 32 * h, 32 * w).to(latent.dtype)

    @property
    def halo5(self) -> int:
        """Temporal receptive radius of stage 5 in pixel frames (all Euler steps), plus one for the window."""
        cfg = self.cfg
        return cfg.num_steps * cfg.stage_depths[-1] * (cfg.stage5_kernel[0] // 2) + 1

    @property
    def halo4(self) -> int:
        """Temporal receptive radius of stage 4 in its input frames, plus one."""
        return self.cfg.stage_depths[3] * (self.cfg.stage_kernels[3][0] // 2) + 1

    # ------------------------------------------------------------------ stages
    def _floor_pad(self, latent: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Edge-pad (frames: repeat last; sides: symmetric) up to the NA floor, then add the trailing pad."""
        min_t, min_h, min_w = self.cfg.min_latent_size()
        x = _repeat_last(latent, 2, max(min_t, latent.shape[2]))
        x, pad_h = _symmetric(x, 3, min_h)
        x, pad_w = _symmetric(x, 4, min_w)
        return _repeat_last(x, 2, x.shape[2] + self.cfg.trailing_pad_latent_frames), (pad_h, pad_w)

    def _plan(self, t: int, padded: torch.Tensor) -> _Plan:
        work_t = padded.shape[2] - self.cfg.trailing_pad_latent_frames
        work = 8 * (work_t - 1) + 1
        context_frames = 8 * padded.shape[2] - 7  # stage-4 output incl. the trailing pad
        keep = min(context_frames, max(work, self.cfg.stage5_kernel[0]))
        return _Plan(8 * (t - 1) + 1, work, keep, 32 * padded.shape[3], 32 * padded.shape[4])

    def _stages_1_to_3(self, raw: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(rearrange(raw.to(self.conv_in.weight.dtype), "b c t h w -> b t h w c"))
        for i in range(3):
            for block in self.det_stages[i]:
                x = block(x)
            x = self.upsamples[i](x)
        return x

    def _context(self, feat: torch.Tensor, c0: int, c1: int) -> torch.Tensor:
        """Stage-4 output frames [c0, c1) (pixel frames), from a widened window of stage-4 input frames."""
        s_lo = max(0, (c0 + 1) // 2 - self.halo4)  # pixel frame p comes from stage-4 input frame (p + 1) // 2
        s_hi = min(feat.shape[1], c1 // 2 + 1 + self.halo4)
        x = feat[:, s_lo:s_hi]
        for block in self.det_stages[3]:
            x = block(x)
        x = self.upsamples[3](x, drop_leading_frame=s_lo == 0)
        first = 0 if s_lo == 0 else 2 * s_lo - 1  # pixel frame of x[:, 0]
        return x[:, c0 - first : c1 - first]

    def _noise(
        self, b: int, plan: _Plan, generator: torch.Generator | None, like: torch.Tensor
    ) -> torch.Tensor:
        """x_T for the whole clip [B, 3, F, H, W] (generator's device), repeated at the end up to ``keep``."""
        device = generator.device if generator is not None else like.device
        shape = (b, self.cfg.out_channels, plan.work_frames, plan.height, plan.width)
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        return _repeat_last(noise.to(like.device), 2, plan.keep)

    def _stage5_range(
        self, feat: torch.Tensor, noise: torch.Tensor, plan: _Plan, p0: int, p1: int
    ) -> torch.Tensor:
        w0, w1 = max(0, p0 - self.halo5), min(plan.keep, p1 + self.halo5)
        context = self._context(feat, w0, w1)  # [B, w1 − w0, H/4, W/4, C]
        x = noise[:, :, w0:w1]
        ts = self.cfg.timesteps
        for i, t in enumerate(ts):
            t_next = ts[i + 1] if i + 1 < len(ts) else 0.0
            pred = self._model(x, context, t)
            if self.cfg.model_output_type == "x0":
                if i + 1 == len(ts):
                    x = pred
                    break
                pred = (x.float() - pred.float()) / t  # velocity from x0
            x = (x.float() - (t - t_next) * pred.float()).to(x.dtype)
        return x[:, :, p0 - w0 : p1 - w0]

    def _model(self, x_t: torch.Tensor, context: torch.Tensor, t: float) -> torch.Tensor:
        """One stage-5 prediction: pixels [B, 3, f, H, W] + context -> [B, 3, f, H, W]."""
        cfg, dtype = self.cfg, self.conv_in_x_t.weight.dtype
        p = cfg.patch_size
        patched = rearrange(x_t.to(dtype), "b c f (h q) (w r) -> b f h w (c r q)", q=p, r=p)
        x = self.conv_in_x_t(patched)
        t_vec = torch.full((x.shape[0],), t * cfg.timestep_scale_multiplier, device=x.device)
        modulation = self.shared_adaln(self.t_embedder(t_vec, dtype))  # [B, 7, C]
        for block in self.diff_blocks:
            x = block(x, context, modulation)
        out = self.conv_out(self.norm_out(x))
        return rearrange(out, "b f h w (c r q) -> b c f (h q) (w r)", q=p, r=p)


def _repeat_last(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Crop to ``size`` along ``dim``, or append copies of the last slice."""
    n = x.shape[dim]
    if n >= size:
        return x.narrow(dim, 0, size)
    last = x.narrow(dim, n - 1, 1)
    return torch.cat([x, last.expand(*[size - n if d == dim else s for d, s in enumerate(x.shape)])], dim=dim)


def _symmetric(x: torch.Tensor, dim: int, size: int) -> tuple[torch.Tensor, int]:
    """Edge-replicate up to ``size`` (``need // 2`` before, the rest after); returns the count before."""
    n = x.shape[dim]
    if n >= size:
        return x, 0
    before = (size - n) // 2
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    shape = list(x.shape)
    parts = []
    if before:
        parts.append(first.expand(*[before if d == dim else s for d, s in enumerate(shape)]))
    parts += [x, last.expand(*[size - n - before if d == dim else s for d, s in enumerate(shape)])]
    return torch.cat(parts, dim=dim), before


def _crop_hw(x: torch.Tensor, pad_h: int, pad_w: int, height: int, width: int) -> torch.Tensor:
    return x[:, :, :, 32 * pad_h : 32 * pad_h + height, 32 * pad_w : 32 * pad_w + width]
