"""Load (and write) the LTX-2.5 diffusion video VAE in the released key layout.

File keys (after the split view's ``vae.`` prefix): ``encoder.*`` (conv encoder), ``per_channel_statistics.*``
and ``decoder.*`` where the decoder stores fused ``attn.qkv.{weight,bias}`` (split into thirds ->
``to_q / to_k / to_v``), ``t_embedder.mlp.{0,2}`` (-> ``t_embedder.timestep_embedder.linear_{1,2}``), per
stage-5 block gate vectors ``gate_msa / gate_mlp / gate_ctx`` (folded row-wise in float32 into ``attn.proj``,
``mlp.w_down`` and ``context_proj`` — W <- g·W, b <- g·b — and dropped) and an optional ``coarse_*`` preview
head (dropped). Everything else must match the module exactly (``load_strict``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict
from ltx2stream.models.video_vae.diffusion.vae import DiffusionVideoVAE

GATES = {".gate_msa": (".attn.proj.",), ".gate_mlp": (".mlp.w_down.",), ".gate_ctx": (".context_proj.",)}
_T_EMBED = {"t_embedder.mlp.0.": "t_embedder.timestep_embedder.linear_1.",
            "t_embedder.mlp.2.": "t_embedder.timestep_embedder.linear_2."}  # fmt: skip


def load_diffusion_vae(
    ckpt: Checkpoint,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    with_encoder: bool = True,
    with_decoder: bool = True,
    optional_stats: tuple[str, ...] = (),
) -> DiffusionVideoVAE:
    section = dict(ckpt.section("vae"))
    model = build_on_meta(
        lambda: DiffusionVideoVAE(
            section, with_encoder=with_encoder, with_decoder=with_decoder, optional_stats=optional_stats
        )
    )
    exclude = [f"vae.{p}." for p, keep in (("encoder", with_encoder), ("decoder", with_decoder)) if not keep]
    state = ckpt.read("vae.", dtype=torch.float32, exclude=exclude)
    return load_strict(model, file_to_module(state), what="diffusion video VAE", device=device, dtype=dtype)


def file_to_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released decoder keys -> module keys: QKV split, t_embedder rename, gate fold, coarse head dropped."""
    gates = {k: v.float() for k, v in state.items() if k.endswith(tuple(GATES))}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in gates or key.startswith("decoder.coarse_"):
            continue
        for old, new in _T_EMBED.items():
            key = key.replace(f"decoder.{old}", f"decoder.{new}")
        if key.endswith((".qkv.weight", ".qkv.bias")):
            leaf = key.rsplit(".", 1)[1]
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0), strict=True):
                out[f"{key[: -len(leaf)]}{name}.{leaf}"] = part.clone()
            continue
        out[key] = _folded(key, value, gates)
    return out


def _folded(key: str, value: torch.Tensor, gates: Mapping[str, torch.Tensor]) -> torch.Tensor:
    for suffix, targets in GATES.items():
        for target in targets:
            if target in key:
                block = key[: key.index(target)]
                gate = gates.get(block + suffix)
                if gate is not None:
                    g = gate if value.ndim == 1 else gate[:, None]  # row-wise: output features
                    return (g * value.float()).to(value.dtype)
    return value


def module_to_file(
    state: Mapping[str, torch.Tensor], gates: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Inverse of ``file_to_module`` for writing test files: fuse QKV, rename, unfold ``gates`` (block -> g)."""
    out: dict[str, torch.Tensor] = {}
    gates = gates or {}
    for key, value in state.items():
        for old, new in _T_EMBED.items():
            key = key.replace(f"decoder.{new}", f"decoder.{old}")
        if ".qkv.to_k." in key or ".qkv.to_v." in key:
            continue
        if ".qkv.to_q." in key:
            parts = [state[key.replace("to_q", n)] for n in ("to_q", "to_k", "to_v")]
            out[key.replace(".to_q.", ".")] = torch.cat(parts)  # fused [q; k; v] rows
            continue
        out[key] = _unfolded(key, value, gates)
    return out | dict(gates)


def _unfolded(key: str, value: torch.Tensor, gates: Mapping[str, torch.Tensor]) -> torch.Tensor:
    for suffix, targets in GATES.items():
        for target in targets:
            if target in key and key[: key.index(target)] + suffix in gates:
                gate = gates[key[: key.index(target)] + suffix]
                g = gate if value.ndim == 1 else gate[:, None]
                return value / g
    return value
