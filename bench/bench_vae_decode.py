"""Benchmark video VAE decoding: one-shot vs tiled vs progressive — peak memory, time, time to first chunk.

    python bench/bench_vae_decode.py                       # 121 frames at 384x512, mid-size random VAE
    python bench/bench_vae_decode.py --frames 65 --size 256x384 --threads 2

The VAE has the LTX-2 decoder structure (residual x2 ``compress_all`` stages) with widths scaled down so it
runs on a CPU: ``decoder_base_channels`` 32 (conv_in 128 -> 256, then 128, 64, 32; the release has 1024 ..
128) and 2 res blocks per level (release: 5). Weights and latent are random (seeded).

Each mode runs in a fresh child process, so their peaks do not mix. **Peak memory** = the child's peak
resident set size during the decode (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus its resident set
size just before it (model, latent and warm-up already in memory). Children run with
``MALLOC_MMAP_THRESHOLD_=65536`` so freed tensors leave the resident set (glibc's dynamic threshold would
otherwise keep them and inflate peaks). The progressive consumer drops each chunk after receiving it (as the
media encoder does); the one-shot and tiled modes hold their output (that is what they return). Reported per
mode: peak MiB, wall seconds, and for progressive the time to its first chunk.

Budget (asserted): the tiled decode's peak stays under ``--budget-mib`` (default 800 MiB; measured 616 MiB,
the one-shot decode of the default size needs 1486 MiB on the reference machine, see docs/models.md).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from typing import Any

import torch

from ltx2stream.models.video_vae import TilingConfig, VideoVAE, decode_progressive, decode_tiled
from ltx2stream.models.video_vae.config import VideoVAEConfig

MODES = ("one-shot", "tiled", "progressive", "progressive+spatial-tiles")


def bench_config() -> VideoVAEConfig:
    """LTX-2 decoder structure at 1/4 width and 2 res blocks per level (the encoder is not built)."""
    res = ["res_x", {"num_layers": 2}]
    up = ["compress_all", {"residual": True, "multiplier": 2}]
    return VideoVAEConfig.from_metadata(
        {
            "decoder_blocks": [res, up, res, up, res, up, res],
            "decoder_base_channels": 32,
            "timestep_conditioning": False,
            "decoder_spatial_padding_mode": "reflect",
        }
    )


def build(seed: int) -> VideoVAE:
    vae = VideoVAE(bench_config(), with_encoder=False).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / (p[0].numel() if p.dim() > 1 else 10) ** 0.5)
    return vae


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def tiling(args: argparse.Namespace, temporal: bool) -> TilingConfig:
    return TilingConfig(
        spatial_tile_px=args.tile_px,
        spatial_overlap_px=args.overlap_px,
        temporal_tile_frames=args.tile_frames if temporal else None,
        temporal_overlap_frames=args.overlap_frames if temporal else 0,
    )


def decode(
    mode: str, vae: VideoVAE, z: torch.Tensor, args: argparse.Namespace
) -> tuple[torch.Tensor, float | None]:
    """Decode once; returns a fingerprint of the output (every 16th pixel) and when the first chunk came."""
    with torch.no_grad():
        if mode in ("one-shot", "tiled"):
            pixels = (
                vae.decode(z) if mode == "one-shot" else decode_tiled(vae, z, tiling(args, temporal=True))
            )
            return pixels[:, :, :, ::16, ::16].clone(), None
        spatial = tiling(args, temporal=False) if mode.endswith("tiles") else None
        keep, first = [], None
        for chunk in decode_progressive(vae, z, spatial, args.chunk):
            first = first if first is not None else time.perf_counter()
            keep.append(chunk[:, :, :, ::16, ::16].clone())  # fingerprint only; the chunk itself is dropped
            del chunk
        return torch.cat(keep, dim=2), first


def child(mode: str, args: argparse.Namespace, out: Any) -> None:
    """Run one mode; send back its numbers and a subsampled fingerprint of the output."""
    torch.set_num_threads(args.threads)
    vae = build(0)
    h, w = (int(v) // 32 for v in args.size.split("x"))
    z = torch.randn(1, 128, (args.frames - 1) // 8 + 1, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # warm-up: one small decode, so kernels/primitives exist before measuring
        vae.decode(z[:, :, :2, :2, :2])
    base, before = rss_kib(), peak_kib()
    seconds, first = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fingerprint, first_s = decode(mode, vae, z, args)
        seconds.append(time.perf_counter() - start)
        first.append(first_s - start if first_s is not None else None)
    out.put(
        {
            "mode": mode,
            "peak_mib": (peak_kib() - base) / 1024,
            "earlier_peak_over_base_mib": max(before - base, 0) / 1024,
            "seconds": min(seconds),
            "first_chunk_s": min(first) if first[0] is not None else None,
            "fingerprint": fingerprint.numpy().copy(),  # by value: tensors would travel as shared memory
            "frames": int(fingerprint.shape[2]),
        }
    )


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    # glibc: serve every allocation >= 64 KiB by mmap and give it back on free, so the resident set follows the
    # live tensors (the default dynamic threshold keeps freed blocks and inflates later peaks)
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
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--size", default="384x512", help="HxW in pixels (multiples of 32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=2, help="progressive chunk in latent frames")
    parser.add_argument("--tile-px", type=int, default=256)
    parser.add_argument("--overlap-px", type=int, default=64)
    parser.add_argument("--tile-frames", type=int, default=64)
    parser.add_argument("--overlap-frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2, help="decodes per mode; the fastest is reported")
    parser.add_argument("--budget-mib", type=float, default=800.0)
    args = parser.parse_args()

    print(
        f"decode {args.frames} frames at {args.size}, threads={args.threads}, VAE: {bench_config().to_metadata()}"
    )
    results = {mode: run_mode(mode, args) for mode in MODES}
    ref = results["one-shot"]
    print(
        f"{'mode':28s} {'peak MiB':>9s} {'x one-shot':>10s} {'seconds':>8s} {'x one-shot':>10s} {'max|diff|':>10s}"
    )
    for mode, r in results.items():
        diff = float(abs(r["fingerprint"] - ref["fingerprint"]).max())
        print(
            f"{mode:28s} {r['peak_mib']:9.1f} {r['peak_mib'] / ref['peak_mib']:10.2f} {r['seconds']:8.2f}"
            f" {r['seconds'] / ref['seconds']:10.2f} {diff:10.2e}"
        )
        if r["earlier_peak_over_base_mib"] > 1:
            print(
                f"  note: {mode} had an earlier peak {r['earlier_peak_over_base_mib']:.0f} MiB over its baseline"
            )
    for mode in ("progressive", "progressive+spatial-tiles"):
        r = results[mode]
        print(
            f"{mode}: first chunk after {r['first_chunk_s']:.2f} s = {r['first_chunk_s'] / ref['seconds']:.2f}"
            f" of the one-shot total ({ref['seconds']:.2f} s)"
        )
    tiled = results["tiled"]["peak_mib"]
    assert tiled <= args.budget_mib, (
        f"tiled decode peak {tiled:.0f} MiB exceeds the budget {args.budget_mib:.0f} MiB"
    )
    print(f"tiled peak {tiled:.0f} MiB <= budget {args.budget_mib:.0f} MiB: OK")


if __name__ == "__main__":
    main()
