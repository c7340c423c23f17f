"""DiT at tiny size: x0 with per-token sigma, perturbations, self-attention mask, A/V gates, inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ltx2stream.errors import InputError
from ltx2stream.models.transformer import (
    LTXAVModel,
    Modality,
    Perturbations,
    attention_mask_bias,
    randomize_,
    tiny_modalities,
    tiny_transformer_config,
    to_denoised,
)

FLAVOURS = ["ltx2", "ltx2.3"]


def _model(flavour: str, layers: int = 2, seed: int = 0) -> LTXAVModel:
    cfg = dataclasses.replace(tiny_transformer_config(flavour), num_layers=layers)
    return randomize_(LTXAVModel(cfg), seed).eval()  # type: ignore[return-value]


def _run(model: LTXAVModel, video: Modality | None, audio: Modality | None, p: Perturbations | None = None):
    with torch.no_grad():
        return model(video, audio, p)


def test_to_denoised_per_token_sigma_and_clean_tokens() -> None:
    x, v = torch.randn(2, 5, 4, dtype=torch.bfloat16), torch.randn(2, 5, 4, dtype=torch.bfloat16)
    sigma = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.5], [0.9, 0.9, 0.9, 0.9, 0.0]])
    x0 = to_denoised(x, v, sigma)
    assert x0.dtype == torch.float32
    assert torch.equal(x0[0, :2], x[0, :2].float()) and torch.equal(
        x0[1, 4], x[1, 4].float()
    )  # sigma 0: x0 == x
    assert torch.allclose(x0, x.float() - v.float() * sigma[..., None])
    assert torch.equal(to_denoised(x, v, sigma[..., None]), x0)  # [B, T, 1] accepted too


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_conditioning_tokens_keep_their_latent(flavour: str) -> None:
    model = _model(flavour)
    video, audio = tiny_modalities(model.config, batch=2, sigma=0.7)
    mask = torch.ones_like(video.timesteps)
    mask[:, :4] = 0.0  # first latent frame (2x2 tokens) is a clean conditioning frame
    video = dataclasses.replace(video, timesteps=video.sigma[:, None] * mask)
    v, _ = _run(model, video, audio)
    x0 = to_denoised(video.latent, v, video.timesteps)
    assert torch.equal(x0[:, :4], video.latent[:, :4]) and not torch.allclose(x0[:, 4:], video.latent[:, 4:])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_skip_a2v_and_v2a_change_only_their_target_in_one_block(flavour: str) -> None:
    """Both directions read one pre-A/V snapshot, so in a 1-block model A2V cannot reach the audio output."""
    model = _model(flavour, layers=1)
    video, audio = tiny_modalities(model.config, batch=2)
    v, a = _run(model, video, audio)
    v1, a1 = _run(model, video, audio, Perturbations(skip_a2v=True))
    assert torch.equal(a1, a) and not torch.allclose(v1, v)
    v2, a2 = _run(model, video, audio, Perturbations(skip_v2a=True))
    assert torch.equal(v2, v) and not torch.allclose(a2, a)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_isolated_streams_equal_single_modality_runs(flavour: str) -> None:
    model = _model(flavour)
    video, audio = tiny_modalities(model.config)
    v_only, none = _run(model, video, None)
    assert none is None
    none, a_only = _run(model, None, audio)
    assert none is None
    v, a = _run(model, video, audio, Perturbations(skip_a2v=True, skip_v2a=True))
    assert torch.allclose(v, v_only, atol=1e-6) and torch.allclose(a, a_only, atol=1e-6)
    v_av, a_av = _run(model, video, audio)
    assert not torch.allclose(v_av, v_only) and not torch.allclose(a_av, a_only)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_skip_self_attention_is_block_specific(flavour: str) -> None:
    model = _model(flavour, layers=2)
    video, audio = tiny_modalities(model.config)
    captured: list[torch.Tensor] = []
    hook = model.transformer_blocks[0].register_forward_hook(lambda m, i, out: captured.append(out[0]))
    base_v, base_a = _run(model, video, audio, Perturbations(skip_v2a=True))
    v, a = _run(model, video, audio, Perturbations(skip_video_self_attn=frozenset({1}), skip_v2a=True))
    hook.remove()
    assert torch.equal(captured[0], captured[1])  # block 0 untouched
    assert not torch.allclose(v, base_v) and torch.equal(a, base_a)  # audio never reads video with V2A off
    base_v, base_a = _run(model, video, audio, Perturbations(skip_a2v=True))
    v, a = _run(model, video, audio, Perturbations(skip_audio_self_attn=frozenset({0}), skip_a2v=True))
    assert torch.equal(v, base_v) and not torch.allclose(a, base_a)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_skip_self_attention_is_an_identity_map_not_a_zeroed_branch(flavour: str) -> None:
    """With one video token softmax attention is already the identity, so skipping it must change nothing."""
    model = _model(flavour, layers=1)
    video, _ = tiny_modalities(model.config, latent_frames=1, latent_height=1, latent_width=1)
    skip = Perturbations(skip_video_self_attn=frozenset({0}))
    plain, _ = _run(model, video, None)
    skipped, _ = _run(model, video, None, skip)
    assert torch.allclose(plain, skipped, atol=1e-6)
    hook = model.transformer_blocks[0].attn1.register_forward_hook(lambda m, i, out: torch.zeros_like(out))
    zeroed, _ = _run(model, video, None)
    hook.remove()
    assert not torch.allclose(zeroed, plain, atol=1e-3)  # the v0 "multiply by 0" behaviour would differ
    many, _ = tiny_modalities(model.config)
    assert not torch.allclose(_run(model, many, None)[0], _run(model, many, None, skip)[0])


def test_perturbations_none_and_range_check() -> None:
    model = _model("ltx2")
    video, audio = tiny_modalities(model.config)
    v, a = _run(model, video, audio)
    v0, a0 = _run(model, video, audio, Perturbations.none())
    assert torch.equal(v, v0) and torch.equal(a, a0)
    with pytest.raises(InputError, match=r"skip_audio_self_attn: block indices \[2\] out of range 0..1"):
        _run(model, video, audio, Perturbations(skip_audio_self_attn=frozenset({2})))


def test_attention_mask_bias_values() -> None:
    mask = torch.tensor([[[1.0, 0.5, 0.0]]])
    bias = attention_mask_bias(mask, torch.float32)
    assert bias.shape == (1, 1, 1, 3)
    assert bias[0, 0, 0, 0] == 0.0 and bias[0, 0, 0, 1].item() == pytest.approx(-0.6931472)
    assert bias[0, 0, 0, 2] == torch.finfo(torch.float32).min
    assert attention_mask_bias(mask, torch.bfloat16)[0, 0, 0, 2] == torch.finfo(torch.bfloat16).min


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_self_attention_mask_hides_a_token(flavour: str) -> None:
    model = _model(flavour, layers=1)
    video, _ = tiny_modalities(model.config, batch=2)
    t = video.latent.shape[1]
    hide0 = torch.ones(2, t, t)
    hide0[:, 1:, 0] = 0.0  # no other token may attend to token 0
    changed = video.latent.clone()
    changed[:, 0] += 1.0
    for mask, others_equal in ((hide0, True), (None, False)):
        out, _ = _run(model, dataclasses.replace(video, attention_mask=mask), None)
        out2, _ = _run(model, dataclasses.replace(video, latent=changed, attention_mask=mask), None)
        assert torch.allclose(out[:, 1:], out2[:, 1:], atol=1e-6) is others_equal
        assert not torch.allclose(out[:, 0], out2[:, 0])
    ones, _ = _run(model, dataclasses.replace(video, attention_mask=torch.ones(2, t, t)), None)
    assert torch.allclose(ones, _run(model, video, None)[0], atol=1e-6)
    half, _ = _run(model, dataclasses.replace(video, attention_mask=hide0 * 0 + 0.5 + 0.5 * hide0), None)
    assert not torch.allclose(half, ones)


def test_av_gate_follows_the_other_streams_scalar_sigma() -> None:
    """Current official variant: A/V scale/shift from the own per-token sigma, the gate from the other sigma.

    LTX-2 (no prompt AdaLN) uses ``audio.sigma`` nowhere but in the video side's A2V gate, so changing it
    (audio timesteps fixed) leaves the A2V inputs and the whole audio output unchanged and changes the video
    output.
    """
    model = _model("ltx2", layers=1)
    video, audio = tiny_modalities(model.config, batch=2)
    other = dataclasses.replace(audio, sigma=audio.sigma * 0.3)
    inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = model.transformer_blocks[0].audio_to_video_attn.register_forward_pre_hook(
        lambda m, args, kwargs: inputs.append((args[0], kwargs["context"])), with_kwargs=True
    )
    v, a = _run(model, video, audio)
    v2, a2 = _run(model, video, other)
    hook.remove()
    assert torch.equal(inputs[0][0], inputs[1][0]) and torch.equal(inputs[0][1], inputs[1][1])
    assert torch.equal(a, a2) and not torch.allclose(v, v2)
    per_token = dataclasses.replace(
        audio, timesteps=audio.timesteps * 0.3
    )  # own per-token sigma -> scale/shift
    v3, _ = _run(model, video, per_token)
    assert not torch.allclose(v3, v)


@pytest.mark.parametrize(
    ("field", "bad", "rule"),
    [
        ("latent", torch.zeros(1, 8, 64), "latent must be"),
        ("timesteps", torch.zeros(1, 8, 1), "timesteps must be"),
        ("sigma", torch.zeros(1, 1), "sigma must be"),
        ("positions", torch.zeros(1, 1, 8, 2), "positions must be"),
        ("context", torch.zeros(1, 8, 7), "context must be"),
        ("attention_mask", torch.ones(1, 8, 7), "attention_mask must be"),
    ],
)
def test_bad_inputs_name_the_field(field: str, bad: torch.Tensor, rule: str) -> None:
    model = _model("ltx2", layers=1)
    video, audio = tiny_modalities(model.config)
    with pytest.raises(InputError, match=f"video: {rule}") as err:
        _run(model, dataclasses.replace(video, **{field: bad}), audio)
    assert err.value.code == "input.modality_shape"


def test_batch_mismatch_and_no_modality() -> None:
    model = _model("ltx2.3", layers=1)
    video, _ = tiny_modalities(model.config, batch=1)
    _, audio = tiny_modalities(model.config, batch=2)
    with pytest.raises(InputError, match="batch sizes differ"):
        _run(model, video, audio)
    with pytest.raises(InputError, match="at least one"):
        _run(model, None, None)
