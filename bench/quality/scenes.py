"""Quality over many scenes: ``bench.quality``'s measures pooled over N world scenes, so that adherence is a
fraction of tens of trials instead of a handful of windows.

    python -m bench.quality.scenes --preset pocket --checkpoint runs/export/pocket.safetensors --scenes 16
    python -m bench.quality.scenes --preset pocket --scenes 16 --vocabulary heldout     # paraphrases
    python -m bench.quality.scenes --preset tiny-ltx2 --scenes 2 --segments 2 --steer-at 1 --schemes latent_carry  # smoke

Scene ``k`` is ``world_script(seed + k, ...)``: a scene, then the announced change at ``--steer-at``. Each scheme
runs one session per scene through the real SessionController (``bench.quality.run``), the world's own rendering
of the script is scored beside them (``reference``: what an ideal model scores). Per scheme: adherence per
attribute pooled over every window of every scene (hits / trials, with a 95 % Wilson interval), the mean of the
scenes' continuation-seam pixel ratios, steering (share of scenes whose steer was seen, median latency in
segments) and the A/V offset (median |frames| over scenes with bounce/click pairs). Writes results.json,
results.md and adherence.png into ``--out``. Measures and formulas: docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltx2stream.commands.common import add_model_args, dtype_of, model_paths
from ltx2stream.quality.adherence import ATTRIBUTES

from .measure import measure
from .run import plots_missing, run_sessions, scheme_names
from .script import reference, world_script


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.quality.scenes", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--schemes", default="latent_carry,keyframe_carry")
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--steer-at", type=int, default=2, help="first segment under the changed prompt")
    p.add_argument("--change", choices=["recolour", "enter", "darken", "turn"], default="recolour")
    p.add_argument("--overlap", type=int, default=1, help="carried latent frames for the carrying schemes")
    p.add_argument("--seed", type=int, default=0, help="scene k is world_script(seed + k)")
    p.add_argument("--vocabulary", choices=["train", "heldout"], default="train")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: min(2, cores))")
    p.add_argument("--out", type=Path, default=Path("out/quality-scenes"))
    return p.parse_args(argv)


def wilson(hits: float, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``hits`` may be fractional: pooled score x trials)."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = hits / trials
    d = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / d
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


class Pool:
    """One scheme's measures summed over scenes."""

    def __init__(self) -> None:
        self.hits = dict.fromkeys(ATTRIBUTES, 0.0)
        self.trials = dict.fromkeys(ATTRIBUTES, 0)
        self.seam_pixel: list[float] = []
        self.steer: list[float | None] = []
        self.av_frames: list[float] = []

    def add(self, m: dict[str, Any]) -> None:
        for a in ATTRIBUTES:
            n = int(m["adherence_trials"][a])
            if n and m["adherence"][a] is not None:
                self.hits[a] += float(m["adherence"][a]) * n
                self.trials[a] += n
        if m["seams"]["pixel_mean"] is not None:
            self.seam_pixel.append(float(m["seams"]["pixel_mean"]))
        self.steer.append(m["steering"]["latency_segments"])
        if m["av_offset"]["pairs"] and m["av_offset"]["offset_frames"] is not None:
            self.av_frames.append(float(m["av_offset"]["offset_frames"]))

    def summary(self) -> dict[str, Any]:
        adherence = {}
        for a in ATTRIBUTES:
            n = self.trials[a]
            lo, hi = wilson(self.hits[a], n)
            adherence[a] = {"score": self.hits[a] / n if n else None, "hits": round(self.hits[a], 3),
                            "trials": n, "ci95": [lo, hi] if n else None}  # fmt: skip
        seen = [s for s in self.steer if s is not None]
        return {
            "adherence": adherence,
            "seam_pixel_mean": float(np.mean(self.seam_pixel)) if self.seam_pixel else None,
            "seam_pixel_scenes": len(self.seam_pixel),
            "steer_seen": len(seen) / len(self.steer) if self.steer else None,
            "steer_latency_segments_median": float(np.median(seen)) if seen else None,
            "av_offset_frames_median_abs": float(np.median(np.abs(self.av_frames)))
            if self.av_frames
            else None,
            "av_scenes": len(self.av_frames),
        }


def markdown(results: dict[str, Any]) -> str:
    c = results["config"]
    lines = [
        "# Quality over scenes",
        "",
        (
            f"preset `{c['preset']}`, {c['width']}x{c['height']}, {c['frames']} frames per segment at {c['fps']} fps, "
            f"{c['scenes']} scenes (world_script seeds {c['seed']}..{c['seed'] + c['scenes'] - 1}), {c['segments']} "
            f"segments each, steer at segment {c['steer_segment']} ({c['change']}), vocabulary {c['vocabulary']}; "
            f"wall {results['wall_s']:.0f} s."
        ),
        "",
        (
            "Adherence: hits / trials pooled over every window of every scene, [95 % Wilson interval]. Seam: mean over "
            "scenes of the continuation seams' pixel ratio (1 = invisible). Steer: share of scenes whose change was "
            "seen, median latency in segments. A/V: median |offset| in frames over scenes with bounce/click pairs."
        ),
        "",
        "| session | "
        + " | ".join(ATTRIBUTES)
        + " | seam pixel | steer seen / latency | A/V frames (scenes) |",
        "|---|" + "---|" * (len(ATTRIBUTES) + 3),
    ]

    def cell(x: Any, fmt: str = "{:.2f}") -> str:
        return "–" if x is None else fmt.format(x)

    for name, s in results["sessions"].items():
        adh = []
        for a in ATTRIBUTES:
            r = s["adherence"][a]
            adh.append(
                "–" if r["score"] is None else f"{r['score']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
            )
        steer = f"{cell(s['steer_seen'])} / {cell(s['steer_latency_segments_median'])}"
        av = f"{cell(s['av_offset_frames_median_abs'])} ({s['av_scenes']})"
        lines.append(f"| {name} | " + " | ".join(adh) + f" | {cell(s['seam_pixel_mean'])} | {steer} | {av} |")
    lines += ["", "Prompts per scene (first, then from the steer):", ""]
    lines += [f"{k}. {a!r} -> {b!r}" for k, (a, b) in enumerate(results["prompts"])]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["sessions"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        adh = results["sessions"][name]["adherence"]
        xs = [j + i * width for j in range(len(ATTRIBUTES))]
        ys = [adh[a]["score"] if adh[a]["score"] is not None else 0.0 for a in ATTRIBUTES]
        err = [[max(0.0, y - (adh[a]["ci95"] or [y, y])[0]) for y, a in zip(ys, ATTRIBUTES, strict=True)],
               [max(0.0, (adh[a]["ci95"] or [y, y])[1] - y) for y, a in zip(ys, ATTRIBUTES, strict=True)]]  # fmt: skip
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=name)
    ax.axhline(0.8, color="grey", ls="--", lw=1)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(ATTRIBUTES))], ATTRIBUTES)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("adherence (pooled, 95 % CI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.scenes < 1:
        print("error: --scenes must be >= 1", file=sys.stderr)
        return 2
    if (why := plots_missing()) is not None:  # fail now, not after the sessions
        print(f"error: {why}", file=sys.stderr)
        return 2
    try:
        names = scheme_names(args.schemes)
        scripts = [world_script(args.seed + k, args.segments, args.steer_at, args.change, args.vocabulary)
                   for k in range(args.scenes)]  # fmt: skip
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SessionSettings
    from ltx2stream.session.host import PipelineHost

    preset = get_preset(args.preset)
    settings = SessionSettings(args.preset, preset.width, preset.height, preset.fps, preset.frames, args.overlap,
                               args.seed)  # fmt: skip
    t0 = time.perf_counter()
    host = PipelineHost((args.preset,), model_paths(args), device=args.device, dtype=dtype_of(args))
    host.warm_up()
    pipeline = host.pipeline(args.preset)
    pools = {name: Pool() for name in [*names, "reference"]}
    for k, script in enumerate(scripts):
        runs = run_sessions(pipeline, settings, names, script, log=lambda _msg: None)
        for run in runs:
            assert run.video is not None and run.audio is not None
            pools[run.name].add(
                measure(run.video, run.audio, run.sample_rate, preset.fps, run.segment_frames, script)
            )
        first = runs[0]
        rv, ra = reference(script, first.boundaries, sum(first.segment_frames), preset.height, preset.width,
                           preset.fps, first.sample_rate)  # fmt: skip
        pools["reference"].add(measure(rv, ra, first.sample_rate, preset.fps, first.segment_frames, script))
        done = {n: pools[n].summary()["adherence"] for n in names}
        print(f"scene {k + 1}/{len(scripts)}: " + "; ".join(
            f"{n} " + " ".join(f"{a} {d[a]['score']:.2f}" for a in ATTRIBUTES if d[a]["score"] is not None)
            for n, d in done.items()), flush=True)  # fmt: skip
    results = {
        "config": {
            "preset": args.preset,
            "width": preset.width,
            "height": preset.height,
            "frames": preset.frames,
            "fps": preset.fps,
            "overlap": args.overlap,
            "scenes": args.scenes,
            "segments": args.segments,
            "steer_segment": args.steer_at,
            "change": args.change,
            "seed": args.seed,
            "vocabulary": args.vocabulary,
            "device": str(args.device),
            "schemes": names,
        },
        "wall_s": time.perf_counter() - t0,
        "prompts": [[s.prompts[0], s.prompts[args.steer_at]] for s in scripts],
        "sessions": {name: pool.summary() for name, pool in pools.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(markdown(results))
    plot(results, args.out / "adherence.png")
    print((args.out / "results.md").read_text())
    print(f"wrote results.json, results.md, adherence.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
