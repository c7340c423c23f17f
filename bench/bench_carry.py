"""The continuation carry against decode -> re-encode, interleaved, medians (issue #13).

    python bench/bench_carry.py --preset bench --repeats 5
    python bench/bench_carry.py --preset tiny-ltx2 --repeats 1        # smoke

The carry (``SessionController`` stage ``carry``): the anchor frame VAE-encoded at both stage sizes and the
carried latent tails copied. Its alternative, decode -> re-encode: decode the carried latent frames to pixels
(the anchor + 8k frames) and VAE-encode those frames again at both stage sizes. Both are timed on the same
segment's latents, alternating which goes first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, write_report
from streamed import budget, host_for, load, settings_for

from ltx2stream.session.api import NullSink, SegmentRequest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    settings = settings_for(args.preset)
    b = budget()
    torch.set_num_threads(b.torch)
    host = host_for(args.preset)
    controller = host.open_session(settings)
    controller.run_segment(SegmentRequest(0, "a red fox", 0), NullSink())
    result = controller.last_result
    assert result is not None and result.stage2 is not None
    pipeline, k, t = controller.pipeline, settings.overlap, controller.timeline
    span_frames = 1 + 8 * k
    g1 = result.stage1.grid
    tail_latent = result.video_latent[:, :, -(k + 1) :]  # the latents whose pixels are the anchor + 8k frames
    frames = np.concatenate(list(pipeline.decode_video(result.video_latent)))
    span = frames[t.anchor_index :]
    assert len(span) == span_frames

    def carry() -> None:
        controller._carry(0, result, span)

    def reencode() -> None:
        pixels = np.concatenate(list(pipeline.decode_video(tail_latent)))[-span_frames:]
        pipeline.images.encode_frames(pixels, g1.height, g1.width)
        pipeline.images.encode_frames(pixels, settings.height, settings.width)

    load_before = load()
    rows: list[dict[str, Any]] = []
    for r in range(args.repeats + 1):
        row: dict[str, Any] = {"repeat": r}
        for name, fn in ((("carry", carry), ("reencode", reencode)) if r % 2 else
                         (("reencode", reencode), ("carry", carry))):  # fmt: skip
            t0 = time.perf_counter()
            fn()
            row[f"{name}_s"] = time.perf_counter() - t0
        row["ratio"] = row["carry_s"] / row["reencode_s"]
        if r:  # repeat 0 is warm-up
            rows.append(row)
    summary = {
        "median_carry_s": median([r["carry_s"] for r in rows]),
        "median_decode_reencode_s": median([r["reencode_s"] for r in rows]),
        "carry_over_reencode": median([r["carry_s"] for r in rows]) / median([r["reencode_s"] for r in rows]),
        "load_before_after": f"{load_before} / {load()}",
    }
    report = Report(
        f"carry-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               overlap=k, steps="preset (distilled 8 + 3)", warmup="host warm-up + 1 repeat",
               repeats=args.repeats, torch_threads=b.torch),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        xs = [r["repeat"] for r in rows]
        ax.plot(xs, [r["carry_s"] for r in rows], "o-", label="latent carry")
        ax.plot(xs, [r["reencode_s"] for r in rows], "s-", label="decode -> re-encode")
        ax.legend()

    report.plots.append(Plot("times", "carry vs decode -> re-encode", draw, "repeat", "seconds"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
