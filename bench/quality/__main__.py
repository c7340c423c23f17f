"""Quality bench: continuation schemes side by side on one world script, scored from pixels and samples.

    python -m bench.quality                      # the default preset: the pocket model's shipped weights, 256x256
    python -m bench.quality --preset tiny-ltx2   # the embedded random-weight tiny preset, 64x64 (minutes)
    python -m bench.quality --preset pocket --checkpoint runs/export/pocket.safetensors   # another pocket export
    python -m bench.quality --preset ltx2-distilled --checkpoint ltx-2-19b-distilled.safetensors \\
        --gemma gemma-3-12b --upsampler spatial-x2.safetensors --size 512 --frames 121 --fps 24 --device cuda

Runs one session per scheme (latent_carry, keyframe_carry, reencode, independent = overlap 0) through the real
SessionController, segments interleaved round-robin; the prompts come from the procedural world (a scene, then
the announced change at --steer-at). Writes results.json, results.md, drift/seams/timing PNGs and a contact sheet
of the frames around every seam per scheme into --out. Measures and formulas: docs/quality.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltx2stream.commands.common import add_model_args, dtype_of, model_paths

from .measure import measure
from .report import write
from .run import plots_missing, run_sessions, scheme_names
from .script import reference, world_script


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--schemes", default="latent_carry,keyframe_carry,reencode,independent")
    p.add_argument("--segments", type=int, default=6)
    p.add_argument("--steer-at", type=int, default=3, help="first segment under the changed prompt")
    p.add_argument("--change", choices=["recolour", "enter", "darken", "turn"], default="recolour")
    p.add_argument("--size", type=int, default=None, help="square size (default: the preset's)")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument(
        "--frames", type=int, default=None, help="pixel frames per segment (1 + 8k; default: preset's)"
    )
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--overlap", type=int, default=1, help="carried latent frames for the carrying schemes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocabulary", choices=["train", "heldout"], default="train")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: min(2, cores))")
    p.add_argument("--out", type=Path, default=Path("out/quality"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        names = scheme_names(args.schemes)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if (why := plots_missing()) is not None:  # fail now, not after the sessions
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SessionSettings
    from ltx2stream.session.host import PipelineHost

    preset = get_preset(args.preset)
    width = args.width or args.size or preset.width
    height = args.height or args.size or preset.height
    frames = args.frames or preset.frames
    fps = args.fps or preset.fps
    script = world_script(args.seed, args.segments, args.steer_at, args.change, args.vocabulary)
    t0 = time.perf_counter()
    host = PipelineHost((args.preset,), model_paths(args), device=args.device, dtype=dtype_of(args))
    print(f"loading and warming up {args.preset} ...", flush=True)
    host.warm_up()
    settings = SessionSettings(args.preset, width, height, fps, frames, args.overlap, args.seed)
    print(f"prompts: {script.prompts[0]!r} -> (segment {args.steer_at}) {script.prompts[args.steer_at]!r}")
    runs = run_sessions(host.pipeline(args.preset), settings, names, script)
    sessions: dict[str, Any] = {}
    videos: dict[str, np.ndarray] = {}
    base_carry = None
    for run in runs:
        assert run.video is not None and run.audio is not None
        m = measure(run.video, run.audio, run.sample_rate, fps, run.segment_frames, script)
        timing = {
            "wall_s": run.wall_s,
            "wall_mean_s": float(np.mean(run.wall_s[1:] or run.wall_s)),
            "carry_s": run.carry_s,
            "carry_mean_s": float(np.mean(run.carry_s)),
            "stages_mean_s": {
                k: float(np.mean([s.get(k, 0.0) for s in run.stages_s])) for k in run.stages_s[0]
            },
        }
        if run.name == "latent_carry":
            base_carry = timing["carry_mean_s"]
        sessions[run.name] = {
            "scheme": run.scheme,
            "overlap": run.overlap,
            "frames": run.segment_frames,
            "measures": m,
            "timing": timing,
        }
        videos[run.name] = run.video
    for r in sessions.values():
        if base_carry is not None:
            r["timing"]["carry_extra_vs_latent_carry_s"] = r["timing"]["carry_mean_s"] - base_carry
    first = runs[0]
    ref_frames = first.segment_frames
    rv, ra = reference(script, first.boundaries, sum(ref_frames), height, width, fps, first.sample_rate)
    sessions["reference"] = {
        "scheme": "world",
        "overlap": None,
        "frames": ref_frames,
        "measures": measure(rv, ra, first.sample_rate, fps, ref_frames, script),
    }
    videos["reference"] = rv
    results = {
        "config": {
            "preset": args.preset,
            "width": width,
            "height": height,
            "frames": frames,
            "fps": fps,
            "overlap": args.overlap,
            "segments": args.segments,
            "steer_segment": args.steer_at,
            "change": args.change,
            "announcement": script.announcement,
            "seed": args.seed,
            "device": str(args.device),
            "prompts": list(script.prompts),
            "schemes": names,
        },
        "wall_s": time.perf_counter() - t0,
        "sessions": sessions,
    }
    files = write(results, videos, args.out)
    print((args.out / "results.md").read_text())
    print(f"wrote {', '.join(files)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
