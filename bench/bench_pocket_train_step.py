"""One training step of the pocket transformer, eager against ``torch.compile``, interleaved in one process.

    python bench/bench_pocket_train_step.py                          # 1 thread, 5 repeats after 1 warm-up
    python bench/bench_pocket_train_step.py --threads 2 --repeats 9

The DiT of ``PocketSpec`` (seeded initialisation: speed does not depend on the weights) at the training shapes
of ``train transformer``: batch 8, 25-frame clips (4 latent frames), stage 1 at 128x128 (4x4 latent cells: 64
video tokens) and stage 2 at 256x256 (8x8: 256 tokens), 52 audio tokens, 64 context tokens per stream; forward,
MSE against a random target, backward. Contexts are random tensors of the connector widths (the text path runs
the same in both arms and is left out). Each repeat runs eager then compiled (``dynamic=False``, the way
``--compile`` wraps the model) at both sizes, alternating which goes first. Reported: median wall and thread CPU
seconds per step and size, the speed-up, the mean step at the trainer's stage-1 share (``P_HALF``), the first
compiled call's time (the compile; inductor caches it on disk, so a second run is much faster), and whether
both arms give the same loss on the same inputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.report import DEFAULT_OUT, Plot, Report, header, median, write_report  # noqa: E402

BATCH = 8
SIZES = {"half": 4, "full": 8}  # latent cells per side


def make_inputs(spec: Any, cells: int, seed: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    from ltx2stream.models.transformer.modality import Modality
    from ltx2stream.models.transformer.positions import audio_positions, video_positions
    from ltx2stream.pocket.tasks_dit import audio_latents_for

    g = torch.Generator().manual_seed(seed)
    frames = 4
    tv, ta = frames * cells * cells, audio_latents_for(spec.frames, spec.fps)
    cfg = spec.transformer_config()
    sigma = torch.rand(BATCH, generator=g)
    video = Modality(
        torch.randn(BATCH, tv, 128, generator=g),
        sigma[:, None].expand(BATCH, tv),
        sigma,
        video_positions(frames, cells, cells, spec.fps, batch=BATCH),
        torch.randn(BATCH, 64, cfg.cross_attention_dim, generator=g),
    )
    audio = Modality(
        torch.randn(BATCH, ta, 128, generator=g),
        sigma[:, None].expand(BATCH, ta),
        sigma.clone(),
        audio_positions(ta, batch=BATCH),
        torch.randn(BATCH, 64, cfg.audio_cross_attention_dim, generator=g),
    )
    return video, audio, torch.randn(BATCH, tv, 128, generator=g), torch.randn(BATCH, ta, 128, generator=g)


def step(model: Any, params: list[torch.nn.Parameter], inputs: Any) -> tuple[float, float, float]:
    """(wall s, thread CPU s, loss) of one forward + backward."""
    video, audio, tv, ta = inputs
    w0, c0 = time.perf_counter(), time.thread_time()
    ov, oa = model(video, audio)
    loss = (ov - tv).pow(2).mean() + (oa - ta).pow(2).mean()
    loss.backward()
    for p in params:
        p.grad = None
    return time.perf_counter() - w0, time.thread_time() - c0, float(loss.detach())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from ltx2stream.pocket.spec import PocketSpec
    from ltx2stream.pocket.tasks_dit import P_HALF

    spec = PocketSpec()
    eager = spec.build("transformer", 0)
    params = list(eager.parameters())
    compiled = torch.compile(eager, dynamic=False)
    inputs = {size: make_inputs(spec, cells, 1 + i) for i, (size, cells) in enumerate(SIZES.items())}
    arms = {"eager": eager, "compiled": compiled}
    first: dict[str, float] = {}
    losses: dict[tuple[str, str], float] = {}
    for size in SIZES:
        w0 = time.perf_counter()
        _, _, losses[("compiled", size)] = step(compiled, params, inputs[size])
        first[size] = time.perf_counter() - w0
        _, _, losses[("eager", size)] = step(eager, params, inputs[size])
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(args.warmup + args.repeats):
        order = list(arms) if r % 2 == 0 else list(reversed(arms))
        for name in order:
            for size in SIZES:
                wall, cpu, _ = step(arms[name], params, inputs[size])
                if r >= args.warmup:
                    times.setdefault((name, size), []).append((wall, cpu))
    rows = []
    for size, cells in SIZES.items():
        e, c = times[("eager", size)], times[("compiled", size)]
        rows.append(
            {
                "size": size,
                "video_tokens": 4 * cells**2,
                "eager_wall_s": round(median([w for w, _ in e]), 3),
                "compiled_wall_s": round(median([w for w, _ in c]), 3),
                "eager_cpu_s": round(median([x for _, x in e]), 3),
                "compiled_cpu_s": round(median([x for _, x in c]), 3),
                "speedup_wall": round(median([w for w, _ in e]) / median([w for w, _ in c]), 3),
                "first_compiled_call_s": round(first[size], 1),
                "same_loss": abs(losses[("eager", size)] - losses[("compiled", size)])
                <= 1e-5 * abs(losses[("eager", size)]),
            }
        )
    mix = {
        name: P_HALF * rows[0][f"{name}_wall_s"] + (1 - P_HALF) * rows[1][f"{name}_wall_s"] for name in arms
    }
    report = Report(
        "pocket_train_step",
        header(
            model="PocketSpec transformer (seeded init)",
            batch=BATCH,
            frames="25 (4 latent frames) at 12 fps",
            sizes="half 128x128 (64 video tokens), full 256x256 (256); 52 audio tokens",
            repeats=args.repeats,
            warmup_repeats=args.warmup,
            torch_threads=args.threads,
        ),
        rows,
        {
            "p_half": P_HALF,
            "mean_step_eager_s": round(mix["eager"], 3),
            "mean_step_compiled_s": round(mix["compiled"], 3),
            "speedup_mean_step": round(mix["eager"] / mix["compiled"], 3),
        },
    )

    def draw(ax: Any) -> None:
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["eager_wall_s"] for r in rows], 0.4, label="eager")
        ax.bar([x + 0.2 for x in xs], [r["compiled_wall_s"] for r in rows], 0.4, label="torch.compile")
        ax.set_xticks(list(xs), [r["size"] for r in rows])
        ax.legend()

    report.plots.append(Plot("bars", "median training step (forward + backward, wall)", draw, ylabel="s"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
