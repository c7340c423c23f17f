"""Audio VAE + vocoders at tiny size: official-layout checkpoints load strictly, shapes/lengths, causality."""

from __future__ import annotations

import pytest
import torch

from ltx2stream.errors import CheckpointError
from ltx2stream.models.audio import (
    AudioCodec,
    AudioVAE,
    AudioVAEConfig,
    GeneratorConfig,
    VocoderConfig,
    VocoderWithBWE,
    audio_vae_checkpoint_tensors,
    build_vocoder,
    encode_audio,
    load_audio_codec,
    load_audio_vae,
    load_vocoder,
    tiny_audio_vae_config,
    tiny_vocoder_config,
    vocoder_checkpoint_tensors,
)
from ltx2stream.models.audio.mel import MelFrontEnd
from ltx2stream.models.loading import build_on_meta, open_checkpoint, save_checkpoint

FLAVOURS = ["ltx2", "ltx2.3"]
_AMP = {
    "resblock": "AMP1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5]] * 3,
    "stereo": True,
    "use_tanh_at_final": False,
    "activation": "snakebeta",
    "use_bias_at_final": False,
}
VOCODER_23 = {  # the LTX-2.3 embedded `vocoder` section
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


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights and random (positive std) latent statistics; anti-alias filters stay as built."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.1))
        for name, b in module.named_buffers():
            if name.endswith("mean-of-means"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("std-of-means"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


@pytest.fixture(scope="module", params=FLAVOURS)
def saved(request, tmp_path_factory):
    flavour = request.param
    torch.manual_seed(0)
    vae, voc = AudioVAE(tiny_audio_vae_config(flavour)), build_vocoder(tiny_vocoder_config(flavour))
    _randomise(vae, 1)
    _randomise(voc, 2)
    tensors = {**audio_vae_checkpoint_tensors(vae), **vocoder_checkpoint_tensors(voc)}
    config = {
        "audio_vae": vae.cfg.to_metadata(),
        "vocoder": voc.cfg.to_metadata() if flavour == "ltx2" else tiny_vocoder_config(flavour).to_metadata(),
    }
    path = save_checkpoint(tmp_path_factory.mktemp(flavour) / "tiny.safetensors", tensors, config=config)
    return flavour, vae.eval(), voc.eval(), path


def test_official_layout_loads_strictly(saved):
    flavour, vae, voc, path = saved
    ckpt = open_checkpoint(path)
    keys = set(ckpt.keys)
    assert "audio_vae.per_channel_statistics.mean-of-means" in keys
    assert "audio_vae.encoder.down.1.block.0.nin_shortcut.conv.weight" in keys
    assert "audio_vae.decoder.up.2.upsample.conv.conv.weight" in keys
    if flavour == "ltx2":
        assert {"vocoder.conv_pre.weight", "vocoder.ups.0.weight", "vocoder.conv_post.bias"} <= keys
    else:
        assert {
            "vocoder.vocoder.act_post.act.alpha",
            "vocoder.vocoder.act_post.upsample.filter",
            "vocoder.vocoder.resblocks.0.acts1.0.downsample.lowpass.filter",
            "vocoder.mel_stft.mel_basis",
            "vocoder.mel_stft.stft_fn.forward_basis",
            "vocoder.mel_stft.stft_fn.inverse_basis",
            "vocoder.bwe_generator.conv_pre.weight",
        } <= keys
        assert "vocoder.vocoder.conv_post.bias" not in keys and not any("resampler" in k for k in keys)
    lvae, lvoc = load_audio_vae(ckpt), load_vocoder(ckpt)
    assert set(lvae.state_dict()) == set(vae.state_dict())
    assert set(vocoder_checkpoint_tensors(lvoc)) == {k for k in keys if k.startswith("vocoder.")}
    mel = torch.randn(1, 2, 9, 64)
    with torch.no_grad():
        assert torch.equal(lvoc(mel), voc(mel))
        lat = lvae.encode(mel)
        assert torch.equal(lat, vae.encode(mel))
        assert torch.equal(lvae.decode(lat), vae.decode(lat))


def test_missing_key_is_refused(saved, tmp_path):
    _, _, _, path = saved
    ckpt = open_checkpoint(path)
    tensors = {k: t for k, t in ckpt.read("").items() if not k.endswith("conv_post.weight")}
    broken = open_checkpoint(
        save_checkpoint(tmp_path / "broken.safetensors", tensors, config=dict(ckpt.config))
    )
    with pytest.raises(CheckpointError, match="conv_post.weight"):
        load_vocoder(broken)


def test_decoder_only_load_skips_encoder_keys(saved):
    _, vae, _, path = saved
    codec = load_audio_codec(open_checkpoint(path), with_encoder=False)
    assert not hasattr(codec.vae, "encoder") and codec.front_end is None
    lat = torch.randn(1, 8, 3, 16)
    with torch.no_grad():
        assert torch.equal(codec.vae.decode(lat), vae.decode(lat))


def test_waveform_round_trip_lengths(saved):
    flavour, _, _, path = saved
    codec: AudioCodec = load_audio_codec(open_checkpoint(path))
    vcfg: VocoderConfig = (
        codec.vocoder.cfg if flavour == "ltx2.3" else VocoderConfig(vocoder=codec.vocoder.cfg)
    )
    wave = torch.randn(1, 2, 48000) * 0.1  # 1.0 s at 48 kHz, resampled to 16 kHz inside
    latent = codec.encode_audio(wave, 48000)
    assert latent.shape == (1, 8, 26, 16)  # 101 mel frames -> (101 - 1) // 4 + 1 latent frames
    assert codec.encode_audio(wave, 48000, frames=25).shape == (1, 8, 25, 16)  # round(1.0 s * 25)
    assert torch.equal(codec.encode_audio(wave, 48000, frames=28)[:, :, 26:], torch.zeros(1, 8, 2, 16))
    mel = codec.vae.decode(latent)
    assert mel.shape == (1, 2, 101, 64)
    out = codec.decode_audio(latent)
    wave_out, rate = out  # unpacks as (waveform, sample_rate)
    assert rate == out.sample_rate and wave_out is out.waveform
    assert out.sample_rate == vcfg.output_sampling_rate == codec.sample_rate
    assert out.waveform.shape == (1, 2, 101 * vcfg.hop_product)
    assert out.waveform.dtype == torch.float32 and out.waveform.abs().max() <= 1.0


def test_encoder_is_causal_along_time():
    """Mel frame t (centred STFT, n_fft 1024) sees samples < 160 t + 512; latent j sees mel rows <= 4 j.

    So a change at sample s >= 160 t + 512 leaves mel frames <= t and latent frames <= t // 4 untouched.
    """
    torch.manual_seed(3)
    vae = AudioVAE(tiny_audio_vae_config("ltx2"))
    _randomise(vae, 4)
    front = MelFrontEnd(vae.cfg)
    wave = torch.randn(1, 2, 16000) * 0.1
    changed = wave.clone()
    s = 8000
    changed[..., s:] += torch.randn(1, 2, 16000 - s) * 0.1
    with torch.no_grad():
        m0, m1 = front(wave), front(changed)
        last_mel = (s - 512) // 160  # 46
        assert torch.equal(m0[:, :, : last_mel + 1], m1[:, :, : last_mel + 1])
        assert not torch.allclose(m0[:, :, last_mel + 1], m1[:, :, last_mel + 1])
        z0, z1 = vae.encode(m0), vae.encode(m1)
        last_lat = last_mel // 4  # 11
        assert torch.allclose(z0[:, :, : last_lat + 1], z1[:, :, : last_lat + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(z0[:, :, last_lat + 1], z1[:, :, last_lat + 1], atol=1e-4)


def test_decoder_is_causal_along_time():
    """Latent frames >= k only touch decoded mel rows >= 4 k - 3."""
    torch.manual_seed(5)
    vae = AudioVAE(tiny_audio_vae_config("ltx2"))
    _randomise(vae, 6)
    z = torch.randn(1, 8, 10, 16)
    z2 = z.clone()
    k = 6
    z2[:, :, k:] += 1.0
    with torch.no_grad():
        a, b = vae.decode(z), vae.decode(z2)
    assert a.shape == (1, 2, 37, 64)
    assert torch.allclose(a[:, :, : 4 * k - 3], b[:, :, : 4 * k - 3], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, :, 4 * k - 3], b[:, :, 4 * k - 3], atol=1e-4)


def test_encode_accepts_mono_and_checks_shapes():
    vae = AudioVAE(tiny_audio_vae_config("ltx2")).eval()
    assert encode_audio(torch.zeros(1, 1, 3200), 16000, vae).shape == (1, 8, 6, 16)
    with pytest.raises(Exception, match="audio latent"):
        vae.decode(torch.zeros(1, 8, 4, 8))


def test_bwe_runs_in_float32_for_low_precision_weights():
    voc = build_vocoder(tiny_vocoder_config("ltx2.3")).to(torch.bfloat16)
    assert isinstance(voc, VocoderWithBWE)
    with torch.no_grad():
        out = voc(torch.randn(1, 2, 5, 64, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (1, 2, 5 * 12)
    assert next(voc.parameters()).dtype == torch.bfloat16  # weights restored after the fp32 pass


def test_full_size_layout_matches_the_released_shapes():
    vae = build_on_meta(lambda: AudioVAE(AudioVAEConfig()))
    sd = {k: tuple(v.shape) for k, v in audio_vae_checkpoint_tensors(vae).items()}
    assert sd["audio_vae.encoder.conv_in.conv.weight"] == (128, 2, 3, 3)
    assert sd["audio_vae.encoder.down.1.block.0.nin_shortcut.conv.weight"] == (256, 128, 1, 1)
    assert sd["audio_vae.encoder.conv_out.conv.weight"] == (16, 512, 3, 3)
    assert sd["audio_vae.decoder.conv_in.conv.weight"] == (512, 8, 3, 3)
    assert sd["audio_vae.decoder.up.2.upsample.conv.conv.weight"] == (512, 512, 3, 3)
    assert sd["audio_vae.decoder.conv_out.conv.weight"] == (2, 128, 3, 3)
    assert sd["audio_vae.per_channel_statistics.std-of-means"] == (128,)
    hifi = vocoder_checkpoint_tensors(build_on_meta(lambda: build_vocoder(VocoderConfig(GeneratorConfig()))))
    assert tuple(hifi["vocoder.conv_pre.weight"].shape) == (1024, 128, 7)
    assert tuple(hifi["vocoder.ups.0.weight"].shape) == (1024, 512, 16)
    assert tuple(hifi["vocoder.conv_post.weight"].shape) == (2, 32, 7)
    assert max(int(k.split(".")[2]) for k in hifi if k.startswith("vocoder.resblocks.")) == 14
    big = vocoder_checkpoint_tensors(
        build_on_meta(lambda: build_vocoder(VocoderConfig.from_metadata(VOCODER_23)))
    )
    assert sum(t.numel() for k, t in big.items() if "filter" not in k and "basis" not in k) > 128_000_000
    assert tuple(big["vocoder.mel_stft.mel_basis"].shape) == (64, 257)
    assert tuple(big["vocoder.mel_stft.stft_fn.forward_basis"].shape) == (514, 1, 512)
    assert tuple(big["vocoder.vocoder.conv_pre.weight"].shape) == (1536, 128, 7)
    assert tuple(big["vocoder.bwe_generator.conv_pre.weight"].shape) == (512, 128, 7)
    assert "vocoder.vocoder.conv_post.bias" not in big


def _reach_mel_frames(vocoder: torch.nn.Module, mel_bins: int, hop: int) -> tuple[float, float]:
    """How many mel frames before / after a change the vocoder's output changes (perturbation)."""
    g = torch.Generator().manual_seed(7)
    mel = torch.randn(1, 2, 120, mel_bins, generator=g)
    later, earlier = mel.clone(), mel.clone()
    later[:, :, 60:] += 1.0
    earlier[:, :, :60] += 1.0
    with torch.no_grad():
        base = vocoder(mel)
        a = (vocoder(later) - base).abs().amax(dim=(0, 1))
        b = (vocoder(earlier) - base).abs().amax(dim=(0, 1))
    return 60 - int((a > 0).nonzero()[0]) / hop, int((b > 0).nonzero()[-1]) / hop - 60


def _released_23_structure() -> torch.nn.Module:
    """The released LTX-2.3 vocoder + BWE structure (rates, kernels, dilations) at a few channels."""
    import copy

    section = copy.deepcopy(VOCODER_23)
    section["vocoder"]["upsample_initial_channel"] = 64
    section["bwe"]["upsample_initial_channel"] = 32
    return build_vocoder(VocoderConfig.from_metadata(section))


@pytest.mark.parametrize("flavour", [*FLAVOURS, "released-2.3", "pocket"])
def test_vocoded_spans_equal_the_whole_decode(flavour: str) -> None:
    """``vocode_span`` returns the whole decode's samples of any span: ``vocoder_margin_mel`` covers the
    vocoder's reach on both sides (the tiny flavours, the released LTX-2.3 structure, and the released LTX-2
    rates, which the pocket vocoder has). Default initialisation: activations neither saturate (which would hide
    the reach) nor blow up (float rounding of kernels run on another length)."""
    from ltx2stream.models.audio.codec import vocoder_margin_mel
    from ltx2stream.pocket.spec import PocketSpec

    torch.manual_seed(11)
    if flavour == "pocket":
        spec = PocketSpec()
        vae, voc = spec.build("audio_vae", 1), spec.build("vocoder", 2)
    else:
        vae = AudioVAE(tiny_audio_vae_config("ltx2.3" if flavour == "released-2.3" else flavour))
        voc = (
            _released_23_structure()
            if flavour == "released-2.3"
            else build_vocoder(tiny_vocoder_config(flavour))
        )
    vae, voc = vae.eval(), voc.eval()
    ahead, behind = _reach_mel_frames(voc, vae.cfg.mel_bins, voc.hop_product)
    assert 1 <= ahead <= vocoder_margin_mel(voc) and 1 <= behind <= vocoder_margin_mel(voc), (ahead, behind)
    if flavour == "released-2.3":
        return  # the structure's reach only (its spans equal as the tiny 2.3 one's do)
    codec = AudioCodec(vae, voc)
    latent = torch.randn(1, 8, 40, 16, generator=torch.Generator().manual_seed(8))
    whole = codec.decode_audio(latent).waveform
    mel = codec.decode_mel(latent)
    n, hop = whole.shape[-1], voc.hop_product
    for start, stop in (
        (0, 1),
        (0, 10 * hop + 7),
        (3, 60 * hop),
        (70 * hop + 5, 100 * hop),
        (n - 50, n + 100),
    ):
        part = codec.vocode_span(mel, start, stop)
        assert part.shape == (1, 2, min(stop, n) - start)
        torch.testing.assert_close(part, whole[..., start : min(stop, n)], atol=1e-5, rtol=0)
    assert codec.vocode_span(mel, n, n + 5).shape == (1, 2, 0)
    from ltx2stream.models.audio import codec as codec_module

    decoded: list[int] = []  # latent frames each mel decode was given
    real_decode_mel = codec_module.decode_mel

    def spy(z: torch.Tensor, v: AudioVAE) -> torch.Tensor:
        decoded.append(z.shape[2])
        return real_decode_mel(z, v)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec_module, "decode_mel", spy)
        for start, stop in ((0, 1), (3 * hop, 20 * hop + 9), (40 * hop, 90 * hop), (n - 50, n)):
            part = codec.decode_span(latent, start, stop)  # from the causal latent prefix the span needs
            torch.testing.assert_close(part, whole[..., start:stop], atol=1e-5, rtol=0)
    rows = -(-(20 * hop + 9) // hop) + vocoder_margin_mel(voc)  # the mel rows the span reads, reach included
    shortest = min(k for k in range(1, 41) if vae.cfg.mel_frames_for_latents(k) >= rows)
    assert decoded[1] == shortest < 40 and decoded[-1] == 40, decoded
