"""AdaLN row order of every modulation table: perturb one row, see which input of which module moves and how.

A shift row moves its target input by exactly delta; a scale row by rms(x)*delta (so diff/delta has unit RMS
per token; LayerNorm statistics for the output head); a gate row leaves its target input alone and only moves
what comes after the gated branch; the prompt table's scale row moves the context by context*delta.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ltx2stream.models.transformer import LTXAVModel, randomize_, tiny_modalities, tiny_transformer_config

TRACKED = (
    "attn1",
    "attn2",
    "ff",
    "audio_attn1",
    "audio_attn2",
    "audio_ff",
    "audio_to_video_attn",
    "video_to_audio_attn",
)
# (table, row, kind, target module, slot: query input "x" or "ctx", module that must move for a gate)
BLOCK_ROWS = [
    ("scale_shift_table", 0, "shift", "attn1", "x", None),
    ("scale_shift_table", 1, "scale", "attn1", "x", None),
    ("scale_shift_table", 2, "gate", "attn1", "x", "attn2"),
    ("scale_shift_table", 3, "shift", "ff", "x", None),
    ("scale_shift_table", 4, "scale", "ff", "x", None),
    ("scale_shift_table", 5, "gate", "ff", "x", "proj_out"),
    ("scale_shift_table", 6, "shift", "attn2", "x", None),
    ("scale_shift_table", 7, "scale", "attn2", "x", None),
    ("scale_shift_table", 8, "gate", "attn2", "x", "ff"),
    ("prompt_scale_shift_table", 0, "shift", "attn2", "ctx", None),
    ("prompt_scale_shift_table", 1, "ctx_scale", "attn2", "ctx", None),
    ("audio_scale_shift_table", 0, "shift", "audio_attn1", "x", None),
    ("audio_scale_shift_table", 1, "scale", "audio_attn1", "x", None),
    ("audio_scale_shift_table", 2, "gate", "audio_attn1", "x", "audio_attn2"),
    ("audio_scale_shift_table", 3, "shift", "audio_ff", "x", None),
    ("audio_scale_shift_table", 4, "scale", "audio_ff", "x", None),
    ("audio_scale_shift_table", 5, "gate", "audio_ff", "x", "audio_proj_out"),
    ("audio_scale_shift_table", 6, "shift", "audio_attn2", "x", None),
    ("audio_scale_shift_table", 7, "scale", "audio_attn2", "x", None),
    ("audio_scale_shift_table", 8, "gate", "audio_attn2", "x", "audio_ff"),
    ("audio_prompt_scale_shift_table", 0, "shift", "audio_attn2", "ctx", None),
    ("audio_prompt_scale_shift_table", 1, "ctx_scale", "audio_attn2", "ctx", None),
    # A/V tables: (scale_a2v, shift_a2v, scale_v2a, shift_v2a, gate) -- scale before shift
    ("scale_shift_table_a2v_ca_video", 0, "scale", "audio_to_video_attn", "x", None),
    ("scale_shift_table_a2v_ca_video", 1, "shift", "audio_to_video_attn", "x", None),
    ("scale_shift_table_a2v_ca_video", 2, "scale", "video_to_audio_attn", "ctx", None),
    ("scale_shift_table_a2v_ca_video", 3, "shift", "video_to_audio_attn", "ctx", None),
    ("scale_shift_table_a2v_ca_video", 4, "gate", "audio_to_video_attn", "x", "ff"),
    ("scale_shift_table_a2v_ca_audio", 0, "scale", "audio_to_video_attn", "ctx", None),
    ("scale_shift_table_a2v_ca_audio", 1, "shift", "audio_to_video_attn", "ctx", None),
    ("scale_shift_table_a2v_ca_audio", 2, "scale", "video_to_audio_attn", "x", None),
    ("scale_shift_table_a2v_ca_audio", 3, "shift", "video_to_audio_attn", "x", None),
    ("scale_shift_table_a2v_ca_audio", 4, "gate", "video_to_audio_attn", "x", "audio_ff"),
]
HEAD_ROWS = [  # output head tables: (shift, scale)
    ("scale_shift_table", 0, "shift", "proj_out"),
    ("scale_shift_table", 1, "ln_scale", "proj_out"),
    ("audio_scale_shift_table", 0, "shift", "audio_proj_out"),
    ("audio_scale_shift_table", 1, "ln_scale", "audio_proj_out"),
]


def _model(flavour: str) -> LTXAVModel:
    cfg = dataclasses.replace(tiny_transformer_config(flavour), num_layers=1)
    return randomize_(LTXAVModel(cfg), seed=5).eval()  # type: ignore[return-value]


def _capture(model: LTXAVModel) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Query input and context of every tracked submodule for one forward on fixed inputs."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    block = model.transformer_blocks[0]
    modules = {name: getattr(block, name) for name in TRACKED}
    modules |= {"proj_out": model.proj_out, "audio_proj_out": model.audio_proj_out}
    hooks = [
        module.register_forward_pre_hook(
            lambda m, args, kwargs, name=name: seen.__setitem__(name, (args[0], kwargs.get("context"))),
            with_kwargs=True,
        )
        for name, module in modules.items()
    ]
    video, audio = tiny_modalities(model.config, batch=2, seed=1)
    with torch.no_grad():
        model(video, audio)
    for h in hooks:
        h.remove()
    return seen


def _perturbed(model: LTXAVModel, owner: torch.nn.Module, table: str, row: int, delta: torch.Tensor):
    param = getattr(owner, table)
    saved = param.detach().clone()
    with torch.no_grad():
        param[row] += delta
        try:
            return _capture(model)
        finally:
            param.copy_(saved)


def _check(
    kind: str, before: torch.Tensor, after: torch.Tensor, delta: torch.Tensor, raw: torch.Tensor | None
) -> None:
    diff = after - before
    if kind == "shift":
        assert torch.allclose(diff, delta.expand_as(diff), atol=1e-5)
    elif kind == "scale":  # diff = rms(x) * delta -> unit mean square per token
        assert torch.allclose((diff / delta).pow(2).mean(-1), torch.ones(diff.shape[:-1]), atol=1e-3)
    elif kind == "ln_scale":  # diff = LayerNorm(x) * delta -> zero mean, unit variance per token
        normed = diff / delta
        assert torch.allclose(normed.mean(-1), torch.zeros(diff.shape[:-1]), atol=1e-4)
        assert torch.allclose(normed.var(-1, unbiased=False), torch.ones(diff.shape[:-1]), atol=1e-3)
    elif kind == "ctx_scale":  # context * (1 + scale_kv) + shift_kv
        assert raw is not None and torch.allclose(diff, raw * delta, atol=1e-5)


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_block_table_rows(flavour: str) -> None:
    model = _model(flavour)
    block = model.transformer_blocks[0]
    base = _capture(model)
    video, audio = tiny_modalities(model.config, batch=2, seed=1)
    checked = 0
    for table, row, kind, target, slot, downstream in BLOCK_ROWS:
        if not hasattr(block, table) or row >= getattr(block, table).shape[0]:
            continue  # LTX-2 has 6-row tables and no prompt tables
        dim = getattr(block, table).shape[1]
        delta = torch.full((dim,), 0.5) if "scale" in kind or kind == "gate" else torch.randn(dim)
        seen = _perturbed(model, block, table, row, delta)
        index = 0 if slot == "x" else 1
        before, after = base[target][index], seen[target][index]
        assert before is not None and after is not None
        if kind == "gate":
            assert torch.equal(before, after), f"{table}[{row}] is a gate: {target} input must not move"
            assert not torch.allclose(base[downstream][0], seen[downstream][0]), (
                f"{table}[{row}] gates nothing"
            )
        else:
            raw = (
                (video if not target.startswith("audio_attn") else audio).context
                if kind == "ctx_scale"
                else None
            )
            _check(kind, before, after, delta, raw)
        checked += 1
    assert checked == (32 if flavour == "ltx2.3" else 22)


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_output_head_rows(flavour: str) -> None:
    model = _model(flavour)
    base = _capture(model)
    for table, row, kind, target in HEAD_ROWS:
        dim = getattr(model, table).shape[1]
        delta = torch.full((dim,), 0.5) if kind == "ln_scale" else torch.randn(dim)
        seen = _perturbed(model, model, table, row, delta)
        _check(kind, base[target][0], seen[target][0], delta, None)
