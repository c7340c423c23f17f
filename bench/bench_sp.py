"""Benchmark sequence parallelism: one DiT forward split over 1, 2, 4 ... ranks (ltx2stream/parallel/).

    python bench/bench_sp.py                                     # CPU, gloo, worlds 1 2 4, 1 thread per rank
    python bench/bench_sp.py --device cuda --dtype bf16 --worlds 1 2 4 8 --frames 16 --height 16 --width 24 \
        --layers 8 --heads 32 --head-dim 128                     # same command on a GPU node (NCCL)

Per world size P, P processes are spawned (each rank = one device: one CPU thread, or GPU ``cuda:rank``), each
builds the same seeded random LTX-2 transformer of the given size, runs ``--warmup`` forwards, then
``--repeats`` timed forwards (barrier before, device sync after each). World sizes run interleaved for
``--rounds`` rounds so machine load affects all alike. Reported per P: median ms per forward over all timed
forwards of rank 0, speed-up vs P = 1, parallel efficiency (speed-up / P), the CPU time per forward summed over
the ranks and per rank (process time, gloo's threads included: on an oversubscribed machine the wall time
measures the scheduler, the CPU time still shows how the work divides and what the collectives add), and the
largest relative difference of the video output from the P = 1 output (checks that the split computes the same
thing).

On a shared 2-core CPU box the speed-up is bounded by the cores and the loopback copies (see docs/deploy.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ltx2stream.models.transformer import (
    LTXAVModel,
    Modality,
    randomize_,
    tiny_modalities,
    tiny_transformer_config,
)
from ltx2stream.parallel import SequenceParallelTransformer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build(
    args: argparse.Namespace, device: torch.device
) -> tuple[LTXAVModel, tuple[Modality, Modality | None]]:
    cfg = tiny_transformer_config("ltx2")
    vd, ad = args.heads * args.head_dim, args.heads * args.head_dim // 2
    cfg = dataclasses.replace(
        cfg,
        num_layers=args.layers,
        num_attention_heads=args.heads,
        attention_head_dim=args.head_dim,
        audio_num_attention_heads=args.heads,
        audio_attention_head_dim=args.head_dim // 2,
        cross_attention_dim=vd,
        audio_cross_attention_dim=ad,
    )
    model = randomize_(LTXAVModel(cfg), 0).eval().to(device, DTYPES[args.dtype])
    video, audio = tiny_modalities(
        cfg,
        latent_frames=args.frames,
        latent_height=args.height,
        latent_width=args.width,
        audio_frames=args.audio,
        context_len=32,
    )
    return model, (_to(video, device), None if args.no_audio else _to(audio, device))


def _to(m: Modality, device: torch.device) -> Modality:
    return Modality(**{f.name: _move(getattr(m, f.name), device) for f in dataclasses.fields(m)})


def _move(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if t is None else t.to(device)


def rank_main(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=300),
    )
    try:
        model, (video, audio) = build(args, device)
        net = SequenceParallelTransformer(model)
        times, cpu = [], []
        with torch.no_grad():
            for i in range(args.warmup + args.repeats):
                dist.barrier()
                t0, c0 = time.perf_counter(), time.process_time()
                v, _ = net(video, audio)
                if cuda:
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
        result = {"times": times, "cpu": cpu, "video": v.float().cpu() if rank == 0 else None}
        torch.save(result, Path(out) / f"world{world}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per rank")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--frames", type=int, default=6, help="video latent frames")
    p.add_argument("--height", type=int, default=8, help="video latent height")
    p.add_argument("--width", type=int, default=12, help="video latent width")
    p.add_argument("--audio", type=int, default=100, help="audio latents")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    times: dict[int, list[float]] = {w: [] for w in args.worlds}
    cpu: dict[int, list[float]] = {w: [] for w in args.worlds}  # summed over the ranks, per forward
    outputs: dict[int, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for world in args.worlds:
                mp.spawn(rank_main, args=(world, free_port(), args, tmp), nprocs=world, join=True)
                ranks = [torch.load(Path(tmp) / f"world{world}-rank{r}.pt") for r in range(world)]
                times[world] += ranks[0]["times"]
                cpu[world] += [sum(step) for step in zip(*(d["cpu"] for d in ranks), strict=True)]
                outputs[world] = ranks[0]["video"]
    tokens = args.frames * args.height * args.width
    print(
        f"SP bench: {args.device} {args.dtype}, {args.layers} layers, {args.heads} heads x {args.head_dim}, "
        f"{tokens} video tokens, {0 if args.no_audio else args.audio} audio tokens, {args.threads} thread(s)/rank, "
        f"{args.rounds} rounds x {args.repeats} forwards"
    )
    print(
        f"{'world':>5} {'ms/forward':>11} {'speed-up':>9} {'efficiency':>10} {'CPU ms/fwd':>11} "
        f"{'CPU/rank':>9} {'max rel diff':>13}"
    )
    base_w = min(args.worlds)
    base = statistics.median(times[base_w])
    for world in args.worlds:
        ms = statistics.median(times[world])
        ref = outputs[base_w]
        diff = ((outputs[world] - ref).abs().max() / ref.abs().max()).item()
        speed = base / ms
        total = statistics.median(cpu[world])
        print(
            f"{world:>5} {ms * 1e3:>11.1f} {speed:>9.2f} {speed / world * base_w:>10.2f} {total * 1e3:>11.1f} "
            f"{total / world * 1e3:>9.1f} {diff:>13.1e}"
        )


if __name__ == "__main__":
    main()
