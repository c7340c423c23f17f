"""The video VAE's stride-1 convolutions: torch's 3-D kernel against the 2-D-over-frames path, interleaved.

    python bench/bench_vae_conv.py                        # 1 thread, 7 repeats after 1 warm-up
    python bench/bench_vae_conv.py --threads 2 --repeats 9

``CausalConv3d`` runs a stride-1 convolution with at most ``FRAMES_2D_MAX_CHANNELS`` input channels as one 2-D
convolution over the frames, the temporal taps stacked along the channels (``frames_2d``). Rows:

* each stride-1 convolution shape of the pocket video decoder decoding one segment (4 latent frames -> 25 frames
  at 256x256; shapes recorded from a real decode), plus two encoder shapes above the threshold, timed both ways
  (``conv3d``: the module's own ``nn.Conv3d`` on the same time-padded input);
* the whole pocket decoder on one segment's latents, with the threshold as shipped and at 0 (every convolution
  through the 3-D kernel).

Seeded weights (speed does not depend on them); each repeat runs both arms, alternating which goes first;
medians of wall and thread-CPU seconds. ``max_abs_diff``: the largest difference between the arms' outputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.report import DEFAULT_OUT, Plot, Report, header, median, write_report  # noqa: E402

# (in, out, padded frames, height, width): the decoder's stride-1 convolutions on one 25-frame segment, and two of
# the encoder's (above the threshold, kept on the 3-D kernel)
SHAPES = (
    (8, 8, 27, 64, 64),
    (8, 48, 27, 64, 64),
    (16, 16, 15, 32, 32),
    (16, 64, 15, 32, 32),
    (32, 32, 9, 16, 16),
    (32, 128, 9, 16, 16),
    (64, 64, 6, 8, 8),
    (128, 128, 6, 8, 8),
    (48, 128, 11, 64, 64),
)


def timed(fn: Callable[[], torch.Tensor]) -> tuple[float, float, torch.Tensor]:
    w0, c0 = time.perf_counter(), time.thread_time()
    out = fn()
    return time.perf_counter() - w0, time.thread_time() - c0, out


def compare(
    arms: dict[str, Callable[[], torch.Tensor]], warmup: int, repeats: int
) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """Interleaved repeats of the arms; (arm -> [(wall, cpu)], max |difference| between the arms' outputs)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in arms}
    outs: dict[str, torch.Tensor] = {}
    for r in range(warmup + repeats):
        order = list(arms) if r % 2 == 0 else list(reversed(arms))
        for name in order:
            wall, cpu, outs[name] = timed(arms[name])
            if r >= warmup:
                times[name].append((wall, cpu))
    a, b = outs.values()
    return times, float((a - b).abs().max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from ltx2stream.models.video_vae import blocks
    from ltx2stream.pocket.spec import PocketSpec

    torch.manual_seed(0)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for cin, cout, frames, h, w in SHAPES:
            m = blocks.CausalConv3d(cin, cout, padding_mode="reflect")
            x = torch.randn(1, cin, frames, h, w)
            times, diff = compare(
                {"conv3d": lambda m=m, x=x: m.conv(x), "frames_2d": lambda m=m, x=x: m.frames_2d(x)},
                args.warmup,
                args.repeats,
            )
            c3, c2 = median([t for t, _ in times["conv3d"]]), median([t for t, _ in times["frames_2d"]])
            rows.append(
                {
                    "what": f"conv {cin}->{cout} {frames - 2}x{h}x{w}",
                    "shipped_path": "frames_2d" if cin <= blocks.FRAMES_2D_MAX_CHANNELS else "conv3d",
                    "conv3d_ms": round(1e3 * c3, 2),
                    "frames_2d_ms": round(1e3 * c2, 2),
                    "speedup": round(c3 / c2, 2),
                    "max_abs_diff": f"{diff:.1e}",
                }
            )
        vae = PocketSpec().build("video_vae", 0).eval()
        z = torch.randn(1, 128, 4, 8, 8)
        shipped = blocks.FRAMES_2D_MAX_CHANNELS

        def decode(limit: int) -> torch.Tensor:
            blocks.FRAMES_2D_MAX_CHANNELS = limit
            try:
                out: torch.Tensor = vae.decoder(z)
                return out
            finally:
                blocks.FRAMES_2D_MAX_CHANNELS = shipped

        times, diff = compare(
            {"conv3d": lambda: decode(0), "frames_2d": lambda: decode(shipped)}, 1, args.repeats
        )
        c3, c2 = median([t for t, _ in times["conv3d"]]), median([t for t, _ in times["frames_2d"]])
        rows.append(
            {
                "what": "pocket decoder, 4x8x8 latents -> 25x256x256",
                "shipped_path": f"frames_2d up to {shipped} channels",
                "conv3d_ms": round(1e3 * c3, 1),
                "frames_2d_ms": round(1e3 * c2, 1),
                "speedup": round(c3 / c2, 2),
                "max_abs_diff": f"{diff:.1e}",
                "conv3d_cpu_ms": round(1e3 * median([c for _, c in times["conv3d"]]), 1),
                "frames_2d_cpu_ms": round(1e3 * median([c for _, c in times["frames_2d"]]), 1),
            }
        )
    report = Report(
        "vae_conv",
        header(
            model="PocketSpec video VAE (seeded init)",
            segment="4 latent frames -> 25 frames at 256x256, reflect padding",
            repeats=args.repeats,
            warmup_repeats=args.warmup,
            torch_threads=args.threads,
        ),
        rows,
        {"decoder_speedup": rows[-1]["speedup"], "frames_2d_max_channels": shipped},
    )

    def draw(ax: Any) -> None:
        xs = range(len(rows) - 1)
        ax.bar([x - 0.2 for x in xs], [r["conv3d_ms"] for r in rows[:-1]], 0.4, label="nn.Conv3d")
        ax.bar([x + 0.2 for x in xs], [r["frames_2d_ms"] for r in rows[:-1]], 0.4, label="2-D over frames")
        ax.set_xticks(list(xs), [r["what"].removeprefix("conv ") for r in rows[:-1]], rotation=60, fontsize=6)
        ax.legend()

    report.plots.append(Plot("bars", "stride-1 convolution, median wall", draw, ylabel="ms"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
