"""``--compile`` (issue #13): the compiled transformer equals the eager one within float tolerance on the CPU."""

from __future__ import annotations

import pytest
import torch

from ltx2stream.models.transformer import tiny_transformer
from ltx2stream.models.transformer.tiny import tiny_modalities
from ltx2stream.pipeline.compile import compile_mode, compile_transformer, cpu_compiler_available


def test_modes() -> None:
    assert compile_mode("cuda:0") == "reduce-overhead" and compile_mode("cpu") == "default"


@pytest.mark.skipif(not cpu_compiler_available(), reason="no C++ compiler for inductor's CPU backend")
def test_compiled_transformer_matches_eager_on_cpu() -> None:
    eager = tiny_transformer("ltx2", seed=3)
    compiled = compile_transformer(tiny_transformer("ltx2", seed=3), "cpu")
    video, audio = tiny_modalities(eager.config, seed=5)
    with torch.inference_mode():
        want = eager(video, audio)
        got = compiled(video, audio)
        again = compiled(video, audio)  # the second call runs the cached graph
    for w, g, a in zip(want, got, again, strict=True):
        assert w is not None and g is not None and a is not None
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
        assert torch.equal(g, a)
