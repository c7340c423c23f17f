"""Feature extractors (layer ordering, masked statistics), register substitution and the connector's RoPE."""

from __future__ import annotations

import math

import pytest
import torch

from ltx2stream.errors import InputError
from ltx2stream.models.text import (
    ConnectorConfig,
    Embeddings1DConnector,
    FeatureExtractorV1,
    FeatureExtractorV2,
)
from ltx2stream.models.text.connector import substitute_registers
from ltx2stream.models.text.features import flatten_layers, masked_range_norm, per_token_rms_norm
from ltx2stream.models.text.layers import apply_split_rope, rms_norm, rope_1d, rope_frequencies

B, T, D, L1 = 2, 6, 4, 3  # L1 = L + 1 hidden states
MASK = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]])  # left padding


def hidden(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, T, D, L1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_flatten_puts_the_layer_index_fastest() -> None:
    d, l = torch.meshgrid(torch.arange(D), torch.arange(L1), indexing="ij")
    x = (100 * d + l).expand(1, 1, D, L1)
    flat = flatten_layers(x)[0, 0]
    for dd in range(D):
        for ll in range(L1):
            assert flat[dd * L1 + ll] == 100 * dd + ll


def test_v1_column_j_of_aggregate_embed_reads_channel_d_of_layer_l() -> None:
    h = hidden().float()
    fe = FeatureExtractorV1(D * L1, D * L1)
    with torch.no_grad():
        fe.aggregate_embed.weight.copy_(torch.eye(D * L1))
    out, same = fe(h, MASK)
    assert out is same  # one projection feeds both connectors
    dd, ll = 2, 1
    col = out[..., dd * L1 + ll]
    norm = masked_range_norm(h, MASK)
    torch.testing.assert_close(col, norm[..., dd * L1 + ll])
    v = MASK[0].bool()
    layer = h[0, v, :, ll]  # valid tokens of sample 0, layer ll: [n, D]
    expected = 8 * (h[0, v, dd, ll] - layer.mean()) / (layer.max() - layer.min() + 1e-6)
    torch.testing.assert_close(col[0, v], expected, rtol=1e-5, atol=1e-5)


def test_v1_statistics_ignore_padded_positions() -> None:
    h = hidden()
    garbage = h.clone()
    garbage[~MASK.bool()] = 1e6  # padded positions hold anything
    a, b = masked_range_norm(h, MASK), masked_range_norm(garbage, MASK)
    torch.testing.assert_close(a, b)
    assert (a[~MASK.bool()] == 0).all()
    # per-sample statistics: sample 1's normalisation does not depend on sample 0
    other = h.clone()
    other[0] *= 5
    torch.testing.assert_close(masked_range_norm(other, MASK)[1], a[1])


def test_v2_per_token_rms_and_width_rescale() -> None:
    h = hidden().float()
    normed = per_token_rms_norm(h, MASK)
    tok = h[1, 5, :, 2]
    expected = tok / torch.sqrt(tok.pow(2).mean() + 1e-6)
    torch.testing.assert_close(normed[1, 5, 2::L1], expected)  # channels of layer 2 are every L1-th column
    assert (normed[~MASK.bool()] == 0).all()
    fe = FeatureExtractorV2(D * L1, D, video_dim=8, audio_dim=2)
    video, audio = fe(h, MASK)
    torch.testing.assert_close(video, fe.video_aggregate_embed(normed * math.sqrt(8 / D)))
    torch.testing.assert_close(audio, fe.audio_aggregate_embed(normed * math.sqrt(2 / D)))
    torch.testing.assert_close(video[0, 0], fe.video_aggregate_embed.bias)  # a pad token -> bias only


def test_register_substitution_with_left_padding_exact() -> None:
    x = torch.arange(1, 9, dtype=torch.float32).view(1, 8, 1).repeat(2, 1, 2)  # token i holds (i+1, i+1)
    x[1, :, 1] *= -1
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 1, 1]])
    reg = torch.tensor([[10.0, 11.0], [20.0, 21.0], [30.0, 31.0], [40.0, 41.0]])
    out = substitute_registers(x, mask, reg)
    expected = torch.tensor(
        [
            [[4, 4], [5, 5], [6, 6], [7, 7], [8, 8], [20, 21], [30, 31], [40, 41]],
            [[7, -7], [8, -8], [30, 31], [40, 41], [10, 11], [20, 21], [30, 31], [40, 41]],
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(out, expected)


def test_register_substitution_keeps_order_for_any_mask_and_rejects_bad_length() -> None:
    x = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    out = substitute_registers(x, torch.tensor([[1, 0, 1, 0, 0, 1]]), torch.full((3, 1), -1.0))
    assert out.flatten().tolist() == [0, 2, 5, -1, -1, -1]
    with pytest.raises(InputError, match="divisible"):
        substitute_registers(x, torch.ones(1, 6), torch.zeros(4, 1))


def test_rope_frequency_grid_and_angles() -> None:
    omega = rope_frequencies(8, theta=10000.0)
    torch.testing.assert_close(omega[0], torch.tensor(math.pi / 2))
    torch.testing.assert_close(omega[-1], torch.tensor(math.pi / 2 * 10000.0))
    cos, sin = rope_1d(5, dim=8, heads=2, max_pos=4)
    assert cos.shape == (1, 2, 5, 2)
    # head 1, frequency 0 is omega[2]; token 3 has position 3 / 4 -> angle omega * (2 * 0.75 - 1)
    angle = omega[2] * (2 * 3 / 4 - 1)
    torch.testing.assert_close(cos[0, 1, 3, 0], torch.cos(angle))
    torch.testing.assert_close(sin[0, 1, 3, 0], torch.sin(angle))


def test_split_rope_pairs_j_with_j_plus_half() -> None:
    x = torch.zeros(1, 1, 1, 4)
    x[..., 1] = 1.0
    cos, sin = torch.full((1, 1, 1, 2), math.cos(0.3)), torch.full((1, 1, 1, 2), math.sin(0.3))
    out = apply_split_rope(x, cos, sin)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, math.cos(0.3), 0.0, math.sin(0.3)]))


def _connector(layers: int, gated: bool = False, seed: int = 0) -> Embeddings1DConnector:
    cfg = ConnectorConfig(
        num_attention_heads=2,
        attention_head_dim=4,
        num_layers=layers,
        num_registers=4,
        gated_attention=gated,
        max_pos=(64,),
        double_precision_rope=True,
    )
    conn = Embeddings1DConnector(cfg)
    conn.init_weights(torch.Generator().manual_seed(seed), std=0.3)
    return conn


def test_connector_without_blocks_is_rms_of_substituted_tokens() -> None:
    conn = _connector(0)
    x, mask = torch.randn(2, 8, 8), torch.tensor([[0] * 3 + [1] * 5, [0] * 6 + [1] * 2])
    torch.testing.assert_close(
        conn(x, mask), rms_norm(substitute_registers(x, mask, conn.learnable_registers))
    )


def test_connector_depends_on_token_positions() -> None:
    conn = _connector(1)
    x, mask = torch.randn(1, 8, 8), torch.ones(1, 8, dtype=torch.long)
    perm = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7])
    moved = conn(x[:, perm], mask)[:, perm]  # without RoPE attention would be permutation-equivariant
    assert not torch.allclose(moved, conn(x, mask), atol=1e-4)


def test_gate_with_zero_logits_is_identity() -> None:
    plain, gated = _connector(2), _connector(2, gated=True)
    state = {k: v for k, v in gated.state_dict().items() if "to_gate_logits" not in k}
    plain.load_state_dict(state)
    with torch.no_grad():
        for block in gated.transformer_1d_blocks:
            block.attn1.to_gate_logits.weight.zero_()
            block.attn1.to_gate_logits.bias.zero_()
    x, mask = torch.randn(2, 8, 8), torch.ones(2, 8, dtype=torch.long)
    torch.testing.assert_close(gated(x, mask), plain(x, mask))
    with torch.no_grad():
        gated.transformer_1d_blocks[0].attn1.to_gate_logits.bias.fill_(-3.0)
    assert not torch.allclose(gated(x, mask), plain(x, mask), atol=1e-4)
