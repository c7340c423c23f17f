"""Sequence parallelism (ltx2stream/parallel/) on CPU gloo groups of 2 and 4 processes: the transformer forward
(with/without audio, masked, STG, isolated passes) and two streamed two-stage segments (the second on a carried
tail) equal the single-process run within 1e-6 relative in fp32, for LTX-2 and LTX-2.3, on every rank.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sp_cases
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ltx2stream.errors import ConfigError
from ltx2stream.models.transformer import Modality
from ltx2stream.parallel import SequenceParallelTransformer, shard_modality

FORWARD_HEADS = 4


def _identity(m: Any) -> Any:
    return m


def _worker(rank: int, world: int, port: int, out_dir: str, cache: str, states: dict[str, bytes]) -> None:
    """One rank: run every scenario through SequenceParallelTransformer on the gloo world, save the results."""
    import os

    os.environ["LTX2STREAM_CACHE"] = cache
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=300),
    )
    try:
        wrappers: list[SequenceParallelTransformer] = []

        def wrap(m: Any) -> SequenceParallelTransformer:
            wrappers.append(SequenceParallelTransformer(m))
            return wrappers[-1]

        out: dict[str, Any] = {}
        for flavour in sp_cases.FLAVOURS:
            out[f"forward/{flavour}"] = sp_cases.forward_cases(flavour, FORWARD_HEADS, wrap)
            out[f"segment/{flavour}"] = sp_cases.segment_latents(flavour, wrap, states[flavour])
        out["calls"] = [(w.world, w._self_core.calls, w._kv_core.calls) for w in wrappers]
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The single-process runs (no process group): forwards, and per flavour the state after segment 0 and
    segment 1 continuing it."""
    assert not dist.is_initialized()
    ref: dict[str, Any] = {"states": {}}
    for flavour in sp_cases.FLAVOURS:
        ref[f"forward/{flavour}"] = sp_cases.forward_cases(flavour, FORWARD_HEADS, _identity)
        state, first, second = sp_cases.segment_reference(flavour)
        ref["states"][flavour] = state
        ref[f"first/{flavour}"] = first
        ref[f"segment/{flavour}"] = second
    return ref


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("world", [2, 4])
def test_sequence_parallel_equals_single_process(
    world: int, reference: dict[str, Any], tmp_path: Path, tiny_cache: Path
) -> None:
    """Every rank's forward outputs and segment latents (both stages, video and audio) match within 1e-6."""
    args = (world, _free_port(), str(tmp_path), str(tiny_cache), reference["states"])
    mp.spawn(_worker, args=args, nprocs=world, join=True)
    checked = 0
    for rank in range(world):
        data = torch.load(tmp_path / f"rank{rank}.pt")
        for w, self_calls, kv_calls in data["calls"]:
            assert w == world and self_calls > 0 and kv_calls > 0, "the split must really happen"
        for key in [f"{kind}/{f}" for f in sp_cases.FLAVOURS for kind in ("forward", "segment")]:
            want = reference[key]
            assert set(data[key]) == set(want), key
            for name, tensor in want.items():
                got = data[key][name]
                assert got.shape == tensor.shape, (rank, key, name)
                err = sp_cases.relative_error(got, tensor)
                assert err <= sp_cases.REL_TOL, f"rank {rank}/{world} {key} {name}: rel err {err:.2e}"
                checked += 1
    assert checked == world * 2 * (len(reference["forward/ltx2"]) + 4)


def test_reference_is_not_trivial(reference: dict[str, dict[str, torch.Tensor]]) -> None:
    """Guard against a vacuous comparison: the scenarios produce non-zero outputs that differ from each other."""
    fw = reference["forward/ltx2"]
    assert fw["av.video"].abs().max() > 0 and not torch.allclose(fw["av.video"], fw["video_only.video"])
    assert not torch.allclose(fw["av.video"], fw["masked.video"]) and not torch.allclose(
        fw["av.video"], fw["stg.video"]
    )
    first, second = reference["first/ltx2"], reference["segment/ltx2"]
    assert first["stage2.video"].shape == second["stage2.video"].shape
    assert not torch.allclose(first["stage2.video"], second["stage2.video"])
    assert torch.equal(
        second["stage2.video"][:, :, 1:2], first["stage2.video"][:, :, -1:]
    )  # the carried tail


def test_shard_modality_pads_and_slices_every_token_field() -> None:
    """27 tokens on 4 ranks: 28 padded tokens, 7 per rank, the last rank's last one a zero token."""
    video, _ = sp_cases._inputs(sp_cases.model("ltx2", 4).config)
    shards = [shard_modality(video, r, 4, 28) for r in range(4)]
    assert all(s.latent.shape[1] == 7 and s.positions.shape[2] == 7 for s in shards)
    joined = torch.cat([s.latent for s in shards], dim=1)
    assert torch.equal(joined[:, :27], video.latent) and torch.equal(
        joined[:, 27], torch.zeros_like(joined[:, 27])
    )
    assert all(s.sigma is video.sigma and s.context is video.context for s in shards)


def test_unknown_modality_field_is_refused() -> None:
    """A field added to Modality without a declared split fails loudly instead of being replicated silently."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Extended(Modality):
        novel: torch.Tensor | None = None

    video, _ = sp_cases._inputs(sp_cases.model("ltx2", 4).config)
    ext = Extended(
        **{f.name: getattr(video, f.name) for f in dataclasses.fields(video)}, novel=torch.zeros(1)
    )
    with pytest.raises(ConfigError) as e:
        shard_modality(ext, 0, 2, 28)
    assert e.value.code == "config.sp_field"
