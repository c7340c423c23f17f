"""Per-step transformer time, this tree against a baseline commit, in one process with interleaved repeats.

    python bench/bench_transformer_step.py                       # tiny-ltx2 + tiny-ltx2.3 vs 14784c3
    python bench/bench_transformer_step.py --baseline <commit> --repeats 30 --presets tiny-ltx2 --threads 2

The baseline's ``ltx2stream`` is imported next to this tree's (``bench/baseline.py``). Both transformers load
the same checkpoint (the preset's embedded tiny model). One ``generate_latents`` of the preset's default request
records the inputs of every transformer forward (stage 1 and stage 2, with the stage-2 refine LoRA merged into
both models). Each repeat then replays every stage's steps through both models, alternating which goes first:
the new one with one ``StageCache`` per stage (as ``LTX2DenoisingStage`` does), the old one as it was. Reported
per preset and stage: median per-step thread CPU time and wall time, the reduction ``1 - new/old``, and whether
every output was bit-identical (``torch.equal``). A full ``generate_latents`` through both pipelines is also
compared bitwise (final latents of both stages).

Thread CPU time is the primary number: on a shared machine it is far less disturbed by other processes than
wall time (both are reported).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.baseline import import_baseline  # noqa: E402
from bench.report import DEFAULT_OUT, Plot, Report, header, median, write_report  # noqa: E402

DEFAULT_BASELINE = "14784c3"  # main before the per-stage precomputation


def _convert(obj: Any, cls: type) -> Any:
    """A dataclass of this tree as the same-named baseline dataclass (tensors shared, not copied). Fields the
    baseline does not know are left out (if they mattered, the bitwise output comparison would say so)."""
    known = {f.name for f in fields(cls)}
    return cls(**{f.name: getattr(obj, f.name) for f in fields(obj) if f.name in known})


def record(preset_name: str) -> tuple[Any, list[tuple[str, Any, Any, Any]], Any]:
    """Components, the recorded forward inputs [(stage, video, audio, perturbations)], and the request."""
    from ltx2stream.pipeline.components import components_for_preset
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.pipeline.request import GenerationRequest

    preset = get_preset(preset_name)
    comps = components_for_preset(preset_name, None)
    pipe = LTX2Pipeline(comps, preset)
    req = GenerationRequest(
        "a red fox in the snow", preset.height, preset.width, preset.frames, preset.fps, seed=7
    )
    calls: list[tuple[str, Any, Any, Any]] = []
    stage = ["stage1"]
    forward = comps.transformer.forward

    def spy(video: Any, audio: Any, perturbations: Any = None, **kw: Any) -> Any:
        calls.append((stage[0], video, audio, perturbations))
        return forward(video, audio, perturbations, **kw)

    def progress(name: str, *_: int) -> None:
        stage[0] = "stage2" if name in ("upsample", "stage2") else stage[0]

    comps.transformer.forward = spy
    try:
        pipe.generate_latents(req, progress=progress)
    finally:
        del comps.transformer.forward
    return comps, calls, req


def replay(
    new: torch.nn.Module, old: torch.nn.Module, calls: list[tuple[str, Any, Any, Any]], base: Any, args: Any
) -> tuple[dict[str, dict[str, list[float]]], bool]:
    from ltx2stream.models.transformer import StageCache

    bm = base.models.transformer
    old_calls = [
        (
            s,
            _convert(v, bm.Modality),
            _convert(a, bm.Modality),
            None if p is None else _convert(p, bm.Perturbations),
        )
        for s, v, a, p in calls
    ]
    t: dict[str, dict[str, list[float]]] = {
        k: {"stage1": [], "stage2": []} for k in ("old_cpu", "new_cpu", "old_wall", "new_wall")
    }
    identical = True
    for r in range(args.warmup + args.repeats):
        caches: dict[str, StageCache] = {}
        for i, ((stage, v, a, p), (_, ov, oa, op)) in enumerate(zip(calls, old_calls, strict=True)):
            cache = caches.setdefault(stage, StageCache())
            outs = {}
            for name in ("old", "new") if (r + i) % 2 == 0 else ("new", "old"):
                w0, c0 = time.perf_counter(), time.thread_time()
                with torch.inference_mode():
                    outs[name] = new(v, a, p, cache=cache) if name == "new" else old(ov, oa, op)
                c1, w1 = time.thread_time(), time.perf_counter()
                if r >= args.warmup:
                    t[f"{name}_cpu"][stage].append(c1 - c0)
                    t[f"{name}_wall"][stage].append(w1 - w0)
            identical &= all(torch.equal(x, y) for x, y in zip(outs["old"], outs["new"], strict=True))
    return t, identical


def end_to_end_identical(comps: Any, old_comps: Any, base: Any, preset_name: str, req: Any) -> bool:
    """Both pipelines, each on its own components, generate the same request: final latents bitwise equal."""
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset

    new = LTX2Pipeline(comps, get_preset(preset_name)).generate_latents(req)
    bp = base.pipeline
    old_req = _convert(req, bp.request.GenerationRequest)
    old = bp.pipeline.LTX2Pipeline(old_comps, bp.presets.get_preset(preset_name)).generate_latents(old_req)
    pairs = [(new.stage1, old.stage1)] + ([(new.stage2, old.stage2)] if new.stage2 is not None else [])
    return all(
        torch.equal(n.video.latent, o.video.latent) and torch.equal(n.audio.latent, o.audio.latent)
        for n, o in pairs
    )


def bench_preset(base: Any, preset: str, args: Any) -> list[dict[str, Any]]:
    comps, calls, req = record(preset)
    old_comps = base.pipeline.components.components_for_preset(preset, None)  # the same files, the old code
    new, old = comps.transformer, old_comps.transformer
    stage2 = [c for c in calls if c[0] == "stage2"]
    rows = []
    t1, same1 = replay(new, old, [c for c in calls if c[0] == "stage1"], base, args)
    results = [("stage1", t1, same1)]
    if stage2:  # stage 2 runs with the refine LoRA merged: merge it into both models for the replay
        lora = base.pipeline.stages.refine.LTX2RefineLoRAStage
        from ltx2stream.pipeline.presets import get_preset
        from ltx2stream.pipeline.stages.refine import LTX2RefineLoRAStage

        strength = get_preset(preset).refine_lora_strength
        with (
            LTX2RefineLoRAStage(new, comps.refine_lora, strength),
            lora(old, old_comps.refine_lora, strength),
        ):
            t2, same2 = replay(new, old, stage2, base, args)
        results.append(("stage2", t2, same2))
    e2e = end_to_end_identical(comps, old_comps, base, preset, req)
    for stage, t, same in results:
        row: dict[str, Any] = {
            "preset": preset,
            "stage": stage,
            "steps": len(t["new_cpu"][stage]) // args.repeats,
        }
        for kind in ("cpu", "wall"):
            o, n = median(t[f"old_{kind}"][stage]), median(t[f"new_{kind}"][stage])
            row |= {f"old_{kind}_ms": o * 1e3, f"new_{kind}_ms": n * 1e3, f"{kind}_reduction": 1 - n / o}
        row["bit_identical_steps"] = same
        row["bit_identical_generation"] = e2e
        rows.append(row)
        print(
            f"{preset} {stage}: cpu {row['old_cpu_ms']:.2f} -> {row['new_cpu_ms']:.2f} ms "
            f"({row['cpu_reduction']:.1%}), wall {row['wall_reduction']:.1%}, identical {same and e2e}"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE)
    ap.add_argument("--presets", default="tiny-ltx2,tiny-ltx2.3")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = import_baseline(
        args.baseline,
        (
            "models.transformer",
            "pipeline.components",
            "pipeline.pipeline",
            "pipeline.presets",
            "pipeline.request",
            "pipeline.stages.refine",
        ),
    )
    rows = [row for preset in args.presets.split(",") for row in bench_preset(base, preset, args)]
    report = Report(
        "transformer_step",
        header(
            presets=args.presets,
            baseline=args.baseline,
            repeats=args.repeats,
            warmup_repeats=args.warmup,
            torch_threads=args.threads,
            size_frames="preset defaults (tiny: 64x64, 17 frames @ 12 fps; distilled 8 + 3 sigmas)",
        ),
        rows,
        {
            "min_cpu_reduction": min(r["cpu_reduction"] for r in rows),
            "min_wall_reduction": min(r["wall_reduction"] for r in rows),
            "all_bit_identical": all(
                r["bit_identical_steps"] and r["bit_identical_generation"] for r in rows
            ),
        },
    )

    def draw(ax: Any) -> None:
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["old_cpu_ms"] for r in rows], 0.4, label=f"baseline {args.baseline}")
        ax.bar([x + 0.2 for x in xs], [r["new_cpu_ms"] for r in rows], 0.4, label="this tree")
        ax.set_xticks(list(xs), [f"{r['preset']}\n{r['stage']}" for r in rows])
        ax.legend()

    report.plots.append(
        Plot("bars", "median transformer forward per step (thread CPU time)", draw, ylabel="ms")
    )
    write_report(report, args.out)


if __name__ == "__main__":
    main()
