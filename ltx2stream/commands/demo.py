"""``ltx2stream demo``: the main job on the embedded default — a scripted, steered session rendered offline on CPU.

Uses the tiny random-weight model (written on first use, no downloads), renders ``sessions/tiny-demo.toml``
(three prompts, one blended transition) segment by segment with latent continuation, and writes one MP4.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)
DEMO_SCRIPT = """\
[session]
preset = "tiny-ltx2"
width = 64
height = 64
fps = 12
frames = 25
overlap = 1
seed = 7

[[segment]]
prompt = "a red ball bouncing on a wooden floor, soft thuds"
repeat = 2

[[segment]]
prompt = "the ball rolls into a puddle and splashes, water sounds"
transition = "blend"
repeat = 2

[[segment]]
prompt = "night falls, crickets chirp, the ball rests in moonlight"
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="render a short steered session on the embedded tiny model (CPU, offline)")
    p.add_argument("-o", "--output", type=Path, default=Path("demo.mp4"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ltx2stream.commands import render

    args.output.parent.mkdir(parents=True, exist_ok=True)
    script = args.output.with_name(args.output.stem + ".toml")
    script.write_text(DEMO_SCRIPT, encoding="utf-8")
    ns = argparse.Namespace(script=script, output=args.output, work_dir=None, resume=False, from_segment=None,
                            no_progress=args.no_progress, preset=None, checkpoint=None, gemma=None, upsampler=None,
                            lora=None, device="cpu", dtype=None)
    code = render.run(ns)
    print(f"demo: wrote {args.output} (script {script}); play it with any video player")
    return code

