"""Benchmark the LTX-2.5 diffusion video decoder beside the conv decoder: peak memory, time per frame, first chunk.

    python bench/bench_diffusion_decode.py                        # 25 frames at 128x192, 2 threads
    python bench/bench_diffusion_decode.py --frames 121 --size 384x512 --chunk 16

Models (random, seeded weights; no released file is used):
* conv: the LTX-2 decoder structure at 1/4 width of ``bench_vae_decode.py`` (same code path as LTX-2 / 2.3);
* diffusion: the released depths (4/6/4/2/8), upsample strides and two Euler steps at 1/16 width (stage channels
  64, 32, 32, 32, 32; head_dim 16) with 3x3x3 windows everywhere (the release uses 7x7 / 5x5 spatial windows:
  5.4x / 2.8x more neighbours per query; kept small so the bench runs on a shared 2-core CPU).

Modes: ``conv one-shot``, ``conv progressive`` (chunk = ``--chunk`` pixel frames), ``diffusion one-shot`` and
``diffusion chunked`` (stages 1–3 once, stages 4–5 per ``--chunk`` frames with receptive-field halos). Each mode
runs in a fresh child process (peaks do not mix); peak = ru_maxrss during the decode minus the resident set
before it, with ``MALLOC_MMAP_THRESHOLD_=65536`` (see ``bench_vae_decode.py``). A small warm-up decode runs first.
Reported: peak MiB, seconds, ms per output frame, first chunk (s) and max |chunked − one-shot| on a fingerprint.
The chunked decode must equal the one-shot decode within 1e-4 (asserted).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from typing import Any

import torch
from bench_vae_decode import build as build_conv
from bench_vae_decode import peak_kib, rss_kib

from ltx2stream.models.video_vae import decode_progressive
from ltx2stream.models.video_vae.diffusion.tiny import random_diffusion_vae, tiny_diffusion_vae_section

MODES = ("conv one-shot", "conv progressive", "diffusion one-shot", "diffusion chunked")
BENCH_DECODER = {
    "stage_channels": [64, 32, 32, 32, 32],
    "stage_depths": [4, 6, 4, 2, 8],
    "stage_kernels": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 1], [[2, 2, 2], 1], [[2, 2, 2], 1]],
    "stage5_kernel": [3, 3, 3],
    "head_dim": 16,
    "t_emb_dim": 64,
}


def run(mode: str, model: Any, z: torch.Tensor, chunk: int) -> tuple[torch.Tensor, float]:
    """Decode once; returns a fingerprint (every 8th pixel) and when the first chunk arrived."""
    start, first = time.perf_counter(), None
    parts = []
    with torch.inference_mode():
        if mode == "conv one-shot":
            chunks: Any = [model.decode(z)]
        elif mode == "conv progressive":
            chunks = decode_progressive(model, z, None, max(1, chunk // 8))
        else:
            gen = torch.Generator().manual_seed(0)
            chunks = model.decode_chunks(z, generator=gen, chunk_frames=None if "one-shot" in mode else chunk)
        for c in chunks:
            first = first if first is not None else time.perf_counter() - start
            parts.append(c[:, :, :, ::8, ::8].clone())
            del c
    return torch.cat(parts, dim=2), first or 0.0


def child(mode: str, args: argparse.Namespace, out: Any) -> None:
    torch.set_num_threads(args.threads)
    if mode.startswith("conv"):
        model = build_conv(0)
    else:
        model = random_diffusion_vae(tiny_diffusion_vae_section(**BENCH_DECODER), seed=0)
        del model.encoder
    h, w = (int(v) // 32 for v in args.size.split("x"))
    z = torch.randn(1, 128, (args.frames - 1) // 8 + 1, h, w, generator=torch.Generator().manual_seed(1))
    run(mode, model, z[:, :, :3, :2, :2], args.chunk)  # warm-up
    base = rss_kib()
    start = time.perf_counter()
    fingerprint, first = run(mode, model, z, args.chunk)
    seconds = time.perf_counter() - start
    out.put(
        {
            "peak_mib": (peak_kib() - base) / 1024,
            "seconds": seconds,
            "first_s": first,
            "frames": int(fingerprint.shape[2]),
            "fingerprint": fingerprint.numpy().copy(),
        }
    )


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(mode, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--size", default="128x192", help="HxW in pixels (multiples of 32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--chunk", type=int, default=16, help="pixel frames per chunk (progressive / chunked)"
    )
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",")]
    print(f"decode {args.frames} frames at {args.size}, threads={args.threads}, chunk={args.chunk} frames")
    results = {m: run_mode(m, args) for m in modes}
    print(
        f"{'mode':20s} {'peak MiB':>9s} {'seconds':>8s} {'ms/frame':>9s} {'first s':>8s} {'max|diff|':>10s}"
    )
    for m, r in results.items():
        ref = results.get(m.replace("chunked", "one-shot").replace("progressive", "one-shot"), r)
        diff = float(abs(r["fingerprint"] - ref["fingerprint"]).max())
        print(
            f"{m:20s} {r['peak_mib']:9.1f} {r['seconds']:8.2f} {1000 * r['seconds'] / r['frames']:9.1f}"
            f" {r['first_s']:8.2f} {diff:10.2e}"
        )
        if m == "diffusion chunked":
            assert diff <= 1e-4, f"chunked diffusion decode differs from one-shot by {diff}"


if __name__ == "__main__":
    main()
