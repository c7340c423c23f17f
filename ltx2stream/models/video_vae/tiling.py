"""Memory-bounded video decoding: tiled (spatial + temporal tiles, linear blend) and progressive (streamed).

``decode_tiled`` cuts the latent into a grid of tiles (defaults as the spec: 512 px with 64 px overlap, 64
frames with 24 frames overlap), decodes each tile alone and blends neighbours with linear ramps over their
overlap; the peak memory is one tile's activations plus the output. A tile's edge sees padding instead of its
neighbour's data, so with ``*_context_*`` = 0 (the official behaviour) the result differs from the one-shot
decode near seams; each tile may also be decoded with a context margin of extra latents that is cropped away
before blending — a margin >= the decoder's receptive radius (``TilingConfig.exact_for``) makes tiled ==
one-shot up to float rounding.

``decode_progressive`` streams the decoder over temporal chunks (``stream.py``: exact in time, bounded memory)
and yields pixel chunks in order as soon as each is ready; spatial tiles, if configured, are streamed side by
side and blended per chunk (temporal tile fields are not used: streaming already bounds memory in time).

Frame bookkeeping: latent frame 0 owns pixel frame 0 and latent j >= 1 owns pixel frames 8j-7 .. 8j; decoding
the latent frames [lo, hi) gives pixel frames [8·lo, 8·hi-7) — so a temporal tile that starts at latent s > 0
decodes from s-1 at least to produce the frames s owns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError, InputError
from ltx2stream.models.video_vae.config import VideoVAEConfig
from ltx2stream.models.video_vae.stream import (
    Budget,
    piece_budget,
    spatial_radius,
    stream_decoder,
    temporal_lookahead,
)
from ltx2stream.models.video_vae.vae import VideoVAE
from ltx2stream.types import VIDEO_SPACE_SCALE as S
from ltx2stream.types import VIDEO_TIME_SCALE as T

log = logging.getLogger(__name__)


def _bad(message: str) -> None:
    raise ConfigError(f"tiling: {message}", code=codes.CONFIG_TILING)


@dataclass(frozen=True)
class TilingConfig:
    """Tile sizes in pixels / pixel frames (None = no tiling along that axis)."""

    spatial_tile_px: int | None = 512  # multiple of 32, >= 64
    spatial_overlap_px: int = 64  # multiple of 32, < tile
    temporal_tile_frames: int | None = 64  # multiple of 8, >= 16
    temporal_overlap_frames: int = 24  # multiple of 8, < tile
    spatial_context_px: int = 0  # decoded around each tile and cropped away (multiple of 32)
    temporal_context_frames: int = 0  # same in time (multiple of 8)

    def __post_init__(self) -> None:
        self._check("spatial", self.spatial_tile_px, self.spatial_overlap_px, self.spatial_context_px, S, 64)
        self._check(
            "temporal",
            self.temporal_tile_frames,
            self.temporal_overlap_frames,
            self.temporal_context_frames,
            T,
            16,
        )

    @staticmethod
    def _check(axis: str, tile: int | None, overlap: int, context: int, unit: int, minimum: int) -> None:
        what = "px" if unit == S else "frames"
        if tile is not None and (tile % unit or tile < minimum):
            _bad(f"{axis} tile must be a multiple of {unit} {what} and >= {minimum}; got {tile}")
        if overlap % unit or overlap < 0 or (tile is not None and overlap >= tile):
            _bad(f"{axis} overlap must be a multiple of {unit} {what}, >= 0 and < the tile; got {overlap}")
        if context % unit or context < 0:
            _bad(f"{axis} context must be a multiple of {unit} {what} and >= 0; got {context}")

    @classmethod
    def exact_for(cls, cfg: VideoVAEConfig, **sizes: int | None) -> TilingConfig:
        """Tiles with context margins >= the decoder's receptive radius: tiled decode == one-shot decode."""
        spatial = math.ceil(spatial_radius(cfg)) * S
        temporal = math.ceil(temporal_lookahead(cfg)) * T
        return cls(**{"spatial_context_px": spatial, "temporal_context_frames": temporal, **sizes})


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: decode latents [lo, hi), keep local pixels ``keep``, write them at ``out``."""

    lo: int
    hi: int
    keep: slice
    out: slice
    weight: torch.Tensor  # (out.stop - out.start,), blend weights; they sum to 1 over tiles at every position


def _cores(length: int, tile: int | None, overlap: int) -> list[tuple[int, int]]:
    """Latent intervals of size ``tile`` covering [0, length), evenly spread, neighbours overlapping >= overlap."""
    if tile is None or length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (n - 1)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def _owned(s: int, e: int, temporal: bool) -> tuple[int, int]:
    """Pixel range owned by latent range [s, e)."""
    if not temporal:
        return S * s, S * e
    return (0 if s == 0 else T * s - (T - 1)), T * e - (T - 1)


def _ramp(n: int, up: int, down: int) -> torch.Tensor:
    """Ones with a linear ramp up over the first ``up`` and down over the last ``down`` positions (all > 0)."""
    w = torch.ones(n, dtype=torch.float64)
    if up:
        w[:up] *= torch.arange(1, up + 1, dtype=torch.float64) / (up + 1)
    if down:
        w[n - down :] *= torch.arange(down, 0, -1, dtype=torch.float64) / (down + 1)
    return w


def plan_axis(length: int, tile: int | None, overlap: int, context: int, *, temporal: bool) -> list[AxisTile]:
    """Tiles along one latent axis of ``length`` (all sizes here in latent units)."""
    cores = _cores(length, tile, overlap)
    owned = [_owned(s, e, temporal) for s, e in cores]
    total = owned[-1][1]
    weights = []
    for i, (a, b) in enumerate(owned):
        up = owned[i - 1][1] - a if i > 0 else 0
        down = b - owned[i + 1][0] if i + 1 < len(owned) else 0
        weights.append(_ramp(b - a, max(up, 0), max(down, 0)))
    norm = torch.zeros(total, dtype=torch.float64)
    for (a, b), w in zip(owned, weights, strict=True):
        norm[a:b] += w
    tiles = []
    for (s, e), (a, b), w in zip(cores, owned, weights, strict=True):
        left = max(context, 1) if temporal and s > 0 else context
        lo, hi = max(0, s - left), min(length, e + context)
        first = (T if temporal else S) * lo  # global pixel index of the tile's first decoded pixel
        tiles.append(AxisTile(lo, hi, slice(a - first, b - first), slice(a, b), (w / norm[a:b]).float()))
    return tiles


def _spatial_plans(h: int, w: int, tiling: TilingConfig | None) -> tuple[list[AxisTile], list[AxisTile]]:
    if tiling is None:
        return plan_axis(h, None, 0, 0, temporal=False), plan_axis(w, None, 0, 0, temporal=False)
    tile = None if tiling.spatial_tile_px is None else tiling.spatial_tile_px // S
    args = (tile, tiling.spatial_overlap_px // S, tiling.spatial_context_px // S)
    return plan_axis(h, *args, temporal=False), plan_axis(w, *args, temporal=False)


def _temporal_plan(f: int, tiling: TilingConfig | None) -> list[AxisTile]:
    if tiling is None or tiling.temporal_tile_frames is None:
        return plan_axis(f, None, 0, 0, temporal=True)
    tile = tiling.temporal_tile_frames // T
    return plan_axis(
        f, tile, tiling.temporal_overlap_frames // T, tiling.temporal_context_frames // T, temporal=True
    )


def _mask(th: AxisTile, tw: AxisTile, like: torch.Tensor) -> torch.Tensor:
    return (th.weight[:, None] * tw.weight[None, :]).to(like)  # (h,) x (w,) -> (h, w)


@torch.no_grad()
def decode_tiled(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: TilingConfig | None = None,
    *,
    timestep: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Normalised latent (B, 128, F', h, w) -> pixels (B, 3, 8(F'-1)+1, 32h, 32w), one tile at a time.

    ``tiling=None`` uses ``TilingConfig()`` (the spec defaults). Accumulates in float32, returns ``latent``'s
    dtype.
    """
    tiling = tiling or TilingConfig()
    z = vae.prepare_latent(latent, generator)  # decoder noise (if any) drawn once for the whole latent
    b, _, f, h, w = z.shape
    out = torch.zeros(
        b, vae.config.out_channels, vae.pixel_frames(f), S * h, S * w, dtype=torch.float32, device=z.device
    )
    plan_h, plan_w = _spatial_plans(h, w, tiling)
    for tt in _temporal_plan(f, tiling):
        for th in plan_h:
            for tw in plan_w:
                tile = vae.decoder(z[:, :, tt.lo : tt.hi, th.lo : th.hi, tw.lo : tw.hi], timestep)
                tile = tile[:, :, tt.keep, th.keep, tw.keep].float()
                weight = tt.weight.to(tile)[:, None, None] * _mask(th, tw, tile)  # (f, h, w)
                out[:, :, tt.out, th.out, tw.out] += tile * weight
    return out.to(latent.dtype)


def decode_progressive(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: TilingConfig | None = None,
    chunk_latent_frames: int = 2,
    *,
    timestep: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
    skip: int = 0,
) -> Iterator[torch.Tensor]:
    """Yield pixel chunks (B, 3, f, 32h, 32w) in order; their concatenation is the decode of ``latent`` from
    frame ``skip`` on (0 <= skip < the decode's frame count; the streamed decoder never works on what only
    feeds the skipped frames, see ``stream.skip_plan``).

    Exact in time (streamed decoder; equal to ``vae.decode`` up to float rounding); with spatial tiles, equal
    to the spatially tiled decode. ``chunk_latent_frames`` sets the piece size: every stage works on pieces of
    about ``8 · chunk_latent_frames`` frames of the last (highest-resolution) activation's size, so chunks
    come out about that long and the working set is a few such pieces per stage. Decoders with GroupNorm are
    not streamable: they are decoded whole (tiled if ``tiling``) and then yielded in chunks. Validation
    happens at call time, decoding lazily.
    """
    if chunk_latent_frames < 1:
        raise InputError(
            f"chunk_latent_frames must be >= 1; got {chunk_latent_frames}", code=codes.INPUT_CHUNK
        )
    if not vae.config.decoder_streamable:
        vae.check_latent(latent)
        log.warning("video decoder has GroupNorm over all frames: decoding whole, then yielding chunks")
        return _chunked_whole(vae, latent, tiling, chunk_latent_frames, timestep, generator, skip)
    frames = (latent.shape[2] - 1) * T + 1
    if not 0 <= skip < frames:
        raise InputError(f"skip must be in [0, {frames}) for {latent.shape[2]} latent frames; got {skip}",
                         code=codes.INPUT_CHUNK)  # fmt: skip
    with torch.no_grad():
        # decoder noise (if any) is drawn once for the whole latent, as in a one-shot decode
        z = vae.prepare_latent(latent, generator)
    return _progressive(vae, z, tiling, chunk_latent_frames, timestep, latent.dtype, skip)


@torch.no_grad()
def _progressive(
    vae: VideoVAE,
    z: torch.Tensor,
    tiling: TilingConfig | None,
    chunk: int,
    timestep: torch.Tensor | float | None,
    out_dtype: torch.dtype,
    skip: int,
) -> Iterator[torch.Tensor]:
    b, _, _, h, w = z.shape
    scaled_t = vae.decoder.scaled_timestep(timestep, b, z)
    plan_h, plan_w = _spatial_plans(h, w, tiling)
    grid = [(th, tw) for th in plan_h for tw in plan_w]
    streams, budgets = [], []
    for th, tw in grid:
        tile = z[:, :, :, th.lo : th.hi, tw.lo : tw.hi]
        # the first output piece is cut to one latent frame's worth (it leaves as early as the lookahead allows),
        # later ones to ``chunk`` latent frames' worth
        budget = Budget(
            piece_budget(vae.decoder, tile.shape, T), piece_budget(vae.decoder, tile.shape, T * chunk)
        )
        budgets.append(budget)
        streams.append(stream_decoder(vae.decoder, [tile], scaled_t, budget, skip))
    # every tile stream yields the same frame counts in the same order
    for i, pieces in enumerate(zip(*streams, strict=True)):
        if i == 0:  # the first piece is cut: every later cut is a working-size one
            for budget in budgets:
                budget.grow()
        if len(grid) == 1:
            yield pieces[0].to(out_dtype)
            continue
        out = torch.zeros(b, vae.config.out_channels, pieces[0].shape[2], S * h, S * w, device=z.device)
        for (th, tw), piece in zip(grid, pieces, strict=True):
            out[:, :, :, th.out, tw.out] += piece[:, :, :, th.keep, tw.keep].float() * _mask(th, tw, out)
        yield out.to(out_dtype)


def _chunked_whole(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: TilingConfig | None,
    chunk: int,
    timestep: torch.Tensor | float | None,
    generator: torch.Generator | None,
    skip: int,
) -> Iterator[torch.Tensor]:
    if tiling is not None:
        pixels = decode_tiled(vae, latent, tiling, timestep=timestep, generator=generator)
    else:
        with torch.no_grad():
            pixels = vae.decode(latent, timestep=timestep, generator=generator)
    yield from pixels[:, :, skip:].split(T * chunk, dim=2)
