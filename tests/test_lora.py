"""LoRA files and application: parsing/validation, exact merge + restore (fp32 and bf16), hooks, stacking."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from ltx2stream.errors import CheckpointError, InputError
from ltx2stream.models.loading import save_checkpoint
from ltx2stream.models.lora import LoRAWeights, apply_lora, random_lora_for, write_lora

DIM, FF = 16, 32


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.to_q, self.to_k, self.to_v = (nn.Linear(DIM, DIM) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(DIM, DIM), nn.Identity()])
        self.q_norm = nn.LayerNorm(DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_norm(self.to_q(x)), self.to_k(x), self.to_v(x)  # [B, T, D]
        attn = torch.softmax(q @ k.transpose(1, 2) / DIM**0.5, dim=-1)  # [B, T, T]
        return self.to_out[0](attn @ v)


class _Proj(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(DIM, FF)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(self.proj(x), approximate="tanh")


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn1, self.attn2 = _Attention(), _Attention()
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([_Proj(), nn.Identity(), nn.Linear(FF, DIM)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(x) + self.attn2(x)
        return x + self.ff.net[2](self.ff.net[0](x))


class TinyDiT(nn.Module):
    """Generic stand-in with the transformer's module names (transformer_blocks.N.attn1.to_q ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.patchify_proj = nn.Linear(8, DIM)
        self.transformer_blocks = nn.ModuleList([_Block(), _Block()])
        self.proj_out = nn.Linear(DIM, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patchify_proj(x)
        for block in self.transformer_blocks:
            x = block(x)
        return self.proj_out(x)


def _model(dtype: torch.dtype = torch.float32) -> TinyDiT:
    torch.manual_seed(0)
    model = TinyDiT().to(dtype).eval()
    with torch.no_grad():
        model.transformer_blocks[0].attn1.to_q.weight[0, :4] = -0.0  # negative zeros must survive bit for bit
    return model


def _x(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(7)).to(dtype)


def _bits(model: nn.Module) -> dict[str, torch.Tensor]:
    """Raw bytes of every tensor (distinguishes -0.0 from 0.0 and compares NaN payloads)."""
    return {k: v.detach().clone().contiguous().view(torch.uint8) for k, v in model.state_dict().items()}


def _same_bits(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@torch.no_grad()
def _out(model: nn.Module, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return model(_x(dtype))


# ---------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("prefix", ["diffusion_model.", "model.diffusion_model."])
def test_load_strips_either_prefix(prefix: str, tmp_path) -> None:
    lora = random_lora_for(_model(), rank=4, seed=1)
    path = write_lora(tmp_path / "l.safetensors", lora.checkpoint_tensors(prefix))
    loaded = LoRAWeights.load(path)
    assert loaded.modules == lora.modules
    assert "transformer_blocks.1.ff.net.0.proj" in loaded.modules and loaded.ranks == {4}
    assert all(torch.equal(loaded.pairs[m].a, lora.pairs[m].a) for m in lora.modules)
    assert set(LoRAWeights.load(write_lora(tmp_path / "w.st", lora)).checkpoint_tensors()) == set(
        lora.checkpoint_tensors("diffusion_model.")
    )


def _tensors(**overrides: torch.Tensor | None) -> dict[str, torch.Tensor]:
    base = {
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.randn(4, DIM),
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.randn(DIM, 4),
    }
    for key, value in overrides.items():
        full = (
            f"diffusion_model.transformer_blocks.0.attn1.to_q.{key}.weight" if key.startswith("lora") else key
        )
        if value is None:
            base.pop(full)
        else:
            base[full] = value
    return base


@pytest.mark.parametrize(
    ("tensors", "code", "match"),
    [
        (_tensors(lora_B=None), "checkpoint.lora_unpaired", r"unpaired.*attn1\.to_q"),
        (_tensors(lora_B=torch.randn(DIM, 3)), "checkpoint.lora_bad_shape", "rank mismatch"),
        (_tensors(lora_A=torch.randn(4, DIM, 1)), "checkpoint.lora_bad_shape", "must be 2-D"),
        (_tensors(lora_A=torch.full((4, DIM), float("nan"))), "checkpoint.lora_bad_shape", "NaN"),
        (
            {**_tensors(), "diffusion_model.blocks.0.alpha": torch.ones(())},
            "checkpoint.lora_unexpected_keys",
            "alpha",
        ),
        (
            {**_tensors(), "transformer.x.lora_A.weight": torch.ones(1, 1)},
            "checkpoint.lora_unexpected_keys",
            "transformer",
        ),
        (
            {
                **_tensors(),
                "model.diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.ones(4, DIM),
            },
            "checkpoint.lora_duplicate",
            "two prefixes",
        ),
    ],
)
def test_bad_files_are_checkpoint_errors(
    tensors: dict[str, torch.Tensor], code: str, match: str, tmp_path
) -> None:
    with pytest.raises(CheckpointError, match=match) as e:
        LoRAWeights.load(write_lora(tmp_path / "bad.st", tensors))
    assert e.value.code == code


def test_subset_and_without_prefixes() -> None:
    lora = random_lora_for(_model(), rank=2)
    sub = lora.subset(["proj_out", "patchify_proj"])
    assert sub.modules == ("patchify_proj", "proj_out")
    with pytest.raises(CheckpointError, match="no factors for \\[audio_proj_out\\]"):
        lora.subset(["audio_proj_out"])
    rest = lora.without_prefixes("transformer_blocks.1.", "proj_out")
    assert "transformer_blocks.0.attn1.to_q" in rest.modules and "proj_out" not in rest.modules
    assert not any(m.startswith("transformer_blocks.1.") for m in rest.modules)


def test_empty_file_is_an_error(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "e.st", {}, metadata={"x": "y"})
    with pytest.raises(CheckpointError, match="no lora_A/lora_B pairs"):
        LoRAWeights.load(path)


# ------------------------------------------------------------------------------------------------ merge


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_merge_changes_output_and_remove_restores_bits(dtype: torch.dtype) -> None:
    model = _model(dtype)
    before, out0 = _bits(model), _out(model, dtype)
    handle = apply_lora(model, random_lora_for(model, rank=4, seed=2), strength=0.8)
    assert not torch.allclose(_out(model, dtype), out0, atol=1e-2)
    assert not _same_bits(_bits(model), before)
    handle.remove()
    assert _same_bits(_bits(model), before)
    assert torch.equal(_out(model, dtype), out0)
    handle.remove()  # idempotent
    assert _same_bits(_bits(model), before)


def test_merge_is_w_plus_strength_b_at_a_in_float32() -> None:
    model = _model(torch.bfloat16)
    lora = random_lora_for(model, rank=3, seed=4, modules=["transformer_blocks.1.attn2.to_k"])
    w0 = model.transformer_blocks[1].attn2.to_k.weight.detach().clone()
    q0 = model.transformer_blocks[1].attn2.to_q.weight.detach().clone()
    with apply_lora(model, lora, 1.5):
        pair = lora.pairs["transformer_blocks.1.attn2.to_k"]
        expected = (w0.float() + 1.5 * (pair.b.float() @ pair.a.float())).to(torch.bfloat16)
        assert torch.equal(model.transformer_blocks[1].attn2.to_k.weight, expected)
        assert torch.equal(model.transformer_blocks[1].attn2.to_q.weight, q0)  # not a target
    assert torch.equal(model.transformer_blocks[1].attn2.to_k.weight, w0)


def test_strength_zero_is_a_no_op() -> None:
    model = _model(torch.bfloat16)
    before = _bits(model)
    with apply_lora(model, random_lora_for(model, rank=4), 0.0) as handle:
        assert handle.modules == ()
        assert _same_bits(_bits(model), before)
    assert _same_bits(_bits(model), before)


def test_context_manager_and_cpu_backup() -> None:
    model = _model()
    before, out0 = _bits(model), _out(model)
    with apply_lora(model, random_lora_for(model, rank=2), 1.0, backup_device="cpu") as handle:
        assert handle.active and not torch.equal(_out(model), out0)
    assert not handle.active and _same_bits(_bits(model), before)


def test_unknown_and_mismatched_modules_are_listed_and_nothing_changes() -> None:
    model = _model()
    before = _bits(model)
    good = random_lora_for(model, rank=2).checkpoint_tensors()
    bad = {
        **good,
        "diffusion_model.transformer_blocks.7.attn1.to_q.lora_A.weight": torch.ones(2, DIM),
        "diffusion_model.transformer_blocks.7.attn1.to_q.lora_B.weight": torch.ones(DIM, 2),
        "diffusion_model.audio_proj_out.lora_A.weight": torch.ones(2, DIM),
        "diffusion_model.audio_proj_out.lora_B.weight": torch.ones(DIM, 2),
    }
    with pytest.raises(
        CheckpointError, match=r"2 unknown modules \[audio_proj_out, transformer_blocks\.7"
    ) as e:
        apply_lora(model, LoRAWeights.from_tensors(bad), 1.0)
    assert e.value.code == "checkpoint.lora_unknown_modules"
    wrong = {**good, "diffusion_model.proj_out.lora_A.weight": torch.ones(2, DIM + 1)}
    with pytest.raises(CheckpointError, match=r"proj_out: weight \(8, 16\) vs LoRA B@A \(8, 17\)"):
        apply_lora(model, LoRAWeights.from_tensors(wrong), 1.0)
    assert _same_bits(_bits(model), before)


def test_bad_strength_and_mode_are_input_errors() -> None:
    model, lora = _model(), random_lora_for(_model(), rank=2)
    with pytest.raises(InputError, match="finite"):
        apply_lora(model, lora, float("inf"))
    with pytest.raises(InputError, match="'merge' or 'hooks'"):
        apply_lora(model, lora, 1.0, mode="fuse")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- stacking


def _three_loras(model: nn.Module) -> list[LoRAWeights]:
    attn = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".attn" in n]
    return [
        random_lora_for(model, rank=2, seed=1),  # everything
        random_lora_for(model, rank=3, seed=2, modules=attn),  # overlaps the first on attention
        random_lora_for(model, rank=1, seed=3, modules=["proj_out", "transformer_blocks.0.ff.net.2"]),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_stacked_loras_removed_in_any_order(order: tuple[int, ...]) -> None:
    model = _model(torch.bfloat16)
    before = _bits(model)
    loras, strengths = _three_loras(model), [0.5, -1.0, 2.0]
    handles = [apply_lora(model, lo, s) for lo, s in zip(loras, strengths, strict=True)]
    first = order[0]
    handles[first].remove()
    reference = _model(torch.bfloat16)  # the remaining LoRAs applied from scratch, in their order
    for i in range(3):
        if i != first:
            apply_lora(reference, loras[i], strengths[i])
    assert _same_bits(_bits(model), _bits(reference))
    for i in order[1:]:
        handles[i].remove()
    assert _same_bits(_bits(model), before)


# ------------------------------------------------------------------------------------------------ hooks


def test_hooks_match_merge_and_never_touch_weights() -> None:
    model = _model()
    before, out0 = _bits(model), _out(model)
    lora = random_lora_for(model, rank=4, seed=5)
    with apply_lora(model, lora, 0.7):
        merged = _out(model)
    with apply_lora(model, lora, 0.7, mode="hooks"):
        hooked = _out(model)
        assert _same_bits(_bits(model), before)
    torch.testing.assert_close(hooked, merged, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(hooked, out0, atol=1e-2)
    assert torch.equal(_out(model), out0)


def test_hooks_stack_with_merge_and_reject_non_linear_targets() -> None:
    model = _model()
    before, out0 = _bits(model), _out(model)
    merged = apply_lora(model, random_lora_for(model, rank=2, seed=1), 1.0)
    hooked = apply_lora(model, random_lora_for(model, rank=2, seed=2), 1.0, mode="hooks")
    merged.remove()
    hooked.remove()
    assert _same_bits(_bits(model), before) and torch.equal(_out(model), out0)
    norm = {
        "diffusion_model.transformer_blocks.0.attn1.q_norm.lora_A.weight": torch.ones(1, DIM),
        "diffusion_model.transformer_blocks.0.attn1.q_norm.lora_B.weight": torch.ones(DIM, 1),
    }
    with pytest.raises(CheckpointError, match="LayerNorm is not an nn.Linear"):
        apply_lora(model, LoRAWeights.from_tensors(norm), 1.0, mode="hooks")
