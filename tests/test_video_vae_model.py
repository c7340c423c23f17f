"""Tiny LTX-2 / LTX-2.3 video VAEs: strict official-layout loading, shapes, causality, statistics, timestep path."""

from __future__ import annotations

import pytest
import torch

from ltx2stream.errors import CheckpointError, InputError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.video_vae import (
    VideoVAE,
    load_video_vae,
    tiny_video_vae_config,
    video_vae_checkpoint_tensors,
)
from ltx2stream.models.video_vae.vae import STAT_NAMES

FLAVOURS = ["ltx2", "ltx2.3"]


def randomise(vae: VideoVAE, seed: int) -> VideoVAE:
    """Random weights (fan-in scaled), random statistics (std-of-means > 0); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("timestep_scale_multiplier"):
                continue
            fan_in = p[0].numel() if p.dim() > 1 else 10
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
        for name, b in vae.per_channel_statistics.named_buffers():
            b.copy_(
                torch.rand(b.shape, generator=g) + 0.5
                if name.startswith("std")
                else torch.randn(b.shape, generator=g)
            )
    return vae.eval()


def save_tiny(vae: VideoVAE, path) -> str:
    return save_checkpoint(path, video_vae_checkpoint_tensors(vae), config={"vae": vae.config.to_metadata()})


@pytest.fixture(scope="module", params=FLAVOURS)
def saved(request, tmp_path_factory):
    vae = randomise(VideoVAE(tiny_video_vae_config(request.param)), 1)
    path = save_tiny(vae, tmp_path_factory.mktemp(request.param) / "tiny.safetensors")
    return request.param, vae, path


def video(frames: int, h: int = 64, w: int = 96, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, frames, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_round_trip_shapes(saved):
    _, vae, _ = saved
    with torch.no_grad():
        lat = vae.encode(video(9, batch=2))
        assert lat.shape == (2, 128, 2, 2, 3)
        assert vae.decode(lat).shape == (2, 3, 9, 64, 96)
        image = vae.encode(video(1))
        assert image.shape == (1, 128, 1, 2, 3)
        assert vae.decode(image).shape == (1, 3, 1, 64, 96)


def test_official_layout_loads_strictly(saved):
    _, vae, path = saved
    ckpt = open_checkpoint(path)
    keys = set(ckpt.keys)
    assert {"vae.encoder.conv_in.conv.weight", "vae.decoder.conv_out.conv.bias"} <= keys
    assert {f"vae.per_channel_statistics.{n}" for n in STAT_NAMES} <= keys
    assert (
        "vae.decoder.up_blocks.1.conv.conv.weight" in keys
        and "vae.encoder.down_blocks.1.conv.conv.weight" in keys
    )
    loaded = load_video_vae(ckpt)
    assert set(video_vae_checkpoint_tensors(loaded)) == keys
    with torch.no_grad():
        lat = loaded.encode(video(9))
        assert torch.allclose(lat, vae.encode(video(9)), atol=1e-5)
        assert torch.allclose(loaded.decode(lat), vae.decode(lat), atol=1e-5)


@pytest.mark.parametrize("breakage", ["missing", "unexpected", "shape"])
def test_key_mismatch_is_refused(saved, tmp_path, breakage):
    _, _, path = saved
    ckpt = open_checkpoint(path)
    tensors = ckpt.read("")
    key = "vae.decoder.conv_out.conv.weight"
    if breakage == "missing":
        del tensors[key]
    elif breakage == "unexpected":
        tensors["vae.decoder.conv_out.extra"] = torch.zeros(1)
        key = "vae.decoder.conv_out.extra"
    else:
        tensors[key] = tensors[key][:-1]
    broken = open_checkpoint(save_checkpoint(tmp_path / "b.safetensors", tensors, config=dict(ckpt.config)))
    with pytest.raises(CheckpointError, match=key.removeprefix("vae.")):
        load_video_vae(broken)


def test_decoder_only_load_skips_encoder(saved):
    _, vae, path = saved
    dec = load_video_vae(open_checkpoint(path), with_encoder=False)
    assert not hasattr(dec, "encoder")
    lat = torch.randn(1, 128, 2, 2, 2)
    with torch.no_grad():
        assert torch.allclose(dec.decode(lat), vae.decode(lat), atol=1e-5)


def test_bfloat16_load_decodes_in_bfloat16(saved):
    _, _, path = saved
    vae = load_video_vae(open_checkpoint(path), dtype=torch.bfloat16)
    with torch.no_grad():
        out = vae.decode(torch.randn(1, 128, 1, 2, 2, dtype=torch.bfloat16))
    assert (
        out.dtype == torch.bfloat16 and out.shape == (1, 3, 1, 64, 64) and torch.isfinite(out.float()).all()
    )


def test_encoder_is_causal(saved):
    """Latent frame j (pixel frames 8j-7 .. 8j) must not change when frames after 8j change."""
    _, vae, _ = saved
    x = video(17, 64, 64)
    later = x.clone()
    later[:, :, 9:] = video(8, 64, 64, seed=5)  # frames after latent 1's span (1..8)
    within = x.clone()
    within[:, :, 8] = -x[:, :, 8]  # the last frame of latent 1's span
    with torch.no_grad():
        base, a, b = vae.encode(x), vae.encode(later), vae.encode(within)
    assert torch.equal(a[:, :, :2], base[:, :, :2])
    assert not torch.allclose(a[:, :, 2], base[:, :, 2])
    assert torch.equal(b[:, :, :1], base[:, :, :1])
    assert not torch.allclose(b[:, :, 1], base[:, :, 1])


@pytest.mark.parametrize(
    ("shape", "code", "rule"),
    [
        ((1, 3, 16, 64, 64), "input.frames_rule", "1 \\+ 8k"),
        ((1, 3, 9, 48, 64), "input.size_rule", "multiples of 32"),
        ((1, 3, 9, 64, 80), "input.size_rule", "multiples of 32"),
        ((3, 9, 64, 64), "input.video_shape", "B, 3, F, H, W"),
        ((1, 4, 9, 64, 64), "input.video_shape", "B, 3, F, H, W"),
    ],
)
def test_bad_pixel_shapes(saved, shape, code, rule):
    _, vae, _ = saved
    with pytest.raises(InputError, match=rule) as err:
        vae.encode(torch.zeros(shape))
    assert err.value.code == code


def test_bad_latent_shapes(saved):
    flavour, vae, _ = saved
    with pytest.raises(InputError, match="128") as err:
        vae.decode(torch.zeros(1, 64, 2, 2, 2))
    assert err.value.code == "input.latent_shape"
    if flavour == "ltx2":  # reflect padding in the decoder needs >= 2 latent cells
        with pytest.raises(InputError, match="reflect") as err:
            vae.decode(torch.zeros(1, 128, 2, 1, 2))
        assert err.value.code == "input.size_rule"


def test_normalisation_uses_mean_and_std_of_means_only(saved):
    _, vae, _ = saved
    stats = vae.per_channel_statistics
    mean = stats.get_buffer("mean-of-means")[None, :, None, None, None]
    std = stats.get_buffer("std-of-means")[None, :, None, None, None]
    x = video(9, 64, 64)
    with torch.no_grad():
        raw, lat = vae.encoder(x), vae.encode(x)
        assert torch.allclose(lat, (raw - mean) / std, atol=1e-6)
        assert torch.allclose(vae.denormalize(lat), raw, atol=1e-5)
        ref = vae.decoder(raw)
        assert torch.allclose(vae.decode(lat), ref, atol=1e-5)
        unused = {n: stats.get_buffer(n).clone() for n in STAT_NAMES[2:]}
        for n in unused:
            stats.get_buffer(n).mul_(-3).add_(7)
        try:
            assert torch.equal(vae.encode(x), lat)
            assert torch.allclose(vae.decode(lat), ref, atol=1e-5)
        finally:
            for n, t in unused.items():
                stats.get_buffer(n).copy_(t)


def test_timestep_conditioned_decoder(tmp_path):
    cfg = tiny_video_vae_config("ltx2", timestep_conditioning=True)
    vae = randomise(VideoVAE(cfg), 3)
    keys = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    assert keys["decoder.timestep_scale_multiplier"] == ()
    assert keys["decoder.last_scale_shift_table"] == (2, 8)
    assert keys["decoder.last_time_embedder.timestep_embedder.linear_1.weight"] == (16, 256)
    assert keys["decoder.up_blocks.0.time_embedder.timestep_embedder.linear_2.weight"] == (256, 256)
    assert keys["decoder.up_blocks.0.res_blocks.0.scale_shift_table"] == (4, 64)
    assert not any(k.startswith("encoder.") and "time" in k for k in keys)
    loaded = load_video_vae(open_checkpoint(save_tiny(vae, tmp_path / "t.safetensors")))
    lat = torch.randn(1, 128, 2, 2, 2)

    def dec(model, seed, **kw):
        with torch.no_grad():
            return model.decode(lat, generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.allclose(dec(vae, 0), dec(loaded, 0), atol=1e-5)
    assert not torch.allclose(dec(vae, 0), dec(vae, 1))  # 0.975 z + 0.025 noise
    assert not torch.allclose(dec(vae, 0), dec(vae, 0, timestep=0.5))
    assert torch.allclose(dec(vae, 0), dec(vae, 0, timestep=torch.tensor([0.05])))  # the default timestep


@pytest.mark.parametrize(
    ("causal", "padding_mode"), [(True, "zeros"), (False, "reflect"), (True, "replicate")]
)
def test_one_frame_conv_equals_the_padded_3d_conv(causal: bool, padding_mode: str) -> None:
    """A one-frame input runs as a 2-D conv with the temporal taps summed; the 3-D conv over the replicated
    frames gives the same values (up to summation order)."""
    from ltx2stream.models.video_vae.blocks import CausalConv3d

    torch.manual_seed(0)
    conv = CausalConv3d(8, 6, padding_mode=padding_mode)
    x = torch.randn(2, 8, 1, 9, 7)
    front, back = conv.time_padding(causal)
    padded = torch.cat([x] * (front + 1 + back), dim=2)
    assert conv(x, causal).shape == (2, 6, 1, 9, 7)
    torch.testing.assert_close(conv(x, causal), conv.conv(padded), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("channels", "causal", "padding_mode"),
    [(8, True, "reflect"), (32, False, "zeros"), (16, True, "replicate")],
)
def test_few_channel_conv_over_frames_equals_the_3d_conv(
    channels: int, causal: bool, padding_mode: str
) -> None:
    """Stride-1 convolutions on at most FRAMES_2D_MAX_CHANNELS inputs run as one 2-D conv over the frames with the
    temporal taps stacked (faster on CPU); values and gradients equal the 3-D conv's up to summation order."""
    from ltx2stream.models.video_vae import blocks

    assert channels <= blocks.FRAMES_2D_MAX_CHANNELS
    torch.manual_seed(0)
    conv = blocks.CausalConv3d(channels, 12, padding_mode=padding_mode)
    x = torch.randn(2, channels, 5, 9, 7, requires_grad=True)
    front, back = conv.time_padding(causal)
    padded = torch.cat([x[:, :, :1]] * front + [x] + [x[:, :, -1:]] * back, dim=2)
    got, want = conv(x, causal), conv.conv(padded)
    assert got.shape == (2, 12, 5, 9, 7) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    g_got = torch.autograd.grad(got.square().sum(), (x, conv.conv.weight))
    g_want = torch.autograd.grad(want.square().sum(), (x, conv.conv.weight))
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_one_frame_space_to_depth_equals_the_duplicated_frame_path() -> None:
    from ltx2stream.models.video_vae.blocks import CausalConv3d
    from ltx2stream.models.video_vae.sampling import SpaceToDepthDownsample, space_to_depth

    torch.manual_seed(0)
    down = SpaceToDepthDownsample(16, 16, (2, 2, 2))
    x = torch.randn(1, 16, 1, 8, 8)
    two = torch.cat([x, x], dim=2)  # the frame-0 copy of the general path
    conv = down.conv
    padded = torch.cat([two[:, :, :1]] * 2 + [two], dim=2)
    assert isinstance(conv, CausalConv3d)
    skip = space_to_depth(two, (2, 2, 2)).unflatten(1, (16, 8)).mean(dim=2)
    expected = space_to_depth(conv.conv(padded), (2, 2, 2)) + skip
    torch.testing.assert_close(down(x), expected, rtol=1e-5, atol=1e-5)
