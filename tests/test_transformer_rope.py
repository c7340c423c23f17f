"""Token positions, patchify layouts and RoPE (the facts that are easy to get wrong, spec §1.7-1.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ltx2stream.errors import InputError
from ltx2stream.models.transformer import (
    audio_positions,
    patchify_audio,
    patchify_video,
    unpatchify_audio,
    unpatchify_video,
    video_positions,
)
from ltx2stream.models.transformer.rope import RopeTable, apply_rope, freq_grid, rope_angles, rope_table
from ltx2stream.types import VideoLatentShape


def _close(t: torch.Tensor, expected: list) -> bool:
    return torch.allclose(t.float(), torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_video_positions_pixels_seconds_causal_fix_and_midpoints() -> None:
    fps = 24.0
    pos = video_positions(3, 2, 2, fps, batch=2)
    assert pos.shape == (2, 3, 12, 2) and pos.dtype == torch.float32
    t, h, w = pos[0, 0], pos[0, 1], pos[0, 2]
    # raster order (f, h, w): token 5 = frame 1, row 0, col 1
    assert t[5].tolist() == pytest.approx([1 / fps, 9 / fps]) and w[5].tolist() == [32.0, 64.0]
    # causal fix: latent frame 0 = pixel frame [0, 1); frame k >= 1 = [8k-7, 8k+1)
    frame_bounds = t[::4] * fps
    assert _close(frame_bounds, [[0, 1], [1, 9], [9, 17]])
    mid_t = t.mean(-1)[::4] * fps
    assert mid_t.tolist() == pytest.approx([0.5, 5.0, 13.0])  # (8k - 3) for k >= 1
    assert h.mean(-1)[:4].tolist() == [16.0, 16.0, 48.0, 48.0]  # 32h + 16 px
    assert torch.equal(pos[0], pos[1])


def test_video_positions_keyframe_offset_without_causal_fix() -> None:
    fps = 25.0
    pos = video_positions(2, 1, 1, fps, frame_offset=40, causal_fix=False)
    assert _close(pos[0, 0] * fps, [[40, 48], [48, 56]])
    single = video_positions(1, 1, 1, fps, frame_offset=40, causal_fix=False, single_pixel_frame=True)
    assert _close(single[0, 0] * fps, [[40, 41]])
    with pytest.raises(InputError):
        video_positions(0, 1, 1, fps)


def test_audio_positions_seconds_with_causal_offset() -> None:
    pos = audio_positions(4, batch=3)
    assert pos.shape == (3, 1, 4, 2)
    assert _close(pos[0, 0], [[0.0, 0.01], [0.01, 0.05], [0.05, 0.09], [0.09, 0.13]])
    assert pos[0, 0].mean(-1).tolist() == pytest.approx([0.005, 0.03, 0.07, 0.11])  # (4i - 1) * 10 ms
    shifted = audio_positions(2, offset=2)
    assert torch.equal(shifted[0, 0], pos[0, 0, 2:])  # 25 latents/s: index offset, not a time offset


def test_patchify_round_trips_and_layouts() -> None:
    video = torch.randn(2, 128, 3, 2, 4)
    tokens = patchify_video(video)
    assert tokens.shape == (2, 24, 128)
    assert torch.equal(tokens[1, 1 * 8 + 1 * 4 + 3], video[1, :, 1, 1, 3])  # (f h w) raster
    assert torch.equal(unpatchify_video(tokens, VideoLatentShape(2, 128, 3, 2, 4)), video)
    audio = torch.randn(2, 8, 5, 16)
    atok = patchify_audio(audio)
    assert atok.shape == (2, 5, 128)
    assert torch.equal(atok[0, 3, 16 * 2 : 16 * 3], audio[0, 2, 3])  # channel-major (c f)
    assert torch.equal(unpatchify_audio(atok), audio)
    with pytest.raises(InputError):
        unpatchify_video(tokens[:, :-1], VideoLatentShape(2, 128, 3, 2, 4))


def test_frequency_grid_float64_values() -> None:
    grid = freq_grid(10000.0, 3, 4096, True)
    assert grid.shape == (682,) and grid.dtype == torch.float32
    expected = (np.pi / 2) * np.power(10000.0, np.arange(682, dtype=np.float64) / 681)
    assert torch.equal(grid, torch.from_numpy(expected).float())  # float64 grid, then one cast
    assert grid[0].item() == pytest.approx(math.pi / 2) and grid[-1].item() == pytest.approx(
        math.pi / 2 * 1e4
    )
    single = freq_grid(10000.0, 3, 4096, False)
    assert not torch.equal(single, grid) and torch.allclose(single, grid, rtol=1e-5)  # precision matters


def test_angles_are_normalised_midpoints_frequency_major() -> None:
    grid = torch.tensor([1.0, 10.0])
    # one token: t in [0, 10) -> mid 5 of max 20; h mid 1024 of 2048; w mid 2048 of 2048
    pos = torch.tensor([[[[0.0, 10.0]], [[1000.0, 1048.0]], [[2047.0, 2049.0]]]])
    angles = rope_angles(pos, (20, 2048, 2048), grid)
    frac = torch.tensor([0.25, 0.5, 1.0])
    expected = torch.stack([g * (2 * frac - 1) for g in grid]).flatten()  # [w0*t, w0*h, w0*w, w1*t, ...]
    assert torch.allclose(angles[0, 0], expected)
    assert angles[0, 0, 1] == 0.0  # the centre of the normalised range has angle 0
    starts = rope_angles(pos, (20, 2048, 2048), grid, use_midpoints=False)
    assert starts[0, 0, 0].item() == pytest.approx(-1.0)  # start 0 -> 2*0 - 1


def _table(dim: int, heads: int, n_axes: int, positions: torch.Tensor) -> RopeTable:
    max_pos = (20, 2048, 2048)[:n_axes]
    return rope_table(
        positions,
        dim=dim,
        heads=heads,
        max_pos=max_pos,
        theta=10000.0,
        rope_type="split",
        double_precision=True,
        dtype=torch.float32,
    )


def test_split_table_front_padding_and_head_slices() -> None:
    pos = video_positions(2, 1, 1, 24.0)  # dim 32 over 3 axes: m = 5, 15 angles, pad 1 to dim/2 = 16
    table = _table(32, 2, 3, pos)
    assert table.cos.shape == (1, 2, 2, 8)  # [B, H, T, d/2]
    assert torch.all(table.cos[:, 0, :, 0] == 1.0) and torch.all(table.sin[:, 0, :, 0] == 0.0)
    grid = freq_grid(10000.0, 3, 32, True)
    angles = rope_angles(pos, (20, 2048, 2048), grid)
    flat = torch.cat([torch.zeros(1, 2, 1), angles], dim=-1)  # front pad, then heads take consecutive slices
    assert torch.allclose(table.cos[0, 1], flat[0, :, 8:].cos()) and torch.allclose(
        table.sin[0, 0], flat[0, :, :8].sin()
    )


def test_split_rope_pairs_element_j_with_j_plus_half_head() -> None:
    heads, d = 2, 8
    angles = torch.linspace(0.1, 1.6, heads * d // 2).view(1, heads, 1, d // 2)
    table = RopeTable(angles.cos(), angles.sin(), "split")
    for head, j in [(0, 0), (0, 3), (1, 2)]:
        x = torch.zeros(1, 1, heads * d)
        x[0, 0, head * d + j] = 1.0  # a "low half" element
        out = apply_rope(x, table)[0, 0]
        a = angles[0, head, 0, j]
        nonzero = set(torch.nonzero(out).flatten().tolist())
        assert nonzero == {head * d + j, head * d + j + d // 2}
        assert out[head * d + j].item() == pytest.approx(a.cos().item())
        assert out[head * d + j + d // 2].item() == pytest.approx(a.sin().item())
    x = torch.randn(3, 5, heads * d)
    rotated = apply_rope(
        x, RopeTable(torch.randn(3, heads, 5, d // 2).cos(), torch.zeros(3, heads, 5, d // 2), "split")
    )
    assert rotated.shape == x.shape
    angle_table = RopeTable(angles.expand(3, -1, 5, -1).cos(), angles.expand(3, -1, 5, -1).sin(), "split")
    assert torch.allclose(apply_rope(x, angle_table).norm(dim=-1), x.norm(dim=-1))  # a rotation keeps norms


def test_interleaved_rope_pairs_adjacent_elements() -> None:
    pos = audio_positions(3)
    table = rope_table(
        pos,
        dim=8,
        heads=2,
        max_pos=(20,),
        theta=10000.0,
        rope_type="interleaved",
        double_precision=True,
        dtype=torch.float32,
    )
    assert table.cos.shape == (1, 3, 8)
    x = torch.zeros(1, 3, 8)
    x[..., 2] = 1.0
    out = apply_rope(x, table)
    assert set(torch.nonzero(out[0, 1]).flatten().tolist()) <= {2, 3}
    assert torch.allclose(out[0, :, 2], table.cos[0, :, 2]) and torch.allclose(
        out[0, :, 3], table.sin[0, :, 3]
    )


def test_positions_shape_is_checked() -> None:
    with pytest.raises(InputError, match="positions"):
        rope_angles(torch.zeros(1, 3, 4), (20, 2048, 2048), torch.ones(2))
