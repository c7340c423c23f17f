"""Audio VAE / vocoder configs: official embedded sections, round trips, rejection of unsupported values."""

from __future__ import annotations

import copy

import pytest

from ltx2stream.errors import ConfigError
from ltx2stream.models.audio import AudioVAEConfig, VocoderConfig, tiny_audio_vae_config, tiny_vocoder_config

# Values as embedded in the released checkpoints (LTX-2.3 dump; LTX-2 flat vocoder section).
AUDIO_VAE_SECTION = {
    "model": {
        "params": {
            "ddconfig": {
                "double_z": True,
                "mel_bins": 64,
                "z_channels": 8,
                "resolution": 256,
                "downsample_time": False,
                "in_channels": 2,
                "out_ch": 2,
                "ch": 128,
                "ch_mult": [1, 2, 4],
                "num_res_blocks": 2,
                "attn_resolutions": [],
                "dropout": 0.0,
                "mid_block_add_attention": False,
                "norm_type": "pixel",
                "causality_axis": "height",
            },
            "sampling_rate": 16000,
        }
    },
    "preprocessing": {
        "audio": {
            "sampling_rate": 16000,
            "max_wav_value": 32768.0,
            "duration": 5.12,
            "stereo": True,
            "causal_padding": 3,
        },
        "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "causal": True},
        "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
    },
}
_AMP = {
    "resblock": "AMP1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5]] * 3,
    "stereo": True,
    "use_tanh_at_final": False,
    "activation": "snakebeta",
    "use_bias_at_final": False,
}
VOCODER_23 = {
    "vocoder": {
        **_AMP,
        "upsample_initial_channel": 1536,
        "upsample_rates": [5, 2, 2, 2, 2, 2],
        "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
    },
    "bwe": {
        **_AMP,
        "upsample_initial_channel": 512,
        "upsample_rates": [6, 5, 2, 2, 2],
        "upsample_kernel_sizes": [12, 11, 4, 4, 4],
        "apply_final_activation": False,
        "input_sampling_rate": 16000,
        "output_sampling_rate": 48000,
        "hop_length": 80,
        "n_fft": 512,
        "win_size": 512,
        "num_mels": 64,
    },
}
VOCODER_2 = {
    "resblock": "1",
    "stereo": True,
    "upsample_initial_channel": 1024,
    "upsample_rates": [6, 5, 2, 2, 2],
    "upsample_kernel_sizes": [16, 15, 8, 4, 4],
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5]] * 3,
}


def test_released_audio_vae_section():
    cfg = AudioVAEConfig.from_metadata(AUDIO_VAE_SECTION)
    assert cfg == AudioVAEConfig()
    assert (cfg.z_channels, cfg.latent_bins, cfg.latent_features, cfg.latents_per_second) == (
        8,
        16,
        128,
        25.0,
    )
    assert [cfg.mel_frames_for_latents(t) for t in (1, 2, 26)] == [1, 5, 101]
    assert AudioVAEConfig.from_metadata(cfg.to_metadata()) == cfg


def test_released_vocoder_sections_pick_the_vocoder():
    v2 = VocoderConfig.from_metadata(VOCODER_2)
    assert (v2.kind, v2.output_sampling_rate, v2.hop_product, v2.bwe) == ("hifigan", 24000, 240, None)
    v23 = VocoderConfig.from_metadata(VOCODER_23)
    assert (v23.kind, v23.output_sampling_rate, v23.hop_product) == ("bigvgan_bwe", 48000, 480)
    assert v23.vocoder.output_sampling_rate == 16000 and v23.vocoder.hop_product == 160
    assert v23.vocoder.apply_final_activation and not v23.bwe.generator.apply_final_activation
    for cfg in (v2, v23):
        assert VocoderConfig.from_metadata(cfg.to_metadata()) == cfg
    assert v2.output_samples(101) == 101 * 240


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_tiny_configs_keep_structure(flavour):
    a = tiny_audio_vae_config(flavour)
    assert (a.z_channels, a.latent_bins, a.mel_bins, len(a.ch_mult)) == (8, 16, 64, 3)
    v = tiny_vocoder_config(flavour)
    assert v.kind == ("hifigan" if flavour == "ltx2" else "bigvgan_bwe")
    assert VocoderConfig.from_metadata(v.to_metadata()) == v
    assert AudioVAEConfig.from_metadata(a.to_metadata()) == a


def _with(section: dict, path: tuple[str, ...], value: object) -> dict:
    out = copy.deepcopy(section)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("section", "path", "value"),
    [
        (VOCODER_2, ("resblock",), "2"),  # unknown vocoder block type
        ({**VOCODER_2, "activation": "snakebeta"}, ("resblock",), "AMP1"),  # flat config must be HiFi-GAN
        (VOCODER_23, ("vocoder", "resblock"), "1"),  # nested config must be BigVGAN
        (VOCODER_23, ("vocoder", "activation"), "snake"),
        (VOCODER_23, ("bwe", "output_sampling_rate"), 44100),
        (VOCODER_2, ("stereo",), False),
        (VOCODER_2, ("upsample_kernel_sizes",), [15, 15, 8, 4, 4]),
    ],
)
def test_unsupported_vocoder_values(section, path, value):
    with pytest.raises(ConfigError) as e:
        VocoderConfig.from_metadata(_with(section, path, value))
    assert path[-1] in str(e.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("norm_type", "group"),
        ("causality_axis", "width"),
        ("mid_block_add_attention", True),
        ("attn_resolutions", [64]),
    ],
)
def test_unsupported_audio_vae_values(key, value):
    with pytest.raises(ConfigError) as e:
        AudioVAEConfig.from_metadata(_with(AUDIO_VAE_SECTION, ("model", "params", "ddconfig", key), value))
    assert key in str(e.value)


def test_missing_attention_flag_takes_official_default_and_is_refused():
    section = copy.deepcopy(AUDIO_VAE_SECTION)
    del section["model"]["params"]["ddconfig"]["mid_block_add_attention"]
    with pytest.raises(ConfigError):
        AudioVAEConfig.from_metadata(section)


def test_unknown_tiny_flavour():
    with pytest.raises(ConfigError):
        tiny_vocoder_config("ltx3")
