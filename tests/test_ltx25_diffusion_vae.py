"""The LTX-2.5 diffusion video decoder: NA semantics, seeded determinism, chunked == one-shot, released layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.video_vae import load_video_vae
from ltx2stream.models.video_vae.diffusion.config import DiffusionDecoderConfig
from ltx2stream.models.video_vae.diffusion.layers import default_rope_split, neighbourhood_attention
from ltx2stream.models.video_vae.diffusion.tiny import (
    random_diffusion_vae,
    tiny_diffusion_vae_file,
    tiny_diffusion_vae_section,
)


@pytest.fixture(scope="module")
def vae():  # type: ignore[no-untyped-def]
    return random_diffusion_vae(tiny_diffusion_vae_section(), seed=0)


def _latent(t: int, h: int = 2, w: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 128, t, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dense_na(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: tuple[int, int, int]
) -> torch.Tensor:
    """Reference: full attention with a mask allowing exactly each query's shifted-inward window."""
    b, t, h, w, n, d = q.shape
    masks = []
    for length, kk in zip((t, h, w), kernel, strict=True):
        i = torch.arange(length)
        start = (i - kk // 2).clamp(0, length - kk)
        masks.append((i[None, :] >= start[:, None]) & (i[None, :] < start[:, None] + kk))  # [L, L]
    allowed = (
        masks[0][:, None, None, :, None, None]
        & masks[1][None, :, None, None, :, None]
        & masks[2][None, None, :, None, None, :]
    ).reshape(t * h * w, t * h * w)
    qf, kf, vf = (x.reshape(b, t * h * w, n, d).transpose(1, 2).double() for x in (q, k, v))
    scores = (qf @ kf.transpose(-1, -2)).masked_fill(~allowed, float("-inf"))
    out = scores.softmax(-1) @ vf  # [B, n, N, d]
    return out.transpose(1, 2).reshape(b, t, h, w, n, d).float()


def test_portable_neighbourhood_attention_equals_masked_dense_attention() -> None:
    """Windows shifted inward at every border (not zero-padded), for odd kernels and sizes at the minimum."""
    g = torch.Generator().manual_seed(1)
    for shape, kernel in (((5, 4, 6), (3, 3, 5)), ((3, 7, 3), (3, 5, 3)), ((4, 3, 3), (1, 3, 1))):
        q, k, v = (torch.randn(2, *shape, 2, 8, generator=g) for _ in range(3))
        torch.testing.assert_close(neighbourhood_attention(q, k, v, kernel), _dense_na(q, k, v, kernel))


def test_rope_split_follows_the_release_rule() -> None:
    assert default_rope_split(64) == (16, 24, 24) and default_rope_split(16) == (4, 6, 6)


def test_decode_is_deterministic_for_a_seed(vae) -> None:  # type: ignore[no-untyped-def]
    """Same latent + generator seed -> identical pixels; another seed -> different pixels; shapes 8T−7 x 32h x 32w."""
    z = _latent(3)
    a, b = vae.decode(z, generator=_gen(5)), vae.decode(z, generator=_gen(5))
    c = vae.decode(z, generator=_gen(6))
    assert a.shape == (1, 3, 17, 64, 64)
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-3


@pytest.mark.parametrize(("frames", "width", "chunk"), [(3, 2, 1), (3, 2, 8), (6, 3, 8), (6, 3, 16)])
def test_chunked_decode_equals_one_shot(vae, frames: int, width: int, chunk: int) -> None:  # type: ignore[no-untyped-def]
    """Stages 4–5 per frame range with receptive-field halos: concatenated chunks == one-shot within 1e-4."""
    z = _latent(frames, 2, width, seed=frames)
    whole = vae.decode(z, generator=_gen(2))
    chunks = list(vae.decode_chunks(z, generator=_gen(2), chunk_frames=chunk))
    assert [c.shape[2] for c in chunks[:-1]] == [chunk] * (len(chunks) - 1)
    assert (torch.cat(chunks, dim=2) - whole).abs().max() <= 1e-4


def test_halo_is_needed(vae) -> None:  # type: ignore[no-untyped-def]
    """Without the stage-5 halo the chunks differ: the equality above is not trivially true."""
    z = _latent(6, 2, 3, seed=6)
    whole = vae.decode(z, generator=_gen(2))
    dec = vae.decoder
    saved = type(dec).halo5
    try:
        type(dec).halo5 = property(lambda self: 2)  # type: ignore[method-assign,assignment]
        chunks = list(vae.decode_chunks(z, generator=_gen(2), chunk_frames=8))
    finally:
        type(dec).halo5 = saved  # type: ignore[method-assign]
    assert (torch.cat(chunks, dim=2) - whole).abs().max() > 1e-3


def test_small_latents_are_floor_padded_and_cropped(vae) -> None:  # type: ignore[no-untyped-def]
    """A single latent frame (one image) and a 1x1 latent decode to their exact pixel shapes."""
    assert vae.decode(_latent(1, 1, 1), generator=_gen(0)).shape == (1, 3, 1, 32, 32)
    assert vae.decode(_latent(2, 1, 3), generator=_gen(0)).shape == (1, 3, 9, 32, 96)


def test_released_layout_loads_strictly_and_folds_gates(tmp_path: Path, vae) -> None:  # type: ignore[no-untyped-def]
    """Bare keys with fused qkv, gates and a coarse head load with zero key errors; the folded decoder equals
    the unfolded one with its gates applied at run time (same random weights, seed 0)."""
    tensors, section = tiny_diffusion_vae_file(seed=0)
    assert any(k.endswith(".attn.qkv.weight") for k in tensors) and any(".gate_ctx" in k for k in tensors)
    prefixed = {f"vae.{k}": v for k, v in tensors.items()}
    save_checkpoint(tmp_path / "vae.safetensors", prefixed, config={"vae": section})
    loaded = load_video_vae(open_checkpoint(tmp_path / "vae.safetensors"), dtype=torch.float32)
    assert getattr(loaded, "is_diffusion", False)
    assert set(dict(loaded.per_channel_statistics.named_buffers())) == {"mean-of-means", "std-of-means"}
    z = _latent(3)
    torch.testing.assert_close(
        loaded.decode(z, generator=_gen(1)), vae.decode(z, generator=_gen(1)), rtol=1e-4, atol=1e-4
    )
    pixels = torch.rand(1, 3, 9, 64, 64) * 2 - 1
    assert loaded.encode(pixels).shape == (1, 128, 2, 2, 2)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"model_output_type": "eps"}, "model_output_type"),
        ({"decoder": {"stage_channels": [32, 32, 16, 16, 20]}}, "head_dim"),
        ({"decoder": {"stage_depths": [1, 1, 1, 1]}}, "5 stages"),
        ({"decoder": {"upsamples": [[[1, 2, 2], 1], [[2, 1, 1], 2], [[2, 2, 2], 1], [[1, 2, 2], 1]]}}, "x8"),
    ],
)
def test_unsupported_decoder_configs_are_refused(override: dict, key: str) -> None:
    section = tiny_diffusion_vae_section()
    if "decoder" in override:
        section["decoder"] = {**section["decoder"], **override["decoder"]}
    else:
        section |= override
    with pytest.raises(ConfigError) as err:
        DiffusionDecoderConfig.from_metadata(section)
    assert key in err.value.message and err.value.code == codes.CONFIG_UNSUPPORTED_VALUE


def test_x0_output_type_returns_the_last_prediction() -> None:
    """model_output_type x0: intermediate steps convert x0 to a velocity, the last returns the prediction."""
    section = tiny_diffusion_vae_section() | {"model_output_type": "x0"}
    model = random_diffusion_vae(section, seed=3)
    out = model.decode(_latent(3), generator=_gen(0))
    assert out.shape == (1, 3, 17, 64, 64) and torch.isfinite(out).all()
