"""Checkpoint loading core: strict keys, shapes, truncation, fp8 dequantisation, embedded config."""

from __future__ import annotations

import pytest
import torch

from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import build_on_meta, load_strict, open_checkpoint, save_checkpoint


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("stat", torch.zeros(3))


def _state() -> dict[str, torch.Tensor]:
    return {"m.lin.weight": torch.randn(3, 4), "m.lin.bias": torch.randn(3), "m.stat": torch.arange(3.0)}


def test_roundtrip_with_config(tmp_path):
    """A saved file reopens with its embedded config and loads into a meta-built module exactly."""
    st = _state()
    p = save_checkpoint(
        tmp_path / "a.safetensors", st, config={"transformer": {"x": 1}}, metadata={"model_version": "2.3"}
    )
    ck = open_checkpoint(p)
    assert ck.section("transformer") == {"x": 1} and ck.model_version == "2.3"
    m = load_strict(build_on_meta(_Tiny), ck.read("m."), what="tiny")
    assert torch.equal(m.lin.weight, st["m.lin.weight"]) and torch.equal(m.stat, st["m.stat"])


def test_missing_unexpected_and_shape_are_listed(tmp_path):
    """Missing, unexpected and wrong-shape keys are all named in one error."""
    st = _state()
    st.pop("m.lin.bias")
    st["m.extra"] = torch.zeros(1)
    st["m.stat"] = torch.zeros(5)
    ck = open_checkpoint(save_checkpoint(tmp_path / "b.safetensors", st))
    with pytest.raises(CheckpointError) as e:
        load_strict(build_on_meta(_Tiny), ck.read("m."), what="tiny")
    msg = str(e.value)
    assert (
        "lin.bias" in msg and "extra" in msg and "stat" in msg and e.value.code == "checkpoint.key_mismatch"
    )


def test_truncated_and_garbage_files(tmp_path):
    """A truncated file and a non-safetensors file give clear errors, a missing path too."""
    p = save_checkpoint(tmp_path / "c.safetensors", _state())
    data = p.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:-5])
    (tmp_path / "g.safetensors").write_bytes(b"hello world, not a checkpoint")
    for name in ("t", "g", "missing"):
        with pytest.raises(CheckpointError):
            open_checkpoint(tmp_path / f"{name}.safetensors")


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="no fp8 dtype")
def test_fp8_weight_scale_dequantised(tmp_path):
    """An fp8 weight with a weight_scale sibling loads as weight*scale and the scale key disappears."""
    w = torch.randn(3, 4)
    st = _state()
    st["m.lin.weight"] = w.to(torch.float8_e4m3fn)
    st["m.lin.weight_scale"] = torch.tensor(0.5)
    ck = open_checkpoint(save_checkpoint(tmp_path / "f.safetensors", st))
    sd = ck.read("m.", dtype=torch.float32)
    assert "lin.weight_scale" not in sd
    assert torch.equal(sd["lin.weight"], w.to(torch.float8_e4m3fn).float() * 0.5)
