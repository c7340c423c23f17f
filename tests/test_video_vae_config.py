"""Video VAE config: official `vae` sections (LTX-2, LTX-2.3) build the official key layout; bad values refused."""

from __future__ import annotations

import pytest

from ltx2stream.errors import ConfigError
from ltx2stream.models.loading import build_on_meta
from ltx2stream.models.video_vae import (
    TilingConfig,
    VideoVAE,
    VideoVAEConfig,
    temporal_lookahead,
    tiny_video_vae_config,
    tiny_video_vae_metadata,
)

# The embedded `vae` sections of the released files (block lists as in the official configs, spec §3.3/§3.4).
LTX2_VAE = {
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "patch_size": 4,
    "norm_layer": "pixel_norm",
    "latent_log_var": "uniform",
    "encoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
    ],
    "causal_decoder": False,
    "timestep_conditioning": False,
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "reflect",
}
LTX23_VAE = {
    **{k: v for k, v in LTX2_VAE.items() if "padding" not in k},
    "encoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 4}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 1}],
        ["res_x", {"num_layers": 2}],
    ],
    "decoder_blocks": [
        ["res_x", 4],
        ["compress_space", {"multiplier": 2}],
        ["res_x", 6],
        ["compress_time", {"multiplier": 2}],
        ["res_x", 4],
        ["compress_all", {"multiplier": 1}],
        ["res_x", 2],
        ["compress_all", {"multiplier": 2}],
        ["res_x", 2],
    ],
    "decoder_base_channels": 128,
    "spatial_padding_mode": "zeros",
}


def _shapes(section: dict) -> dict[str, tuple[int, ...]]:
    vae = build_on_meta(lambda: VideoVAE(VideoVAEConfig.from_metadata(section)))
    return {k: tuple(v.shape) for k, v in vae.state_dict().items()}


def test_ltx2_section_builds_the_official_keys_and_shapes():
    shapes = _shapes(LTX2_VAE)
    expected = {  # spec §8.4
        "encoder.conv_in.conv.weight": (128, 48, 3, 3, 3),
        "encoder.down_blocks.1.conv.conv.weight": (64, 128, 3, 3, 3),
        "encoder.down_blocks.8.res_blocks.1.conv2.conv.weight": (2048, 2048, 3, 3, 3),
        "encoder.conv_out.conv.weight": (129, 2048, 3, 3, 3),
        "decoder.conv_in.conv.weight": (1024, 128, 3, 3, 3),
        "decoder.up_blocks.0.res_blocks.4.conv1.conv.weight": (1024, 1024, 3, 3, 3),
        "decoder.up_blocks.1.conv.conv.weight": (4096, 1024, 3, 3, 3),
        "decoder.up_blocks.6.res_blocks.4.conv2.conv.bias": (128,),
        "decoder.conv_out.conv.weight": (48, 128, 3, 3, 3),
        "per_channel_statistics.mean-of-means": (128,),
        "per_channel_statistics.mean-of-stds_over_std-of-means": (128,),
        "per_channel_statistics.channel": (128,),
    }
    assert {k: shapes[k] for k in expected} == expected
    assert "decoder.up_blocks.0.res_blocks.5.conv1.conv.weight" not in shapes
    assert not any("time_embedder" in k or "scale_shift_table" in k for k in shapes)


def test_ltx23_section_builds_the_23_decoder_ladder():
    shapes = _shapes(LTX23_VAE)
    assert shapes["encoder.conv_out.conv.weight"] == (129, 1024, 3, 3, 3)
    assert shapes["encoder.down_blocks.7.conv.conv.weight"] == (128, 1024, 3, 3, 3)  # x1 compress_all_res
    ladder = [  # (up block, conv out channels): 1024 -> 512 -> 512 -> 256 -> 128
        (1, 4096), (3, 4096), (5, 512), (7, 512),
    ]  # fmt: skip
    assert [(i, shapes[f"decoder.up_blocks.{i}.conv.conv.weight"][0]) for i, _ in ladder] == ladder
    assert [shapes[f"decoder.up_blocks.{i}.res_blocks.0.conv1.conv.weight"][0] for i in (0, 2, 4, 6, 8)] == [
        1024, 512, 512, 256, 128,
    ]  # fmt: skip
    assert shapes["decoder.up_blocks.8.res_blocks.3.conv2.conv.weight"] == (128, 128, 3, 3, 3)


def test_padding_keys_old_and_new():
    old = VideoVAEConfig.from_metadata(LTX2_VAE)
    assert (old.encoder_padding_mode, old.decoder_padding_mode) == ("zeros", "reflect")
    new = VideoVAEConfig.from_metadata(LTX23_VAE)
    assert (new.encoder_padding_mode, new.decoder_padding_mode) == ("zeros", "zeros")
    bare = VideoVAEConfig.from_metadata({})
    assert (bare.encoder_padding_mode, bare.decoder_padding_mode) == ("zeros", "reflect")
    assert bare.timestep_conditioning is True  # official default when the key is absent
    assert VideoVAEConfig.from_metadata(
        {**LTX2_VAE, "spatial_padding_mode": "replicate"}
    ).decoder_padding_mode == ("replicate")


@pytest.mark.parametrize(
    "section", [LTX2_VAE, LTX23_VAE, tiny_video_vae_metadata("ltx2")], ids=["2", "2.3", "tiny"]
)
def test_metadata_round_trip(section):
    cfg = VideoVAEConfig.from_metadata({**section, "_class_name": "CausalVideoAutoencoder"})
    meta = cfg.to_metadata()
    assert VideoVAEConfig.from_metadata(meta) == cfg
    assert meta["_class_name"] == "CausalVideoAutoencoder"
    assert (
        meta["encoder_blocks"] == section["encoder_blocks"]
        and meta["decoder_blocks"] == section["decoder_blocks"]
    )


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_tiny_config_keeps_the_real_structure(flavour):
    tiny = tiny_video_vae_config(flavour)
    real = VideoVAEConfig.from_metadata(LTX2_VAE if flavour == "ltx2" else LTX23_VAE)
    assert [b.name for b in tiny.encoder_blocks] == [b.name for b in real.encoder_blocks]
    assert [b.name for b in tiny.decoder_blocks] == [b.name for b in real.decoder_blocks]
    assert [b.get("residual") for b in tiny.decoder_blocks] == [
        b.get("residual") for b in real.decoder_blocks
    ]
    assert tiny.latent_channels == 128 and tiny.patch_size == 4
    assert (tiny.encoder_padding_mode, tiny.decoder_padding_mode) == (
        real.encoder_padding_mode,
        real.decoder_padding_mode,
    )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"dims": 2}, "dims"),
        ({"norm_layer": "layer_norm"}, "norm_layer"),
        ({"latent_log_var": "none"}, "latent_log_var"),
        ({"spatial_padding_mode": "mirror"}, "padding_mode"),
        (
            {"decoder_blocks": [["attn_res_x", {"num_layers": 1, "attention_head_dim": 64}]]},
            "attention_head_dim",
        ),
        ({"decoder_blocks": [["attn_res_x", 1]]}, "attn_res_x"),
        ({"encoder_blocks": [["res_x", {"num_layers": 1, "inject_noise": True}]]}, "inject_noise"),
        ({"encoder_blocks": [["compress_all_res", {"multiplier": 2}]]}, "x2 in time and x8 in space"),
        ({"encoder_blocks": [["compress_all_res", {"multiplier": 3}]]}, "multiplier=3"),
        ({"decoder_blocks": [["res_x", 1], ["compress_all", {"multiplier": 3}]]}, "multiplier=3"),
        ({"encoder_blocks": [["res_x", True]]}, "int or a dict"),
    ],
)
def test_unsupported_values_raise_config_error(override, needle):
    with pytest.raises(ConfigError, match=needle):
        VideoVAEConfig.from_metadata({**LTX2_VAE, **override})


def test_streamability_and_lookahead():
    assert VideoVAEConfig.from_metadata(LTX2_VAE).decoder_streamable
    assert not VideoVAEConfig.from_metadata({**LTX2_VAE, "norm_layer": "group_norm"}).decoder_streamable
    # one frame of look-ahead per kernel-3 conv, at each stage's frame rate (spec §3.3: 5 res blocks per level)
    assert temporal_lookahead(VideoVAEConfig.from_metadata(LTX2_VAE)) == 1 + 11 + 11 / 2 + 11 / 4 + 11 / 8
    assert temporal_lookahead(VideoVAEConfig.from_metadata({**LTX2_VAE, "causal_decoder": True})) == 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"spatial_tile_px": 48}, "spatial tile"),
        ({"spatial_tile_px": 100}, "spatial tile"),
        ({"spatial_overlap_px": 512}, "spatial overlap"),
        ({"spatial_overlap_px": 16}, "spatial overlap"),
        ({"temporal_tile_frames": 60}, "temporal tile"),
        ({"temporal_overlap_frames": 12}, "temporal overlap"),
        ({"temporal_context_frames": 4}, "temporal context"),
    ],
)
def test_tiling_config_validation(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        TilingConfig(**kwargs)


def test_tiling_defaults_are_the_spec_defaults():
    t = TilingConfig()
    assert (t.spatial_tile_px, t.spatial_overlap_px, t.temporal_tile_frames, t.temporal_overlap_frames) == (
        512, 64, 64, 24,
    )  # fmt: skip
