"""Real-time factor of a streamed session on the pocket model at its native size, and which stage dominates.

    python bench/bench_pocket_rtf.py                                  # untrained export, 256x256 @ 12 fps
    python bench/bench_pocket_rtf.py --checkpoint ltx2stream/pocket/weights/pocket.safetensors
    python bench/bench_pocket_rtf.py --variants preset,cfg3 --segments 6 --threads 2

Speed does not depend on the weights, so without ``--checkpoint`` the bench exports the pocket spec at its seeded
initialisation (``python -m ltx2stream.pocket export --allow-untrained``) into a temp dir and runs on that: the
same classes, sizes and files the trained model has. Text runs through the packaged Gemma 3 270M.

Each variant is a session of the ``pocket`` preset (the real ``SessionController``, latent carry, 25-frame
segments, ``--overlap`` carried latent frames) on one set of loaded components; variants change pipeline
settings only (``VARIANTS``). Segments of the variants are interleaved (A, B, A, B, ...) after ``--warmup``
segments each. Per segment: wall and process CPU seconds (all threads), the controller's stage timings (``text``, ``stage1``, ``upsample``,
``stage2``, ``decode`` = video decode + emit, ``audio`` = audio VAE decode + vocoder, ``carry`` = the rest:
conditioning and the anchor re-encode) in wall and CPU seconds, delivered frames and samples. Real-time factor =
delivered media seconds / wall seconds (>= 1.0: the session streams faster than it plays); ``rtf_cpu`` divides by
CPU seconds instead, which on a shared machine estimates what an otherwise idle core gives (``--threads 1``). Reports JSON, markdown and a stacked-bar PNG
(``bench/report.py``); the machine load is in the header. Prompts change every 2 segments (text is encoded per
segment, as a live session does when steered).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.report import Plot, Report, header, median, write_report

STAGES = ("text", "stage1", "upsample", "stage2", "decode", "audio", "carry")
PROMPTS = (
    "a crimson disc glides left and right over a pale blue backdrop",
    "a golden box bounces up and down over a sand backdrop",
    "a spinning emerald triangle rests in place over a dark grey backdrop",
)


def _cfg(scale: float) -> Any:
    from ltx2stream.pipeline.guidance import GuidanceParams

    return GuidanceParams(cfg=scale)


def variant_preset(name: str, base: Any) -> Any:
    """The preset of a variant: ``preset`` (as shipped); ``cfg3`` (text CFG 3 in stage 1, both modalities);
    ``s1-6`` (stage 1 in 6 steps); ``s2-2`` (stage 2 in 2 steps from 0.6); ``conv3d`` (the preset with every
    video VAE convolution on torch's 3-D kernel, as before session 8: ``FRAMES_2D_MAX_CHANNELS`` 0 during its
    segments)."""
    from ltx2stream.pipeline.schedules import subset_schedule

    if name in ("preset", "conv3d"):
        return base
    if name == "cfg3":
        return replace(base, stage1=replace(base.stage1, video_guidance=_cfg(3.0), audio_guidance=_cfg(3.0)))
    if name == "s1-6":
        assert base.stage1.sigmas is not None
        return replace(
            base, stage1=replace(base.stage1, sigmas=tuple(subset_schedule(base.stage1.sigmas, 6)))
        )
    if name == "s2-2":
        return replace(base, stage2=replace(base.stage2, sigmas=(0.6, 0.3, 0.0)))
    raise SystemExit(f"unknown variant {name!r}")


class ClockSink:
    """Counts what the session delivers and splits the process CPU time (all threads) of a segment by stage,
    from the controller's own events: the prompt encode, stage progress, video chunks, the audio block."""

    def __init__(self) -> None:
        self.frames = 0
        self.samples = 0
        self.cpu: dict[str, float] = {}
        self._last = time.process_time()

    def start(self) -> None:
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self._last = time.process_time()

    def mark(self, stage: str) -> None:
        now = time.process_time()
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now - self._last
        self._last = now

    def progress(self, stage: str, step: int, total: int) -> None:
        self.mark(stage)

    def video(self, frames: np.ndarray) -> None:
        self.mark("decode")
        self.frames += frames.shape[0]

    def audio(self, samples: np.ndarray) -> None:
        self.mark("audio")
        self.samples += samples.shape[1]

    def media_complete(self) -> None:
        """Every frame and sample is out (the audio decodes on its own thread beside the video since #13, so
        the CPU split between ``decode`` and ``audio`` is approximate; their sum is not)."""
        self.mark("audio")


def timed_text(pipeline: Any, sink: ClockSink) -> None:
    """Mark the end of the prompt encode (the controller's ``text`` phase) on the sink's CPU clock."""
    encode = pipeline.encode_prompt

    def wrapped(*a: Any, **k: Any) -> Any:
        out = encode(*a, **k)
        sink.mark("text")
        return out

    pipeline.encode_prompt = wrapped


def untrained_export(out: Path) -> Path:
    from ltx2stream.pocket.export import export, load_parts
    from ltx2stream.pocket.spec import PocketSpec

    spec = PocketSpec()
    modules, training = load_parts(spec, {}, allow_untrained=True)
    return export(spec, modules, out, training=training).checkpoint


def run(args: argparse.Namespace) -> Report:
    from ltx2stream.models.pocket_files import packaged_gemma_270m
    from ltx2stream.pipeline.components import ModelPaths, components_for_preset
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SegmentRequest, SessionSettings
    from ltx2stream.session.controller import SessionController

    torch.set_num_threads(args.threads)
    tmp = None
    checkpoint = args.checkpoint
    if checkpoint is None:
        tmp = tempfile.TemporaryDirectory(prefix="pocket-rtf-")
        checkpoint = untrained_export(Path(tmp.name))
    t0 = time.perf_counter()
    comps = components_for_preset("pocket", ModelPaths(checkpoint, args.gemma or packaged_gemma_270m()))
    load_s = time.perf_counter() - t0
    base = get_preset("pocket")
    settings = SessionSettings("pocket", args.size, args.size, args.fps, args.frames, args.overlap, 1)
    sessions = {}
    for v in args.variants:
        pipeline, sink = LTX2Pipeline(comps, variant_preset(v, base)), ClockSink()
        timed_text(pipeline, sink)
        sessions[v] = (SessionController(pipeline, settings), sink)
    from ltx2stream.models.video_vae import blocks

    shipped = blocks.FRAMES_2D_MAX_CHANNELS
    rows: list[dict[str, Any]] = []
    for i in range(args.warmup + args.segments):
        for v, (session, sink) in sessions.items():
            blocks.FRAMES_2D_MAX_CHANNELS = 0 if v == "conv3d" else shipped
            before = (sink.frames, sink.samples)
            sink.start()
            t = time.perf_counter()
            report = session.run_segment(SegmentRequest(i, PROMPTS[(i // 2) % len(PROMPTS)], 1 + i), sink)
            wall = time.perf_counter() - t
            sink.mark("carry")  # conditioning before stage 1 is in stage1; the anchor re-encode after audio
            cpu = sum(sink.cpu.values())
            timings = dict(report.timings)
            timings["carry"] = wall - sum(timings.values())
            frames = sink.frames - before[0]
            row = {"variant": v, "segment": i, "warmup": i < args.warmup, "wall_s": round(wall, 3)}
            row |= {k: round(timings.get(k, 0.0), 3) for k in STAGES}
            row |= {"cpu_s": round(cpu, 3)} | {f"cpu_{k}": round(sink.cpu.get(k, 0.0), 3) for k in STAGES}
            row |= {
                "frames": frames,
                "samples": sink.samples - before[1],
                "rtf": round(frames / args.fps / wall, 3),
            }
            row |= {"rtf_cpu": round(frames / args.fps / cpu, 3)}
            rows.append(row)
            print(row, flush=True)
    if tmp is not None:
        tmp.cleanup()
    return Report(
        "pocket_rtf",
        header(
            preset="pocket",
            size=f"{args.size}x{args.size}",
            fps=args.fps,
            frames=args.frames,
            overlap=args.overlap,
            warmup_segments=args.warmup,
            segments=args.segments,
            threads=args.threads,
            weights=str(args.checkpoint or "untrained export (seeded init)"),
            load_s=round(load_s, 2),
            nice=os.nice(0),
        ),
        rows,
        summary(rows, args),
        [
            Plot(
                "stages",
                "pocket session: median CPU seconds per segment by stage",
                _bars(rows),
                ylabel="CPU s",
            )
        ],
    )


def summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Per variant over the timed segments: the wall real-time factor (on this machine, at its load), the CPU
    real-time factor (media seconds per process CPU second: what an otherwise idle core would give with one
    thread), median wall and CPU seconds per stage, and the stage with the most CPU."""
    out: dict[str, Any] = {}
    for v in args.variants:
        timed = [r for r in rows if r["variant"] == v and not r["warmup"]]
        media = sum(r["frames"] for r in timed) / args.fps
        wall = sum(r["wall_s"] for r in timed)
        cpu = sum(r["cpu_s"] for r in timed)
        stages = {k: median([r[f"cpu_{k}"] for r in timed]) for k in STAGES}
        out[v] = {
            "rtf_wall": round(media / wall, 3) if wall else float("nan"),
            "rtf_cpu": round(media / cpu, 3) if cpu else float("nan"),
            "median_wall_s": round(median([r["wall_s"] for r in timed]), 3),
            "median_cpu_s": round(median([r["cpu_s"] for r in timed]), 3),
            # the text encoder caches contexts per prompt across variants: the first variant to see a new
            # prompt pays its encode, so variants compare best without it
            "median_cpu_without_text_s": round(median([r["cpu_s"] - r["cpu_text"] for r in timed]), 3),
            "rtf_cpu_without_text": round(media / (cpu - sum(r["cpu_text"] for r in timed)), 3)
            if cpu
            else 0.0,
            "media_s_per_segment": round(media / max(len(timed), 1), 3),
            "dominant_stage_cpu": max(stages, key=lambda k: stages[k]),
            **{f"cpu_{k}_s": round(x, 3) for k, x in stages.items()},
            **{f"wall_{k}_s": round(median([r[k] for r in timed]), 3) for k in STAGES},
        }
    return out


def _bars(rows: list[dict[str, Any]]) -> Any:
    def draw(ax: Any) -> None:
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        bottom = np.zeros(len(variants))
        for k in STAGES:
            timed = [r for r in rows if not r["warmup"]]
            vals = np.array([median([r[f"cpu_{k}"] for r in timed if r["variant"] == v]) for v in variants])
            ax.bar(variants, vals, bottom=bottom, label=k)
            bottom += vals
        ax.legend(fontsize=8)

    return draw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--checkpoint", type=Path, default=None, help="pocket.safetensors (default: untrained export)"
    )
    ap.add_argument("--gemma", type=Path, default=None, help="Gemma 3 270M (default: the packaged GGUF)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--overlap", type=int, default=1)
    ap.add_argument("--segments", type=int, default=4, help="timed segments per variant")
    ap.add_argument("--warmup", type=int, default=1, help="untimed segments per variant first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", type=lambda s: s.split(","), default=["preset"])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    write_report(run(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
