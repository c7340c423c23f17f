"""LTX2TextEncodingStage with torch.distributed: only rank 0 holds (and runs) the text path; rank 1 has no encoder and
receives the contexts by broadcast. Two CPU processes on the gloo backend; every rank must get exactly the tensors a
single-process run produces (bitwise), for the default group and for an explicit sub-group.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.stages.text import LTX2TextEncodingStage
from ltx2stream.pipeline.state import PromptContexts

FIELDS = ("video", "audio", "negative_video", "negative_audio")
PROMPTS = (("a cat on a red sofa", "blurry, static"), ("rain over the sea", None))


def _text_path(checkpoint: str, gemma: str):  # type: ignore[no-untyped-def]
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.models.text import load_text_path
    from ltx2stream.models.tiny import TINY_TEXT_LENGTH

    return load_text_path(
        open_checkpoint(checkpoint), gemma, dtype=torch.float32, max_length=TINY_TEXT_LENGTH
    )


def _encode_all(stage: LTX2TextEncodingStage) -> list[dict[str, torch.Tensor | None]]:
    out = []
    for prompt, negative in PROMPTS:
        ctx = stage(prompt, negative)
        out.append({f: getattr(ctx, f) for f in FIELDS})
    return out


def _worker(rank: int, port: int, checkpoint: str, gemma: str, out_dir: str) -> None:
    """One rank: join the gloo world, encode every prompt through the stage on the default group and on an explicit
    sub-group, save what this rank received."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    try:
        encoder = _text_path(checkpoint, gemma) if rank == 0 else None
        out: dict[str, object] = {"world": _encode_all(LTX2TextEncodingStage(encoder))}
        if encoder is not None:
            encoder.clear_cache()  # the sub-group run goes through Gemma again
        out["subgroup"] = _encode_all(LTX2TextEncodingStage(encoder, group=dist.new_group([0, 1])))
        out["gemma_calls"] = encoder.gemma.forward_calls if encoder is not None else 0
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tiny_text_files(tiny_cache: Path) -> tuple[str, str]:
    from ltx2stream.models.tiny import ensure_tiny_model

    files = ensure_tiny_model("ltx2")
    return str(files.checkpoint), str(files.gemma)


@pytest.fixture(scope="module")
def reference(tiny_text_files: tuple[str, str]) -> list[dict[str, torch.Tensor | None]]:
    """The single-process run (torch.distributed not initialised here)."""
    assert not dist.is_initialized()
    return _encode_all(LTX2TextEncodingStage(_text_path(*tiny_text_files)))


@pytest.mark.slow
def test_rank0_broadcast_matches_single_process(
    tiny_text_files: tuple[str, str], reference: list[dict[str, torch.Tensor | None]], tmp_path: Path
) -> None:
    mp.spawn(_worker, args=(_free_port(), *tiny_text_files, str(tmp_path)), nprocs=2, join=True)
    saved = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert saved[0]["gemma_calls"] == 6  # (2 prompts + 1 negative prompt) x 2 groups, all on rank 0
    assert saved[1]["gemma_calls"] == 0  # rank 1 has no text encoder at all
    for rank, data in enumerate(saved):
        for group in ("world", "subgroup"):
            for got, want in zip(data[group], reference, strict=True):
                for field in FIELDS:
                    where = f"rank {rank}, {group} group, {field}"
                    if want[field] is None:
                        assert got[field] is None, where
                        continue
                    assert got[field].dtype == want[field].dtype and got[field].shape == want[field].shape, (
                        where
                    )
                    assert torch.equal(got[field], want[field]), (
                        f"{where} differs from the single-process run"
                    )


def test_reference_contexts_are_real(reference: list[dict[str, torch.Tensor | None]]) -> None:
    """Guard against a vacuous comparison: contexts are non-trivial and differ between prompts."""
    first, second = reference
    assert first["video"] is not None and second["video"] is not None
    assert first["video"].abs().sum() > 0 and not torch.equal(first["video"], second["video"])
    assert first["negative_video"] is not None and not torch.equal(first["video"], first["negative_video"])


def test_rank_without_encoder_and_without_group_fails_clearly() -> None:
    with pytest.raises(ConfigError) as e:
        LTX2TextEncodingStage(None)("a cat")
    assert e.value.code == "config.no_text_encoder"


def test_prompt_contexts_are_frozen() -> None:
    ctx = PromptContexts(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
    with pytest.raises(AttributeError):
        ctx.video = torch.ones(1)  # type: ignore[misc]
