"""Progressive (streamed) and tiled video decoding against the one-shot decode, on tiny random-weight VAEs.

Stated tolerance: max |difference| <= 1e-4 in float32 for every path that is exact by construction (streamed
time axis; tiles with a context margin >= the decoder's receptive radius). Observed: ~2e-6 (float rounding of
convolutions run on other input lengths). Official-style tiles without context are only checked for their
blending weights and the single-tile case: their seam error depends on the weights (see docs/models.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from ltx2stream.errors import InputError
from ltx2stream.models.video_vae import (
    TilingConfig,
    VideoVAE,
    decode_progressive,
    decode_tiled,
    spatial_radius,
    temporal_lookahead,
    tiny_video_vae_config,
    tiny_video_vae_metadata,
)
from ltx2stream.models.video_vae.blocks import CausalConv3d
from ltx2stream.models.video_vae.tiling import plan_axis

ATOL = 1e-4
FLAVOURS = ["ltx2", "ltx2.3"]


def randomise(vae: VideoVAE, seed: int) -> VideoVAE:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if not name.endswith("timestep_scale_multiplier"):
                p.copy_(torch.randn(p.shape, generator=g) / (p[0].numel() if p.dim() > 1 else 10) ** 0.5)
        stats = vae.per_channel_statistics
        stats.get_buffer("mean-of-means").copy_(torch.randn(128, generator=g))
        stats.get_buffer("std-of-means").copy_(torch.rand(128, generator=g) + 0.5)
    return vae.eval()


def build(flavour: str = "ltx2", seed: int = 1, **overrides) -> VideoVAE:
    return randomise(VideoVAE(tiny_video_vae_config(flavour, **overrides), with_encoder=False), seed)


@pytest.fixture(scope="module", params=FLAVOURS)
def vae(request):
    return build(request.param)


def latent(frames: int, h: int = 2, w: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 128, frames, h, w, generator=torch.Generator().manual_seed(seed))


def one_shot(vae: VideoVAE, z: torch.Tensor, **kw) -> torch.Tensor:
    with torch.no_grad():
        return vae.decode(z, **kw)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.mark.parametrize("chunk", [1, 3])
def test_progressive_equals_one_shot(vae, chunk):
    z = latent(10)
    ref = one_shot(vae, z)
    chunks = list(decode_progressive(vae, z, None, chunk))
    assert len(chunks) > 2 and all(c.shape[2] >= 1 for c in chunks)
    assert max_diff(torch.cat(chunks, dim=2), ref) <= ATOL


@contextmanager
def frames_computed_by(conv: CausalConv3d) -> Iterator[list[int]]:
    """The output frames of each call of ``conv`` (one-shot and streamed, both kernels: all go through
    ``padded``)."""
    computed: list[int] = []
    original = conv.padded

    def counting(x: torch.Tensor) -> torch.Tensor:
        y = original(x)
        computed.append(y.shape[2])
        return y

    conv.padded = counting  # type: ignore[method-assign]
    try:
        yield computed
    finally:
        del conv.padded


def test_first_chunk_comes_before_the_segment_is_decoded(vae):
    """Count output frames computed by conv_out: each is computed once, and the first yield comes early."""
    z = latent(10)
    with frames_computed_by(vae.decoder.conv_out) as computed:
        gen = decode_progressive(vae, z, None, 2)
        first = next(gen)
        done_at_first = sum(computed)
        rest = list(gen)
    total = 8 * (10 - 1) + 1
    assert first.shape[2] == done_at_first < total / 2
    assert sum(computed) == total == first.shape[2] + sum(c.shape[2] for c in rest)  # no recomputation
    # the first piece is cut to one latent frame's worth (it leaves early), later ones to ``chunk`` latent frames'
    # worth: with the budget kept small they would stay smaller
    from ltx2stream.models.video_vae import tiling

    class Small(tiling.Budget):
        def grow(self) -> None:
            pass

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tiling, "Budget", Small)
        small = list(decode_progressive(vae, z, None, 2))
    assert small[0].shape[2] == first.shape[2] <= 8
    assert max(c.shape[2] for c in rest) > max(c.shape[2] for c in small[1:])
    assert max_diff(torch.cat(small, dim=2), torch.cat([first, *rest], dim=2)) <= ATOL


@pytest.mark.parametrize("skip", [1, 2, 5, 9, 16, 17, 33, 60, 72])
def test_skipped_frames_are_not_decoded_and_the_rest_is_exact(vae, skip):
    """``skip``: the chunks are the one-shot decode from frame ``skip`` on, and the last stage computes only
    frames near and after it (what only feeds the skipped frames is never computed)."""
    z = latent(10)
    ref = one_shot(vae, z)
    with frames_computed_by(vae.decoder.conv_out) as computed:
        chunks = list(decode_progressive(vae, z, None, 2, skip=skip))
    out = torch.cat(chunks, dim=2)
    assert out.shape[2] == ref.shape[2] - skip
    assert max_diff(out, ref[:, :, skip:]) <= ATOL
    # conv_out works from one frame before the first kept frame on (its own temporal context)
    assert sum(computed) <= ref.shape[2] - skip + 1


@pytest.mark.parametrize("skip", [3, 9, 25])
def test_skip_on_causal_and_tiled_decoders(skip):
    vae = build("ltx2", causal_decoder=True)
    z = latent(5, 4, 4)
    ref = one_shot(vae, z)
    assert (
        max_diff(torch.cat(list(decode_progressive(vae, z, None, 1, skip=skip)), dim=2), ref[:, :, skip:])
        <= ATOL
    )
    tiling = TilingConfig(spatial_tile_px=64, spatial_overlap_px=32, temporal_tile_frames=None)
    tiled = torch.cat(list(decode_progressive(vae, z, tiling, 1)), dim=2)
    skipped = torch.cat(list(decode_progressive(vae, z, tiling, 1, skip=skip)), dim=2)
    assert max_diff(skipped, tiled[:, :, skip:]) <= ATOL
    with pytest.raises(InputError, match="skip"):
        decode_progressive(vae, z, None, 1, skip=33)


def test_causal_decoder_streams_in_bounded_pieces():
    vae = build("ltx2", causal_decoder=True)
    z = latent(7)
    chunks = list(decode_progressive(vae, z, None, 2))
    assert max(c.shape[2] for c in chunks) <= 16 and sum(c.shape[2] for c in chunks) == 49 and len(chunks) > 2
    assert max_diff(torch.cat(chunks, dim=2), one_shot(vae, z)) <= ATOL
    later = z.clone()
    later[:, :, 2:] += 1.0  # pixel frames 0-8 (latent frames 0-1) of a causal decoder ignore later latents
    ref = torch.cat(chunks, dim=2)
    first, gen = [], decode_progressive(vae, later, None, 2)
    while sum(c.shape[2] for c in first) < 17:  # the pieces that cover latent frames 0-2
        first.append(next(gen))
    head = torch.cat(first, dim=2)[:, :, :17]
    assert max_diff(head[:, :, :9], ref[:, :, :9]) <= ATOL
    assert max_diff(head[:, :, 9:], ref[:, :, 9:17]) > 1e-3


def test_timestep_conditioned_progressive_matches_with_the_same_noise():
    vae = build("ltx2.3", timestep_conditioning=True)
    z = latent(4)
    ref = one_shot(vae, z, generator=torch.Generator().manual_seed(7), timestep=0.1)
    out = decode_progressive(vae, z, None, 1, generator=torch.Generator().manual_seed(7), timestep=0.1)
    assert max_diff(torch.cat(list(out), dim=2), ref) <= ATOL


def test_group_norm_decoder_falls_back_to_whole_decode():
    meta = tiny_video_vae_metadata("ltx2")
    vae = build("ltx2", decoder_blocks=[["res_x_y", {"multiplier": 2}], *meta["decoder_blocks"]])
    assert not vae.config.decoder_streamable
    z = latent(3)
    chunks = list(decode_progressive(vae, z, None, 1))
    assert [c.shape[2] for c in chunks] == [8, 8, 1]
    assert max_diff(torch.cat(chunks, dim=2), one_shot(vae, z)) <= ATOL


def test_progressive_refuses_bad_input(vae):
    with pytest.raises(InputError, match="chunk_latent_frames"):
        decode_progressive(vae, latent(3), None, 0)
    with pytest.raises(InputError, match="128"):
        decode_progressive(vae, torch.zeros(1, 16, 3, 2, 2))  # raised at call time, not at first next()


def test_spatially_tiled_decode_with_context_equals_one_shot(vae):
    z = latent(2, h=2, w=14)
    tiling = TilingConfig.exact_for(
        vae.config, spatial_tile_px=128, spatial_overlap_px=32, temporal_tile_frames=None
    )
    tiles = plan_axis(14, 4, 1, tiling.spatial_context_px // 32, temporal=False)
    assert len(tiles) == 5 and any(t.hi - t.lo < 14 for t in tiles)  # tiles really are partial decodes
    assert max_diff(decode_tiled(vae, z, tiling), one_shot(vae, z)) <= ATOL


def test_temporally_tiled_decode_with_context_equals_one_shot(vae):
    z = latent(14)
    tiling = TilingConfig.exact_for(
        vae.config, spatial_tile_px=None, temporal_tile_frames=32, temporal_overlap_frames=8
    )
    tiles = plan_axis(14, 4, 1, tiling.temporal_context_frames // 8, temporal=True)
    assert len(tiles) == 5 and any(t.hi - t.lo < 14 for t in tiles)
    assert max_diff(decode_tiled(vae, z, tiling), one_shot(vae, z)) <= ATOL


def test_single_tile_and_progressive_tiles_match_tiled(vae):
    z = latent(2, h=2, w=4)
    assert max_diff(decode_tiled(vae, z, TilingConfig(spatial_tile_px=512)), one_shot(vae, z)) <= ATOL
    spatial = TilingConfig(spatial_tile_px=64, spatial_overlap_px=32, temporal_tile_frames=None)
    tiled = decode_tiled(vae, z, spatial)  # official-style: no context, seams blended
    progressive = torch.cat(list(decode_progressive(vae, z, spatial, 1)), dim=2)
    assert max_diff(progressive, tiled) <= ATOL


def test_progressive_with_exact_spatial_tiles_equals_one_shot():
    vae = build("ltx2")
    z = latent(3, h=2, w=10)
    tiling = TilingConfig.exact_for(vae.config, spatial_tile_px=64, spatial_overlap_px=32)
    chunks = list(decode_progressive(vae, z, tiling, 1))
    assert max_diff(torch.cat(chunks, dim=2), one_shot(vae, z)) <= ATOL


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "temporal"), [(12, 4, 1, True), (16, 5, 2, False), (9, 8, 3, True)]
)
def test_blend_plan_covers_every_pixel_once(length, tile, overlap, temporal):
    tiles = plan_axis(length, tile, overlap, 0, temporal=temporal)
    total = 8 * (length - 1) + 1 if temporal else 32 * length
    acc = torch.zeros(total)
    for t in tiles:
        acc[t.out] += t.weight
        assert (t.weight > 0).all() and t.keep.stop - t.keep.start == t.out.stop - t.out.start
        first = (8 if temporal else 32) * t.lo
        last = 8 * (t.hi - 1) + 1 if temporal else 32 * t.hi
        assert first + t.keep.start == t.out.start and first + t.keep.stop <= last
    assert torch.allclose(acc, torch.ones(total), atol=1e-6)
    if len(tiles) > 1:  # linear ramps across the first overlap
        w0 = tiles[0].weight
        ramp = w0[tiles[1].out.start - tiles[0].out.start :]
        assert (ramp[1:] < ramp[:-1]).all() and torch.allclose(
            ramp.diff(), ramp.diff()[0].expand_as(ramp.diff())
        )


def test_receptive_radius_is_tight():
    """A latent cell changes output pixels within spatial_radius (and time within temporal_lookahead) only."""
    vae = build("ltx2")
    r, big = spatial_radius(vae.config), latent(1, h=2, w=16)
    moved = big.clone()
    moved[:, :, :, :, 8] += 3.0
    diff = (one_shot(vae, moved) - one_shot(vae, big)).abs().amax(dim=(0, 1, 2, 3))  # per pixel column
    lo, hi = math.floor(32 * (8 - r)), math.ceil(32 * (9 + r))
    assert diff[:lo].max() <= 1e-6 and diff[hi:].max() <= 1e-6
    assert diff[lo : lo + 32].max() > 1e-4 and diff[hi - 32 : hi].max() > 1e-4
    rt, seq = temporal_lookahead(vae.config), latent(16)
    moved = seq.clone()
    moved[:, :, 8] += 3.0
    diff = (one_shot(vae, moved) - one_shot(vae, seq)).abs().amax(dim=(0, 1, 3, 4))  # per pixel frame
    first, last = math.floor(8 * (8 - rt)) - 7, math.ceil(8 * (8 + rt))
    assert diff[: max(first, 0)].max() <= 1e-6 and diff[last + 1 :].max() <= 1e-6
    assert diff[first : first + 8].max() > 1e-4 and diff[last - 8 : last + 1].max() > 1e-4
