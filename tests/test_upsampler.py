"""Latent upsamplers at tiny size: config, strict loading, shape rules, x2 layouts, normalisation."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from ltx2stream.errors import CheckpointError, ConfigError, InputError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.upsampler import (
    TINY_KINDS,
    LatentUpsampler,
    NormalizerFns,
    UpsamplerConfig,
    load_upsampler,
    random_upsampler,
    tiny_upsampler_config,
    upsample_video,
    upsampler_checkpoint_tensors,
    write_tiny_upsampler,
)
from ltx2stream.models.upsampler.blocks import BlurDownsample, PixelShuffleND
from ltx2stream.types import VideoLatentShape

RELEASED_X2 = {  # the flat config of a released spatial x2 file (spec §5)
    "in_channels": 128,
    "mid_channels": 1024,
    "num_blocks_per_stage": 4,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
}


def _latent(f: int = 2, h: int = 4, w: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 128, f, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ config


def test_config_from_metadata_defaults_and_round_trip() -> None:
    cfg = UpsamplerConfig.from_metadata({**RELEASED_X2, "_class_name": "LatentUpsampler"})
    assert (cfg.mid_channels, cfg.spatial_scale, cfg.rational_resampler, cfg.kind) == (
        1024,
        2.0,
        False,
        "spatial",
    )
    assert UpsamplerConfig.from_metadata({}).mid_channels == 512  # official default when absent
    for kind in TINY_KINDS:
        c = tiny_upsampler_config(kind)
        assert UpsamplerConfig.from_metadata(json.loads(json.dumps(c.to_metadata()))) == c


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"dims": 1}, "dims"),
        ({"spatial_scale": 1.5}, "spatial_scale"),  # plain resampler is x2 only
        ({"rational_resampler": True, "spatial_scale": 3.0}, "spatial_scale"),
        ({"spatial_upsample": False}, "spatial_upsample"),
        ({"mid_channels": 48}, "mid_channels"),
        ({"rational_resampler": "yes"}, "rational_resampler"),
        ({"temporal_upsample": True, "spatial_scale": 1.5}, "spatial_scale"),
        ({"dims": 2, "temporal_upsample": True, "spatial_upsample": False}, "dims=2"),
    ],
)
def test_config_rejects_unsupported_values(override: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as e:
        UpsamplerConfig.from_metadata({**RELEASED_X2, **override})
    assert e.value.code.startswith("config.")


def test_output_size_rules() -> None:
    x15 = tiny_upsampler_config("x1.5")
    assert x15.output_size(3, 16, 24) == (3, 24, 36)
    assert x15.output_size(1, 5, 7) == (1, 8, 11)  # odd sizes: ceil(H * 3 / 2)
    assert tiny_upsampler_config("x2").output_size(2, 5, 7) == (2, 10, 14)
    temporal = tiny_upsampler_config("temporal_x2")
    assert temporal.output_size(4, 5, 7) == (7, 5, 7)
    out = temporal.output_shape(VideoLatentShape(1, 128, 4, 5, 7))
    # latent frames 2F - 1  <->  pixel frames 2N - 1 (N = 25 -> 49): the frame rate doubles on the 1 + 8k grid
    assert out.to_pixel_frames() == 2 * VideoLatentShape(1, 128, 4, 5, 7).to_pixel_frames() - 1


# ------------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_every_kind_loads_strictly_and_reproduces(kind: str, tmp_path) -> None:
    path = write_tiny_upsampler(tmp_path / f"{kind}.safetensors", kind, seed=3)  # type: ignore[arg-type]
    ckpt = open_checkpoint(path)
    model = load_upsampler(path)
    assert set(model.state_dict()) == set(ckpt.keys)  # zero missing, zero unexpected
    assert model.config == tiny_upsampler_config(kind)  # type: ignore[arg-type]
    reference = random_upsampler(tiny_upsampler_config(kind), seed=3)  # type: ignore[arg-type]
    x = _latent(2, 4, 6)
    with torch.no_grad():
        y = model(x)
        assert torch.equal(y, reference(x))
    assert tuple(y.shape) == (1, 128, *model.config.output_size(2, 4, 6))


def test_official_key_names(tmp_path) -> None:
    keys = {k: set(open_checkpoint(write_tiny_upsampler(tmp_path / f"{k}.st", k)).keys) for k in TINY_KINDS}
    assert {
        "upsampler.0.weight",
        "upsampler.0.bias",
        "initial_conv.weight",
        "initial_norm.weight",
        "res_blocks.0.conv1.weight",
        "res_blocks.0.norm2.bias",
        "post_upsample_res_blocks.0.conv2.weight",
        "final_conv.weight",
    } <= keys["x2"]
    assert {"upsampler.conv.weight", "upsampler.conv.bias", "upsampler.blur_down.kernel"} <= keys[
        "x2_rational"
    ]
    assert not any(k.startswith("upsampler.0") for k in keys["x1.5"])
    with safe_open(str(tmp_path / "x1.5.st"), "pt") as f:
        assert tuple(f.get_slice("upsampler.conv.weight").get_shape()) == (9 * 32, 32, 3, 3)
        assert tuple(f.get_slice("upsampler.blur_down.kernel").get_shape()) == (1, 1, 5, 5)
    with safe_open(str(tmp_path / "temporal_x2.st"), "pt") as f:
        assert tuple(f.get_slice("upsampler.0.weight").get_shape()) == (64, 32, 3, 3, 3)


def test_bf16_load(tmp_path) -> None:
    model = load_upsampler(write_tiny_upsampler(tmp_path / "u.st", "x1.5"), dtype=torch.bfloat16)
    assert model.upsampler.blur_down.kernel.dtype == torch.bfloat16
    assert model(_latent().bfloat16()).shape == (1, 128, 2, 6, 9)


def test_dims2_trunk_runs_per_frame() -> None:
    model = random_upsampler(UpsamplerConfig(mid_channels=32, num_blocks_per_stage=1, dims=2))
    x = _latent(3, 4, 4)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, 128, 3, 8, 8)
        assert torch.allclose(y[:, :, 1], model(x[:, :, 1:2])[:, :, 0], atol=1e-5)  # frames are independent


# ---------------------------------------------------------------------------------------------- x2 layouts


def _as_rational(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {k.replace("upsampler.0.", "upsampler.conv."): v for k, v in state.items()}
    out["upsampler.blur_down.kernel"] = BlurDownsample(1).kernel
    return out


def test_plain_and_rational_x2_are_the_same_function() -> None:
    plain = random_upsampler(tiny_upsampler_config("x2"), seed=5)
    rational = LatentUpsampler(tiny_upsampler_config("x2_rational"))
    rational.load_state_dict(_as_rational(plain.state_dict()), strict=True)
    x = _latent(2, 3, 5)
    with torch.no_grad():
        assert torch.equal(plain(x), rational(x))


@pytest.mark.parametrize(("keys_from", "config_from"), [("x2_rational", "x2"), ("x2", "x2_rational")])
def test_x2_layout_follows_the_keys(keys_from: str, config_from: str, tmp_path) -> None:
    model = random_upsampler(tiny_upsampler_config(keys_from), seed=2)  # type: ignore[arg-type]
    path = save_checkpoint(
        tmp_path / "u.st",
        upsampler_checkpoint_tensors(model),
        config=tiny_upsampler_config(config_from).to_metadata(),  # type: ignore[arg-type]
    )
    loaded = load_upsampler(path)
    assert loaded.config.rational_resampler == (keys_from == "x2_rational")
    x = _latent()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_missing_and_unexpected_keys_are_listed(tmp_path) -> None:
    state = upsampler_checkpoint_tensors(random_upsampler(tiny_upsampler_config("x2")))
    cfg = tiny_upsampler_config("x2").to_metadata()
    state.pop("final_conv.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(
        CheckpointError, match=r"missing \[final_conv\.bias\].*unexpected \[extra\.weight\]"
    ) as e:
        load_upsampler(save_checkpoint(tmp_path / "bad.st", state, config=cfg))
    assert e.value.code == "checkpoint.key_mismatch"


def test_config_that_does_not_match_the_weights_is_a_shape_error(tmp_path) -> None:
    state = upsampler_checkpoint_tensors(random_upsampler(tiny_upsampler_config("x1.5")))
    path = save_checkpoint(
        tmp_path / "u.st", state, config=tiny_upsampler_config("x2_rational").to_metadata()
    )
    with pytest.raises(CheckpointError, match=r"upsampler\.conv\.weight: checkpoint \(288, 32, 3, 3\)"):
        load_upsampler(path)
    temporal = upsampler_checkpoint_tensors(random_upsampler(tiny_upsampler_config("temporal_x2")))
    path = save_checkpoint(tmp_path / "t.st", temporal, config=tiny_upsampler_config("x2").to_metadata())
    with pytest.raises(CheckpointError, match=r"upsampler\.0\.weight"):
        load_upsampler(path)


# ------------------------------------------------------------------------------------------------ blocks


def test_pixel_shuffle_matches_torch_and_blur_is_binomial() -> None:
    x = torch.randn(2, 4 * 3, 5, 7)
    assert torch.equal(PixelShuffleND(2, 2)(x), torch.nn.functional.pixel_shuffle(x, 2))
    t = torch.arange(2 * 3, dtype=torch.float32).reshape(1, 2, 3, 1, 1)  # channels (c=1, p=2), 3 frames
    assert PixelShuffleND(1)(t).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    row = torch.tensor([1.0, 4, 6, 4, 1]) / 16
    assert torch.allclose(BlurDownsample(2).kernel[0, 0], torch.outer(row, row))
    const = torch.ones(1, 3, 9, 9)
    blurred = BlurDownsample(2)(const)
    assert blurred.shape == (1, 3, 5, 5) and torch.allclose(blurred[..., 1:-1, 1:-1], torch.ones(1, 3, 3, 3))


def test_temporal_upsampler_drops_the_first_frame() -> None:
    model = random_upsampler(tiny_upsampler_config("temporal_x2"))
    with torch.no_grad():
        assert model(_latent(1)).shape[2] == 1
        assert model(_latent(3)).shape[2] == 5


def test_bad_latent_is_an_input_error() -> None:
    model = random_upsampler(tiny_upsampler_config("x2"))
    with pytest.raises(InputError, match=r"expects \[B, 128, F, H, W\]"):
        model(torch.zeros(1, 64, 1, 2, 2))
    with pytest.raises(InputError):
        model(torch.zeros(128, 1, 2, 2))


# ----------------------------------------------------------------------------------------- normalisation


class _Stats:
    """Per-channel statistics like the video VAE's: z = (x - mean) / std."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.mean = torch.randn(128, generator=g).view(1, 128, 1, 1, 1)
        self.std = (torch.rand(128, generator=g) + 0.5).view(1, 128, 1, 1, 1)

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self.mean) / self.std

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.std + self.mean


def test_upsample_video_works_in_unnormalised_space() -> None:
    model = random_upsampler(tiny_upsampler_config("x2"))
    stats = _Stats(0)
    z = _latent()
    assert torch.allclose(stats.normalize(stats.denormalize(z)), z, atol=1e-5)  # the statistics round trip
    out = upsample_video(z, model, stats)
    with torch.no_grad():
        expected = stats.normalize(model(stats.denormalize(z)))
        assert torch.equal(out, expected)
        assert not torch.allclose(out, model(z), atol=1e-3)  # skipping the (un)normalisation differs
    fns = NormalizerFns(stats.normalize, stats.denormalize)
    assert torch.equal(upsample_video(z, model, fns), out)
    assert upsample_video(z.bfloat16(), model, stats).dtype == torch.bfloat16
