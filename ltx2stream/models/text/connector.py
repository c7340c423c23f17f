"""``Embeddings1DConnector``: the small bidirectional 1-D transformer between the feature extractor and the DiT.

Padding handling (official "register substitution"): the valid tokens of each prompt are moved to the front in
their original order (Gemma sees left-padded prompts), and every padded position p is replaced by
``learnable_registers[p mod R]``. After that no position is masked, so neither the connector nor the DiT needs
a text attention mask. Blocks are pre-norm (weightless RMSNorm) self-attention + feed-forward, followed by a
final weightless RMSNorm. Checkpoint keys: ``learnable_registers``, ``transformer_1d_blocks.{i}.attn1.*``,
``transformer_1d_blocks.{i}.ff.net.{0.proj,2}.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.text.config import ConnectorConfig
from ltx2stream.models.text.layers import Attention, FeedForward, rms_norm, rope_1d


def valid_first_order(mask: torch.Tensor) -> torch.Tensor:
    """Permutation [B, T] that moves valid tokens (mask 1) to the front, keeping their order (stable sort)."""
    return torch.argsort(mask.to(torch.int32), dim=-1, descending=True, stable=True)


def substitute_registers(x: torch.Tensor, mask: torch.Tensor, registers: torch.Tensor) -> torch.Tensor:
    """Valid tokens first (stable), then every remaining position p holds ``registers[p mod R]``.

    x: [B, T, D] features, mask: [B, T] (1 = valid), registers: [R, D] with T divisible by R.
    """
    b, t, d = x.shape
    r = registers.shape[0]
    if t % r:
        raise InputError(
            f"text length {t} is not divisible by the {r} learnable registers", code=codes.INPUT_TEXT_LENGTH
        )
    order = valid_first_order(mask)  # [B, T]
    x = torch.gather(x, 1, order[:, :, None].expand(b, t, d))  # [B, T, D], valid tokens first
    valid = torch.gather(mask.bool(), 1, order)[:, :, None]  # [B, T, 1]
    tiled = registers.to(x.dtype).repeat(t // r, 1)[
        None
    ]  # [R, D] -> [1, T, D]: position p -> registers[p % R]
    return torch.where(valid, x, tiled)


class ConnectorBlock(nn.Module):
    """``h += attn1(rms(h)); h += ff(rms(h))`` (no AdaLN, no norm weights)."""

    def __init__(self, cfg: ConnectorConfig) -> None:
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn1 = Attention(
            cfg.inner_dim,
            cfg.num_attention_heads,
            cfg.attention_head_dim,
            gated=cfg.gated_attention,
            eps=cfg.norm_eps,
        )
        self.ff = FeedForward(cfg.inner_dim, bias=cfg.ff_bias)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        h = h + self.attn1(rms_norm(h, self.eps), rope)
        return h + self.ff(rms_norm(h, self.eps))


class Embeddings1DConnector(nn.Module):
    """Register substitution, ``num_layers`` blocks with 1-D RoPE over token indices, final RMSNorm."""

    def __init__(self, cfg: ConnectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.learnable_registers = nn.Parameter(torch.empty(cfg.num_registers, cfg.inner_dim))
        self.transformer_1d_blocks = nn.ModuleList(ConnectorBlock(cfg) for _ in range(cfg.num_layers))

    def rope(
        self, length: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return rope_1d(
            length,
            dim=c.inner_dim,
            heads=c.num_attention_heads,
            max_pos=c.max_pos[0],
            theta=c.theta,
            double_precision=c.double_precision_rope,
            device=device,
            dtype=dtype,
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, T, inner_dim] features of left- or right-padded prompts, mask: [B, T] -> [B, T, inner_dim]."""
        if x.shape[-1] != self.cfg.inner_dim or x.shape[:2] != mask.shape:
            raise InputError(
                f"connector expects features [B, T, {self.cfg.inner_dim}] and mask [B, T],"
                f" got {tuple(x.shape)} and {tuple(mask.shape)}",
                code=codes.INPUT_TEXT_SHAPE,
            )
        h = substitute_registers(x, mask, self.learnable_registers)
        rope = self.rope(h.shape[1], h.device, h.dtype)
        for block in self.transformer_1d_blocks:
            h = block(h, rope)
        return rms_norm(h, self.cfg.norm_eps)

    def init_weights(self, generator: torch.Generator | None = None, std: float = 0.02) -> None:
        """Random init for tiny test models: registers U(-1, 1) as the official init, linears N(0, std)."""
        with torch.no_grad():
            self.learnable_registers.copy_(
                torch.rand(self.learnable_registers.shape, generator=generator) * 2 - 1
            )
            for name, p in self.transformer_1d_blocks.named_parameters():
                if "norm" in name:
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
                else:
                    p.copy_(std * torch.randn(p.shape, generator=generator))
